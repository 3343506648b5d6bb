/**
 * `service`: a systemd unit started, stopped, restarted or reloaded; enabled or disabled at boot;
 * masked or not. The probe is `systemctl show` (stable `key=value` output, unlike `systemctl status`);
 * the plan runs, in order: daemon-reload, unmask, enable/disable, start/stop/restart/reload, mask.
 */
import {argv, q} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Step, Task, TaskOptions} from '../core/types.ts';
import {group} from '../shared/match.ts';

export interface ServiceArgs {
  /** The unit: `nginx` (means `nginx.service`), `nginx.service`, `getty@tty1.service`, `backup.timer`. */
  readonly name: string;
  /**
   * `started`/`stopped`: running or not (no change when already so). `restarted`: always restarted.
   * `reloaded`: always reloaded, or started when not running. Unset: leave it as it is.
   */
  readonly state?: 'started' | 'stopped' | 'restarted' | 'reloaded';
  /** Start at boot (`systemctl enable`) or not (`disable`). Static units have nothing to enable. Unset: leave as is. */
  readonly enabled?: boolean;
  /**
   * Run `systemctl daemon-reload` first when systemd reports the unit's files changed on disk
   * (NeedDaemonReload) or the unit is not loaded yet (e.g. a unit file written by an earlier task).
   */
  readonly daemonReload?: boolean;
  /** Masked (`systemctl mask`: cannot be started at all) or not (`unmask`). Unset: leave as is. */
  readonly masked?: boolean;
}

const serviceArgs = z.strictObject({
  name: z.string(),
  state: z.optional(z.enum(['started', 'stopped', 'restarted', 'reloaded'])),
  enabled: z.optional(z.boolean()),
  daemonReload: z.optional(z.boolean()),
  masked: z.optional(z.boolean()),
});
const serviceInSync: Exact<z.infer<typeof serviceArgs>, ServiceArgs> = true;

/** What `systemctl show` says about a unit. */
export type UnitState =
  /** systemctl could not answer (not installed, or PID 1 is not systemd): its message. */
  | {readonly kind: 'unavailable'; readonly message: string}
  | {
      readonly kind: 'unit';
      /** LoadState: `loaded`, `not-found`, `masked`, `error`, `bad-setting`. */
      readonly load: string;
      /** ActiveState: `active`, `inactive`, `failed`, `activating`, `deactivating`, `reloading`. */
      readonly active: string;
      /** SubState: `running`, `exited`, `dead`, … (shown in reasons). */
      readonly sub: string;
      /** UnitFileState: `enabled`, `disabled`, `static`, `masked`, `indirect`, … or '' when unknown. */
      readonly unitFile: string;
      /** NeedDaemonReload: the unit's files changed on disk since systemd loaded them. */
      readonly needReload: boolean;
    };

const props = 'LoadState,ActiveState,SubState,UnitFileState,NeedDaemonReload';

/** The probe: `key=value` lines, or systemctl's error message (stderr is folded into stdout). */
export function serviceProbeScript(name: string): string {
  return `systemctl show -p ${props} -- ${q(name)} 2>&1 || true`;
}

/** Pure parser of `systemctl show -p …` output. */
export function parseUnitState(stdout: string): UnitState {
  const kv = new Map<string, string>();
  const other: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) kv.set(group(m, 1), group(m, 2).trim());
    else if (line.trim() !== '') other.push(line.trim());
  }
  const load = kv.get('LoadState');
  if (load === undefined || load === '') return {kind: 'unavailable', message: other.join(' ') || 'systemctl printed nothing'};
  return {
    kind: 'unit',
    load,
    active: kv.get('ActiveState') ?? '',
    sub: kv.get('SubState') ?? '',
    unitFile: kv.get('UnitFileState') ?? '',
    needReload: kv.get('NeedDaemonReload') === 'yes',
  };
}

const unitNameRe = /^[A-Za-z0-9:_.\\@-]{1,255}$/;

const running = new Set(['active', 'reloading', 'activating', 'refreshing']);
const notRunning = new Set(['inactive', 'failed', 'deactivating', 'maintenance', '']);
/** UnitFileStates that `systemctl is-enabled` counts as enabled (exit 0) but that `enable` cannot change. */
const notEnableable: Record<string, string> = {
  static: 'static unit (no [Install] section): nothing to enable',
  indirect: 'indirect unit: enabled through another unit',
  generated: 'generated unit: enabled by its generator',
  transient: 'transient unit: exists only at runtime',
};

function sysctl(...words: string[]): Step {
  return {kind: 'exec', cmd: argv('systemctl', ...words)};
}

