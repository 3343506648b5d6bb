/**
 * A host's session in a run: connecting, the run lock and the audit log (the control session), facts,
 * and what the host has learnt and owes (results, notified handlers, counts). Started once per run,
 * ended once; the scheduler (engine.ts) decides when.
 */
import {hostname, userInfo} from 'node:os';
import {runScript, startControl, type Control} from './remote.ts';
import {becomeVars} from './become.ts';
import type {HostCounts, Status} from './events.ts';
import type {TaskResult, Vars} from './types.ts';
import {ProbeCache} from './probecache.ts';
import type {Transport} from '../transport/types.ts';
import {factsProbe, type Facts} from '../facts/host.ts';
import {truthy} from '../shared/vars.ts';

/** Where each host's audit log is, unless the host sets `provision_audit_log` (false: none). */
export const DEFAULT_AUDIT_LOG = '/var/log/provision.log';

/** What every host's session shares: who runs what, for the lock holder and the audit log. */
export interface RunInfo {
  readonly runId: string;
  /** `user@host` of the controller. */
  readonly controller: string;
  readonly startedAt: string;
  readonly playbook: string;
  readonly check: boolean;
  /** Seconds to wait for a host's run lock held by another run. */
  readonly lockTimeoutS: number;
  /** Masks secrets in a line of text (the audit log is written on the host, past every writer). */
  mask(text: string): string;
  /** Settles when the run is interrupted (a wait for a host's run lock ends then). */
  readonly interrupted?: Promise<unknown>;
}

export type StartOutcome =
  | {readonly kind: 'ok'}
  | {readonly kind: 'unreachable'; readonly error: unknown; readonly ms: number; readonly gathering: boolean}
  | {readonly kind: 'lock'; readonly msg: string; readonly ms: number; readonly interrupted?: boolean};

/** `user@host`, for the lock holder and the audit log. */
export function controllerId(): string {
  let user: string;
  try {
    user = userInfo().username;
  } catch {
    user = process.env.USER || process.env.LOGNAME || 'unknown';
  }
  return `${user}@${hostname()}`;
}

