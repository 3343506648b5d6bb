/**
 * `stat`: what a path is on the host, for later tasks (Ansible's stat). Read-only: the probe reads the
 * path, the plan never has a step, so the task is `ok` in every mode (check mode too) and its result
 * is available to `register`.
 *
 * What it found is the result's `data` (its message says it in words); `statOf(result)` reads it, typed:
 *
 *   stat({path: '/etc/nginx/nginx.conf'}, {register: 'conf'}),
 *   copy({...}, {when: (ctx) => !statOf(ctx.results.conf).exists}),
 */
import {q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Task, TaskOptions, TaskResult} from '../core/types.ts';

export interface StatArgs {
  /** Absolute path to look at. */
  readonly path: string;
  /** Also compute the file's sha256 (regular files only; reads the whole file). Default false. */
  readonly checksum?: boolean;
  /** Look at what a symlink points to rather than at the link itself (default false, as Ansible). */
  readonly follow?: boolean;
}

const statArgs = z.strictObject({path: z.string(), checksum: z.optional(z.boolean()), follow: z.optional(z.boolean())});
const statInSync: Exact<z.infer<typeof statArgs>, StatArgs> = true;

export type StatType = 'file' | 'directory' | 'link' | 'fifo' | 'socket' | 'char' | 'block' | 'other';

/** What `stat` found, the JSON in its result's `msg`. */
export type StatResult =
  | {readonly exists: false}
  | {
      readonly exists: true;
      readonly type: StatType;
      /** Permission bits in octal, e.g. '0644' (with setuid/setgid/sticky: '4755'). */
      readonly mode: string;
      readonly owner: string;
      readonly group: string;
      readonly uid: number;
      readonly gid: number;
      /** Bytes. */
      readonly size: number;
      /** Last modification, seconds since the epoch. */
      readonly mtime: number;
      /** A link's target (type 'link' only). */
      readonly target?: string;
      /** With `checksum`, for a regular file. */
      readonly sha256?: string;
    };

/** The probe's answer: a stat, or why there is none. */
export type StatState = {readonly kind: 'stat'; readonly stat: StatResult} | {readonly kind: 'error'; readonly message: string};

/** Shell printing `missing`, or `present`, stat's fields one a line, the link target and the sha256 (empty lines when not asked). */
export function statProbeScript(a: StatArgs): string {
  const p = q(a.path);
  const L = a.follow ? '-L ' : '';
  const regular = a.follow ? `[ -f ${p} ]` : `[ -f ${p} ] && [ ! -L ${p} ]`;
  return [
    `if [ -e ${p} ] || [ -L ${p} ]; then`,
    `  s=$(LC_ALL=C stat ${L}--printf '%F\\n%a\\n%U\\n%G\\n%u\\n%g\\n%s\\n%Y\\n' -- ${p} 2>&1) || { printf 'error\\n%s\\n' "$s"; exit 0; }`,
    `  printf 'present\\n%s\\n' "$s"`,
    a.follow ? '  echo' : `  if [ -L ${p} ]; then readlink -- ${p}; else echo; fi`,
    a.checksum ? `  if ${regular}; then sha256sum -- ${p} 2>/dev/null | cut -c1-64; else echo; fi` : '  echo',
    'else echo missing; fi',
  ].join('\n');
}

const types: Record<string, StatType> = {
  'regular file': 'file',
  'regular empty file': 'file',
  directory: 'directory',
  'symbolic link': 'link',
  fifo: 'fifo',
  socket: 'socket',
  'character special file': 'char',
  'block special file': 'block',
};

/** Pure parser of `statProbeScript`'s output. */
export function parseStat(stdout: string): StatState {
  const l = stdout.split('\n');
  if (l[0] === 'missing') return {kind: 'stat', stat: {exists: false}};
  if (l[0] === 'error') return {kind: 'error', message: (l[1] ?? '').trim() || 'stat failed'};
  if (l[0] !== 'present' || l.length < 11) return {kind: 'error', message: `unexpected probe output: ${JSON.stringify(stdout.slice(0, 200))}`};
  const [, kind = '', mode = '', owner = '', group = '', uid = '', gid = '', size = '', mtime = '', target = '', sha = ''] = l;
  const type = types[kind] ?? 'other';
  return {
    kind: 'stat',
    stat: {
      exists: true, type, mode: mode.padStart(4, '0'), owner, group, uid: Number(uid), gid: Number(gid), size: Number(size), mtime: Number(mtime),
      ...(type === 'link' ? {target} : {}),
      ...(/^[0-9a-f]{64}$/.test(sha) ? {sha256: sha} : {}),
    },
  };
}

export const statModule: ModuleDef<StatArgs, StatState> = {
  name: 'stat',
  schema: statArgs,
  describe: (a) => a.path,
  probe: (a) => ({script: statProbeScript(a), parse: (out) => parseStat(out.stdout)}),
  plan(have, a): Plan {
    if (!a.path.startsWith('/')) return {steps: [], fail: `path must be an absolute path, got '${a.path}'`};
    if (have.kind === 'error') return {steps: [], fail: `cannot stat ${a.path}: ${have.message}`};
    const s = have.stat as {exists: boolean; type?: string};
    return {steps: [], data: have.stat, reason: s.exists ? `${a.path}: ${s.type ?? 'present'}` : `${a.path}: absent`};
  },
};

/** Look at a path (read-only, never changes anything); `register` the result and read it with `statOf`. */
export const stat = (args: ArgsOf<StatArgs>, options?: TaskOptions): Task => makeTask(statModule, args, options);

/**
 * The data of a registered `stat` result. Throws when the result is not one (a skipped or failed task,
 * another module's result): a condition on a stat that did not happen is a playbook error.
 */
export function statOf(result: TaskResult | undefined): StatResult {
  if (!result) throw new Error('statOf: no such registered result');
  if (result.status !== 'ok') throw new Error(`statOf: the stat task was ${result.status}: ${result.msg}`);
  const data = result.data;
  if (typeof data !== 'object' || data === null || typeof (data as {exists?: unknown}).exists !== 'boolean') throw new Error(`statOf: not a stat result: ${result.msg}`);
  return data as StatResult;
}

void statInSync;
