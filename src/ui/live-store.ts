/**
 * The live UI's model: run events folded into per-host rows, a list of finished items for the
 * scrollback, and the recap. Applying an event is a cheap mutation; the renderer takes a snapshot at
 * most ~20 times a second, so a burst of events costs one render, not one per event.
 */
import type {HostCounts, RunEvent, Status} from '../core/events.ts';
import type {Secrets} from '../core/secret.ts';
import {unifiedDiff} from './plain.ts';

/** Where a host is in the run. */
export type HostPhase =
  /** Not started: no play has reached it yet. */
  | 'waiting'
  /** Running the current task. */
  | 'running'
  /** Done with the current task, waiting for the other hosts (tasks run in step across hosts). */
  | 'idle'
  /** Done with every task of its play (or of the run). */
  | 'finished'
  | 'failed'
  | 'unreachable';

/** One line of a host's log (shown when the host is expanded). */
export interface LogLine {
  readonly task: string;
  readonly status: Status;
  readonly msg: string;
  readonly ms: number;
  readonly pending: boolean;
}

/** A host's row. */
export interface HostView {
  readonly name: string;
  readonly phase: HostPhase;
  /** The task it runs (or ran last), `role : name`. */
  readonly task: string | null;
  readonly play: string | null;
  /** Results received in the current play. */
  readonly done: number;
  /** Tasks of the current play (grows with handlers). */
  readonly total: number;
  readonly counts: Readonly<HostCounts>;
  /** Whether a result of this host rests on an earlier "would change" (check mode). */
  readonly pending: boolean;
  /** When its first task started, and its last result arrived (ms since epoch). */
  readonly startedAt: number | null;
  readonly lastAt: number | null;
  /** Every result of this host, oldest first (capped). */
  readonly log: readonly LogLine[];
}

/** Something finished that scrolls above the live region (ink's `<Static>`). */
export type StaticItem =
  | {readonly kind: 'play'; readonly id: number; readonly name: string; readonly hosts: number}
  | {
      readonly kind: 'result';
      readonly id: number;
      readonly host: string;
      readonly task: string;
      readonly status: 'changed' | 'failed' | 'unreachable';
      readonly msg: string;
      /** Check mode: rests on an earlier "would change". */
      readonly pending: boolean;
      /** A failure whose task says ignoreErrors: the host goes on. */
      readonly ignored: boolean;
      /** A unified diff (masked), under --diff. */
      readonly diff: string | null;
      readonly cmd?: string;
      readonly stdout?: string;
      readonly stderr?: string;
      readonly rc?: number | null;
    }
  /**
   * From GROUP_FROM hosts in the play: the changes of one task, one line for all its hosts (a line per
   * host and change would be thousands; each host's log still holds its own, and failures stay one each).
   */
  | {readonly kind: 'changes'; readonly id: number; readonly task: string; readonly hosts: readonly string[]; readonly count: number; readonly pending: number; readonly diffs: boolean}
  | {readonly kind: 'recap'; readonly id: number; readonly hosts: Readonly<Record<string, HostCounts>>; readonly durationMs: number; readonly check: boolean; readonly interrupted: boolean}
  | {readonly kind: 'failures'; readonly id: number; readonly lines: readonly {readonly host: string; readonly task: string; readonly msg: string; readonly unreachable: boolean}[]};

/** What the run is, from the CLI. */
export interface RunInfo {
  readonly playbook: string;
  readonly inventory: string;
  readonly check: boolean;
  readonly diff: boolean;
  /** How many -v: from 1, a change shows its command's output (when the result carries it). */
  readonly verbose?: number;
}

/** An immutable view of the store for one render. */
export interface Snapshot {
  readonly info: RunInfo;
  /** The render's clock (ms since epoch). */
  readonly now: number;
  readonly startedAt: number;
  readonly play: {readonly name: string; readonly tasks: number; readonly hosts: number} | null;
  /** The task running now, `role : name`, and its 1-based index in the play. */
  readonly task: {readonly label: string; readonly index: number; readonly handler: boolean} | null;
  /** Hosts in inventory order. */
  readonly hosts: readonly HostView[];
  readonly statics: readonly StaticItem[];
  /** Set once the recap arrived. */
  readonly finished: {readonly durationMs: number; readonly interrupted: boolean} | null;
  /** The user asked to stop: running tasks finish, nothing new starts. */
  readonly stopping: boolean;
  /** Bumped by every applied event. */
  readonly version: number;
}

