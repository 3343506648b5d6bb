import test from 'ava';
import {mkdtempSync, writeFileSync, readFileSync, existsSync, chmodSync, rmSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import {display, render, q} from '../../src/core/cmd.ts';
import {describeStep} from '../../src/core/remote.ts';
import {secret, Secret, Secrets} from '../../src/core/secret.ts';
import type {Plan, Step} from '../../src/core/types.ts';
import {localExec} from '../../src/transport/fake.ts';
import {plainWriter} from '../../src/ui/plain.ts';
import {jsonWriter} from '../../src/ui/json.ts';
import {
  canonicalPrivilege, grantStatements, mysqlDatabase, mysqlDatabaseModule, mysqlReplica, mysqlReplicaModule, mysqlUser, mysqlUserModule,
  nativePasswordHash, parseDatabaseState, parseGrants, parsePrivilegeSpec, parseReplicaState, parseUserState, replicaProbeScript,
  sqlString, userProbeScript,
  type MysqlDatabaseArgs, type MysqlDatabaseState, type MysqlReplicaArgs, type MysqlReplicaState, type MysqlAccount, type MysqlUserArgs, type MysqlUserState,
} from '../../src/modules/mysql.ts';
import {runFake} from '../helpers/engine.ts';

const PW = 'S3cr3t-pw-0x7f';
const REPL_PW = "r3pl'pa\\ss";
const HASH = nativePasswordHash(PW);

/** Each step's SQL (exec steps: `mysql --batch` with SQL on stdin). */
function sqlOf(p: Plan): string[] {
  return p.steps.map((s) => {
    if (s.kind !== 'exec') return s.kind;
    const stdin = s.stdin instanceof Secret ? s.stdin.reveal() : s.stdin?.toString() ?? '';
    return `${display(s.cmd)} << ${stdin.trim()}`;
  });
}

// ---- helpers

test('native password hash matches the server\'s PASSWORD()', (t) => {
  // SELECT PASSWORD('password') on MariaDB/MySQL 5.7.
  t.is(nativePasswordHash('password'), '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19');
});

test('SQL string literals escape quotes and backslashes', (t) => {
  t.is(sqlString("it's"), "'it\\'s'");
  t.is(sqlString('a\\b'), "'a\\\\b'");
});

test('privilege names are folded to the server\'s canonical ones', (t) => {
  t.is(canonicalPrivilege('all'), 'ALL PRIVILEGES');
  t.is(canonicalPrivilege('replication  client'), 'BINLOG MONITOR');
  t.is(canonicalPrivilege('REPLICA MONITOR'), 'SLAVE MONITOR');
  t.deepEqual(parsePrivilegeSpec(['app.*:ALL', '*.*:PROCESS,REPLICATION CLIENT, select']), {'*.*': ['BINLOG MONITOR', 'PROCESS', 'SELECT'], 'app.*': ['ALL PRIVILEGES']});
  t.throws(() => parsePrivilegeSpec(['app:ALL']), {message: /bad privilege/});
  t.throws(() => parsePrivilegeSpec(["app.*:SELECT; DROP DATABASE x"]), {message: /bad privilege/});
});

test('SHOW GRANTS lines → grants (MariaDB and MySQL shapes)', (t) => {
  t.deepEqual(parseGrants([
    'GRANT USAGE ON *.* TO `app`@`10.231.0.21`',
    'GRANT SELECT, INSERT, UPDATE, DELETE ON `app`.* TO `app`@`10.231.0.21`',
    'GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO `exporter`@`localhost`',
    'GRANT SELECT (`id`, `text`) ON `app`.`notes` TO `x`@`%`',
    'GRANT `somerole` TO `app`@`10.231.0.21`',
  ]), {
    '*.*': ['BINLOG MONITOR', 'PROCESS', 'SLAVE MONITOR'],
    'app.*': ['DELETE', 'INSERT', 'SELECT', 'UPDATE'],
    'app.notes': ['SELECT (`ID`, `TEXT`)'],
  });
});

test('grant statements: revoke extras, grant what is missing, ALL replaced as a whole', (t) => {
  const acc = "'u'@'h'";
  t.deepEqual(grantStatements(acc, {'app.*': ['SELECT']}, {'app.*': ['INSERT', 'SELECT']}).sql, ["GRANT INSERT ON `app`.* TO 'u'@'h';"]);
  t.deepEqual(grantStatements(acc, {'app.*': ['DELETE', 'SELECT']}, {'app.*': ['SELECT']}).sql, ["REVOKE DELETE ON `app`.* FROM 'u'@'h';"]);
  t.deepEqual(grantStatements(acc, {'app.*': ['ALL PRIVILEGES']}, {'app.*': ['SELECT']}).sql,
    ["REVOKE ALL PRIVILEGES ON `app`.* FROM 'u'@'h';", "GRANT SELECT ON `app`.* TO 'u'@'h';"]);
  t.deepEqual(grantStatements(acc, {'old.*': ['SELECT']}, {}).sql, ["REVOKE ALL PRIVILEGES ON `old`.* FROM 'u'@'h';"]);
  t.deepEqual(grantStatements(acc, {'app.*': ['SELECT']}, {'app.*': ['SELECT']}).sql, []);
});

// ---- probes: parsers

const rc0 = '@rc 0';

test('database probe output → state', (t) => {
  t.deepEqual(parseDatabaseState(`db utf8mb4 utf8mb4_general_ci\n${rc0}\n`), {kind: 'present', charset: 'utf8mb4', collation: 'utf8mb4_general_ci'});
  t.deepEqual(parseDatabaseState(`${rc0}\n`), {kind: 'missing'});
  t.deepEqual(parseDatabaseState('@unavailable no mysql client\n'), {kind: 'unavailable', message: 'no mysql client'});
  t.deepEqual(parseDatabaseState("ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)\n@rc 1\n"),
    {kind: 'unavailable', message: "ERROR 2002 (HY000): Can't connect to local server through socket '/run/mysqld/mysqld.sock' (2)"});
});

test('user probe output → state', (t) => {
  const out = [
    'user mysql_native_password match 10.231.0.21',
    'user mysql_native_password differs %',
    rc0,
    '@grants 0',
    'grant GRANT USAGE ON *.* TO `app`@`10.231.0.21`',
    'grant GRANT SELECT, INSERT ON `app`.* TO `app`@`10.231.0.21`',
    '@grants 1',
  ].join('\n');
  t.deepEqual(parseUserState(out, ['10.231.0.21', '10.231.0.22']), {kind: 'accounts', accounts: {
    '10.231.0.21': {plugin: 'mysql_native_password', passwordMatches: true, grants: {'app.*': ['INSERT', 'SELECT']}},
    '%': {plugin: 'mysql_native_password', passwordMatches: false, grants: {}},
  }});
  t.deepEqual(parseUserState(`${rc0}\n@grants 0\n`, ['localhost']), {kind: 'accounts', accounts: {}});
});

const slaveStatus = (o: Record<string, string> = {}): string => [
  'Master_Host: 10.231.0.31', 'Master_User: repl', 'Master_Port: 3306', 'Connect_Retry: 5',
  'Slave_IO_Running: Yes', 'Slave_SQL_Running: Yes', 'Last_IO_Errno: 0', 'Last_IO_Error: ', 'Last_SQL_Errno: 0', 'Last_SQL_Error: ', 'Using_Gtid: Slave_Pos',
].map((l) => {
  const [k = ''] = l.split(':');
  return k in o ? `${k}: ${o[k]}` : l;
}).join('\n') + `\n${rc0}\n`;

test('replica probe output → state (MariaDB and MySQL field names)', (t) => {
  const s = parseReplicaState(slaveStatus());
  t.like(s, {kind: 'configured', host: '10.231.0.31', user: 'repl', port: 3306, connectRetry: 5, ioRunning: 'Yes', sqlRunning: 'Yes', gtid: 'Slave_Pos'});
  t.deepEqual(parseReplicaState(`${rc0}\n`), {kind: 'none'});
  t.like(parseReplicaState(`Source_Host: 10.0.0.1\nSource_User: repl\nSource_Port: 3306\nReplica_IO_Running: Yes\nReplica_SQL_Running: No\nAuto_Position: 1\n${rc0}\n`),
    {kind: 'configured', host: '10.0.0.1', ioRunning: 'Yes', sqlRunning: 'No', gtid: '1'});
});

test('the replica probe filters SHOW SLAVE STATUS down to the needed fields (real sed)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-mysql-probe-'));
  writeFileSync(join(dir, 'mysql'), `#!/bin/sh\ncat >/dev/null\nprintf '%s\\n' '*************************** 1. row ***************************' '                Slave_IO_State: Waiting for master to send event' '                   Master_Host: 10.231.0.31' '              Slave_IO_Running: Yes' '                    Using_Gtid: Slave_Pos' '             Slave_SQL_Running: Yes'\n`);
  chmodSync(join(dir, 'mysql'), 0o755);
  const r = await localExec(`PATH=${q(dir)}:$PATH; export PATH\n${replicaProbeScript('mariadb')}`);
  t.is(r.stdout, 'Master_Host: 10.231.0.31\nSlave_IO_Running: Yes\nUsing_Gtid: Slave_Pos\nSlave_SQL_Running: Yes\n@rc 0\n');
  rmSync(dir, {recursive: true});
});

