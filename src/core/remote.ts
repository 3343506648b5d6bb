/**
 * How plans and probes become remote commands: the probe batch (every pending probe in one round
 * trip), privilege escalation, and the atomic write (temp file beside the target, validate, rename).
 */
import {createHash, randomBytes} from 'node:crypto';
import {becomeWrap, display, q, render} from './cmd.ts';
import {Secret} from './secret.ts';
import {BecomeError, becomeVars, frame, needsFraming, type BecomeAs, type BecomeMethod, type Framed} from './become.ts';
import type {ProbeOutput, Step} from './types.ts';
import type {ProbeScript} from '../shared/probe.ts';
import {uploadScript} from '../shared/upload.ts';
import {mergedPathProbe, splitMergedPathProbe} from '../facts/file.ts';
import {FileTransferError, type ExecResult, type RunningCommand, type Transport} from '../transport/types.ts';
import {writeFileAtomic} from './localfs.ts';

/**
 * Who runs a command: the login user, or another user through sudo (`sudo -n` without a password) or
 * su, with the host's become password when it has one (see become.ts).
 */
export type Identity = {readonly become: false} | ({readonly become: true} & BecomeAs);

/**
 * `user` as a host's variables say to become them: `ansible_become_method` and the password. A bad
 * setting gives plain `sudo -n`: the host's session refuses it at the start (HostSession), before any task.
 */
export function becomeIdentity(vars: Readonly<Record<string, unknown>>, user: string): Identity {
  const how = becomeVars(vars);
  return 'error' in how ? {become: true, user} : {become: true, user, ...how};
}

/**
 * Run `command` (a command line for the login user's shell) as `who`, `stdin` after the password
 * framing when there is one; `around` wraps the final command line (the step lock). With `check`, a
 * wrong sudo password fails after one attempt (see become.ts). Throws `BecomeError` when the
 * escalation failed (the command did not run).
 */
async function execAs(
  t: Transport, who: Identity, command: string, stdin?: Buffer | string,
  options: {readonly check?: boolean; readonly around?: (command: string) => string} = {},
): Promise<ExecResult> {
  const around = options.around ?? ((c: string) => c);
  if (!who.become || !needsFraming(who)) {
    return t.exec(around(who.become ? becomeWrap(command, who.user) : command), stdin === undefined ? {} : {stdin});
  }
  const f = frame(command, who, {check: options.check === true});
  const head = f.stdin.reveal();
  const data = stdin === undefined ? head : typeof stdin === 'string' ? head + stdin : Buffer.concat([Buffer.from(head, 'utf8'), stdin]);
  return f.outcome(await t.exec(around(f.command), {stdin: data}));
}

/** Run a shell script on the host as `who`, passing the script on stdin (no argv limits, no quoting). */
export async function runScript(t: Transport, who: Identity, script: string): Promise<ExecResult> {
  if (who.become && !needsFraming(who)) return t.exec(`sudo -n -H -u ${q(who.user)} -- sh -s`, {stdin: script});
  return execAs(t, who, who.become ? 'exec sh -s' : 'sh -s', script);
}

/**
 * Run one command string as `who`, with optional stdin. `check`: try a sudo password alone first (one
 * attempt when it is wrong; costs a second authentication when it is right).
 */
export async function runCommand(t: Transport, who: Identity, command: string, stdin?: Buffer | string, options: {readonly check?: boolean} = {}): Promise<ExecResult> {
  return execAs(t, who, command, stdin, options);
}

/** Every probe in one script; each probe's stdout is fenced by a random marker with its exit status. */
export function batchScript(scripts: readonly string[], marker: string): string {
  return scripts
    .map((s, i) => `echo '${marker} ${i}'\n(\n${s}\n) </dev/null 2>/dev/null\n__rc=$?\necho\necho "${marker} end ${i} $__rc"`)
    .join('\n') + '\n';
}

