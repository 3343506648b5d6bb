/**
 * The db-switchover and db-failover playbooks on fake database hosts: the engine runs them for real
 * against a fake `mysql` (a shell script keeping each host's replication state in files), so the
 * order of the SQL steps across hosts, the checks that stop a run, and the roles recorded are tested
 * without a lab. The web servers are left out (their part is the app role's drained restart, which
 * test/e2e/db.test.ts runs in the lab).
 */
import test from 'ava';
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {createServer, type AddressInfo} from 'node:net';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import type {RunEvent} from '../../src/core/events.ts';
import {runPlaybook} from '../../src/core/engine.ts';
import {Secrets} from '../../src/core/secret.ts';
import type {Playbook, Vars} from '../../src/core/types.ts';
import {FakeTransport, localExec} from '../../src/transport/fake.ts';
import {LocalTransport} from '../../src/transport/local.ts';
import {readRoleFileContent, renderTemplate} from '../../src/templates/render.ts';
import {fakeInventory} from '../helpers/engine.ts';
import switchover from '../../playbooks/db-switchover.ts';
import failoverPlaybook from '../../playbooks/db-failover.ts';

/** The promotion only (its first play): the app's re-pointing writes /etc/app, the lab's part. */
const failover: Playbook = {...failoverPlaybook, plays: failoverPlaybook.plays.slice(0, 1)};

// Loopback addresses: the controller's reachability probe (TCP to ansible_port) reaches the listener below.
const addr: Record<string, string> = {db1: '127.0.0.31', db2: '127.0.0.32', db3: '127.0.0.33'};

/** What answers the controller's probe of a replica's SSH port (any 127.x address, this port). */
let sshPort = 0;
const listener = createServer((s) => s.destroy());
test.before(async () => {
  await new Promise<void>((resolve) => listener.listen(0, '0.0.0.0', resolve));
  sshPort = (listener.address() as AddressInfo).port;
});
test.after.always(() => { listener.close(); });

/** A fake mysql: state per host under $FAKE_STATE/$FAKE_HOST (ro, pos, slave in SHOW SLAVE STATUS\G form), every statement logged. */
const fakeMysql = `#!/bin/sh
d="$FAKE_STATE/$FAKE_HOST"
sql=""
while [ $# -gt 0 ]; do case "$1" in -e) sql="$2"; shift 2;; *) shift;; esac; done
[ -n "$sql" ] || sql=$(cat)
printf '%s\\n' "$sql" >> "$d/log"
case "$sql" in
  *"SET GLOBAL read_only = ON; SELECT @@global.gtid_binlog_pos"*) echo 1 > "$d/ro"; cat "$d/pos";;
  *"MASTER_GTID_WAIT"*) cat "$d/wait" 2>/dev/null || echo 0;;
  *"STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF"*) rm -f "$d/slave"; echo 0 > "$d/ro";;
  *"SET GLOBAL gtid_slave_pos"*) echo 1 > "$d/ro";;
  *"SET GLOBAL read_only = OFF"*) echo 0 > "$d/ro";;
  *"CHANGE MASTER TO"*)
    h=$(printf '%s' "$sql" | sed -n -E "s/.*MASTER_HOST='([^']*)'.*/\\1/p")
    printf 'Master_Host: %s\\nMaster_User: repl\\nMaster_Port: 3306\\nConnect_Retry: 5\\nSlave_IO_Running: Yes\\nSlave_SQL_Running: Yes\\nUsing_Gtid: Slave_Pos\\nLast_IO_Errno: 0\\nLast_IO_Error: \\nLast_SQL_Errno: 0\\nLast_SQL_Error: \\nSeconds_Behind_Master: 0\\nGtid_IO_Pos: %s\\n' "$h" "$(cat "$d/pos")" > "$d/slave";;
  *"SHOW SLAVE STATUS\\\\G"*) cat "$d/slave" 2>/dev/null;;
  *"SHOW SLAVE STATUS"*) [ -f "$d/slave" ] && echo "row";;
  *"@@global.read_only"*) cat "$d/ro";;
  *"gtid_current_pos"*|*"gtid_slave_pos"*|*"gtid_binlog_pos"*) cat "$d/pos";;
  *"mysql.user"*) echo 1;;
esac
exit 0
`;

