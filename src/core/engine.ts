/**
 * The engine: runs a playbook's plays on their hosts. Tasks run in lockstep across the hosts of a
 * batch (Ansible's linear strategy), hosts in parallel bounded by `forks`. On each host, the probes of
 * every task still ahead of it (the rest of this play and the plays after it that include the host) go
 * out in one round trip; the answers are cached and used until something changes, so a run that
 * changes nothing costs one probe round trip per host for the whole playbook.
 */
import {randomBytes} from 'node:crypto';
import {relative} from 'node:path';
import pLimit from 'p-limit';
import type {Secrets} from './secret.ts';
import {applyStep, becomeIdentity, describeStep, runCommand, runProbes, type Identity, type StepResult} from './remote.ts';
import {endScript, jobPath, parsePoll, pollScript, startScript} from './async.ts';
import {q, render} from './cmd.ts';
import type {ProbeScript} from '../shared/probe.ts';
import type {Emit, HostCounts} from './events.ts';
import type {BoundTask, Diff, Play, Playbook, ProbeOutput, Role, Step, Task, TaskContext, TaskOptions, Vars} from './types.ts';
import {UnreachableError, type ExecResult, type Transport} from '../transport/types.ts';
import {truthy} from '../shared/vars.ts';
import {matchesTaskName} from '../shared/glob.ts';
import {TaskArgumentError} from './task.ts';
import {changeSummary, shapeResult, type RawOutcome, type Shaped} from './result.ts';
import {controllerId, HostSession, type RunInfo} from './session.ts';
import {Variables, type InventoryView} from './variables.ts';
import type {WantedProbe} from './probecache.ts';

export type {InventoryView} from './variables.ts';

/** The module name of `flushHandlers()` (src/modules/control.ts): the engine runs the pending handlers there. */
export const FLUSH_HANDLERS = 'flushHandlers';
export {changeSummary, shapeResult} from './result.ts';
export {DEFAULT_AUDIT_LOG} from './session.ts';

export interface RunOptions {
  readonly check: boolean;
  readonly diff: boolean;
  /** Run only tasks with one of these tags (plus `always`). */
  readonly tags?: readonly string[];
  readonly skipTags?: readonly string[];
  /** Parallel hosts. */
  readonly forks: number;
  /** `-e` variables: the highest precedence. */
  readonly extraVars?: Vars;
  /** Seconds to wait for a host's run lock held by another run (default 30). */
  readonly lockTimeoutS?: number;
  /** Ansible's --start-at-task: tasks before the first whose name (or `role : name`) equals or globs it do not run. */
  readonly startAtTask?: string;
  /** `-vvv` (3 or more): a `command` event for every command sent to a host (probes and steps). */
  readonly verbose?: number;
  /**
   * `--step`: asked before each task (not handlers): run it (`yes`), skip it (`no`), or run it and
   * every later one without asking (`continue`).
   */
  readonly step?: (task: string, play: string) => Promise<'yes' | 'no' | 'continue'>;
  /**
   * `run --only-drifted`: a task (not a handler) runs on a host only when this says yes, given the
   * host, the play's name and the task's name for that host (the name its result event carries, so a
   * name computed per host matches). A task no host is chosen for is not run at all (no task event);
   * handlers still run when a task that ran notifies them.
   */
  readonly onlyTasks?: (host: string, play: string, task: string) => boolean;
}

/**
 * How many tasks a probe batch covers right after a change (see `probeAhead`): a run that changes k
 * tasks costs at most k+1 round trips plus one per cluster of changes, and a host runs at most
 * k × REPROBE_WINDOW probes beyond one per task. Infinity: probe every remaining task after each change.
 */
const REPROBE_WINDOW = 8;

export interface EngineDeps {
  readonly inventory: InventoryView;
  /** Hosts matching an Ansible pattern, in inventory order. */
  select(pattern: string): string[];
  /** Hosts allowed by --limit (all when undefined). */
  readonly limit?: ReadonlySet<string>;
  connect(host: string, vars: Vars): Promise<Transport>;
  loadRole(name: string): Promise<LoadedRole>;
  /** Role files: mustache rendering and file reads from the first of `dirs` holding `templates/<name>` (`files/<name>`). */
  render(dirs: readonly string[], name: string, view: Vars, options?: {readonly allowMissingVars?: boolean}): string;
  readFile(dirs: readonly string[], name: string): Buffer;
  /** Where a play's own tasks (not a role's) find `templates/` and `files/`: beside the playbook. */
  readonly playDirs?: readonly string[];
  readonly emit: Emit;
  /** The controller as a host, for `delegateTo: 'localhost'` (absent: such a task fails). */
  local?(): Transport;
  /** The run's secrets: the engine adds what tasks reveal as they are bound, and masks with them. */
  readonly secrets: Secrets;
  /** Aborted: running tasks finish, nothing new starts (exit 99). */
  readonly signal?: AbortSignal;
}

export interface LoadedRole {
  readonly role: Role;
  readonly dir: string;
  /** The file it was loaded from, for messages. */
  readonly file?: string;
}

export interface RunSummary {
  readonly hosts: Record<string, HostCounts>;
  readonly durationMs: number;
  readonly interrupted: boolean;
}

interface Entry {
  readonly task: Task;
  readonly play: Play;
  /** A block: its entries (the block's options already passed down to them). */
  readonly block?: {readonly tasks: readonly Entry[]; readonly rescue: readonly Entry[]; readonly always: readonly Entry[]};
  readonly role: LoadedRole | null;
  readonly tags: readonly string[];
}

type CtxOf = (h: HostSession, e: Entry) => TaskContext;

/** A task still ahead of a host, with the context it will run in (its play's). */
interface Ahead {
  readonly e: Entry;
  readonly ctxOf: CtxOf;
}

/** A play with its roles loaded, its task list filtered by tags and its hosts selected. */
interface PlayPlan {
  readonly play: Play;
  readonly entries: readonly Entry[];
  /** Every task of `entries`, blocks opened (tasks, rescue, always), in order: what probes look ahead at. */
  readonly flat: readonly Entry[];
  readonly handlers: readonly Entry[];
  readonly ctxOf: CtxOf;
  /** The hosts it targets (pattern and --limit), before failures drop any. */
  readonly hosts: readonly string[];
}

/** The task's name: its `name`, else its module and what it acts on (`file /srv/www`), for this host when it knows. */
export function taskName(t: Task, ctx?: () => TaskContext): string {
  if (t.options.name !== undefined) return t.options.name;
  let label = t.label;
  if (label === undefined && ctx) {
    try {
      label = t.describe(ctx());
    } catch {
      label = undefined;
    }
  }
  return label ? `${t.module} ${label}` : t.module;
}