export function parseBatch(stdout: string, count: number, marker: string): ProbeOutput[] {
  const out: ProbeOutput[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    const begin = `${marker} ${i}\n`;
    const start = stdout.indexOf(begin, pos);
    if (start < 0) throw new Error(`probe batch output is missing probe ${i}`);
    const endRe = new RegExp(`\\n${marker} end ${i} (\\d+)\\n`, 'g');
    endRe.lastIndex = start + begin.length - 1;
    const m = endRe.exec(stdout);
    if (!m) throw new Error(`probe batch output is missing the end of probe ${i}`);
    out.push({stdout: stdout.slice(start + begin.length, m.index), code: Number(m[1])});
    pos = m.index + m[0].length - 1;
  }
  return out;
}

/** `scripts` in one round trip, each output fenced by a random marker. */
async function runBatch(t: Transport, who: Identity, scripts: readonly string[]): Promise<ProbeOutput[]> {
  const marker = `__provision_${randomBytes(6).toString('hex')}__`;
  const r = await runScript(t, who, batchScript(scripts, marker));
  if (who.become && r.code !== 0 && !r.stdout.includes(`${marker} 0\n`)) {
    // The shell as `who` never started (`sudo -n` refused): say so, not "output is missing probe 0".
    const why = r.stderr.trim().split('\n').at(-1)?.trim() || `exit ${r.code}`;
    throw new BecomeError(/a password is required/.test(why) ? `${why} (set ansible_become_password, or use -K)` : why);
  }
  return parseBatch(r.stdout, scripts.length, marker);
}

/** Run many probes in one round trip; their outputs in the same order. */
export async function runProbes(t: Transport, who: Identity, probes: readonly ProbeScript[]): Promise<ProbeOutput[]> {
  if (probes.length === 0) return [];
  const scripts = probes.map((p) => p.script);
  // Path probes (files, copies, templates, lineinfile) are answered together by one merged script.
  const paths = probes.flatMap((s, i) => (s.path ? [{i, p: s.path, script: s.script}] : []));
  const merge = paths.length >= 2;
  const rest = merge ? probes.filter((s) => !s.path).map((s) => s.script) : scripts;
  const outs = await runBatch(t, who, merge ? [...rest, mergedPathProbe(paths.map((x) => x.p))] : rest);
  if (!merge) return outs;
  // Output that does not add up (a file changed while it was read, other tools): the probes one by one.
  // The merged probe's output is the last, after one for each of `rest`.
  const split = splitMergedPathProbe(nth(outs, rest.length, 'probe output').stdout, paths.map((x) => x.p))
    ?? (await runBatch(t, who, paths.map((x) => x.script))).map((o) => o.stdout);
  const byIndex = new Map(paths.map((x, k) => [x.i, {stdout: nth(split, k, 'path probe output'), code: 0}]));
  let next = 0;
  return scripts.map((_, i) => byIndex.get(i) ?? nth(outs, next++, 'probe output'));
}

/** `list[k]`, which the caller's bookkeeping guarantees is there; throws an internal Error if not. */
function nth<T>(list: readonly T[], k: number, what: string): T {
  const v = list[k];
  if (v === undefined) throw new Error(`internal error: no ${what} ${k} (of ${list.length})`);
  return v;
}

/** The shell that writes a write step's content (on stdin) atomically: src/shared/upload.ts. */
export function writeScript(step: Extract<Step, {kind: 'write'}>): string {
  return uploadScript({
    dest: step.dest, size: step.content.length, mode: step.mode ?? '0644',
    ...(step.owner ? {owner: step.owner} : {}), ...(step.group ? {group: step.group} : {}), ...(step.validate ? {validate: step.validate} : {}),
  });
}

/** The command a step runs (for failure messages). Secrets are masked. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'exec': return display(step.cmd);
    case 'write': return `write ${step.dest}${step.validate ? ` (validate: ${step.validate})` : ''}`;
    case 'fetch': return `fetch ${step.src} to the controller's ${step.dest}`;
    case 'reboot': return `reboot (${step.command})`;
  }
}

/** A step's command result, with its note when it has one. */
export type StepResult = ExecResult & {readonly note?: string};

