/**
 * The engine: runs a playbook's plays on their hosts. Tasks run in lockstep across the hosts of a
 * batch (Ansible's linear strategy), hosts in parallel bounded by `forks`. On each host, the probes of
 * every task still ahead of it (the rest of this play and the plays after it that include the host) go
 * out in one round trip; the answers are cached and used until something changes, so a run that
 * changes nothing costs one probe round trip per host for the whole playbook.
 */
import {randomBytes} from 'node:crypto';
import {relative} from 'node:path';
import {hostname, userInfo} from 'node:os';
import pLimit from 'p-limit';
import {diffLines} from 'diff';
import {mask} from './secret.ts';
import {applyStep, describeStep, runProbes, runScript, startControl, type Control, type Identity} from './remote.ts';
import type {Emit, HostCounts, Status} from './events.ts';
import type {BoundTask, Diff, Plan, Play, Playbook, ProbeOutput, Role, Task, TaskContext, TaskResult, Vars} from './types.ts';
import type {ProbeScript} from '../shared/probe.ts';
import {UnreachableError, type Transport} from '../transport/types.ts';
import {factsProbe, noFacts, type Facts} from '../facts/host.ts';
import {truthy} from '../shared/vars.ts';
import {TaskArgumentError} from './task.ts';

/** What the engine needs of an inventory (src/inventory implements it). */
export interface InventoryView {
  readonly source: string;
  readonly hostNames: readonly string[];
  hostVars(host: string): Record<string, unknown>;
  groupsOf(host: string): string[];
  groupHosts(group: string): string[];
  readonly groups: ReadonlyMap<string, unknown>;
}

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
}

/**
 * How many tasks a probe batch covers right after a change (see `probeAhead`): a run that changes k
 * tasks costs at most k+1 round trips plus one per cluster of changes, and a host runs at most
 * k × REPROBE_WINDOW probes beyond one per task. Infinity: probe every remaining task after each change.
 */
const REPROBE_WINDOW = 8;

/** Where each host's audit log is, unless the host sets `provision_audit_log` (false: none). */
export const DEFAULT_AUDIT_LOG = '/var/log/provision.log';

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
  readonly role: LoadedRole | null;
  readonly tags: readonly string[];
}

type CtxOf = (h: HostState, e: Entry) => TaskContext;

/** A task still ahead of a host, with the context it will run in (its play's). */
interface Ahead {
  readonly e: Entry;
  readonly ctxOf: CtxOf;
}

/** A play with its roles loaded, its task list filtered by tags and its hosts selected. */
interface PlayPlan {
  readonly play: Play;
  readonly entries: readonly Entry[];
  readonly handlers: readonly Entry[];
  readonly ctxOf: CtxOf;
  /** The hosts it targets (pattern and --limit), before failures drop any. */
  readonly hosts: readonly string[];
}

type StartOutcome =
  | {readonly kind: 'ok'}
  | {readonly kind: 'unreachable'; readonly error: unknown; readonly ms: number; readonly gathering: boolean}
  | {readonly kind: 'lock'; readonly msg: string; readonly ms: number};

class HostState {
  transport?: Transport;
  unreachable = false;
  failed = false;
  facts: Facts | undefined;
  results: Record<string, TaskResult> = {};
  /** Probe answers by script, each with the run's change generation when it was read. */
  probeCache = new Map<string, {out: ProbeOutput; gen: number}>();
  notified = new Set<string>();
  pendingChange = false;
  /** The last task on this host ran steps (changed something, or failed part-way): the probes were dropped. */
  justChanged = false;
  /** Connecting, locking and gathering facts (`startHost`): once per run. */
  startup: Promise<StartOutcome> | undefined;
  /** The control session (run lock and audit log), started once per run. */
  control: Extract<Control, {ok: true}> | undefined;
  readonly counts: HostCounts = {ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0};
  constructor(readonly name: string) {}
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

/** The hosts a run starts with: the first batch of its first play (pattern, --limit, serial). */
export function firstHosts(playbook: Playbook, deps: Pick<EngineDeps, 'select' | 'limit'>): string[] {
  const first = playbook.plays[0];
  if (!first) return [];
  return batches(deps.select(first.hosts).filter((n) => !deps.limit || deps.limit.has(n)), first.serial)[0] ?? [];
}

/** `serial` to batch sizes. */
export function batches<T>(items: readonly T[], serial: Play['serial']): T[][] {
  if (serial === undefined || items.length === 0) return [items.slice()];
  const size = typeof serial === 'number' ? serial : Math.max(1, Math.floor((items.length * parseFloat(serial)) / 100));
  const n = Math.max(1, size);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}

function selectedByTags(tags: readonly string[], opts: RunOptions): boolean {
  if (opts.skipTags?.some((t) => tags.includes(t))) return false;
  if (!opts.tags || opts.tags.length === 0 || opts.tags.includes('all')) return !tags.includes('never');
  return tags.includes('always') || opts.tags.some((t) => tags.includes(t));
}

/** `user@host`, for the lock holder and the audit log. */
function controllerId(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER || process.env.LOGNAME || 'unknown';
  }
  return `${user}@${hostname()}`;
}

