/**
 * Become with a password (src/core/become.ts): the framing as a table (commands, stdin, how failures
 * read), then whole runs on the fake transport with a fake `sudo` and `su` (test-owned scripts on the
 * PATH, run by the local shell): the password is on stdin only, never in a recorded command line, an
 * event or the audit log; the commands' own stdin (probe batches, file writes) arrives intact whether
 * sudo reads the password or not; a wrong password is one clear failure per host.
 */
import test from 'ava';
import {chmodSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import {copy, file} from '../../src/modules/files.ts';
import {command, shell} from '../../src/modules/command.ts';
import {BecomeError, becomeVars, frame} from '../../src/core/become.ts';
import {secret, Secret, Secrets} from '../../src/core/secret.ts';
import {localExec, type Handler} from '../../src/transport/fake.ts';
import {becomeInventory} from '../../src/cli/become.ts';
import type {Inventory} from '../../src/inventory/index.ts';
import type {Play} from '../../src/core/types.ts';
import {runFake, type FakeRun} from '../helpers/engine.ts';

const tmp = (p: string): string => mkdtempSync(join(tmpdir(), `prov-become-${p}-`));
const one = (tasks: Play['tasks']) => definePlaybook({name: 't', plays: [{name: 'p', hosts: 'all_hosts', gatherFacts: false, tasks}]});
const PW = 'pw with spaces, "quotes" & $dollars';
const isRoot = process.getuid?.() === 0;

// ---------------------------------------------------------------------------------------------------
// The framing, pure

test('becomeVars: method and password from host variables, or why not', (t) => {
  const table: Array<[Record<string, unknown>, unknown]> = [
    [{}, {method: 'sudo'}],
    [{ansible_become_method: 'su'}, {method: 'su'}],
    [{ansible_become_password: ''}, {method: 'sudo'}],
    [{ansible_become_method: 'doas'}, {error: 'ansible_become_method "doas" is not supported (sudo or su)'}],
    [{ansible_become_password: 42}, {error: 'ansible_become_password must be a string'}],
    [{ansible_become_pass: 'a\nb'}, {error: 'ansible_become_pass holds a line break (sudo reads one line)'}],
  ];
  for (const [vars, want] of table) t.deepEqual(becomeVars(vars), want, JSON.stringify(vars));
  for (const vars of [{ansible_become_password: 's3'}, {ansible_become_pass: 's3'}, {ansible_become_password: secret('s3')}]) {
    const b = becomeVars(vars);
    t.true('password' in b && b.password instanceof Secret && b.password.reveal() === 's3', JSON.stringify(Object.keys(vars)));
  }
});

test('frame: the password is on stdin only, ahead of the fillers and the marker; the command line holds none', (t) => {
  const sudo = frame('cat', {user: 'root', password: secret(PW)});
  t.false(sudo.command.includes(PW));
  t.regex(sudo.command, /exec sudo -S -k -p '\[sudo via provision, key=[0-9a-f]{16}\] password:' -H -u root -- sh -c /);
  const lines = sudo.stdin.reveal().split('\n');
  t.is(lines[0], PW);
  t.is(lines.length, 5, 'password, two fillers, marker, then the data');
  t.regex(lines[3] ?? '', /^__provision_become_[0-9a-f]{16}__$/);
  t.is(`${sudo.stdin}`, '***', 'the framing prints as a secret');
  const checked = frame('cat', {user: 'root', password: secret(PW)}, {check: true});
  t.deepEqual(checked.stdin.reveal().split('\n').slice(0, 2), [PW, PW], 'check: once for the trial, once for the command');
  t.regex(checked.command, /printf '%s\\n' "\$__p" \| sudo -S -k/);
  const su = frame('cat', {user: 'app', method: 'su', password: secret(PW)});
  t.regex(su.command, /exec su -s \/bin\/sh -c .* app$/s);
  t.false(su.command.includes(PW));
  t.throws(() => frame('cat', {user: 'root', password: secret('a\nb')}), {instanceOf: BecomeError, message: /line break/});
});

test('frame: how a result reads (success stripped of prompts and markers; failures in one line; not tried: as is)', (t) => {
  const f = frame('true', {user: 'root', password: secret(PW)});
  const mark = /__provision_become_[0-9a-f]+__/.exec(f.command)![0];
  const prompt = /-p '([^']*)'/.exec(f.command)![1]!;
  const r = (stderr: string, code = 1) => ({code, stdout: '', stderr});
  t.deepEqual(f.outcome(r(`lock note\n${mark} begin\n${prompt}${mark} ok\nreal error\n`, 3)), r('lock note\nreal error\n', 3));
  t.is(f.failure(r(`${mark} begin\n${prompt}Sorry, try again.\n${prompt}Sorry, try again.\n${prompt}sudo: 3 incorrect password attempts\n`)), 'incorrect sudo password');
  t.is(f.failure(r(`${mark} begin\n${prompt}Entschuldigung, versuchen Sie es noch einmal.\n${prompt}\nsudo: …\n`)), 'incorrect sudo password', 'a prompt seen twice, whatever the language');
  t.is(f.failure(r(`${mark} begin\n${prompt}deploy is not in the sudoers file.\n`)), 'deploy is not in the sudoers file.');
  t.is(f.failure(r(`${mark} begin\nsh: 1: sudo: not found\n`, 127)), 'sh: 1: sudo: not found');
  t.is(f.failure(r('provision: this run no longer holds the run lock\n', 75)), undefined, 'never tried: not a become failure');
  t.deepEqual(f.outcome(r('x\n', 75)), r('x\n', 75));
  t.throws(() => f.outcome(r(`${mark} begin\n${prompt}${prompt}`)), {instanceOf: BecomeError, message: 'become failed: incorrect sudo password'});
  const su = frame('true', {user: 'app', method: 'su', password: secret(PW)});
  const suMark = /__provision_become_[0-9a-f]+__/.exec(su.command)![0];
  t.is(su.failure(r(`${suMark} begin\nPassword: su: Authentication failure\n`)), 'incorrect su password');
  const suNone = frame('true', {user: 'app', method: 'su'});
  const noneMark = /__provision_become_[0-9a-f]+__/.exec(suNone.command)![0];
  t.regex(suNone.failure(r(`${noneMark} begin\nPassword: su: Authentication failure\n`)) ?? '', /su asks for a password: set ansible_become_password, or use -K/);
});