/**
 * The lock every step of a run holds while it runs (from the control session, see `startControl`):
 * a shared flock on the companion of the run lock file, taken by the shell that runs the step.
 */
export interface StepLock {
  /** The companion file (`/run/provision.lock.steps`). */
  readonly file: string;
  /** The run lock's holder record and this run's id: the step runs only while the record names this run. */
  readonly holder?: {readonly file: string; readonly runId: string};
}

/**
 * `command` run by a shell that first takes a shared flock on `lock.file` and holds it until the
 * command ends: in the same remote shell, so the lock lives as long as the step does, not as long as
 * the connection (a killed controller's `apt-get` goes on, and so does its lock). The next run's
 * control session waits for the exclusive lock, i.e. for every such step to end. Only this shell holds
 * the lock: the command runs in a subshell without fd 7, so a daemon it leaves behind does not keep
 * it. With `holder`, the step runs only while the run lock's record names this run: a step that
 * arrives after its run lost the lock (control session gone) refuses to run (exit 75) rather than
 * interleave with the next run. A user who cannot read the file runs the step without it.
 */
export function lockedCommand(command: string, lock: StepLock): string {
  const check = lock.holder
    ? ` && { IFS= read -r __h 2>/dev/null <${q(lock.holder.file)}; case $__h in ${q(`${lock.holder.runId} `)}*) ;; *) echo 'provision: this run no longer holds the run lock on this host; step not run' >&2; exit 75;; esac; }`
    : '';
  // `; exit`: the subshell is never the last command, which a shell may run without forking (and so
  // with fd 7, the lock, closed).
  return `[ -r ${q(lock.file)} ] && exec 7<${q(lock.file)} && flock -s 7${check}\n(\n${command}\n) 7<&-; exit`;
}

/**
 * Apply one step, holding the run's step lock when there is one. Resolves with the command's result;
 * the caller decides what a failure means.
 */
export async function applyStep(t: Transport, who: Identity, step: Step, lock?: StepLock): Promise<StepResult> {
  if (step.kind === 'fetch') return fetchFile(t, who, step);
  if (step.kind === 'reboot') throw new Error('internal error: a reboot step is run by the engine (it connects again)');
  const [command, stdin] = step.kind === 'exec'
    ? [render(step.cmd), step.stdin instanceof Secret ? step.stdin.reveal() : step.stdin]
    : [`sh -c ${q(writeScript(step))}`, step.content];
  const r = await execAs(t, who, command, stdin, lock ? {around: (c) => lockedCommand(c, lock)} : {});
  const note = step.kind === 'exec' ? step.note?.(r) : undefined;
  return note ? {...r, note} : r;
}

/**
 * A fetch step: the host's file read as bytes (`cat`; as another user, base64 through the escalation,
 * as Ansible's slurp), checked against the sha256 the probe read (a file that changed since is
 * refused, not half-copied), then written on the controller atomically.
 */
async function fetchFile(t: Transport, who: Identity, step: Extract<Step, {kind: 'fetch'}>): Promise<StepResult> {
  let bytes: Buffer;
  if (who.become) {
    const r = await execAs(t, who, `base64 -w0 -- ${q(step.src)}`);
    if (r.code !== 0) return r;
    bytes = Buffer.from(r.stdout, 'base64');
  } else {
    try {
      bytes = await t.get(step.src);
    } catch (err) {
      if (err instanceof FileTransferError) return {code: 1, stdout: '', stderr: err.message};
      throw err;
    }
  }
  const sum = createHash('sha256').update(bytes).digest('hex');
  if (sum !== step.sha256) return {code: 1, stdout: '', stderr: `${step.src} changed while it was fetched (sha256 ${sum.slice(0, 12)}…, the probe read ${step.sha256.slice(0, 12)}…): not written`};
  try {
    writeFileAtomic(step.dest, bytes);
  } catch (err) {
    return {code: 1, stdout: '', stderr: `cannot write ${step.dest} on the controller: ${(err as Error).message}`};
  }
  return {code: 0, stdout: '', stderr: ''};
}

// ---------------------------------------------------------------------------------------------------
// The control session: the per-host run lock and the audit log

