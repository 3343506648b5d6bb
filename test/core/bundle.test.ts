/**
 * bin/provision.js runs a prebuilt bundle of the sources (bin/build.mjs) and compiles user
 * TypeScript to cached plain JS (src/cli/usercode.ts). These tests run the real CLI that way.
 */
import test from 'ava';
import {mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {buildKey, ensureBuild} from '../../bin/build.mjs';
import {userCacheDir} from '../../src/core/paths.ts';
import {projectRoot as root, runCli, type Cli} from '../helpers/cli.ts';


const cli = (args: string[], cwd: string): Promise<Cli> => runCli(args, {cwd});

/** A project of the user's own: a playbook importing provision's API and a helper module, one role. */
function project(): string {
  const dir = mkdtempSync(join(tmpdir(), 'prov-user-'));
  mkdirSync(join(dir, 'playbooks'));
  mkdirSync(join(dir, 'roles', 'hello'), {recursive: true});
  mkdirSync(join(dir, 'node_modules')); // its own cache (node_modules/.cache/provision), shared with no other test
  writeFileSync(join(dir, 'inventory.yml'), 'all:\n  hosts:\n    local: {ansible_host: 127.0.0.1}\n');
  writeFileSync(join(dir, 'playbooks', 'where.ts'), `import {definePlaybook} from ${JSON.stringify(join(root, 'src', 'index.ts'))};
import {label} from './helper.ts';
export default definePlaybook({name: label + ' ' + import.meta.dirname, plays: [{name: 'p', hosts: 'nobody', gatherFacts: false, roles: ['hello']}]});
`);
  writeFileSync(join(dir, 'playbooks', 'helper.ts'), `export const label: string = 'from';\n`);
  writeFileSync(join(dir, 'roles', 'hello', 'index.ts'), `import {defineRole} from ${JSON.stringify(join(root, 'src', 'index.ts'))};
export default defineRole({name: 'hello', tasks: []});
`);
  return dir;
}

test('the bundle is keyed by the sources: the same key twice, one folder per key', async (t) => {
  t.is(buildKey(), buildKey());
  const dir = await ensureBuild();
  t.true(statSync(join(dir, 'cli', 'main.mjs')).isFile());
  t.true(statSync(join(dir, 'index.mjs')).isFile());
  t.is(await ensureBuild(), dir);
});

test('user TypeScript: relative imports and import.meta work; an edit is compiled again; the cache is reused', async (t) => {
  const dir = project();
  const first = await cli(['run', 'playbooks/where.ts', '-i', 'inventory.yml', '--json'], dir);
  t.is(first.code, 0, first.stderr);
  const start = JSON.parse(first.stdout.split('\n')[0]!) as {playbook: string};
  t.is(start.playbook, `from ${join(dir, 'playbooks')}`, 'import.meta.dirname names the source folder');

  const userCache = userCacheDir('user', dir); // the project's own
  const before = new Set(readdirSync(userCache));
  const again = await cli(['run', 'playbooks/where.ts', '-i', 'inventory.yml', '--json'], dir);
  t.is(again.code, 0);
  t.deepEqual(new Set(readdirSync(userCache)), before, 'nothing compiled again');

  writeFileSync(join(dir, 'playbooks', 'helper.ts'), `export const label: string = 'edited';\n`);
  const edited = await cli(['run', 'playbooks/where.ts', '-i', 'inventory.yml', '--json'], dir);
  t.regex(edited.stdout, /"playbook":"edited /, 'a changed import is picked up');
});

test('a syntax error in a playbook: one line naming file and line, exit 4, no stack trace', async (t) => {
  const dir = project();
  writeFileSync(join(dir, 'playbooks', 'where.ts'), readFileSync(join(dir, 'playbooks', 'where.ts'), 'utf8') + '\nconst broken = ;\n');
  const r = await cli(['run', 'playbooks/where.ts', '-i', 'inventory.yml'], dir);
  t.is(r.code, 4);
  t.regex(r.stderr, /^provision: playbooks\/where\.ts:5: /);
  t.notRegex(r.stderr, /\n\s+at /);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
});
