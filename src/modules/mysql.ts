/**
 * MariaDB / MySQL: databases, users (password and privileges) and replication, managed through the
 * `mysql` client over the server's local socket (as root with `become`: unix_socket authentication,
 * Debian's default for root@localhost).
 *
 * Secrets: a password never reaches argv, output, diffs or errors.
 * - Users get `IDENTIFIED WITH mysql_native_password AS '*HASH'`: the hash is computed on the
 *   controller, so the clear password never leaves it. The probe compares the stored hash with that
 *   hash inside SQL and prints only `match`/`differs`; `SHOW GRANTS` lines are cut before `IDENTIFIED`.
 * - SQL that must hold a clear password (`CHANGE MASTER TO … MASTER_PASSWORD`) goes to the client on
 *   stdin (the exec step's `stdin`), never in argv; steps show as `mysql --batch …` with no SQL.
 * - Every password (and its hash) is returned as the module's `secrets`: the run masks it on every output path anyway.
 */
import {createHash} from 'node:crypto';
import {argv} from '../core/cmd.ts';
import {Secret} from '../core/secret.ts';
import {group} from '../shared/match.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Step, Task, TaskOptions} from '../core/types.ts';

/** The server family: the SQL for replication differs. */
export type MysqlFlavor = 'mariadb' | 'mysql';

const password = z.union([z.instanceof(Secret), z.string()]);

// ---------------------------------------------------------------- SQL helpers (pure)

/** A SQL string literal (default sql_mode: backslash escapes are on, so both `\` and `'` are escaped). */
export function sqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\0/g, '\\0').replace(/\n/g, '\\n').replace(/\r/g, '\\r')}'`;
}

/** A quoted identifier: `name`. */
export function sqlIdent(s: string): string {
  return `\`${s.replace(/`/g, '``')}\``;
}

/** `'user'@'host'`. */
export function sqlAccount(user: string, host: string): string {
  return `${sqlString(user)}@${sqlString(host)}`;
}

/** MySQL's native password hash: `*` + upper-case hex of SHA1(SHA1(password)). */
export function nativePasswordHash(password: string): string {
  const inner = createHash('sha1').update(password, 'utf8').digest();
  return `*${createHash('sha1').update(inner).digest('hex').toUpperCase()}`;
}

function reveal(p: Secret | string): string {
  return p instanceof Secret ? p.reveal() : p;
}

/** What a password puts in commands and output: its clear value and its hash (a module's `secrets`). */
function revealed(p: Secret | string | undefined): string[] {
  if (p === undefined) return [];
  const v = reveal(p);
  return v === '' ? [] : [v, nativePasswordHash(v)];
}

const heredoc = '__PROVISION_SQL__';

/**
 * The client in batch mode. MariaDB's client echoes a failing statement to stderr by default (it would
 * carry a password into the error message): `--loose-` keeps MySQL's client, which has no such
 * option, working (it only warns).
 */
const clientArgv = ['mysql', '--batch', '--loose-skip-print-query-on-error'] as const;
const client = clientArgv.join(' ');

/**
 * A probe snippet: `sql` fed to the client on a quoted here-document (never in argv), stderr folded
 * in, then `@rc N`. A missing client counts as an unavailable server.
 */
export function sqlProbeScript(sql: string, extra = '', columnNames = false): string {
  return [
    `if ! command -v mysql >/dev/null 2>&1; then echo '@unavailable no mysql client'; exit 0; fi`,
    `${client}${columnNames ? '' : ' --skip-column-names'} 2>&1 <<'${heredoc}'`,
    sql,
    heredoc,
    'echo "@rc $?"',
    ...(extra ? [extra] : []),
  ].join('\n');
}

/** The common frame of a SQL probe's output: unavailable, or the query's lines. */
type SqlOutput = {readonly kind: 'unavailable'; readonly message: string} | {readonly kind: 'ok'; readonly lines: readonly string[]; readonly after: readonly string[]};

