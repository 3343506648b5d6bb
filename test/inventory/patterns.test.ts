/**
 * Host patterns. The expected lists are what `ansible PATTERN -i hosts.yml --list-hosts` prints
 * (ansible-core 2.14) for the fixture `patterns/hosts.yml`.
 */
import test from 'ava';
import {join} from 'node:path';
import {UserError} from '../../src/core/errors.ts';
import {loadInventory, selectHosts, splitHostPattern} from '../../src/inventory/index.ts';

const dir = join(import.meta.dirname, '..', 'fixtures', 'inventory', 'patterns');
const inv = await loadInventory(join(dir, 'hosts.yml'));

const table: [string, string[]][] = [
  ['all', ['solo', 'web1', 'web2', 'web3', 'db1', 'web10']],
  ['*', ['solo', 'web1', 'web2', 'web3', 'db1', 'web10']],
  ['web', ['web1', 'web2', 'web3']],
  ['web*', ['web1', 'web2', 'web3', 'web10']],
  ['web:db', ['web1', 'web2', 'web3', 'db1']],
  ['web,db', ['web1', 'web2', 'web3', 'db1']],
  ['web, db', ['web1', 'web2', 'web3', 'db1']],
  ['db:web', ['db1', 'web2', 'web1', 'web3']],
  ['web:&staging', ['web3']],
  ['web:!staging', ['web1', 'web2']],
  ['all:!web', ['solo', 'db1', 'web10']],
  ['!web', ['solo', 'db1', 'web10']],
  ['&staging', ['web3', 'db1']],
  ['~web\\d$', ['web1', 'web2', 'web3']],
  ['~web', ['web1', 'web2', 'web3', 'web10']],
  ['web[0]', ['web1']],
  ['web[-1]', ['web3']],
  ['web[1:]', ['web2', 'web3']],
  ['web[0:1]', ['web1', 'web2']],
  ['web?', ['web1', 'web2', 'web3']],
  ['web1:db1', ['web1', 'db1']],
  ['db1:web', ['db1', 'web1', 'web2', 'web3']],
  ['nothing', []],
  ['web:nothing', ['web1', 'web2', 'web3']],
  ['w*:&db', ['web2']],
  ['ungrouped', ['solo']],
  ['web[1:2]:!web2', ['web3']],
  ['w[e]b1', ['web1']],
  ['web[9]', []],
];

for (const [pattern, want] of table) {
  test(`pattern ${JSON.stringify(pattern)}`, (t) => {
    t.deepEqual(selectHosts(inv, pattern), want);
  });
}

test('@file reads one pattern a line, relative to baseDir', (t) => {
  t.deepEqual(selectHosts(inv, '@site.retry', dir), ['db1', 'web1']);
  t.deepEqual(selectHosts(inv, `@${join(dir, 'site.retry')}:!web`), ['db1']);
});

test('a missing @file is a user error', (t) => {
  const err = t.throws(() => selectHosts(inv, '@missing.retry', dir), {instanceOf: UserError});
  t.regex(err!.message, /missing\.retry/);
});

test('globs read sets as fnmatch does: a range out of order matches nothing (found by fuzzing: was an internal error)', (t) => {
  t.deepEqual(selectHosts(inv, 'web[a-:]'), []);
  t.deepEqual(selectHosts(inv, 'web[!a-:]'), ['web1', 'web2', 'web3']);
  t.deepEqual(selectHosts(inv, 'web[3-1x2]'), ['web2']);
  t.deepEqual(selectHosts(inv, 'web[1-2]*'), ['web1', 'web2', 'web10']);
});

test('an invalid regex is a user error', (t) => {
  t.throws(() => selectHosts(inv, '~web('), {instanceOf: UserError});
});

test('split: commas, colons, and addresses that contain colons', (t) => {
  t.deepEqual(splitHostPattern('a,b[1], c[2:3] , d'), ['a', 'b[1]', 'c[2:3]', 'd']);
  t.deepEqual(splitHostPattern('web:&db:!web2'), ['web', '&db', '!web2']);
  t.deepEqual(splitHostPattern('web[1:3]'), ['web[1:3]']);
  t.deepEqual(splitHostPattern('host1:2222'), ['host1:2222']);
  t.deepEqual(splitHostPattern('fe80::1'), ['fe80::1']);
});

test('groupsOf and groupHosts', (t) => {
  t.deepEqual(inv.groupsOf('web2'), ['db', 'web']);
  t.deepEqual(inv.groupsOf('solo'), ['ungrouped']);
  t.deepEqual(inv.groupHosts('all'), ['solo', 'web1', 'web2', 'web3', 'db1', 'web10']);
  t.deepEqual(inv.hostNames, ['solo', 'web1', 'web2', 'web3', 'db1', 'web10']);
});