/** `playbooks/web.ts:12`: where the user wrote a task, relative to the working directory. */
export function taskSource(t: Task): string | undefined {
  return t.source ? `${relative(process.cwd(), t.source.file) || t.source.file}:${t.source.line}` : undefined;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The tasks of `entries` with every block opened: its tasks, rescue and always, in order. */
function leaves(entries: readonly Entry[]): Entry[] {
  return entries.flatMap((e) => (e.block ? [...leaves(e.block.tasks), ...leaves(e.block.rescue), ...leaves(e.block.always)] : [e]));
}

/** Options of a block its tasks take, unless they set their own (`when` is both; `environment` merged). */
const INHERITED = ['become', 'becomeUser', 'ignoreErrors', 'delegateTo', 'timeout', 'checkMode', 'noLog', 'diff'] as const;

/** `task` inside a block with `parent`'s options: a task whose options say so (the rest of it shared). */
function inherit(task: Task, parent: TaskOptions): Task {
  const o = task.options;
  const options: Record<string, unknown> = {...o};
  for (const k of INHERITED) if (o[k] === undefined && parent[k] !== undefined) options[k] = parent[k];
  const pw = parent.when;
  const tw = o.when;
  if (pw) options.when = tw ? (ctx: TaskContext): boolean => pw(ctx) && tw(ctx) : pw;
  if (parent.environment) options.environment = {...parent.environment, ...(o.environment ?? {})};
  return Object.assign(Object.create(task) as Task, {options: options as TaskOptions});
}

/** The hosts a run starts with: the first batch of its first play (pattern, --limit, serial). */
export function firstHosts(playbook: Playbook, deps: Pick<EngineDeps, 'select' | 'limit'>): string[] {
  const first = playbook.plays[0];
  if (!first) return [];
  return batches(deps.select(first.hosts).filter((n) => !deps.limit || deps.limit.has(n)), first.serial)[0] ?? [];
}

/**
 * `serial` to batches, as Ansible: a percentage is of all the play's hosts (rounded down, at least 1);
 * a list gives the sizes of the first batches, its last size repeating for the rest.
 */
export function batches<T>(items: readonly T[], serial: Play['serial']): T[][] {
  if (serial === undefined || items.length === 0) return [items.slice()];
  const sizeOf = (s: number | `${number}%`): number =>
    Math.max(1, typeof s === 'number' ? s : Math.floor((items.length * parseFloat(s)) / 100));
  const sizes = (typeof serial === 'object' ? serial : [serial]).map(sizeOf);
  const last = sizes.at(-1) ?? items.length;
  const out: T[][] = [];
  for (let i = 0, k = 0; i < items.length; k++) {
    const n = sizes[k] ?? last;
    out.push(items.slice(i, i + n));
    i += n;
  }
  return out;
}

/** Whether a task with these tags (its play's and its own) runs under --tags and --skip-tags. */
export function selectedByTags(tags: readonly string[], opts: Pick<RunOptions, 'tags' | 'skipTags'>): boolean {
  if (opts.skipTags?.some((t) => tags.includes(t))) return false;
  if (!opts.tags || opts.tags.length === 0 || opts.tags.includes('all')) return !tags.includes('never');
  return tags.includes('always') || opts.tags.some((t) => tags.includes(t));
}

export class Engine {
  private readonly hosts = new Map<string, HostSession>();
  private readonly limiter: ReturnType<typeof pLimit>;
  private readonly runId = randomBytes(8).toString('hex');
  private readonly controller = controllerId();
  private readonly startedAt = new Date().toISOString();
  private playbookName = '';
  private readonly variables: Variables;
  /**
   * Bumped whenever a task changes (or may have changed) any host. A probe answer read before a change
   * elsewhere may be stale (a load balancer's check of the VIP depends on its peer): at the start of a
   * play, each host drops the answers of an older generation.
   */
  private generation = 0;
  /** A play with `anyErrorsFatal` saw a failure: nothing more runs. */
  private fatal = false;
  /** `--step` answered `continue`: no more questions. */
  private stepAll = false;

  constructor(private readonly deps: EngineDeps, private readonly opts: RunOptions) {
    this.limiter = pLimit(Math.max(1, opts.forks));
    this.variables = new Variables(deps.inventory, opts.extraVars ?? {}, (h) => this.hosts.get(h), deps, opts.check, deps.secrets);
  }

  private state(host: string): HostSession {
    let s = this.hosts.get(host);
    if (!s) this.hosts.set(host, (s = new HostSession(host, this.runInfo())));
    return s;
  }

  private runInfo(): RunInfo {
    return {
      runId: this.runId, controller: this.controller, startedAt: this.startedAt, playbook: this.playbookName,
      check: this.opts.check, lockTimeoutS: this.opts.lockTimeoutS ?? 30, mask: this.deps.secrets.mask,
      ...(this.deps.signal ? {interrupted: this.interruption()} : {}),
    };
  }

  #interruption: Promise<void> | undefined;
  /** Settles when the run is interrupted: one listener on the signal, however many hosts wait on it. */
  private interruption(): Promise<void> {
    const signal = this.deps.signal;
    return (this.#interruption ??= new Promise<void>((resolve) => {
      if (!signal || signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), {once: true});
    }));
  }

  private get interrupted(): boolean {
    return this.deps.signal?.aborted ?? false;
  }

  async run(playbook: Playbook): Promise<RunSummary> {
    const started = Date.now();
    this.playbookName = playbook.name;
    try {
      // Every play's roles are loaded first (the first probe batch of a host covers the later plays
      // too); meanwhile the first play's first hosts connect and gather facts.
      const planning = Promise.all(playbook.plays.map((play) => this.planPlay(play)));
      const gather = playbook.plays[0]?.gatherFacts !== false;
      for (const n of firstHosts(playbook, this.deps)) void this.limiter(() => this.startHost(this.state(n), gather));
      const plans = await planning;
      for (const [i, plan] of plans.entries()) {
        if (this.interrupted || this.fatal) break;
        await this.runPlay(plan, plans.slice(i + 1));
      }
    } finally {
      await Promise.all([...this.hosts.values()].map((h) => h.end()));
    }
    const hosts: Record<string, HostCounts> = {};
    for (const [name, h] of this.hosts) hosts[name] = {...h.counts};
    const summary = {hosts, durationMs: Date.now() - started, interrupted: this.interrupted};
    this.deps.emit({type: 'recap', hosts, duration_ms: summary.durationMs, check: this.opts.check, ...(summary.interrupted ? {interrupted: true} : {})});
    return summary;
  }

  /**
   * Before any host is touched, what can be known of the tasks whose arguments are computed per host,
   * for the first host of their play, with what is known before the run (variables): arguments that
   * break their schema (`file((ctx) => ({pth: ...}))`), and templates printing a variable nobody
   * defines. A task with a `when`, or whose arguments read the host's facts, results or other hosts'
   * variables (not known yet), is left to the run, and so are variables under `facts`. One host, not
   * all: a typo is the same on every host, and this runs before every run (on the lab's site, every
   * host cost 50 ms of a 1 s no-op run); a variable missing on some hosts only fails their task.
   */
  async preflight(playbook: Playbook): Promise<string[]> {
    const out = new Set<string>();
    for (const plan of await Promise.all(playbook.plays.map((p) => this.planPlay(p)))) {
      for (const e of [...plan.flat, ...plan.handlers]) {
        if (e.task.options.when || (e.task.label !== undefined && e.task.module !== 'template')) continue;
        for (const host of plan.hosts.slice(0, 1)) {
          let runtime = false;
          const ctx = new Proxy(plan.ctxOf(this.state(host), e), {
            get(target, key, receiver) {
              if (key === 'facts' || key === 'results' || key === 'hostvars') runtime = true;
              return Reflect.get(target, key, receiver) as unknown;
            },
          });
          let found: string[] = [];
          try {
            found = [...e.task.problemsFor(ctx)];
            if (found.length === 0 && e.task.module === 'template') e.task.argsFor(ctx);
          } catch (err) {
            const v = (err as {variable?: unknown}).variable;
            if ((err as Error).name === 'MissingVariableError' && typeof v === 'string' && v !== 'facts' && !v.startsWith('facts.')) found = [errorMessage(err)];
          }
          if (runtime || found.length === 0) continue;
          // Read only now: where the task was written costs a formatted stack trace.
          const where = `${taskSource(e.task) ?? (e.role?.file ? relative(process.cwd(), e.role.file) : plan.play.name)}: task '${taskName(e.task, () => ctx)}'`;
          for (const f of found) out.add(`${where}: ${f} (host ${host})`);
        }
      }
    }
    return [...out];
  }

  /** --start-at-task: settles, play after play, to whether an earlier play held the task. */
  private startFound: Promise<boolean> = Promise.resolve(false);

  private async planPlay(play: Play): Promise<PlayPlan> {
    // Taken before the first await: plays are planned concurrently, but started in playbook order.
    const start = this.opts.startAtTask;
    const foundBefore = this.startFound;
    let found: (yes: boolean) => void = () => undefined;
    if (start !== undefined) this.startFound = new Promise((r) => (found = r));
    const limit = this.deps.limit;
    const hosts = this.deps.select(play.hosts).filter((h) => !limit || limit.has(h));
    const roles: LoadedRole[] = await Promise.all((play.roles ?? []).map((r) => (typeof r === 'string' ? this.deps.loadRole(r) : {role: r, dir: r.dir ?? ''})));
    const playTags = play.tags ?? [];
    // Blocks expanded (their options passed down to their tasks), tasks selected by tags.
    const expand = (task: Task, role: LoadedRole | null, tags: readonly string[], parent?: TaskOptions): Entry[] => {
      const t = parent ? inherit(task, parent) : task;
      const own = [...tags, ...(task.options.tags ?? [])];
      if (!task.block) return selectedByTags(own, this.opts) ? [{task: t, play, role, tags: own}] : [];
      const kids = (list: readonly Task[] | undefined): Entry[] => (list ?? []).flatMap((k) => expand(k, role, own, t.options));
      const block = {tasks: kids(task.block.tasks), rescue: kids(task.block.rescue), always: kids(task.block.always)};
      return block.tasks.length + block.rescue.length + block.always.length === 0 ? [] : [{task: t, play, role, tags: own, block}];
    };
    const selected: Entry[] = [
      ...roles.flatMap((lr) => lr.role.tasks.flatMap((task) => expand(task, lr, playTags))),
      ...(play.tasks ?? []).flatMap((task) => expand(task, null, playTags)),
    ];
    // --start-at-task (Ansible's): no task before the first match across the playbook runs.
    const at = start === undefined || (await foundBefore) ? 0 : selected.findIndex((e) => matchesTaskName(start, taskName(e.task), e.role?.role.name ?? null));
    found(at >= 0);
    const entries = at < 0 ? [] : selected.slice(at);
    const handlers: Entry[] = [
      ...roles.flatMap((lr) => (lr.role.handlers ?? []).map((task) => ({task, play, role: lr, tags: []}))),
      ...(play.handlers ?? []).map((task) => ({task, play, role: null, tags: []})),
    ];
    const defaults = Object.assign({}, ...roles.map((lr) => lr.role.defaults ?? {})) as Vars;
    // Secrets written into the playbook (fixed arguments, defaults, play vars): masked from the run's start.
    for (const e of [...leaves(entries), ...handlers]) this.deps.secrets.add(...e.task.secrets);
    this.deps.secrets.addFound([defaults, play.vars]);
    // A role's own folder; a play's tasks (and a role object without a folder): beside the playbook.
    const ctxOf = (h: HostSession, e: Entry): TaskContext => this.variables.context(h.name, h, play, defaults, e.role?.dir ? [e.role.dir] : (this.deps.playDirs ?? []));
    return {play, entries, flat: leaves(entries), handlers, ctxOf, hosts};
  }

  /** The tasks ahead of `h` from `from` on: the rest of this play, then the later plays that include it. */
  private ahead(h: HostSession, plan: PlayPlan, from: Entry, later: readonly PlayPlan[]): Ahead[] {
    const out: Ahead[] = plan.flat.slice(Math.max(0, plan.flat.indexOf(from))).map((e) => ({e, ctxOf: plan.ctxOf}));
    for (const p of later) if (p.hosts.includes(h.name)) for (const e of p.flat) out.push({e, ctxOf: p.ctxOf});
    return out;
  }

  private async runPlay(plan: PlayPlan, later: readonly PlayPlan[]): Promise<void> {
    const {play} = plan;
    const hosts = plan.hosts.filter((h) => !this.state(h).failed && !this.state(h).unreachable);

    this.deps.emit({type: 'play', name: play.name, hosts, tasks: plan.flat.length});
    if (hosts.length === 0) return;

    for (const batch of batches(hosts, play.serial)) {
      if (this.interrupted || this.fatal) return;
      for (const n of batch) this.state(n).probes.dropOlderThan(this.generation);
      await this.each(batch, (h) => this.prepare(h, play.gatherFacts !== false, play));
      const sessions = batch.map((n) => this.state(n));
      if (!(await this.runEntries(plan, plan.entries, sessions, later, false))) return;
      await this.runHandlers(plan, batch);
      const failed = sessions.filter((h) => h.failed || h.unreachable).length;
      const pct = (failed / batch.length) * 100;
      if (failed === batch.length || (play.maxFailPercentage !== undefined && pct > play.maxFailPercentage)) return;
    }
  }

  /**
   * Run `entries` in lockstep on the `hosts` still live (each task on all of them before the next).
   * False: stop the play (interrupted, or `anyErrorsFatal` saw a failure). `rescuable`: inside a block
   * with a rescue, whose end decides whether a failure is fatal.
   */
  private async runEntries(plan: PlayPlan, entries: readonly Entry[], hosts: readonly HostSession[], later: readonly PlayPlan[], rescuable: boolean): Promise<boolean> {
    const {play, ctxOf} = plan;
    for (const e of entries) {
      if (this.interrupted) return false;
      const live = hosts.filter((h) => !h.failed && !h.unreachable);
      const [first] = live;
      if (!first) return true;
      if (e.block) {
        if (!(await this.runBlock(plan, e.block, live, later, rescuable))) return false;
      } else if (e.task.module === FLUSH_HANDLERS) {
        await this.runHandlers(plan, live.map((h) => h.name));
        continue;
      } else {
        const o = e.task.options;
        // --only-drifted: the hosts this task is chosen on, by the name it has on each.
        const only = this.opts.onlyTasks;
        const chosen = only ? live.filter((h) => only(h.name, play.name, taskName(e.task, () => ctxOf(h, e)))) : live;
        const [lead] = chosen;
        if (!lead) continue;
        if (this.opts.step && !this.stepAll) {
          const answer = await this.opts.step(taskName(e.task, () => ctxOf(lead, e)), play.name);
          if (answer === 'no') continue;
          if (answer === 'continue') this.stepAll = true;
        }
        const runs = o.runOnce ? [lead] : chosen;
        this.deps.emit({type: 'task', play: play.name, name: taskName(e.task, () => ctxOf(lead, e)), role: e.role?.role.name ?? null, hosts: runs.map((h) => h.name)});
        await this.runEverywhere(runs, (h) => this.runTask(h, play, e, () => this.ahead(h, plan, e, later), ctxOf), o.throttle);
        if (o.runOnce) this.shareRunOnce(lead, live, e);
      }
      if ((play.anyErrorsFatal || e.task.options.anyErrorsFatal) && !rescuable && live.some((h) => h.failed || h.unreachable)) {
        // Ansible's any_errors_fatal: the play (and the run) stops on every host; handlers do not run.
        this.fatal = true;
        return false;
      }
    }
    return true;
  }

  /**
   * A block on `hosts`: its tasks; then, on the hosts where one failed, the rescue (the failure is
   * cleared and no longer counted, as Ansible's recap does; `ctx.failed` tells what failed); then
   * always, on every host that started the block (a failure stays a failure after it).
   */
  private async runBlock(plan: PlayPlan, block: NonNullable<Entry['block']>, hosts: readonly HostSession[], later: readonly PlayPlan[], rescuable: boolean): Promise<boolean> {
    const inner = rescuable || block.rescue.length > 0;
    let go = await this.runEntries(plan, block.tasks, hosts, later, inner);
    const failed = hosts.filter((h) => h.failed && !h.unreachable);
    if (go && block.rescue.length > 0 && failed.length > 0) {
      for (const h of failed) h.rescue();
      go = await this.runEntries(plan, block.rescue, failed, later, rescuable);
    }
    if (block.always.length > 0 && !this.interrupted && !this.fatal) {
      const still = hosts.filter((h) => !h.unreachable);
      const wasFailed = still.filter((h) => h.failed);
      for (const h of wasFailed) h.failed = false;
      const ok = await this.runEntries(plan, block.always, still, later, rescuable);
      for (const h of wasFailed) h.failed = true;
      go = go && ok;
    }
    for (const h of hosts) h.failure = undefined;
    return go;
  }

  /** Run `fn` on each host, bounded by forks and by the task's `throttle`. */
  private runEverywhere(hosts: readonly HostSession[], fn: (h: HostSession) => Promise<void>, throttle: number | undefined): Promise<unknown> {
    const limit = throttle === undefined ? undefined : pLimit(throttle);
    return Promise.all(hosts.map((h) => (limit ? limit(() => this.limiter(() => fn(h))) : this.limiter(() => fn(h)))));
  }

  /** `runOnce`: the hosts that did not run the task get the result of the one that did (`register`, notified handlers). */
  private shareRunOnce(ran: HostSession, live: readonly HostSession[], e: Entry): void {
    const o = e.task.options;
    for (const h of live) {
      if (h === ran) continue;
      const result = o.register ? ran.results[o.register] : undefined;
      if (o.register && result) h.results[o.register] = result;
      if (o.notify && ran.notified.size > 0) for (const n of typeof o.notify === 'string' ? [o.notify] : o.notify) if (ran.notified.has(n)) h.notified.add(n);
    }
  }

  /**
   * The handlers notified so far, in definition order, on the hosts that notified them (by name or by
   * a `listen` topic); then nothing is pending. At the end of each batch, and at `flushHandlers()`.
   */
  private async runHandlers(plan: PlayPlan, batch: readonly string[]): Promise<void> {
    const {play, handlers, ctxOf} = plan;
    for (const [i, e] of handlers.entries()) {
      if (this.interrupted) return;
      const name = taskName(e.task);
      const listen = e.task.options.listen;
      const topics = [name, ...(typeof listen === 'string' ? [listen] : (listen ?? []))];
      // Also on hosts that failed after notifying (Ansible's force_handlers): the change that notified
      // is on disk (validated before it was written), so the service must pick it up now; a later
      // run would see the file converged and never reload.
      const live = batch.map((n) => this.state(n)).filter((h) => !h.unreachable && topics.some((t) => h.notified.has(t)));
      if (live.length === 0) continue;
      this.deps.emit({type: 'task', play: play.name, name, role: e.role?.role.name ?? null, handler: true, hosts: live.map((h) => h.name)});
      await Promise.all(live.map((h) => this.limiter(() => this.runTask(h, play, e, () => handlers.slice(i).map((x) => ({e: x, ctxOf})), ctxOf))));
    }
    for (const n of batch) this.state(n).notified.clear();
  }

  private each(hosts: readonly string[], fn: (h: HostSession) => Promise<void>): Promise<unknown> {
    return Promise.all(hosts.map((n) => this.limiter(() => fn(this.state(n)))));
  }

  /**
   * The variables a host is connected and become with: its inventory's, under the extra vars (`-e
   * ansible_user=…` or `-e ansible_become=true` win over the inventory, as in Ansible).
   */
  private connectionVars(host: string): Vars {
    const extra = this.opts.extraVars;
    return extra && Object.keys(extra).length > 0 ? {...this.deps.inventory.hostVars(host), ...extra} : this.deps.inventory.hostVars(host);
  }

  /** Start the host's session (connect, run lock, facts): once per run; the first play's hosts start while the roles load. */
  private startHost(h: HostSession, gather: boolean): ReturnType<HostSession['start']> {
    const vars = this.connectionVars(h.name);
    return h.start(() => this.deps.connect(h.name, vars), vars, gather);
  }

  /** Report how the host's start went (once); gather facts now if this play wants them and no play did yet. */
  private async prepare(h: HostSession, gather: boolean, play: Play): Promise<void> {
    if (h.unreachable || h.failed) return;
    const first = !h.started;
    const outcome = await this.startHost(h, gather);
    if (outcome.kind === 'unreachable') {
      if (!h.unreachable) this.markUnreachable(h, outcome.gathering ? 'Gathering Facts' : 'connect', outcome.error, outcome.ms);
      return;
    }
    if (outcome.kind === 'lock') {
      // Interrupted while waiting for another run's lock: nothing starts on it, and nothing failed.
      if (outcome.interrupted) return;
      if (!h.failed) {
        h.failed = true;
        h.count('failed');
        this.deps.emit({type: 'result', host: h.name, task: 'Acquire run lock', play: play.name, role: null, status: 'failed', duration_ms: outcome.ms, diff: null, msg: this.deps.secrets.mask(outcome.msg), pending: false});
      }
      return;
    }
    if (gather && !h.facts && !first) {
      const t0 = Date.now();
      await h.gatherFacts().catch((e: unknown) => this.markUnreachable(h, 'Gathering Facts', e, Date.now() - t0));
    }
  }

  private markUnreachable(h: HostSession, task: string, e: unknown, ms: number): void {
    h.unreachable = true;
    h.counts.unreachable = 1;
    this.deps.emit({type: 'result', host: h.name, task, play: '', role: null, status: 'unreachable', duration_ms: ms, diff: null, msg: this.deps.secrets.mask(errorMessage(e)), pending: false});
  }

  /** `h` changed (or may have, part-way): its probe answers are stale, and other hosts' may be too. */
  private dropProbes(h: HostSession): void {
    h.probes.clear();
    this.generation++;
  }

  private identity(h: HostSession, task: Task): Identity {
    const v = this.connectionVars(h.name);
    const become = task.options.become ?? truthy(v.ansible_become);
    if (!become) return {become: false};
    const user = task.options.becomeUser ?? (typeof v.ansible_become_user === 'string' ? v.ansible_become_user : 'root');
    const login = h.facts?.userId || (typeof v.ansible_user === 'string' ? v.ansible_user : '');
    if (login === user) return {become: false};
    // sudo (default) or su, with the host's become password: joins the run's secrets before any use.
    const who = becomeIdentity(v, user);
    if (who.become && who.password) this.deps.secrets.add(who.password.reveal());
    return who;
  }

  /**
   * Probe the current task and the ones ahead of it in one round trip; fill the host's cache. Right
   * after a change only the next `REPROBE_WINDOW` tasks are probed: changes come in runs (a first run
   * changes nearly every task), and probing every remaining task after each change made the hosts run
   * O(tasks²) probes. A batch that follows tasks which changed nothing covers the rest again.
   */
  private async probeAhead(h: HostSession, transport: Transport, entries: readonly Ahead[], first: BoundTask, firstWho: Identity): Promise<void> {
    const wanted: WantedProbe[] = first.probe ? [{who: firstWho, probe: first.probe}] : [];
    for (const {e, ctxOf} of h.justChanged ? entries.slice(1, REPROBE_WINDOW) : entries.slice(1)) {
      try {
        const o = e.task.options;
        // Probed when they run, elsewhere or otherwise: another host's, per item, with their environment or time limit.
        if (o.delegateTo !== undefined || o.loop || o.timeout !== undefined || Object.keys(this.environment(e)).length > 0) continue;
        const ctx = ctxOf(h, e);
        if (o.when && !o.when(ctx)) continue;
        const b = this.bind(e.task, ctx);
        if (b.probe) wanted.push({who: this.identity(h, e.task), probe: b.probe, ahead: true});
      } catch {
        // Arguments that depend on results not there yet: probed when the task runs.
      }
    }
    await h.probes.fill(transport, wanted, this.generation);
  }

  /** The task bound for a host; what it reveals joins the run's secrets before anything can print it. */
  private bind(task: Task, ctx: TaskContext): BoundTask {
    const bound = task.bind(ctx);
    this.deps.secrets.add(...bound.secrets);
    return bound;
  }

  /** This task under --check: planned only, unless `checkMode: false` (then it runs for real). */
  private checking(e: Entry): boolean {
    return this.opts.check && e.task.options.checkMode !== false;
  }

  /**
   * Run one task on one host (each item of its loop, each retry), then report it: one result event,
   * counted once, audited per change, registered.
   */
  private async runTask(h: HostSession, play: Play, e: Entry, remaining: () => readonly Ahead[], ctxOf: CtxOf): Promise<void> {
    const t0 = Date.now();
    const o = e.task.options;
    const check = this.checking(e);
    let ctx: TaskContext;
    try {
      ctx = ctxOf(h, e);
    } catch (err) {
      return this.finish(h, play, e, t0, {name: taskName(e.task), shaped: shapeResult({status: 'failed', msg: errorMessage(err)}, o, false)});
    }
    if (!o.loop) {
      const run = await this.tries(h, play, e, ctx, remaining);
      return this.finish(h, play, e, t0, run);
    }
    // A loop: one try (with its retries) per item, in order; a host that cannot be reached stops it.
    let items: readonly unknown[];
    try {
      items = o.loop(ctx);
    } catch (err) {
      return this.finish(h, play, e, t0, {name: taskName(e.task, () => ctx), shaped: shapeResult({status: 'failed', msg: `loop: ${errorMessage(err)}`}, o, false)});
    }
    const done: {item: unknown; run: TryOutcome}[] = [];
    for (const [index, item] of items.entries()) {
      const run = await this.tries(h, play, e, {...ctx, item, index}, remaining);
      done.push({item, run});
      if ('unreachable' in run) return this.finish(h, play, e, t0, run);
    }
    const results = done.flatMap(({item, run}) => ('shaped' in run ? [{item, result: run.shaped.result, counted: run.shaped.counted, msg: run.shaped.msg}] : []));
    const failed = results.filter((r) => r.result.failed);
    const forgiven = failed.length > 0 && failed.every((r) => r.counted === 'ok');
    const changed = results.some((r) => r.result.changed);
    const status = failed.length > 0 ? 'failed' : changed ? 'changed' : results.length > 0 && results.every((r) => r.result.skipped) ? 'skipped' : 'ok';
    const label = (item: unknown): string => (typeof item === 'string' ? item : JSON.stringify(item) ?? String(item));
    const result = {
      status, changed, failed: failed.length > 0, skipped: status === 'skipped',
      msg: results.length === 0 ? 'no items' : results.map((r) => `(item=${label(r.item)}) ${r.result.status}: ${r.msg}`).join('; '),
      diff: null, stdout: '', stderr: '', rc: null, dependsOnPendingChange: check && h.pendingChange,
      items: results.map((r) => ({...r.result, item: r.item})),
    } as const;
    return this.finish(h, play, e, t0, {
      name: taskName(e.task, () => ctx),
      shaped: {result, counted: forgiven ? 'ok' : status, ignored: forgiven, msg: result.msg},
      items: results.map((r) => ({item: label(r.item), status: r.result.status, msg: r.msg})),
    });
  }

  /** Report a task's final outcome on a host, count it, notify its handlers, register it. */
  private finish(h: HostSession, play: Play, e: Entry, t0: number, run: TryOutcome & {items?: readonly {item: string; status: string; msg: string}[]}): void {
    const o = e.task.options;
    if ('unreachable' in run) {
      h.unreachable = true;
      h.count('unreachable');
      return this.report(h, play, e, run.name, t0, {status: 'unreachable', msg: run.unreachable});
    }
    const {shaped} = run;
    const {result} = shaped;
    h.count(shaped.counted);
    if (result.failed && !shaped.ignored) {
      h.failed = true;
      h.failure = {task: run.name, msg: result.msg};
    }
    const {items: _registered, ...shown} = result;
    this.report(h, play, e, run.name, t0, {...run.raw, ...shown, msg: shaped.msg, ...(run.items ? {items: run.items} : {})});
    if (result.changed) {
      if (this.checking(e)) h.pendingChange = true;
      for (const n of typeof o.notify === 'string' ? [o.notify] : (o.notify ?? [])) h.notified.add(n);
    }
    if (o.register) h.results[o.register] = result;
  }

  /**
   * One task (or one item of its loop) on a host, tried until it is done: `until` holds of its result
   * (or, without `until`, it did not fail), `retries` more times at most, `delay` seconds apart. Each
   * try that ran steps is audited; the probes of a try that changed something are dropped.
   */
  private async tries(h: HostSession, play: Play, e: Entry, ctx: TaskContext, remaining: () => readonly Ahead[]): Promise<TryOutcome> {
    const o = e.task.options;
    const check = this.checking(e);
    const retrying = o.until !== undefined || o.retries !== undefined;
    const retries = retrying ? (o.retries ?? 3) : 0;
    for (let attempt = 1; ; attempt++) {
      const run = await this.attempt(h, e, ctx, remaining);
      if (run.outcome === 'unreachable') return {name: run.name, unreachable: run.msg};
      let shaped = shapeResult(run.outcome, o, check && h.pendingChange);
      if (run.did !== undefined && !check && (shaped.result.changed || shaped.result.failed)) {
        h.audit({play: play.name, task: run.name, change: shaped.result.failed ? `FAILED ${run.did}` : run.did});
      }
      h.justChanged = !check && run.did !== undefined;
      if (shaped.result.changed && !check) this.dropProbes(h);
      // Under --check a task that would run did not: there is nothing to wait for.
      if (!retrying || shaped.result.skipped || (check && run.did === undefined && run.outcome.status === 'changed')) return {name: run.name, shaped, raw: run.outcome};
      let done: boolean;
      try {
        done = o.until ? o.until(shaped.result, ctx) : !shaped.result.failed;
      } catch (err) {
        return {name: run.name, shaped: shapeResult({...run.outcome, status: 'failed', msg: `until: ${errorMessage(err)}`}, {}, false), raw: run.outcome};
      }
      if (done) return {name: run.name, shaped, raw: run.outcome};
      if (attempt > retries || this.interrupted) {
        const why = shaped.result.failed ? shaped.result.msg : `until was still false (${shaped.result.status}: ${shaped.result.msg})`;
        shaped = shapeResult({...run.outcome, status: 'failed', msg: `${attempt} attempt${attempt > 1 ? 's' : ''}, retries exhausted: ${why}`}, {ignoreErrors: o.ignoreErrors}, false);
        return {name: run.name, shaped, raw: run.outcome};
      }
      // The host may change while we wait (that is what retries wait for): read it again.
      this.dropProbes(h);
      await this.sleep((o.delay ?? 5) * 1000);
    }
  }

  /** Wait, unless the run is interrupted. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const signal = this.deps.signal;
      function done(): void {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, {once: true});
    });
  }

  /** The result event of a task on a host (masked; output only for failures, unless noLog). */
  private report(
    h: HostSession, play: Play, e: Entry, name: string, t0: number,
    r: Omit<RawOutcome, 'status'> & {status: RawOutcome['status'] | 'unreachable'; items?: readonly {item: string; status: string; msg: string}[]},
  ): void {
    const o = e.task.options;
    const noLog = o.noLog === true;
    const {status} = r;
    const {mask} = this.deps.secrets;
    const diff = this.opts.diff && o.diff !== false && !noLog && r.diff ? {...r.diff, before: mask(r.diff.before), after: mask(r.diff.after)} : null;
    this.deps.emit({
      type: 'result', host: h.name, task: name, play: play.name, role: e.role?.role.name ?? null, status,
      duration_ms: Date.now() - t0, diff,
      msg: noLog && status === 'failed' ? 'output hidden by noLog' : mask(r.msg ?? ''),
      // Check mode: planned on today's state although an earlier task on this host would have changed it.
      pending: this.opts.check && status !== 'skipped' && h.pendingChange,
      // The command's output: for failures, and for changes (shown with -v).
      ...((status === 'failed' || status === 'changed') && !noLog ? {cmd: r.cmd ? mask(r.cmd) : undefined, stdout: mask(r.stdout ?? ''), stderr: mask(r.stderr ?? ''), rc: r.rc ?? null} : {}),
      ...(r.items && !noLog ? {items: r.items.map((i) => ({item: mask(i.item), status: i.status, msg: mask(i.msg)}))} : {}),
    });
  }

  /**
   * Where a task runs: the host itself, another inventory host (`delegateTo`; its session is started
   * with its run lock, and its connection variables and privileges are used), or the controller.
   */
  private async target(h: HostSession, e: Entry, ctx: TaskContext): Promise<{transport: Transport; who: Identity; cached: boolean} | {unreachable: string}> {
    const d = e.task.options.delegateTo;
    const to = typeof d === 'function' ? d(ctx) : d;
    const own = (): {transport: Transport; who: Identity; cached: boolean} | {unreachable: string} =>
      h.transport ? {transport: h.transport, who: this.identity(h, e.task), cached: true} : {unreachable: `${h.name}: not connected`};
    if (to === undefined || to === h.name) return own();
    if (to === 'localhost' || to === '127.0.0.1') {
      if (!this.deps.local) throw new Error('delegateTo localhost: this run has no local transport');
      return {transport: this.deps.local(), who: {become: false}, cached: false};
    }
    if (!this.deps.inventory.hostNames.includes(to)) throw new Error(`delegateTo: no host '${to}' in the inventory`);
    const other = this.state(to);
    const outcome = await this.startHost(other, false);
    if (outcome.kind === 'unreachable') return {unreachable: `delegate ${to}: ${errorMessage(outcome.error)}`};
    if (outcome.kind === 'lock') throw new Error(`delegate ${to}: ${outcome.msg}`);
    if (!other.transport) return {unreachable: `delegate ${to}: not connected`};
    return {transport: other.transport, who: this.identity(other, e.task), cached: false};
  }

  /**
   * An exec step as an async job: started detached on the host, then polled every `pollS` seconds
   * until it ends (its output and status are the step's), or killed after `limitS` seconds. A poll that
   * finds the connection gone connects again (the job goes on meanwhile). `pollS` 0: started, not
   * waited for (its path is the result's stdout).
   */
  private async runJob(h: HostSession, step: Extract<Step, {kind: 'exec'}>, who: Identity, transport: () => Transport, limitS: number, pollS: number): Promise<StepResult> {
    if (step.stdin !== undefined) return {code: 1, stdout: '', stderr: 'async: a command that reads stdin cannot run as an async job'};
    const id = `${this.runId}-${randomBytes(4).toString('hex')}`;
    const started = await runCommand(transport(), who, startScript(id, render(step.cmd)));
    if (started.code !== 0 || !started.stdout.startsWith('STARTED')) return {...started, stderr: `async: the job did not start: ${started.stderr.trim()}`};
    if (pollS === 0) return {code: 0, stdout: `${jobPath(id)}\n`, stderr: '', note: `async job ${id} started, not waited for (poll: 0)`};
    const deadline = Date.now() + limitS * 1000;
    const marker = `__provision_job_${randomBytes(6).toString('hex')}__`;
    let reconnects = 0;
    for (;;) {
      await this.sleep(Math.min(pollS * 1000, Math.max(0, deadline - Date.now())));
      let r: ExecResult;
      try {
        r = await runCommand(transport(), who, pollScript(id, marker));
      } catch (err) {
        if (!(err instanceof UnreachableError) || reconnects >= 5 || Date.now() > deadline) throw err;
        // The connection dropped; the job did not. Connect again and go on polling.
        reconnects++;
        const vars = this.connectionVars(h.name);
        await h.reconnect(() => this.deps.connect(h.name, vars), vars);
        continue;
      }
      const state = parsePoll(r.stdout, marker);
      const note = reconnects > 0 ? `polled over ${reconnects} new connection${reconnects > 1 ? 's' : ''} after the connection dropped` : undefined;
      if (state.kind === 'done') {
        await runCommand(transport(), who, endScript(id, false));
        return {code: state.rc, stdout: state.stdout, stderr: state.stderr, ...(note ? {note} : {})};
      }
      if (state.kind === 'lost') return {code: 1, stdout: '', stderr: `async job ${id}: gone from the host (its files were removed)`};
      if (Date.now() >= deadline || this.interrupted) {
        await runCommand(transport(), who, endScript(id, true));
        return {code: 124, stdout: '', stderr: `async job ran past ${limitS} s: killed`};
      }
    }
  }

  /**
   * A reboot step: send the reboot command (detached, so it returns before the connection drops),
   * then connect again every second (each new connection takes the run lock again, see
   * HostSession.reconnect) until the host's boot id differs from the one before and the test command
   * succeeds, or the step's time limit passes. The host's probe answers are dropped: everything may
   * differ after a boot.
   */
  private async reboot(h: HostSession, step: Extract<Step, {kind: 'reboot'}>, who: Identity): Promise<StepResult> {
    const t0 = Date.now();
    const deadline = t0 + step.timeoutS * 1000;
    this.dropProbes(h);
    const transport = h.transport;
    if (!transport) throw new Error(`${h.name}: reboot before connecting`);
    const sent = await runCommand(transport, who, `nohup sh -c ${q(`sleep 1; ${step.command}`)} >/dev/null 2>&1 &`).catch((err: unknown) => {
      if (err instanceof UnreachableError) return {code: 0, stdout: '', stderr: ''}; // it went down at once
      throw err;
    });
    if (sent.code !== 0) return {...sent, stderr: `the reboot command failed: ${sent.stderr.trim() || `exit ${sent.code}`}`};
    const vars = this.connectionVars(h.name);
    let last = 'not tried yet';
    await this.sleep(1500);
    while (Date.now() < deadline && !this.interrupted) {
      try {
        await h.reconnect(() => this.deps.connect(h.name, vars), vars);
        const now = h.transport;
        if (!now) throw new Error('not connected');
        const r = await runCommand(now, {become: false}, 'cat /proc/sys/kernel/random/boot_id');
        const bootId = r.stdout.trim();
        if (r.code === 0 && bootId !== '' && bootId !== step.bootId) {
          if (step.postDelayS > 0) await this.sleep(step.postDelayS * 1000);
          const test = await runCommand(now, who, step.test);
          if (test.code === 0) return {code: 0, stdout: test.stdout, stderr: '', note: `back after ${((Date.now() - t0) / 1000).toFixed(1)} s`};
          last = `test command ${step.test}: ${test.stderr.trim() || `exit ${test.code}`}`;
        } else {
          last = 'still up, not rebooted yet';
        }
      } catch (err) {
        last = errorMessage(err);
      }
      await this.sleep(1000);
    }
    return {code: 124, stdout: '', stderr: `did not come back within ${step.timeoutS} s (last: ${last})`};
  }

  /** `environment` of the task, over its role's and its play's. */
  private environment(e: Entry): Readonly<Record<string, string>> {
    return {...(e.play.environment ?? {}), ...(e.role?.role.environment ?? {}), ...(e.task.options.environment ?? {})};
  }

  /**
   * Bind the task for the host, probe, plan, and (unless --check) apply the plan's steps. `name`: the
   * task's name for this host; `did`: what it changed, for the audit log, once steps ran.
   */
  private async attempt(h: HostSession, e: Entry, ctx: TaskContext, remaining: () => readonly Ahead[]): Promise<{name: string; did?: string} & ({outcome: RawOutcome} | {outcome: 'unreachable'; msg: string})> {
    const o = e.task.options;
    const check = this.checking(e);
    let name = taskName(e.task, () => ctx);
    let bound: BoundTask;
    try {
      if (o.when && !o.when(ctx)) return {name, outcome: {status: 'skipped', msg: 'condition false'}};
      bound = this.bind(e.task, ctx);
      if (o.name === undefined && bound.label) name = `${e.task.module} ${bound.label}`;
    } catch (err) {
      // A wrong argument computed for this host: the same line a fixed one gets before the run.
      const where = err instanceof TaskArgumentError ? taskSource(e.task) : undefined;
      return {name, outcome: {status: 'failed', msg: where ? `${where}: ${errorMessage(err)}` : errorMessage(err)}};
    }
    let did: string | undefined;
    try {
      const reached = await this.target(h, e, ctx);
      if ('unreachable' in reached) return {name, outcome: 'unreachable', msg: reached.unreachable};
      // -vvv: every command this task sends, as an event (probes first, then the plan's steps).
      let phase: 'probe' | 'apply' = 'probe';
      const target = (this.opts.verbose ?? 0) >= 3
        ? {...reached, transport: observed(reached.transport, (command, r, ms) => this.deps.emit({
            type: 'command', host: h.name, task: name, on: reached.transport.host, phase, cmd: this.deps.secrets.mask(command), rc: r?.code ?? null, duration_ms: ms,
          }))}
        : reached;
      const env = this.environment(e);
      const transport = withTimeout(target.transport, o.timeout);
      const {who} = target;
      let current: unknown;
      if (bound.probe) {
        const probe = withEnvironment(bound.probe, env);
        let out: ProbeOutput | undefined;
        if (target.cached && Object.keys(env).length === 0 && o.timeout === undefined) {
          if (!h.probes.has(probe)) await this.probeAhead(h, target.transport, remaining(), bound, who);
          out = h.probes.get(probe);
        } else {
          [out] = await runProbes(transport, who, [probe]);
        }
        if (!out) throw new Error(`${h.name}: the probe of task '${name}' was not answered`);
        if (timedOut(out.code, o.timeout)) return {name, outcome: {status: 'failed', msg: `timed out after ${o.timeout} s (reading the host's state)`}};
        current = bound.probe.parse(out);
      }
      const plan = bound.plan(current);
      phase = 'apply';
      if (plan.facts) h.setFacts(plan.facts);
      if (plan.fail) {
        // Check mode: a task planned on state an earlier "would change" has not made yet (a service
        // whose package is not installed yet) cannot be predicted: it is reported as a change that
        // rests on the earlier one (marked pending), not as a failure.
        if (check && h.pendingChange) return {name, outcome: {status: 'changed', msg: `would change once earlier changes are made (today: ${plan.fail})`, diff: plan.diff}};
        return {name, outcome: {status: 'failed', msg: plan.fail, diff: plan.diff}};
      }
      if (plan.steps.length === 0) return {name, outcome: {status: 'ok', msg: plan.reason ?? 'ok', ...(plan.data === undefined ? {} : {data: plan.data})}};
      const data = plan.data === undefined ? {} : {data: plan.data};
      if (check) return {name, outcome: {status: 'changed', msg: `would ${plan.reason ?? 'change'}`, diff: plan.diff, ...data}};
      let last = {stdout: '', stderr: '', rc: null as number | null};
      did = o.noLog ? `(details hidden by noLog)${plan.diff?.path ? ` ${plan.diff.path}` : ''}` : changeSummary(plan);
      const notes: string[] = [];
      const stepLock = target.cached ? h.stepLock : undefined;
      for (const step of plan.steps) {
        if (step.kind === 'reboot' && !target.cached) return {name, outcome: {status: 'failed', msg: 'reboot: a delegated task cannot reboot its target (run it on the host itself)'}};
        const r = step.kind === 'reboot'
          ? await this.reboot(h, step, who)
          : step.kind === 'exec' && o.async !== undefined
            ? await this.runJob(h, withStepEnvironment(step, env), who, target.cached ? () => h.transport ?? transport : () => transport, o.async, o.poll ?? 10)
            : await applyStep(transport, who, withStepEnvironment(step, env), stepLock);
        if (r.note) notes.push(r.note);
        last = {stdout: r.stdout, stderr: r.stderr, rc: r.code};
        const ok = step.kind === 'exec' ? (step.okCodes ?? [0]).includes(r.code) : r.code === 0;
        if (!ok) {
          this.dropProbes(h);
          if (timedOut(r.code, o.timeout)) return {name, did, outcome: {status: 'failed', msg: `${describeStep(step)}: timed out after ${o.timeout} s (killed)`, cmd: describeStep(step), ...last}};
          const why = r.stderr.trim().split('\n').slice(-3).join(' ') || r.stdout.trim().split('\n').slice(-1)[0] || `exit ${r.code}`;
          const denied = who.become && /sudo: a password is required|sudo: .* not in the sudoers/.test(r.stderr);
          return {name, did, outcome: {status: 'failed', msg: denied ? `become failed: ${why}` : `${describeStep(step)}: ${[why, ...notes].join('; ')}`, cmd: describeStep(step), diff: plan.diff, ...last}};
        }
      }
      return {name, did, outcome: {status: 'changed', msg: [plan.reason ?? 'changed', ...notes].join('; '), diff: plan.diff, ...last, ...data}};
    } catch (err) {
      if (err instanceof UnreachableError) return {name, outcome: 'unreachable', msg: errorMessage(err)};
      return {name, ...(did === undefined ? {} : {did}), outcome: {status: 'failed', msg: errorMessage(err)}};
    }
  }
}