function parseSqlOutput(stdout: string): SqlOutput {
  const lines = stdout.split('\n');
  if (lines[0]?.startsWith('@unavailable')) return {kind: 'unavailable', message: lines[0].slice('@unavailable '.length)};
  const at = lines.findIndex((l) => /^@rc \d+$/.test(l));
  const rcLine = lines[at]; // undefined when there is none (at = -1)
  if (rcLine === undefined) return {kind: 'unavailable', message: 'no answer from the mysql client'};
  const body = lines.slice(0, at).filter((l) => l !== '');
  const rc = Number(rcLine.slice(4));
  if (rc !== 0) {
    const err = body.find((l) => /^ERROR/.test(l)) ?? body[0] ?? `exit ${rc}`;
    return {kind: 'unavailable', message: err};
  }
  return {kind: 'ok', lines: body, after: lines.slice(at + 1).filter((l) => l !== '')};
}

/** The step that runs `sql` through the client, SQL on stdin. */
function sqlStep(sql: readonly string[]): Step {
  return {kind: 'exec', cmd: argv(...clientArgv), stdin: Buffer.from(`${sql.join('\n')}\n`)};
}

// ---------------------------------------------------------------- database

export interface MysqlDatabaseArgs {
  /** The database (schema) name. */
  readonly name: string;
  /** `present` (default): exists, with the given character set and collation; `absent`: dropped. */
  readonly state?: 'present' | 'absent';
  /** Default character set, e.g. `utf8mb4`. Unset: the server's default at creation, left alone after. */
  readonly charset?: string;
  /** Default collation, e.g. `utf8mb4_unicode_ci`. Unset: the charset's default, left alone after. */
  readonly collation?: string;
}

const mysqlDatabaseArgs = z.strictObject({
  name: z.string(),
  state: z.optional(z.enum(['present', 'absent'])),
  charset: z.optional(z.string()),
  collation: z.optional(z.string()),
});
const mysqlDatabaseInSync: Exact<z.infer<typeof mysqlDatabaseArgs>, MysqlDatabaseArgs> = true;

export type MysqlDatabaseState =
  | {readonly kind: 'unavailable'; readonly message: string}
  | {readonly kind: 'missing'}
  | {readonly kind: 'present'; readonly charset: string; readonly collation: string};

export function databaseProbeScript(name: string): string {
  return sqlProbeScript(
    `SELECT CONCAT_WS(' ', 'db', DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${sqlString(name)};`,
  );
}

export function parseDatabaseState(stdout: string): MysqlDatabaseState {
  const o = parseSqlOutput(stdout);
  if (o.kind === 'unavailable') return o;
  const row = o.lines.find((l) => l.startsWith('db '));
  if (!row) return {kind: 'missing'};
  const [, charset = '', collation = ''] = row.split(' ');
  return {kind: 'present', charset, collation};
}

const wordRe = /^[A-Za-z0-9_]+$/;

function charsetClause(a: MysqlDatabaseArgs): string {
  return `${a.charset ? ` CHARACTER SET ${a.charset}` : ''}${a.collation ? ` COLLATE ${a.collation}` : ''}`;
}

export const mysqlDatabaseModule: ModuleDef<MysqlDatabaseArgs, MysqlDatabaseState> = {
  name: 'mysql.database',
  schema: mysqlDatabaseArgs,
  describe: (a) => (a.state === 'absent' ? `${a.name} (absent)` : a.name),
  probe: (a): Probe<MysqlDatabaseState> => ({script: databaseProbeScript(a.name), parse: (out) => parseDatabaseState(out.stdout)}),
  plan(have, a): Plan {
    for (const [k, v] of [['charset', a.charset], ['collation', a.collation]] as const) {
      if (v !== undefined && !wordRe.test(v)) return {steps: [], fail: `bad ${k} '${v}'`};
    }
    const db = sqlIdent(a.name);
    if (a.state === 'absent') {
      if (have.kind === 'missing') return {steps: [], reason: `database ${a.name} absent`};
      if (have.kind === 'unavailable') return {steps: [], reason: `server not answering (${have.message}): nothing to drop`};
      return {steps: [sqlStep([`DROP DATABASE ${db};`])], reason: `drop database ${a.name}`};
    }
    if (have.kind !== 'present') {
      const why = have.kind === 'unavailable' ? ` (server not answering yet: ${have.message})` : '';
      return {steps: [sqlStep([`CREATE DATABASE IF NOT EXISTS ${db}${charsetClause(a)};`])], reason: `create database ${a.name}${why}`};
    }
    const drift: string[] = [];
    if (a.charset !== undefined && a.charset !== have.charset) drift.push(`charset ${have.charset} → ${a.charset}`);
    if (a.collation !== undefined && a.collation !== have.collation) drift.push(`collation ${have.collation} → ${a.collation}`);
    if (drift.length === 0) return {steps: [], reason: `database ${a.name} present (${have.charset}, ${have.collation})`};
    return {steps: [sqlStep([`ALTER DATABASE ${db}${charsetClause(a)};`])], reason: drift.join(', ')};
  },
};