// ---- pure plans: state in, SQL out

const dbCases: {title: string; have: MysqlDatabaseState; args: MysqlDatabaseArgs; sql: string[]; reason?: RegExp}[] = [
  {title: 'missing → create', have: {kind: 'missing'}, args: {name: 'app', charset: 'utf8mb4'}, sql: ['mysql --batch --loose-skip-print-query-on-error << CREATE DATABASE IF NOT EXISTS `app` CHARACTER SET utf8mb4;'], reason: /create database app/},
  {title: 'server not up yet (check mode on a fresh host) → would create', have: {kind: 'unavailable', message: 'no mysql client'}, args: {name: 'app'}, sql: ['mysql --batch --loose-skip-print-query-on-error << CREATE DATABASE IF NOT EXISTS `app`;'], reason: /not answering yet/},
  {title: 'drifted charset → alter', have: {kind: 'present', charset: 'latin1', collation: 'latin1_swedish_ci'}, args: {name: 'app', charset: 'utf8mb4'}, sql: ['mysql --batch --loose-skip-print-query-on-error << ALTER DATABASE `app` CHARACTER SET utf8mb4;'], reason: /charset latin1 → utf8mb4/},
  {title: 'converged → nothing', have: {kind: 'present', charset: 'utf8mb4', collation: 'utf8mb4_general_ci'}, args: {name: 'app', charset: 'utf8mb4'}, sql: [], reason: /present/},
  {title: 'absent, present → drop', have: {kind: 'present', charset: 'utf8mb4', collation: 'x'}, args: {name: 'old', state: 'absent'}, sql: ['mysql --batch --loose-skip-print-query-on-error << DROP DATABASE `old`;']},
  {title: 'absent, missing → nothing', have: {kind: 'missing'}, args: {name: 'old', state: 'absent'}, sql: []},
];
for (const c of dbCases) {
  test(`database: ${c.title}`, (t) => {
    const p = mysqlDatabaseModule.plan(c.have, c.args);
    t.deepEqual(sqlOf(p), c.sql);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
  });
}

