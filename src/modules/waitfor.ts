/**
 * `waitFor`: wait until a TCP port answers (or stops answering), a file exists (or is gone), or a file
 * holds a line matching a regular expression. It changes nothing: its result is `ok` (the task sets
 * `changedWhen: () => false` unless the playbook gives its own), or `failed` at the timeout with what
 * was awaited.
 *
 * The probe tests the condition once, at once (it runs in the play's probe batch, which must never
 * block): met → nothing to do. Not met → one step, a POSIX sh loop on the host that tests every second
 * until the condition holds or `timeout` seconds have passed. A port is tested with `nc -z` when the
 * host has it, else with bash's `/dev/tcp` (not in POSIX sh), else the task fails saying neither is
 * there.
 *
 * Check mode: the condition is read (harmless), never waited for: met → `ok`; not met → `ok` with
 * "would wait for …" (under --check an earlier task that would start the service did not). Give the
 * task `checkMode: false` to really wait under --check, as Ansible's wait_for does.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Task, TaskOptions} from '../core/types.ts';

export interface WaitForArgs {
  /** A TCP port to wait for (on `host`). Give `port` or `path`, not both. */
  readonly port?: number;
  /** The address of `port`, as the host resolves it. Default `127.0.0.1`. */
  readonly host?: string;
  /** A file to wait for (or, with `state: 'absent'`, to disappear). */
  readonly path?: string;
  /** With `path`: wait until a line of the file matches this extended regular expression (`grep -E`). */
  readonly search?: string;
  /**
   * `started` (default): the port accepts connections, the file exists (and matches `search`).
   * `stopped`: the port refuses connections. `present` is `started`, `absent` is `stopped`, for files.
   */
  readonly state?: 'started' | 'stopped' | 'present' | 'absent';
  /** Seconds to wait before failing. Default 300 (Ansible's). */
  readonly timeout?: number;
}

const waitForArgs = z.strictObject({
  port: z.optional(z.int().check(z.minimum(1), z.maximum(65535))),
  host: z.optional(z.string()),
  path: z.optional(z.string()),
  search: z.optional(z.string()),
  state: z.optional(z.enum(['started', 'stopped', 'present', 'absent'])),
  timeout: z.optional(z.int().check(z.nonnegative({error: 'expected 0 or more'}))),
});
const waitForInSync: Exact<z.infer<typeof waitForArgs>, WaitForArgs> = true;

/** What the probe saw: the condition holds now or not, or the host cannot test it. */
export type WaitState =
  | {readonly kind: 'met'}
  | {readonly kind: 'unmet'}
  | {readonly kind: 'unavailable'; readonly message: string};

const NO_TOOL = 'waitFor: the host has neither nc nor bash: cannot test a TCP port';

/** `true` when the wait ends on the condition being true (started/present), false for stopped/absent. */
const wantsUp = (a: WaitForArgs): boolean => a.state === undefined || a.state === 'started' || a.state === 'present';

/**
 * Shell defining `__check` (exit 0: the thing is there: port answers, file exists and matches), or
 * printing NO_TOOL and returning 2 when it cannot.
 */
export function checkFunction(a: WaitForArgs): string {
  if (a.port !== undefined) {
    const h = q(a.host ?? '127.0.0.1');
    const p = q(String(a.port));
    return [
      'if command -v nc >/dev/null 2>&1; then __check() { nc -z -w 1 ' + `${h} ${p}` + ' >/dev/null 2>&1 </dev/null; }',
      // bash's /dev/tcp, bounded by timeout(1) when there is one (a filtered port never answers).
      'elif command -v bash >/dev/null 2>&1; then __t=; command -v timeout >/dev/null 2>&1 && __t="timeout 2"',
      `  __check() { $__t bash -c 'exec 3<>"/dev/tcp/$0/$1"' ${h} ${p} >/dev/null 2>&1 </dev/null; }`,
      `else __check() { echo ${q(NO_TOOL)}; return 2; }; fi`,
    ].join('\n');
  }
  const p = q(a.path ?? '');
  if (a.search !== undefined) return `__check() { [ -f ${p} ] && grep -Eq -- ${q(a.search)} ${p} 2>/dev/null; }`;
  return `__check() { [ -e ${p} ]; }`;
}