/** A database present (created with a charset/collation) or absent. */
export const mysqlDatabase = (args: ArgsOf<MysqlDatabaseArgs>, options?: TaskOptions): Task => makeTask(mysqlDatabaseModule, args, options);

// ---------------------------------------------------------------- user

export interface MysqlUserArgs {
  /** The account's user name. */
  readonly name: string;
  /**
   * The account's host part: an address, a pattern (`10.0.0.%`) or `localhost` (default). A list makes
   * one account per host, with the same password and privileges (e.g. one per web server).
   */
  readonly host?: string | readonly string[];
  /**
   * The password (mysql_native_password; only its hash is sent to the server). Required to create an
   * account; a changed password is detected without reading the stored hash out. Unset: left alone.
   */
  readonly password?: Secret | string;
  /**
   * Exactly these privileges, as `object:PRIV,PRIV` (Ansible's form): `app.*:SELECT,INSERT`,
   * `*.*:REPLICATION SLAVE`, `app.*:ALL`. Objects not listed lose their privileges (USAGE stays).
   * Unset: privileges are left alone. GRANT OPTION is not managed.
   */
  readonly privileges?: readonly string[];
  /**
   * Drop accounts of this name whose host is not listed (default false), so that the user can connect
   * only from the listed hosts (a stray `app@'%'` would let it in from anywhere).
   */
  readonly exclusive?: boolean;
  /** `present` (default) or `absent` (DROP USER of every listed host; with `exclusive`, of every host). */
  readonly state?: 'present' | 'absent';
}

const mysqlUserArgs = z.strictObject({
  name: z.string(),
  host: z.optional(z.union([z.string(), z.array(z.string())])),
  password: z.optional(password),
  privileges: z.optional(z.array(z.string())),
  exclusive: z.optional(z.boolean()),
  state: z.optional(z.enum(['present', 'absent'])),
});
const mysqlUserInSync: Exact<z.infer<typeof mysqlUserArgs>, MysqlUserArgs> = true;

/** Privileges by object (`*.*`, `app.*`, `app.notes`), canonical names; USAGE dropped. */
export type Grants = Readonly<Record<string, readonly string[]>>;

/** One existing account. */
export interface MysqlAccount {
  /** The authentication plugin, e.g. `mysql_native_password`, `unix_socket`. */
  readonly plugin: string;
  /** The stored hash equals the wanted password's hash (false when no password was given). */
  readonly passwordMatches: boolean;
  /** Its privileges (read only for the requested hosts; empty for the others). */
  readonly grants: Grants;
}

export type MysqlUserState =
  | {readonly kind: 'unavailable'; readonly message: string}
  /** Every account of this user name, by host. */
  | {readonly kind: 'accounts'; readonly accounts: Readonly<Record<string, MysqlAccount>>};

function hostsOf(a: MysqlUserArgs): string[] {
  const h = a.host ?? 'localhost';
  return [...new Set(typeof h === 'string' ? [h] : h)];
}

/**
 * The probe: `user <plugin> <match|differs> <host>` for every account of the name (the password is
 * compared inside SQL against its hash: only the verdict comes back), then `@grants <i>` and the
 * `SHOW GRANTS` lines of each requested host, cut before MariaDB's `IDENTIFIED BY PASSWORD '<hash>'`.
 */
