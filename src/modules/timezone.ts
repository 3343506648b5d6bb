/**
 * `timezone`: the host's time zone (Ansible's timezone). With systemd (`timedatectl show` answers) the
 * probe reads `timedatectl`'s zone and the plan runs `timedatectl set-timezone`; without, the probe
 * reads where /etc/localtime links to and /etc/timezone, and the plan relinks /etc/localtime and
 * rewrites /etc/timezone when the host has one (Debian's). Both check that the zone exists in
 * /usr/share/zoneinfo, so check mode fails on a misspelt zone too.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Step, Task, TaskOptions} from '../core/types.ts';

export interface TimezoneArgs {
  /** A zone of the tz database, as in /usr/share/zoneinfo: `Europe/Paris`, `UTC`, `America/Argentina/Buenos_Aires`. */
  readonly name: string;
}

const timezoneArgs = z.strictObject({
  name: z.string().check(z.regex(/^[A-Za-z0-9_+-]+(?:\/[A-Za-z0-9_+-]+)*$/, 'a tz database zone like Europe/Paris')),
});
const timezoneInSync: Exact<z.infer<typeof timezoneArgs>, TimezoneArgs> = true;

export const zoneinfo = '/usr/share/zoneinfo';

/** What the probe found: how the zone is set, the zone now (undefined: unknown), /etc/timezone, and whether the wanted zone exists. */
export interface TimezoneState {
  readonly tool: 'timedatectl' | 'file';
  readonly zone?: string;
  /** /etc/timezone's first line; undefined when the file is missing (it is then not created). */
  readonly timezoneFile?: string;
  readonly known: boolean;
}

export function timezoneProbeScript(name: string): string {
  return [
    'if command -v timedatectl >/dev/null 2>&1 && z=$(timedatectl show -p Timezone --value 2>/dev/null); then',
    "  printf 'timedatectl\\n%s\\n' \"$z\"",
    "else printf 'file\\n%s\\n' \"$(readlink /etc/localtime 2>/dev/null)\"; fi",
    "if t=$(cat /etc/timezone 2>/dev/null); then printf 'tzfile\\n%s\\n' \"$(printf '%s\\n' \"$t\" | head -n 1)\"; else printf 'notzfile\\n\\n'; fi",
    `if [ -f ${q(`${zoneinfo}/${name}`)} ]; then echo known; else echo unknown; fi`,
  ].join('\n');
}

/** The zone a /etc/localtime link target names: `../usr/share/zoneinfo/Europe/Paris` → `Europe/Paris`. */
export function zoneOfLink(target: string): string | undefined {
  const m = /(?:^|\/)zoneinfo\/(?:posix\/|right\/)?(.+)$/.exec(target.trim());
  return m?.[1];
}

export function parseTimezone(stdout: string): TimezoneState {
  const [tool = '', zone = '', tz = '', tzLine = '', known = ''] = stdout.split('\n');
  const z = tool === 'timedatectl' ? zone.trim() || undefined : zoneOfLink(zone);
  return {
    tool: tool === 'timedatectl' ? 'timedatectl' : 'file',
    ...(z === undefined ? {} : {zone: z}),
    ...(tz === 'tzfile' ? {timezoneFile: tzLine.trim()} : {}),
    known: known === 'known',
  };
}

export const timezoneModule: ModuleDef<TimezoneArgs, TimezoneState> = {
  name: 'timezone',
  schema: timezoneArgs,
  describe: (a) => a.name,
  probe: (a) => ({script: timezoneProbeScript(a.name), parse: (out) => parseTimezone(out.stdout)}),
  plan(have, a): Plan {
    if (!have.known) return {steps: [], fail: `unknown time zone '${a.name}' (no ${zoneinfo}/${a.name} on the host)`};
    const zoneOk = have.zone === a.name;
    const fileOk = have.timezoneFile === undefined || have.timezoneFile === a.name;
    if (zoneOk && (have.tool === 'timedatectl' || fileOk)) return {steps: [], reason: `already ${a.name}`};
    const diff = {path: 'timezone', before: `timezone = ${have.zone ?? '(unknown)'}\n`, after: `timezone = ${a.name}\n`};
    const reason = `set time zone ${a.name} (was ${have.zone ?? 'unknown'})`;
    if (have.tool === 'timedatectl') return {steps: [{kind: 'exec', cmd: argv('timedatectl', 'set-timezone', a.name)}], diff, reason};
    const steps: Step[] = [];
    if (!zoneOk) steps.push({kind: 'exec', cmd: argv('ln', '-sfn', `${zoneinfo}/${a.name}`, '/etc/localtime')});
    if (!fileOk) steps.push({kind: 'write', dest: '/etc/timezone', content: Buffer.from(`${a.name}\n`), mode: '0644'});
    return {steps, diff: zoneOk ? {path: '/etc/timezone', before: `${have.timezoneFile ?? ''}\n`, after: `${a.name}\n`} : diff, reason: zoneOk ? `/etc/timezone: ${have.timezoneFile} → ${a.name}` : reason};
  },
};

/** The host's time zone (Ansible's timezone). */
export const timezone = (args: ArgsOf<TimezoneArgs>, options?: TaskOptions): Task => makeTask(timezoneModule, args, options);

void timezoneInSync;
