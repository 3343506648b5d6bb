/**
 * roles/app/files/app.js is built, not committed (roles/app/build.mjs; `npm ci` and `npm pack` build
 * it). It must be byte-stable, or every run would re-upload it and restart the app on a converged
 * lab; it must vendor the mysql2 that package-lock.json pins; and a clone where nobody built it gets
 * one line saying how, not a stack.
 */
import test from 'ava';
import {spawnSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import type {TaskContext} from '../../src/core/types.ts';
import {Secret} from '../../src/core/secret.ts';
import {readRoleFileContent} from '../../src/templates/render.ts';
import appRole, {appBundle} from '../../roles/app/index.ts';
import {runFake} from '../helpers/engine.ts';

const root = resolve(import.meta.dirname, '..', '..');
const buildScript = join(root, 'roles', 'app', 'build.mjs');

function tempDir(t: {teardown(f: () => void): void}, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, {recursive: true, force: true}));
  return dir;
}

/** `node roles/app/build.mjs --out FILE`, from `cwd`: the bytes it wrote. */
function build(out: string, cwd: string): Buffer {
  const r = spawnSync(process.execPath, [buildScript, '--out', out], {cwd, encoding: 'utf8'});
  if (r.status !== 0) throw new Error(`roles/app/build.mjs: exit ${r.status}\n${r.stderr}`);
  return readFileSync(out);
}

test('the app bundle: two builds (from different folders) are the same bytes, with the mysql2 of package-lock.json', (t) => {
  const dir = tempDir(t, 'prov-app-build-');
  const first = build(join(dir, 'one', 'app.js'), root);
  const second = build(join(dir, 'two', 'app.js'), dir);
  t.true(first.length > 100_000, `a bundle of ${first.length} bytes`);
  t.true(first.equals(second), 'same sources, different bytes: the role would report a change on every run');

  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {packages: Record<string, {version?: string}>};
  const pinned = lock.packages['node_modules/mysql2']?.version;
  if (pinned === undefined) return t.fail('package-lock.json pins no mysql2');
  const code = first.toString('utf8');
  // esbuild embeds mysql2's own package.json (mysql2 reads its version from it).
  const vendored = /^\/\/ node_modules\/mysql2\/package\.json\n[\s\S]*?^\s*version: "([^"]+)"/m.exec(code)?.[1];
  t.is(vendored, pinned, 'the mysql2 inside the bundle is the one package-lock.json pins');
  const [banner = ''] = code.split('\n', 1);
  t.true(banner.includes(`(mysql2 ${pinned}, esbuild `), banner);
});

test('the app bundle is built by npm ci (prepare) and npm pack (prepack), and ignored by git', (t) => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {scripts: Record<string, string>; files: string[]};
  t.regex(pkg.scripts.prepare!, /node roles\/app\/build\.mjs/);
  t.regex(readFileSync(join(root, 'scripts', 'prepack.mjs'), 'utf8'), /run\(process\.execPath, \[join\(root, 'roles', 'app', 'build\.mjs'\)\]\)/);
  t.true(pkg.files.includes('roles/*/files/**'), 'the package ships the roles\' files');
  const ignored = spawnSync('git', ['check-ignore', '-q', 'roles/app/files/app.js'], {cwd: root});
  if (ignored.error || ignored.status === 128) return t.pass(); // not a git checkout (an unpacked tarball)
  t.is(ignored.status, 0, 'roles/app/files/app.js is not in .gitignore');
});

/** A role folder with (or without) files/app.js. */
function roleDir(t: {teardown(f: () => void): void}, bundle?: string): string {
  const dir = tempDir(t, 'prov-app-role-');
  if (bundle !== undefined) {
    mkdirSync(join(dir, 'files'));
    writeFileSync(join(dir, 'files', 'app.js'), bundle);
  }
  return dir;
}

const ctxIn = (dir: string): TaskContext => ({
  host: 'web1', vars: {...appRole.defaults}, facts: {} as TaskContext['facts'], groups: {}, groupNames: [],
  hostvars: () => ({results: {}}), results: {}, check: false, render: () => '',
  readFile: (name) => readRoleFileContent(dir, name), secret: (v) => new Secret(v),
});

test('appBundle: the built files/app.js, byte for byte', (t) => {
  t.is(appBundle(ctxIn(roleDir(t, 'console.log(1)\n'))).toString(), 'console.log(1)\n');
});

test('app role without a built bundle: the task fails with one line saying how to build it', async (t) => {
  const dir = roleDir(t);
  t.throws(() => appBundle(ctxIn(dir)), {message: /^app: file 'app\.js' not found \(looked for .*files\/app\.js\): build it with `npm run build:app` \(npm ci builds it too\)$/});

  // As a run shows it: a failed task, its message one line, no stack.
  const tasks = appRole.tasks.filter((task) => task.options.name === 'app bundle');
  t.is(tasks.length, 1);
  const role = {...appRole, tasks, handlers: []};
  const pb = definePlaybook({name: 't', plays: [{name: 'p', hosts: 'webservers', gatherFacts: false, roles: ['app']}]});
  const r = await runFake(pb, {groups: {webservers: ['web1']}, hostVars: {web1: {app_dir: join(dir, 'opt')}}, roles: {app: {role, dir}}});
  const [result] = r.results('web1');
  t.is(result?.status, 'failed');
  t.regex(result?.msg ?? '', /build it with `npm run build:app`/);
  t.false((result?.msg ?? '').includes('\n'), result?.msg);
  t.false(/\\n\s+at /.test(JSON.stringify(r.events)), 'no stack trace in the run\'s events');
});
