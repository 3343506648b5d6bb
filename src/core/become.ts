/**
 * Privilege escalation with a password: `ansible_become_password` (a vault value, or `-K`) and
 * `ansible_become_method` (`sudo`, the default, or `su`). The password travels on the escalating
 * command's stdin, and only there: never in an argv, an environment, a file on the host, a log line
 * or an event. Without a password, sudo is `sudo -n` as before (cmd.ts `becomeWrap`).
 *
 * How the others do it, and why this is different:
 * - Ansible answers the prompt as it appears: `sudo -p '[sudo via ansible, key=…] password:'`, its
 *   connection reads the output as it arrives, writes the password when it sees the prompt, waits for
 *   `BECOME-SUCCESS-…` and kills the command on `Sorry, try again.`; `su` gets a terminal (`ssh -tt`,
 *   so no pipelining). Two more round trips per command, and a streaming transport.
 * - pyinfra writes an askpass script to /tmp and runs `env SUDO_ASKPASS=… PYINFRA_SUDO_PASSWORD=… sudo
 *   -A -k`: the password is in the remote shell's command line (`ps` shows it) and environment.
 *
 * Here the password goes ahead of the command's own stdin, in the same round trip, no terminal:
 *
 *     <password>\n<filler>\n<filler>\n<marker>\n<the command's own stdin: a probe batch, a file…>
 *
 * `sudo -S -k` reads exactly one line, a byte at a time (`-k`: always asks, whatever it cached);
 * util-linux `su` (Debian 9 and later) reads it through PAM's conversation, a byte at a time too, from
 * a pipe as well as a terminal. The command, run by `sh` as the target user, first reads lines up to
 * the marker: a password sudo or su did not read (NOPASSWD, or the login user is root) is dropped
 * there, so it never mixes with the command's data. Then it says `<marker> ok` on stderr (dropped from
 * the result with the prompts): without it the escalation failed and the command did not run.
 *
 * A wrong password fails fast, and never reads the data: su tries once; sudo asks again
 * (`passwd_tries`, 3 by default) and reads the fillers, not the marker nor the data. `check` first
 * tries the password alone, `printf | sudo -S` (a shell builtin: no process shows it), its stdin ending
 * after it: one attempt, then sudo stops. The control session (once per host per run) and `ping` and
 * `exec` check; a task's command does not (it would authenticate twice), so a wrong password on a
 * host whose tasks become per task costs sudo's tries at the first of them. A sudo prompt seen more
 * than once is a wrong password; sudo's prompt carries a random key, so this reads no localised text.
 */
import {randomBytes} from 'node:crypto';
import {q} from '../shared/quote.ts';
import {Secret} from './secret.ts';
import type {ExecResult} from '../transport/types.ts';

/** How to become another user. */
export type BecomeMethod = 'sudo' | 'su';

export const BECOME_METHODS: readonly BecomeMethod[] = ['sudo', 'su'];

/** Whom a command runs as, and how it gets there. */
export interface BecomeAs {
  /** The target user. */
  readonly user: string;
  /** Default `sudo`. */
  readonly method?: BecomeMethod;
  /** sudo: the login user's password; su: the target user's. */
  readonly password?: Secret;
}

/** The escalation failed: the command did not run. The message says why, in one line. */
export class BecomeError extends Error {
  constructor(why: string) {
    super(`become failed: ${why}`);
    this.name = 'BecomeError';
  }
}

/** The host variables that hold the become password (Ansible's name, and its older alias). */
export const BECOME_PASSWORD_VARS = ['ansible_become_password', 'ansible_become_pass'] as const;

/** A password variable's value: a string (a vault value is one) or a `Secret`. */
function passwordValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  return v instanceof Secret ? v.reveal() : undefined;
}

/**
 * A host's become method and password, from its variables (`ansible_become_method`,
 * `ansible_become_password`), or why they cannot be used. An empty password is none.
 */
export function becomeVars(vars: Readonly<Record<string, unknown>>): {readonly method: BecomeMethod; readonly password?: Secret} | {readonly error: string} {
  const m = vars.ansible_become_method ?? 'sudo';
  const method = BECOME_METHODS.find((x) => x === m);
  if (method === undefined) return {error: `ansible_become_method ${JSON.stringify(m)} is not supported (${BECOME_METHODS.join(' or ')})`};
  const key = BECOME_PASSWORD_VARS.find((k) => vars[k] !== undefined && vars[k] !== null);
  if (key === undefined) return {method};
  const clear = passwordValue(vars[key]);
  if (clear === undefined) return {error: `${key} must be a string`};
  if (/[\r\n]/.test(clear)) return {error: `${key} holds a line break (${method} reads one line)`};
  return clear === '' ? {method} : {method, password: new Secret(clear)};
}

/** Whether commands as `as` go through the framing here (else `sudo -n`, which reads no password). */
export function needsFraming(as: BecomeAs): boolean {
  return as.password !== undefined || as.method === 'su';
}