interface MutableHost {
  name: string;
  phase: HostPhase;
  task: string | null;
  play: string | null;
  done: number;
  total: number;
  counts: HostCounts;
  pending: boolean;
  startedAt: number | null;
  lastAt: number | null;
  log: LogLine[];
}

const LOG_CAP = 500;

/** From this many hosts in a play, the live UI groups: finished hosts in the table, changes in the scrollback. */
export const GROUP_FROM = 50;
/** Host names a grouped change line lists before "…". */
const GROUP_NAMES = 5;

export function taskLabel(role: string | null, name: string): string {
  return role ? `${role} : ${name}` : name;
}

const zero = (): HostCounts => ({ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0});

export class LiveStore {
  private readonly hosts = new Map<string, MutableHost>();
  private statics: StaticItem[] = [];
  private staticsView: readonly StaticItem[] = [];
  private play: Snapshot['play'] = null;
  private playHosts: readonly string[] = [];
  private task: Snapshot['task'] = null;
  private taskIndex = 0;
  private finished: Snapshot['finished'] = null;
  /** Changes of the current task not yet written as one `changes` item (grouped plays). */
  private changes: {task: string; hosts: string[]; count: number; pending: number; diffs: boolean} | null = null;
  private stopping = false;
  private nextId = 0;
  private startedAt: number;
  /** Bumped by every change; the renderer skips a frame when nothing changed. */
  version = 0;

  private info: RunInfo;

  constructor(
    info: RunInfo,
    /** The run's secrets: every event is masked with them before the store keeps anything of it. */
    private readonly secrets: Pick<Secrets, 'maskValue'>,
    private readonly clock: () => number = Date.now,
  ) {
    this.info = secrets.maskValue(info);
    this.startedAt = clock();
  }

  private host(name: string): MutableHost {
    let h = this.hosts.get(name);
    if (!h) {
      h = {name, phase: 'waiting', task: null, play: null, done: 0, total: 0, counts: zero(), pending: false, startedAt: null, lastAt: null, log: []};
      this.hosts.set(name, h);
    }
    return h;
  }

  private push(item: StaticItem): void {
    this.statics.push(item);
  }

  /** Write the current task's grouped changes, if any. */
  private flushChanges(): void {
    const c = this.changes;
    if (!c) return;
    this.changes = null;
    this.push({kind: 'changes', id: this.nextId++, ...c});
  }

  /** The user asked to stop. */
  markStopping(): void {
    if (!this.stopping) {
      this.stopping = true;
      this.version++;
    }
  }

