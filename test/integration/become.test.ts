/**
 * Become with a password over a real loopback sshd, real sudo and su: a login user whose sudoers entry
 * has no NOPASSWD. The right password (from a vault, or -K on stdin) converges and then changes
 * nothing; a wrong one fails each host with one line, fast; while a task runs, no process on the host
 * shows the password in its command line or environment. su to another user with that user's
 * password. The tests create two users and a sudoers file, and remove them.
 */
import test from 'ava';
import {execFileSync, spawn} from 'node:child_process';
import {chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {encrypt} from '../../src/core/vault.ts';
import {startSshd, writeLoopbackInventory, type Sshd} from '../helpers/sshd.ts';
import {bin, commandWorks, jsonEvents, projectRoot as root, type Cli} from '../helpers/cli.ts';

const playbook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'become.ts');

const missing = process.getuid?.() !== 0
  ? 'not root (the test creates users and a sudoers file)'
  : !commandWorks('sudo', ['-V'])
    ? 'no sudo here (apt-get install sudo)'
    : !commandWorks('sh', ['-c', 'command -v useradd && command -v chpasswd && command -v su'])
      ? 'no useradd, chpasswd or su here'
      : undefined;
const serial = missing ? test.serial.skip : test.serial;
if (missing) test.skip(`become over sshd: ${missing}`, () => undefined);

const tag = `${process.pid % 100000}`;
const login = `pvbl${tag}`;
const target = `pvbt${tag}`;
const sudoers = `/etc/sudoers.d/provision-test-${login}`;
/** Passwords with what a shell or YAML would trip on. */
const LOGIN_PW = `l0gin pw 'q' "dq" $HOME \\ ${tag}`;
const TARGET_PW = `t4rget pw; $(id) ${tag}`;

let sshd: Sshd;
test.before(async () => {
  if (missing) return;
  sshd = await startSshd();
  // sshd reads authorized_keys as the user logging in: let the test users reach the throwaway key file.
  chmodSync(sshd.tmp, 0o711);
  chmodSync(join(sshd.tmp, 'authorized_keys'), 0o644);
  for (const [user, pw] of [[login, LOGIN_PW], [target, TARGET_PW]] as const) {
    execFileSync('useradd', ['--create-home', '--shell', '/bin/bash', user]);
    execFileSync('chpasswd', [], {input: `${user}:${pw}\n`});
  }
  writeFileSync(sudoers, `${login} ALL=(ALL:ALL) ALL\n`, {mode: 0o440});
});
test.after.always(async () => {
  if (missing) return;
  rmSync(sudoers, {force: true});
  for (const user of [login, target]) {
    try {
      execFileSync('userdel', ['--force', '--remove', user], {stdio: 'ignore'});
    } catch {
      // already gone
    }
  }
  await sshd?.stop();
});

/** The CLI with `input` on its stdin (not a terminal: -K reads its first line). */
function cli(args: readonly string[], input = '', env: Record<string, string> = {}): Promise<Cli> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {cwd: root, env: {...process.env, NO_COLOR: '1', ...env}});
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr, ms: Date.now() - t0}));
    child.stdin.end(input);
  });
}

/** A fresh folder for one test's inventory and hosts, which the test users may traverse. */
function workDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `prov-become-${name}-`));
  chmodSync(dir, 0o755);
  return dir;
}

/** Every process's command line and environment on this machine (the host), as text. */
function processTexts(): string[] {
  const out: string[] = [execFileSync('ps', ['-eo', 'args'], {encoding: 'utf8'})];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    for (const what of ['cmdline', 'environ']) {
      try {
        out.push(readFileSync(`/proc/${pid}/${what}`, 'latin1'));
      } catch {
        // gone already
      }
    }
  }
  return out;
}

type ResultEvent = {type: string; host: string; task: string; status: string; msg: string};
const results = (out: string): ResultEvent[] => jsonEvents(out).filter((e) => e.type === 'result') as unknown as ResultEvent[];

