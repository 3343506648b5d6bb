/**
 * Drift, as `provision watch` keeps it: the last check-mode result of every (host, play, task), the
 * hosts that could not be reached (and how long each is left alone), and what changed from one check
 * to the next. Everything here is pure (events in, state and changes out) except the state file's
 * reading and atomic writing at the bottom. docs/watch.md describes the file and the stream.
 */
import {readFileSync} from 'node:fs';
import {join} from 'node:path';
import {writeFileAtomic} from '../core/localfs.ts';
import {ExitCode, UserError} from '../core/errors.ts';
import type {HostCounts, RunEvent, Status} from '../core/events.ts';

/** The state file's format; a file of another version is not read (watch starts afresh, `--only-drifted` refuses it). */
export const STATE_VERSION = 1;
/** `--state` when none is given: relative to the current directory. */
export const DEFAULT_STATE_FILE = join('.provision', 'drift.json');
/** A host unreachable N checks in a row is left out of the next min(2^N, BACKOFF_CAP) scheduled checks. */
export const BACKOFF_CAP = 32;

export interface TaskKey {
  readonly host: string;
  readonly play: string;
  /** The task's name on that host, as its result event carried it (secrets masked). */
  readonly task: string;
}

export interface TaskState extends TaskKey {
  /** drifted: the last check said the task would change; ok: it would not. */
  readonly state: 'drifted' | 'ok';
  /** The check's message (`would write /etc/motd (content differs)`), masked. */
  readonly msg: string;
  /** When the task entered this state (ISO time of that check). */
  readonly since: string;
}

export interface HostState {
  readonly unreachable: boolean;
  /** Checks in a row that could not reach it. */
  readonly failures: number;
  /** Scheduled checks still to leave it out of (backoff). */
  readonly skip: number;
  /** Why it was unreachable (masked). */
  readonly msg?: string;
}

export interface DriftState {
  readonly version: typeof STATE_VERSION;
  /** Absolute path of the playbook checked. */
  readonly playbook: string;
  /** When the last check started (ISO), null before any. */
  readonly checkedAt: string | null;
  readonly durationMs: number | null;
  /** When the last check that completed with no failed host started (ISO). */
  readonly lastSuccessAt: string | null;
  readonly hosts: Readonly<Record<string, HostState>>;
  readonly tasks: readonly TaskState[];
}

export function emptyState(playbook: string): DriftState {
  return {version: STATE_VERSION, playbook, checkedAt: null, durationMs: null, lastSuccessAt: null, hosts: {}, tasks: []};
}

/** What one check saw, from its run events. */
export interface Observation {
  /** ISO time the check started. */
  readonly at: string;
  readonly durationMs: number;
  /** Results of tasks (not handlers, not unreachable), masked. */
  readonly results: readonly (TaskKey & {readonly status: Status; readonly msg: string})[];
  /** Hosts the check could not reach, with why. */
  readonly unreachable: Readonly<Record<string, string>>;
  /** The hosts the check ran on, with their recap counts. */
  readonly hosts: Readonly<Record<string, HostCounts>>;
  /** The run was interrupted (its results are partial). */
  readonly interrupted: boolean;
}

/**
 * Collects one check's run events into an Observation. `mask` masks every value that becomes a label
 * or a message (the engine masks `msg`, not names: a task name may print a variable).
 */
export function observer(mask: (text: string) => string, at: Date = new Date()): {emit(e: RunEvent): void; done(): Observation} {
  const results: (TaskKey & {status: Status; msg: string})[] = [];
  const unreachable: Record<string, string> = {};
  let handler = false;
  let recap: Extract<RunEvent, {type: 'recap'}> | undefined;
  return {
    emit(e) {
      if (e.type === 'task') handler = e.handler === true;
      else if (e.type === 'play') handler = false;
      else if (e.type === 'recap') recap = e;
      else if (e.type === 'result') {
        const host = mask(e.host);
        if (e.status === 'unreachable') unreachable[host] ??= mask(e.msg);
        // A handler's "would change" follows from the task that notified it: not drift of its own.
        else if (!handler) results.push({host, play: mask(e.play), task: mask(e.task), status: e.status, msg: mask(e.msg)});
      }
    },
    done() {
      const hosts: Record<string, HostCounts> = {};
      for (const [h, c] of Object.entries(recap?.hosts ?? {})) hosts[mask(h)] = c;
      return {at: at.toISOString(), durationMs: recap?.duration_ms ?? Date.now() - at.getTime(), results, unreachable, hosts, interrupted: recap?.interrupted === true || !recap};
    },
  };
}

export type DriftChange =
  | {readonly type: 'drift'; readonly host: string; readonly play: string; readonly task: string; readonly state: 'drifted' | 'cleared'; readonly msg: string}
  | {readonly type: 'host'; readonly host: string; readonly state: 'unreachable' | 'reachable'; readonly msg: string};

export const keyOf = (k: TaskKey): string => JSON.stringify([k.host, k.play, k.task]);

