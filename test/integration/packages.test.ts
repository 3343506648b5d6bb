/**
 * git, pip and npm through the real CLI over a real OpenSSH sshd on loopback, with the host's own git,
 * python3 (venv) and npm, and no network: a bare repository, two wheels and an npm tarball made here.
 * First run changes each, the second changes nothing; --check with a new desired state says what
 * would change and changes nothing on disk; a real run then makes it, and the run after is 0 changed.
 */
import test from 'ava';
import {execFileSync} from 'node:child_process';
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {startSshd, writeLoopbackInventory, type Sshd} from '../helpers/sshd.ts';
import {commandWorks, jsonEvents, projectRoot as root, runCli} from '../helpers/cli.ts';

const playbook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'packages.ts');

let sshd: Sshd;
test.before(async () => {
  // The host is this machine: its tools are needed. Missing ones fail the suite (never a silent skip).
  const missing = [['git', ['--version']], ['python3', ['-m', 'venv', '--help']], ['npm', ['--version']]].filter(([f, a]) => !commandWorks(f as string, a as string[])).map(([f]) => f);
  if (missing.length > 0) throw new Error(`test/integration/packages.test.ts needs ${missing.join(', ')} on this machine`);
  sshd = await startSshd();
});
test.after.always(async () => {
  await sshd?.stop();
});

const sh = (cwd: string, file: string, ...args: string[]): string =>
  execFileSync(file, args, {cwd, stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.com', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.com'}}).toString().trim();

/** `origin.git` (bare) with an annotated tag v1 on the first commit and main one commit ahead. */
function makeRepo(dir: string): {repo: string; v1: string; main: string} {
  const work = join(dir, 'work');
  mkdirSync(work);
  sh(work, 'git', 'init', '-q', '-b', 'main');
  writeFileSync(join(work, 'README'), 'one\n');
  sh(work, 'git', 'add', 'README');
  sh(work, 'git', 'commit', '-q', '-m', 'one');
  sh(work, 'git', 'tag', '-a', 'v1', '-m', 'v1');
  const v1 = sh(work, 'git', 'rev-parse', 'HEAD');
  writeFileSync(join(work, 'README'), 'two\n');
  sh(work, 'git', 'commit', '-q', '-am', 'two');
  const main = sh(work, 'git', 'rev-parse', 'HEAD');
  sh(dir, 'git', 'clone', '-q', '--bare', 'work', 'origin.git');
  return {repo: join(dir, 'origin.git'), v1, main};
}

/** Wheels of `provision-tiny` 1.0 and 2.0 in `dir/wheels`: a wheel is a zip with its dist-info (METADATA, WHEEL, RECORD). */
function makeWheels(dir: string): string {
  const wheels = join(dir, 'wheels');
  mkdirSync(wheels);
  const script = `
import base64, hashlib, sys, zipfile
out = sys.argv[1]
for version in ('1.0', '2.0'):
    info = f'provision_tiny-{version}.dist-info'
    files = {
        'provision_tiny/__init__.py': f'VERSION = {version!r}\\n',
        f'{info}/METADATA': f'Metadata-Version: 2.1\\nName: provision-tiny\\nVersion: {version}\\n',
        f'{info}/WHEEL': 'Wheel-Version: 1.0\\nGenerator: provision-test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n',
    }
    record = ''.join(f'{n},sha256={base64.urlsafe_b64encode(hashlib.sha256(c.encode()).digest()).rstrip(b"=").decode()},{len(c.encode())}\\n' for n, c in files.items())
    files[f'{info}/RECORD'] = record + f'{info}/RECORD,,\\n'
    with zipfile.ZipFile(f'{out}/provision_tiny-{version}-py3-none-any.whl', 'w') as z:
        for n, c in files.items():
            z.writestr(n, c)
`;
  sh(dir, 'python3', '-c', script, wheels);
  return wheels;
}

/** `npm pack` of a tiny package: the tarball's path. */
function makeTarball(dir: string): string {
  const pkg = join(dir, 'tiny');
  mkdirSync(pkg);
  writeFileSync(join(pkg, 'package.json'), JSON.stringify({name: 'provision-tiny', version: '1.0.0', main: 'index.js'}));
  writeFileSync(join(pkg, 'index.js'), "module.exports = 'tiny';\n");
  sh(pkg, 'npm', 'pack', '--pack-destination', dir, '--silent', '--offline');
  const tgz = join(dir, 'provision-tiny-1.0.0.tgz');
  if (!existsSync(tgz)) throw new Error('npm pack made no tarball');
  return tgz;
}

interface Result {readonly task: string; readonly status: string; readonly msg: string}

