/**
 * The database roles (primary, replicas) from variables or groups, GTID positions compared, the
 * choice of the replica to promote, and the playbooks' checks: pure functions, tables in and out.
 */
import test from 'ava';
import {Secret} from '../../src/core/secret.ts';
import type {TaskContext, Vars} from '../../src/core/types.ts';
import {compareGtid, dbRolesFile, dbTopology, mostAdvanced, parseGtidPos, promotionVerdict} from '../../roles/database/topology.ts';
import {catchUpScript, dbRolesPath, gtidArg, parseKv, preflightProblem, switchFacts} from '../../roles/database/switch.ts';
import {primaryHost, replicaHosts} from '../../roles/app/index.ts';

const addr: Record<string, string> = {web1: '10.231.0.21', web2: '10.231.0.22', db1: '10.231.0.31', db2: '10.231.0.32', db3: '10.231.0.33'};
const lab = {databases: ['db1', 'db2'], db_primary: ['db1'], db_replicas: ['db2'], webservers: ['web1', 'web2']};

function ctx(vars: Vars = {}, groups: Record<string, string[]> = lab, host = 'web1'): TaskContext {
  return {
    host,
    vars,
    facts: {} as TaskContext['facts'],
    groups,
    groupNames: Object.entries(groups).filter(([, m]) => m.includes(host)).map(([g]) => g),
    hostvars: (h) => ({ansible_host: addr[h], results: {}}),
    results: {},
    check: false,
    render: () => '',
    readFile: () => Buffer.alloc(0),
    secret: (v) => new Secret(v),
  };
}

test('topology: the groups when no variable is set; the variables (db_roles.yml) when they are', (t) => {
  t.deepEqual(dbTopology(ctx()), {primary: 'db1', replicas: ['db2']});
  t.deepEqual(dbTopology(ctx({db_primary_host_name: 'db2', db_replica_names: ['db1']})), {primary: 'db2', replicas: ['db1']});
  // Only the primary named: every other database host is a replica.
  t.deepEqual(dbTopology(ctx({db_primary_host_name: 'db2'})), {primary: 'db2', replicas: ['db1']});
  t.deepEqual(dbTopology(ctx({db_primary_host_name: 'db2', db_replica_names: 'db1, db3'}, {...lab, db_replicas: ['db2', 'db3']})), {primary: 'db2', replicas: ['db1', 'db3']});
  // Other group names (the database role's mysql_primary_group / mysql_replica_group).
  t.deepEqual(dbTopology(ctx({mysql_primary_group: 'p', mysql_replica_group: 'r'}, {p: ['a'], r: ['b', 'c']})), {primary: 'a', replicas: ['b', 'c']});
});

test('topology: a name that is not a database host, or the primary named a replica, is one clear error', (t) => {
  t.throws(() => dbTopology(ctx({db_primary_host_name: 'web1'})), {message: /db_primary_host_name 'web1' is not a database host \(groups db_primary, db_replicas: db1, db2\)/});
  t.throws(() => dbTopology(ctx({db_primary_host_name: 'db2', db_replica_names: ['db2']})), {message: /names the primary db2/});
  t.throws(() => dbTopology(ctx({db_primary_host_name: 'db2', db_replica_names: ['nope']})), {message: /'nope' is not a database host/});
  t.throws(() => dbTopology(ctx({}, {webservers: ['web1']})), {message: /group db_primary has no host/});
});

test('the app writes to the topology\'s primary and reads from its replicas; explicit addresses still win', (t) => {
  t.is(primaryHost(ctx()), '10.231.0.31');
  t.deepEqual(replicaHosts(ctx()), ['10.231.0.32']);
  const swapped = ctx({db_primary_host_name: 'db2', db_replica_names: ['db1']});
  t.is(primaryHost(swapped), '10.231.0.32');
  t.deepEqual(replicaHosts(swapped), ['10.231.0.31']);
  t.is(primaryHost(ctx({db_primary_host: '192.0.2.1'})), '192.0.2.1');
  t.deepEqual(replicaHosts(ctx({db_replica_hosts: '192.0.2.2,192.0.2.3'})), ['192.0.2.2', '192.0.2.3']);
});

test('GTID positions: parsed per domain, the highest sequence kept; anything else refused', (t) => {
  t.deepEqual([...parseGtidPos('0-1-100,1-2-5').values()], [{domain: 0, server: 1, seq: 100}, {domain: 1, server: 2, seq: 5}]);
  t.deepEqual([...parseGtidPos('0-1-7, 0-2-9').values()], [{domain: 0, server: 2, seq: 9}]);
  t.is(parseGtidPos('').size, 0);
  for (const bad of ["0-1-1'; DROP TABLE x", '0-1', 'abc']) t.throws(() => parseGtidPos(bad), {message: /not a GTID position/});
});

test('GTID comparison: equal, ahead, behind, diverged', (t) => {
  const table: [string, string, ReturnType<typeof compareGtid>][] = [
    ['0-1-100', '0-1-100', 'equal'],
    ['0-1-101', '0-1-100', 'ahead'],
    ['0-1-99', '0-1-100', 'behind'],
    // A promoted server writes under its own server id: the sequence still orders the domain.
    ['0-2-101', '0-1-100', 'ahead'],
    ['', '0-1-1', 'behind'],
    ['', '', 'equal'],
    ['0-1-100,1-1-5', '0-1-100', 'ahead'],
    ['0-1-101,1-1-4', '0-1-100,1-1-5', 'diverged'],
  ];
  for (const [a, b, want] of table) t.is(compareGtid(a, b), want, `${a} vs ${b}`);
});