export const serviceModule: ModuleDef<ServiceArgs, UnitState> = {
  name: 'service',
  schema: serviceArgs,
  describe: (a) => [a.name, a.state, a.enabled === undefined ? '' : a.enabled ? 'enabled' : 'disabled', a.masked ? 'masked' : ''].filter(Boolean).join(' '),
  probe: (a): Probe<UnitState> => ({script: serviceProbeScript(a.name), parse: (out) => parseUnitState(out.stdout)}),
  plan(have, a): Plan {
    const n = a.name;
    if (!unitNameRe.test(n)) return {steps: [], fail: `bad unit name '${n}'`};
    const starts = a.state === 'started' || a.state === 'restarted' || a.state === 'reloaded';
    if (a.masked === true && (starts || a.enabled === true)) return {steps: [], fail: `${n}: masked: true conflicts with ${starts ? `state '${a.state}'` : 'enabled: true'}`};
    if (have.kind === 'unavailable') return {steps: [], fail: `cannot query systemd for ${n}: ${have.message}`};

    const steps: Step[] = [];
    const done: string[] = [];
    const ok: string[] = [];
    const unloaded = have.load === 'not-found' || have.load === 'error' || have.load === 'bad-setting';
    if (a.daemonReload && (have.needReload || unloaded)) {
      steps.push(sysctl('daemon-reload'));
      done.push(have.needReload ? 'daemon-reload (unit files changed)' : `daemon-reload (${have.load})`);
    } else if (have.load === 'not-found') {
      // Masking a unit that does not exist is fine (it can never appear); anything else needs the unit.
      if (a.masked !== true) return {steps: [], fail: `unit ${n} not found (LoadState=not-found); set daemonReload: true if its file was just written`};
    } else if (unloaded) {
      return {steps: [], fail: `unit ${n} failed to load (LoadState=${have.load}); see 'systemctl status ${n}'`};
    }
    // After a daemon-reload of an unloaded unit its real state is unknown: plan as for a fresh unit.
    const fresh = steps.length > 0 && unloaded;
    let unitFile = fresh ? 'disabled' : have.unitFile;
    const active = fresh ? 'inactive' : have.active;
    const isMasked = have.load === 'masked' || unitFile.startsWith('masked');

    if (isMasked && a.masked === false) {
      steps.push(sysctl('unmask', ...(unitFile === 'masked-runtime' ? ['--runtime'] : []), '--', n));
      done.push('unmask');
      unitFile = 'disabled'; // unknown until unmasked; enable is harmless if it was enabled
    } else if (isMasked && (starts || a.enabled === true)) {
      return {steps: [], fail: `unit ${n} is masked; set masked: false to unmask it`};
    }

    if (a.enabled === true) {
      const cannotEnable = notEnableable[unitFile];
      if (unitFile === 'enabled' || unitFile === 'alias') ok.push('enabled');
      else if (cannotEnable !== undefined) ok.push(cannotEnable);
      else {
        steps.push(sysctl('enable', '--', n));
        done.push(`enable (was ${unitFile || 'unknown'})`);
      }
    } else if (a.enabled === false) {
      if (unitFile === 'enabled' || unitFile === 'enabled-runtime' || unitFile === 'alias') {
        steps.push(sysctl('disable', ...(unitFile === 'enabled-runtime' ? ['--runtime'] : []), '--', n));
        done.push(`disable (was ${unitFile})`);
      } else ok.push(unitFile ? `not enabled (${unitFile})` : 'not enabled');
    }

    const now = `${active}${have.sub && !fresh ? ` (${have.sub})` : ''}`;
    switch (a.state) {
      case 'started':
        if (running.has(active)) ok.push(`already ${now}`);
        else {
          steps.push(sysctl('start', '--', n));
          done.push(`start (was ${now})`);
        }
        break;
      case 'stopped':
        if (notRunning.has(active)) ok.push(`already ${now}`);
        else {
          steps.push(sysctl('stop', '--', n));
          done.push(`stop (was ${now})`);
        }
        break;
      case 'restarted':
        steps.push(sysctl('restart', '--', n));
        done.push('restart');
        break;
      case 'reloaded':
        if (active === 'active' || active === 'reloading') {
          steps.push(sysctl('reload', '--', n));
          done.push('reload');
        } else {
          steps.push(sysctl('start', '--', n));
          done.push(`start (was ${now}, nothing to reload)`);
        }
        break;
      case undefined:
        break;
    }

    if (a.masked === true) {
      if (isMasked) ok.push('masked');
      else {
        steps.push(sysctl('mask', '--', n));
        done.push('mask');
      }
    } else if (a.masked === false && !isMasked) ok.push('not masked');

    if (steps.length > 0) return {steps, reason: done.join('; ')};
    return {steps, reason: ok.length > 0 ? ok.join(', ') : `nothing asked; ${now}, ${unitFile || 'unknown'}`};
  },
};

/** Manage a systemd unit: running or not, enabled at boot or not, masked or not. */
export const service = (args: ArgsOf<ServiceArgs>, options?: TaskOptions): Task => makeTask(serviceModule, args, options);

void serviceInSync;