// ---------------------------------------------------------------------------------------------------
// A fake sudo and su (this test's own scripts), then whole runs

/**
 * A directory with `sudo` and `su` as the test wants them: `password` (read from stdin a line at a
 * time, as the real ones; sudo tries 3 times, su once), `nopasswd` (reads nothing, as NOPASSWD or a
 * root login), or `refuse` (reads the password, then: not in the sudoers file). They run the command
 * as this user; `calls` records each call's argv, one per line.
 */
function fakeBin(mode: {password: string} | 'nopasswd' | 'refuse'): {dir: string; calls: () => string} {
  const dir = tmp('bin');
  const log = join(dir, 'calls');
  writeFileSync(log, '');
  const expected = typeof mode === 'string' ? '' : mode.password;
  const check = mode === 'nopasswd' ? 'exec "$@"'
    : mode === 'refuse' ? `IFS= read -r pw; echo 'deploy is not in the sudoers file.' >&2; exit 1`
      : `IFS= read -r pw || { echo; echo "$me: no password was provided" >&2; exit 1; }; [ "$pw" = "$EXPECTED" ] && exec "$@"`;
  writeFileSync(join(dir, 'expected'), expected);
  const head = `#!/bin/sh\nme=\${0##*/}; printf '%s\\n' "$*" >> '${log}'; EXPECTED=$(cat '${join(dir, 'expected')}')\n`;
  writeFileSync(join(dir, 'sudo'), `${head}prompt=; while [ $# -gt 0 ]; do case $1 in -p) prompt=$2; shift 2;; --) shift; break;; *) shift;; esac; done\n` +
    `n=0; while [ $n -lt 3 ]; do printf '%s' "$prompt" >&2; ${check}; echo 'Sorry, try again.' >&2; n=$((n+1)); done\necho 'sudo: 3 incorrect password attempts' >&2; exit 1\n`);
  writeFileSync(join(dir, 'su'), `${head}[ "$1" = -s ] && shift 2; [ "$1" = -c ] || exit 2; c=$2\nset -- /bin/sh -c "$c"\nprintf 'Password: ' >&2; ${check}; echo 'su: Authentication failure' >&2; exit 1\n`);
  chmodSync(join(dir, 'sudo'), 0o755);
  chmodSync(join(dir, 'su'), 0o755);
  return {dir, calls: () => readFileSync(log, 'utf8')};
}

/** Runs each command with the local shell, the fake sudo and su first on the PATH; records what the commands printed. */
function viaFakeBin(dir: string, printed: string[] = []): Handler {
  return async (command, stdin) => {
    const r = await localExec(`PATH='${dir}':$PATH\n${command}`, stdin === undefined ? {} : {stdin});
    printed.push(r.stdout, r.stderr);
    return r;
  };
}

