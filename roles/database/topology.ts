/**
 * Who is the database primary and who are the replicas, for every role that cares (database, app,
 * the switchover and failover playbooks), and the pure GTID logic those playbooks decide with.
 *
 * The roles are decided from variables when they are set, else from the inventory groups:
 * - `db_primary_host_name`: the primary's inventory name;
 * - `db_replica_names`: the replicas' inventory names (a list, or a comma/space separated string);
 *   unset while `db_primary_host_name` is set: every other host of the primary and replica groups.
 * The playbooks `db-switchover` and `db-failover` write both into `group_vars/all/db_roles.yml`
 * beside the inventory (docs/operations.md), so the groups of the inventory (a contract in the lab)
 * never change while the roles move.
 */
import type {TaskContext} from '../../src/index.ts';

/** The database hosts by role: inventory names. */
export interface DbTopology {
  readonly primary: string;
  readonly replicas: readonly string[];
}

/** What the topology is computed from: the variables and the groups (a TaskContext is one). */
export interface TopologyInput {
  readonly vars: Readonly<Record<string, unknown>>;
  readonly groups: Readonly<Record<string, readonly string[]>>;
}

/** A list variable given as a list or a comma/space separated string. */
export function nameList(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String).filter((s) => s !== '');
  return String(v).split(/[\s,]+/).filter((s) => s !== '');
}

const set = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);

/** The groups the roles fall back on: `mysql_primary_group` / `mysql_replica_group`, else `db_primary` / `db_replicas`. */
function groupNames(input: TopologyInput): {primary: string; replicas: string} {
  const g = (k: string, d: string): string => (set(input.vars[k]) ? String(input.vars[k]) : d);
  return {primary: g('mysql_primary_group', 'db_primary'), replicas: g('mysql_replica_group', 'db_replicas')};
}

/** Every database host the topology may name: the hosts of the primary and replica groups, in inventory order. */
export function databaseHosts(input: TopologyInput): string[] {
  const g = groupNames(input);
  return [...new Set([...(input.groups[g.primary] ?? []), ...(input.groups[g.replicas] ?? [])])];
}

/**
 * The primary and the replicas: `db_primary_host_name` / `db_replica_names` when set, else the groups.
 * Throws (one line) when the variables name a host that is not a database host, or name the primary
 * a replica too.
 */
export function dbTopology(input: TopologyInput): DbTopology {
  const g = groupNames(input);
  const all = databaseHosts(input);
  const named = input.vars.db_primary_host_name;
  const primary = set(named) ? String(named) : (input.groups[g.primary] ?? [])[0];
  if (primary === undefined) throw new Error(`group ${g.primary} has no host: put the primary there, or set db_primary_host_name`);
  if (set(named) && !all.includes(primary)) throw new Error(`db_primary_host_name '${primary}' is not a database host (groups ${g.primary}, ${g.replicas}: ${all.join(', ') || 'none'})`);
  const replicas = set(input.vars.db_replica_names)
    ? nameList(input.vars.db_replica_names)
    : set(named) ? all.filter((h) => h !== primary) : [...(input.groups[g.replicas] ?? [])].filter((h) => h !== primary);
  for (const r of replicas) {
    if (!all.includes(r)) throw new Error(`db_replica_names: '${r}' is not a database host (${all.join(', ')})`);
    if (r === primary) throw new Error(`db_replica_names names the primary ${primary}`);
  }
  return {primary, replicas};
}

export const isPrimaryHost = (ctx: TaskContext): boolean => dbTopology(ctx).primary === ctx.host;
export const isReplicaHost = (ctx: TaskContext): boolean => dbTopology(ctx).replicas.includes(ctx.host);

/** The address a host is reached at (ansible_host, else its name). */
export function addressOf(ctx: Pick<TaskContext, 'hostvars'>, host: string): string {
  const h = ctx.hostvars(host).ansible_host;
  return typeof h === 'string' && h !== '' ? h : host;
}

