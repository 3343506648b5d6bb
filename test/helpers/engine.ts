/** Run playbooks against fake transports (the local shell), collecting events: fast engine tests. */
import type {RunEvent} from '../../src/core/events.ts';
import {runPlaybook, type InventoryView, type RunOptions, type RunSummary} from '../../src/core/engine.ts';
import type {Playbook, Role, Vars} from '../../src/core/types.ts';
import {FakeTransport, type Handler} from '../../src/transport/fake.ts';
import {Secrets} from '../../src/core/secret.ts';
import {LocalTransport} from '../../src/transport/local.ts';
import {renderTemplate, readRoleFileContent} from '../../src/templates/render.ts';

export function fakeInventory(groups: Record<string, string[]>, hostVars: Record<string, Vars> = {}): InventoryView & {select(p: string): string[]} {
  const hostNames = [...new Set(Object.values(groups).flat())];
  const all = new Map<string, unknown>([['all', {}], ...Object.keys(groups).map((g): [string, unknown] => [g, {}])]);
  const groupHosts = (g: string): string[] => (g === 'all' ? hostNames : groups[g] ?? []);
  return {
    source: '/fake/inventory.yml',
    hostNames,
    groups: all,
    hostVars: (h) => ({...(hostVars[h] ?? {})}),
    groupsOf: (h) => Object.entries(groups).filter(([, members]) => members.includes(h)).map(([g]) => g).sort(),
    groupHosts,
    select: (p) => p.split(':').flatMap((x) => (hostNames.includes(x) ? [x] : groupHosts(x))),
  };
}

export interface FakeRun {
  events: RunEvent[];
  summary: RunSummary;
  transports: Map<string, FakeTransport>;
  /** The run's secrets, as the engine left them. */
  secrets: Secrets;
  results(host?: string): Extract<RunEvent, {type: 'result'}>[];
}

/**
 * The fake hosts all live on this machine: unless a test sets them, no run lock and no audit log (a
 * test of those names a lock file and an audit log of its own). The control session still starts.
 */
const LOCAL_SAFE: Vars = {provision_lock: false, provision_audit_log: false};

export async function runFake(
  playbook: Playbook,
  opts: Partial<RunOptions> & {groups?: Record<string, string[]>; hostVars?: Record<string, Vars>; handler?: Handler; roles?: Record<string, {role: Role; dir: string}>; unreachable?: string[]; signal?: AbortSignal; playDirs?: string[]} = {},
): Promise<FakeRun> {
  const groups = opts.groups ?? {all_hosts: ['h1']};
  const hostVars = Object.fromEntries([...new Set(Object.values(groups).flat())].map((h) => [h, {...LOCAL_SAFE, ...(opts.hostVars?.[h] ?? {})}]));
  const inv = fakeInventory(groups, hostVars);
  const events: RunEvent[] = [];
  const transports = new Map<string, FakeTransport>();
  const secrets = new Secrets();
  const summary = await runPlaybook(playbook, {check: false, diff: true, forks: 10, ...opts}, {
    inventory: inv,
    select: inv.select,
    connect: async (host) => {
      if (opts.unreachable?.includes(host)) {
        const {UnreachableError} = await import('../../src/transport/types.ts');
        throw new UnreachableError(host, `${host}: connect ECONNREFUSED`);
      }
      const t = new FakeTransport(host, opts.handler);
      transports.set(host, t);
      return t;
    },
    loadRole: async (name) => {
      const r = opts.roles?.[name];
      if (!r) throw new Error(`no role ${name}`);
      return r;
    },
    render: renderTemplate,
    readFile: readRoleFileContent,
    emit: (e) => events.push(e),
    local: () => new LocalTransport(),
    secrets,
    signal: opts.signal,
    playDirs: opts.playDirs,
  });
  return {
    events, summary, transports, secrets,
    results: (host) => events.filter((e): e is Extract<RunEvent, {type: 'result'}> => e.type === 'result' && (host === undefined || e.host === host)),
  };
}
