/**
 * Reliability over a real loopback sshd: the per-host run lock (a second run waits, or fails naming
 * the holder; it also waits for the commands a killed controller left running), an upload cut by a killed connection (old or new content, never partial, no temp file
 * left), the audit log (secrets masked, nothing in check mode), retry files with `--limit @file`,
 * and connect retries (a port that starts listening a second late).
 */
import test from 'ava';
import {spawn} from 'node:child_process';
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {createServer, connect, type Server, type Socket} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {encrypt} from '../../src/core/vault.ts';
import {lockedCommand} from '../../src/core/remote.ts';
import {localExec} from '../../src/transport/fake.ts';
import {startSshd, writeLoopbackInventory, type Sshd, killSessions} from '../helpers/sshd.ts';
import {bin, jsonEvents, projectRoot as root, runCli, type Cli} from '../helpers/cli.ts';

const playbook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'reliability.ts');

let sshd: Sshd;
test.before(async () => {
  sshd = await startSshd();
});
test.after.always(async () => {
  await sshd?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as {port: number}).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A TCP forwarder from `port` to the test sshd (lets a host "come up" later). */
async function forwarder(port: number): Promise<{close(): Promise<void>}> {
  const sockets = new Set<Socket>();
  const srv: Server = createServer((client) => {
    const up = connect(sshd.port, '127.0.0.1');
    sockets.add(client).add(up);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.pipe(up).pipe(client);
  });
  await new Promise<void>((r) => srv.listen(port, '127.0.0.1', r));
  return {
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      srv.close(() => r());
    }),
  };
}

interface Host {port?: number; vars?: Record<string, string | number>}

/** An inventory under `dir`: group `targets`, each host's files under dir/<host>, lock and audit log in dir. */
function inventory(dir: string, hosts: Record<string, Host>, allVars: Record<string, string | number> = {}): string {
  // Hosts may sit on other ports (a late listener): known_hosts names the host key for each.
  const known = join(dir, 'known_hosts');
  const ports = new Set([sshd.port, ...Object.values(hosts).map((h) => h.port ?? sshd.port)]);
  writeFileSync(known, [...ports].map((p) => `[127.0.0.1]:${p} ${sshd.hostPublicKey}\n`).join(''));
  const hostVars = Object.fromEntries(Object.entries(hosts).map(([n, h]) => [n, {ansible_port: h.port ?? sshd.port, ...h.vars}]));
  return writeLoopbackInventory(sshd, dir, hostVars, {ansible_ssh_known_hosts_file: known, ...allVars});
}

const cli = (args: string[], env: Record<string, string> = {}): Promise<Cli> => runCli(args, {env});

type Event = Record<string, unknown>;
const events = (out: string): Event[] => jsonEvents(out);
function recap(out: string): Record<string, Record<string, number>> {
  return events(out).at(-1)!.hosts as never;
}

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test.serial('two concurrent runs on one host: the second waits for the lock, their tasks never interleave', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-lock-'));
  const inv = inventory(dir, {t1: {}});
  const info = join(dir, 'provision.lock.info');
  const a = cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=A pause=2', '--json']);
  await waitFor(() => existsSync(info), 20_000, 'run A to take the lock');
  t.regex(readFileSync(info, 'utf8'), /^[0-9a-f]{16} root@\S+ pid=\d+ playbook=reliability since=\S+\n$/);
  const b = cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=B pause=0', '--json', '--lock-timeout', '30']);
  const [ra, rb] = await Promise.all([a, b]);
  t.is(ra.code, 0, ra.stderr);
  t.is(rb.code, 0, rb.stderr);
  t.is(readFileSync(join(dir, 't1', 'trace'), 'utf8'), 'A start\nA end\nB start\nB end\n');
  t.false(existsSync(info), 'the holder record is removed when the lock is released');
});

