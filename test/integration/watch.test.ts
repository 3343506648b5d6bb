/**
 * provision watch over a real sshd on loopback: a converged pair of hosts shows no drift; a file edited
 * by hand on one host and a mode changed on the other show as exactly those (host, task) pairs in the
 * textfile, the JSON stream and the /metrics of a watch running on a schedule; `run --only-drifted`
 * repairs exactly those tasks (nothing else runs); the next check shows them cleared.
 */
import test from 'ava';
import {spawn} from 'node:child_process';
import {chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {closedPort, startSshd, writeLoopbackInventory, type Sshd} from '../helpers/sshd.ts';
import {bin, jsonEvents, projectRoot as root, runCli} from '../helpers/cli.ts';

const playbook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'drift.ts');

let sshd: Sshd;
test.before(async () => {
  sshd = await startSshd();
});
test.after.always(async () => {
  await sshd?.stop();
});

/** The series of a metrics text (no comments), sorted. */
const series = (text: string): string[] => text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).sort();
const driftSeries = (text: string, value: 0 | 1): string[] => series(text).filter((l) => l.startsWith('provision_drift_tasks{') && l.endsWith(` ${value}`));

test.serial('watch: no drift when converged; exactly the hand-made drift in textfile, stream and /metrics; run --only-drifted repairs only it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-watch-'));
  const inv = writeLoopbackInventory(sshd, dir, {h1: {}, h2: {}});
  const state = join(dir, 'state', 'drift.json');
  const textdir = join(dir, 'textfile');
  const prom = join(textdir, 'provision_drift.prom');
  const dataTask = (h: string): string => `file ${join(dir, h, 'data')} (directory)`;
  const watchOnce = (): ReturnType<typeof runCli> => runCli(['watch', playbook, '-i', inv, '--once', '--textfile', textdir, '--json', '--state', state]);

  const converge = await runCli(['run', playbook, '-i', inv, '--json']);
  t.is(converge.code, 0, converge.stderr + converge.stdout);

  // Converged: one check line, nothing drifted.
  const w0 = await watchOnce();
  t.is(w0.code, 0, w0.stderr + w0.stdout);
  const e0 = jsonEvents(w0.stdout);
  t.deepEqual(e0.map((e) => e.type), ['check']);
  t.like(e0[0], {drifted_hosts: 0, drifted_tasks: 0, unreachable_hosts: 0});
  const text0 = readFileSync(prom, 'utf8');
  t.is(driftSeries(text0, 0).length, 8, text0);
  t.deepEqual(driftSeries(text0, 1), []);
  t.true(series(text0).includes('provision_drift_hosts 0'));

  // Drift by hand: h1's motd content, h2's data directory mode.
  writeFileSync(join(dir, 'h1', 'motd'), 'edited by hand\n');
  chmodSync(join(dir, 'h2', 'data'), 0o777);
  const w1 = await watchOnce();
  t.is(w1.code, 0, w1.stderr + w1.stdout);
  t.log(`one watch --once (2 hosts, 4 tasks, loopback sshd, wall): ${w1.ms} ms`);
  const e1 = jsonEvents(w1.stdout);
  const drifts = e1.filter((e) => e.type === 'drift');
  t.deepEqual(drifts.map(({host, play, task, state: s}) => ({host, play, task, state: s})), [
    {host: 'h1', play: 'files', task: 'motd', state: 'drifted'},
    {host: 'h2', play: 'files', task: dataTask('h2'), state: 'drifted'},
  ]);
  t.regex(String(drifts[0]?.msg), /^would /);
  t.like(e1.at(-1), {type: 'check', drifted_hosts: 2, drifted_tasks: 2});
  t.deepEqual(e1.map((e) => e.type), ['drift', 'drift', 'check']);
  const text1 = readFileSync(prom, 'utf8');
  t.deepEqual(driftSeries(text1, 1), [
    'provision_drift_tasks{host="h1",play="files",task="motd"} 1',
    `provision_drift_tasks{host="h2",play="files",task="${dataTask('h2')}"} 1`,
  ]);
  t.is(driftSeries(text1, 0).length, 6);
  t.true(series(text1).includes('provision_drift_hosts 2'));
  t.true(series(text1).includes('provision_unreachable{host="h1"} 0'));
  const saved = JSON.parse(readFileSync(state, 'utf8')) as {drifted: {host: string; task: string}[]; checked_at: string};
  t.deepEqual(saved.drifted.map((d) => `${d.host}|${d.task}`), ['h1|motd', `h2|${dataTask('h2')}`]);
  t.truthy(Date.parse(saved.checked_at));
  t.is(readFileSync(join(dir, 'h1', 'motd'), 'utf8'), 'edited by hand\n', 'watch changed nothing');

  // On a schedule, serving /metrics: the same drift.
  const child = spawn(process.execPath, [bin, 'watch', playbook, '-i', inv, '--every', '1s', '--listen', '127.0.0.1:0', '--state', join(dir, 'daemon.json')], {cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, NO_COLOR: '1'}});
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    let url: string | undefined;
    for (let i = 0; i < 600 && !url; i++) {
      url = /serving (http:\S+)/.exec(stderr)?.[1];
      if (!url) await new Promise((r) => setTimeout(r, 50));
    }
    if (!url) throw new Error(`watch did not start serving: ${stderr}`);
    let text = '';
    // Until a check has completed (two, so the schedule has run again).
    for (let i = 0; i < 300 && (stdout.match(/ check: /g) ?? []).length < 2; i++) await new Promise((r) => setTimeout(r, 50));
    text = await (await fetch(url)).text();
    t.deepEqual(driftSeries(text, 1), driftSeries(text1, 1), text);
    t.true(series(text).includes('provision_drift_hosts 2'));
    t.true(Number(/^provision_check_last_success_timestamp (\S+)$/m.exec(text)?.[1]) > Date.now() / 1000 - 60);
    t.true(Number(/^provision_check_duration_seconds (\S+)$/m.exec(text)?.[1]) > 0);
    t.is((await fetch(url.replace('/metrics', '/'))).status, 404, '/metrics only');
    t.regex(stdout, /drifted +h1 \| files \| motd: would /);
  } finally {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  }
  t.is(await exited, 0, stderr);

  // Repair exactly what drifted.
  const repair = await runCli(['run', playbook, '-i', inv, '--only-drifted', '--state', state, '--json']);
  t.is(repair.code, 0, repair.stderr + repair.stdout);
  const er = jsonEvents(repair.stdout);
  t.deepEqual(er.filter((e) => e.type === 'result').map((e) => `${String(e.host)}|${String(e.task)}|${String(e.status)}`), ['h1|motd|changed', `h2|${dataTask('h2')}|changed`]);
  t.deepEqual(er.filter((e) => e.type === 'task').map((e) => e.name), ['motd', dataTask('h2')], 'the other tasks did not even start');
  t.is(readFileSync(join(dir, 'h1', 'motd'), 'utf8'), 'welcome to h1\n');
  t.is(statSync(join(dir, 'h2', 'data')).mode & 0o777, 0o750);

  const w2 = await watchOnce();
  t.is(w2.code, 0, w2.stderr);
  const e2 = jsonEvents(w2.stdout);
  t.deepEqual(e2.filter((e) => e.type === 'drift').map((e) => `${String(e.state)} ${String(e.host)}|${String(e.task)}`), ['cleared h1|motd', `cleared h2|${dataTask('h2')}`]);
  t.like(e2.at(-1), {type: 'check', drifted_hosts: 0});
  t.deepEqual(driftSeries(readFileSync(prom, 'utf8'), 1), []);

  // Nothing drifted any more: --only-drifted says so and runs nothing.
  const nothing = await runCli(['run', playbook, '-i', inv, '--only-drifted', '--state', state, '--json']);
  t.is(nothing.code, 0, nothing.stderr);
  t.deepEqual(jsonEvents(nothing.stdout).filter((e) => e.type === 'result' || e.type === 'task'), []);
  t.regex(nothing.stderr, /--only-drifted: the last check \(\S+\) found nothing drifted: nothing to run/);

  // No state: one clear line, exit 5, nothing run.
  const none = await runCli(['run', playbook, '-i', inv, '--only-drifted', '--state', join(dir, 'nope.json')]);
  t.is(none.code, 5, none.stderr);
  t.regex(none.stderr, /^provision: --only-drifted: no drift state at .*nope\.json: run 'provision watch PLAYBOOK --once' first/);
  t.is(none.stderr.trim().split('\n').length, 1);
});

