/**
 * The live UI end to end, in a real terminal: tmux runs the real CLI against a real loopback sshd,
 * and the test reads the screen (`capture-pane`) while the playbook runs and when it is over; then
 * `q` mid-run stops it gracefully (exit 99, the running task finishes, nothing half-written).
 * Needs tmux (CI: `apt-get install -y tmux`).
 */
import test from 'ava';
import {execFile, execFileSync} from 'node:child_process';
import {existsSync, mkdtempSync, readFileSync, readdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {promisify} from 'node:util';
import {startSshd, writeLoopbackInventory, type Sshd} from '../helpers/sshd.ts';

const execFileP = promisify(execFile);
const root = resolve(import.meta.dirname, '..', '..');
const bin = join(root, 'bin', 'provision.js');
const playbook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'slow.ts');
/** A tmux server of our own (its own socket), so that nothing of the user's tmux is touched. */
const socket = `provision-test-${process.pid}`;

let sshd: Sshd;
test.before(async () => {
  try {
    execFileSync('tmux', ['-V']);
  } catch {
    throw new Error('tmux is required for the live UI test (apt-get install -y tmux)');
  }
  sshd = await startSshd();
});
test.after.always(async () => {
  await execFileP('tmux', ['-L', socket, 'kill-server']).catch(() => undefined);
  await sshd?.stop();
});

function inventory(dir: string): string {
  return writeLoopbackInventory(sshd, dir, {t1: {}, t2: {}}, {provision_audit_log: false});
}

const sh = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Start the CLI in a 120x40 tmux window; the shell prints EXIT=<code> when it ends. */
async function startInTmux(name: string, args: readonly string[]): Promise<void> {
  // is-in-ci makes ink print only the last frame: a CI runner's CI=true must not reach the UI.
  const cmd = `env -u CI -u CONTINUOUS_INTEGRATION ${[process.execPath, bin, ...args].map(sh).join(' ')}; echo EXIT=$?; sleep 120`;
  await execFileP('tmux', ['-L', socket, 'new-session', '-d', '-x', '120', '-y', '40', '-s', name, '-c', root, cmd]);
}

async function screen(name: string): Promise<string> {
  const {stdout} = await execFileP('tmux', ['-L', socket, 'capture-pane', '-p', '-t', name]);
  return stdout;
}

/** Poll the screen until `ok` holds; every screen seen is kept. */
async function waitFor(name: string, ok: (s: string) => boolean, seen: string[], timeoutMs = 60_000): Promise<string> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = await screen(name);
    seen.push(s);
    if (ok(s)) return s;
    if (Date.now() > end) throw new Error(`timed out waiting for the screen; last one:\n${s}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, {recursive: true}).map(String).sort();
}

test.serial('a run in a real terminal: the live rows while it runs, the failure in full and the recap at the end', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-tmux-'));
  const inv = inventory(dir);
  await startInTmux('run', ['run', playbook, '-i', inv, '-e', 'fail_on=t2']);
  const seen: string[] = [];

  // While it runs: the header, the play and task, one row per host with its progress.
  const mid = await waitFor('run', (s) => /PLAY \[slow steps\] · task \d\/7: /.test(s) && /^ ▸ t1 /m.test(s), seen);
  t.regex(mid, /^provision · slow · .*inventory\.yml · APPLY · [\d.]+m?s$/m);
  t.regex(mid, /^ ▸ t1 +━*─+ +\d\/7 ok=\d+ chg=\d+ fail=0 skip=\d+ +[\d.]+m?s \S/m);
  t.regex(mid, /^ [▸▹✘] t2 /m);
  t.regex(mid, /^q stop · ↑↓ host · enter log$/m);
  t.regex(mid, /^~ t1 · demo : config dir · changed/m, 'finished changes scrolled above');

  const end = await waitFor('run', (s) => /^EXIT=\d+$/m.test(s), seen);
  t.regex(end, /^EXIT=2$/m, 'a host failed: exit 2, whatever the renderer');
  t.regex(end, /^PLAY RECAP · finished in [\d.]+m?s$/m);
  t.regex(end, /^t1 : ok=\d+ +changed=18 +unreachable=0 +failed=0 +skipped=0$/m);
  t.regex(end, /^t2 : ok=\d+ +changed=15 +unreachable=0 +failed=1 +skipped=0$/m);
  t.regex(end, /^✘ done · 2 hosts · 33 changed · 1 failed · 0 unreachable · [\d.]+m?s$/m);
  // The failure in full, somewhere on the screens seen: host, task, command, rc and output.
  const all = seen.join('\n');
  t.regex(all, /^✘ t2 · check config · FAILED: /m);
  t.regex(all, /^ {4}cmd: .*echo "checking config"/m);
  t.regex(all, /^ {4}rc: 3$/m);
  t.regex(all, /^ {6}config: bad value on line 3$/m);
  // Never more than one live region on the screen (no stale frames left behind).
  for (const s of seen) t.true((s.match(/^provision · /gm) ?? []).length <= 1, s);
  t.is(readFileSync(join(dir, 't1', 'steps', 'three'), 'utf8'), 'done at step three\n');
});

test.serial('q stops gracefully: the running task finishes, nothing new starts, exit 99, nothing half-written', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-tmux-q-'));
  const inv = inventory(dir);
  await startInTmux('stop', ['run', playbook, '-i', inv, '-e', 'pause=2']);
  const seen: string[] = [];
  await waitFor('stop', (s) => /task 1\/7: warm up/.test(s) && /^ ▸ t1 /m.test(s), seen);
  await execFileP('tmux', ['-L', socket, 'send-keys', '-t', 'stop', 'q']);
  const stopping = await waitFor('stop', (s) => /stopping: running tasks finish/.test(s) || /^EXIT=/m.test(s), seen);
  t.regex(stopping, /stopping: running tasks finish, nothing new starts|EXIT=99/);
  const end = await waitFor('stop', (s) => /^EXIT=\d+$/m.test(s), seen);
  t.regex(end, /^EXIT=99$/m);
  t.regex(end, /^PLAY RECAP · interrupted after /m);
  t.regex(end, /^■ INTERRUPTED · 2 hosts · /m);
  t.regex(end, /^~ t1 · warm up · changed/m, 'the running task finished');
  for (const h of ['t1', 't2']) {
    const got = files(join(dir, h));
    t.false(got.includes('steps'), `${h}: no task after the interrupt ran`);
    t.deepEqual(got.filter((f) => f.includes('.provision.')), [], `${h}: no temp file left`);
    t.is(readFileSync(join(dir, h, 'etc', 'app.conf'), 'utf8'), '# managed by provision\ngreeting=hello\nport=9090\n');
    t.is(readFileSync(join(dir, h, 'etc', 'host'), 'utf8'), `host=${h}\n`);
  }
});