test.serial('a run that cannot get the lock in time fails that host, naming the holder, and writes a retry file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-lockbusy-'));
  const inv = inventory(dir, {t1: {}});
  const a = cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=A pause=4', '--json']);
  await waitFor(() => existsSync(join(dir, 'provision.lock.info')), 20_000, 'run A to take the lock');
  const b = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=B', '--json', '--lock-timeout', '1'], {PROVISION_RETRY_DIR: dir});
  t.is(b.code, 2, b.stderr);
  const failed = events(b.stdout).find((e) => e.type === 'result' && e.status === 'failed')!;
  t.is(failed.task, 'Acquire run lock');
  t.regex(String(failed.msg), /^locked by another provision run: root@\S+ pid=\d+ playbook=reliability since=\S+ \(waited 1 s; see --lock-timeout\)$/);
  t.is(readFileSync(join(dir, 'reliability.retry'), 'utf8'), 't1\n');
  const ra = await a;
  t.is(ra.code, 0);
  t.is(readFileSync(join(dir, 't1', 'trace'), 'utf8'), 'A start\nA end\n', 'B never ran a task');
});

test.serial('check mode takes the lock too', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-lockcheck-'));
  const inv = inventory(dir, {t1: {}});
  const a = cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=A pause=3', '--json']);
  await waitFor(() => existsSync(join(dir, 'provision.lock.info')), 20_000, 'run A to take the lock');
  const c = await cli(['run', playbook, '-i', inv, '-t', 'trace', '--check', '--json', '--lock-timeout', '0']);
  t.is(c.code, 2);
  t.regex(c.stdout, /locked by another provision run/);
  t.is((await a).code, 0);
});

/**
 * Start a run of the reliability playbook's `trace` task (`echo "A start"`, sleep, `echo "A end"`) in
 * a controller process of its own, and resolve once that command runs on the host; then SIGKILL the
 * controller: its connection drops, its control session ends (the run lock goes), and the command
 * goes on on the host. Resolves with the milliseconds the command still had to run.
 */
async function killControllerDuringStep(dir: string, inv: string, pauseS: number): Promise<number> {
  const trace = join(dir, 't1', 'trace');
  const a = spawn(process.execPath, [bin, 'run', playbook, '-i', inv, '-t', 'trace', '-e', `run=A pause=${pauseS}`, '--json'], {cwd: root, stdio: 'ignore', env: {...process.env, NO_COLOR: '1'}});
  const exited = new Promise<void>((r) => a.once('exit', () => r()));
  await waitFor(() => existsSync(trace) && readFileSync(trace, 'utf8') === 'A start\n', 30_000, 'run A\'s command to start');
  const started = Date.now();
  a.kill('SIGKILL');
  await exited;
  return pauseS * 1000 - (Date.now() - started);
}

test.serial('the controller killed during a step: the next run waits for the command it left running, then converges', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-orphan-'));
  const inv = inventory(dir, {t1: {}});
  const left = await killControllerDuringStep(dir, inv, 4);
  // At once: without the step lock this run would take the run lock (its holder is gone) and start
  // its command while A's still sleeps: "A start, B start, B end, A end".
  const b = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=B pause=0', '--json', '--lock-timeout', '30']);
  t.log(`run B took ${b.ms} ms; run A's command had ${left} ms left when its controller was killed`);
  t.is(b.code, 0, b.stderr + b.stdout);
  t.is(readFileSync(join(dir, 't1', 'trace'), 'utf8'), 'A start\nA end\nB start\nB end\n', 'A\'s command completed, then B ran');
  t.true(b.ms >= left - 300, `run B waited for A's command (${b.ms} ms, ${left} ms left)`);
  t.deepEqual(recap(b.stdout).t1, {ok: 0, changed: 1, failed: 0, skipped: 0, unreachable: 0}, 'converged');
});