interface Lab {state: string; bin: string; rolesFile: string}

function lab(hosts: Record<string, {ro: 0 | 1; pos: string; replicaOf?: string; wait?: string}>): Lab {
  const root = mkdtempSync(join(tmpdir(), 'prov-dbpb-'));
  const state = join(root, 'state');
  const bin = join(root, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'mysql'), fakeMysql);
  // Every TCP probe (bash /dev/tcp under timeout) answers "reachable", except to $FAKE_DOWN addresses.
  writeFileSync(join(bin, 'timeout'), '#!/bin/sh\nfor a in $FAKE_DOWN; do case "$*" in *"/$a/"*) exit 1;; esac; done\nexit 0\n');
  for (const f of ['mysql', 'timeout']) chmodSync(join(bin, f), 0o755);
  for (const [h, s] of Object.entries(hosts)) {
    mkdirSync(join(state, h), {recursive: true});
    writeFileSync(join(state, h, 'ro'), `${s.ro}\n`);
    writeFileSync(join(state, h, 'pos'), `${s.pos}\n`);
    writeFileSync(join(state, h, 'log'), '');
    if (s.wait) writeFileSync(join(state, h, 'wait'), `${s.wait}\n`);
    if (s.replicaOf) {
      writeFileSync(join(state, h, 'slave'), `Master_Host: ${s.replicaOf}\nMaster_User: repl\nMaster_Port: 3306\nConnect_Retry: 5\nSlave_IO_Running: Yes\nSlave_SQL_Running: Yes\nUsing_Gtid: Slave_Pos\nLast_IO_Errno: 0\nLast_IO_Error: \nLast_SQL_Errno: 0\nLast_SQL_Error: \nSeconds_Behind_Master: 0\nGtid_IO_Pos: ${s.pos}\n`);
    }
  }
  return {state, bin, rolesFile: join(root, 'inventory', 'group_vars', 'all', 'db_roles.yml')};
}

