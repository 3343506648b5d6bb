/**
 * Async jobs (`async`/`poll` on a task): a command started detached on the host (its own session,
 * stdin from /dev/null, output to files beside its exit status), then polled until it ends or its time
 * runs out. The job does not depend on the connection that started it: a dropped SSH connection (or a
 * killed controller) leaves it running, and a new connection polls it by its path. Pure script
 * builders and a parser; the engine runs them.
 */
import {q} from './cmd.ts';

/** The job's files: `<path>.pid`, `.out`, `.err`, `.rc` (written last, by rename: the job has ended). */
export function jobPath(id: string): string {
  return `\${TMPDIR:-/tmp}/.provision-async-$(id -u)/${id}`;
}

/** Start `command` as job `id` (a private folder per user); prints `STARTED <pid>`. */
export function startScript(id: string, command: string): string {
  const body = `(\n${command}\n)\nr=$?\necho $r > "$0.rc.tmp" && mv -f "$0.rc.tmp" "$0.rc"`;
  return [
    `j="${jobPath(id)}"`,
    '(umask 077; mkdir -p "${j%/*}")',
    `setsid sh -c ${q(body)} "$j" </dev/null >"$j.out" 2>"$j.err" &`,
    'echo $! > "$j.pid"',
    'echo "STARTED $!"',
  ].join('\n');
}

/**
 * Ask how job `id` is: `RUNNING`, `LOST` (no trace of it: another user's, or cleaned up), or
 * `DONE <rc>` followed by its stdout, a line `marker`, and its stderr.
 */
export function pollScript(id: string, marker: string): string {
  return [
    `j="${jobPath(id)}"`,
    'if [ -e "$j.rc" ]; then',
    '  echo "DONE $(cat "$j.rc")"; cat "$j.out" 2>/dev/null',
    `  echo; echo ${q(marker)}; cat "$j.err" 2>/dev/null`,
    'elif [ -e "$j.pid" ]; then echo RUNNING',
    'else echo LOST; fi',
  ].join('\n');
}

/**
 * Remove job `id`'s files; with `kill`, end the job first: its whole process group (the job is a
 * session leader), TERM then KILL. (`kill -- -PID` is not POSIX sh: dash refuses the `--`.)
 */
export function endScript(id: string, kill: boolean): string {
  return [
    `j="${jobPath(id)}"`,
    ...(kill ? ['p=$(cat "$j.pid" 2>/dev/null)', '[ -z "$p" ] || { kill -TERM "-$p" 2>/dev/null; sleep 1; kill -KILL "-$p" 2>/dev/null; }'] : []),
    'rm -f "$j.pid" "$j.out" "$j.err" "$j.rc" "$j.rc.tmp"',
  ].join('\n');
}

export type JobState =
  | {readonly kind: 'running'}
  | {readonly kind: 'lost'}
  | {readonly kind: 'done'; readonly rc: number; readonly stdout: string; readonly stderr: string};

/** Parse `pollScript`'s output. */
export function parsePoll(stdout: string, marker: string): JobState {
  if (stdout.startsWith('RUNNING')) return {kind: 'running'};
  const m = /^DONE (-?\d+)\n/.exec(stdout);
  if (!m) return {kind: 'lost'};
  const rest = stdout.slice(m[0].length);
  const at = rest.lastIndexOf(`\n${marker}\n`);
  if (at < 0) return {kind: 'done', rc: Number(m[1]), stdout: rest, stderr: ''};
  // The newline before the marker is the `echo`'s: what comes before it is the output, as it was.
  return {kind: 'done', rc: Number(m[1]), stdout: rest.slice(0, at), stderr: rest.slice(at + marker.length + 2)};
}