/** What the control session needs to know. */
export interface ControlOptions {
  /** The lock file; undefined: /run/provision.lock as root, else /tmp/provision.lock; null: no lock. */
  readonly lockFile: string | undefined | null;
  /** Seconds to wait for another run's lock; 0: fail at once. */
  readonly timeoutS: number;
  /** This run's id: hosts of one run that are the same machine share the lock. */
  readonly runId: string;
  /** Who holds the lock, for the other runs' messages: `alice@ctl pid=12 playbook=site since=…`. */
  readonly info: string;
  /** The audit log to append lines to (sent on stdin); undefined: none. */
  readonly auditLog: string | undefined;
  /** Run the session as root through `sudo -n` when it works (login user not root). */
  readonly become: boolean;
  /**
   * With `become`: become root by this method with this password instead (the login user's for sudo,
   * root's for su). Checked once: a wrong password fails the host (sudo: after one attempt); sudo
   * refusing for another reason leaves the session to the login user, as `sudo -n` does.
   */
  readonly auth?: {readonly method: BecomeMethod; readonly password: Secret};
  /** Settles when the run is interrupted: a wait for another run's lock ends then (nothing new starts). */
  readonly interrupted?: Promise<unknown>;
}

/**
 * The control session, one long-lived command per host per run. It takes the lock (flock on a file,
 * held until the session ends: stdin reaching end of file, which also happens when the controller
 * dies or the connection drops) and records who holds it in `<lock>.info`. Then it waits, within the
 * same time limit, for the exclusive flock on the companion `<lock>.steps`: every step of a run holds
 * it shared while it runs (`lockedCommand`), so this waits for the steps of an earlier run that are
 * still running although their run is gone (controller killed, connection dropped); the companion is
 * never removed (a new file would not see them) and names the last run that took the lock. It prints
 * `STEPS <companion>`, `STEPCHECK <record>` when the record names this run, `LOCKED own|shared`, then
 * appends every line it reads on stdin to the audit log. Failing, it prints one of `BUSY <holder>`,
 * `HELD <processes>` and `BUSYSTEPS <the earlier run>`, `NOFLOCK`, `NOLOCKFILE <path>` and exits.
 * `NOAUDIT <path>` is printed before `LOCKED` when the audit log cannot be opened (the run goes on;
 * lines are dropped).
 */