/** The probe: `met`, `unmet`, or NO_TOOL. Tests once, without waiting. */
export function waitForProbeScript(a: WaitForArgs): string {
  return `${checkFunction(a)}\n__check; case $? in 0) echo up;; 2) ;; *) echo down;; esac`;
}

/** Pure parser of `waitForProbeScript`'s output, for the arguments' state. */
export function parseWaitState(stdout: string, a: WaitForArgs): WaitState {
  const t = stdout.trim();
  if (t === 'up' || t === 'down') return (t === 'up') === wantsUp(a) ? {kind: 'met'} : {kind: 'unmet'};
  return {kind: 'unavailable', message: t || 'the test printed nothing'};
}

/** What is awaited, in words: `port 8080 on 127.0.0.1 to answer`. */
export function awaited(a: WaitForArgs): string {
  const up = wantsUp(a);
  if (a.port !== undefined) return `port ${a.port} on ${a.host ?? '127.0.0.1'} to ${up ? 'answer' : 'close'}`;
  if (a.search !== undefined) return `${a.path} to match /${a.search}/`;
  return `${a.path} to ${up ? 'exist' : 'disappear'}`;
}

/** The waiting loop (POSIX sh, run with `sh -s`): prints `waited N s`, or fails with the reason on stderr. */
export function waitScript(a: WaitForArgs): string {
  const timeout = a.timeout ?? 300;
  const until = wantsUp(a) ? '[ $__rc -eq 0 ]' : '[ $__rc -eq 1 ]';
  return [
    checkFunction(a),
    '__start=$(date +%s)',
    'while :; do',
    '  __check; __rc=$?',
    `  [ $__rc -eq 2 ] && { echo ${q(NO_TOOL)} >&2; exit 2; }`,
    `  ${until} && break`,
    `  [ $(( $(date +%s) - __start )) -lt ${timeout} ] || { echo ${q(`timed out after ${timeout} s waiting for ${awaited(a)}`)} >&2; exit 1; }`,
    '  sleep 1',
    'done',
    'echo "waited $(( $(date +%s) - __start )) s"',
  ].join('\n');
}

/** The condition as met, in words: `port 8080 on 127.0.0.1 answers`. */
export function already(a: WaitForArgs): string {
  const up = wantsUp(a);
  if (a.port !== undefined) return `port ${a.port} on ${a.host ?? '127.0.0.1'} ${up ? 'answers' : 'is closed'}`;
  if (a.search !== undefined) return `${a.path} matches /${a.search}/`;
  return `${a.path} ${up ? 'exists' : 'is absent'}`;
}

function problem(a: WaitForArgs): string | undefined {
  if ((a.port === undefined) === (a.path === undefined)) return 'give port or path (one of them)';
  if (a.port !== undefined && (a.state === 'present' || a.state === 'absent')) return `a port is 'started' or 'stopped', not '${a.state}'`;
  if (a.path !== undefined && !a.path.startsWith('/')) return `path must be an absolute path, got '${a.path}'`;
  if (a.search !== undefined && (a.path === undefined || !wantsUp(a))) return "search needs path and state 'present'";
  if (a.host !== undefined && a.port === undefined) return 'host goes with port';
  return undefined;
}

export const waitForModule: ModuleDef<WaitForArgs, WaitState> = {
  name: 'wait_for',
  schema: waitForArgs,
  describe: (a) => awaited(a),
  probe: (a): Probe<WaitState> => ({script: waitForProbeScript(a), parse: (out) => parseWaitState(out.stdout, a)}),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    if (have.kind === 'unavailable') return {steps: [], fail: have.message};
    if (have.kind === 'met') return {steps: [], reason: already(a)};
    return {
      steps: [{
        kind: 'exec',
        cmd: argv('sh', '-s'),
        stdin: Buffer.from(waitScript(a)),
        note: (r) => /waited \d+ s/.exec(r.stdout)?.[0],
      }],
      reason: `wait for ${awaited(a)}`,
    };
  },
};

/** Wait for a port, a file or a line in a file; never a change, a failure at the timeout. */
export const waitFor = (args: ArgsOf<WaitForArgs>, options?: TaskOptions): Task =>
  makeTask(waitForModule, args, {changedWhen: () => false, ...options});

void waitForInSync;
