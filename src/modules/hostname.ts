/**
 * `hostname`: the host's name, persistent and running (Ansible's hostname). With systemd
 * (`hostnamectl` answers) the probe reads the static name from `hostnamectl --static` and the plan
 * runs `hostnamectl set-hostname`; without, the probe reads /etc/hostname and the plan writes it
 * (atomic write step, with a diff) and runs `hostname <name>`. The running name is `hostname`'s (or
 * `uname -n`'s) in both cases. /etc/hosts is not touched (as Ansible).
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';

export interface HostnameArgs {
  /** The host name wanted: letters, digits, `-` and `.` (a fully qualified name is kept as given). */
  readonly name: string;
}

const hostnameArgs = z.strictObject({
  name: z.string().check(z.regex(/^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/, 'a host name: letters, digits, - and .')),
});
const hostnameInSync: Exact<z.infer<typeof hostnameArgs>, HostnameArgs> = true;

/** What the probe found: how the name is set, the persistent name (undefined: none) and the running one. */
export interface HostnameState {
  readonly tool: 'hostnamectl' | 'file';
  readonly static?: string;
  readonly running: string;
}

export const hostnameFile = '/etc/hostname';

export const hostnameProbeScript = [
  'if command -v hostnamectl >/dev/null 2>&1 && s=$(hostnamectl --static 2>/dev/null); then',
  "  printf 'hostnamectl\\n%s\\n' \"$s\"",
  `elif s=$(cat ${q(hostnameFile)} 2>/dev/null); then printf 'file\\n%s\\n' "$(printf '%s\\n' "$s" | sed -n '/^[^#]/{p;q}' | tr -d ' \\t')"`,
  "else printf 'file\\n-\\n'; fi",
  "printf '%s\\n' \"$(hostname 2>/dev/null || uname -n)\"",
].join('\n');

export function parseHostname(stdout: string): HostnameState {
  const [tool = '', stat = '', running = ''] = stdout.split('\n');
  return {
    tool: tool === 'hostnamectl' ? 'hostnamectl' : 'file',
    ...(tool === 'file' && stat === '-' ? {} : {static: stat.trim()}),
    running: running.trim(),
  };
}

export const hostnameModule: ModuleDef<HostnameArgs, HostnameState> = {
  name: 'hostname',
  schema: hostnameArgs,
  describe: (a) => a.name,
  probe: () => ({script: hostnameProbeScript, parse: (out) => parseHostname(out.stdout)}),
  plan(have, a): Plan {
    const staticOk = have.static === a.name;
    const runningOk = have.running === a.name;
    if (staticOk && runningOk) return {steps: [], reason: `already ${a.name}`};
    const diff = {path: 'hostname', before: `hostname = ${have.static ?? have.running}\n`, after: `hostname = ${a.name}\n`};
    const was = [staticOk ? '' : `static ${have.static === undefined ? '(none)' : have.static === '' ? '(empty)' : have.static}`, runningOk ? '' : `running ${have.running}`].filter(Boolean).join(', ');
    if (have.tool === 'hostnamectl') {
      return {steps: [{kind: 'exec', cmd: argv('hostnamectl', 'set-hostname', a.name)}], diff, reason: `set hostname ${a.name} (was ${was})`};
    }
    const steps: Step[] = [];
    if (!staticOk) steps.push({kind: 'write', dest: hostnameFile, content: Buffer.from(`${a.name}\n`), mode: '0644'});
    if (!runningOk) steps.push({kind: 'exec', cmd: argv('hostname', a.name)});
    return {steps, diff: staticOk ? diff : {path: hostnameFile, before: have.static === undefined ? '' : `${have.static}\n`, after: `${a.name}\n`}, reason: `set hostname ${a.name} (was ${was})`};
  },
};

/** The host's name, persistent and running (Ansible's hostname). */
export const hostname = (args: ArgsOf<HostnameArgs>, options?: TaskOptions): Task => makeTask(hostnameModule, args, options);

void hostnameInSync;