export const controlScript = `
L=$1 T=$2 R=$3 INFO=$4 A=$5
if [ -z "$L" ]; then
  if [ "$(id -u)" = 0 ]; then L=/run/provision.lock; else L=/tmp/provision.lock; fi
fi
# The processes holding the companion S open (the shells running an earlier run's steps, as root: all
# of them), each as the command it runs: 'pid N (command line)'.
held() {
  out= seen=
  for f in /proc/[0-9]*/fd/*; do
    [ "$f" -ef "$S" ] || continue
    p=\${f#/proc/}; p=\${p%%/*}
    case " $$ $seen " in *" $p "*) continue;; esac
    seen="$seen $p"
    c=$p; k=$(cat "/proc/$p/task/$p/children" 2>/dev/null); k=\${k%% *}
    [ -z "$k" ] || c=$k
    cmd=$(tr '\\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | cut -c1-72)
    if [ "$c" != "$p" ] && [ "$cmd" = "$(tr '\\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-72)" ]; then
      k=$(cat "/proc/$c/task/$c/children" 2>/dev/null); k=\${k%% *}
      [ -z "$k" ] || { c=$k; cmd=$(tr '\\0' ' ' <"/proc/$c/cmdline" 2>/dev/null | cut -c1-72); }
    fi
    out="$out\${out:+, }pid $c (\${cmd% })"
  done
  printf '%s' "$out"
}
state=none
if [ "$L" != - ]; then
  command -v flock >/dev/null 2>&1 || { echo NOFLOCK; exit 3; }
  I="$L.info" S="$L.steps"
  [ -e "$L" ] || (umask 0; mkdir -p "\${L%/*}" 2>/dev/null; : >>"$L") 2>/dev/null
  [ -r "$L" ] || { echo "NOLOCKFILE $L"; exit 3; }
  exec 9<"$L"
  end=$(( $(date +%s) + T ))
  waited=
  while :; do
    if flock -n 9; then state=own; break; fi
    holder=$(cat "$I" 2>/dev/null || true)
    case "$holder" in "$R "*) state=shared; break;; esac
    if [ "$(date +%s)" -ge "$end" ]; then printf 'BUSY %s\n' "$holder"; exit 75; fi
    [ -n "$waited" ] || printf 'WAIT %s\n' "$holder"
    waited=1
    sleep 0.2 2>/dev/null || sleep 1
  done
  if [ $state = own ]; then
    (umask 022; printf '%s %s\n' "$R" "$INFO" >"$I.$$" && mv -f "$I.$$" "$I") 2>/dev/null || rm -f "$I.$$" 2>/dev/null
  fi
  [ -e "$S" ] || (umask 0; : >>"$S") 2>/dev/null
  if [ -r "$S" ]; then
    exec 7<"$S"
    waited=
    until flock -n 7; do
      if [ "$(date +%s)" -ge "$end" ]; then
        # (\`exec 7<&-\`, not \`held 7<&-\`: a redirection of the call keeps a saved copy of fd 7 open.)
        printf 'HELD %s\n' "$(exec 7<&-; held)"
        IFS= read -r last 2>/dev/null <"$S" || true
        printf 'BUSYSTEPS %s\n' "$last"
        [ $state != own ] || rm -f "$I"
        exit 75
      fi
      [ -n "$waited" ] || echo 'WAIT steps'
      waited=1
      sleep 0.2 2>/dev/null || sleep 1
    done
    [ $state != own ] || (printf '%s %s\n' "$R" "$INFO" >"$S") 2>/dev/null
    exec 7<&-
    echo "STEPS $S"
    IFS= read -r rec 2>/dev/null <"$I" || true
    case "$rec" in "$R "*) echo "STEPCHECK $I";; esac
  fi
fi
if [ -n "$A" ]; then
  case "$A" in /*/*) d=\${A%/*};; /*) d=/;; *) d=.;; esac
  [ -d "$d" ] || mkdir -p "$d" 2>/dev/null
  if [ -w "$A" ] || { [ ! -e "$A" ] && [ -w "$d" ]; }; then (umask 027; : >>"$A"); exec 8>>"$A"; else echo "NOAUDIT $A"; A=; fi
fi
echo "LOCKED $state"
while IFS= read -r line; do
  [ -z "$A" ] || printf '%s\n' "$line" >&8
done
[ $state != own ] || rm -f "$I"
exit 0
`;

/** The command that starts the control session (`sh -c` with arguments; become decided on the host). */
export function controlCommand(o: ControlOptions): {readonly command: string; readonly framed?: Framed} {
  const args = [o.lockFile === null ? '-' : (o.lockFile ?? ''), String(Math.max(0, Math.ceil(o.timeoutS))), o.runId, o.info, o.auditLog ?? ''].map(q).join(' ');
  const run = `sh -c ${q(controlScript)} sh ${args}`;
  if (!o.become) return {command: `exec ${run}`};
  if (o.auth) {
    // With a password (framed on stdin, become.ts): root through it unless the login user is root. A
    // wrong password fails the host (one attempt); sudo refusing otherwise: the login user, as with
    // `sudo -n`. Not escalating, the framing is read off stdin here: no password line reaches the audit log.
    const framed = frame(`exec ${run}`, {user: 'root', ...o.auth}, {check: true, orLoginUser: true});
    return {framed, command: `if [ "$(id -u)" != 0 ]; then\n${framed.command}\nfi\n${framed.skip}\nexec ${run}`};
  }
  // The login user is root, or sudo -n works: root; else the login user (lock under /tmp).
  return {command: `if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then exec sudo -n -H -u root -- ${run}; else exec ${run}; fi`};
}

