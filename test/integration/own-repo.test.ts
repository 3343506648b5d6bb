/**
 * provision in a repository of the user's own, the way a new user gets there: `npm pack` this project,
 * `npm install` the tarball into an empty project, `npx provision init`, the user's own `tsc`, then the
 * scaffolded playbook against a real sshd on loopback: it converges, a second run changes nothing, and
 * `--check` with another value of a templated variable reports the change and writes nothing. Once in
 * a "module" project, once in a "commonjs" one (both use the one install).
 */
import test, {type ExecutionContext} from 'ava';
import {execFile} from 'node:child_process';
import {createHash} from 'node:crypto';
import {existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {startSshd, writeLoopbackInventory, type Sshd} from '../helpers/sshd.ts';
import {jsonEvents, projectRoot as root, runCli} from '../helpers/cli.ts';

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The environment of a user's shell: without the npm_* variables of an `npm test` around this run
 * (npm_config_local_prefix would point npx at this repository) nor provision's own switches.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!/^npm_/i.test(k) && !k.startsWith('PROVISION_')) env[k] = v;
  }
  return {...env, NO_COLOR: '1'};
}

function sh(cmd: string, args: readonly string[], cwd: string): Promise<Run> {
  return new Promise((res) => {
    execFile(cmd, args, {cwd, env: userEnv(), maxBuffer: 64 << 20}, (err, stdout, stderr) => {
      res({code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr});
    });
  });
}

/** `npx --no`: the project's own bin, never a package fetched from the registry. */
const npx = (cwd: string, ...args: string[]): Promise<Run> => sh('npx', ['--no', '--', ...args], cwd);

/** Every file under `dir` with its mode, size, mtime and content hash: equal means untouched. */
function fingerprint(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, {recursive: true}).map(String).sort().map((rel) => {
    const p = join(dir, rel);
    const s = lstatSync(p);
    const hash = s.isFile() ? createHash('sha256').update(readFileSync(p)).digest('hex') : '';
    return `${rel} ${s.mode.toString(8)} ${s.size} ${s.mtimeMs} ${hash}`;
  });
}

type Recap = Record<string, {ok: number; changed: number; failed: number; unreachable: number}>;
const recap = (r: Run): Recap => jsonEvents(r.stdout).at(-1)!.hosts as Recap;

const scaffold = ['.gitignore', 'README.md', 'inventory/group_vars/all.yml', 'inventory/hosts.yml', 'package.json', 'playbooks/site.ts', 'roles/hello/index.ts', 'roles/hello/templates/hello.conf.mustache', 'tsconfig.json'];

let sshd: Sshd;
let tmp: string;
let tarball: string;
let files: string[];
let modules: string;

test.before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'prov-own-'));
  const t0 = Date.now();
  const [server, pack] = await Promise.all([startSshd(), sh('npm', ['pack', '--pack-destination', tmp], root)]);
  sshd = server;
  if (pack.code !== 0) throw new Error(`npm pack failed:\n${pack.stderr}`);
  tarball = join(tmp, readdirSync(tmp).find((f) => f.endsWith('.tgz'))!);
  const list = await sh('tar', ['-tzf', tarball], tmp);
  files = list.stdout.trim().split('\n').map((f) => f.replace(/^package\//, '')).sort();
  const t1 = Date.now();

  // Installed once, as a user would; each project below links this node_modules.
  const install = join(tmp, 'install');
  mkdirSync(install);
  writeFileSync(join(install, 'package.json'), '{"name": "install", "private": true}\n');
  const r = await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], install);
  if (r.code !== 0) throw new Error(`npm install ${tarball} failed:\n${r.stderr}`);
  modules = join(install, 'node_modules');
  process.stdout.write(`own-repo: npm pack ${((t1 - t0) / 1000).toFixed(1)} s, npm install ${((Date.now() - t1) / 1000).toFixed(1)} s\n`);
});

test.after.always(async () => {
  await sshd?.stop();
  if (tmp) rmSync(tmp, {recursive: true, force: true});
});

