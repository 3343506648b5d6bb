/**
 * README's playbook examples are files a test runs: every file of the `provision init` scaffold that
 * README shows must be in it byte for byte (test/integration/own-repo.test.ts installs provision into an
 * empty project, scaffolds these files and runs them against a real sshd).
 */
import test from 'ava';
import {readFileSync} from 'node:fs';
import {join, resolve} from 'node:path';

const root = resolve(import.meta.dirname, '..', '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
/** Every fenced code block of README, without its fences. */
const blocks = [...readme.matchAll(/^```[\w-]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

for (const file of ['init/basic/playbooks/site.ts', 'init/basic/roles/hello/index.ts', 'init/basic/roles/hello/templates/hello.conf.mustache']) {
  test(`README shows ${file} as it is`, (t) => {
    const content = readFileSync(join(root, file), 'utf8');
    t.true(blocks.includes(content.endsWith('\n') ? content : `${content}\n`), `README has no code block equal to ${file}`);
  });
}

test('README starts with how to use provision in your own repository', (t) => {
  const headings = [...readme.matchAll(/^## (.*)$/gm)].map((m) => m[1]);
  t.is(headings[0], 'Use it in your own repository');
});
