/**
 * `provision watch PLAYBOOK`: the playbook in check mode, on a schedule (or once), never applying
 * anything; the drift it finds kept per (host, play, task) (src/cli/drift.ts) and shown as Prometheus
 * metrics (`--listen`, `--textfile`), JSON lines (`--json`) and a state file (`--state`) that
 * `run --only-drifted` reads. Each check is `provision run PLAYBOOK --check`'s code path (src/cli/main.ts
 * `run`, given these hooks): the same loading, vault, engine and run locks. docs/watch.md.
 */
import {createServer, type Server} from 'node:http';
import {join, resolve} from 'node:path';
import {Option, type Command} from 'commander';
import {ExitCode, badOption, type ExitCodeValue} from '../core/errors.ts';
import type {RunSummary} from '../core/engine.ts';
import type {Emit} from '../core/events.ts';
import type {Secrets} from '../core/secret.ts';
import {applyCheck, backedOff, DEFAULT_STATE_FILE, driftedHosts, loadState, observer, stateJson, writeAtomic, type DriftChange, type DriftState, type Observation} from './drift.ts';
import {findPlaybook} from './load.ts';

/** What `run` (src/cli/main.ts) needs to be watch's check: where the run's events go, and the schedule. */
export interface WatchHooks {
  /** The run's events (instead of a renderer): watch reads them, nothing prints them. */
  readonly emit: Emit;
  /**
   * Called once everything is loaded and checked: runs `check` (one engine run in check mode, leaving
   * out the hosts in `skip`) as often as the schedule says, until `signal` aborts (or once); the exit code.
   */
  drive(check: (skip: ReadonlySet<string>) => Promise<RunSummary>, signal: AbortSignal): Promise<ExitCodeValue>;
}

/** The hosts a check runs on: --limit's (or every inventory host) without those backed off; `limit` itself when none is. */
export function without(limit: ReadonlySet<string> | undefined, all: readonly string[], skip: ReadonlySet<string>): ReadonlySet<string> | undefined {
  if (skip.size === 0) return limit;
  return new Set([...(limit ?? all)].filter((h) => !skip.has(h)));
}

const UNITS: Readonly<Record<string, number>> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000};

/** `--every`: `30s`, `5m`, `1h`, `1h30m`, `500ms` (a bare number is seconds) to milliseconds; at least 1 s. */
export function parseDuration(text: string): number {
  const t = text.trim();
  let ms: number;
  if (/^\d+(\.\d+)?$/.test(t)) ms = Number(t) * 1000;
  else if (/^(\d+(\.\d+)?(ms|s|m|h))+$/.test(t)) ms = [...t.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)].reduce((sum, [, n, u]) => sum + Number(n) * (UNITS[u ?? 's'] ?? 1000), 0);
  else throw badOption(`--every: expected a duration like 30s, 5m or 1h, got '${text}'`);
  if (!(ms >= 1000)) throw badOption(`--every: at least 1s, got '${text}'`);
  return ms;
}

/** `--listen`: `ADDR:PORT`, `[::1]:PORT` or `:PORT` (all addresses); port 0 picks a free one. */
export function parseListen(text: string): {host: string | undefined; port: number} {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535)) throw badOption(`--listen: expected ADDR:PORT (e.g. 127.0.0.1:9469), got '${text}'`);
  const host = m[1] ?? m[2];
  return {host: host === '' ? undefined : host, port};
}

/** One JSON line of the watch stream per change (docs/watch.md, "The JSON stream"). */
export function changeLine(c: DriftChange): Record<string, unknown> {
  return c.type === 'drift'
    ? {type: 'drift', host: c.host, play: c.play, task: c.task, state: c.state, msg: c.msg}
    : {type: 'host', host: c.host, state: c.state, msg: c.msg};
}

/** The JSON line closing each check. */
export function checkLine(state: DriftState, obs: Observation, skipped: ReadonlySet<string>): Record<string, unknown> {
  const unreachable = Object.entries(state.hosts).filter(([, h]) => h.unreachable).map(([n]) => n).sort();
  return {
    type: 'check', time: obs.at, duration_ms: obs.durationMs,
    drifted_hosts: driftedHosts(state).length, drifted_tasks: state.tasks.filter((t) => t.state === 'drifted').length,
    unreachable_hosts: unreachable.length, backed_off: [...skipped].sort(), interrupted: obs.interrupted,
  };
}

/** The plain line of a change, for a person. */
function changeText(c: DriftChange): string {
  return c.type === 'drift' ? `${c.state.padEnd(8)} ${c.host} | ${c.play} | ${c.task}: ${c.msg}` : `${c.state.padEnd(8)} ${c.host}: ${c.msg}`;
}