test('the tarball holds what a user needs: compiled JS, declarations, the bin, the roles\' files, init scaffolds; no tests, bench, CI or lab state', (t) => {
  t.log(`${files.length} files:\n${files.join('\n')}`);
  for (const dir of ['test/', 'bench/', '.ci/', '.lab/', 'src/', 'docs/', 'scripts/', 'node_modules/']) {
    t.deepEqual(files.filter((f) => f.startsWith(dir)), [], `nothing under ${dir}`);
  }
  t.false(files.includes('inventory/group_vars/all/vault.yml'));
  for (const f of ['dist/index.mjs', 'dist/roles.mjs', 'dist/cli/main.mjs', 'dist/types/src/index.d.ts', 'dist/types/roles/index.d.ts', 'bin/provision.js', 'roles/nginx/templates/site.conf.mustache', 'roles/nginx/files/index.html', 'roles/app/files/app.js', 'inventory/lab.yml', 'init/basic/playbooks/site.ts', 'init/site/playbooks/site.ts', 'README.md', 'LICENSE', 'package.json']) {
    t.true(files.includes(f), f);
  }
});

async function ownProject(t: ExecutionContext, type: 'module' | 'commonjs'): Promise<void> {
  const dir = join(tmp, type);
  mkdirSync(dir);
  symlinkSync(modules, join(dir, 'node_modules'));

  const help = await npx(dir, 'provision', '--help');
  t.is(help.code, 0, help.stderr);
  t.regex(help.stdout, /\binit\b/);

  const init = await npx(dir, 'provision', 'init');
  t.is(init.code, 0, init.stderr);
  for (const f of scaffold) {
    t.true(existsSync(join(dir, f)), f);
    t.regex(init.stdout, new RegExp(`created +${f.replace(/\./g, '\\.')}\\n`));
  }
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {type: string; dependencies: Record<string, string>};
  t.like(pkg, {type: 'module', dependencies: {provision: '^0.1.0'}});
  if (type === 'commonjs') writeFileSync(join(dir, 'package.json'), JSON.stringify({...pkg, type: 'commonjs'}, null, 2));

  // The user's type check: clean, and only the user's files are checked.
  const tsc = await npx(dir, 'tsc', '--noEmit');
  t.is(tsc.code, 0, tsc.stdout + tsc.stderr);
  t.notRegex(tsc.stdout, /node_modules/);

  // The scaffold's own inventory lists example hosts: point it at the loopback sshd, beside group_vars/.
  const inventory = writeLoopbackInventory(sshd, join(dir, 'inventory'), {web1: {}});
  const target = join(tmp, `${type}-site`);
  const run = (...args: string[]): Promise<Run> => npx(dir, 'provision', 'run', 'site', '-i', inventory, '-e', `site_root=${target}`, '--json', ...args);

  const first = await run();
  t.is(first.code, 0, first.stderr + first.stdout);
  t.true(recap(first).web1!.changed > 0);
  t.is(readFileSync(join(target, 'hello.conf'), 'utf8'), '# Managed by provision (role hello): changes made here are overwritten.\nhost=web1\nmessage=Hello from provision\n');
  t.is(readFileSync(join(target, 'changes.log'), 'utf8').trim().split('\n').length, 1, 'the handler ran once');

  const second = await run();
  t.is(second.code, 0, second.stderr);
  t.like(recap(second).web1, {changed: 0, failed: 0});
  const before = fingerprint(target);

  const check = await run('--check', '-e', 'hello_message=Bonjour');
  t.is(check.code, 0, check.stderr);
  t.true(recap(check).web1!.changed > 0, 'the new message is reported as a change');
  t.true(jsonEvents(check.stdout).some((e) => e.type === 'result' && e.task === 'hello.conf' && e.status === 'changed'), check.stdout);
  t.deepEqual(fingerprint(target), before, '--check wrote nothing');

  await typos(t, dir, run, target);
}

/** One edit of a scaffolded file: `from` (which must be there) replaced by `to`. */
interface Typo {
  readonly what: string;
  readonly file: string;
  readonly from: string;
  readonly to: string;
  /** The error line(s) expected on stderr. */
  readonly error: RegExp;
  readonly args?: readonly string[];
}

