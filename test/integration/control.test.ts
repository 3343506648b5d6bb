/**
 * Delegation and timeouts over a real sshd on loopback: a task delegated to another inventory host
 * uses that host's connection (unreachable: the delegating host's task says so), one delegated to
 * localhost runs in the controller without SSH, and a hung command is killed on the host by its
 * timeout while the connection goes on serving the next task.
 */
import test from 'ava';
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {startSshd, writeLoopbackInventory, type Sshd, killSessions, closedPort} from '../helpers/sshd.ts';
import {jsonEvents, projectRoot as root, runCli} from '../helpers/cli.ts';
import {localExec} from '../../src/transport/local.ts';

const playbook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'control.ts');
const asyncPlaybook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'async.ts');

let sshd: Sshd;
test.before(async () => {
  sshd = await startSshd();
});
test.after.always(async () => {
  await sshd?.stop();
});


/** w1 and w2 in `web`, lb (on `lbPort`) in `lbs`; `hang`: how long the hung command sleeps. */
function inventory(dir: string, lbPort: number, hang: number): string {
  const path = writeLoopbackInventory(sshd, dir, {w1: {}, w2: {}, lb: {ansible_port: lbPort}}, {hang});
  const lines = readFileSync(path, 'utf8').replace('    targets:\n', '    web:\n').split('\n');
  const lb = lines.find((l) => l.trimStart().startsWith('lb:')) ?? '';
  const text = [...lines.filter((l) => l !== lb && l !== ''), '    lbs:', '      hosts:', lb, ''].join('\n');
  writeFileSync(path, text);
  return path;
}

test.serial('delegateTo: another host\'s connection, or the controller; a timeout kills the hung command and the host goes on', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-ctl-'));
  const hang = 31 + Math.floor(Math.random() * 1000) / 1000;
  const inv = inventory(dir, sshd.port, hang);
  const r = await runCli(['run', playbook, '-i', inv, '--json'], {env: {PROVISION_TEST_MARK: 'controller-env'}});
  t.is(r.code, 0, r.stderr + r.stdout);
  for (const w of ['w1', 'w2']) {
    t.is(readFileSync(join(dir, w, 'via-lb'), 'utf8'), `for ${w}\n`, 'run with the delegating host\'s variables');
    t.is(readFileSync(join(dir, w, 'on-controller'), 'utf8'), 'mark=controller-env ssh=none\n', 'run by the controller, not over SSH');
    t.is(readFileSync(join(dir, w, 'own'), 'utf8'), 'own\nafter\n', 'the connection served the task after the timeout');
    const pid = readFileSync(join(dir, w, 'hung.pid'), 'utf8').trim();
    t.false(existsSync(`/proc/${pid}`), `${w}: the hung command (pid ${pid}) was killed on the host`);
  }
  const hung = jsonEvents(r.stdout).filter((e) => e.type === 'result' && e.task === 'hangs');
  t.is(hung.length, 2);
  for (const e of hung) t.regex(String(e.msg), /timed out after 2 s \(killed\)/);
  t.is((await localExec(`pgrep -f '^slee[p] ${hang}' || true`)).stdout.trim(), '', 'no sleep left anywhere');

  // lb unreachable: the delegated task is unreachable for each web host; their own first task ran.
  const dir2 = mkdtempSync(join(tmpdir(), 'prov-ctl-down-'));
  const down = await runCli(['run', playbook, '-i', inventory(dir2, await closedPort(), 0.1), '--json']);
  t.is(down.code, 4, down.stderr);
  const drain = jsonEvents(down.stdout).filter((e) => e.type === 'result' && e.task === 'drain on lb');
  t.deepEqual(drain.map((e) => [e.host, e.status]).sort(), [['w1', 'unreachable'], ['w2', 'unreachable']]);
  t.regex(String(drain[0]?.msg), /^delegate lb: /);
  t.true(existsSync(join(dir2, 'w1', 'own')));
});


test.serial('async: a job outlives its dropped connection; the run polls it over a new one and gets its output', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-async-'));
  const inv = inventory(dir, sshd.port, 0);
  const run = runCli(['run', asyncPlaybook, '-i', inv, '-l', 'w1', '--json']);
  for (let i = 0; i < 300 && !existsSync(join(dir, 'w1', 'job-started')); i++) await new Promise((r) => setTimeout(r, 50));
  t.true(existsSync(join(dir, 'w1', 'job-started')), 'the job started');
  const killed = killSessions(sshd);
  t.true(killed > 0, 'the connection was cut');
  const r = await run;
  t.is(r.code, 0, r.stderr + r.stdout);
  const job = jsonEvents(r.stdout).find((e) => e.type === 'result' && e.task === 'long job');
  t.is(job?.status, 'changed');
  t.regex(String(job?.msg), /polled over \d+ new connections? after the connection dropped/);
  t.is(readFileSync(join(dir, 'w1', 'job-output'), 'utf8'), 'survived\n');
  t.log(`killed ${killed} sshd session process(es) while the job ran; ${String(job?.msg)}`);
});