serial('sudo with a password from a vault converges, then -K changes nothing; no process shows the password while a task runs', async (t) => {
  const dir = workDir('sudo');
  const inv = writeLoopbackInventory(sshd, dir, {t1: {pause: 1}, t2: {}}, {ansible_user: login, ansible_become: true});
  mkdirSync(join(dir, 'group_vars', 'all'), {recursive: true});
  writeFileSync(join(dir, 'group_vars', 'all', 'vault.yml'), encrypt(`ansible_become_password: ${JSON.stringify(LOGIN_PW)}\n`, 'vault-pass'));
  const passFile = join(dir, 'vault-pass');
  writeFileSync(passFile, 'vault-pass\n', {mode: 0o600});
  const env = {PROVISION_VAULT_PASSWORD_FILE: passFile};

  // Watch the host's processes for as long as the run goes (t1's last task sleeps a second).
  let watching = true;
  let seen = 0;
  const leaks: string[] = [];
  const watcher = (async () => {
    while (watching) {
      for (const text of processTexts()) {
        if (text.includes(LOGIN_PW)) leaks.push(text.slice(0, 300));
        if (text.includes('sudo -S -k')) seen++;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const first = await cli(['run', playbook, '-i', inv, '--json'], '', env);
  watching = false;
  await watcher;
  t.is(first.code, 0, first.stderr + first.stdout);
  t.deepEqual(leaks, [], 'no command line or environment on the host held the password');
  t.true(seen > 0, 'the watcher saw the sudo commands run');
  for (const h of ['t1', 't2']) {
    t.is(readFileSync(join(dir, h, 'whoami'), 'utf8'), 'root\n', `${h}: the shell ran as root`);
    t.is(readFileSync(join(dir, h, 'app.conf'), 'utf8'), 'managed by provision\n');
    t.is(statSync(join(dir, h, 'app.conf')).uid, 0);
  }
  t.false(first.stdout.includes(LOGIN_PW) || first.stderr.includes(LOGIN_PW), 'nor the events');
  t.false(readFileSync(join(dir, 'audit.log'), 'utf8').includes(LOGIN_PW), 'nor the audit log');
  t.true(existsSync(join(dir, 'provision.lock.steps')), 'the run lock was taken as root, in the folder only root can write');

  // -K, the password on stdin; the vault's is gone.
  rmSync(join(dir, 'group_vars'), {recursive: true});
  const second = await cli(['run', playbook, '-i', inv, '--json', '-K'], `${LOGIN_PW}\n`);
  t.is(second.code, 0, second.stderr + second.stdout);
  const recap = jsonEvents(second.stdout).at(-1) as {hosts: Record<string, {changed: number}>};
  t.is(recap.hosts.t1?.changed, 0);
  t.is(recap.hosts.t2?.changed, 0);
  t.false(second.stdout.includes(LOGIN_PW) || second.stderr.includes(LOGIN_PW));

  const ping = await cli(['ping', '-i', inv, '-K'], `${LOGIN_PW}\n`);
  t.is(ping.code, 0, ping.stdout + ping.stderr);
  t.regex(ping.stdout, /t1 \| SUCCESS => pong \(sudo to root works\)/);
  const exec = await cli(['exec', 'targets', '-i', inv, '-b', '-K', '--', 'id', '-un'], `${LOGIN_PW}\n`);
  t.is(exec.code, 0, exec.stdout + exec.stderr);
  t.regex(exec.stdout, /t2 \| CHANGED \| rc=0 >>\nroot\n/);
});

serial('a wrong sudo password: each host fails once, in one line, fast (one attempt); nothing changes', async (t) => {
  const dir = workDir('wrong');
  const inv = writeLoopbackInventory(sshd, dir, {t1: {}, t2: {}}, {ansible_user: login, ansible_become: true});
  const r = await cli(['run', playbook, '-i', inv, '--json', '-K'], 'not the password\n');
  t.is(r.code, 2, r.stderr + r.stdout);
  for (const h of ['t1', 't2']) {
    const mine = results(r.stdout).filter((e) => e.host === h);
    t.is(mine.length, 1, JSON.stringify(mine));
    t.like(mine[0], {status: 'failed', msg: 'become failed: incorrect sudo password'});
    t.false(existsSync(join(dir, h)), `${h}: nothing was made`);
  }
  t.true(r.ms < 15_000, `took ${r.ms} ms`);
  t.false(r.stdout.includes('not the password'));

  const ping = await cli(['ping', '-i', inv, '-K'], 'not the password\n');
  t.is(ping.code, 2);
  t.regex(ping.stdout, /t1 \| FAILED => become failed: incorrect sudo password/);
});

serial('su to another user with that user\'s password converges; a wrong one fails each host in one line', async (t) => {
  const dir = workDir('su');
  const hostsDir = join(dir, 'hosts');
  mkdirSync(hostsDir);
  const uid = Number(execFileSync('id', ['-u', target], {encoding: 'utf8'}).trim());
  chownSync(hostsDir, uid, uid);
  const vars = {
    ansible_user: login, ansible_become: true, ansible_become_method: 'su', ansible_become_user: target,
    // su cannot reach root with this password: the control session runs as the login user, the lock in /tmp.
    provision_lock: false, provision_audit_log: false,
  };
  const inv = writeLoopbackInventory(sshd, dir, {t1: {root: join(hostsDir, 't1')}}, {...vars, ansible_become_password: TARGET_PW});
  const r = await cli(['run', playbook, '-i', inv, '--json'], '');
  t.is(r.code, 0, r.stderr + r.stdout);
  t.is(readFileSync(join(hostsDir, 't1', 'whoami'), 'utf8'), `${target}\n`);
  t.is(statSync(join(hostsDir, 't1', 'app.conf')).uid, uid);
  t.false(r.stdout.includes(TARGET_PW) || r.stderr.includes(TARGET_PW));

  const wrongInv = writeLoopbackInventory(sshd, dir, {t1: {root: join(hostsDir, 'w1')}, t2: {root: join(hostsDir, 'w2')}}, {...vars, ansible_become_password: 'wrong'});
  const wrong = await cli(['run', playbook, '-i', wrongInv, '--json'], '');
  t.is(wrong.code, 2, wrong.stderr + wrong.stdout);
  for (const h of ['t1', 't2']) {
    const mine = results(wrong.stdout).filter((e) => e.host === h);
    t.is(mine.length, 1, JSON.stringify(mine));
    t.like(mine[0], {status: 'failed', msg: 'become failed: incorrect su password'});
  }
});