/** logfmt value: bare when safe, else double-quoted with `\` and `"` escaped. One line, always. */
function logfmt(value: string): string {
  const v = value.replace(/[\r\n\t]+/g, ' ');
  return /^[^\s"=\\]+$/.test(v) ? v : `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** What a changed task did, in a few words: `+3 -1 /etc/nginx/nginx.conf`, else its commands. */
export function changeSummary(plan: Plan): string {
  const write = plan.steps.find((s) => s.kind === 'write');
  // A diff that is not the content itself (a secret, a large or binary file): say what was written.
  if (write?.kind === 'write' && (!plan.diff || Buffer.byteLength(plan.diff.after) !== write.content.length)) {
    const rest = plan.steps.length - 1;
    return `write ${write.dest} (${write.content.length} bytes)${rest > 0 ? ` and ${rest} more step${rest > 1 ? 's' : ''}` : ''}`;
  }
  if (plan.diff) {
    let added = 0;
    let removed = 0;
    for (const part of diffLines(plan.diff.before, plan.diff.after)) {
      if (part.added) added += part.count ?? 0;
      else if (part.removed) removed += part.count ?? 0;
    }
    const path = plan.diff.path ?? (write?.kind === 'write' ? write.dest : '');
    return `+${added} -${removed}${path ? ` ${path}` : ''}`;
  }
  const text = plan.steps.map((s) => (s.kind === 'write' ? `write ${s.dest} (${s.content.length} bytes)` : describeStep(s))).join('; ');
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

export class Engine {
  private readonly hosts = new Map<string, HostState>();
  private readonly limiter: ReturnType<typeof pLimit>;
  private readonly runId = randomBytes(8).toString('hex');
  private readonly controller = controllerId();
  private readonly startedAt = new Date().toISOString();
  private playbookName = '';
  /**
   * Bumped whenever a task changes (or may have changed) any host. A probe answer read before a change
   * elsewhere may be stale (a load balancer's check of the VIP depends on its peer): at the start of a
   * play, each host drops the answers of an older generation.
   */
  private generation = 0;

  constructor(private readonly deps: EngineDeps, private readonly opts: RunOptions) {
    this.limiter = pLimit(Math.max(1, opts.forks));
  }

  private state(host: string): HostState {
    let s = this.hosts.get(host);
    if (!s) this.hosts.set(host, (s = new HostState(host)));
    return s;
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
      for (let i = 0; i < plans.length; i++) {
        if (this.interrupted) break;
        await this.runPlay(plans[i], plans.slice(i + 1));
      }
    } finally {
      await Promise.all([...this.hosts.values()].map(async (h) => {
        await h.startup; // a host started early, before a role failed to load: closed too
        await this.releaseControl(h);
        await h.transport?.close().catch(() => undefined);
      }));
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
      for (const e of [...plan.entries, ...plan.handlers]) {
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

  private async planPlay(play: Play): Promise<PlayPlan> {
    const limit = this.deps.limit;
    const hosts = this.deps.select(play.hosts).filter((h) => !limit || limit.has(h));
    const roles: LoadedRole[] = await Promise.all((play.roles ?? []).map((r) => (typeof r === 'string' ? this.deps.loadRole(r) : {role: r, dir: r.dir ?? ''})));
    const playTags = play.tags ?? [];
    const entries: Entry[] = [
      ...roles.flatMap((lr) => lr.role.tasks.map((task) => ({task, role: lr, tags: [...playTags, ...(task.options.tags ?? [])]}))),
      ...(play.tasks ?? []).map((task) => ({task, role: null, tags: [...playTags, ...(task.options.tags ?? [])]})),
    ].filter((e) => selectedByTags(e.tags, this.opts));
    const handlers: Entry[] = [
      ...roles.flatMap((lr) => (lr.role.handlers ?? []).map((task) => ({task, role: lr, tags: []}))),
      ...(play.handlers ?? []).map((task) => ({task, role: null, tags: []})),
    ];
    const defaults = Object.assign({}, ...roles.map((lr) => lr.role.defaults ?? {})) as Vars;
    const ctxOf = (h: HostState, e: Entry): TaskContext => this.context(h, play, defaults, e.role);
    return {play, entries, handlers, ctxOf, hosts};
  }

  /** The tasks ahead of `h` from `entries[i]` on: the rest of this play, then the later plays that include it. */
  private ahead(h: HostState, plan: PlayPlan, i: number, later: readonly PlayPlan[]): Ahead[] {
    const out: Ahead[] = plan.entries.slice(i).map((e) => ({e, ctxOf: plan.ctxOf}));
    for (const p of later) if (p.hosts.includes(h.name)) for (const e of p.entries) out.push({e, ctxOf: p.ctxOf});
    return out;
  }

  private async runPlay(plan: PlayPlan, later: readonly PlayPlan[]): Promise<void> {
    const {play, entries, handlers, ctxOf} = plan;
    const hosts = plan.hosts.filter((h) => !this.state(h).failed && !this.state(h).unreachable);

    this.deps.emit({type: 'play', name: play.name, hosts, tasks: entries.length});
    if (hosts.length === 0) return;

    for (const batch of batches(hosts, play.serial)) {
      if (this.interrupted) return;
      for (const n of batch) {
        const h = this.state(n);
        for (const [script, c] of h.probeCache) if (c.gen !== this.generation) h.probeCache.delete(script);
      }
      await this.each(batch, (h) => this.prepare(h, play.gatherFacts !== false, play));
      for (let i = 0; i < entries.length; i++) {
        if (this.interrupted) return;
        const live = batch.map((n) => this.state(n)).filter((h) => !h.failed && !h.unreachable);
        if (live.length === 0) break;
        const e = entries[i];
        this.deps.emit({type: 'task', play: play.name, name: taskName(e.task, () => ctxOf(live[0], e)), role: e.role?.role.name ?? null, hosts: live.map((h) => h.name)});
        await Promise.all(live.map((h) => this.limiter(() => this.runTask(h, play, e, () => this.ahead(h, plan, i, later), ctxOf))));
      }
      // Handlers: once, at the end of the batch, in definition order, on the hosts that notified them.
      for (let i = 0; i < handlers.length; i++) {
        if (this.interrupted) return;
        const e = handlers[i];
        const name = taskName(e.task);
        // Also on hosts that failed after notifying (Ansible's force_handlers): the change that notified
        // is on disk (validated before it was written), so the service must pick it up now; a later
        // run would see the file converged and never reload.
        const live = batch.map((n) => this.state(n)).filter((h) => !h.unreachable && h.notified.has(name));
        if (live.length === 0) continue;
        this.deps.emit({type: 'task', play: play.name, name, role: e.role?.role.name ?? null, handler: true, hosts: live.map((h) => h.name)});
        await Promise.all(live.map((h) => this.limiter(() => this.runTask(h, play, e, () => handlers.slice(i).map((x) => ({e: x, ctxOf})), ctxOf))));
        for (const h of live) h.notified.delete(name);
      }
      for (const n of batch) this.state(n).notified.clear();
      const failed = batch.filter((n) => this.state(n).failed || this.state(n).unreachable).length;
      const pct = (failed / batch.length) * 100;
      if (failed === batch.length || (play.maxFailPercentage !== undefined && pct > play.maxFailPercentage)) return;
    }
  }

  private each(hosts: readonly string[], fn: (h: HostState) => Promise<void>): Promise<unknown> {
    return Promise.all(hosts.map((n) => this.limiter(() => fn(this.state(n)))));
  }

  /**
   * Connect, take the host's run lock and gather facts: once per run, silently (`prepare` reports the
   * outcome). The lock is a long-lived control session started alongside fact gathering: no extra
   * round trip. Started for the first play's hosts while the roles load.
   */
  private startHost(h: HostState, gather: boolean): Promise<StartOutcome> {
    h.startup ??= (async (): Promise<StartOutcome> => {
      const vars = this.deps.inventory.hostVars(h.name);
      const t0 = Date.now();
      try {
        h.transport ??= await this.deps.connect(h.name, vars);
        const transport = h.transport;
        const lock = h.control === undefined && transport.start ? this.takeControl(h, transport as Transport & {start: NonNullable<Transport['start']>}, vars) : undefined;
        const facts = gather && !h.facts ? this.gatherFacts(h) : undefined;
        const [control] = await Promise.all([lock, facts]);
        if (control && !control.ok) return {kind: 'lock', msg: control.msg, ms: Date.now() - t0};
        if (control?.ok) h.control = control;
        return {kind: 'ok'};
      } catch (e) {
        return {kind: 'unreachable', error: e, ms: Date.now() - t0, gathering: gather};
      }
    })();
    return h.startup;
  }

  /** Report how the host's start went (once); gather facts now if this play wants them and no play did yet. */
  private async prepare(h: HostState, gather: boolean, play: Play): Promise<void> {
    if (h.unreachable || h.failed) return;
    const first = !h.startup;
    const outcome = await this.startHost(h, gather);
    if (outcome.kind === 'unreachable') {
      if (!h.unreachable) this.markUnreachable(h, outcome.gathering ? 'Gathering Facts' : 'connect', outcome.error, outcome.ms);
      return;
    }
    if (outcome.kind === 'lock') {
      if (!h.failed) {
        h.failed = true;
        h.counts.failed++;
        this.deps.emit({type: 'result', host: h.name, task: 'Acquire run lock', play: play.name, role: null, status: 'failed', duration_ms: outcome.ms, diff: null, msg: mask(outcome.msg), pending: false});
      }
      return;
    }
    if (gather && !h.facts && !first) {
      const t0 = Date.now();
      await this.gatherFacts(h).catch((e: unknown) => this.markUnreachable(h, 'Gathering Facts', e, Date.now() - t0));
    }
  }

  private async gatherFacts(h: HostState): Promise<void> {
    const r = await runScript(h.transport!, {become: false}, factsProbe.script);
    h.facts = factsProbe.parse({stdout: r.stdout, code: r.code});
  }

  /** Start the host's control session: run lock (unless `provision_lock: false`) and audit log. */
  private takeControl(h: HostState, t: Transport & {start: NonNullable<Transport['start']>}, vars: Vars): Promise<Control> {
    const lockOff = vars.provision_lock !== undefined && !truthy(vars.provision_lock);
    const lockFile = typeof vars.provision_lock_file === 'string' && vars.provision_lock_file !== '' ? vars.provision_lock_file : undefined;
    const auditVar = vars.provision_audit_log;
    const auditLog = this.opts.check || auditVar === false || auditVar === '' || (typeof auditVar === 'string' && ['false', 'no', 'off'].includes(auditVar.toLowerCase()))
      ? undefined
      : typeof auditVar === 'string' ? auditVar : DEFAULT_AUDIT_LOG;
    return startControl(t, {
      lockFile: lockOff ? null : lockFile,
      timeoutS: this.opts.lockTimeoutS ?? 30,
      runId: this.runId,
      info: `${this.controller} pid=${process.pid} playbook=${logfmt(this.playbookName)} since=${this.startedAt}${this.opts.check ? ' (check mode)' : ''}`,
      auditLog,
      become: truthy(vars.ansible_become),
    });
  }

  /** End the control session: the audit lines sent so far are written, then the lock is released. */
  private async releaseControl(h: HostState): Promise<void> {
    const c = h.control;
    if (!c) return;
    h.control = undefined;
    c.session.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([c.session.done, new Promise<void>((r) => (timer = setTimeout(r, 5000)))]);
    clearTimeout(timer);
  }

  /** Append one line to the host's audit log (through the control session: no round trip). */
  private audit(h: HostState, play: Play, task: string, what: string): void {
    if (!h.control?.audit) return;
    const line = [
      `time=${new Date().toISOString()}`,
      `user=${logfmt(this.controller)}`,
      `host=${logfmt(h.name)}`,
      `playbook=${logfmt(this.playbookName)}`,
      `play=${logfmt(play.name)}`,
      `task=${logfmt(task)}`,
      `change=${logfmt(what)}`,
    ].join(' ');
    h.control.session.write(`${mask(line).replace(/[\r\n]+/g, ' ')}\n`);
  }

  private markUnreachable(h: HostState, task: string, e: unknown, ms: number): void {
    h.unreachable = true;
    h.counts.unreachable = 1;
    this.deps.emit({type: 'result', host: h.name, task, play: '', role: null, status: 'unreachable', duration_ms: ms, diff: null, msg: mask(errorMessage(e)), pending: false});
  }

  /** Group → hosts: the inventory does not change during a run, so built once (not per task and host). */
  private groupsCache: Readonly<Record<string, readonly string[]>> | undefined;
  /** A host's variables in a play, built once per play run (keyed by that run's `defaults` object), not per task. */
  private readonly varsCache = new WeakMap<Vars, Map<string, {vars: Vars; groupNames: readonly string[]}>>();

  private context(h: HostState, play: Play, defaults: Vars, role: LoadedRole | null): TaskContext {
    const inv = this.deps.inventory;
    if (!this.groupsCache) {
      const all: Record<string, readonly string[]> = {};
      for (const g of inv.groups.keys()) all[g] = Object.freeze(inv.groupHosts(g));
      this.groupsCache = Object.freeze(all);
    }
    const groups = this.groupsCache;
    const facts = h.facts ?? noFacts;
    let byHost = this.varsCache.get(defaults);
    if (!byHost) this.varsCache.set(defaults, (byHost = new Map()));
    let shared = byHost.get(h.name);
    if (!shared) {
      const groupNames = Object.freeze(inv.groupsOf(h.name));
      const base: Vars = {
        ...defaults,
        ...inv.hostVars(h.name),
        ...(play.vars ?? {}),
        ...(this.opts.extraVars ?? {}),
        inventory_hostname: h.name,
        group_names: groupNames,
      };
      byHost.set(h.name, (shared = {vars: Object.freeze(base), groupNames}));
    }
    const vars = shared.vars;
    const deps = this.deps;
    // A role's own folder; a play's tasks (and a role object without a folder): beside the playbook.
    const dirs = role?.dir ? [role.dir] : (deps.playDirs ?? []);
    return {
      host: h.name,
      vars,
      facts,
      groups,
      groupNames: shared.groupNames,
      hostvars: (other: string) => {
        const o = this.hosts.get(other);
        return {...inv.hostVars(other), inventory_hostname: other, ...(o?.facts ? {facts: o.facts} : {}), results: o?.results ?? {}};
      },
      results: h.results,
      check: this.opts.check,
      render(name, extra, options) {
        return deps.render(dirs, name, {...vars, facts, groups, ...(extra ?? {})}, options);
      },
      readFile(name) {
        return deps.readFile(dirs, name);
      },
    };
  }

  /** `h` changed (or may have, part-way): its probe answers are stale, and other hosts' may be too. */
  private dropProbes(h: HostState): void {
    h.probeCache.clear();
    this.generation++;
  }

  private identity(h: HostState, task: Task): Identity {
    const v = this.deps.inventory.hostVars(h.name);
    const become = task.options.become ?? truthy(v.ansible_become);
    if (!become) return {become: false};
    const user = task.options.becomeUser ?? (typeof v.ansible_become_user === 'string' ? v.ansible_become_user : 'root');
    const login = h.facts?.userId || (typeof v.ansible_user === 'string' ? v.ansible_user : '');
    return login === user ? {become: false} : {become: true, user};
  }

  /**
   * Probe `entries` (the current task and the ones ahead of it) in one round trip; fill the cache.
   * Right after a change only the next `REPROBE_WINDOW` tasks are probed: changes come in runs (a
   * first run changes nearly every task), and probing every remaining task after each change made the
   * hosts run O(tasks²) probes. A batch that follows tasks which changed nothing covers the rest again.
   */
  private async probeAhead(h: HostState, entries: readonly Ahead[], first: BoundTask, firstWho: Identity): Promise<void> {
    const byWho = new Map<string, {who: Identity; probes: ProbeScript[]}>();
    const add = (who: Identity, probe: ProbeScript): void => {
      const key = who.become ? `sudo:${who.user}` : 'login';
      const g = byWho.get(key) ?? {who, probes: []};
      if (!g.probes.some((p) => p.script === probe.script) && !h.probeCache.has(probe.script)) g.probes.push(probe);
      byWho.set(key, g);
    };
    if (first.probe) add(firstWho, first.probe);
    for (const {e, ctxOf} of h.justChanged ? entries.slice(1, REPROBE_WINDOW) : entries.slice(1)) {
      try {
        const ctx = ctxOf(h, e);
        if (e.task.options.when && !e.task.options.when(ctx)) continue;
        const b = e.task.bind(ctx);
        if (b.probe) add(this.identity(h, e.task), b.probe);
      } catch {
        // Arguments that depend on results not there yet: probed when the task runs.
      }
    }
    const transport = h.transport!;
    await Promise.all([...byWho.values()].map(async ({who, probes}) => {
      const gen = this.generation;
      const outs = await runProbes(transport, who, probes);
      probes.forEach((p, i) => h.probeCache.set(p.script, {out: outs[i], gen}));
    }));
  }

  private async runTask(h: HostState, play: Play, e: Entry, remaining: () => readonly Ahead[], ctxOf: CtxOf): Promise<void> {
    const t0 = Date.now();
    let name = taskName(e.task);
    const roleName = e.role?.role.name ?? null;
    const o = e.task.options;
    /** What the task changed on the host, for the audit log (set once steps ran). */
    let auditWhat: string | undefined;
    const emit = (status: Status, r: Partial<TaskResult> & {cmd?: string}): void => {
      h.counts[status]++;
      const noLog = o.noLog === true;
      const diff = this.opts.diff && o.diff !== false && !noLog && r.diff ? {...r.diff, before: mask(r.diff.before), after: mask(r.diff.after)} : null;
      this.deps.emit({
        type: 'result', host: h.name, task: name, play: play.name, role: roleName, status,
        duration_ms: Date.now() - t0, diff,
        msg: noLog && status === 'failed' ? 'output hidden by noLog' : mask(r.msg ?? ''),
        // Check mode: planned on today's state although an earlier task on this host would have changed it.
        pending: this.opts.check && status !== 'skipped' && h.pendingChange,
        ...(status === 'failed' && !noLog ? {cmd: r.cmd ? mask(r.cmd) : undefined, stdout: mask(r.stdout ?? ''), stderr: mask(r.stderr ?? ''), rc: r.rc ?? null} : {}),
      });
    };
    const finish = (status: Status, r: Partial<TaskResult> & {cmd?: string}): void => {
      let result: TaskResult = {
        status, changed: status === 'changed', failed: status === 'failed', skipped: status === 'skipped',
        msg: r.msg ?? '', diff: r.diff ?? null, stdout: r.stdout ?? '', stderr: r.stderr ?? '', rc: r.rc ?? null,
        dependsOnPendingChange: this.opts.check && h.pendingChange,
      };
      if (status !== 'skipped' && status !== 'unreachable') {
        try {
          if (o.changedWhen && !result.failed) {
            const changed = o.changedWhen(result);
            result = {...result, changed, status: changed ? 'changed' : 'ok'};
          }
          if (o.failedWhen) {
            const failed = o.failedWhen(result);
            result = {...result, failed, status: failed ? 'failed' : result.changed ? 'changed' : 'ok'};
          }
        } catch (err) {
          result = {...result, failed: true, status: 'failed', msg: `changedWhen/failedWhen: ${errorMessage(err)}`};
        }
      }
      if (auditWhat !== undefined && !this.opts.check && (result.changed || result.failed)) {
        this.audit(h, play, name, result.failed ? `FAILED ${auditWhat}` : auditWhat);
      }
      if (result.failed && o.ignoreErrors) {
        emit('failed', {...r, ...result, msg: `${result.msg} (ignored)`});
        h.counts.failed--;
        h.counts.ok++;
      } else {
        emit(result.status, {...r, ...result});
        if (result.failed) h.failed = true;
      }
      if (result.changed) {
        if (this.opts.check) h.pendingChange = true;
        else this.dropProbes(h);
        const notify = typeof o.notify === 'string' ? [o.notify] : (o.notify ?? []);
        for (const n of notify) h.notified.add(n);
      }
      h.justChanged = !this.opts.check && auditWhat !== undefined;
      if (o.register) h.results[o.register] = result;
    };

    let ctx: TaskContext;
    let bound: BoundTask;
    try {
      ctx = ctxOf(h, e);
      if (o.when && !o.when(ctx)) {
        name = taskName(e.task, () => ctx);
        return finish('skipped', {msg: 'condition false'});
      }
      bound = e.task.bind(ctx);
      if (o.name === undefined && bound.label) name = `${e.task.module} ${bound.label}`;
    } catch (err) {
      name = taskName(e.task, () => ctx);
      // A wrong argument computed for this host: the same line a fixed one gets before the run.
      const where = err instanceof TaskArgumentError ? taskSource(e.task) : undefined;
      return finish('failed', {msg: where ? `${where}: ${errorMessage(err)}` : errorMessage(err)});
    }
    const who = this.identity(h, e.task);
    const transport = h.transport!;
    try {
      let current: unknown;
      if (bound.probe) {
        if (!h.probeCache.has(bound.probe.script)) await this.probeAhead(h, remaining(), bound, who);
        current = bound.probe.parse(h.probeCache.get(bound.probe.script)!.out);
      }
      const plan = bound.plan(current);
      if (plan.fail) {
        // Check mode: a task planned on state an earlier "would change" has not made yet (a service
        // whose package is not installed yet) cannot be predicted: it is reported as a change that
        // rests on the earlier one (marked pending), not as a failure.
        if (this.opts.check && h.pendingChange) return finish('changed', {msg: `would change once earlier changes are made (today: ${plan.fail})`, diff: plan.diff});
        return finish('failed', {msg: plan.fail, diff: plan.diff});
      }
      if (plan.steps.length === 0) return finish('ok', {msg: plan.reason ?? 'ok'});
      if (this.opts.check) return finish('changed', {msg: `would ${plan.reason ?? 'change'}`, diff: plan.diff});
      let last = {stdout: '', stderr: '', rc: null as number | null};
      auditWhat = o.noLog ? `(details hidden by noLog)${plan.diff?.path ? ` ${plan.diff.path}` : ''}` : changeSummary(plan);
      const notes: string[] = [];
      for (const step of plan.steps) {
        const r = await applyStep(transport, who, step, h.control?.stepLock);
        if (r.note) notes.push(r.note);
        last = {stdout: r.stdout, stderr: r.stderr, rc: r.code};
        const ok = step.kind === 'exec' ? (step.okCodes ?? [0]).includes(r.code) : r.code === 0;
        if (!ok) {
          this.dropProbes(h);
          const why = r.stderr.trim().split('\n').slice(-3).join(' ') || r.stdout.trim().split('\n').slice(-1)[0] || `exit ${r.code}`;
          const denied = who.become && /sudo: a password is required|sudo: .* not in the sudoers/.test(r.stderr);
          return finish('failed', {msg: denied ? `become failed: ${why}` : `${describeStep(step)}: ${[why, ...notes].join('; ')}`, cmd: describeStep(step), diff: plan.diff, ...last});
        }
      }
      return finish('changed', {msg: [plan.reason ?? 'changed', ...notes].join('; '), diff: plan.diff, ...last});
    } catch (err) {
      if (err instanceof UnreachableError) {
        h.unreachable = true;
        return emit('unreachable', {msg: errorMessage(err)});
      }
      return finish('failed', {msg: errorMessage(err)});
    }
  }
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
