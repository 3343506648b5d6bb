/**
 * The one-shell-per-host driver (src/transport/mux.ts), run by the machine's own `sh` (dash on Debian)
 * over pipes: the protocol, stdin in each mode, binary output, started commands, what a dropped driver
 * does. The same driver over a real sshd: test/transport/ssh.test.ts.
 */
import test from 'ava';
import {execFileSync, spawn} from 'node:child_process';
import {randomBytes} from 'node:crypto';
import {existsSync, mkdtempSync, rmSync, symlinkSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {DRIVER, driverCommand, Mux} from '../../src/transport/mux.ts';

/** The driver run by the machine's `sh`; `noise` is printed first on both streams, as a chatty login profile would. */
function local(options: {readonly noise?: string; readonly path?: string; readonly nonce?: string} = {}): {mux: Mux; pid: number; exited: Promise<void>} {
  const nonce = options.nonce ?? 'n0nce';
  const child = spawn('/bin/sh', ['-c', `printf %s "$NOISE"; printf %s "$NOISE" >&2; exec /bin/sh -c "$DRIVER" provision-mux ${nonce}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {...process.env, NOISE: options.noise ?? '', DRIVER, ...(options.path !== undefined ? {PATH: options.path} : {})},
  });
  const mux = new Mux({write: (b) => child.stdin.write(b), end: () => child.stdin.end()}, nonce);
  child.stdout.on('data', (d: Buffer) => mux.feed(d));
  child.stderr.on('data', (d: Buffer) => mux.feedErr(d));
  const exited = new Promise<void>((resolve) => child.on('close', () => {
    mux.lost('the driver ended');
    resolve();
  }));
  child.stdin.on('error', () => undefined);
  return {mux, pid: child.pid!, exited};
}

test(`exec: exit status, stdout and stderr apart, untrimmed; output before READY is skipped`, async (t) => {
  const {mux} = local({noise: 'Welcome to the host!\nR 1 0 0 0\nno newline at the end'});
  t.is(await mux.ready, undefined);
  const r = await mux.exec('printf "a\\n\\n"; printf "b " >&2; exit 3');
  t.deepEqual([r.code, r.stdout.toString(), r.stderr.toString()], [3, 'a\n\n', 'b ']);
  mux.close();
});

test(`stdin: none, text (kept in memory), bytes with NULs and large input (through a file), all exact`, async (t) => {
  const {mux} = local();
  t.is((await mux.exec('cat')).stdout.length, 0);
  t.is((await mux.exec('cat', 'pass\nword\n\n')).stdout.toString(), 'pass\nword\n\n');
  const bytes = randomBytes(300_000);
  t.true((await mux.exec('cat', bytes)).stdout.equals(bytes), 'random bytes (NULs among them)');
  const big = Buffer.alloc((1 << 20) + 65536 * 3 + 7, 'x');
  t.is((await mux.exec('wc -c', big)).stdout.toString().trim(), String(big.length));
  // A command that never reads its stdin does not stall the driver.
  t.is((await mux.exec('true', 'y'.repeat(200_000))).code, 0);
  t.is((await mux.exec('echo still here')).stdout.toString(), 'still here\n');
  mux.close();
});

test(`binary output of several MB arrives whole; many commands at once each get their own output`, async (t) => {
  const {mux} = local();
  t.is((await mux.exec('head -c 5000000 /dev/zero')).stdout.length, 5_000_000);
  const all = await Promise.all(Array.from({length: 120}, (_, i) => mux.exec(`sleep 0.0$((${i} % 7)); echo ${i}; echo e${i} >&2`)));
  t.deepEqual(all.map((r) => r.stdout.toString()), Array.from({length: 120}, (_, i) => `${i}\n`));
  t.deepEqual(all.map((r) => r.stderr.toString()), Array.from({length: 120}, (_, i) => `e${i}\n`));
  mux.close();
});

test(`start: stdin stays open (writes arrive in order), output line by line, exit status at the end`, async (t) => {
  const {mux} = local();
  const seen: string[] = [];
  const s = mux.start('echo started; while IFS= read -r l; do echo "got $l"; done; printf "no newline"; exit 7', (c) => seen.push(c))!;
  s.write('one\n');
  s.write('é€😀\n');
  const other = await mux.exec('echo meanwhile');
  t.is(other.stdout.toString(), 'meanwhile\n');
  s.end();
  const r = await s.done;
  t.is(r.code, 7);
  t.is(seen.join(''), 'started\ngot one\ngot é€😀\nno newline');
  t.is(r.stdout.toString(), seen.join(''));
  mux.close();
});

test(`start: six at once hold the driver's descriptors; a seventh is refused (the transport opens a channel), one freed is reused`, async (t) => {
  const {mux} = local();
  const six = Array.from({length: 6}, () => mux.start('cat >/dev/null; echo done', () => undefined)!);
  t.true(six.every((s) => s !== undefined));
  t.is(mux.start('true', () => undefined), undefined);
  six[0]!.end();
  t.is((await six[0]!.done).code, 0);
  const again = mux.start('echo again', () => undefined);
  t.truthy(again);
  t.is((await again!.done).stdout.toString(), 'again\n');
  for (const s of six.slice(1)) s.end();
  t.deepEqual((await Promise.all(six.map((s) => s.done))).map((r) => r.code), [0, 0, 0, 0, 0, 0]);
  mux.close();
});

test(`the driver ends (connection dropped): pending commands reject, started ones see end of file and settle with -1`, async (t) => {
  const {mux, pid, exited} = local();
  await mux.ready;
  const marker = `/tmp/provision-mux-test-${process.pid}-${Date.now()}`;
  // A started command that records seeing end of file (as the run lock's control session releases it).
  const s = mux.start(`cat >/dev/null; touch ${marker}`, () => undefined)!;
  const pending = mux.exec('sleep 2');
  await new Promise((r) => setTimeout(r, 200));
  process.kill(pid, 'SIGTERM');
  await exited;
  await t.throwsAsync(pending, {message: 'the driver ended'});
  const r = await s.done;
  t.is(r.code, -1);
  t.is(r.lost, 'the driver ended');
  for (let i = 0; i < 100 && !existsSync(marker); i++) await new Promise((w) => setTimeout(w, 20));
  t.true(existsSync(marker), 'the started command saw end of file');
  await t.throwsAsync(mux.exec('true'), {message: 'the driver ended'});
  spawn('rm', ['-f', marker]);
});

test('NOMUX: a host without what the driver needs says so at once', async (t) => {
  // A PATH with everything but flock.
  const dir = pathWith(['sh', 'mktemp', 'rm', 'dd', 'stat', 'mkfifo', 'cat']);
  try {
    const {mux, exited} = local({path: dir});
    t.is(await mux.ready, 'flock is not installed');
    await exited;
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
});

/** A folder of links to the machine's `tools`: a PATH with only those. */
function pathWith(tools: readonly string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'provision-mux-path-'));
  for (const tool of tools) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], {encoding: 'utf8'}).trim(), join(dir, tool));
  return dir;
}

test('the command line, through a login shell: ready, and commands run', async (t) => {
  const {command, nonce} = driverCommand();
  const child = spawn('bash', ['-c', command], {stdio: ['pipe', 'pipe', 'pipe']});
  const mux = new Mux({write: (b) => child.stdin.write(b), end: () => child.stdin.end()}, nonce);
  child.stdout.on('data', (d: Buffer) => mux.feed(d));
  child.stderr.on('data', (d: Buffer) => mux.feedErr(d));
  t.is(await mux.ready, undefined);
  t.is((await mux.exec('echo "it\'s $((6 * 7))"')).stdout.toString(), "it's 42\n");
  mux.close();
  await new Promise((resolve) => child.on('close', resolve));
});