/** Backoff: how many scheduled checks to leave out a host unreachable `failures` checks in a row. */
export function backoffChecks(failures: number, cap = BACKOFF_CAP): number {
  return failures <= 0 ? 0 : Math.min(2 ** Math.min(failures, 30), cap);
}

/** The hosts the next scheduled check leaves out (backed off). */
export function backedOff(state: DriftState): Set<string> {
  return new Set(Object.entries(state.hosts).filter(([, h]) => h.skip > 0).map(([n]) => n));
}

/**
 * The state after a check, and what changed (in order: hosts, then tasks as the check met them).
 * - A task the check says `changed` is drifted; `ok` or `skipped` is ok; `failed` tells nothing (its
 *   last state is kept; a task never seen before starts ok).
 * - Tasks of a host the check did not reach, or did not run on (--limit, backed off), keep their state.
 * - A host the check ran on to the end (reachable, nothing failed, not interrupted) loses the tasks the
 *   check did not meet (gone from the playbook, renamed): cleared, when they were drifted.
 * - A host unreachable N times in a row is left out of the next min(2^N, cap) checks (`skip`); a host
 *   left out of this check (`skipped`) counts one down.
 */
export function applyCheck(prev: DriftState, obs: Observation, skipped: ReadonlySet<string> = new Set(), cap = BACKOFF_CAP): {state: DriftState; changes: DriftChange[]} {
  const changes: DriftChange[] = [];
  const hosts: Record<string, HostState> = {...prev.hosts};
  for (const name of skipped) {
    const h = hosts[name];
    if (h) hosts[name] = {...h, skip: Math.max(0, h.skip - 1)};
  }
  const ran = new Set([...Object.keys(obs.hosts), ...Object.keys(obs.unreachable)]);
  for (const name of ran) {
    const was = hosts[name];
    const why = obs.unreachable[name];
    if (why !== undefined) {
      const failures = (was?.failures ?? 0) + 1;
      hosts[name] = {unreachable: true, failures, skip: backoffChecks(failures, cap), msg: why};
      if (!was?.unreachable) changes.push({type: 'host', host: name, state: 'unreachable', msg: why});
    } else {
      hosts[name] = {unreachable: false, failures: 0, skip: 0};
      if (was?.unreachable) changes.push({type: 'host', host: name, state: 'reachable', msg: 'reachable again'});
    }
  }

  const before = new Map(prev.tasks.map((t) => [keyOf(t), t]));
  const seen = new Map<string, TaskState>();
  for (const r of obs.results) {
    const k = keyOf(r);
    const old = seen.get(k) ?? before.get(k);
    // Two tasks of one play with one name: drifted when either is.
    const also = seen.get(k)?.state === 'drifted';
    const state: TaskState['state'] | undefined = r.status === 'changed' || also ? 'drifted' : r.status === 'failed' ? old?.state ?? 'ok' : 'ok';
    const msg = r.status === 'changed' || !also ? r.msg : seen.get(k)?.msg ?? r.msg;
    seen.set(k, {host: r.host, play: r.play, task: r.task, state, msg, since: old && old.state === state ? old.since : obs.at});
  }
  // Whose tasks the check saw completely: what it did not meet there is gone.
  const complete = new Set(Object.entries(obs.hosts).filter(([n, c]) => !obs.interrupted && c.failed === 0 && c.unreachable === 0 && obs.unreachable[n] === undefined).map(([n]) => n));
  const tasks: TaskState[] = [];
  for (const t of prev.tasks) {
    const k = keyOf(t);
    const now = seen.get(k);
    if (now) {
      tasks.push(now);
      seen.delete(k);
      if (t.state !== now.state) changes.push({type: 'drift', host: t.host, play: t.play, task: t.task, state: now.state === 'drifted' ? 'drifted' : 'cleared', msg: now.msg});
    } else if (complete.has(t.host)) {
      if (t.state === 'drifted') changes.push({type: 'drift', host: t.host, play: t.play, task: t.task, state: 'cleared', msg: 'no longer checked (not in the playbook any more, or renamed)'});
    } else {
      tasks.push(t);
    }
  }
  for (const now of seen.values()) {
    tasks.push(now);
    if (now.state === 'drifted') changes.push({type: 'drift', host: now.host, play: now.play, task: now.task, state: 'drifted', msg: now.msg});
  }
  const failed = Object.values(obs.hosts).some((c) => c.failed > 0);
  return {
    state: {
      version: STATE_VERSION, playbook: prev.playbook, checkedAt: obs.at, durationMs: obs.durationMs,
      lastSuccessAt: !obs.interrupted && !failed ? obs.at : prev.lastSuccessAt, hosts, tasks,
    },
    changes,
  };
}

/** Hosts with at least one drifted task, sorted. */
export function driftedHosts(state: DriftState): string[] {
  return [...new Set(state.tasks.filter((t) => t.state === 'drifted').map((t) => t.host))].sort();
}

