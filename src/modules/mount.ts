/**
 * `mount`: a file system's line in `/etc/fstab` and whether it is mounted now. One probe reads fstab
 * (whole, for the diff) and asks `findmnt` what is mounted on the path; the plan rewrites fstab
 * atomically when its line differs (other lines kept byte for byte) and mounts, remounts or unmounts
 * as the state asks: `mount <path>` reads the new fstab line, so the two never disagree.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';
import {fileProbeScript, parseFileState, type FileState} from '../facts/file.ts';

export interface MountArgs {
  /** The mount point, absolute (`/srv/data`). */
  readonly path: string;
  /** What is mounted: a device (`/dev/sdb1`), `UUID=…`, `LABEL=…`, `server:/export`, `tmpfs`. Required unless `state: 'absent'` or `'unmounted'`. */
  readonly src?: string;
  /** The file system type (`ext4`, `xfs`, `nfs`, `tmpfs`). Required unless `state: 'absent'` or `'unmounted'`. */
  readonly fstype?: string;
  /** Mount options, comma-separated or a list (default `defaults`). */
  readonly opts?: string | readonly string[];
  /** fstab's fifth field, for dump(8) (default 0). */
  readonly dump?: number;
  /** fstab's sixth field, fsck's order at boot: 0 never (default), 1 the root file system, 2 the others. */
  readonly passno?: number;
  /**
   * `mounted`: in fstab and mounted now (`mkdir -p`, then `mount`; an fstab change while mounted
   * remounts); `present`: in fstab only, not mounted by this task; `unmounted`: unmounted now, fstab
   * untouched; `absent`: unmounted and its fstab line removed.
   */
  readonly state: 'mounted' | 'present' | 'unmounted' | 'absent';
  /** The fstab file. Default `/etc/fstab`; tests point it at a temp file. */
  readonly fstab?: string;
}

const mountArgs = z.strictObject({
  path: z.string(),
  src: z.optional(z.string()),
  fstype: z.optional(z.string()),
  opts: z.optional(z.union([z.string(), z.array(z.string())])),
  dump: z.optional(z.int().check(z.nonnegative({error: 'expected 0 or more'}))),
  passno: z.optional(z.int().check(z.nonnegative({error: 'expected 0 or more'}))),
  state: z.enum(['mounted', 'present', 'unmounted', 'absent']),
  fstab: z.optional(z.string()),
});
const mountInSync: Exact<z.infer<typeof mountArgs>, MountArgs> = true;

/** What is mounted on the path now (`findmnt`), or nothing. */
export type Mounted = {readonly kind: 'none'} | {readonly kind: 'mounted'; readonly source: string; readonly fstype: string; readonly options: string};

export interface MountState {
  readonly fstab: FileState;
  readonly mounted: Mounted;
}

