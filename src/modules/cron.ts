/**
 * `cron`: one entry of a user's crontab, identified by its name as Ansible does: a marker comment
 * `#provision: <name>` on the line above the entry. The probe is `crontab -l` (the user's crontab as
 * cron sees it); the plan edits the text and installs it whole with `crontab -` (on stdin), so cron
 * reloads it and no spool file is written behind its back. Other lines are kept as they are.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Task, TaskOptions} from '../core/types.ts';

export interface CronArgs {
  /** The entry's name: written as `#provision: <name>` above it, and how later runs find it again. One line. */
  readonly name: string;
  /** Whose crontab (`crontab -u USER`; needs root for another user). Unset: the user the task runs as. */
  readonly user?: string;
  /** Minute field: `0`-`59`, a list, a range or a step (`*\/5`). Default `*`. */
  readonly minute?: string;
  /** Hour field, `0`-`23`. Default `*`. */
  readonly hour?: string;
  /** Day of the month field, `1`-`31`. Default `*`. */
  readonly day?: string;
  /** Month field, `1`-`12` or `jan`-`dec`. Default `*`. */
  readonly month?: string;
  /** Day of the week field, `0`-`7` (0 and 7 are Sunday) or `sun`-`sat`. Default `*`. */
  readonly weekday?: string;
  /** The command cron runs (one line; `%` is cron's newline: escape it as `\%`). Required for `present`. */
  readonly job?: string;
  /** `present` (default): the entry is there with this schedule and job; `absent`: the entry and its marker are removed. */
  readonly state?: 'present' | 'absent';
}

const cronArgs = z.strictObject({
  name: z.string(),
  user: z.optional(z.string()),
  minute: z.optional(z.string()),
  hour: z.optional(z.string()),
  day: z.optional(z.string()),
  month: z.optional(z.string()),
  weekday: z.optional(z.string()),
  job: z.optional(z.string()),
  state: z.optional(z.enum(['present', 'absent'])),
});
const cronInSync: Exact<z.infer<typeof cronArgs>, CronArgs> = true;

/** What `crontab -l` said. */
export type CrontabState =
  /** The user's crontab (empty when the user has none). */
  | {readonly kind: 'crontab'; readonly text: string}
  /** crontab could not answer (not installed, unknown user, not allowed): its message. */
  | {readonly kind: 'unavailable'; readonly message: string};

/** The marker line above an entry. */
export const cronMarker = (name: string): string => `#provision: ${name}`;

const userFlag = (user: string | undefined): string[] => (user === undefined ? [] : ['-u', user]);

/** The probe: `ok` then the crontab, or `err` then crontab's message. */
export function cronProbeScript(user: string | undefined): string {
  const cmd = ['crontab', ...userFlag(user), '-l'].map(q).join(' ');
  // `$(…)` drops trailing newlines: the parser puts one back.
  return `if out=$(${cmd} 2>&1); then echo ok; else echo err; fi; printf '%s\\n' "$out"`;
}

/** Pure parser of `cronProbeScript`'s output. */
export function parseCrontab(stdout: string): CrontabState {
  const nl = stdout.indexOf('\n');
  const head = nl < 0 ? stdout : stdout.slice(0, nl);
  const body = nl < 0 ? '' : stdout.slice(nl + 1).replace(/\n+$/, '');
  if (head === 'ok') return {kind: 'crontab', text: body === '' ? '' : `${body}\n`};
  // Debian, RHEL and busybox all say "no crontab for <user>" when the user has none yet.
  if (head === 'err' && /no crontab for/i.test(body)) return {kind: 'crontab', text: ''};
  return {kind: 'unavailable', message: body.trim() || 'crontab printed nothing'};
}

/** The entry line the arguments describe. */
export function cronEntry(a: CronArgs): string {
  return [a.minute ?? '*', a.hour ?? '*', a.day ?? '*', a.month ?? '*', a.weekday ?? '*', a.job ?? ''].join(' ');
}

/** Pure: the crontab after the edit. Every entry of the name is handled (a duplicate left by hand is removed). */
export function editCrontab(text: string, a: CronArgs): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const marker = cronMarker(a.name);
  const out: string[] = [];
  let placed = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() !== marker) {
      out.push(line);
      continue;
    }
    // The marker and the line under it (when that is not another marker) belong to the entry.
    const next = lines[i + 1];
    if (next !== undefined && !next.startsWith('#provision: ')) i++;
    if ((a.state ?? 'present') === 'present' && !placed) {
      out.push(marker, cronEntry(a));
      placed = true;
    }
  }
  if ((a.state ?? 'present') === 'present' && !placed) out.push(marker, cronEntry(a));
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

const fieldRe = /^[A-Za-z0-9*,\/-]+$/;

function problem(a: CronArgs): string | undefined {
  if (a.name === '' || /[\r\n]/.test(a.name)) return 'name must be one non-empty line';
  if ((a.state ?? 'present') === 'present' && (a.job === undefined || a.job.trim() === '')) return "state 'present' needs job";
  if (a.job !== undefined && /[\r\n]/.test(a.job)) return 'job must be one line';
  for (const f of ['minute', 'hour', 'day', 'month', 'weekday'] as const) {
    const v = a[f];
    if (v !== undefined && !fieldRe.test(v)) return `${f}: '${v}' is not a cron field (digits, names, '*', ',', '-', '/')`;
  }
  return undefined;
}

const who = (user: string | undefined): string => (user === undefined ? 'crontab' : `crontab of ${user}`);

export const cronModule: ModuleDef<CronArgs, CrontabState> = {
  name: 'cron',
  schema: cronArgs,
  describe: (a) => `${a.name}${a.user ? ` (${a.user})` : ''}${(a.state ?? 'present') === 'absent' ? ' absent' : ''}`,
  probe: (a): Probe<CrontabState> => ({script: cronProbeScript(a.user), parse: (out) => parseCrontab(out.stdout)}),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    if (have.kind === 'unavailable') return {steps: [], fail: `cannot read the ${who(a.user)}: ${have.message}`};
    const after = editCrontab(have.text, a);
    if (after === have.text) {
      return {steps: [], reason: (a.state ?? 'present') === 'absent' ? `no entry '${a.name}'` : `already ${cronEntry(a)}`};
    }
    const existed = have.text.split('\n').some((l) => l.trim() === cronMarker(a.name));
    const reason = (a.state ?? 'present') === 'absent' ? `remove entry '${a.name}'` : existed ? `update entry '${a.name}'` : `add entry '${a.name}'`;
    return {
      steps: [{kind: 'exec', cmd: argv('crontab', ...userFlag(a.user), '-'), stdin: Buffer.from(after)}],
      diff: {path: who(a.user), before: have.text, after},
      reason,
    };
  },
};

/** An entry of a user's crontab, found again by its name. */
export const cron = (args: ArgsOf<CronArgs>, options?: TaskOptions): Task => makeTask(cronModule, args, options);

void cronInSync;
