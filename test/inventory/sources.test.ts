/**
 * Several inventory sources (`-i A -i B`), a directory as a source, and executable inventory
 * scripts: `provision inventory --list` must equal `ansible-inventory --list` on the same sources.
 * The trees are written to a temporary folder by the tests (scripts need their executable bit).
 * Without ansible-inventory the differential tests are skipped, and their titles say why.
 */
import test from 'ava';
import {execFile} from 'node:child_process';
import {chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import {promisify} from 'node:util';
import {commandWorks, runCli} from '../helpers/cli.ts';
import {UserError} from '../../src/core/errors.ts';
import {inventoryGraph, loadInventories, loadInventory} from '../../src/inventory/index.ts';
import {ansibleInventoryEnv} from '../helpers/ansible.ts';

const exec = promisify(execFile);
const live = commandWorks('ansible-inventory', ['--version']);
const scratch = mkdtempSync(join(tmpdir(), 'provision-sources-'));
test.after.always(() => rmSync(scratch, {recursive: true, force: true}));
const env = ansibleInventoryEnv(scratch);

/** Writes `files` (path → text; a text starting with `#!` is made executable, unless its name has `noexec`) under a new folder. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(scratch, 'tree-'));
  for (const [path, text] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(dirname(full), {recursive: true});
    writeFileSync(full, text);
    if (text.startsWith('#!') && !path.includes('noexec')) chmodSync(full, 0o755);
  }
  return root;
}

/** An inventory script in POSIX sh: `--list` prints `list`, `--host H` prints `hosts[H]` (or `{}`). */
function script(list: unknown, hosts: Record<string, unknown> = {}): string {
  const cases = Object.entries(hosts).map(([h, v]) => `    ${h}) echo '${JSON.stringify(v)}';;\n`).join('');
  return `#!/bin/sh\ncase "$1" in\n  --list) echo '${JSON.stringify(list)}';;\n  --host)\n    case "$2" in\n${cases}    *) echo '{}';;\n    esac;;\nesac\n`;
}

async function ansibleList(args: string[], cwd: string): Promise<unknown> {
  const {stdout} = await exec('ansible-inventory', [...args, '--list'], {cwd, env: {...process.env, ...env}});
  return JSON.parse(stdout);
}

async function provisionList(args: string[], cwd: string): Promise<unknown> {
  const r = await runCli(['inventory', ...args, '--list'], {cwd});
  if (r.code !== 0) throw new Error(`provision inventory failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const two = tree({
  'one/hosts.yml': [
    'all:',
    '  vars: {site: one, only_one: 1}',
    '  children:',
    '    web:',
    '      hosts:',
    '        web1: {a: 1}',
    '        web2:',
    '      vars: {role: web-one}',
    '      children:',
    '        web_eu:',
    '          hosts:',
    '            web2:',
    '',
  ].join('\n'),
  'one/group_vars/web_eu.yml': 'tier: one-deep\n',
  'one/host_vars/web1.yml': 'hv: one\n',
  'two/hosts.ini': 'web2 color=blue\n[web]\nweb1 a=2\nweb3\n[db]\ndb1\n[web:vars]\nrole=web-two\n[all:vars]\nsite=two\n',
  'two/group_vars/web.yml': 'tier: two-shallow\n',
  'two/group_vars/all.yml': 'tier: two-all\nsite_gv: two\n',
  'two/host_vars/web1.yml': 'hv: two\n',
});

const dir = tree({
  'inv/01-base.yml': 'web:\n  hosts:\n    w1:\n    w2:\n  vars: {x: 1}\n',
  'inv/02-more.ini': '[db]\nd1 y=2\n[web:vars]\nx=3\n',
  'inv/03-cloud': script({web: {hosts: ['w3'], vars: {z: true}}, mon: ['m1'], all: {vars: {g: 1}}, _meta: {hostvars: {w3: {cloud: 'eu'}}}}),
  'inv/sub/04-sub.yml': 'lb:\n  hosts:\n    l1:\n',
  'inv/group_vars/web.yml': 'gv: web\n',
  'inv/host_vars/w1.yml': 'hv: 1\n',
  // what Ansible skips in an inventory directory: none of these parse
  'inv/README.md': 'not: [an inventory\n',
  'inv/site.retry': 'w9\n',
  'inv/old.orig': 'not: [an inventory\n',
  'inv/ansible.cfg': '[defaults\n',
  'inv/.hidden': 'not: [an inventory\n',
  'inv/backup~': 'not: [an inventory\n',
});

const scripts = tree({
  // no _meta: provision asks `--host H` for each host, as Ansible does
  'nometa.sh': script({app: {hosts: ['a1', 'a2'], children: ['app_eu']}, app_eu: {hosts: ['a3'], vars: {region: 'eu'}}}, {a1: {port_x: 8080}, a3: {deep: {k: [1, 2]}}}),
  'static.yml': 'app:\n  hosts:\n    a1: {from_yaml: 1}\n    a9:\n',
  'fails.sh': '#!/bin/sh\necho "Traceback (most recent call last):" >&2\necho "RuntimeError: cloud API unreachable" >&2\nexit 3\n',
  'notjson.sh': '#!/bin/sh\necho "hosts: [a1]"\n',
  'badhost.sh': '#!/bin/sh\ncase "$1" in --list) echo \'{"app": {"hosts": ["a1"]}}\';; *) echo "oops";; esac\n',
  'noexec.sh': '#!/bin/sh\necho "{}"\n',
});

const skipWhy = live ? '' : ' (skipped: ansible-inventory not installed)';
const differential = live ? test : test.skip;

const cases: Array<[string, string, string[]]> = [
  ['repeated -i: a YAML then an INI source', two, ['-i', 'one/hosts.yml', '-i', 'two/hosts.ini']],
  ['repeated -i: the same sources in the other order', two, ['-i', 'two/hosts.ini', '-i', 'one/hosts.yml']],
  ['-i DIR: sorted files, subfolders, a script, its group_vars/host_vars, ignored extensions', dir, ['-i', 'inv']],
  ['an inventory script without _meta (--host per host), then a YAML file', scripts, ['-i', 'nometa.sh', '-i', 'static.yml']],
  ['a directory and a file together', dir, ['-i', 'inv', '-i', 'inv/01-base.yml']],
];
for (const [title, cwd, args] of cases) {
  differential(`${title}: --list equals ansible-inventory's${skipWhy}`, async (t) => {
    t.deepEqual(await provisionList(args, cwd), await ansibleList(args, cwd));
  });
}