/** logfmt value: bare when safe, else double-quoted with `\` and `"` escaped. One line, always. */
export function logfmt(value: string): string {
  const v = value.replace(/[\r\n\t]+/g, ' ');
  return /^[^\s"=\\]+$/.test(v) ? v : `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** The fields of an audit log line, in their order. */
export interface AuditFields {
  readonly user: string;
  readonly host: string;
  readonly playbook: string;
  readonly play: string;
  readonly task: string;
  readonly change: string;
}

/**
 * One audit log line (logfmt, one line whatever the values hold). Each value is masked, then quoted:
 * logfmt escapes a secret's `"` or `\`, which masking the finished line would miss.
 */
export function auditLine(time: Date, f: AuditFields, mask: (text: string) => string): string {
  const v = (text: string): string => logfmt(mask(text));
  return `time=${time.toISOString()} user=${v(f.user)} host=${v(f.host)} playbook=${v(f.playbook)} play=${v(f.play)} task=${v(f.task)} change=${v(f.change)}`;
}

/** `provision_audit_log`: a path, or false/''/no/off for none (check mode never writes one). */
function auditLogOf(vars: Vars, check: boolean): string | undefined {
  const v = vars.provision_audit_log;
  if (check || v === false || v === '' || (typeof v === 'string' && ['false', 'no', 'off'].includes(v.toLowerCase()))) return undefined;
  return typeof v === 'string' ? v : DEFAULT_AUDIT_LOG;
}

export class HostSession {
  transport: Transport | undefined;
  unreachable = false;
  failed = false;
  facts: Facts | undefined;
  readonly results: Record<string, TaskResult> = {};
  /** Variables set by tasks (`setFact`): above the play's vars, below extra vars. */
  #taskVars: Vars = {};
  readonly probes = new ProbeCache();
  readonly notified = new Set<string>();
  /** Check mode: an earlier task on this host would have changed something. */
  pendingChange = false;
  /** The last task on this host ran steps (changed something, or failed part-way): the probes were dropped. */
  justChanged = false;
  readonly counts: HostCounts = {ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0};
  /** Connecting, locking and gathering facts (`start`): once per run. */
  #startup: Promise<StartOutcome> | undefined;
  /** The control session (run lock and audit log). */
  #control: Extract<Control, {ok: true}> | undefined;

  constructor(readonly name: string, private readonly run: RunInfo) {}

  get started(): boolean {
    return this.#startup !== undefined;
  }

  /** The lock this run's steps hold while they run, when the host has a run lock. */
  get stepLock(): Extract<Control, {ok: true}>['stepLock'] {
    return this.#control?.stepLock;
  }

  /** The task that failed on this host and why, for a block's rescue and always (`ctx.failed`). */
  failure: {readonly task: string; readonly msg: string} | undefined;

  /** A block's rescue takes over the host's failure: it goes on, and the failure is not counted. */
  rescue(): void {
    this.failed = false;
    this.counts.failed = Math.max(0, this.counts.failed - 1);
  }

  get taskVars(): Vars {
    return this.#taskVars;
  }

  /** `setFact`: variables later tasks on this host see. */
  setFacts(vars: Vars): void {
    this.#taskVars = {...this.#taskVars, ...vars};
  }

  /**
   * The connection dropped (an async job goes on): a new one replaces it, and the run lock (which
   * went with the old connection's control session) is taken again on it. If another run took the
   * lock meanwhile, this throws, naming it: the host must not go on beside that run.
   */
  async reconnect(connect: () => Promise<Transport>, vars: Vars): Promise<void> {
    const old = this.transport;
    const oldControl = this.#control;
    this.#control = undefined;
    oldControl?.session.end();
    await old?.close().catch(() => undefined);
    const transport = (this.transport = await connect());
    const control = await this.#takeControl(transport, vars);
    if (!control.ok) throw new Error(`connected again, but ${control.msg}`);
    this.#control = control;
  }

  /** A result of this host, counted. */
  count(status: Status): void {
    this.counts[status]++;
  }

  /**
   * Connect, take the host's run lock and gather facts, once per run (later calls get the same
   * outcome). The lock is a long-lived control session started alongside fact gathering: no extra
   * round trip.
   */
  start(connect: () => Promise<Transport>, vars: Vars, gather: boolean): Promise<StartOutcome> {
    this.#startup ??= (async (): Promise<StartOutcome> => {
      const t0 = Date.now();
      try {
        const transport = (this.transport ??= await connect());
        const [control] = await Promise.all([this.#takeControl(transport, vars), gather && !this.facts ? this.gatherFacts() : undefined]);
        if (!control.ok) return {kind: 'lock', msg: control.msg, ms: Date.now() - t0, ...(control.interrupted ? {interrupted: true} : {})};
        this.#control = control;
        return {kind: 'ok'};
      } catch (e) {
        return {kind: 'unreachable', error: e, ms: Date.now() - t0, gathering: gather};
      }
    })();
    return this.#startup;
  }

  async gatherFacts(): Promise<void> {
    if (!this.transport) throw new Error(`${this.name}: facts gathered before connecting`);
    const r = await runScript(this.transport, {become: false}, factsProbe.script);
    this.facts = factsProbe.parse({stdout: r.stdout, code: r.code});
  }

  /**
   * Start the control session: run lock (unless `provision_lock: false`) and audit log. A become
   * setting that cannot work (`ansible_become_method: doas`) fails the host here, before any task.
   * With a become password that can reach root (sudo's, or su's when the become user is root), the
   * session becomes root with it: a wrong one fails the host now, after one attempt.
   */
  #takeControl(t: Transport, vars: Vars): Promise<Control> {
    const how = becomeVars(vars);
    if ('error' in how) return Promise.resolve({ok: false, msg: `become failed: ${how.error}`});
    const becomeUser = typeof vars.ansible_become_user === 'string' ? vars.ansible_become_user : 'root';
    const auth = how.password && (how.method === 'sudo' || becomeUser === 'root') ? {method: how.method, password: how.password} : undefined;
    const lockOff = vars.provision_lock !== undefined && !truthy(vars.provision_lock);
    const lockFile = typeof vars.provision_lock_file === 'string' && vars.provision_lock_file !== '' ? vars.provision_lock_file : undefined;
    const r = this.run;
    return startControl(t, {
      ...(auth ? {auth} : {}),
      lockFile: lockOff ? null : lockFile,
      timeoutS: r.lockTimeoutS,
      runId: r.runId,
      info: `${r.controller} pid=${process.pid} playbook=${logfmt(r.playbook)} since=${r.startedAt}${r.check ? ' (check mode)' : ''}`,
      auditLog: auditLogOf(vars, r.check),
      become: truthy(vars.ansible_become),
      ...(r.interrupted ? {interrupted: r.interrupted} : {}),
    });
  }

  /** Append one line to the host's audit log, through the control session (no round trip). */
  audit(fields: {readonly play: string; readonly task: string; readonly change: string}): void {
    if (!this.#control?.audit) return;
    const {controller: user, playbook, mask} = this.run;
    this.#control.session.write(`${auditLine(new Date(), {user, host: this.name, playbook, ...fields}, mask)}\n`);
  }

  /** End the session: the audit lines sent so far are written, the lock released, the connection closed. */
  async end(): Promise<void> {
    await this.#startup; // a host started early, before a role failed to load: ended too
    const c = this.#control;
    this.#control = undefined;
    if (c) {
      c.session.end();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([c.session.done, new Promise<void>((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
    }
    await this.transport?.close().catch(() => undefined);
  }
}