test.serial('the controller killed during a step: a run that cannot wait long enough fails, naming the command left running and its run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-orphanbusy-'));
  const inv = inventory(dir, {t1: {}});
  await killControllerDuringStep(dir, inv, 4);
  const b = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=B', '--json', '--lock-timeout', '1']);
  t.is(b.code, 2, b.stderr);
  const failed = events(b.stdout).find((e) => e.type === 'result' && e.status === 'failed')!;
  t.is(failed.task, 'Acquire run lock');
  t.regex(String(failed.msg), /^locked by commands an earlier provision run left running: pid \d+ \(sleep 4\), started by root@\S+ pid=\d+ playbook=reliability since=\S+ \(waited 1 s; see --lock-timeout\)$/);
  await waitFor(() => readFileSync(join(dir, 't1', 'trace'), 'utf8') === 'A start\nA end\n', 10_000, 'A\'s command to end');
  const c = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=C', '--json', '--lock-timeout', '0']);
  t.is(c.code, 0, c.stderr + c.stdout);
  t.is(readFileSync(join(dir, 't1', 'trace'), 'utf8'), 'A start\nA end\nC start\nC end\n', 'B never ran a task; C did not wait');
});

/** Whether `file` can be flocked exclusively right now (nobody holds it). */
const free = async (file: string): Promise<boolean> => (await localExec(`flock -n -x ${file} true`)).code === 0;

test('the step lock: held by the shell running the step, for as long as it runs, never by what it leaves behind', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-steplock-'));
  const steps = join(dir, 'provision.lock.steps');
  const info = join(dir, 'provision.lock.info');
  writeFileSync(steps, '');
  writeFileSync(info, '0123456789abcdef root@ctl pid=1 playbook=site since=2026-01-01T00:00:00Z\n');
  const lock = {file: steps, holder: {file: info, runId: '0123456789abcdef'}};

  // The command's status, stdin and shell are its own; while it runs, the run's next control session cannot have the lock.
  const step = localExec(lockedCommand('read -r x; sleep 0.5; echo "got $x"; exit 3', lock), {stdin: 'input\n'});
  await sleep(250);
  t.false(await free(steps), 'held while the step runs');
  t.deepEqual(await step, {code: 3, stdout: 'got input\n', stderr: ''});
  t.true(await free(steps), 'released when it ends');

  // A daemon the step starts does not keep the lock (it runs without fd 7).
  const daemon = await localExec(lockedCommand(`sleep 2 >/dev/null 2>&1 & echo $! > ${dir}/daemon`, lock));
  t.is(daemon.code, 0);
  t.true(await free(steps), 'the daemon left behind holds nothing');
  process.kill(Number(readFileSync(join(dir, 'daemon'), 'utf8')));

  // A step that arrives when the record names another run (its run lost the lock) does not run.
  writeFileSync(info, 'fedcba9876543210 bob@ctl pid=2 playbook=site since=2026-01-01T00:00:01Z\n');
  const late = await localExec(lockedCommand(`touch ${dir}/ran`, lock));
  t.is(late.code, 75);
  t.regex(late.stderr, /this run no longer holds the run lock on this host; step not run/);
  t.false(existsSync(join(dir, 'ran')));
  rmSync(info);
  t.is((await localExec(lockedCommand(`touch ${dir}/ran`, lock))).code, 75, 'no record: the lock was released');

  // Without the record check (it could not be written) or without a readable companion: the step runs.
  t.is((await localExec(lockedCommand(`touch ${dir}/ran`, {file: steps}))).code, 0);
  t.is((await localExec(lockedCommand('echo unlocked', {file: join(dir, 'missing')}))).stdout, 'unlocked\n');
});


function tempFiles(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.includes('.provision.')) : [];
}

