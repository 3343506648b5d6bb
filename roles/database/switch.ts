/**
 * The pieces of the `db-switchover` and `db-failover` playbooks (docs/operations.md): the checks
 * before anything is touched, the SQL each step sends (MariaDB), and where the new roles are
 * recorded. The playbooks put them in order; the pure decisions (GTID comparison, which replica may
 * be promoted) are in topology.ts.
 */
import {existsSync, statSync} from 'node:fs';
import {dirname, join, resolve} from 'node:path';
import {copy, file, mysqlReplica, Secret, shell, type Task, type TaskContext, type TaskOptions} from '../../src/index.ts';
import {addressOf, databaseHosts, dbRolesFile, dbTopology, parseGtidPos, type DbTopology} from './topology.ts';

export const mysql = 'mysql --batch --skip-column-names';

/** The variables the playbooks set on every host of their first play (setFact), read by the later plays. */
export interface SwitchFacts {
  /** The primary before the run (from db_roles.yml or the groups). */
  readonly db_switch_from: string;
  /** `new_primary`. */
  readonly db_switch_to: string;
  /** false when `new_primary` is the primary already: the run only makes sure the app and the record agree. */
  readonly db_switch_needed: boolean;
  /** The new roles (topology.ts reads them: database and app roles, the app's environment). */
  readonly db_primary_host_name: string;
  readonly db_replica_names: readonly string[];
}

const flag = (v: unknown): boolean => v === true || v === 'true' || v === 'yes' || v === '1' || v === 1;
export const forced = (ctx: TaskContext): boolean => flag(ctx.vars.force);

/** What is wrong with the run's variables, in one line (undefined: nothing): checked before any host is touched. */
export function preflightProblem(ctx: TaskContext, playbook: string): string | undefined {
  const wanted = ctx.vars.new_primary;
  const dbs = databaseHosts(ctx);
  if (wanted === undefined || wanted === null || wanted === '') return `${playbook}: give the new primary: -e new_primary=NAME (one of ${dbs.join(', ') || 'no database host'})`;
  if (!dbs.includes(String(wanted))) return `${playbook}: new_primary '${String(wanted)}' is not a database host (${dbs.join(', ') || 'none'}: groups db_primary, db_replicas)`;
  if (ctx.vars.mysql_flavor === 'mysql') return `${playbook}: MariaDB only (mysql_flavor is mysql)`;
  for (const k of ['db_primary_host', 'db_replica_hosts', 'mysql_primary_host']) {
    const v = ctx.vars[k];
    if (v !== undefined && v !== null && v !== '') return `${playbook}: ${k} is set (${String(v)}): it would keep pointing at the old servers; remove it, the roles follow db_primary_host_name`;
  }
  try {
    dbTopology(ctx);
  } catch (e) {
    return `${playbook}: ${(e as Error).message}`;
  }
  return undefined;
}

/** The facts of a switch to `new_primary`, from the roles as they are now. */
export function switchFacts(ctx: TaskContext): SwitchFacts {
  const before = dbTopology(ctx);
  const to = String(ctx.vars.new_primary);
  const all = [...new Set([before.primary, ...before.replicas, ...databaseHosts(ctx)])];
  return {
    db_switch_from: before.primary,
    db_switch_to: to,
    db_switch_needed: before.primary !== to,
    db_primary_host_name: to,
    db_replica_names: all.filter((h) => h !== to),
  };
}

export const from = (ctx: TaskContext): string => String(ctx.vars.db_switch_from);
export const to = (ctx: TaskContext): string => String(ctx.vars.db_switch_to);
export const needed = (ctx: TaskContext): boolean => ctx.vars.db_switch_needed === true;
export const topologyAfter = (ctx: TaskContext): DbTopology => ({primary: to(ctx), replicas: (ctx.vars.db_replica_names as readonly string[] | undefined) ?? []});

/** The first web server: re-pointed first, alone, while the others still serve. */
export const firstWeb = (ctx: TaskContext): string | undefined => (ctx.groups.webservers ?? [])[0];

/** A GTID position from a command's output, checked before it goes into SQL. */
export function gtidArg(out: string): string {
  const pos = out.trim().split('\n').at(-1)?.trim() ?? '';
  parseGtidPos(pos); // throws on anything but domain-server-seq lists
  return pos;
}

// ---------------------------------------------------------------- where the new roles are recorded