export function userProbeScript(name: string, hosts: readonly string[], password: Secret | string | undefined): string {
  const hash = password === undefined ? '' : nativePasswordHash(reveal(password));
  const cmp = password === undefined ? `'differs'` : `IF(authentication_string = ${sqlString(hash)}, 'match', 'differs')`;
  const select = `SELECT CONCAT_WS(' ', 'user', plugin, ${cmp}, Host) FROM mysql.user WHERE User = ${sqlString(name)};`;
  const grants = hosts.flatMap((h, i) => [
    `echo '@grants ${i}'`,
    // Fails for a missing account (ignored).
    `${client} --skip-column-names 2>/dev/null <<'${heredoc}' | sed -e 's/ IDENTIFIED .*//' -e 's/^/grant /'`,
    `SHOW GRANTS FOR ${sqlAccount(name, h)};`,
    heredoc,
  ]);
  return sqlProbeScript(select, grants.join('\n'));
}

/** Canonical privilege names: the server's aliases folded (MariaDB ≥ 10.5 shows REPLICATION CLIENT as BINLOG MONITOR). */
const aliases: Record<string, string> = {
  ALL: 'ALL PRIVILEGES',
  'REPLICATION CLIENT': 'BINLOG MONITOR',
  'REPLICA MONITOR': 'SLAVE MONITOR',
  'REPLICATION REPLICA': 'REPLICATION SLAVE',
};

export function canonicalPrivilege(p: string): string {
  const up = p.trim().replace(/\s+/g, ' ').toUpperCase();
  return aliases[up] ?? up;
}

/** Split a privilege list at commas outside parentheses (column lists). */
function splitPrivs(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((p) => p.trim()).filter((p) => p !== '');
}

/** `` `app`.* `` → `app.*`; `*.*` stays. */
function canonicalObject(o: string): string {
  return o.replace(/`((?:[^`]|``)*)`/g, (_, n: string) => n.replace(/``/g, '`'));
}

function addGrant(into: Map<string, Set<string>>, object: string, privs: readonly string[]): void {
  const set = into.get(object) ?? new Set<string>();
  for (const p of privs) {
    const c = canonicalPrivilege(p);
    if (c !== 'USAGE') set.add(c);
  }
  into.set(object, set);
}

function freeze(m: Map<string, Set<string>>): Grants {
  const out: Record<string, string[]> = {};
  for (const [o, s] of [...m].sort(([a], [b]) => a.localeCompare(b))) if (s.size > 0) out[o] = [...s].sort();
  return out;
}

/** Pure parser of `SHOW GRANTS` lines (`GRANT SELECT, INSERT ON `app`.* TO …`); role grants are ignored. */
export function parseGrants(lines: readonly string[]): Grants {
  const m = new Map<string, Set<string>>();
  for (const line of lines) {
    const g = /^GRANT (.+?) ON (?:TABLE |FUNCTION |PROCEDURE )?(\S+) TO /.exec(line);
    if (g) addGrant(m, canonicalObject(group(g, 2)), splitPrivs(group(g, 1)));
  }
  return freeze(m);
}

/** The `privileges` argument as grants; throws on a malformed entry. */
export function parsePrivilegeSpec(spec: readonly string[]): Grants {
  const m = new Map<string, Set<string>>();
  for (const entry of spec) {
    const at = entry.indexOf(':');
    const object = at < 0 ? '' : entry.slice(0, at).trim();
    const privs = at < 0 ? [] : splitPrivs(entry.slice(at + 1));
    if (!/^(\*|[A-Za-z0-9_$-]+)\.(\*|[A-Za-z0-9_$-]+)$/.test(object) || (object.startsWith('*.') && !object.endsWith('.*'))) {
      throw new Error(`bad privilege '${entry}': expected 'db.*:PRIV,PRIV', '*.*:PRIV' or 'db.table:PRIV'`);
    }
    for (const p of privs) {
      if (!/^[A-Za-z ]+$/.test(p)) throw new Error(`bad privilege '${p}' in '${entry}'`);
    }
    if (privs.length === 0) throw new Error(`no privileges in '${entry}'`);
    addGrant(m, object, privs);
  }
  return freeze(m);
}