async function run(pb: Playbook, l: Lab, extraVars: Vars, opts: {down?: string[]; groups?: Record<string, string[]>; sshClosed?: string[]} = {}): Promise<{events: RunEvent[]; code: boolean; sql: (h: string) => string[]}> {
  const groups = opts.groups ?? {databases: ['db1', 'db2'], db_primary: ['db1'], db_replicas: ['db2'], webservers: []};
  const names = [...new Set(Object.values(groups).flat())];
  const hostVars = Object.fromEntries(names.map((h) => [h, {provision_lock: false, provision_audit_log: false, ansible_host: addr[h] ?? h, ansible_port: opts.sshClosed?.includes(h) ? 1 : sshPort, mysql_replication_password: 'pw-replication'}]));
  const inv = fakeInventory(groups, hostVars);
  const events: RunEvent[] = [];
  const summary = await runPlaybook(pb, {check: false, diff: false, forks: 10, extraVars: {db_roles_file: l.rolesFile, ...extraVars}}, {
    inventory: inv,
    select: inv.select,
    connect: async (host) => {
      if (opts.down?.includes(host)) {
        const {UnreachableError} = await import('../../src/transport/types.ts');
        throw new UnreachableError(host, `${host}: connect EHOSTUNREACH`);
      }
      return new FakeTransport(host, (command, stdin) =>
        localExec(`PATH='${l.bin}':$PATH FAKE_STATE='${l.state}' FAKE_HOST='${host}' FAKE_DOWN='${(opts.down ?? []).map((h) => addr[h]).join(' ')}'\nexport PATH FAKE_STATE FAKE_HOST FAKE_DOWN\n${command}`, stdin === undefined ? {} : {stdin}));
    },
    loadRole: async (name) => { throw new Error(`no role ${name}`); },
    render: renderTemplate,
    readFile: readRoleFileContent,
    emit: (e) => events.push(e),
    local: () => new LocalTransport(),
    secrets: new Secrets(),
  });
  const failed = events.filter((e) => e.type === 'result' && (e.status === 'failed' || e.status === 'unreachable'));
  void summary;
  return {
    events,
    code: failed.length === 0,
    sql: (h) => readFileSync(join(l.state, h, 'log'), 'utf8').split('\n').filter((s) => /^(SET|STOP|CHANGE|START|SELECT MASTER_GTID_WAIT)/.test(s.trim())).map((s) => s.trim().replace(/MASTER_PASSWORD='[^']*'/, "MASTER_PASSWORD='***'")),
  };
}

const failures = (events: RunEvent[]): string => events.filter((e) => e.type === 'result' && e.status === 'failed').map((e) => e.type === 'result' ? `${e.host} ${e.task}: ${e.msg}` : '').join('\n');
const state = (l: Lab, h: string, f: string): string => (existsSync(join(l.state, h, f)) ? readFileSync(join(l.state, h, f), 'utf8').trim() : '');

test('switchover: the old primary stops writes, the new one catches up and is promoted, the old one replicates from it; the roles are recorded', async (t) => {
  const l = lab({db1: {ro: 0, pos: '0-1-100'}, db2: {ro: 1, pos: '0-1-100', replicaOf: addr.db1!}});
  const r = await run(switchover, l, {new_primary: 'db2'});
  t.true(r.code, failures(r.events));
  t.deepEqual(r.sql('db1'), [
    'SET GLOBAL read_only = ON; SELECT @@global.gtid_binlog_pos',
    'SET GLOBAL read_only = ON; SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos',
    `CHANGE MASTER TO MASTER_HOST='${addr.db2}', MASTER_PORT=3306, MASTER_USER='repl', MASTER_PASSWORD='***', MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=5;`,
    'START SLAVE;',
  ]);
  t.deepEqual(r.sql('db2'), ["SELECT MASTER_GTID_WAIT('0-1-100', 30)", 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF']);
  t.is(state(l, 'db1', 'ro'), '1');
  t.is(state(l, 'db2', 'ro'), '0');
  t.regex(state(l, 'db1', 'slave'), new RegExp(`Master_Host: ${addr.db2}`));
  t.is(state(l, 'db2', 'slave'), '');
  const roles = readFileSync(l.rolesFile, 'utf8');
  t.regex(roles, /^db_primary_host_name: db2$/m);
  t.regex(roles, /^db_replica_names: \[db1\]$/m);
  t.false(JSON.stringify(r.events).includes('pw-replication'), 'the replication password is masked');

  // Again, with the recorded roles: nothing to do.
  const again = await run(switchover, l, {new_primary: 'db2', db_primary_host_name: 'db2', db_replica_names: ['db1']});
  t.true(again.code, failures(again.events));
  t.is(again.events.filter((e) => e.type === 'result' && e.status === 'changed').length, 0);
});

test('switchover: new_primary missing or not a database host stops the run before any SQL', async (t) => {
  for (const [vars, msg] of [[{}, /give the new primary/], [{new_primary: 'web9'}, /'web9' is not a database host/]] as const) {
    const l = lab({db1: {ro: 0, pos: '0-1-5'}, db2: {ro: 1, pos: '0-1-5', replicaOf: addr.db1!}});
    const r = await run(switchover, l, vars);
    t.false(r.code);
    t.regex(failures(r.events), msg);
    t.deepEqual([...r.sql('db1'), ...r.sql('db2')], []);
    t.false(existsSync(l.rolesFile));
  }
});

test('switchover: a new primary that is not replicating from the primary stops the run before any change', async (t) => {
  const l = lab({db1: {ro: 0, pos: '0-1-5'}, db2: {ro: 1, pos: '0-1-5'}});
  const r = await run(switchover, l, {new_primary: 'db2'});
  t.false(r.code);
  t.regex(failures(r.events), /not a replica: nothing to switch over to/);
  t.is(state(l, 'db1', 'ro'), '0', 'the primary still takes writes');
});

test('switchover: not caught up in time, the old primary takes writes again and the run stops before the promotion', async (t) => {
  const l = lab({db1: {ro: 0, pos: '0-1-100'}, db2: {ro: 1, pos: '0-1-90', replicaOf: addr.db1!, wait: '-1'}});
  const r = await run(switchover, l, {new_primary: 'db2'});
  t.false(r.code);
  t.regex(failures(r.events), /switchover stopped before the promotion/);
  t.is(state(l, 'db1', 'ro'), '0', 'db1 writable again');
  t.regex(state(l, 'db2', 'slave'), /Master_Host/, 'db2 still a replica');
  t.false(existsSync(l.rolesFile));
});

test('failover: the old primary is never contacted; the most advanced replica is promoted, the others follow it', async (t) => {
  const groups = {databases: ['db1', 'db2', 'db3'], db_primary: ['db1'], db_replicas: ['db2', 'db3'], webservers: ['web1']};
  const l = lab({db2: {ro: 1, pos: '0-1-100', replicaOf: addr.db1!}, db3: {ro: 1, pos: '0-1-98', replicaOf: addr.db1!}, web1: {ro: 1, pos: ''}});
  const r = await run(failover, l, {new_primary: 'db2'}, {down: ['db1'], groups});
  t.true(r.code, failures(r.events));
  t.is(state(l, 'db2', 'ro'), '0');
  t.is(state(l, 'db2', 'slave'), '');
  t.regex(state(l, 'db3', 'slave'), new RegExp(`Master_Host: ${addr.db2}`), 'db3 replicates from db2');
  t.regex(readFileSync(l.rolesFile, 'utf8'), /^db_primary_host_name: db2$/m);
  t.regex(readFileSync(l.rolesFile, 'utf8'), /^db_replica_names: \[db1, db3\]$/m);
  t.false(r.events.some((e) => e.type === 'result' && e.host === 'db1'), 'db1 is not a host of the run');
});

test('failover: a replica the controller cannot reach is left out of the comparison and of the re-pointing', async (t) => {
  const groups = {databases: ['db1', 'db2', 'db3'], db_primary: ['db1'], db_replicas: ['db2', 'db3'], webservers: ['web1']};
  const l = lab({db2: {ro: 1, pos: '0-1-98', replicaOf: addr.db1!}, db3: {ro: 1, pos: '0-1-100', replicaOf: addr.db1!}, web1: {ro: 1, pos: ''}});
  const r = await run(failover, l, {new_primary: 'db2'}, {down: ['db1', 'db3'], groups, sshClosed: ['db3']});
  t.true(r.code, failures(r.events));
  t.is(state(l, 'db2', 'ro'), '0');
  t.regex(state(l, 'db3', 'slave'), new RegExp(`Master_Host: ${addr.db1}`), 'db3 untouched');
});

test('failover: a replica behind another one is refused, unless forced', async (t) => {
  const groups = {databases: ['db1', 'db2', 'db3'], db_primary: ['db1'], db_replicas: ['db2', 'db3'], webservers: ['web1']};
  const setup = (): Lab => lab({db2: {ro: 1, pos: '0-1-100', replicaOf: addr.db1!}, db3: {ro: 1, pos: '0-1-98', replicaOf: addr.db1!}, web1: {ro: 1, pos: ''}});
  const l = setup();
  const r = await run(failover, l, {new_primary: 'db3'}, {down: ['db1'], groups});
  t.false(r.code);
  t.regex(failures(r.events), /refusing to promote db3: db2 \(0-1-100\) is ahead of db3 \(0-1-98\): promote db2/);
  t.is(state(l, 'db3', 'ro'), '1', 'nothing promoted');
  t.false(existsSync(l.rolesFile));
  const f = setup();
  const forced = await run(failover, f, {new_primary: 'db3', force: 'true'}, {down: ['db1'], groups});
  t.true(forced.code, failures(forced.events));
  t.is(state(f, 'db3', 'ro'), '0');
});

test('failover: refused while the old primary still answers on the database port', async (t) => {
  const groups = {databases: ['db1', 'db2'], db_primary: ['db1'], db_replicas: ['db2'], webservers: ['web1']};
  const l = lab({db2: {ro: 1, pos: '0-1-100', replicaOf: addr.db1!}, web1: {ro: 1, pos: ''}});
  const r = await run(failover, l, {new_primary: 'db2'}, {groups, down: []});
  t.false(r.code);
  t.regex(failures(r.events), /the primary db1 still answers on 127\.0\.0\.31:3306 from db2: use db-switchover/);
  t.is(state(l, 'db2', 'ro'), '1');
});