test.serial('watch: an unreachable host is tracked apart, backed off on a schedule (2, then 4 checks), and still reported', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-watch-down-'));
  const inv = writeLoopbackInventory(sshd, dir, {h1: {}, down: {ansible_port: await closedPort()}});
  const state = join(dir, 'drift.json');
  const once = await runCli(['watch', playbook, '-i', inv, '--once', '--json', '--state', state, '--textfile', dir, '-T', '2']);
  t.is(once.code, 4, 'the exit code run --check gives');
  const e = jsonEvents(once.stdout);
  t.deepEqual(e.filter((x) => x.type === 'host').map((x) => [x.host, x.state]), [['down', 'unreachable']]);
  t.deepEqual(e.filter((x) => x.type === 'drift').map((x) => [x.host, x.task]), [['h1', 'root dir'], ['h1', 'motd'], ['h1', 'app port'], ['h1', `file ${join(dir, 'h1', 'data')} (directory)`]], 'h1 never converged: all drifted');
  t.like(e.at(-1), {type: 'check', unreachable_hosts: 1, drifted_hosts: 1});
  const prom = readFileSync(join(dir, 'provision_drift.prom'), 'utf8');
  t.true(series(prom).includes('provision_unreachable{host="down"} 1'));
  t.true(series(prom).includes('provision_unreachable{host="h1"} 0'));

  // On a schedule, from that state (down failed once): left out of 2 checks, tried, then out of 4.
  const child = spawn(process.execPath, [bin, 'watch', playbook, '-i', inv, '--every', '1s', '--json', '--state', state, '-T', '2'], {cwd: root, stdio: ['ignore', 'pipe', 'pipe']});
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const checks = (): Record<string, unknown>[] => jsonEvents(stdout).filter((x) => x.type === 'check');
  try {
    for (let i = 0; i < 600 && checks().length < 4; i++) await new Promise((r) => setTimeout(r, 50));
  } finally {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
  }
  t.is(await exited, 0, stderr);
  const seen = checks().slice(0, 4);
  t.deepEqual(seen.map((c) => c.backed_off), [['down'], ['down'], [], ['down']], stdout);
  t.true(seen.every((c) => c.unreachable_hosts === 1), 'reported unreachable while backed off');
  t.deepEqual(jsonEvents(stdout).filter((x) => x.type === 'host' || x.type === 'drift'), [], 'no change of state: no change line');
  const saved = JSON.parse(readFileSync(state, 'utf8')) as {hosts: Record<string, {failures: number; unreachable: boolean}>};
  t.is(saved.hosts.down?.failures, 2);
  t.true(saved.hosts.down?.unreachable);
});
