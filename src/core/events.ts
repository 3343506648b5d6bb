/**
 * Run events: the only thing renderers (ink UI, plain lines, JSON) see of a run. The JSON shapes
 * are a contract (CONTRACTS.md): extend them, never rename.
 */
import type {Diff} from './types.ts';

export type Status = 'ok' | 'changed' | 'failed' | 'skipped' | 'unreachable';

export interface HostCounts {
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  unreachable: number;
}

export type RunEvent =
  | {readonly type: 'start'; readonly playbook: string; readonly inventory: string; readonly check: boolean; readonly diff: boolean; readonly hosts: readonly string[]}
  | {readonly type: 'play'; readonly name: string; readonly hosts: readonly string[]; /** Tasks per host in this play (for progress). */ readonly tasks: number}
  /** `hosts`: the hosts that run it now (with `serial`, the current batch; a handler, those it was notified on). */
  | {readonly type: 'task'; readonly play: string; readonly name: string; readonly role: string | null; readonly handler?: boolean; readonly hosts?: readonly string[]}
  | {
      readonly type: 'result';
      readonly host: string;
      readonly task: string;
      readonly play: string;
      readonly role: string | null;
      readonly status: Status;
      readonly duration_ms: number;
      readonly diff: Diff | null;
      readonly msg: string;
      /** Check mode: planned on state that an earlier "would change" on this host would alter. */
      readonly pending: boolean;
      /** The failing command and its output, for failures. */
      readonly cmd?: string;
      readonly stdout?: string;
      readonly stderr?: string;
      readonly rc?: number | null;
      /** A `loop`: each item (as text) with its status and message, in order. */
      readonly items?: readonly {readonly item: string; readonly status: string; readonly msg: string}[];
    }
  /** `-vvv`: a command sent to a host for a task (`on`: the host that ran it, another one when delegated). */
  | {
      readonly type: 'command';
      readonly host: string;
      readonly task: string;
      readonly on: string;
      readonly phase: 'probe' | 'apply';
      /** Secrets masked. */
      readonly cmd: string;
      /** null: the connection failed. */
      readonly rc: number | null;
      readonly duration_ms: number;
    }
  | {readonly type: 'recap'; readonly hosts: Readonly<Record<string, HostCounts>>; readonly duration_ms: number; readonly check: boolean; readonly interrupted?: boolean};

export type Emit = (event: RunEvent) => void;