/** The state as the state file holds it (snake_case, like the JSON streams). */
export function stateJson(state: DriftState): string {
  const file = {
    version: state.version,
    playbook: state.playbook,
    checked_at: state.checkedAt,
    duration_ms: state.durationMs,
    last_success_at: state.lastSuccessAt,
    drifted: state.tasks.filter((t) => t.state === 'drifted').map(({host, play, task, msg, since}) => ({host, play, task, msg, since})),
    hosts: Object.fromEntries(Object.entries(state.hosts).map(([n, h]) => [n, {unreachable: h.unreachable, failures: h.failures, skip: h.skip, ...(h.msg === undefined ? {} : {msg: h.msg})}])),
    tasks: state.tasks.map(({host, play, task, state: s, msg, since}) => ({host, play, task, state: s, msg, since})),
  };
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** Why a text is not a state file of this version (a string), or the state. */
export function parseState(text: string): DriftState | string {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'not JSON';
  }
  const o = v as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a drift state';
  if (o.version !== STATE_VERSION) return `format version ${JSON.stringify(o.version ?? null)}, this provision reads version ${STATE_VERSION}`;
  const str = (x: unknown): x is string => typeof x === 'string';
  if (!str(o.playbook) || !Array.isArray(o.tasks) || typeof o.hosts !== 'object' || o.hosts === null) return 'not a drift state (playbook, hosts, tasks)';
  const tasks: TaskState[] = [];
  for (const t of o.tasks as Record<string, unknown>[]) {
    if (!t || !str(t.host) || !str(t.play) || !str(t.task) || (t.state !== 'drifted' && t.state !== 'ok')) return 'a task entry lacks host, play, task or state';
    tasks.push({host: t.host, play: t.play, task: t.task, state: t.state, msg: str(t.msg) ? t.msg : '', since: str(t.since) ? t.since : ''});
  }
  const hosts: Record<string, HostState> = {};
  for (const [n, h] of Object.entries(o.hosts as Record<string, Record<string, unknown>>)) {
    const num = (x: unknown): number => (typeof x === 'number' && Number.isInteger(x) && x >= 0 ? x : 0);
    hosts[n] = {unreachable: h?.unreachable === true, failures: num(h?.failures), skip: num(h?.skip), ...(str(h?.msg) ? {msg: h.msg} : {})};
  }
  const time = (x: unknown): string | null => (str(x) ? x : null);
  return {
    version: STATE_VERSION, playbook: o.playbook, checkedAt: time(o.checked_at), durationMs: typeof o.duration_ms === 'number' ? o.duration_ms : null,
    lastSuccessAt: time(o.last_success_at), hosts, tasks,
  };
}

/** Write `text` to `path` atomically: a temporary file beside it, then a rename (readers see the old file or the new one). */
export function writeAtomic(path: string, text: string): void {
  try {
    // A hidden temp file ending in .tmp, renamed: node_exporter never reads half a .prom file.
    writeFileAtomic(path, text);
  } catch (e) {
    throw new UserError(`cannot write ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.error);
  }
}

/** The state file of `playbook`, for watch: afresh when there is none, or it is of another version or playbook. */
export function loadState(path: string, playbook: string): DriftState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return emptyState(playbook);
  }
  const s = parseState(text);
  return typeof s === 'string' || s.playbook !== playbook ? emptyState(playbook) : s;
}

/** What `run --only-drifted` runs: the drifted tasks of the last check, on their hosts. */
export interface DriftedTasks {
  readonly state: DriftState;
  /** The hosts with a drifted task, among `allowed` (the inventory's, or --limit's). */
  hosts(allowed: Iterable<string>): Set<string>;
  /** The engine's filter: (host, play, task) as the check named it; the name is masked first, as the check's was. */
  onlyTasks(mask: (text: string) => string): (host: string, play: string, task: string) => boolean;
}

/** Exit 5, one line: the state file `--only-drifted` needs is missing, unreadable, of another version or playbook. */
export function readDriftedTasks(path: string, playbook: string): DriftedTasks {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new UserError(`--only-drifted: no drift state at ${path}: run 'provision watch PLAYBOOK --once' first (or give the file with --state)`, ExitCode.badOptions);
  }
  const state = parseState(text);
  if (typeof state === 'string') throw new UserError(`--only-drifted: ${path} is not a drift state this provision reads (${state}): run 'provision watch PLAYBOOK --once' again`, ExitCode.badOptions);
  if (state.playbook !== playbook) throw new UserError(`--only-drifted: ${path} holds the drift of ${state.playbook}, not of ${playbook}`, ExitCode.badOptions);
  const drifted = state.tasks.filter((t) => t.state === 'drifted');
  if (drifted.length === 0) process.stderr.write(`provision: --only-drifted: the last check (${state.checkedAt ?? 'never'}) found nothing drifted: nothing to run\n`);
  const keys = new Set(drifted.map(keyOf));
  return {
    state,
    hosts: (allowed) => new Set([...allowed].filter((h) => drifted.some((t) => t.host === h))),
    onlyTasks: (mask) => (host, play, task) => keys.has(keyOf({host: mask(host), play: mask(play), task: mask(task)})),
  };
}
