/**
 * The real thing over a real OpenSSH sshd on loopback: the CLI runs a playbook using every file-level
 * module plus command/shell; converges, then 0 changed; --check predicts without touching; --diff;
 * an unreachable host gives exit 4 while the others finish.
 */
import test from 'ava';
import {existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {startSshd, writeLoopbackInventory, type Sshd, closedPort} from '../helpers/sshd.ts';
import {jsonEvents, projectRoot as root, runCli, type Cli} from '../helpers/cli.ts';

const playbook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'files.ts');

let sshd: Sshd;
test.before(async () => {
  sshd = await startSshd();
});
test.after.always(async () => {
  await sshd?.stop();
});


function inventory(dir: string, hosts: Record<string, {port: number}>): string {
  return writeLoopbackInventory(sshd, dir, Object.fromEntries(Object.entries(hosts).map(([n, h]) => [n, {ansible_port: h.port}])));
}

const cli = (args: string[]): Promise<Cli> => runCli(args);

const events = jsonEvents;

function recap(out: string): Record<string, {ok: number; changed: number; failed: number; unreachable: number; skipped: number}> {
  const r = events(out).at(-1)!;
  return r.hosts as never;
}

function snapshot(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, {recursive: true}).map(String).sort();
}

test.serial('converges on the first run, 0 changed on the second; --check predicts the same count without touching disk', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-int-'));
  const inv = inventory(dir, {t1: {port: sshd.port}, t2: {port: sshd.port}});

  const check = await cli(['run', playbook, '-i', inv, '--check', '--json']);
  t.is(check.code, 0, check.stderr);
  t.deepEqual(snapshot(join(dir, 't1')), [], 'check mode wrote nothing');
  const predicted = recap(check.stdout).t1!.changed;

  const first = await cli(['run', playbook, '-i', inv, '--json']);
  t.is(first.code, 0, first.stderr + first.stdout);
  t.is(recap(first.stdout).t1?.changed, predicted, 'check predicted the real changed count');
  t.true(predicted >= 10);
  t.is(readFileSync(join(dir, 't1', 'etc', 'app.conf'), 'utf8'), '# managed by provision\ngreeting=hello\nport=9090\n');
  t.is(readFileSync(join(dir, 't2', 'etc', 'host'), 'utf8'), 'host=t2\n');
  t.is(readFileSync(join(dir, 't1', 'var', 'restarts'), 'utf8').trim().split('\n').length, 1, 'handler ran once');

  const second = await cli(['run', playbook, '-i', inv, '--json']);
  t.is(second.code, 0);
  t.like(recap(second.stdout).t1, {changed: 0, failed: 0});
  t.like(recap(second.stdout).t2, {changed: 0, failed: 0});
  t.is(readFileSync(join(dir, 't1', 'var', 'restarts'), 'utf8').trim().split('\n').length, 1, 'handler not run again');
});

test.serial('--diff prints unified diffs of what changes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-diff-'));
  const inv = inventory(dir, {t1: {port: sshd.port}});
  await cli(['run', playbook, '-i', inv]);
  writeFileSync(join(dir, 't1', 'etc', 'app.conf'), '# managed by provision\ngreeting=hi\nport=9090\n');
  const r = await cli(['run', playbook, '-i', inv, '--diff', '--check', '--no-tui']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /--- before: .*app\.conf/);
  t.regex(r.stdout, /\+\+\+ after: .*app\.conf/);
  t.regex(r.stdout, /^-greeting=hi$/m);
  t.regex(r.stdout, /^\+greeting=hello$/m);
  t.regex(r.stdout, /PLAY RECAP/);
  t.is(readFileSync(join(dir, 't1', 'etc', 'app.conf'), 'utf8'), '# managed by provision\ngreeting=hi\nport=9090\n');
});

test.serial('an unreachable host is reported (exit 4) while the others finish', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-unreach-'));
  const inv = inventory(dir, {t1: {port: sshd.port}, down: {port: await closedPort()}});
  const r = await cli(['run', playbook, '-i', inv, '--json']);
  t.is(r.code, 4);
  const rc = recap(r.stdout);
  t.is(rc.down?.unreachable, 1);
  t.is(rc.t1?.failed, 0);
  t.true(rc.t1!.changed > 0);
  t.true(existsSync(join(dir, 't1', 'etc', 'app.conf')));
  const plain = await cli(['run', playbook, '-i', inv, '--no-tui']);
  t.is(plain.code, 4);
  t.regex(plain.stdout, /fatal: \[down\]: UNREACHABLE!/);
});

test.serial('ping and exec', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-adhoc-'));
  const inv = inventory(dir, {t1: {port: sshd.port}, t2: {port: sshd.port}});
  const ping = await cli(['ping', 'targets', '-i', inv]);
  t.is(ping.code, 0, ping.stderr);
  t.regex(ping.stdout, /t1 \| SUCCESS => pong/);
  const ex = await cli(['exec', 't2', '-i', inv, '--', 'echo', 'hi from $(hostname)']);
  t.is(ex.code, 0);
  t.regex(ex.stdout, /t2 \| CHANGED \| rc=0 >>\nhi from /);
  const bad = await cli(['exec', 'all', '-i', inv, '--', 'false']);
  t.is(bad.code, 2);
});