/** `t`, telling `seen` each command it ran (with its result, or null when it threw) and how long it took. */
function observed(t: Transport, seen: (command: string, r: ExecResult | null, ms: number) => void): Transport {
  return withExec(t, async (command, options) => {
    const t0 = Date.now();
    try {
      const r = await t.exec(command, options);
      seen(command, r, Date.now() - t0);
      return r;
    } catch (err) {
      seen(command, null, Date.now() - t0);
      throw err;
    }
  });
}

/** `t` with another `exec` (the rest of it as it is). */
function withExec(t: Transport, exec: Transport['exec']): Transport {
  return {host: t.host, exec, start: (c, o) => t.start(c, o), put: (p, c, o) => t.put(p, c, o), get: (p) => t.get(p), close: () => t.close()};
}

/** How a try of a task ended: shaped by its options, or the host could not be reached. */
type TryOutcome = {readonly name: string; readonly shaped: Shaped; readonly raw?: RawOutcome} | {readonly name: string; readonly unreachable: string};

/** The exit status of a command `timeout` killed (TERM: 124; KILL after the grace period: 137). */
function timedOut(code: number, timeout: number | undefined): boolean {
  return timeout !== undefined && (code === 124 || code === 137);
}

/** `export K='V'` lines for a shell. */
function exports(env: Readonly<Record<string, string>>): string {
  return Object.entries(env).map(([k, v]) => `export ${k}=${q(v)}`).join('\n');
}