const app = {name: 'app', host: '10.231.0.21', password: PW, privileges: ['app.*:SELECT,INSERT,UPDATE,DELETE']} as const;
const appGrants = {'app.*': ['DELETE', 'INSERT', 'SELECT', 'UPDATE']};
const good = {plugin: 'mysql_native_password', passwordMatches: true, grants: appGrants};
const none: MysqlUserState = {kind: 'accounts', accounts: {}};
const only = (accounts: Record<string, MysqlAccount>): MysqlUserState => ({kind: 'accounts', accounts});
const userCases: {title: string; have: MysqlUserState; args: MysqlUserArgs; sql: string[]; reason?: RegExp; fail?: RegExp}[] = [
  {
    title: 'missing → create with the hash, then grant',
    have: none,
    args: app,
    sql: [`mysql --batch --loose-skip-print-query-on-error << CREATE USER 'app'@'10.231.0.21' IDENTIFIED WITH mysql_native_password AS '${HASH}';\nGRANT DELETE, INSERT, SELECT, UPDATE ON \`app\`.* TO 'app'@'10.231.0.21';`],
    reason: /^create app@10\.231\.0\.21 with DELETE,INSERT,SELECT,UPDATE on app\.\*$/,
  },
  {
    title: 'server not up yet (check mode on a fresh host) → would create',
    have: {kind: 'unavailable', message: 'no mysql client'},
    args: {...app, host: ['10.231.0.21', '10.231.0.22']},
    sql: [`mysql --batch --loose-skip-print-query-on-error << CREATE USER 'app'@'10.231.0.21' IDENTIFIED WITH mysql_native_password AS '${HASH}';\nGRANT DELETE, INSERT, SELECT, UPDATE ON \`app\`.* TO 'app'@'10.231.0.21';\nCREATE USER 'app'@'10.231.0.22' IDENTIFIED WITH mysql_native_password AS '${HASH}';\nGRANT DELETE, INSERT, SELECT, UPDATE ON \`app\`.* TO 'app'@'10.231.0.22';`],
    reason: /create app@10\.231\.0\.21 .*; create app@10\.231\.0\.22 .*not answering yet/,
  },
  {
    title: 'converged → nothing',
    have: only({'10.231.0.21': good}),
    args: app,
    sql: [],
    reason: /^app@10\.231\.0\.21 present, password matches, privileges DELETE,INSERT,SELECT,UPDATE on app\.\*$/,
  },
  {
    title: 'converged, one of two hosts missing → create only that one',
    have: only({'10.231.0.21': good}),
    args: {...app, host: ['10.231.0.21', '10.231.0.22'], privileges: undefined},
    sql: [`mysql --batch --loose-skip-print-query-on-error << CREATE USER 'app'@'10.231.0.22' IDENTIFIED WITH mysql_native_password AS '${HASH}';`],
    reason: /^create app@10\.231\.0\.22$/,
  },
  {
    title: 'drifted password → alter (the reason never shows it)',
    have: only({'10.231.0.21': {...good, passwordMatches: false}}),
    args: app,
    sql: [`mysql --batch --loose-skip-print-query-on-error << ALTER USER 'app'@'10.231.0.21' IDENTIFIED WITH mysql_native_password AS '${HASH}';`],
    reason: /^app@10\.231\.0\.21: password differs$/,
  },
  {
    title: 'unix_socket account → password authentication',
    have: only({localhost: {plugin: 'unix_socket', passwordMatches: false, grants: {}}}),
    args: {name: 'exporter', password: secret(PW)},
    sql: [`mysql --batch --loose-skip-print-query-on-error << ALTER USER 'exporter'@'localhost' IDENTIFIED WITH mysql_native_password AS '${HASH}';`],
    reason: /authentication unix_socket → password/,
  },
  {
    title: 'drifted privileges → revoke the extra, grant the missing',
    have: only({'10.231.0.21': {...good, grants: {'app.*': ['DROP', 'SELECT'], 'other.*': ['SELECT']}}}),
    args: app,
    sql: ["mysql --batch --loose-skip-print-query-on-error << REVOKE DROP ON `app`.* FROM 'app'@'10.231.0.21';\nGRANT DELETE, INSERT, UPDATE ON `app`.* TO 'app'@'10.231.0.21';\nREVOKE ALL PRIVILEGES ON `other`.* FROM 'app'@'10.231.0.21';"],
    reason: /privileges app\.\* \+DELETE \+INSERT \+UPDATE -DROP; other\.\* -SELECT/,
  },
  {
    title: 'exclusive: an account on another host is dropped',
    have: only({'10.231.0.21': good, '%': good}),
    args: {...app, exclusive: true},
    sql: ["mysql --batch --loose-skip-print-query-on-error << DROP USER 'app'@'%';"],
    reason: /^drop app@% \(host not listed\)$/,
  },
  {
    title: 'replication client is the same privilege as binlog monitor → nothing',
    have: only({localhost: {...good, grants: {'*.*': ['BINLOG MONITOR', 'PROCESS', 'SELECT', 'SLAVE MONITOR']}}}),
    args: {name: 'exporter', password: PW, privileges: ['*.*:PROCESS,REPLICATION CLIENT,SLAVE MONITOR,SELECT']},
    sql: [],
  },
  {
    title: 'privileges unset → left alone',
    have: only({localhost: {...good, grants: {'*.*': ['SUPER']}}}),
    args: {name: 'admin', password: PW},
    sql: [],
  },
  {title: 'missing, no password → fail', have: none, args: {name: 'x'}, sql: [], fail: /no password/},
  {title: 'empty password → fail', have: none, args: {name: 'x', password: ''}, sql: [], fail: /empty password/},
  {title: 'absent, present → drop', have: only({'%': good}), args: {name: 'old', host: '%', state: 'absent'}, sql: ["mysql --batch --loose-skip-print-query-on-error << DROP USER 'old'@'%';"]},
  {title: 'absent, missing → nothing', have: none, args: {name: 'old', state: 'absent'}, sql: []},
];
for (const c of userCases) {
  test(`user: ${c.title}`, (t) => {
    const p = mysqlUserModule.plan(c.have, c.args);
    t.deepEqual(sqlOf(p), c.sql);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
    if (c.fail) t.regex(p.fail ?? '', c.fail);
  });
}