/** Everything the fake transports recorded (commands, and what they read on stdin), per host. */
function recorded(run: FakeRun): {commands: string[]; stdins: string[]} {
  const all = [...run.transports.values()].flatMap((t) => t.log);
  return {commands: all.map((r) => r.command), stdins: all.flatMap((r) => (r.stdin === undefined ? [] : [r.stdin]))};
}

/** The playbook of the runs below: a probe batch (sh -s), file writes (data on stdin), a command with its own stdin-free run, a shell. */
function tasks(root: string): Play['tasks'] {
  return [
    file({path: join(root, 'etc'), state: 'directory', mode: '0750'}, {become: true}),
    copy({dest: join(root, 'etc', 'app.conf'), content: 'line one\nline two\n'}, {become: true}),
    command({argv: ['touch', join(root, 'touched')], creates: join(root, 'touched')}, {become: true}),
    shell({script: 'set; echo shell-ran'}, {become: true, name: 'shell', register: 'sh'}),
  ];
}

for (const mode of ['password', 'nopasswd'] as const) {
  test(`a run with a become password (sudo ${mode === 'password' ? 'reads it' : 'needs none'}): stdin only, intact data, nothing in commands or events`, async (t) => {
    const root = tmp(`run-${mode}`);
    const bin = fakeBin(mode === 'password' ? {password: PW} : 'nopasswd');
    const printed: string[] = [];
    const r = await runFake(one(tasks(root)), {
      hostVars: {h1: {ansible_user: 'deploy', ansible_become_password: PW}},
      handler: viaFakeBin(bin.dir, printed),
    });
    t.deepEqual(r.results().map((e) => e.status), ['changed', 'changed', 'changed', 'changed'], JSON.stringify(r.results()));
    t.is(readFileSync(join(root, 'etc', 'app.conf'), 'utf8'), 'line one\nline two\n', 'the write step\'s data arrived whole, after the framing');
    const {commands, stdins} = recorded(r);
    t.true(commands.some((c) => c.includes('sudo -S -k')), 'escalated through sudo -S');
    t.false(commands.some((c) => c.includes(PW)), 'no command line holds the password');
    t.false(bin.calls().includes(PW), 'no argv of sudo holds it');
    const become = stdins.filter((s) => s.startsWith(`${PW}\n`));
    t.true(become.length >= 3, 'the probe batch and the steps got it on stdin');
    t.false(printed.some((p) => p.includes(PW)), 'no command printed it (`set` in the task shows no leftover variable)');
    t.false(JSON.stringify(r.events).includes(PW), 'no event holds it');
    t.true(r.secrets.mask(`x${PW}x`) === 'x***x', 'it joined the run\'s secrets');
    t.true(printed.some((p) => p.includes('shell-ran')));
  });
}

test('a wrong become password: one clear failure per host, the rest of the tasks not run, the data never read as a password', async (t) => {
  const root = tmp('wrong');
  const bin = fakeBin({password: 'the right one'});
  const r = await runFake(one(tasks(root)), {
    groups: {all_hosts: ['h1', 'h2']},
    hostVars: {h1: {ansible_user: 'deploy', ansible_become_password: PW}, h2: {ansible_user: 'deploy', ansible_become_password: PW}},
    handler: viaFakeBin(bin.dir),
  });
  for (const host of ['h1', 'h2']) {
    const results = r.results(host);
    t.is(results.length, 1, `${host}: one result`);
    t.like(results[0], {status: 'failed', msg: 'become failed: incorrect sudo password'});
  }
  t.deepEqual(r.summary.hosts.h1, {ok: 0, changed: 0, failed: 1, skipped: 0, unreachable: 0});
  t.false(JSON.stringify(r.events).includes(PW));
});

test('su: the target user\'s password the same way; a wrong one fails at once with one line', async (t) => {
  const root = tmp('su');
  const bin = fakeBin({password: PW});
  const vars = {ansible_user: 'deploy', ansible_become_method: 'su', ansible_become_user: 'app', ansible_become_password: PW};
  const r = await runFake(one(tasks(root)), {hostVars: {h1: vars}, handler: viaFakeBin(bin.dir)});
  t.deepEqual(r.results().map((e) => e.status), ['changed', 'changed', 'changed', 'changed'], JSON.stringify(r.results()));
  t.is(readFileSync(join(root, 'etc', 'app.conf'), 'utf8'), 'line one\nline two\n');
  const {commands} = recorded(r);
  t.true(commands.some((c) => /exec su -s \/bin\/sh -c .* app/s.test(c)));
  t.false(commands.some((c) => c.includes(PW)));
  t.false(bin.calls().includes(PW));

  const wrong = await runFake(one(tasks(tmp('su-wrong'))), {hostVars: {h1: {...vars, ansible_become_password: 'nope'}}, handler: viaFakeBin(bin.dir)});
  t.like(wrong.results()[0], {status: 'failed', msg: 'become failed: incorrect su password'});
  t.is(wrong.results().length, 1);
});