/**
 * `group_vars/all/db_roles.yml` beside the inventory the run reads: `db_roles_file` when set, else
 * the folder of the first `-i` (or $PROVISION_INVENTORY, else `inventory/`). The engine gives tasks
 * no `inventory_dir` yet, so the command line is read here.
 */
export function dbRolesPath(ctx: TaskContext, argv: readonly string[] = process.argv): string {
  const v = ctx.vars.db_roles_file;
  if (typeof v === 'string' && v !== '') return resolve(v);
  let inv: string | undefined;
  for (let i = 0; i < argv.length && inv === undefined; i++) {
    const a = argv[i] ?? '';
    if (a === '-i' || a === '--inventory') inv = argv[i + 1];
    else if (a.startsWith('--inventory=')) inv = a.slice('--inventory='.length);
    else if (/^-i./.test(a)) inv = a.slice(2);
  }
  inv ??= process.env.PROVISION_INVENTORY;
  const dir = inv === undefined ? resolve('inventory') : existsSync(inv) && statSync(inv).isDirectory() ? resolve(inv) : dirname(resolve(inv));
  return join(dir, 'group_vars', 'all', 'db_roles.yml');
}

/** The record of the new roles, written on the controller (run once), its folder made when missing. */
export function recordRoles(why: (ctx: TaskContext) => string, options: TaskOptions = {}): Task[] {
  const on = {...options, runOnce: true, delegateTo: 'localhost', become: false} as const;
  return [
    file((ctx) => ({path: dirname(dbRolesPath(ctx)), state: 'directory'}), {name: 'group_vars/all beside the inventory', ...on}),
    copy((ctx) => ({dest: dbRolesPath(ctx), content: dbRolesFile(topologyAfter(ctx), why(ctx)), mode: '0644'}), {
      name: 'record the new roles (group_vars/all/db_roles.yml beside the inventory: commit it)', ...on,
    }),
  ];
}

// ---------------------------------------------------------------- SQL steps (MariaDB)

/** Shell that fails, with `msg` on stderr. */
const die = (msg: string): string => `{ echo ${JSON.stringify(msg)} >&2; exit 1; }`;

/** On the future primary: it replicates from the current one, both threads running, and the old primary may connect to it as a replica. */
export function replicationHealthyScript(primaryAddr: string, oldAddr: string, replUser: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(replUser)) throw new Error(`mysql_replication_user '${replUser}': letters, digits and _ only`);
  return [
    `st=$(mysql -e 'SHOW SLAVE STATUS\\G')`,
    `f() { printf '%s\\n' "$st" | sed -n -E "s/^ *$1: ?(.*)$/\\1/p"; }`,
    `[ -n "$st" ] || ${die('not a replica: nothing to switch over to (SHOW SLAVE STATUS is empty)')}`,
    `[ "$(f Master_Host)" = ${JSON.stringify(primaryAddr)} ] || { echo "replicates from $(f Master_Host), not from ${primaryAddr}" >&2; exit 1; }`,
    `[ "$(f Slave_IO_Running)" = Yes ] && [ "$(f Slave_SQL_Running)" = Yes ] || { echo "replication is not running (IO $(f Slave_IO_Running), SQL $(f Slave_SQL_Running): $(f Last_IO_Error) $(f Last_SQL_Error))" >&2; exit 1; }`,
    `n=$(${mysql} -e "SELECT COUNT(*) FROM mysql.user WHERE User = '${replUser}' AND Host = '${oldAddr.replace(/'/g, '')}'")`,
    `[ "$n" -ge 1 ] || ${die(`the replication account ${replUser}@${oldAddr} is missing: the old primary could not replicate from here; run provision run site first`)}`,
    `echo "replicating from ${primaryAddr}, $(f Seconds_Behind_Master) s behind, at $(f Gtid_IO_Pos)"`,
  ].join('\n');
}

/** From one database host: can it open `addr:port`? (The firewall must let the old primary reach the new one.) */
export function reachScript(addr: string, port: number, what: string): string {
  return `timeout 3 bash -c '</dev/tcp/${addr}/${port}' 2>/dev/null && echo reachable || ${die(`${what}: ${addr}:${port} is not reachable from here (firewall? run provision run site first)`)}`;
}

