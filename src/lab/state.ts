/**
 * `.lab/state.json`: everything the lab started, so `down` removes exactly that and kills only the
 * PIDs it recorded.
 */
import {existsSync, readFileSync} from 'node:fs';
import {writeFileAtomic} from '../core/localfs.ts';
import {readFile} from 'node:fs/promises';

/** A daemon the lab started on the controller. */
export interface DaemonState {
  readonly pid: number;
  /** Start time (field 22 of /proc/PID/stat) to tell our process from a recycled PID. */
  readonly startTime: string;
}

export interface HostState {
  readonly name: string;
  readonly address: string;
  /** The systemd-nspawn process, while the host runs. */
  nspawn?: DaemonState;
  /** Whether the overlay is mounted on `.lab/hosts/NAME/root`. */
  mounted: boolean;
}

export interface LabState {
  bridge?: {name: string; address: string};
  /** A tmpfs the lab mounted on /run/systemd/nspawn (machines without systemd as PID 1). */
  nspawnTmpfs?: boolean;
  aptCacher?: DaemonState & {port: number};
  pebble?: DaemonState;
  challtestsrv?: DaemonState;
  /** The alert receiver (src/lab/receiver.ts), when the inventory's webhook points at the bridge. */
  receiver?: DaemonState & {port: number};
  hosts: Record<string, HostState>;
}

export function readState(path: string): LabState {
  if (!existsSync(path)) return {hosts: {}};
  const s = JSON.parse(readFileSync(path, 'utf8')) as LabState;
  s.hosts ??= {};
  return s;
}

export function writeState(path: string, state: LabState): void {
  writeFileAtomic(path, `${JSON.stringify(state, null, 2)}\n`);
}

/** Field 22 of /proc/PID/stat (the start time in clock ticks), or undefined if the PID is gone. */
export async function procStartTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may contain spaces: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (rest[0] === 'Z') return undefined; // a zombie is as good as gone
    return rest[19];
  } catch {
    return undefined;
  }
}

/** A daemon record for a PID we just started. */
export async function daemonOf(pid: number): Promise<DaemonState> {
  return {pid, startTime: (await procStartTime(pid)) ?? ''};
}

/** True if the recorded process still runs (same PID and same start time). */
export async function isAlive(d: DaemonState | undefined): Promise<boolean> {
  if (!d) return false;
  const t = await procStartTime(d.pid);
  return t !== undefined && (d.startTime === '' || t === d.startTime);
}