const repl: MysqlReplicaArgs = {primaryHost: '10.231.0.31', user: 'repl', password: REPL_PW};
const change = "CHANGE MASTER TO MASTER_HOST='10.231.0.31', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='r3pl\\'pa\\\\ss', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5;";
const running = parseReplicaState(slaveStatus()) as MysqlReplicaState;
const replicaCases: {title: string; have: MysqlReplicaState; args: MysqlReplicaArgs; sql: string[]; reason?: RegExp; fail?: RegExp}[] = [
  {title: 'not configured → change master, start', have: {kind: 'none'}, args: repl, sql: [`mysql --batch --loose-skip-print-query-on-error << ${change}\nSTART SLAVE;`], reason: /configure replication from repl@10\.231\.0\.31:3306/},
  {title: 'converged (running) → nothing', have: running, args: repl, sql: [], reason: /replicating from repl@10\.231\.0\.31:3306, IO Yes, SQL Yes, GTID Slave_Pos/},
  {title: 'configured but stopped → only START SLAVE (no CHANGE MASTER, no reset)', have: parseReplicaState(slaveStatus({Slave_IO_Running: 'No', Slave_SQL_Running: 'No'})), args: repl, sql: ['mysql --batch --loose-skip-print-query-on-error << START SLAVE;'], reason: /configured but stopped/},
  {title: 'drifted primary → stop, change master, start (positions kept)', have: parseReplicaState(slaveStatus({Master_Host: '10.231.0.99'})), args: repl, sql: [`mysql --batch --loose-skip-print-query-on-error << STOP SLAVE;\n${change}\nSTART SLAVE;`], reason: /host 10\.231\.0\.99 → 10\.231\.0\.31/},
  {title: 'password refused by the primary → reconfigure', have: parseReplicaState(slaveStatus({Slave_IO_Running: 'Connecting', Last_IO_Errno: '1045'})), args: repl, sql: [`mysql --batch --loose-skip-print-query-on-error << STOP SLAVE;\n${change}\nSTART SLAVE;`], reason: /credentials refused/},
  {title: 'primary unreachable, IO connecting → left alone', have: parseReplicaState(slaveStatus({Slave_IO_Running: 'Connecting', Last_IO_Errno: '2003'})), args: repl, sql: [], reason: /IO thread Connecting: error 2003/},
  {title: 'SQL thread stopped on an error → fail, untouched', have: parseReplicaState(slaveStatus({Slave_SQL_Running: 'No', Last_SQL_Errno: '1062', Last_SQL_Error: 'Duplicate entry'})), args: repl, sql: [], fail: /error 1062: Duplicate entry.*left alone/},
  {
    title: 'MySQL flavor → CHANGE REPLICATION SOURCE … SOURCE_AUTO_POSITION=1',
    have: {kind: 'none'}, args: {...repl, flavor: 'mysql', password: 'pw'},
    sql: ["mysql --batch --loose-skip-print-query-on-error << CHANGE REPLICATION SOURCE TO SOURCE_HOST='10.231.0.31', SOURCE_PORT=3306, SOURCE_USER='repl', SOURCE_PASSWORD='pw', SOURCE_AUTO_POSITION=1, SOURCE_CONNECT_RETRY=5, GET_SOURCE_PUBLIC_KEY=1;\nSTART REPLICA;"],
  },
];
for (const c of replicaCases) {
  test(`replica: ${c.title}`, (t) => {
    const p = mysqlReplicaModule.plan(c.have, c.args);
    t.deepEqual(sqlOf(p), c.sql);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
    if (c.fail) t.regex(p.fail ?? '', c.fail);
  });
}