test.serial('the connection killed during an upload: the file is the old or the new content, never partial; a re-run converges, no temp file left', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-kill-'));
  const inv = inventory(dir, {t1: {}}, {big_mb: 24});
  const target = join(dir, 't1', 'big.txt');
  const first = await cli(['run', playbook, '-i', inv, '-t', 'upload', '-e', 'version=v1', '--json']);
  t.is(first.code, 0, first.stderr);
  const v1 = readFileSync(target, 'utf8');
  t.true(v1.length >= 24 * 1024 * 1024);

  const second = cli(['run', playbook, '-i', inv, '-t', 'upload', '-e', 'version=v2', '--json']);
  let partialSeen = -1;
  await waitFor(() => tempFiles(join(dir, 't1')).length > 0, 30_000, 'the upload to start');
  try {
    const [partial] = tempFiles(join(dir, 't1'));
    if (partial !== undefined) partialSeen = statSync(join(dir, 't1', partial)).size;
  } catch {
    // renamed already
  }
  const killed = killSessions(sshd);
  t.true(killed > 0, 'sshd session processes killed');
  const r2 = await second;
  t.log(`killed ${killed} sshd session process(es) with ${partialSeen} of ${v1.length} bytes in the temp file; run exit ${r2.code}`);
  t.true([2, 4].includes(r2.code), `the interrupted run fails (exit ${r2.code}): ${r2.stderr}`);
  const after = readFileSync(target, 'utf8');
  const v2 = v1.replaceAll('v1 ', 'v2 ');
  t.true(after === v1 || after === v2, `old or new content, never partial (got ${after.length} bytes)`);
  await waitFor(() => tempFiles(join(dir, 't1')).length === 0, 5000, 'the cut upload\'s temp file to be removed').catch(() => undefined);

  const third = await cli(['run', playbook, '-i', inv, '-t', 'upload', '-e', 'version=v2', '--json']);
  t.is(third.code, 0, third.stderr);
  t.is(readFileSync(target, 'utf8'), v2);
  t.deepEqual(tempFiles(join(dir, 't1')), [], 'no temp file left');
});

test.serial('the audit log: a line per changed task, secrets from a vault masked; nothing in check mode', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-audit-'));
  const inv = inventory(dir, {t1: {}});
  mkdirSync(join(dir, 'group_vars', 'all'), {recursive: true});
  writeFileSync(join(dir, 'group_vars', 'all', 'vault.yml'), encrypt('app_token: tok-SECRET-4711\n', 'audit-pass'));
  const passFile = join(dir, 'vault-pass');
  writeFileSync(passFile, 'audit-pass\n', {mode: 0o600});
  const env = {PROVISION_VAULT_PASSWORD_FILE: passFile};
  const log = join(dir, 'audit.log');

  const check = await cli(['run', playbook, '-i', inv, '-t', 'secret', '--check', '--json'], env);
  t.is(check.code, 0, check.stderr);
  t.false(existsSync(log), 'check mode writes no audit line');

  const r = await cli(['run', playbook, '-i', inv, '-t', 'secret', '--json', '--diff'], env);
  t.is(r.code, 0, r.stderr);
  t.is(readFileSync(join(dir, 't1', 'token'), 'utf8'), 'tok-SECRET-4711\n', 'the secret reached the host');
  const lines = readFileSync(log, 'utf8').trim().split('\n');
  t.is(lines.length, 3, lines.join('\n'));
  for (const l of lines) t.regex(l, /^time=\d{4}-\d\d-\d\dT\S+Z user=root@\S+ host=t1 playbook=reliability play=reliability task=.* change=/);
  t.regex(lines[1]!, /task="token file" change="echo \*\*\* > \S+\/token"$/);
  t.regex(lines[2]!, /task="app config" change="\+2 -0 \S+\/app\.conf"$/);
  t.false(readFileSync(log, 'utf8').includes('tok-SECRET-4711'), 'the secret is masked in the audit log');
  t.false(r.stdout.includes('tok-SECRET-4711'), 'and in the output');

  const again = await cli(['run', playbook, '-i', inv, '-t', 'secret', '-e', 'mode=b', '--json'], env);
  t.is(again.code, 0);
  const more = readFileSync(log, 'utf8').trim().split('\n');
  t.is(more.length, 6);
  t.regex(more[5]!, /task="app config" change="\+1 -1 \S+\/app\.conf"$/);
});

