/**
 * `sysctl`: a kernel parameter, persisted in a sysctl.d file and set in the running kernel (Ansible's
 * sysctl). The probe reads the running value (`sysctl -n`) and the file; the pure plan sets the running
 * value (`sysctl -w`) when it differs, then writes the file's line (atomic write step, with a diff).
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';
import {formatMode} from '../facts/file.ts';

export const defaultSysctlFile = '/etc/sysctl.d/99-provision.conf';

export interface SysctlArgs {
  /** The parameter, dotted: `net.ipv4.ip_forward`. */
  readonly name: string;
  /** Its value (state present). Whitespace between fields does not count: `'4096 87380 6291456'`. */
  readonly value?: string | number;
  /** `present` (default): the line is in `file` (and the kernel has the value); `absent`: every line for `name` is removed from `file` (the running value is left as is). */
  readonly state?: 'present' | 'absent';
  /** The file holding the line (default `/etc/sysctl.d/99-provision.conf`, created 0644 when missing). */
  readonly file?: string;
  /** Also set the running kernel's value with `sysctl -w` when it differs (default true). */
  readonly reload?: boolean;
}

const sysctlArgs = z.strictObject({
  name: z.string().check(z.regex(/^[A-Za-z0-9_][A-Za-z0-9_.\/:@-]*$/, 'a sysctl name like net.ipv4.ip_forward')),
  value: z.optional(z.union([z.string(), z.number()])),
  state: z.optional(z.enum(['present', 'absent'])),
  file: z.optional(z.string()),
  reload: z.optional(z.boolean()),
});
const sysctlInSync: Exact<z.infer<typeof sysctlArgs>, SysctlArgs> = true;

/** What the probe found: the running value (undefined: the kernel does not know the name) and the file. */
export interface SysctlState {
  readonly running?: string;
  readonly file: {readonly kind: 'missing'} | {readonly kind: 'file'; readonly text: string; readonly mode: number; readonly owner: string; readonly group: string} | {readonly kind: 'other'};
}

export function sysctlProbeScript(name: string, file: string): string {
  const f = q(file);
  return [
    `if v=$(sysctl -n ${q(name)} 2>/dev/null); then printf 'running\\n%s\\n' "$v" | tr '\\t' ' ' | head -n 2; else printf 'unknown\\n\\n'; fi`,
    `if [ -f ${f} ]; then echo file; stat -c '%a %U %G' -- ${f}; base64 -w0 -- ${f}; echo; elif [ -e ${f} ]; then echo other; else echo missing; fi`,
  ].join('\n');
}

export function parseSysctl(stdout: string): SysctlState {
  const l = stdout.split('\n');
  const running = l[0] === 'running' ? l[1] ?? '' : undefined;
  const at = l.slice(2);
  if (at[0] === 'file') {
    const [mode = '644', owner = '', group = ''] = (at[1] ?? '').split(' ');
    return {running, file: {kind: 'file', text: Buffer.from(at[2] ?? '', 'base64').toString('utf8'), mode: parseInt(mode, 8), owner, group}};
  }
  return {running, file: at[0] === 'other' ? {kind: 'other'} : {kind: 'missing'}};
}

const norm = (v: string): string => v.trim().split(/\s+/).join(' ');
/** The key of a `key = value` line (`/` and `.` alike, as sysctl.d(5)), or undefined for comments and blanks. */
const keyOf = (line: string): string | undefined => {
  const t = line.trim().replace(/^-/, '');
  if (t === '' || t.startsWith('#') || t.startsWith(';') || !t.includes('=')) return undefined;
  return t.slice(0, t.indexOf('=')).trim().replace(/\//g, '.');
};

/** Pure: the file's text with the parameter's line set (first line for it replaced, later ones dropped) or removed. */
export function editSysctlFile(text: string, name: string, value: string | undefined): string {
  const key = name.replace(/\//g, '.');
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let done = false;
  for (const l of lines) {
    if (keyOf(l) !== key) { out.push(l); continue; }
    if (value !== undefined && !done) {
      const old = l.slice(l.indexOf('=') + 1);
      out.push(norm(old) === norm(value) ? l : `${name} = ${value}`);
      done = true;
    }
  }
  if (value !== undefined && !done) out.push(`${name} = ${value}`);
  return out.length === 0 ? '' : out.join('\n') + '\n';
}

export const sysctlModule: ModuleDef<SysctlArgs, SysctlState> = {
  name: 'sysctl',
  schema: sysctlArgs,
  describe: (a) => ((a.state ?? 'present') === 'absent' ? `${a.name} (absent)` : `${a.name} = ${a.value ?? ''}`),
  probe: (a) => ({script: sysctlProbeScript(a.name, a.file ?? defaultSysctlFile), parse: (out) => parseSysctl(out.stdout)}),
  plan(have, a): Plan {
    const file = a.file ?? defaultSysctlFile;
    if (!file.startsWith('/')) return {steps: [], fail: `file must be an absolute path, got '${file}'`};
    const present = (a.state ?? 'present') === 'present';
    if (present && a.value === undefined) return {steps: [], fail: "state 'present' needs value"};
    if (have.file.kind === 'other') return {steps: [], fail: `${file} exists and is not a regular file`};
    const value = present ? String(a.value) : undefined;
    const steps: Step[] = [];
    const reasons: string[] = [];
    let diff: Plan['diff'];
    if (present && value !== undefined && (a.reload ?? true)) {
      if (have.running === undefined) return {steps: [], fail: `sysctl ${a.name}: unknown to the running kernel (set reload: false to only write ${file})`};
      if (norm(have.running) !== norm(value)) {
        steps.push({kind: 'exec', cmd: argv('sysctl', '-w', `${a.name}=${value}`)});
        reasons.push(`set ${a.name} = ${norm(value)} (running: ${norm(have.running)})`);
        diff = {path: `sysctl ${a.name}`, before: `${a.name} = ${norm(have.running)}\n`, after: `${a.name} = ${norm(value)}\n`};
      }
    }
    const before = have.file.kind === 'file' ? have.file.text : '';
    const after = editSysctlFile(before, a.name, value);
    if (after !== before) {
      const f = have.file.kind === 'file' ? have.file : undefined;
      steps.push({kind: 'write', dest: file, content: Buffer.from(after), mode: f ? formatMode(f.mode) : '0644', owner: f?.owner, group: f?.group});
      reasons.push(present ? `${have.file.kind === 'missing' ? 'create' : 'update'} ${file} with ${a.name} = ${value}` : `remove ${a.name} from ${file}`);
      diff = {path: file, before, after};
    }
    if (steps.length === 0) {
      return {steps, reason: present ? `already ${a.name} = ${norm(value ?? '')}${(a.reload ?? true) ? ' (running and in file)' : ` in ${file}`}` : `${a.name} not in ${file}`};
    }
    return {steps, diff, reason: reasons.join('; ')};
  },
};

/** A kernel parameter in a sysctl.d file and in the running kernel (Ansible's sysctl). */
export const sysctl = (args: ArgsOf<SysctlArgs>, options?: TaskOptions): Task => makeTask(sysctlModule, args, options);

void sysctlInSync;