// ---- the password never shows

test('passwords never appear in argv, displayed commands, reasons, descriptions or probe scripts', (t) => {
  const plans: Plan[] = [
    ...userCases.map((c) => mysqlUserModule.plan(c.have, c.args)),
    ...replicaCases.map((c) => mysqlReplicaModule.plan(c.have, c.args)),
  ];
  const steps: Step[] = plans.flatMap((p) => p.steps);
  t.true(steps.length > 5);
  for (const s of steps) {
    t.is(s.kind, 'exec');
    if (s.kind !== 'exec') continue;
    for (const shown of [render(s.cmd), display(s.cmd), describeStep(s)]) {
      t.false(shown.includes(PW) || shown.includes(REPL_PW) || shown.includes(HASH), shown);
      t.is(shown, 'mysql --batch --loose-skip-print-query-on-error');
    }
  }
  for (const p of plans) {
    const text = `${p.reason ?? ''} ${p.fail ?? ''}`;
    t.false(text.includes(PW) || text.includes(HASH), text);
  }
  for (const c of userCases) {
    t.false(mysqlUserModule.describe(c.args).includes(PW));
    const script = mysqlUserModule.probe!(c.args).script;
    t.false(script.includes(PW), 'only the hash is sent to compare');
  }
  t.false(mysqlReplicaModule.describe(repl).includes(REPL_PW));
  t.false(mysqlReplicaModule.probe!(repl).script.includes(REPL_PW));
  // The probe compares inside SQL and cuts IDENTIFIED … from SHOW GRANTS: the hash never comes back.
  t.regex(userProbeScript('app', ['h'], PW), /IF\(authentication_string = '\*[0-9A-F]{40}', 'match', 'differs'\)/);
  t.regex(userProbeScript('app', ['h'], PW), /sed -e 's\/ IDENTIFIED \.\*\/\/'/);
});