// What the differential tests check, stated without ansible (so they say something when it is missing).
test('later sources win; vars files apply source by source', async (t) => {
  const inv = await loadInventories([join(two, 'one/hosts.yml'), join(two, 'two/hosts.ini')]);
  t.deepEqual(inv.hostNames, ['web1', 'web2', 'web3', 'db1']); // `ansible all --list-hosts`'s order
  t.deepEqual(inv.sources, [join(two, 'one/hosts.yml'), join(two, 'two/hosts.ini')]);
  const web2 = inv.hostVars('web2');
  t.is(web2.site, 'two');
  t.is(web2.role, 'web-two');
  // two's group_vars/web (shallower) is read after one's group_vars/web_eu (deeper): Ansible's order
  t.is(web2.tier, 'two-shallow');
  t.is(inv.hostVars('web1').a, 2);
  t.is(inv.hostVars('web1').hv, 'two');
  t.deepEqual(inv.groupsOf('web2'), ['web', 'web_eu']);
});

test('a directory: its files in order, its own group_vars and host_vars, ignored names skipped', async (t) => {
  const inv = await loadInventory(join(dir, 'inv'));
  t.deepEqual(inv.hostVars('w1'), {g: 1, gv: 'web', hv: 1, x: 3, z: true});
  t.deepEqual(inv.hostVars('w3'), {cloud: 'eu', g: 1, gv: 'web', x: 3, z: true});
  t.false(inv.hostNames.includes('w9'));
  t.is(inventoryGraph(inv), ['@all:', '  |--@ungrouped:', '  |--@web:', '  |  |--w1', '  |  |--w2', '  |  |--w3', '  |--@db:', '  |  |--d1', '  |--@mon:', '  |  |--m1', '  |--@lb:', '  |  |--l1'].join('\n'));
});

test('a script without _meta is asked --host for each host', async (t) => {
  const inv = await loadInventory(join(scripts, 'nometa.sh'));
  t.deepEqual(inv.hostVars('a1'), {port_x: 8080});
  t.deepEqual(inv.hostVars('a3'), {deep: {k: [1, 2]}, region: 'eu'});
  t.deepEqual(inv.groupsOf('a3'), ['app', 'app_eu']);
});

const errors: Array<[string, string, RegExp]> = [
  ['a failing script', 'fails.sh', /^inventory script: --list failed \(exit 3\): RuntimeError: cloud API unreachable$/],
  ['a script printing something else than JSON', 'notjson.sh', /^inventory script: the output of --list is not JSON: /],
  ['a script whose --host is not JSON', 'badhost.sh', /^inventory script: the output of --host a1 is not JSON: /],
  ['a #! file without the executable bit', 'noexec.sh', /is not executable \(chmod \+x noexec\.sh\)/],
];
for (const [title, file, message] of errors) {
  test(`error: ${title} is a parse error naming the script`, async (t) => {
    const err = await t.throwsAsync(loadInventory(join(scripts, file)), {instanceOf: UserError});
    t.is(err!.exitCode, 4);
    t.is(err!.where?.file, join(scripts, file));
    t.regex(err!.message, message);
  });
}

test('error: the CLI prints one line naming the script, exit 4, no stack', async (t) => {
  const r = await runCli(['inventory', '-i', 'static.yml', '-i', 'fails.sh', '--list'], {cwd: scripts});
  t.is(r.code, 4);
  t.is(r.stdout, '');
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
  t.true(r.stderr.includes(join(scripts, 'fails.sh')), r.stderr);
  t.notRegex(r.stderr, /\n\s+at /);
});

test('error: an empty directory, a missing source', async (t) => {
  const empty = tree({'empty/group_vars/all.yml': 'x: 1\n'});
  const e1 = await t.throwsAsync(loadInventory(join(empty, 'empty')), {instanceOf: UserError});
  t.is(e1!.exitCode, 4);
  t.regex(e1!.message, /no inventory file in this directory/);
  const e2 = await t.throwsAsync(loadInventories([join(two, 'one/hosts.yml'), join(two, 'nope.yml')]), {instanceOf: UserError});
  t.is(e2!.exitCode, 4);
  t.is(e2!.where?.file, join(two, 'nope.yml'));
});