/** The fields of RunFlags (src/cli/main.ts) a watch sets. */
export interface WatchRunFlags {
  inventory?: string[];
  check: boolean;
  diff: boolean;
  limit?: string;
  tags?: string;
  skipTags?: string;
  forks: number;
  extraVars: string[];
  json: boolean;
  verbose: number;
  tui: boolean;
  acceptNewHostKeys?: boolean;
  timeout?: number;
  lockTimeout: number;
  vaultPasswordFile?: string;
  vaultId?: string[];
  askBecomePass?: boolean;
  typecheck: boolean;
}

/** watch's options: the loading options it passes on to the check (`WatchRunFlags`), and its own. */
interface WatchFlags extends Omit<WatchRunFlags, 'check' | 'diff' | 'json' | 'verbose' | 'tui'> {
  every: number;
  once?: boolean;
  listen?: {host: string | undefined; port: number};
  textfile?: string;
  json?: boolean;
  state?: string;
}

interface WatchDeps {
  run(playbook: string, flags: WatchRunFlags, hooks: WatchHooks): Promise<ExitCodeValue>;
  exitCodeOf(summary: RunSummary): ExitCodeValue;
  readonly secrets: Secrets;
}

/** Serve GET /metrics (only) from `text()`; resolves once listening, with the address it listens on. */
async function serveMetrics(at: {host: string | undefined; port: number}, text: () => Promise<string>, contentType: string): Promise<{server: Server; url: string}> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, {'Content-Type': 'text/plain; charset=utf-8'}).end('not found: provision watch serves /metrics only\n');
      return;
    }
    text().then(
      (body) => res.writeHead(200, {'Content-Type': contentType}).end(req.method === 'HEAD' ? undefined : body),
      (e: unknown) => res.writeHead(500, {'Content-Type': 'text/plain; charset=utf-8'}).end(`${e instanceof Error ? e.message : String(e)}\n`),
    );
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(badOption(`--listen: cannot listen on ${at.host ?? '*'}:${at.port}: ${e.code ?? e.message}`)));
    server.listen(at.port, at.host, () => resolveListen());
  });
  const a = server.address();
  const host = typeof a === 'object' && a ? (a.family === 'IPv6' ? `[${a.address}]` : a.address) : String(a);
  return {server, url: `http://${host}:${typeof a === 'object' && a ? a.port : at.port}/metrics`};
}