// ---- through the engine, with a fake `mysql` client on the fake transport

/** A fake client: answers probes from files in $FAKE_MYSQL, appends any other SQL to $FAKE_MYSQL/applied. */
const fakeClient = `#!/bin/sh
sql=$(cat)
case "$sql" in
  *"information_schema.SCHEMATA"*) cat "$FAKE_MYSQL/db" 2>/dev/null || true ;;
  *"FROM mysql.user"*) cat "$FAKE_MYSQL/user" 2>/dev/null || true ;;
  *"SHOW GRANTS"*) cat "$FAKE_MYSQL/grants" 2>/dev/null || { echo "ERROR 1141 (42000) at line 1: There is no such grant" >&2; exit 1; } ;;
  *"SHOW SLAVE STATUS"*) cat "$FAKE_MYSQL/slave" 2>/dev/null || true ;;
  *) printf '%s\\n--\\n' "$sql" >> "$FAKE_MYSQL/applied" ;;
esac
`;

function fakeServer(): {dir: string; handler: (cmd: string, stdin: string | undefined) => ReturnType<typeof localExec>; converge(): void; applied(): string} {
  const dir = mkdtempSync(join(tmpdir(), 'prov-mysql-'));
  writeFileSync(join(dir, 'mysql'), fakeClient);
  chmodSync(join(dir, 'mysql'), 0o755);
  return {
    dir,
    handler: (cmd, stdin) => localExec(`PATH=${q(dir)}:$PATH FAKE_MYSQL=${q(dir)}; export PATH FAKE_MYSQL\n${cmd}`, stdin === undefined ? {} : {stdin}),
    converge() {
      writeFileSync(join(dir, 'db'), 'db utf8mb4 utf8mb4_general_ci\n');
      writeFileSync(join(dir, 'user'), 'user mysql_native_password match 10.231.0.21\n');
      writeFileSync(join(dir, 'grants'), 'GRANT USAGE ON *.* TO `app`@`10.231.0.21` IDENTIFIED BY PASSWORD \'' + HASH + '\'\nGRANT SELECT, INSERT ON `app`.* TO `app`@`10.231.0.21`\n');
      writeFileSync(join(dir, 'slave'), slaveStatus().replace(/\n@rc 0\n$/, '\n'));
    },
    applied: () => (existsSync(join(dir, 'applied')) ? readFileSync(join(dir, 'applied'), 'utf8') : ''),
  };
}