/** fstab's escapes of a field (fstab(5)): space, tab, newline, backslash as octal. */
export const fstabEscape = (s: string): string => s.replace(/[\\ \t\n]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
const fstabUnescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
const norm = (p: string): string => p.replace(/(.)\/+$/, '$1');
const optsOf = (o: MountArgs['opts']): string => (o === undefined ? [] : typeof o === 'string' ? o.split(',') : [...o]).map((s) => s.trim()).filter((s) => s !== '').join(',') || 'defaults';

/** The fstab line the arguments describe (no newline). */
export function fstabLine(a: MountArgs): string {
  return [a.src ?? '', norm(a.path), a.fstype ?? '', optsOf(a.opts), String(a.dump ?? 0), String(a.passno ?? 0)].map(fstabEscape).join(' ');
}

/** The mount point of an fstab line, or undefined for comments and blank lines. */
function mountPointOf(line: string): string | undefined {
  if (/^\s*(#|$)/.test(line)) return undefined;
  const f = line.trim().split(/\s+/);
  return f[1] === undefined ? undefined : norm(fstabUnescape(f[1]));
}

/** Fields of a line as compared: all six, dump and passno defaulted to 0 as mount reads them. */
const fieldsOf = (line: string): string => {
  const f = line.trim().split(/\s+/);
  return [f[0], f[1], f[2], f[3] ?? 'defaults', f[4] ?? '0', f[5] ?? '0'].join(' ');
};

/**
 * fstab's text with the path's line set to `line` (the first line for the path replaced, later ones
 * dropped, else appended) or removed (`line` undefined). Pure; other lines are kept as they are.
 */
export function editFstab(text: string, path: string, line: string | undefined): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let placed = false;
  for (const l of lines) {
    if (mountPointOf(l) !== norm(path)) out.push(l);
    else if (line !== undefined && !placed) {
      out.push(fieldsOf(l) === fieldsOf(line) ? l : line);
      placed = true;
    }
  }
  if (line !== undefined && !placed) out.push(line);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** Pure parser of `findmnt -P -o SOURCE,FSTYPE,OPTIONS`'s line. */
export function parseFindmnt(stdout: string): Mounted {
  const line = stdout.split('\n').find((l) => l.startsWith('SOURCE='));
  if (line === undefined) return {kind: 'none'};
  const field = (k: string): string => {
    const v = new RegExp(`\\b${k}="((?:[^"\\\\]|\\\\.)*)"`).exec(line)?.[1] ?? '';
    return v.replace(/\\x([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  };
  return {kind: 'mounted', source: field('SOURCE'), fstype: field('FSTYPE'), options: field('OPTIONS')};
}

function problem(a: MountArgs): string | undefined {
  if (!a.path.startsWith('/')) return `path must be absolute, got '${a.path}'`;
  if (a.fstab !== undefined && !a.fstab.startsWith('/')) return `fstab must be an absolute path, got '${a.fstab}'`;
  if (a.state === 'mounted' || a.state === 'present') {
    if (!a.src) return `state '${a.state}' needs src`;
    if (!a.fstype) return `state '${a.state}' needs fstype`;
  }
  return undefined;
}

/** A plain source findmnt shows as written (a device path, `tmpfs`); `UUID=…`, `LABEL=…` are resolved by mount. */
const comparableSource = (src: string): boolean => !/^(UUID|LABEL|PARTUUID|PARTLABEL|ID)=/.test(src);

const fence = '@@provision-mount@@';

export const mountModule: ModuleDef<MountArgs, MountState> = {
  name: 'mount',
  schema: mountArgs,
  describe: (a) => `${a.path} (${a.state})`,
  probe: (a) => ({
    script: [
      fileProbeScript(a.fstab ?? '/etc/fstab', 'always'),
      `echo ${fence}`,
      `findmnt -n -P -o SOURCE,FSTYPE,OPTIONS --mountpoint ${q(norm(a.path))} 2>/dev/null; true`,
    ].join('\n'),
    parse: (out) => {
      const at = out.stdout.indexOf(`${fence}\n`);
      const [file, mounted] = at < 0 ? [out.stdout, ''] : [out.stdout.slice(0, at), out.stdout.slice(at + fence.length + 1)];
      return {fstab: parseFileState(file), mounted: parseFindmnt(mounted)};
    },
  }),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    const fstab = a.fstab ?? '/etc/fstab';
    const path = norm(a.path);
    if (have.fstab.kind !== 'file' && have.fstab.kind !== 'missing') return {steps: [], fail: `${fstab} is a ${have.fstab.kind}, not a file`};
    if (have.fstab.kind === 'file' && have.fstab.content === undefined) return {steps: [], fail: `${fstab} could not be read`};
    const before = have.fstab.kind === 'file' ? (have.fstab.content?.toString('utf8') ?? '') : '';
    const after = a.state === 'unmounted' ? before : editFstab(before, path, a.state === 'absent' ? undefined : fstabLine(a));
    const steps: Step[] = [];
    const done: string[] = [];
    const fstabChanges = after !== before;
    if (fstabChanges) {
      const mode = have.fstab.kind === 'file' ? `0${(have.fstab.mode & 0o7777).toString(8)}` : '0644';
      steps.push({kind: 'write', dest: fstab, content: Buffer.from(after), mode});
      done.push(`${a.state === 'absent' ? 'remove' : 'set'} the ${fstab} line of ${path}`);
    }
    const m = have.mounted;
    if (a.state === 'mounted') {
      const other = m.kind === 'mounted' && ((a.fstype !== undefined && m.fstype !== a.fstype) || (a.src !== undefined && comparableSource(a.src) && m.source.replace(/\[[^\]]*\]$/, '') !== a.src));
      if (m.kind === 'none') {
        steps.push({kind: 'exec', cmd: argv('mkdir', '-p', '--', path)}, {kind: 'exec', cmd: argv('mount', '--', path)});
        done.push(`mount ${path}`);
      } else if (other) {
        steps.push({kind: 'exec', cmd: argv('umount', '--', path)}, {kind: 'exec', cmd: argv('mount', '--', path)});
        done.push(`unmount ${m.source} (${m.fstype}) from ${path}, mount ${a.src ?? ''}`);
      } else if (fstabChanges) {
        steps.push({kind: 'exec', cmd: argv('mount', '-o', 'remount', '--', path)});
        done.push(`remount ${path}`);
      }
    } else if ((a.state === 'unmounted' || a.state === 'absent') && m.kind === 'mounted') {
      steps.unshift({kind: 'exec', cmd: argv('umount', '--', path)});
      done.unshift(`unmount ${path}`);
    }
    if (steps.length === 0) {
      const why = {mounted: `mounted, ${fstab} up to date`, present: `${fstab} up to date`, unmounted: 'not mounted', absent: `not mounted, not in ${fstab}`}[a.state];
      return {steps: [], reason: `${path} ${why}`};
    }
    return {steps, ...(fstabChanges ? {diff: {path: fstab, before, after}} : {}), reason: done.join('; ')};
  },
};

/** A file system in fstab, mounted or not. */
export const mount = (args: ArgsOf<MountArgs>, options?: TaskOptions): Task => makeTask(mountModule, args, options);

void mountInSync;