/** A command wrapped to run as another user, with what goes ahead of its stdin. */
export interface Framed {
  /** The command line, for the login user's shell. No secret in it. */
  readonly command: string;
  /** What the command reads before its own stdin: the password (twice with `check`), fillers, the marker. */
  readonly stdin: Secret;
  /** A shell line that reads the framing off stdin, for a branch of a bigger command that does not escalate. */
  readonly skip: string;
  /** Why the escalation failed (one line), or undefined: it worked, or was never tried. */
  failure(r: ExecResult): string | undefined;
  /** The command's result, the escalation's own output (prompts, markers) dropped; throws `BecomeError` when it failed. */
  outcome(r: ExecResult): ExecResult;
}

/** Lines sent after the password for sudo's further tries to read (its default `passwd_tries` is 3). */
const FILLERS = 2;

/** The last line worth showing of what the escalation printed, shortened. */
function lastLine(text: string): string | undefined {
  const line = text.split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
  return line && line.length > 240 ? `${line.slice(0, 237)}...` : line;
}

/** How `frame` tries a sudo password first. */
export interface FrameOptions {
  /** Try the password alone first, so that a wrong one fails after one attempt. */
  readonly check?: boolean;
  /**
   * With `check`: when sudo refuses for another reason than a wrong password (not allowed, no sudo),
   * do not fail: go on with the shell lines after the command, as the login user, the framing still
   * on stdin (`skip` reads it off). The control session does so, as it does when `sudo -n` refuses.
   */
  readonly orLoginUser?: boolean;
}

/**
 * `command` (a shell command line) run as `as.user` by sudo or su, its password framed on stdin (see
 * the file's comment and `FrameOptions`).
 */
export function frame(command: string, as: BecomeAs, options: FrameOptions = {}): Framed {
  const method = as.method ?? 'sudo';
  const password = as.password?.reveal() ?? '';
  if (/[\r\n]/.test(password)) throw new BecomeError(`the password holds a line break (${method} reads one line)`);
  const key = randomBytes(8).toString('hex');
  const mark = `__provision_become_${key}__`;
  const prompt = `[sudo via provision, key=${key}] password:`;
  const [begin, ok] = [`${mark} begin`, `${mark} ok`];
  const inner = `while :; do IFS= read -r __l || exit 125; [ "$__l" = ${mark} ] && break; done; unset __l; echo '${ok}' >&2\n${command}`;
  const sudo = (cmd: string): string => `sudo -S -k -p ${q(prompt)} -H -u ${q(as.user)} -- sh -c ${q(cmd)}`;
  const escalate = method === 'su' ? `su -s /bin/sh -c ${q(inner)} ${q(as.user)}` : sudo(inner);
  const check = options.check === true && method === 'sudo';
  // What sudo said when the password alone failed, shown as the escalation's own output.
  const report = `echo '${begin}' >&2; printf '%s\\n' "$__e" >&2; exit 125`;
  // `printf` is a builtin: no process holds the password in its argv.
  const line = check
    ? `IFS= read -r __p || exit 125\n` +
      `if __e=$(printf '%s\\n' "$__p" | ${sudo(':')} 2>&1 >/dev/null); then unset __p __e; echo '${begin}' >&2; exec ${escalate}; fi\nunset __p\n` +
      (options.orLoginUser ? `case $__e in *${q(prompt)}*${q(prompt)}*) ${report};; esac\nunset __e` : report)
    : `echo '${begin}' >&2\nexec ${escalate}`;
  const lines = [...(check ? [password] : []), password, ...Array.from({length: FILLERS}, (_, i) => `${mark} try ${i + 2}`), mark];
  const failure = (r: ExecResult): string | undefined => {
    const at = r.stderr.indexOf(`${begin}\n`);
    if (at < 0 || r.stderr.includes(`${ok}\n`)) return undefined;
    const said = r.stderr.slice(at + begin.length + 1);
    if (method === 'sudo' && said.split(prompt).length > 2) return 'incorrect sudo password';
    if (method === 'su' && /authentication failure/i.test(said)) {
      return password === '' ? 'su asks for a password: set ansible_become_password, or use -K' : 'incorrect su password';
    }
    return lastLine(said.split(prompt).join('')) ?? `${method} exited with ${r.code}`;
  };
  return {
    command: line,
    stdin: new Secret(lines.map((l) => `${l}\n`).join('')),
    skip: `while IFS= read -r __l; do [ "$__l" = ${mark} ] && break; done; unset __l`,
    failure,
    outcome(r) {
      const why = failure(r);
      if (why !== undefined) throw new BecomeError(why);
      const from = r.stderr.indexOf(`${begin}\n`);
      const to = r.stderr.indexOf(`${ok}\n`);
      if (from < 0 || to < 0) return r;
      return {...r, stderr: r.stderr.slice(0, from) + r.stderr.slice(to + ok.length + 1)};
    },
  };
}