const playbook = definePlaybook({name: 'db', plays: [{name: 'db', hosts: 'all_hosts', gatherFacts: false, tasks: [
  mysqlDatabase({name: 'app', charset: 'utf8mb4'}, {name: 'database'}),
  // A plain string password (as read from a vars file): the module registers it for masking itself.
  mysqlUser((ctx) => ({name: 'app', host: '10.231.0.21', password: String(ctx.vars.pw), privileges: ['app.*:SELECT,INSERT']}), {name: 'app user'}),
  mysqlReplica((ctx) => ({primaryHost: '10.231.0.31', user: 'repl', password: String(ctx.vars.repl_pw)}), {name: 'replication'}),
]}]});
const hostVars = {h1: {pw: PW, repl_pw: REPL_PW}};

test('engine: missing → created; converged → 0 changed in one round trip; check → only the probe; no password in any output', async (t) => {
  const srv = fakeServer();
  const first = await runFake(playbook, {handler: srv.handler, hostVars});
  t.deepEqual(first.results().map((r) => r.status), ['changed', 'changed', 'changed']);
  t.deepEqual(first.results().map((r) => r.msg), ['create database app', 'create app@10.231.0.21 with INSERT,SELECT on app.*', 'configure replication from repl@10.231.0.31:3306 and start it']);
  const applied = srv.applied();
  t.regex(applied, /CREATE DATABASE IF NOT EXISTS `app` CHARACTER SET utf8mb4;/);
  t.regex(applied, new RegExp(`CREATE USER 'app'@'10\\.231\\.0\\.21' IDENTIFIED WITH mysql_native_password AS '\\${HASH}';`));
  t.regex(applied, /MASTER_PASSWORD='r3pl\\'pa\\\\ss'/);
  t.false(applied.includes(PW), 'the app password itself never leaves the controller, only its hash');
  // Where the secrets travelled: the commands are all bare `mysql --batch` or the probe shell.
  const log = first.transports.get('h1')!.execs;
  for (const r of log) t.false(r.command.includes(PW) || r.command.includes(REPL_PW) || r.command.includes(HASH), r.command);
  t.true(log.some((r) => r.command === 'mysql --batch --loose-skip-print-query-on-error' && r.stdin?.includes(`MASTER_PASSWORD=${sqlString(REPL_PW)}`)), 'the replication password goes on stdin');

  srv.converge();
  const second = await runFake(playbook, {handler: srv.handler, hostVars});
  t.deepEqual(second.results().map((r) => r.status), ['ok', 'ok', 'ok']);
  t.is(second.transports.get('h1')!.execs.length, 1, 'one probe batch, nothing applied');

  writeFileSync(join(srv.dir, 'user'), 'user mysql_native_password differs 10.231.0.21\n');
  const check = await runFake(playbook, {handler: srv.handler, hostVars, check: true});
  t.deepEqual(check.results().map((r) => r.status), ['ok', 'changed', 'ok']);
  t.is(check.transports.get('h1')!.execs.length, 1, 'check mode sends only the probe batch');

  const before = srv.applied();
  const fix = await runFake(playbook, {handler: srv.handler, hostVars});
  t.deepEqual(fix.results().map((r) => r.status), ['ok', 'changed', 'ok']);
  t.is(srv.applied().slice(before.length), `ALTER USER 'app'@'10.231.0.21' IDENTIFIED WITH mysql_native_password AS '${HASH}';\n--\n`);

  // Every rendered output: plain lines (-vv, diffs) and JSON events. Nothing needed masking either.
  for (const run of [first, second, check, fix]) {
    let plain = '';
    let json = '';
    // No secrets given to the writers: the events must already be clean.
    const p = plainWriter((s) => (plain += s), {verbose: 2, color: false, secrets: new Secrets()});
    const j = jsonWriter((s) => (json += s), new Secrets());
    for (const e of run.events) {
      p(e);
      j(e);
    }
    for (const out of [plain, json]) {
      for (const s of [PW, REPL_PW, HASH]) t.false(out.includes(s), `${s} in output:\n${out}`);
    }
    t.false(json.includes('***'), 'nothing even needed masking');
  }
  rmSync(srv.dir, {recursive: true});
});

test('engine: a failing SQL step reports the client error, masked, without the SQL', async (t) => {
  const srv = fakeServer();
  writeFileSync(join(srv.dir, 'mysql'), `#!/bin/sh\nsql=$(cat)\ncase "$sql" in *CHANGE*) echo "ERROR 1198 (HY000) at line 1: This operation cannot be performed as you have a running slave ''; run STOP SLAVE first" >&2; exit 1;; esac\necho '@none'\n`);
  const run = await runFake(definePlaybook({name: 'db', plays: [{name: 'db', hosts: 'all_hosts', gatherFacts: false, tasks: [
    mysqlReplica({primaryHost: '10.231.0.31', user: 'repl', password: secret(REPL_PW)}),
  ]}]}), {handler: srv.handler});
  const r = run.results()[0]!;
  t.is(r.status, 'failed');
  t.regex(r.msg, /^mysql --batch --loose-skip-print-query-on-error: ERROR 1198/);
  t.false(JSON.stringify(r).includes(REPL_PW));
  t.false(JSON.stringify(r).includes('MASTER_PASSWORD'));
  rmSync(srv.dir, {recursive: true});
});
