/**
 * The database tier: MariaDB on Debian (MySQL 8 on Ubuntu, chosen from facts), binary log and GTID
 * replication from the primary (group `mysql_primary_group`) to the replicas (`mysql_replica_group`),
 * or, when set, from `db_primary_host_name` to `db_replica_names` (recorded by the db-switchover and
 * db-failover playbooks in group_vars/all/db_roles.yml; topology.ts).
 *
 * Fencing: every server boots read-only (`mysql_fence_on_boot`), and the run makes the primary
 * writable (`-t db_writable` does only that), after checking that it replicates from nobody and, when
 * it finds it read-only, that no named replica is writable. An old primary that comes back after a
 * failover stays read-only; `provision run site` makes it a replica, replicating from after its own
 * last transaction.
 *
 * Run it on the primary first, then on the replicas (two plays): a replica starts from an empty server
 * and fetches the primary's whole binary log, which holds the database, the table and the accounts —
 * so the server config (log_bin, server_id, GTID) is written *before* the package is installed, and
 * the first start of the server already logs everything. Accounts are created on the primary only and
 * reach the replicas by replication (the app reads from the replicas with the same account).
 * Re-running never resets a replica: replication is configured only when it is not, started only
 * when it is stopped.
 *
 * Secrets (vars, from the vault): mysql_replication_password, mysql_app_password,
 * mysql_exporter_password. Only their hashes are sent to the primary; the replication password
 * reaches the replica on the client's stdin. root stays on unix_socket (Debian's default): no root
 * password exists, so none can leak, and root cannot log in over the network.
 */
import {apt, command, defineRole, file, flushHandlers, mysqlDatabase, mysqlReplica, mysqlUser, Secret, service, shell, template} from '../../src/index.ts';
import type {TaskContext} from '../../src/index.ts';
import {addressOf, databaseHosts, dbTopology, isPrimaryHost, isReplicaHost} from './topology.ts';

type Flavor = 'mariadb' | 'mysql';

/** MariaDB on Debian (and anything not Ubuntu), MySQL 8 on Ubuntu; `mysql_flavor` overrides. */
function flavor(ctx: TaskContext): Flavor {
  const v = ctx.vars.mysql_flavor;
  if (v === 'mariadb' || v === 'mysql') return v;
  return ctx.facts.distribution === 'ubuntu' ? 'mysql' : 'mariadb';
}

const layout = {
  mariadb: {packages: ['mariadb-server', 'mariadb-client'], service: 'mariadb', confDir: '/etc/mysql/mariadb.conf.d', daemon: '/usr/sbin/mariadbd'},
  mysql: {packages: ['mysql-server', 'mysql-client'], service: 'mysql', confDir: '/etc/mysql/mysql.conf.d', daemon: '/usr/sbin/mysqld'},
} as const;

const str = (ctx: TaskContext, k: string): string => String(ctx.vars[k]);

/** A secret variable, as the module wants it; a clear error when it is missing. */
function password(ctx: TaskContext, k: string): Secret | string {
  const v = ctx.vars[k];
  if (v instanceof Secret) return v;
  if (typeof v !== 'string' || v === '') throw new Error(`variable ${k} is not set (put it in the vault, or -e @.lab/test-secrets.yml in the lab)`);
  return v;
}

/** An explicit list variable, else the addresses of a group's hosts. */
function addresses(ctx: TaskContext, listVar: string, groupVar: string): string[] {
  const explicit = ctx.vars[listVar];
  if (Array.isArray(explicit)) return explicit.map(String);
  return (ctx.groups[str(ctx, groupVar)] ?? []).map((h) => addressOf(ctx, h));
}

/**
 * Primary or replica: `db_primary_host_name` / `db_replica_names` when set (the switchover and
 * failover playbooks record them in group_vars/all/db_roles.yml), else the groups (topology.ts).
 */
const isPrimary = isPrimaryHost;
const isReplica = (ctx: TaskContext): boolean => !isPrimary(ctx) && isReplicaHost(ctx);

/**
 * Every server boots read-only (`mysql_fence_on_boot`, default true): only a run of provision makes
 * the primary writable, so an old primary that comes back after a failover cannot take writes.
 */
