import test from 'ava';
import {Secret} from '../../src/core/secret.ts';
import type {TaskContext, Vars} from '../../src/core/types.ts';
import role, {firewallRules} from '../../roles/firewall/index.ts';

/** The lab's shape: two LBs, two web servers, a primary and a replica, one monitoring host. */
const addr: Record<string, string> = {lb1: '10.231.0.11', lb2: '10.231.0.12', web1: '10.231.0.21', web2: '10.231.0.22', db1: '10.231.0.31', db2: '10.231.0.32', mon1: '10.231.0.41'};
const groups: Record<string, string[]> = {
  all: Object.keys(addr),
  loadbalancers: ['lb1', 'lb2'],
  webservers: ['web1', 'web2'],
  databases: ['db1', 'db2'],
  db_primary: ['db1'],
  db_replicas: ['db2'],
  monitoring: ['mon1'],
};
const groupNames = (h: string): string[] => Object.entries(groups).filter(([g, members]) => g !== 'all' && members.includes(h)).map(([g]) => g);

function ctx(host: string, extra: Vars = {}): TaskContext {
  return {
    host,
    vars: {...role.defaults, admin_network: '10.231.0.0/24', ...extra},
    facts: {} as TaskContext['facts'],
    groups,
    groupNames: groupNames(host),
    hostvars: (h) => ({ansible_host: addr[h], results: {}}),
    results: {},
    check: false,
    render: () => '',
    readFile: () => Buffer.alloc(0),
    secret: (v) => new Secret(v),
  };
}

/** `PORT/PROTO from SRC [to DST]` per rule, for readable tables. */
const show = (host: string, extra?: Vars): string[] =>
  firewallRules(ctx(host, extra)).map((r) => `${r.rule} ${r.port ?? ''}${r.proto ? `/${r.proto}` : ''} from ${r.from}${r.to && r.to !== 'any' ? ` to ${r.to}` : ''}`);

test('every host: SSH from the admin network first, then node_exporter from the monitoring host', (t) => {
  for (const h of ['lb1', 'web1', 'db1']) t.deepEqual(show(h).slice(0, 2), ['allow 22/tcp from 10.231.0.0/24', 'allow 9100/tcp from 10.231.0.41']);
  // mon1 scrapes itself over loopback (always allowed by ufw): no rule for itself.
  t.deepEqual(show('mon1'), ['allow 22/tcp from 10.231.0.0/24', 'allow 9090/tcp from 10.231.0.0/24']);
});

test('per group, from the inventory', (t) => {
  t.deepEqual(show('lb1').slice(2), [
    'allow 80/tcp from any',
    'allow 443/tcp from any',
    'allow /vrrp from 10.231.0.12 to 224.0.0.18',
    'allow 8888/tcp from 10.231.0.12',
    'allow 8404/tcp from 10.231.0.41',
  ]);
  t.deepEqual(show('lb2').slice(4, 5), ['allow /vrrp from 10.231.0.11 to 224.0.0.18']);
  t.deepEqual(show('web2').slice(2), ['allow 80/tcp from 10.231.0.11', 'allow 80/tcp from 10.231.0.12']);
  t.deepEqual(show('db1').slice(2), ['allow 3306/tcp from 10.231.0.21', 'allow 3306/tcp from 10.231.0.22', 'allow 3306/tcp from 10.231.0.32', 'allow 9104/tcp from 10.231.0.41']);
  // db2 takes MySQL from db1 too: after a switchover or failover db1 replicates from db2.
  t.deepEqual(show('db2').slice(2), ['allow 3306/tcp from 10.231.0.21', 'allow 3306/tcp from 10.231.0.22', 'allow 3306/tcp from 10.231.0.31', 'allow 9104/tcp from 10.231.0.41']);
});

test('comments carry the managed prefix, the group and the source', (t) => {
  t.deepEqual(firewallRules(ctx('web1')).map((r) => r.comment), [
    'provision: ssh from admin', 'provision: all node_exporter from mon1', 'provision: webservers http from lb1', 'provision: webservers http from lb2',
  ]);
});

test('variables: ports from other roles, unicast VRRP, a deployment\'s own lists, several admin networks', (t) => {
  t.true(show('lb1', {haproxy_stats_port: 9000}).includes('allow 9000/tcp from 10.231.0.41'));
  t.true(show('lb1', {keepalived_unicast: true}).includes('allow /vrrp from 10.231.0.12 to 10.231.0.11'));
  t.deepEqual(show('web1', {firewall_rules_webservers: [{port: 8080, proto: 'tcp', from: 'admin_network', comment: 'alt'}]}).slice(2), ['allow 8080/tcp from 10.231.0.0/24']);
  t.deepEqual(show('mon1', {admin_network: ['10.0.0.0/8', '192.168.1.0/24']}).slice(0, 2), ['allow 22/tcp from 10.0.0.0/8', 'allow 22/tcp from 192.168.1.0/24']);
});

test('refuses to build a firewall without admin_network, or with a bad rule list', (t) => {
  t.throws(() => firewallRules(ctx('web1', {admin_network: ''})), {message: /admin_network is not set/});
  t.throws(() => firewallRules(ctx('web1', {firewall_rules_webservers: {port: 80}})), {message: /must be a list/});
  t.throws(() => firewallRules(ctx('web1', {firewall_rules_webservers: [{port: 80, from: 'group:nope', comment: 'x'}]})), {message: /no group 'nope'/});
  t.throws(() => firewallRules(ctx('web1', {firewall_rules_webservers: [{port: 'no_such_port', from: 'any', comment: 'x'}]})), {message: /port variable 'no_such_port' is not set/});
});
