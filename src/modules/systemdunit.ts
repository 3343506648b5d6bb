/**
 * `systemdUnit`: a unit file of the administrator (`/etc/systemd/system/<name>`) or a drop-in that
 * overrides part of a packaged unit (`/etc/systemd/system/<name>.d/<dropIn>.conf`). Timers, sockets,
 * mounts are units like services (`backup.timer`). The probe reads the file (content compared by
 * sha256, read back only when it differs, for the diff); the plan writes it atomically (0644), then
 * runs `systemctl daemon-reload`, only when the file changed. Starting and enabling is `service`'s job.
 */
import {createHash} from 'node:crypto';
import {argv} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';
import {fileProbe, parseFileState, type FileState} from '../facts/file.ts';

export interface SystemdUnitArgs {
  /** The unit, with its type: `app.service`, `backup.timer`, `getty@.service`, `srv-data.mount`. */
  readonly name: string;
  /** The unit file's text (for `present`), e.g. rendered with `ctx.render('app.service')`. */
  readonly content?: string;
  /**
   * Write a drop-in instead: `<dir>/<name>.d/<dropIn>.conf` (e.g. `override`, `limits`), which systemd
   * merges over the unit's own file; the unit may come from a package.
   */
  readonly dropIn?: string;
  /** `present` (default): the file holds `content`; `absent`: the file is removed (then daemon-reload). */
  readonly state?: 'present' | 'absent';
  /**
   * The units folder. Default `/etc/systemd/system`; `/run/systemd/system` for units that last until
   * reboot. Tests point it at a temp folder.
   */
  readonly dir?: string;
}

const systemdUnitArgs = z.strictObject({
  name: z.string(),
  content: z.optional(z.string()),
  dropIn: z.optional(z.string()),
  state: z.optional(z.enum(['present', 'absent'])),
  dir: z.optional(z.string()),
});
const systemdUnitInSync: Exact<z.infer<typeof systemdUnitArgs>, SystemdUnitArgs> = true;

const unitTypes = ['service', 'socket', 'timer', 'target', 'path', 'mount', 'automount', 'swap', 'slice', 'scope', 'device'];
const unitNameRe = new RegExp(`^[A-Za-z0-9:_.\\\\@-]{1,255}\\.(${unitTypes.join('|')})$`);
const dropInRe = /^[A-Za-z0-9:_.@-]{1,200}$/;

/** The file the arguments name. */
export function unitPath(a: Pick<SystemdUnitArgs, 'name' | 'dropIn' | 'dir'>): string {
  const dir = (a.dir ?? '/etc/systemd/system').replace(/\/+$/, '');
  return a.dropIn === undefined ? `${dir}/${a.name}` : `${dir}/${a.name}.d/${a.dropIn.replace(/\.conf$/, '')}.conf`;
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');
const reload: Step = {kind: 'exec', cmd: argv('systemctl', 'daemon-reload')};

function problem(a: SystemdUnitArgs): string | undefined {
  if (!unitNameRe.test(a.name)) return `bad unit name '${a.name}': it needs its type (${unitTypes.slice(0, 4).map((t) => `.${t}`).join(', ')}, …)`;
  if (a.dropIn !== undefined && (!dropInRe.test(a.dropIn) || a.dropIn.startsWith('.'))) return `bad dropIn name '${a.dropIn}'`;
  if (a.dir !== undefined && !a.dir.startsWith('/')) return `dir must be an absolute path, got '${a.dir}'`;
  if ((a.state ?? 'present') === 'present' && a.content === undefined) return "state 'present' needs content";
  return undefined;
}

export const systemdUnitModule: ModuleDef<SystemdUnitArgs, FileState> = {
  name: 'systemd_unit',
  schema: systemdUnitArgs,
  describe: (a) => `${a.dropIn === undefined ? a.name : `${a.name} drop-in ${a.dropIn}`}${(a.state ?? 'present') === 'absent' ? ' (absent)' : ''}`,
  probe: (a) => ({
    ...fileProbe(unitPath(a), 'small', a.content !== undefined && (a.state ?? 'present') === 'present' ? sha256(a.content) : undefined),
    parse: (out) => parseFileState(out.stdout),
  }),
  plan(have, a): Plan {
    const bad = problem(a);
    if (bad) return {steps: [], fail: bad};
    const path = unitPath(a);
    if (have.kind !== 'missing' && have.kind !== 'file') return {steps: [], fail: `${path} exists and is a ${have.kind}, not a file`};
    if ((a.state ?? 'present') === 'absent') {
      if (have.kind === 'missing') return {steps: [], reason: 'already absent'};
      const steps: Step[] = [{kind: 'exec', cmd: argv('rm', '-f', '--', path)}];
      // An emptied drop-in folder goes too (a folder holding other drop-ins stays).
      if (a.dropIn !== undefined) steps.push({kind: 'exec', cmd: argv('rmdir', '--ignore-fail-on-non-empty', '--', path.replace(/\/[^/]*$/, ''))});
      steps.push(reload);
      const before = have.content?.toString('utf8') ?? `(${have.size} bytes)\n`;
      return {steps, diff: {path, before, after: ''}, reason: `remove ${path}; daemon-reload`};
    }
    const content = a.content ?? '';
    if (have.kind === 'file' && have.sha256 === sha256(content)) return {steps: [], reason: `${path} up to date`};
    const steps: Step[] = [];
    if (have.kind === 'missing') steps.push({kind: 'exec', cmd: argv('mkdir', '-p', '--', path.replace(/\/[^/]*$/, ''))});
    steps.push({kind: 'write', dest: path, content: Buffer.from(content), mode: '0644'}, reload);
    const before = have.kind === 'file' ? (have.content?.toString('utf8') ?? `(${have.size} bytes)\n`) : '';
    return {steps, diff: {path, before, after: content}, reason: `${have.kind === 'missing' ? 'create' : 'update'} ${path}; daemon-reload`};
  },
};

/** A systemd unit file or drop-in, followed by a daemon-reload when it changed. */
export const systemdUnit = (args: ArgsOf<SystemdUnitArgs>, options?: TaskOptions): Task => makeTask(systemdUnitModule, args, options);

void systemdUnitInSync;