/** The outcome of starting the control session. */
export type Control =
  | {
      readonly ok: true;
      readonly state: 'own' | 'shared' | 'none';
      readonly audit: boolean;
      readonly session: RunningCommand;
      readonly auditNote?: string;
      /** The lock this run's steps hold while they run (none without a run lock). */
      readonly stepLock?: StepLock;
    }
  | {readonly ok: false; readonly msg: string; readonly interrupted?: boolean};

/** One info line of the lock file, as shown to people: the run id dropped. */
function holderText(line: string): string {
  const t = line.trim();
  const sp = t.indexOf(' ');
  return sp < 0 ? (t || 'another run (no details recorded)') : t.slice(sp + 1);
}

/** Start the control session on a host and wait until it holds the lock (or fails to). */
export async function startControl(t: Transport & {start: NonNullable<Transport['start']>}, o: ControlOptions): Promise<Control> {
  let buffer = '';
  let signalled: ((line: string) => void) | undefined;
  const lines: string[] = [];
  const gotLine = new Promise<string>((resolve) => {
    signalled = resolve;
  });
  const {command, framed} = controlCommand(o);
  const session = await t.start(command, (chunk) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      if (/^(LOCKED|BUSY|BUSYSTEPS|NOFLOCK|NOLOCKFILE)\b/.test(line)) signalled?.(line);
    }
  });
  if (framed) session.write(framed.stdin.reveal());
  let ended: ExecResult | undefined;
  const first = await Promise.race([gotLine, session.done.then((r) => {
    ended = r;
    return `EXIT ${r.code} ${r.stderr.trim().split('\n').slice(-1)[0] ?? ''}`;
  }), ...(o.interrupted ? [o.interrupted.then(() => 'INTERRUPTED')] : [])]);
  const noAudit = lines.find((l) => l.startsWith('NOAUDIT '));
  if (first.startsWith('LOCKED')) {
    const state = first.split(' ')[1] === 'own' ? 'own' : first.split(' ')[1] === 'shared' ? 'shared' : 'none';
    const steps = lines.find((l) => l.startsWith('STEPS '))?.slice(6);
    const check = lines.find((l) => l.startsWith('STEPCHECK '))?.slice(10);
    const stepLock: StepLock | undefined = steps ? {file: steps, ...(check ? {holder: {file: check, runId: o.runId}} : {})} : undefined;
    return {
      ok: true, state, audit: o.auditLog !== undefined && !noAudit, session,
      ...(noAudit ? {auditNote: `cannot append to the audit log ${noAudit.slice(8)}`} : {}),
      ...(stepLock ? {stepLock} : {}),
    };
  }
  session.end();
  // The remote wait ends with the connection, which the host's end closes.
  if (first === 'INTERRUPTED') return {ok: false, msg: 'interrupted while waiting for the run lock', interrupted: true};
  if (first.startsWith('BUSYSTEPS')) {
    const procs = lines.find((l) => l.startsWith('HELD '))?.slice(5).trim();
    const run = first.slice(10).trim();
    return {
      ok: false,
      msg: `locked by commands an earlier provision run left running: ${procs || 'processes not visible to this user'}${run ? `, started by ${holderText(run)}` : ''} (waited ${o.timeoutS} s; see --lock-timeout)`,
    };
  }
  if (first.startsWith('BUSY')) {
    return {ok: false, msg: `locked by another provision run: ${holderText(first.slice(5))} (waited ${o.timeoutS} s; see --lock-timeout)`};
  }
  if (first.startsWith('NOFLOCK')) return {ok: false, msg: 'cannot take the run lock: flock (util-linux) is not installed; set provision_lock: false to run without the lock'};
  if (first.startsWith('NOLOCKFILE')) return {ok: false, msg: `cannot take the run lock: cannot open ${first.slice(11)}; set provision_lock_file to a writable path`};
  const why = framed && ended ? framed.failure(ended) : undefined;
  if (why !== undefined) return {ok: false, msg: `become failed: ${why}`};
  return {ok: false, msg: `cannot take the run lock: the lock command ended early (${first.slice(5).trim()})`};
}