/** On the old primary: no more writes (the app's account has no privilege to bypass read_only), then its last position. */
export const stopWritesScript = `${mysql} -e 'SET GLOBAL read_only = ON; SELECT @@global.gtid_binlog_pos'`;

/** On the future primary: wait (at most `timeoutS`) until it has applied everything up to `pos`. */
export function catchUpScript(pos: string, timeoutS: number): string {
  return [
    `r=$(${mysql} -e "SELECT MASTER_GTID_WAIT('${pos}', ${Math.max(1, Math.floor(timeoutS))})")`,
    `[ "$r" = 0 ] || { echo "not caught up with ${pos || '(empty)'} within ${timeoutS} s (MASTER_GTID_WAIT: $r); now at $(${mysql} -e 'SELECT @@global.gtid_slave_pos')" >&2; exit 1; }`,
    `echo "caught up: $(${mysql} -e 'SELECT @@global.gtid_current_pos')"`,
  ].join('\n');
}

/** On the new primary: no longer a replica, and writable. */
export const promoteScript = `${mysql} -e 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF'`;
/** Skip `promoteScript` when it is done: not a replica, writable. */
export const promotedCheck = `test -z "$(${mysql} -e 'SHOW SLAVE STATUS')" && test "$(${mysql} -e 'SELECT @@global.read_only')" = 0`;

/** On the old primary: replicate from after its own last transaction (it never replicated, or long ago). */
export const seedSlavePosScript = `${mysql} -e 'SET GLOBAL read_only = ON; SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos'`;
export const replicaConfigured = `test -n "$(${mysql} -e 'SHOW SLAVE STATUS')"`;

/** Back to writable (a switchover stopped before the promotion). */
export const writableAgainScript = `${mysql} -e 'SET GLOBAL read_only = OFF'`;

/**
 * On a replica that may be promoted (failover): apply what its relay log holds (up to 30 s), then say
 * how far it got and whether the old primary still answers on the database port.
 */
export function replicaPositionScript(oldAddr: string, port: number): string {
  return [
    `st=$(mysql -e 'SHOW SLAVE STATUS\\G' 2>/dev/null)`,
    `io=$(printf '%s\\n' "$st" | sed -n -E 's/^ *Gtid_IO_Pos: ?(.*)$/\\1/p')`,
    `if [ -n "$io" ] && printf '%s' "$io" | grep -Eq '^[0-9,-]+$'; then ${mysql} -e "SELECT MASTER_GTID_WAIT('$io', 30)" >/dev/null; fi`,
    `echo "pos=$(${mysql} -e 'SELECT @@global.gtid_current_pos')"`,
    `echo "slave_pos=$(${mysql} -e 'SELECT @@global.gtid_slave_pos')"`,
    `echo "read_only=$(${mysql} -e 'SELECT @@global.read_only')"`,
    `echo "replica=$([ -n "$st" ] && echo yes || echo no)"`,
    `echo "old_primary_answers=$(timeout 3 bash -c '</dev/tcp/${oldAddr}/${port}' 2>/dev/null && echo yes || echo no)"`,
  ].join('\n');
}

/** `key=value` lines of replicaPositionScript's output. */
export function parseKv(out: string): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of out.split('\n')) {
    const m = /^([a-z_]+)=(.*)$/.exec(l.trim());
    if (m) o[m[1]!] = m[2]!.trim();
  }
  return o;
}

function replicationPassword(ctx: TaskContext): Secret | string {
  const v = ctx.vars.mysql_replication_password;
  if (v instanceof Secret) return v;
  if (typeof v !== 'string' || v === '') throw new Error('variable mysql_replication_password is not set (the vault)');
  return v;
}

/** Replication from the new primary, as the database role sets it up (same arguments: the site sees no change after). */
export function replicateFromNewPrimary(options: TaskOptions): Task {
  return mysqlReplica((ctx) => ({
    primaryHost: addressOf(ctx, to(ctx)),
    primaryPort: Number(ctx.vars.mysql_port ?? 3306),
    user: String(ctx.vars.mysql_replication_user ?? 'repl'),
    password: replicationPassword(ctx),
    connectRetry: Number(ctx.vars.mysql_connect_retry ?? 5),
    flavor: 'mariadb',
  }), options);
}

/** A shell task of the playbooks: a script computed per host. */
export const sql = (script: (ctx: TaskContext) => string, options: TaskOptions): Task => shell((ctx) => ({script: script(ctx)}), options);