const typos_: readonly Typo[] = [
  // Computed arguments: TypeScript does not check excess keys of an arrow's object literal; provision
  // computes them before the run from what it knows (variables) and checks them against the schema.
  {what: 'an argument key', file: 'roles/hello/index.ts', from: "state: 'directory', mode: '0755'", to: "state: 'directory', mdoe: '0755'", error: /roles\/hello\/index\.ts:23: task 'site directory': unknown argument 'mdoe' \(did you mean 'mode'\?\) \(host web1\)/},
  {what: 'an enum value', file: 'roles/hello/index.ts', from: "state: 'directory'", to: "state: 'dirctory'", error: /roles\/hello\/index\.ts:23:\d+: TS2345: .*'"dirctory"' is not assignable/},
  {what: 'a task option', file: 'roles/hello/index.ts', from: "{name: 'hello.conf', notify:", to: "{name: 'hello.conf', notfiy:", error: /roles\/hello\/index\.ts:25:\d+: TS2561?: .*'notfiy'/},
  {what: 'a handler name', file: 'roles/hello/index.ts', from: "notify: 'hello.conf changed'", to: "notify: 'hello.conf chnaged'", error: /roles\/hello\/index\.ts:25: task 'hello\.conf': notify: no handler named 'hello\.conf chnaged' in play 'hello on every host' \(did you mean 'hello\.conf changed'\?\)/},
  {what: 'a template variable', file: 'roles/hello/templates/hello.conf.mustache', from: 'message={{hello_message}}', to: 'message={{hello_mesage}}', error: /roles\/hello\/index\.ts:25: task 'hello\.conf': roles\/hello\/templates\/hello\.conf\.mustache:3: variable 'hello_mesage' is not defined/},
  {what: 'a syntax error', file: 'playbooks/site.ts', from: "roles: ['hello']},", to: "roles: ['hello'},", error: /playbooks\/site\.ts:1[0-9]: Expected "\]" but found "\}"/},
  {what: 'a type error', file: 'playbooks/site.ts', from: "hosts: 'all'", to: 'hosts: 1', error: /playbooks\/site\.ts:1[0-9]:\d+: TS2322: /},
  // JavaScript users and casts: the same mistakes caught at run time, without the type check.
  {what: 'an argument key, --no-typecheck', file: 'playbooks/site.ts', from: "roles: ['hello']},", to: "roles: ['hello'], tasks: [file({pth: '/tmp/x', state: 'directory'} as never)]},", error: /playbooks\/site\.ts:1[0-9]: task 'file': unknown argument 'pth' \(did you mean 'path'\?\)/, args: ['--no-typecheck']},
  {what: 'an enum value, --no-typecheck', file: 'playbooks/site.ts', from: "roles: ['hello']},", to: "roles: ['hello'], tasks: [file({path: '/tmp/x', state: 'tuoch'} as never)]},", error: /playbooks\/site\.ts:1[0-9]: task 'file': state: expected one of 'file', 'directory', 'link', 'absent', 'touch', got 'tuoch'/, args: ['--no-typecheck']},
  {what: 'a task option, --no-typecheck', file: 'playbooks/site.ts', from: "roles: ['hello']},", to: "roles: ['hello'], tasks: [file({path: '/tmp/x', state: 'directory'}, {notfiy: 'x'} as never)]},", error: /playbooks\/site\.ts:1[0-9]: task 'file \/tmp\/x \(directory\)': unknown task option 'notfiy' \(did you mean 'notify'\?\)/, args: ['--no-typecheck']},
];

/**
 * Each typo is refused before any host is touched: exit 4, one line naming the file and line, and the
 * target is byte for byte what it was. The file is restored after each.
 */
async function typos(t: ExecutionContext, dir: string, run: (...args: string[]) => Promise<Run>, target: string): Promise<void> {
  const before = fingerprint(target);
  for (const typo of typos_) {
    const path = join(dir, typo.file);
    const original = readFileSync(path, 'utf8');
    t.true(original.includes(typo.from), `${typo.file} holds ${typo.from}`);
    let text = original.replace(typo.from, typo.to);
    if (typo.to.includes('file({') && !text.includes('import {definePlaybook, file}')) text = text.replace('import {definePlaybook}', 'import {definePlaybook, file}');
    writeFileSync(path, text);
    try {
      const r = await run(...(typo.args ?? []));
      t.is(r.code, 4, `${typo.what}: exit 4\n${r.stderr}${r.stdout}`);
      t.regex(r.stderr, typo.error, typo.what);
      t.notRegex(r.stderr, /TypeError|    at /, `${typo.what}: no JavaScript error or stack`);
      t.is(r.stdout, '', `${typo.what}: no run started`);
    } finally {
      writeFileSync(path, original);
    }
    t.deepEqual(fingerprint(target), before, `${typo.what}: nothing touched`);
  }
  const check = await npx(dir, 'provision', 'check', 'site');
  t.is(check.code, 0, check.stderr);
  t.regex(check.stdout, /playbooks\/site\.ts: ok/);
}