/** A probe whose script runs with `env` (a different script: its answer is cached apart). */
function withEnvironment(probe: ProbeScript & {parse(out: ProbeOutput): unknown}, env: Readonly<Record<string, string>>): typeof probe {
  if (Object.keys(env).length === 0) return probe;
  return {...probe, script: `${exports(env)}\n${probe.script}`, path: undefined};
}

/** An exec step whose command runs with `env` (inside any privilege escalation: sudo resets the environment). */
function withStepEnvironment<S extends Step>(step: S, env: Readonly<Record<string, string>>): S {
  if (step.kind !== 'exec' || Object.keys(env).length === 0) return step;
  const cmd = 'shell' in step.cmd ? {shell: `${exports(env)}\n${step.cmd.shell}`} : {argv: ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...step.cmd.argv]};
  return {...step, cmd};
}

/**
 * The transport as a task with a `timeout` sees it: each command runs under `timeout` on the host (TERM
 * after `seconds`, KILL 5 s later), so a hung command is killed there and the connection stays usable.
 */
function withTimeout(t: Transport, seconds: number | undefined): Transport {
  if (seconds === undefined) return t;
  return withExec(t, (command, options) => t.exec(`timeout -k 5 ${seconds} sh -c ${q(command)}`, options));
}

/** What would fail before any host is touched (see Engine.preflight); nothing connects. */
export function preflight(playbook: Playbook, opts: RunOptions, deps: EngineDeps): Promise<string[]> {
  return new Engine(deps, opts).preflight(playbook);
}

/** Run a playbook: the one entry point of the engine. */
export function runPlaybook(playbook: Playbook, opts: RunOptions, deps: EngineDeps): Promise<RunSummary> {
  return new Engine(deps, opts).run(playbook);
}

export type {Diff};