test('the most advanced replicas: those no other one is ahead of', (t) => {
  t.deepEqual(mostAdvanced([{host: 'db2', pos: '0-1-100'}, {host: 'db3', pos: '0-1-98'}]), ['db2']);
  t.deepEqual(mostAdvanced([{host: 'db2', pos: '0-1-100'}, {host: 'db3', pos: '0-1-100'}]), ['db2', 'db3']);
  t.deepEqual(mostAdvanced([{host: 'db2', pos: '0-1-100,1-1-1'}, {host: 'db3', pos: '0-1-99,1-1-2'}]), ['db2', 'db3'], 'diverged: neither is ahead');
  t.deepEqual(mostAdvanced([]), []);
});

test('promotion: the most advanced reachable replica only, unless forced', (t) => {
  t.like(promotionVerdict('db2', [{host: 'db2', pos: '0-1-100'}]), {kind: 'ok', reason: 'db2 at 0-1-100 (the only reachable replica)'});
  t.like(promotionVerdict('db2', [{host: 'db2', pos: '0-1-100'}, {host: 'db3', pos: '0-1-100'}]), {kind: 'ok'});
  t.like(promotionVerdict('db2', [{host: 'db2', pos: '0-1-100'}, {host: 'db3', pos: '0-1-90'}]), {kind: 'ok'});
  const behind = promotionVerdict('db3', [{host: 'db2', pos: '0-1-100'}, {host: 'db3', pos: '0-1-90'}]);
  t.is(behind.kind, 'refused');
  t.regex(behind.reason, /db2 \(0-1-100\) is ahead of db3 \(0-1-90\): promote db2, or -e force=true/);
  t.like(promotionVerdict('db3', [{host: 'db2', pos: '0-1-100'}, {host: 'db3', pos: '0-1-90'}], true), {kind: 'ok'});
  t.regex(promotionVerdict('db3', [{host: 'db2', pos: '0-1-100'}, {host: 'db3', pos: '0-1-90'}], true).reason, /^forced: /);
  t.regex(promotionVerdict('db2', [{host: 'db2', pos: '0-1-100,1-1-1'}, {host: 'db3', pos: '0-1-99,1-1-2'}]).reason, /diverged from db2/);
  t.like(promotionVerdict('db9', [{host: 'db2', pos: '0-1-1'}]), {kind: 'refused', best: ['db2']});
});

test('playbook checks: new_primary missing, not a database host, or an address override set: one line each', (t) => {
  t.regex(preflightProblem(ctx(), 'db-switchover') ?? '', /^db-switchover: give the new primary: -e new_primary=NAME \(one of db1, db2\)$/);
  t.regex(preflightProblem(ctx({new_primary: 'web1'}), 'db-failover') ?? '', /new_primary 'web1' is not a database host \(db1, db2/);
  t.regex(preflightProblem(ctx({new_primary: 'db2', db_primary_host: '10.0.0.1'}), 'db-failover') ?? '', /db_primary_host is set/);
  t.regex(preflightProblem(ctx({new_primary: 'db2', mysql_flavor: 'mysql'}), 'db-failover') ?? '', /MariaDB only/);
  t.is(preflightProblem(ctx({new_primary: 'db2'}), 'db-switchover'), undefined);
});

test('the roles before and after a switch, and their record', (t) => {
  t.deepEqual(switchFacts(ctx({new_primary: 'db2'})), {db_switch_from: 'db1', db_switch_to: 'db2', db_switch_needed: true, db_primary_host_name: 'db2', db_replica_names: ['db1']});
  // Back again, from the recorded roles.
  t.like(switchFacts(ctx({new_primary: 'db1', db_primary_host_name: 'db2', db_replica_names: ['db1']})), {db_switch_from: 'db2', db_switch_needed: true, db_replica_names: ['db2']});
  t.like(switchFacts(ctx({new_primary: 'db1'})), {db_switch_needed: false});
  const file = dbRolesFile({primary: 'db2', replicas: ['db1']}, 'db1 → db2');
  t.regex(file, /^db_primary_host_name: db2$/m);
  t.regex(file, /^db_replica_names: \[db1\]$/m);
});

test('db_roles.yml goes beside the inventory given with -i', (t) => {
  const c = ctx();
  t.regex(dbRolesPath(c, ['node', 'provision', 'run', 'db-failover', '-i', 'inventory/lab.yml']), /\/inventory\/group_vars\/all\/db_roles\.yml$/);
  t.regex(dbRolesPath(c, ['node', 'provision', 'run', 'x', '--inventory=/srv/infra/prod/hosts.yml']), /^\/srv\/infra\/prod\/group_vars\/all\/db_roles\.yml$/);
  t.is(dbRolesPath(ctx({db_roles_file: '/tmp/roles.yml'}), []), '/tmp/roles.yml');
});

test('SQL arguments: a GTID position is checked before it is put in SQL', (t) => {
  t.is(gtidArg('0-1-5\n'), '0-1-5');
  t.is(gtidArg(''), '');
  t.throws(() => gtidArg("0-1-5'); DROP DATABASE app; --"));
  t.regex(catchUpScript('0-1-5', 30), /MASTER_GTID_WAIT\('0-1-5', 30\)/);
  t.deepEqual(parseKv('pos=0-1-5\nread_only=1\nreplica=yes\nold_primary_answers=no\n'), {pos: '0-1-5', read_only: '1', replica: 'yes', old_primary_answers: 'no'});
});