const fenced = (ctx: TaskContext): boolean => ctx.vars.mysql_fence_on_boot !== false && ctx.vars.mysql_fence_on_boot !== 'false';

/** The replication account's hosts: `mysql_replication_hosts`, else every database host (any may become a replica). */
function replicationHosts(ctx: TaskContext): string[] {
  const explicit = ctx.vars.mysql_replication_hosts;
  if (Array.isArray(explicit)) return explicit.map(String);
  return databaseHosts(ctx).map((h) => addressOf(ctx, h));
}

/** `mysql_server_id`, else the host's IPv4 address as a 32-bit number: unique wherever addresses are. */
export function serverId(ctx: TaskContext): number {
  const v = ctx.vars.mysql_server_id;
  if (v !== undefined && v !== null && v !== '') {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 4294967295) throw new Error(`mysql_server_id must be an integer in 1..4294967295, not '${String(v)}'`);
    return n;
  }
  const addr = [ctx.vars.ansible_host, ctx.facts.defaultIpv4?.address].find((a): a is string => typeof a === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (!addr) throw new Error('set mysql_server_id: no IPv4 address to derive it from');
  return addr.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

/** The primary's address for the replicas: `mysql_primary_host`, else the topology's primary. */
function primaryHost(ctx: TaskContext): string {
  const v = ctx.vars.mysql_primary_host;
  if (typeof v === 'string' && v !== '') return v;
  return addressOf(ctx, dbTopology(ctx).primary);
}

const mysqlNoop = `mysql --batch --skip-column-names`;

/** The primary's inventory name (the topology's), for tasks run on it. */
const primaryName = (ctx: TaskContext): string => dbTopology(ctx).primary;

/**
 * On a replica (delegated from the primary): print its read_only, or why there is none; fail when it
 * is writable: it may be a primary promoted by hand or by db-failover while the recorded roles say
 * otherwise, and making a second server writable would split the data.
 */
function peerReadOnlyScript(peer: string, primary: string): string {
  return [
    `command -v mysql >/dev/null 2>&1 || { echo 'no server yet'; exit 0; }`,
    `ro=$(${mysqlNoop} -e 'SELECT @@global.read_only' 2>/dev/null) || { echo 'server not answering (it boots read-only)'; exit 0; }`,
    `[ "$ro" = 0 ] || { echo 'read-only'; exit 0; }`,
    `echo ${JSON.stringify(`${peer} is writable (read_only=OFF) but the roles name it a replica: it may be a promoted primary (is group_vars/all/db_roles.yml up to date?); refusing to make ${primary} writable`)} >&2`,
    'exit 1',
  ].join('\n');
}

/** The primary made writable: refused while it is configured as a replica (the roles say primary, the server replicates). */
function writableScript(f: Flavor): string {
  return [
    `if [ -n "$(${mysqlNoop} -e 'SHOW ${f === 'mysql' ? 'REPLICA' : 'SLAVE'} STATUS')" ]; then`,
    `  echo "this server replicates from another one, yet the roles name it the primary: run the db-switchover playbook, or fix group_vars/all/db_roles.yml" >&2; exit 1`,
    'fi',
    `${mysqlNoop} -e '${f === 'mysql' ? 'SET GLOBAL super_read_only = OFF; ' : ''}SET GLOBAL read_only = OFF'`,
  ].join('\n');
}

/** A MySQL identifier from a variable, checked before it goes into SQL. */
function ident(ctx: TaskContext, k: string): string {
  const v = str(ctx, k);
  if (!/^[A-Za-z0-9_]+$/.test(v)) throw new Error(`${k} '${v}': letters, digits and _ only`);
  return v;
}

export default defineRole({
  name: 'database',
  defaults: {
    /** Inventory groups: the primary (one host) and its replicas. */
    mysql_primary_group: 'db_primary',
    mysql_replica_group: 'db_replicas',
    /** Hosts allowed to log in as the app user: this group's addresses, unless `mysql_app_hosts` (a list) is set. */
    mysql_app_group: 'webservers',
    mysql_bind_address: '0.0.0.0',
    mysql_port: 3306,
    /** Binary log base name (in the data directory) and retention. */
    mysql_log_bin: 'mysql-bin',
    mysql_binlog_expire_days: 10,
    mysql_database: 'app',
    mysql_app_user: 'app',
    /** The app's privileges on its database (it only reads and writes rows; the role creates the table). */
    mysql_app_privileges: 'SELECT,INSERT,UPDATE,DELETE',
    mysql_replication_user: 'repl',
    mysql_exporter_user: 'exporter',
    /** Seconds between a replica's connection attempts to the primary. */
    mysql_connect_retry: 5,
    /**
     * Every server starts read-only (server config), the primary is made writable by the run: an old
     * primary that comes back after a failover stays read-only. The price: a primary that restarts
     * stays read-only until `provision run site -t db_writable` (docs/operations.md). false: only the
     * replicas' config says read_only.
     */
    mysql_fence_on_boot: true,
  },
  tasks: [
    // The config goes in first: the package's first start then already has log_bin, server_id and GTID.
    file((ctx) => ({path: layout[flavor(ctx)].confDir, state: 'directory', mode: '0755'}), {name: 'database config directory'}),
    template((ctx) => {
      const f = flavor(ctx);
      const l = layout[f];
      return {
        src: 'server.cnf.mustache',
        dest: `${l.confDir}/60-provision.cnf`,
        mode: '0644',
        // The server's own option parser (unknown or bad options fail); skipped before the package is there.
        validate: f === 'mariadb'
          ? `test ! -x ${l.daemon} || ${l.daemon} --defaults-file=%s --user=mysql --help --verbose >/dev/null`
          : `test ! -x ${l.daemon} || ${l.daemon} --defaults-file=%s --user=mysql --validate-config`,
        vars: {
          mariadb: f === 'mariadb',
          mysql: f === 'mysql',
          replica: isReplica(ctx) || fenced(ctx),
          server_id: serverId(ctx),
          binlog_expire_seconds: Number(ctx.vars.mysql_binlog_expire_days) * 86400,
        },
      };
    }, {name: 'database server config', notify: 'restart database'}),
    apt((ctx) => ({packages: [...layout[flavor(ctx)].packages]}), {name: 'database packages'}),
    service((ctx) => ({name: layout[flavor(ctx)].service, state: 'started', enabled: true, daemonReload: true}), {name: 'database service'}),
    // A server that was running before the config existed has no binary log: what follows must be logged
    // for the replicas, so restart now (the handler would come too late). Runs only in that case.
    command((ctx) => ({
      argv: ['systemctl', 'restart', layout[flavor(ctx)].service],
      unless: `test "$(${mysqlNoop} -e 'SELECT @@log_bin')" = 1`,
    }), {name: 'binary log active before any write'}),

    // The primary writable (every server boots read-only, see mysql_fence_on_boot): after any restart the
    // config asked for, and before the primary's own writes below (MySQL's super_read_only refuses root too).
    flushHandlers({name: 'database restarted now if its config changed'}),
    // Read only when it is not writable already (the common case costs no round trip: `unless` is
    // answered with the host's other probes).
    shell({script: `${mysqlNoop} -e 'SELECT @@global.read_only' 2>/dev/null || echo none`, unless: `test "$(${mysqlNoop} -e 'SELECT @@global.read_only' 2>/dev/null)" = 0`}, {
      name: 'primary read-only state', when: isPrimary, register: 'db_read_only', changedWhen: () => false, checkMode: false, tags: ['db_writable'],
    }),
    shell((ctx) => ({script: peerReadOnlyScript(String(ctx.item), ctx.host)}), {
      name: 'no replica is writable (split-brain guard)', tags: ['db_writable'],
      when: (ctx) => isPrimary(ctx) && ctx.results.db_read_only?.stdout.trim() === '1',
      loop: (ctx) => dbTopology(ctx).replicas, delegateTo: (ctx) => String(ctx.item), changedWhen: () => false,
    }),
    shell((ctx) => ({script: writableScript(flavor(ctx)), unless: `test "$(${mysqlNoop} -e 'SELECT @@global.read_only')" = 0`}), {
      name: 'primary writable', when: isPrimary, tags: ['db_writable'],
    }),

    // The primary: database, table, accounts (all replicated to the replicas).
    // The schema once, whatever the number of hosts in the play (runOnce: the first one).
    mysqlDatabase((ctx) => ({name: str(ctx, 'mysql_database'), charset: 'utf8mb4'}), {name: 'app database', when: isPrimary, runOnce: true}),
    shell((ctx) => {
      const db = str(ctx, 'mysql_database');
      if (!/^[A-Za-z0-9_]+$/.test(db)) throw new Error(`mysql_database '${db}': letters, digits and _ only`);
      return {
        script: `${mysqlNoop} -e 'CREATE TABLE IF NOT EXISTS ${db}.notes (id BIGINT AUTO_INCREMENT PRIMARY KEY, text TEXT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4'`,
        unless: `${mysqlNoop} -e "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${db}' AND TABLE_NAME = 'notes'" | grep -qx 1`,
      };
    }, {name: 'notes table', when: isPrimary, runOnce: true}),
    mysqlUser((ctx) => ({
      name: str(ctx, 'mysql_replication_user'),
      host: replicationHosts(ctx),
      password: password(ctx, 'mysql_replication_password'),
      privileges: ['*.*:REPLICATION SLAVE'],
      exclusive: true,
    }), {name: 'replication account (database hosts only: any may become a replica)', when: isPrimary}),
    mysqlUser((ctx) => ({
      name: str(ctx, 'mysql_app_user'),
      host: addresses(ctx, 'mysql_app_hosts', 'mysql_app_group'),
      password: password(ctx, 'mysql_app_password'),
      privileges: [`${str(ctx, 'mysql_database')}.*:${str(ctx, 'mysql_app_privileges')}`],
      exclusive: true,
    }), {name: 'app account (web servers only)', when: isPrimary}),
    mysqlUser((ctx) => ({
      name: str(ctx, 'mysql_exporter_user'),
      host: 'localhost',
      password: password(ctx, 'mysql_exporter_password'),
      // MariaDB ≥ 10.5 split SHOW SLAVE STATUS off REPLICATION CLIENT (now BINLOG MONITOR) into SLAVE MONITOR.
      privileges: [flavor(ctx) === 'mariadb' ? '*.*:PROCESS,REPLICATION CLIENT,SLAVE MONITOR,SELECT' : '*.*:PROCESS,REPLICATION CLIENT,SELECT'],
      exclusive: true,
    }), {name: 'metrics exporter account (local only)', when: isPrimary}),

    // The replicas: replicate from the primary by GTID; set up only when not configured, started only when stopped.
    // First, asked on the primary itself (delegateTo): its server answers and holds the replication
    // account (a primary that restarts as the replicas come waits up to 30 s; under --check, not run).
    command((ctx) => ({
      argv: ['mysql', '--batch', '--skip-column-names', '-e', `SELECT COUNT(*) FROM mysql.user WHERE User = '${ident(ctx, 'mysql_replication_user')}'`],
    }), {
      name: 'primary ready for replicas', when: isReplica, delegateTo: primaryName,
      retries: 10, delay: 3, until: (r) => Number(r.stdout.trim()) > 0, changedWhen: () => false,
    }),
    // An old primary (it holds the data, and was never set up as a replica, or was reset when promoted)
    // starts replicating after its own last transaction, not from the new primary's first one.
    shell((ctx) => {
      const db = ident(ctx, 'mysql_database');
      return {
        script: `${mysqlNoop} -e 'SET GLOBAL gtid_slave_pos = @@gtid_binlog_pos'`,
        unless: `test -n "$(${mysqlNoop} -e 'SHOW SLAVE STATUS')" || ! ${mysqlNoop} -e "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${db}' AND TABLE_NAME = 'notes'" | grep -qx 1`,
      };
    }, {name: 'an old primary replicates from its own position', when: (ctx) => isReplica(ctx) && flavor(ctx) === 'mariadb'}),
    mysqlReplica((ctx) => ({
      primaryHost: primaryHost(ctx),
      primaryPort: Number(ctx.vars.mysql_port),
      user: str(ctx, 'mysql_replication_user'),
      password: password(ctx, 'mysql_replication_password'),
      connectRetry: Number(ctx.vars.mysql_connect_retry),
      flavor: flavor(ctx),
    }), {name: 'replication from the primary', when: isReplica}),
  ],
  handlers: [
    service((ctx) => ({name: layout[flavor(ctx)].service, state: 'restarted', daemonReload: true}), {name: 'restart database'}),
  ],
});