  apply(event: RunEvent): void {
    // Every string the store keeps comes from the masked event; labels and diffs are shaped after.
    const e = this.secrets.maskValue(event);
    this.version++;
    const now = this.clock();
    switch (e.type) {
      case 'start':
        this.info = {...this.info, playbook: e.playbook, inventory: e.inventory, check: e.check, diff: e.diff};
        this.startedAt = now;
        for (const h of e.hosts) this.host(h);
        break;
      case 'play':
        this.flushChanges();
        this.play = {name: e.name, tasks: e.tasks, hosts: e.hosts.length};
        this.playHosts = e.hosts;
        this.task = null;
        this.taskIndex = 0;
        for (const h of this.hosts.values()) {
          if (h.phase === 'running' || h.phase === 'idle') h.phase = 'finished';
        }
        for (const name of e.hosts) {
          const h = this.host(name);
          if (h.phase === 'failed' || h.phase === 'unreachable') continue;
          h.phase = 'idle';
          h.play = e.name;
          h.done = 0;
          h.total = e.tasks;
          h.task = null;
        }
        this.push({kind: 'play', id: this.nextId++, name: e.name, hosts: e.hosts.length});
        break;
      case 'task': {
        this.flushChanges();
        const label = taskLabel(e.role, e.name);
        if (!e.handler) this.taskIndex++;
        this.task = {label, index: this.taskIndex, handler: !!e.handler};
        // Tasks run in step: every live host of the batch (`hosts`; without it, of the play) starts
        // this one; with `serial`, later batches wait. A handler runs only on the hosts that notified
        // it, which its results tell.
        if (e.handler) break;
        for (const name of e.hosts ?? this.playHosts) {
          const h = this.host(name);
          if (h.phase === 'failed' || h.phase === 'unreachable' || (!e.hosts && h.phase === 'waiting')) continue;
          h.phase = 'running';
          h.task = label;
          h.startedAt ??= now;
        }
        // Hosts of the play in a later batch have not started it: they wait.
        if (e.hosts) {
          const batch = new Set(e.hosts);
          for (const name of this.playHosts) {
            const h = this.host(name);
            if (!batch.has(name) && h.phase === 'idle' && h.done === 0) h.phase = 'waiting';
          }
        }
        break;
      }
      case 'result': {
        const h = this.host(e.host);
        const label = taskLabel(e.role, e.task);
        const ignored = e.status === 'failed' && e.msg.endsWith('(ignored)');
        h.counts[ignored ? 'ok' : e.status]++;
        h.startedAt ??= now;
        h.lastAt = now;
        h.task = label;
        if (e.pending) h.pending = true;
        if (e.play !== '' && e.play === this.play?.name) {
          h.done++;
          if (h.done > h.total) h.total = h.done;
        }
        h.log.push({task: label, status: e.status, msg: e.msg, ms: e.duration_ms, pending: e.pending});
        if (h.log.length > LOG_CAP) h.log.splice(0, h.log.length - LOG_CAP);
        if (e.status === 'unreachable') h.phase = 'unreachable';
        else if (e.status === 'failed' && !ignored) h.phase = 'failed';
        else h.phase = h.done >= h.total ? 'finished' : 'idle';
        if (e.status === 'changed' && (this.play?.hosts ?? 0) >= GROUP_FROM) {
          if (this.changes?.task !== label) {
            this.flushChanges();
            this.changes = {task: label, hosts: [], count: 0, pending: 0, diffs: false};
          }
          const c = this.changes!;
          c.count++;
          if (c.hosts.length < GROUP_NAMES) c.hosts.push(e.host);
          if (e.pending) c.pending++;
          if (this.info.diff && e.diff) c.diffs = true;
        } else if (e.status === 'changed' || e.status === 'failed' || e.status === 'unreachable') {
          this.push({
            kind: 'result',
            id: this.nextId++,
            host: e.host,
            task: label,
            status: e.status,
            msg: e.msg,
            pending: e.pending,
            ignored,
            diff: this.info.diff && e.diff ? unifiedDiff(e.diff) : null,
            ...(e.status === 'failed'
              ? {cmd: e.cmd, stdout: e.stdout ?? '', stderr: e.stderr ?? '', rc: e.rc ?? null}
              : e.status === 'changed' && (this.info.verbose ?? 0) > 0
                ? {stdout: e.stdout ?? '', stderr: e.stderr ?? ''}
                : {}),
          });
        }
        break;
      }
      case 'recap': {
        this.flushChanges();
        this.finished = {durationMs: e.duration_ms, interrupted: !!e.interrupted};
        this.task = null;
        for (const [name, counts] of Object.entries(e.hosts)) {
          const h = this.host(name);
          h.counts = {...counts};
          if (h.phase === 'running' || h.phase === 'idle') h.phase = 'finished';
        }
        for (const h of this.hosts.values()) if (h.phase === 'running' || h.phase === 'idle') h.phase = 'finished';
        this.push({kind: 'recap', id: this.nextId++, hosts: e.hosts, durationMs: e.duration_ms, check: e.check, interrupted: !!e.interrupted});
        const lines: {host: string; task: string; msg: string; unreachable: boolean}[] = [];
        for (const item of this.statics) {
          if (item.kind === 'result' && (item.status === 'unreachable' || (item.status === 'failed' && !item.ignored))) {
            lines.push({host: item.host, task: item.task, msg: item.msg, unreachable: item.status === 'unreachable'});
          }
        }
        if (lines.length > 0) this.push({kind: 'failures', id: this.nextId++, lines});
        break;
      }
    }
  }

  snapshot(now: number = this.clock()): Snapshot {
    // <Static> renders the items added since its last render, keyed on a new array: hand it a fresh
    // copy only when the list grew.
    if (this.staticsView.length !== this.statics.length) this.staticsView = this.statics.slice();
    return {
      info: this.info,
      now,
      startedAt: this.startedAt,
      play: this.play,
      task: this.task,
      hosts: [...this.hosts.values()],
      statics: this.staticsView,
      finished: this.finished,
      stopping: this.stopping,
      version: this.version,
    };
  }
}