test.serial('git, pip, npm over SSH: converge, then 0 changed; --check changes nothing; then the new state, then 0 changed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-packages-'));
  t.teardown(() => rmSync(dir, {recursive: true, force: true}));
  const {repo, v1, main} = makeRepo(dir);
  const wheels = makeWheels(dir);
  const tgz = makeTarball(dir);
  const host = join(dir, 'p1');
  mkdirSync(host);
  const desired = {git_repo: repo, git_version: 'v1', pip_requirement: 'Provision_Tiny==1.0', wheels, npm_spec: `provision-tiny@file:${tgz}`, npm_state: 'present'};
  const run = async (vars: Record<string, string>, ...flags: string[]): Promise<Result[]> => {
    const inv = writeLoopbackInventory(sshd, dir, {p1: {}}, vars);
    const r = await runCli(['run', playbook, '-i', inv, '--json', '--no-typecheck', ...flags]);
    t.is(r.code, 0, r.stderr + r.stdout);
    const results = jsonEvents(r.stdout).filter((e) => e.type === 'result');
    t.log(`${flags.join(' ') || 'run'}: ${(r.ms / 1000).toFixed(1)} s (${results.map((e) => `${String(e.task)} ${(Number(e.duration_ms) / 1000).toFixed(1)} s`).join(', ')})`);
    return results.map((e) => ({task: String(e.task), status: String(e.status), msg: String(e.msg)}));
  };
  const head = (): string => sh(join(host, 'checkout'), 'git', 'rev-parse', 'HEAD');
  const tinyVersion = (): string => sh(host, join(host, 'venv', 'bin', 'python'), '-c', 'import provision_tiny; print(provision_tiny.VERSION)');
  const npmInstalled = (): boolean => existsSync(join(host, 'app', 'node_modules', 'provision-tiny', 'package.json'));

  // 1. From nothing: clone, venv + install, install.
  const first = await run(desired);
  t.deepEqual(first.map((r) => [r.task, r.status]), [['git', 'changed'], ['pip', 'changed'], ['npm', 'changed']], JSON.stringify(first));
  t.is(first[0]?.msg, `clone ${repo} to ${join(host, 'checkout')} at ${v1.slice(0, 12)} (v1)`);
  t.is(first[1]?.msg, `create virtualenv ${join(host, 'venv')}; install Provision_Tiny==1.0`);
  t.is(first[2]?.msg, `install provision-tiny@file:${tgz} in ${join(host, 'app')}`);
  t.is(head(), v1);
  t.is(tinyVersion(), '1.0');
  t.true(npmInstalled());

  // 2. Again: nothing to do.
  const second = await run(desired);
  t.deepEqual(second.map((r) => [r.task, r.status, r.msg]), [
    ['git', 'ok', `already at ${v1.slice(0, 12)} (v1)`],
    ['pip', 'ok', 'already Provision_Tiny==1.0'],
    ['npm', 'ok', 'already provision-tiny@1.0.0'],
  ]);

  // 3. A new desired state under --check: each would change; nothing on disk does.
  const next = {...desired, git_version: 'main', pip_requirement: 'provision-tiny==2.0', npm_state: 'absent'};
  const check = await run(next, '--check');
  t.deepEqual(check.map((r) => [r.task, r.status, r.msg]), [
    ['git', 'changed', `would update ${join(host, 'checkout')} ${v1.slice(0, 12)} → ${main.slice(0, 12)} (main)`],
    ['pip', 'changed', `would install provision-tiny 1.0 → 2.0 in ${join(host, 'venv')}`],
    ['npm', 'changed', `would uninstall provision-tiny@1.0.0 from ${join(host, 'app')}`],
  ]);
  t.is(head(), v1, 'git: HEAD unchanged');
  t.is(tinyVersion(), '1.0', 'pip: still 1.0');
  t.true(npmInstalled(), 'npm: still installed');

  // 4. The new state for real, then 0 changed.
  const third = await run(next);
  t.deepEqual(third.map((r) => [r.task, r.status]), [['git', 'changed'], ['pip', 'changed'], ['npm', 'changed']], JSON.stringify(third));
  t.is(head(), main);
  t.is(sh(join(host, 'checkout'), 'git', 'rev-parse', '--abbrev-ref', 'HEAD'), 'main');
  t.is(tinyVersion(), '2.0');
  t.false(npmInstalled());
  t.false(JSON.stringify(JSON.parse(readFileSync(join(host, 'app', 'package.json'), 'utf8'))).includes('provision-tiny'), 'npm: removed from package.json too');
  const fourth = await run(next);
  t.deepEqual(fourth.map((r) => r.status), ['ok', 'ok', 'ok'], JSON.stringify(fourth));
});
