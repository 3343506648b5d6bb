/**
 * The fake transport's `start`, `put` and `get`: local, so engine tests can run the real control
 * session (run lock and audit log, core/remote.ts) against a temp directory.
 */
import test from 'ava';
import {randomBytes} from 'node:crypto';
import {mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {startControl, type ControlOptions} from '../../src/core/remote.ts';
import {FakeTransport} from '../../src/transport/fake.ts';
import {FileTransferError, UnreachableError} from '../../src/transport/types.ts';
import {commandWorks} from '../helpers/cli.ts';

const scratch = (): string => mkdtempSync(join(tmpdir(), 'prov-fake-'));
const tempsBeside = (dir: string): string[] => readdirSync(dir).filter((n) => n.includes('.provision.'));

test('start runs the command with the local sh, stdin open, and records it', async (t) => {
  const fake = new FakeTransport('h1');
  const chunks: string[] = [];
  const running = await fake.start('echo ready; while IFS= read -r l; do printf "got %s\\n" "$l"; done; echo bye >&2; exit 3', (c) => chunks.push(c));
  running.write('é€😀\n');
  running.end();
  t.deepEqual(await running.done, {code: 3, stdout: 'ready\ngot é€😀\n', stderr: 'bye\n'});
  t.is(chunks.join(''), 'ready\ngot é€😀\n');
  running.write('ignored\n');
  t.deepEqual(fake.log, [{kind: 'start', command: 'echo ready; while IFS= read -r l; do printf "got %s\\n" "$l"; done; echo bye >&2; exit 3'}]);
});

test('start runs locally also when a handler answers exec', async (t) => {
  const fake = new FakeTransport('h1', () => ({code: 0, stdout: 'from the handler', stderr: ''}));
  t.is((await fake.exec('anything')).stdout, 'from the handler');
  const running = await fake.start('echo local', () => undefined);
  running.end();
  t.is((await running.done).stdout, 'local\n');
});

test('down: start refuses; a running command is cut off (stdin at end of file, code -1); so does close', async (t) => {
  const fake = new FakeTransport('h1');
  const dir = scratch();
  const running = await fake.start(`cat; echo eof > ${join(dir, 'seen')}`, () => undefined);
  fake.down = true;
  const r = await running.done;
  t.is(r.code, -1);
  t.is(r.stderr, 'h1: connection lost\n');
  for (let i = 0; i < 200 && !statSafe(join(dir, 'seen')); i++) await new Promise((res) => setTimeout(res, 10));
  t.is(readFileSync(join(dir, 'seen'), 'utf8'), 'eof\n', 'the command saw end of file and went on');
  await t.throwsAsync(fake.start('true', () => undefined), {instanceOf: UnreachableError, message: 'h1: connection lost'});
  await t.throwsAsync(fake.put(join(dir, 'f'), 'x'), {instanceOf: UnreachableError});
  await t.throwsAsync(fake.get(join(dir, 'seen')), {instanceOf: UnreachableError});

  const other = new FakeTransport('h2');
  const open = await other.start('cat', () => undefined);
  await other.close();
  t.like(await open.done, {code: -1, stderr: 'connection to h2 was closed\n'});
});

function statSafe(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

test('put and get: local files, binary content intact, mode, recorded', async (t) => {
  const fake = new FakeTransport('h1', () => ({code: 0, stdout: '', stderr: ''}));
  const dir = scratch();
  const path = join(dir, 'f.bin');
  const data = Buffer.concat([Buffer.from(Array.from({length: 256}, (_, i) => i)), randomBytes(4096)]);
  await fake.put(path, data, {mode: 0o640});
  t.true(readFileSync(path).equals(data));
  t.is(statSync(path).mode & 0o7777, 0o640);
  t.true((await fake.get(path)).equals(data));
  await fake.put(path, 'héllo');
  t.is(readFileSync(path, 'utf8'), 'héllo');
  t.deepEqual(fake.log.map((r) => [r.kind, r.command]), [['put', path], ['get', path], ['put', path]]);
  await fake.exec('true');
  t.deepEqual(fake.execs, [{command: 'true'}]);
  t.is(fake.log[2]?.stdin, 'héllo');
  t.deepEqual(tempsBeside(dir), []);
});

test('put: a failed write leaves the target as it was and no temp file; get of a missing file fails', async (t) => {
  const fake = new FakeTransport('h1');
  const dir = scratch();
  const sub = join(dir, 'sub');
  mkdirSync(sub);
  writeFileSync(join(sub, 'keep'), 'kept');
  const err = await t.throwsAsync(fake.put(sub, 'x'), {instanceOf: FileTransferError});
  t.is(err?.path, sub);
  t.regex(err?.message ?? '', new RegExp(`^cannot write ${sub} on h1: `));
  t.deepEqual(readdirSync(sub), ['keep']);
  t.deepEqual(tempsBeside(dir), []);
  await t.throwsAsync(fake.put(join(dir, 'no', 'f'), 'x'), {instanceOf: FileTransferError});
  await t.throwsAsync(fake.get(join(dir, 'absent')), {instanceOf: FileTransferError, message: /^cannot read .*absent on h1: ENOENT/});
});

// The engine's control session, for real, through the fake: what engine tests with the fake now run.
const withFlock = commandWorks('flock', ['--version']) ? test : test.skip;

withFlock('the control session runs through the fake: run lock taken, audit lines appended, lock released', async (t) => {
  const dir = scratch();
  const options = (runId: string, timeoutS: number): ControlOptions => ({
    lockFile: join(dir, 'provision.lock'),
    timeoutS,
    runId,
    info: `tester pid=1 playbook=p since=now run=${runId}`,
    auditLog: join(dir, 'log', 'audit.log'),
    become: false,
  });
  const fake = new FakeTransport('h1');
  const control = await startControl(fake, options('run-a', 5));
  if (!control.ok) return t.fail(control.msg);
  t.is(control.state, 'own');
  t.true(control.audit);
  t.is(control.stepLock?.file, join(dir, 'provision.lock.steps'));

  // Another run finds the lock held.
  const busy = await startControl(new FakeTransport('h1'), options('run-b', 0));
  t.deepEqual(busy, {ok: false, msg: 'locked by another provision run: tester pid=1 playbook=p since=now run=run-a (waited 0 s; see --lock-timeout)'});

  control.session.write('first line\n');
  control.session.write('second line\n');
  control.session.end();
  t.is((await control.session.done).code, 0);
  t.is(readFileSync(join(dir, 'log', 'audit.log'), 'utf8'), 'first line\nsecond line\n');
  t.is(fake.log[0]?.kind, 'start');

  // Released: the next run takes it.
  const next = await startControl(new FakeTransport('h1'), options('run-c', 0));
  t.like(next, {ok: true, state: 'own'});
  if (next.ok) {
    next.session.end();
    await next.session.done;
  }
});
