/**
 * `reboot`: reboot the host and wait until it answers again (Ansible's reboot). The probe reads the
 * boot id (/proc/sys/kernel/random/boot_id) and whether the system asks for a reboot
 * (/var/run/reboot-required, written by Debian's and Ubuntu's package hooks); the plan is one reboot
 * step, which the engine runs: it sends the command, connects again until the boot id differs and the
 * test command succeeds, or fails the task after `rebootTimeout` seconds. Unlike Ansible's, a task
 * with `ifRequired` is a no-op (ok) on a host that does not ask for a reboot.
 */
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Task, TaskOptions} from '../core/types.ts';

export interface RebootArgs {
  /** Seconds to wait for the host to come back and pass the test command (default 600, as Ansible). */
  readonly rebootTimeout?: number;
  /** Seconds to wait after the host answers again, before the test command (default 0). */
  readonly postRebootDelay?: number;
  /** A command that must succeed on the rebooted host (default `whoami`, as Ansible). */
  readonly testCommand?: string;
  /** The command that reboots (default `systemctl reboot`, falling back to `shutdown -r now`). */
  readonly rebootCommand?: string;
  /** Reboot only when the host asks for it (/var/run/reboot-required exists); default false: always. */
  readonly ifRequired?: boolean;
}

const rebootArgs = z.strictObject({
  rebootTimeout: z.optional(z.number().check(z.positive())),
  postRebootDelay: z.optional(z.number().check(z.nonnegative())),
  testCommand: z.optional(z.string().check(z.minLength(1))),
  rebootCommand: z.optional(z.string().check(z.minLength(1))),
  ifRequired: z.optional(z.boolean()),
});
const rebootInSync: Exact<z.infer<typeof rebootArgs>, RebootArgs> = true;

/** What the probe found: the current boot's id and whether a reboot is asked for. */
export interface RebootState {
  readonly bootId: string;
  readonly required: boolean;
}

export const rebootRequiredFile = '/var/run/reboot-required';

export const rebootProbeScript = `cat /proc/sys/kernel/random/boot_id; if [ -e ${rebootRequiredFile} ]; then echo required; else echo no; fi`;

export function parseReboot(stdout: string): RebootState {
  const [bootId = '', required = ''] = stdout.split('\n');
  return {bootId: bootId.trim(), required: required.trim() === 'required'};
}

export const defaultRebootCommand = 'systemctl reboot || shutdown -r now';

export const rebootModule: ModuleDef<RebootArgs, RebootState> = {
  name: 'reboot',
  schema: rebootArgs,
  describe: (a) => (a.ifRequired ? 'if required' : 'now'),
  probe: () => ({script: rebootProbeScript, parse: (out) => parseReboot(out.stdout)}),
  plan(have, a): Plan {
    if (a.ifRequired && !have.required) return {steps: [], reason: `no reboot required (${rebootRequiredFile} absent)`};
    if (have.bootId === '') return {steps: [], fail: 'cannot read /proc/sys/kernel/random/boot_id: no way to tell when the host has rebooted'};
    return {
      steps: [{
        kind: 'reboot',
        command: a.rebootCommand ?? defaultRebootCommand,
        bootId: have.bootId,
        timeoutS: a.rebootTimeout ?? 600,
        test: a.testCommand ?? 'whoami',
        postDelayS: a.postRebootDelay ?? 0,
      }],
      reason: have.required ? `reboot (${rebootRequiredFile} asks for it)` : 'reboot',
    };
  },
};

/** Reboot the host and wait until it answers again (Ansible's reboot). */
export const reboot = (args: ArgsOf<RebootArgs> = {}, options?: TaskOptions): Task => makeTask(rebootModule, args, options);

void rebootInSync;