/** Wait `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    if (signal.aborted) return done();
    const end = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', end);
      done();
    };
    const timer = setTimeout(end, ms);
    signal.addEventListener('abort', end, {once: true});
  });
}

async function watch(playbookArg: string, flags: WatchFlags, deps: WatchDeps): Promise<ExitCodeValue> {
  const statePath = resolve(flags.state ?? DEFAULT_STATE_FILE);
  const playbookPath = findPlaybook(playbookArg);
  let state = loadState(statePath, playbookPath);
  const write = (line: string): void => void process.stdout.write(`${line}\n`);
  const {mask, maskValue} = deps.secrets;
  const json = (o: Record<string, unknown>): void => write(JSON.stringify(maskValue(o)));
  // prom-client only when metrics are asked for.
  const metrics = flags.listen || flags.textfile ? await import('./metrics.ts') : undefined;
  let current: ReturnType<typeof observer> | undefined;

  const hooks: WatchHooks = {
    emit: (e) => current?.emit(e),
    async drive(check, signal) {
      const served = metrics && flags.listen ? await serveMetrics(flags.listen, () => metrics.metricsText(state), metrics.metricsContentType) : undefined;
      if (served) process.stderr.write(`provision watch: serving ${served.url}\n`);
      try {
        for (;;) {
          const t0 = Date.now();
          // --once tries every host (as run --check does); a schedule leaves out those backed off.
          const skip = flags.once ? new Set<string>() : backedOff(state);
          current = observer(mask, new Date(t0));
          let summary: RunSummary;
          try {
            summary = await check(skip);
          } catch (e) {
            current = undefined;
            if (flags.once) throw e;
            process.stderr.write(`provision watch: the check failed: ${mask(e instanceof Error ? e.message : String(e))}\n`);
            await sleep(Math.max(0, t0 + flags.every - Date.now()), signal);
            if (signal.aborted) return ExitCode.ok;
            continue;
          }
          const obs = current.done();
          current = undefined;
          const next = applyCheck(state, obs, skip);
          state = next.state;
          writeAtomic(statePath, stateJson(state));
          if (metrics && flags.textfile) writeAtomic(join(resolve(flags.textfile), 'provision_drift.prom'), await metrics.metricsText(state));
          const line = checkLine(state, obs, skip);
          if (flags.json) {
            for (const c of next.changes) json(changeLine(c));
            json(line);
          } else {
            const stamp = new Date(t0).toISOString();
            for (const c of next.changes) write(`${stamp} ${changeText(c)}`);
            const off = skip.size > 0 ? `, ${skip.size} backed off (${[...skip].sort().join(', ')})` : '';
            write(`${stamp} check: ${String(line.drifted_tasks)} drifted task(s) on ${String(line.drifted_hosts)} host(s), ${String(line.unreachable_hosts)} unreachable${off} (${(obs.durationMs / 1000).toFixed(1)} s)`);
          }
          if (flags.once) return deps.exitCodeOf(summary);
          if (signal.aborted) return ExitCode.ok;
          await sleep(Math.max(0, t0 + flags.every - Date.now()), signal);
          if (signal.aborted) return ExitCode.ok;
        }
      } finally {
        current = undefined;
        if (served) await new Promise((r) => served.server.close(r));
      }
    },
  };
  return deps.run(playbookArg, {
    inventory: flags.inventory, check: true, diff: false, limit: flags.limit, tags: flags.tags, skipTags: flags.skipTags, forks: flags.forks,
    extraVars: flags.extraVars, json: true, verbose: 0, tui: false, acceptNewHostKeys: flags.acceptNewHostKeys, timeout: flags.timeout,
    lockTimeout: flags.lockTimeout, vaultPasswordFile: flags.vaultPasswordFile, vaultId: flags.vaultId, askBecomePass: flags.askBecomePass, typecheck: flags.typecheck,
  }, hooks);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function positive(name: string, min: number): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || (min >= 1 && !Number.isInteger(n))) throw badOption(`${name}: expected ${min >= 1 ? 'a positive whole number' : 'seconds (0 or more)'}, got '${v}'`);
    return n;
  };
}

/** `provision watch`: registered by src/cli/main.ts, which hands it its `run`. */
export function registerWatch(program: Command, deps: WatchDeps): void {
  program
    .command('watch')
    .description('check a playbook (as run --check) on a schedule or once, never applying anything; report drift as Prometheus metrics, a node_exporter textfile, JSON lines and a state file for run --only-drifted')
    .argument('<playbook>', 'playbook name or path')
    .option('-i, --inventory <source>', 'inventory file, directory or executable script (repeatable; default as for run)', collect)
    .option('-l, --limit <pattern>', 'only these hosts (Ansible pattern, or @retry-file)')
    .option('-t, --tags <tags>', 'only tasks with these tags (comma-separated)')
    .option('--skip-tags <tags>', 'skip tasks with these tags (comma-separated)')
    .addOption(new Option('--every <duration>', 'time between checks: 30s, 5m, 1h').default(parseDuration('5m'), '5m').argParser(parseDuration))
    .option('--once', "check once and exit (the exit code run --check would give)")
    .addOption(new Option('--listen <addr:port>', 'serve Prometheus metrics at http://ADDR:PORT/metrics (port 0: a free one, printed on stderr)').argParser(parseListen))
    .option('--textfile <dir>', 'after each check, write DIR/provision_drift.prom for node_exporter (atomically)')
    .option('--json', 'one JSON line per change of state and per check on stdout (docs/watch.md)')
    .option('--state <file>', `the last result, written after each check (read by run --only-drifted) (default: ${DEFAULT_STATE_FILE})`)
    .addOption(new Option('-f, --forks <n>', 'hosts in parallel').default(100).argParser(positive('-f/--forks', 1)))
    .option('-e, --extra-vars <vars>', 'key=value, JSON, or @file.yml (repeatable)', collect, [])
    .option('--accept-new-host-keys', 'trust and record host keys not yet in known_hosts')
    .addOption(new Option('-T, --timeout <seconds>', 'connect timeout').argParser(positive('--timeout', 1e-9)))
    .addOption(new Option('--lock-timeout <seconds>', "wait this long for another run holding a host's lock, then fail that host").default(30).argParser(positive('--lock-timeout', 0)))
    .option('--vault-password-file <file>', 'read the vault passphrase from this file')
    .option('--vault-id <label@source>', 'a vault passphrase: label@file, label@script or label@prompt (repeatable)', collect)
    .option('-K, --ask-become-pass', 'ask for the become password (once, at start)')
    .option('--no-typecheck', 'skip the type check of the playbook')
    .action(async (pb: string, flags: WatchFlags) => {
      process.exitCode = await watch(pb, flags, deps);
    });
}
