/** Ranges, INI values and the Inventory API on the fixtures. */
import test from 'ava';
import {join} from 'node:path';
import {expandHostEntry, loadInventory} from '../../src/inventory/index.ts';
import {parseIniValue, shlexSplit} from '../../src/inventory/pyvalue.ts';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'inventory');

const ranges: [string, string[], number?][] = [
  ['web[01:03]', ['web01', 'web02', 'web03']],
  ['web[1:3]', ['web1', 'web2', 'web3']],
  ['db-[a:c]', ['db-a', 'db-b', 'db-c']],
  ['db-[a:e:2]', ['db-a', 'db-c', 'db-e']],
  ['n[1:12:3]', ['n1', 'n4', 'n7', 'n10']],
  ['n[01:12:5].lan', ['n01.lan', 'n06.lan', 'n11.lan']],
  ['r[1:2]-[a:b]', ['r1-a', 'r1-b', 'r2-a', 'r2-b']],
  ['x[:2]', ['x0', 'x1', 'x2']],
  ['plain', ['plain']],
  ['host:2222', ['host'], 2222],
  ['web[1:2]:22', ['web1', 'web2'], 22],
  ['10.0.0.[1:2]', ['10.0.0.1', '10.0.0.2']],
  ['[fe80::1]:22', ['fe80::1'], 22],
];

for (const [entry, hosts, port] of ranges) {
  test(`range ${entry}`, (t) => {
    t.deepEqual(expandHostEntry(entry), port === undefined ? {hosts} : {hosts, port});
  });
}

test('INI values are Python literals or text', (t) => {
  t.is(parseIniValue('1'), 1);
  t.is(parseIniValue('-1.5'), -1.5);
  t.is(parseIniValue('0x1f'), 31);
  t.is(parseIniValue('0777'), '0777');
  t.is(parseIniValue('True'), true);
  t.is(parseIniValue('None'), null);
  t.is(parseIniValue('yes'), 'yes');
  t.is(parseIniValue("'quoted'"), 'quoted');
  t.is(parseIniValue('"a\\tb"'), 'a\tb');
  t.deepEqual(parseIniValue("[1, 'two', (3,)]"), [1, 'two', [3]]);
  t.deepEqual(parseIniValue("{'a': {'b': False}}"), {a: {b: false}});
  t.is(parseIniValue('some words'), 'some words');
  t.is(parseIniValue('[1, 2'), '[1, 2');
});

test('INI host lines split like shlex', (t) => {
  t.deepEqual(shlexSplit(`web1 a="x y" b='q' c=1 # comment`), ['web1', 'a=x y', 'b=q', 'c=1']);
  t.deepEqual(shlexSplit(`h a=x\\ y b="say \\"hi\\""`), ['h', 'a=x y', 'b=say "hi"']);
  t.throws(() => shlexSplit('h a="open'));
});

test('hostVars follows Ansible precedence', async (t) => {
  const inv = await loadInventory(join(fixtures, 'yaml', 'site.yml'));
  const web01 = inv.hostVars('web01');
  // same depth: prio_low has the higher ansible_group_priority, so it wins over prio_high
  t.is(web01.tie, 'low-but-higher-priority');
  // group_vars/web.yaml beats inline vars; the second mention of web merged its vars
  t.is(web01.level, 'web-file');
  t.is(web01.role, 'frontend-override');
  // host_vars/ (file without extension) beats inline host vars
  t.is(inv.hostVars('db-a').level, 'host-file');
  // files in a directory merge in sorted order, nested directories included
  t.deepEqual(inv.hostVars('db-b').shared, {from: 'dbs-json'});
  t.is(inv.hostVars('web02').order, 'b');
  // YAML 1.1 as PyYAML: yes is a boolean, y is a string
  t.is(inv.hostVars('web02').stage, true);
  t.is(inv.hostVars('web02').flag, 'y');
  t.is(inv.hostVars('proxy.example.test').ansible_port, 2222);
  t.is(inv.groups.get('prio_low')!.priority, 3);
  t.false('ansible_group_priority' in inv.groups.get('prio_low')!.vars);
});

test('groupsOf is Ansible group_names', async (t) => {
  const inv = await loadInventory(join(fixtures, 'yaml', 'site.yml'));
  t.deepEqual(inv.groupsOf('web02'), ['staging', 'web']);
  t.deepEqual(inv.groupsOf('db-b'), ['db_replicas', 'dbs']);
  t.deepEqual(inv.groupsOf('solo'), ['ungrouped']);
  t.deepEqual(inv.groupHosts('dbs'), ['db-a', 'db-b', 'db-d', 'db-f', 'shard0', 'shard4', 'shard8', 'shard12']);
  t.deepEqual(inv.groups.get('web')!.hosts.slice(-2), ['proxy.example.test', 'web04']);
  t.true(inv.source.endsWith('/yaml/site.yml'));
});

test('INI precedence: a higher group priority wins at the same depth', async (t) => {
  const inv = await loadInventory(join(fixtures, 'ini', 'hosts.ini'));
  t.is(inv.hostVars('web1').role, 'database');
  t.is(inv.hostVars('web4').role, 'frontend');
  t.is(inv.hostVars('web1').weight, 2);
  t.deepEqual(inv.groupsOf('web1'), ['datacenter', 'dbs', 'web']);
});