test('an unsupported ansible_become_method fails the host at its start, before any task', async (t) => {
  const r = await runFake(one(tasks(tmp('doas'))), {hostVars: {h1: {ansible_user: 'deploy', ansible_become_method: 'doas'}}});
  t.is(r.results().length, 1);
  t.like(r.results()[0], {status: 'failed', msg: 'become failed: ansible_become_method "doas" is not supported (sudo or su)'});
  t.is(r.transports.get('h1')?.execs.length, 0, 'nothing ran');
});

test('the control session\'s check: a wrong password fails after one try; sudo refusing otherwise leaves the login user, the framing read off', async (t) => {
  const run = async (bin: {dir: string}, password: string) => {
    const f = frame('echo as-root; cat', {user: 'root', password: secret(password)}, {check: true, orLoginUser: true});
    const r = await localExec(`PATH='${bin.dir}':$PATH\n${f.command}\n${f.skip}\necho as-login; cat`, {stdin: `${f.stdin.reveal()}DATA\n`});
    return {r, failure: f.failure(r)};
  };
  const right = await run(fakeBin({password: PW}), PW);
  t.like(right, {r: {code: 0, stdout: 'as-root\nDATA\n'}, failure: undefined});
  const wrong = fakeBin({password: 'the right one'});
  const w = await run(wrong, PW);
  t.like(w, {r: {code: 125, stdout: ''}, failure: 'incorrect sudo password'});
  t.is(wrong.calls().trim().split('\n').length, 1, 'sudo ran once: the trial, never the command');
  const refused = await run(fakeBin('refuse'), PW);
  t.like(refused, {r: {code: 0, stdout: 'as-login\nDATA\n'}, failure: undefined});
});

const asRoot = isRoot ? test : test.skip;
asRoot('the control session takes the framing (as root: reads it off, escalates not); no password line reaches the audit log (needs root: the fake runs it here)', async (t) => {
  const dir = tmp('audit');
  const audit = join(dir, 'audit.log');
  const bin = fakeBin({password: PW});
  const r = await runFake(one(tasks(join(dir, 'files'))), {
    hostVars: {h1: {ansible_user: 'deploy', ansible_become: true, ansible_become_password: PW, provision_audit_log: audit, provision_lock_file: join(dir, 'lock')}},
    handler: viaFakeBin(bin.dir),
  });
  t.deepEqual(r.results().map((e) => e.status), ['changed', 'changed', 'changed', 'changed'], JSON.stringify(r.results()));
  const started = r.transports.get('h1')?.log.find((c) => c.kind === 'start');
  t.truthy(started);
  t.false(started!.command.includes(PW));
  const log = readFileSync(audit, 'utf8');
  t.is(log.trim().split('\n').length, 4, log);
  t.false(log.includes(PW), 'the audit log never sees the password');
  t.false(log.includes('__provision_become_'), 'nor the framing');
});

test('-K: every host gets the password unless it sets its own; the inventory\'s become passwords join the secrets', (t) => {
  const vars: Record<string, Record<string, unknown>> = {a: {}, b: {ansible_become_password: 'own-b'}, c: {ansible_become_pass: 'own-c'}};
  const inv: Inventory = {
    source: '/x/hosts.yml', hostNames: ['a', 'b', 'c'], groups: new Map(), warnings: [],
    hostVars: (h) => ({...vars[h]}), groupsOf: () => [], groupHosts: () => [],
  };
  const secrets = new Secrets();
  const out = becomeInventory(inv, 'typed', secrets);
  t.is(out.hostVars('a').ansible_become_password, 'typed');
  t.is(out.hostVars('b').ansible_become_password, 'own-b');
  t.is(out.hostVars('c').ansible_become_password, undefined);
  t.is(out.hostVars('c').ansible_become_pass, 'own-c');
  t.is(secrets.mask('own-b own-c'), '*** ***');
  t.is(becomeInventory(inv, undefined, new Secrets()), inv, 'without -K: the same inventory');
});