test.serial('a "module" project: npm install, provision init, tsc, converge, idempotent, --check', async (t) => {
  await ownProject(t, 'module');
  const dir = join(tmp, 'module');

  // The declarations type the user's code (no `any` slipped in): wrong arguments are errors in the user's file.
  writeFileSync(join(dir, 'playbooks', 'typed.ts'), `import {definePlaybook, file} from 'provision';
import {nginx} from 'provision/roles';
export default definePlaybook({name: 'typed', plays: [{name: 'p', hosts: 'all', roles: [nginx({nginx_site_root: 1})], tasks: [file({path: 2})]}]});
`);
  const typed = await npx(dir, 'tsc', '--noEmit');
  t.is(typed.code, 2);
  t.deepEqual(typed.stdout.trim().split('\n').map((l) => l.replace(/\(.*/, '')), ['playbooks/typed.ts', 'playbooks/typed.ts'], typed.stdout);
  rmSync(join(dir, 'playbooks', 'typed.ts'));

  // Source maps: where a task was written is the user's file and line. A shipped role's folder is the
  // installed package's.
  writeFileSync(join(dir, 'playbooks', 'where.ts'), `${[
    "import {definePlaybook, file} from 'provision';",
    "import {nginx} from 'provision/roles';",
    ...Array.from({length: 9}, (_, i) => `// line ${i + 3}`),
    "const task = file({path: '/nonexistent', state: 'absent'});",
    "const site = nginx({nginx_site_root: '/srv/x'});",
    'const name = `${task.source?.file}:${task.source?.line} ${site.dir} ${site.defaults?.nginx_site_root} ${site.defaults?.nginx_listen_port}`;',
    "export default definePlaybook({name, plays: [{name: 'p', hosts: 'nobody', gatherFacts: false, tasks: [task]}]});",
  ].join('\n')}\n`);
  const where = await npx(dir, 'provision', 'run', 'playbooks/where.ts', '-i', join(dir, 'inventory', 'inventory.yml'), '--json');
  t.is(where.code, 0, where.stderr);
  const nginxDir = join(modules, 'provision', 'roles', 'nginx');
  t.is(jsonEvents(where.stdout)[0]?.playbook, `${join(dir, 'playbooks', 'where.ts')}:12 ${nginxDir} /srv/x 80`);
  t.true(existsSync(join(nginxDir, 'templates', 'site.conf.mustache')));

  // The reference site on the shipped roles type-checks as scaffolded.
  const site = await npx(dir, 'provision', 'init', '--example', 'site', 'site');
  t.is(site.code, 0, site.stderr);
  const siteTsc = await npx(join(dir, 'site'), 'tsc', '--noEmit');
  t.is(siteTsc.code, 0, siteTsc.stdout + siteTsc.stderr);
});

test.serial('a "commonjs" project: the same', async (t) => {
  await ownProject(t, 'commonjs');
});

test('provision init keeps a file that exists, byte for byte, and says what package.json lacks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-init-'));
  const mine = '// my own site, not to be touched\nexport default 1;\n';
  mkdirSync(join(dir, 'playbooks'));
  writeFileSync(join(dir, 'playbooks', 'site.ts'), mine);
  writeFileSync(join(dir, 'package.json'), '{"name": "mine", "dependencies": {"typescript": "^5.0.0"}}\n');
  const r = await runCli(['init', dir]);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(dir, 'playbooks', 'site.ts'), 'utf8'), mine);
  t.regex(r.stdout, /kept +playbooks\/site\.ts/);
  t.regex(r.stdout, /kept +package\.json/);
  t.regex(r.stdout, /created +roles\/hello\/index\.ts/);
  t.regex(r.stdout, /hint: package\.json kept: add dependencies "provision": "\^0\.1\.0" and scripts "check": "provision check site", "run": "provision run site"/);
  const again = await runCli(['init', dir]);
  t.is(again.code, 0);
  t.notRegex(again.stdout, /created/, 'a second init creates nothing');
  rmSync(dir, {recursive: true, force: true});
});