export function parseUserState(stdout: string, hosts: readonly string[]): MysqlUserState {
  const o = parseSqlOutput(stdout);
  if (o.kind === 'unavailable') return o;
  const grantLines = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const l of o.after) {
    const g = /^@grants (\d+)$/.exec(l);
    if (g) {
      current = [];
      const h = hosts[Number(g[1])];
      if (h !== undefined) grantLines.set(h, current);
    } else if (current && l.startsWith('grant ')) current.push(l.slice('grant '.length));
  }
  const accounts: Record<string, MysqlAccount> = {};
  for (const l of o.lines) {
    const m = /^user (\S*) (match|differs) (.*)$/.exec(l);
    if (!m) continue;
    const account = group(m, 3);
    accounts[account] = {plugin: group(m, 1), passwordMatches: m[2] === 'match', grants: parseGrants(grantLines.get(account) ?? [])};
  }
  return {kind: 'accounts', accounts};
}

/** `app.*` → `` `app`.* ``. */
function sqlObject(o: string): string {
  const [db = '', table] = o.split('.'); // split always gives at least one part
  // Not `db.table`: a grant read from the server on something else (`GRANT PROXY ON ''@''`).
  if (table === undefined) throw new Error(`cannot manage privileges on '${o}': not a 'db.table' object`);
  return `${db === '*' ? '*' : sqlIdent(db)}.${table === '*' ? '*' : sqlIdent(table)}`;
}

/** The statements that turn `have` grants into `want` grants, and a note per object. */
export function grantStatements(account: string, have: Grants, want: Grants): {sql: string[]; notes: string[]} {
  const sql: string[] = [];
  const notes: string[] = [];
  const objects = [...new Set([...Object.keys(have), ...Object.keys(want)])].sort();
  for (const o of objects) {
    const cur = new Set(have[o] ?? []);
    const need = new Set(want[o] ?? []);
    const extra = [...cur].filter((p) => !need.has(p));
    let missing = [...need].filter((p) => !cur.has(p));
    if (extra.length === 0 && missing.length === 0) continue;
    notes.push(`${o}${missing.length > 0 ? ` +${missing.join(' +')}` : ''}${extra.length > 0 ? ` -${extra.join(' -')}` : ''}`);
    if (extra.length > 0) {
      if (cur.has('ALL PRIVILEGES') || need.size === 0) {
        sql.push(`REVOKE ALL PRIVILEGES ON ${sqlObject(o)} FROM ${account};`);
        missing = [...need];
      } else {
        sql.push(`REVOKE ${extra.join(', ')} ON ${sqlObject(o)} FROM ${account};`);
      }
    }
    if (missing.length > 0) sql.push(`GRANT ${missing.sort().join(', ')} ON ${sqlObject(o)} TO ${account};`);
  }
  return {sql, notes};
}

function grantsOf(a: MysqlUserArgs): Grants | string | undefined {
  if (a.privileges === undefined) return undefined;
  try {
    return parsePrivilegeSpec(a.privileges);
  } catch (e) {
    return (e as Error).message;
  }
}

function describeGrants(g: Grants): string {
  const parts = Object.entries(g).map(([o, p]) => `${p.join(',')} on ${o}`);
  return parts.length > 0 ? parts.join('; ') : 'USAGE';
}