/** The contents of `db_roles.yml`: the roles the playbooks recorded, for the user to commit. */
export function dbRolesFile(t: DbTopology, why: string): string {
  return [
    '# Written by provision (playbooks db-switchover / db-failover): which database host is the primary.',
    '# The database and app roles read these instead of the groups db_primary / db_replicas. Commit it.',
    `# ${why.replace(/\n/g, ' ')}`,
    `db_primary_host_name: ${t.primary}`,
    `db_replica_names: [${t.replicas.join(', ')}]`,
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- GTID positions (MariaDB)

/** One GTID: domain-server-sequence. */
export interface Gtid {
  readonly domain: number;
  readonly server: number;
  readonly seq: number;
}

/**
 * A MariaDB GTID position (`@@gtid_current_pos`, `@@gtid_slave_pos`, `Gtid_IO_Pos`): a comma-separated
 * list of `domain-server-seq`, at most one per domain that matters (the highest sequence is kept when a
 * domain repeats). Empty: nothing. Throws on anything else.
 */
export function parseGtidPos(s: string): ReadonlyMap<number, Gtid> {
  const m = new Map<number, Gtid>();
  for (const part of s.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const r = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!r) throw new Error(`not a GTID position: '${s}'`);
    const g = {domain: Number(r[1]), server: Number(r[2]), seq: Number(r[3])};
    const had = m.get(g.domain);
    if (!had || had.seq < g.seq) m.set(g.domain, g);
  }
  return m;
}

/**
 * `a` compared with `b`, domain by domain (a missing domain counts as sequence 0): `equal`, `ahead`
 * (a has everything b has and more), `behind`, or `diverged` (each has something the other lacks).
 * Positions are compared by sequence number: in one replication chain (gtid_strict_mode), a higher
 * sequence in a domain comes after a lower one.
 */
export function compareGtid(a: string, b: string): 'equal' | 'ahead' | 'behind' | 'diverged' {
  const pa = parseGtidPos(a);
  const pb = parseGtidPos(b);
  let more = false;
  let less = false;
  for (const d of new Set([...pa.keys(), ...pb.keys()])) {
    const x = pa.get(d)?.seq ?? 0;
    const y = pb.get(d)?.seq ?? 0;
    if (x > y) more = true;
    if (x < y) less = true;
  }
  if (more && less) return 'diverged';
  return more ? 'ahead' : less ? 'behind' : 'equal';
}

/** A replica that may be promoted, and how far it got. */
export interface Candidate {
  readonly host: string;
  /** Its `@@gtid_current_pos` once its relay log is applied. */
  readonly pos: string;
}

/** Whether `wanted` may be promoted among `candidates` (every reachable replica, `wanted` included). */
export type PromotionVerdict =
  | {readonly kind: 'ok'; readonly reason: string}
  | {readonly kind: 'refused'; readonly reason: string; readonly best: readonly string[]};

/**
 * The replicas no other one is ahead of (the most advanced: several when they are equal; none is
 * ahead of another when they diverged).
 */
export function mostAdvanced(candidates: readonly Candidate[]): string[] {
  return candidates
    .filter((c) => !candidates.some((o) => o !== c && compareGtid(o.pos, c.pos) === 'ahead'))
    .map((c) => c.host);
}

/**
 * Promote `wanted` only if no reachable replica is ahead of it (or diverged from it): promoting a
 * replica that is behind another loses the transactions only the other has. `force` overrides, and
 * the verdict says what is lost.
 */
export function promotionVerdict(wanted: string, candidates: readonly Candidate[], force = false): PromotionVerdict {
  const me = candidates.find((c) => c.host === wanted);
  if (!me) return {kind: 'refused', reason: `${wanted} is not among the reachable replicas (${candidates.map((c) => c.host).join(', ') || 'none'})`, best: mostAdvanced(candidates)};
  const problems = candidates
    .filter((c) => c !== me)
    .map((c) => ({c, cmp: compareGtid(me.pos, c.pos)}))
    .filter(({cmp}) => cmp === 'behind' || cmp === 'diverged')
    .map(({c, cmp}) => `${c.host} (${c.pos || 'empty'}) is ${cmp === 'behind' ? 'ahead of' : 'diverged from'} ${wanted} (${me.pos || 'empty'})`);
  const best = mostAdvanced(candidates);
  if (problems.length === 0) {
    const others = candidates.filter((c) => c !== me);
    return {kind: 'ok', reason: others.length === 0 ? `${wanted} at ${me.pos || 'empty'} (the only reachable replica)` : `${wanted} at ${me.pos || 'empty'}: no reachable replica is ahead`};
  }
  if (force) return {kind: 'ok', reason: `forced: ${problems.join('; ')}: their extra transactions will be lost or must be re-seeded`};
  return {kind: 'refused', reason: `${problems.join('; ')}: promote ${best.join(' or ') || 'by hand'}, or -e force=true to lose what ${wanted} lacks`, best};
}

/** A value of `SHOW SLAVE STATUS\G` output (`Key: value`), else ''. */
export function slaveStatusField(out: string, key: string): string {
  const m = new RegExp(`^\\s*${key}:[ \\t]*(.*)$`, 'm').exec(out);
  return m?.[1]?.trim() ?? '';
}