test.serial('retry file: failed and unreachable hosts are written; --limit @file runs only them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-retry-'));
  const late = await freePort();
  const inv = inventory(dir, {t1: {}, flaky: {port: late, vars: {ansible_ssh_retries: 0}}});
  const env = {PROVISION_RETRY_DIR: dir};
  const r = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=R', '--json'], env);
  t.is(r.code, 4);
  const retry = join(dir, 'reliability.retry');
  t.is(readFileSync(retry, 'utf8'), 'flaky\n');
  t.true(r.stderr.includes(`to retry, use: --limit @${retry}`), r.stderr);

  const fw = await forwarder(late);
  try {
    const again = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=R2', '--json', '--limit', `@${retry}`], env);
    t.is(again.code, 0, again.stderr);
    t.deepEqual(Object.keys(recap(again.stdout)), ['flaky']);
    t.is(recap(again.stdout).flaky?.changed, 1);
    t.is(readFileSync(join(dir, 'flaky', 'trace'), 'utf8'), 'R2 start\nR2 end\n');
  } finally {
    await fw.close();
  }
});

test.serial('connect retries: reset before the handshake, then refused, then listening a second later: reached', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-connretry-'));
  const late = await freePort();
  const inv = inventory(dir, {t1: {port: late}});
  // First a listener that resets the connection (lost before the handshake) and goes away, so the
  // next attempt is refused; a second after the first attempt, the port forwards to sshd.
  let attempts = 0;
  let firstAt = 0;
  let fw: {close(): Promise<void>} | undefined;
  const resetter = createServer((sock) => {
    attempts++;
    firstAt ||= Date.now();
    sock.destroy();
    resetter.close();
    void sleep(1000).then(async () => {
      fw = await forwarder(late);
    });
  });
  await new Promise<void>((r) => resetter.listen(late, '127.0.0.1', r));
  const r = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=C', '--json']);
  await fw?.close();
  t.is(attempts, 1);
  t.is(r.code, 0, r.stderr + r.stdout);
  t.is(recap(r.stdout).t1?.changed, 1);
  t.is(readFileSync(join(dir, 't1', 'trace'), 'utf8'), 'C start\nC end\n');
});

test('withConnectRetries: transient failures are retried with the given delays; host key and auth failures are not', async (t) => {
  const {withConnectRetries} = await import('../../src/cli/connect.ts');
  const {UnreachableError, HostKeyError} = await import('../../src/transport/types.ts');
  let calls = 0;
  const t0 = Date.now();
  const ok = await withConnectRetries(async () => {
    if (++calls < 3) throw new UnreachableError('h', 'refused', {transient: true});
    return 'up';
  }, [50, 100, 200]);
  t.is(ok, 'up');
  t.is(calls, 3);
  t.true(Date.now() - t0 >= 140);
  calls = 0;
  await t.throwsAsync(withConnectRetries(async () => {
    calls++;
    throw new UnreachableError('h', 'refused', {transient: true});
  }, [1, 1, 1]), {message: 'refused'});
  t.is(calls, 4, 'one attempt and three retries');
  for (const err of [new HostKeyError('h', 'changed key'), new UnreachableError('h', 'authentication failed'), new Error('bug')]) {
    calls = 0;
    await t.throwsAsync(withConnectRetries(async () => {
      calls++;
      throw err;
    }, [1, 1, 1]));
    t.is(calls, 1, err.message);
  }
});

test.serial('connect retries are not for host key errors: those fail at once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-hostkey-'));
  const inv = inventory(dir, {t1: {}});
  writeFileSync(join(dir, 'known_hosts'), '');
  const r = await cli(['run', playbook, '-i', inv, '-t', 'trace', '-e', 'run=K', '--json']);
  t.is(r.code, 4);
  t.regex(r.stdout, /is not in .*known_hosts/);
  t.true(r.ms < 8000, `no backoff (${r.ms} ms)`);
});