export const mysqlUserModule: ModuleDef<MysqlUserArgs, MysqlUserState> = {
  name: 'mysql.user',
  schema: mysqlUserArgs,
  describe: (a) => `${hostsOf(a).map((h) => `${a.name}@${h}`).join(', ')}${a.state === 'absent' ? ' (absent)' : ''}`,
  secrets: (a) => revealed(a.password),
  probe(a): Probe<MysqlUserState> {
    const hosts = hostsOf(a);
    return {script: userProbeScript(a.name, hosts, a.state === 'absent' ? undefined : a.password), parse: (out) => parseUserState(out.stdout, hosts)};
  },
  plan(have, a): Plan {
    const hosts = hostsOf(a);
    const at = (h: string): string => `${a.name}@${h}`;
    if (hosts.length === 0 && !a.exclusive) return {steps: [], fail: `user ${a.name}: no host given`};
    if (a.state === 'absent') {
      if (have.kind === 'unavailable') return {steps: [], reason: `server not answering (${have.message}): nothing to drop`};
      const gone = Object.keys(have.accounts).filter((h) => a.exclusive || hosts.includes(h)).sort();
      if (gone.length === 0) return {steps: [], reason: `user ${hosts.map(at).join(', ')} absent`};
      return {steps: [sqlStep(gone.map((h) => `DROP USER ${sqlAccount(a.name, h)};`))], reason: `drop user ${gone.map(at).join(', ')}`};
    }
    const want = grantsOf(a);
    if (typeof want === 'string') return {steps: [], fail: want};
    if (a.password !== undefined && reveal(a.password) === '') return {steps: [], fail: `user ${a.name}: empty password`};
    const identified = a.password === undefined ? undefined : `IDENTIFIED WITH mysql_native_password AS ${sqlString(nativePasswordHash(reveal(a.password)))}`;
    const accounts = have.kind === 'accounts' ? have.accounts : {};
    const sql: string[] = [];
    const why: string[] = [];
    const fine: string[] = [];
    for (const h of hosts) {
      const account = sqlAccount(a.name, h);
      const cur = accounts[h];
      if (cur === undefined) {
        if (identified === undefined) return {steps: [], fail: `user ${at(h)} does not exist and no password was given to create it`};
        sql.push(`CREATE USER ${account} ${identified};`, ...grantStatements(account, {}, want ?? {}).sql);
        why.push(`create ${at(h)}${want ? ` with ${describeGrants(want)}` : ''}`);
        continue;
      }
      const changes: string[] = [];
      if (identified !== undefined && (!cur.passwordMatches || cur.plugin !== 'mysql_native_password')) {
        sql.push(`ALTER USER ${account} ${identified};`);
        changes.push(cur.plugin !== 'mysql_native_password' ? `authentication ${cur.plugin || '(none)'} → password` : 'password differs');
      }
      if (want !== undefined) {
        const g = grantStatements(account, cur.grants, want);
        sql.push(...g.sql);
        if (g.notes.length > 0) changes.push(`privileges ${g.notes.join('; ')}`);
      }
      if (changes.length > 0) why.push(`${at(h)}: ${changes.join(', ')}`);
      else fine.push(at(h));
    }
    if (a.exclusive) {
      for (const h of Object.keys(accounts).filter((x) => !hosts.includes(x)).sort()) {
        sql.push(`DROP USER ${sqlAccount(a.name, h)};`);
        why.push(`drop ${at(h)} (host not listed)`);
      }
    }
    if (sql.length === 0) {
      const privs = want ? `, privileges ${describeGrants(want)}` : '';
      return {steps: [], reason: `${fine.join(', ')} present${identified ? ', password matches' : ''}${privs}`};
    }
    const note = have.kind === 'unavailable' ? ` (server not answering yet: ${have.message})` : '';
    return {steps: [sqlStep(sql)], reason: `${why.join('; ')}${note}`};
  },
};

/** Database accounts (one per host) present with a password and exact privileges, or absent. */
export const mysqlUser = (args: ArgsOf<MysqlUserArgs>, options?: TaskOptions): Task => makeTask(mysqlUserModule, args, options);

// ---------------------------------------------------------------- replication

export interface MysqlReplicaArgs {
  /** The primary's address (as the replica reaches it). */
  readonly primaryHost: string;
  /** The primary's port (default 3306). */
  readonly primaryPort?: number;
  /** The replication account on the primary. */
  readonly user: string;
  /** Its password: sent on the client's stdin only. */
  readonly password: Secret | string;
  /** Seconds between connection attempts (default 5; the server's default of 60 slows a first start). */
  readonly connectRetry?: number;
  /** `mariadb` (default): CHANGE MASTER … MASTER_USE_GTID; `mysql`: CHANGE REPLICATION SOURCE … SOURCE_AUTO_POSITION=1. */
  readonly flavor?: MysqlFlavor;
  /** MariaDB's GTID mode (default `slave_pos`). */
  readonly useGtid?: 'slave_pos' | 'current_pos';
}

const mysqlReplicaArgs = z.strictObject({
  primaryHost: z.string(),
  primaryPort: z.optional(z.int()),
  user: z.string(),
  password,
  connectRetry: z.optional(z.int()),
  flavor: z.optional(z.enum(['mariadb', 'mysql'])),
  useGtid: z.optional(z.enum(['slave_pos', 'current_pos'])),
});
const mysqlReplicaInSync: Exact<z.infer<typeof mysqlReplicaArgs>, MysqlReplicaArgs> = true;

export type MysqlReplicaState =
  | {readonly kind: 'unavailable'; readonly message: string}
  /** No replication configured (no row, or an empty primary host). */
  | {readonly kind: 'none'}
  | {
      readonly kind: 'configured';
      readonly host: string;
      readonly port: number;
      readonly user: string;
      readonly connectRetry: number;
      /** `Yes`, `No`, `Connecting`, `Preparing`. */
      readonly ioRunning: string;
      readonly sqlRunning: string;
      /** MariaDB: `No`, `Slave_Pos`, `Current_Pos`; MySQL: Auto_Position `0`/`1`. */
      readonly gtid: string;
      readonly ioErrno: number;
      readonly ioError: string;
      readonly sqlErrno: number;
      readonly sqlError: string;
    };

const statusFields = [
  'Master_Host', 'Master_User', 'Master_Port', 'Connect_Retry', 'Slave_IO_Running', 'Slave_SQL_Running', 'Using_Gtid',
  'Last_IO_Errno', 'Last_IO_Error', 'Last_SQL_Errno', 'Last_SQL_Error',
  'Source_Host', 'Source_User', 'Source_Port', 'Replica_IO_Running', 'Replica_SQL_Running', 'Auto_Position',
];

export function replicaProbeScript(flavor: MysqlFlavor): string {
  const show = flavor === 'mysql' ? 'SHOW REPLICA STATUS\\G' : 'SHOW SLAVE STATUS\\G';
  // Only the fields the plan needs come back (trimmed `Key: value` lines).
  // Vertical output (\G) needs the column names: they are the keys.
  return `{\n${sqlProbeScript(show, '', true)}\n} | sed -n -E 's/^ *(${statusFields.join('|')}): ?(.*)$/\\1: \\2/p; /^(@|ERROR)/p'`;
}

export function parseReplicaState(stdout: string): MysqlReplicaState {
  const o = parseSqlOutput(stdout);
  if (o.kind === 'unavailable') return o;
  const kv = new Map<string, string>();
  for (const l of o.lines) {
    const m = /^([A-Za-z_]+): ?(.*)$/.exec(l);
    if (m) kv.set(group(m, 1).replace(/^Source_/, 'Master_').replace(/^Replica_/, 'Slave_'), group(m, 2).trim());
  }
  const host = kv.get('Master_Host') ?? '';
  if (host === '') return {kind: 'none'};
  const num = (k: string): number => Number(kv.get(k) ?? '0') || 0;
  return {
    kind: 'configured',
    host,
    port: num('Master_Port'),
    user: kv.get('Master_User') ?? '',
    connectRetry: num('Connect_Retry'),
    ioRunning: kv.get('Slave_IO_Running') ?? '',
    sqlRunning: kv.get('Slave_SQL_Running') ?? '',
    gtid: kv.get('Using_Gtid') ?? kv.get('Auto_Position') ?? '',
    ioErrno: num('Last_IO_Errno'),
    ioError: kv.get('Last_IO_Error') ?? '',
    sqlErrno: num('Last_SQL_Errno'),
    sqlError: kv.get('Last_SQL_Error') ?? '',
  };
}

/** MySQL/MariaDB error numbers that mean the replication account's credentials are wrong. */
const authErrors = new Set([1045, 2061]);

function replicaSql(a: MysqlReplicaArgs): {change: string; start: string; stop: string; wantGtid: string} {
  const port = a.primaryPort ?? 3306;
  const retry = a.connectRetry ?? 5;
  const pw = sqlString(reveal(a.password));
  if (a.flavor === 'mysql') {
    return {
      change: `CHANGE REPLICATION SOURCE TO SOURCE_HOST=${sqlString(a.primaryHost)}, SOURCE_PORT=${port}, SOURCE_USER=${sqlString(a.user)}, SOURCE_PASSWORD=${pw}, SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=${retry}, GET_SOURCE_PUBLIC_KEY=1;`,
      start: 'START REPLICA;',
      stop: 'STOP REPLICA;',
      wantGtid: '1',
    };
  }
  const gtid = a.useGtid ?? 'slave_pos';
  return {
    change: `CHANGE MASTER TO MASTER_HOST=${sqlString(a.primaryHost)}, MASTER_PORT=${port}, MASTER_USER=${sqlString(a.user)}, MASTER_PASSWORD=${pw}, MASTER_USE_GTID=${gtid}, MASTER_CONNECT_RETRY=${retry};`,
    start: 'START SLAVE;',
    stop: 'STOP SLAVE;',
    wantGtid: gtid === 'slave_pos' ? 'Slave_Pos' : 'Current_Pos',
  };
}

export const mysqlReplicaModule: ModuleDef<MysqlReplicaArgs, MysqlReplicaState> = {
  name: 'mysql.replica',
  schema: mysqlReplicaArgs,
  describe: (a) => `replica of ${a.user}@${a.primaryHost}:${a.primaryPort ?? 3306}`,
  secrets: (a) => revealed(a.password),
  probe(a): Probe<MysqlReplicaState> {
    return {script: replicaProbeScript(a.flavor ?? 'mariadb'), parse: (out) => parseReplicaState(out.stdout)};
  },
  plan(have, a): Plan {
    if (!Number.isInteger(a.connectRetry ?? 5) || !Number.isInteger(a.primaryPort ?? 3306)) return {steps: [], fail: 'connectRetry and primaryPort must be integers'};
    const port = a.primaryPort ?? 3306;
    const retry = a.connectRetry ?? 5;
    const sql = replicaSql(a);
    const from = `${a.user}@${a.primaryHost}:${port}`;
    if (have.kind !== 'configured') {
      const why = have.kind === 'unavailable' ? ` (server not answering yet: ${have.message})` : '';
      return {steps: [sqlStep([sql.change, sql.start])], reason: `configure replication from ${from} and start it${why}`};
    }
    // Configured: never reset. Re-point only what differs (GTID positions are kept by CHANGE MASTER).
    const drift: string[] = [];
    if (have.host !== a.primaryHost) drift.push(`host ${have.host} → ${a.primaryHost}`);
    if (have.port !== port) drift.push(`port ${have.port} → ${port}`);
    if (have.user !== a.user) drift.push(`user ${have.user} → ${a.user}`);
    if (have.gtid.toLowerCase() !== sql.wantGtid.toLowerCase()) drift.push(`GTID ${have.gtid || 'No'} → ${sql.wantGtid}`);
    if (have.connectRetry !== retry) drift.push(`connect retry ${have.connectRetry} → ${retry}`);
    if (have.ioRunning !== 'Yes' && authErrors.has(have.ioErrno)) drift.push(`credentials refused by the primary (error ${have.ioErrno})`);
    const state = `IO ${have.ioRunning}, SQL ${have.sqlRunning}`;
    if (have.sqlRunning !== 'Yes' && have.sqlErrno !== 0) {
      return {steps: [], fail: `replication SQL thread stopped with error ${have.sqlErrno}: ${have.sqlError} — left alone (needs a person: fix the data or re-seed the replica)`};
    }
    if (drift.length > 0) {
      return {steps: [sqlStep([sql.stop, sql.change, sql.start])], reason: `reconfigure replication (${drift.join(', ')}; ${state}), positions kept`};
    }
    if (have.ioRunning === 'No' || have.sqlRunning === 'No') {
      return {steps: [sqlStep([sql.start])], reason: `replication from ${from} configured but stopped (${state}): start it`};
    }
    const note = have.ioRunning === 'Yes' ? '' : ` (IO thread ${have.ioRunning}${have.ioErrno ? `: error ${have.ioErrno} ${have.ioError}` : ''})`;
    return {steps: [], reason: `replicating from ${from}, ${state}, GTID ${have.gtid}${note}`};
  },
};

/** Replication from a primary configured and running, set up only when it is not (never reset). */
export const mysqlReplica = (args: ArgsOf<MysqlReplicaArgs>, options?: TaskOptions): Task => makeTask(mysqlReplicaModule, args, options);

void [mysqlDatabaseInSync, mysqlUserInSync, mysqlReplicaInSync];
