/** A bad inventory is one `UserError` line naming file, line and field, with exit code 4. */
import test from 'ava';
import {chmodSync, mkdirSync, mkdtempSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {ExitCode, UserError} from '../../src/core/errors.ts';
import {loadInventory} from '../../src/inventory/index.ts';

function write(name: string, text: string, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'provision-inv-'));
  for (const [rel, body] of Object.entries(extra)) {
    mkdirSync(join(dir, rel, '..'), {recursive: true});
    writeFileSync(join(dir, rel), body);
  }
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

interface Expect {
  readonly line?: number;
  readonly field?: string;
  readonly message: RegExp;
  /** The file the error names, relative to the inventory's folder (default: the inventory). */
  readonly file?: string;
}

const cases: [string, string, string, Expect, Record<string, string>?][] = [
  ['a group that is a list', 'inv.yml', 'all:\n  children:\n    web:\n      - web1\n', {line: 4, field: 'all.children.web', message: /must be a mapping/}],
  ['hosts that are a list', 'inv.yml', 'all:\n  children:\n    web:\n      hosts:\n        - web1\n', {line: 5, field: 'all.children.web.hosts', message: /"hosts" of group web must be a mapping, got a list/}],
  ['a bad range', 'inv.yml', 'web:\n  hosts:\n    ok1:\n    web[3:1]:\n', {line: 4, field: 'web.hosts.web[3:1]', message: /begin must be <= end/}],
  ['a range of unequal widths', 'inv.yml', 'web:\n  hosts:\n    web[01:100]:\n', {line: 3, field: 'web.hosts.web[01:100]', message: /same width/}],
  ['a range with a zero step', 'inv.yml', 'web:\n  hosts:\n    web[1:9:0]:\n', {line: 3, field: 'web.hosts.web[1:9:0]', message: /step/}],
  ['vars that are not a mapping', 'inv.yml', 'all:\n  vars:\n    - a\n    - b\n', {line: 3, field: 'all.vars', message: /"vars" of group all must be a mapping/}],
  ['host vars that are a list', 'inv.yml', 'all:\n  hosts:\n    web1:\n      - x\n', {line: 4, field: 'all.hosts.web1', message: /variables of host web1 must be a mapping/}],
  ['a numeric host name', 'inv.yml', 'all:\n  hosts:\n    42:\n', {line: 3, field: 'all.hosts.42', message: /must be a non-empty string/}],
  ['a YAML syntax error', 'inv.yml', 'all:\n  hosts:\n    web1: {a: 1\n  children:\n', {message: /YAML syntax error/}],
  ['a top-level list', 'inv.yml', '- web1\n- web2\n', {line: 1, field: '(top)', message: /mapping of groups/}],
  ['a group loop', 'inv.yml', 'a:\n  children:\n    b:\n      children:\n        a:\n', {line: 3, field: 'a.children.b', message: /loop/}],
  ['a non-integer group priority', 'inv.yml', 'g:\n  vars:\n    ansible_group_priority: high\n', {line: 3, field: 'g.vars.ansible_group_priority', message: /integer/}],
  ['a plugin config', 'inv.yml', 'plugin: aws_ec2\n', {line: 1, field: 'plugin', message: /plugin configuration/}],
  ['an INI var line without =', 'hosts.ini', '[web]\nweb1\n[web:vars]\nnot a pair\n', {line: 4, field: 'web:vars', message: /expected key=value/}],
  ['an INI host var without =', 'hosts.ini', '[web]\nweb1 oops\n', {line: 2, field: 'web.web1', message: /expected key=value host variable/}],
  ['an INI undefined child', 'hosts.ini', '[web]\nweb1\n[all_web:children]\nweb\nnope\n', {line: 5, field: 'all_web:children', message: /undefined group nope/}],
  ['an INI vars for undefined group', 'hosts.ini', '[ghost:vars]\na=1\n', {line: 1, field: 'ghost:vars', message: /undefined group ghost/}],
  ['an INI unknown section type', 'hosts.ini', '[web:kids]\nweb1\n', {line: 1, field: 'web:kids', message: /unknown type/}],
  ['an INI section with a space', 'hosts.ini', '[web servers]\n', {line: 1, message: /invalid section/}],
  ['an INI unclosed quote', 'hosts.ini', '[web]\nweb1 a="x\n', {line: 2, message: /closing quotation/}],
  ['an INI bad range', 'hosts.ini', '[web]\nweb[b:a]\n', {line: 2, field: 'web.web[b:a]', message: /begin must be <= end/}],
  ['an extensionless INI file with an error', 'hosts', '[web]\nweb1\n[web:vars]\nbroken\n', {line: 4, message: /expected key=value/}],
  ['a group_vars file that is a list', 'inv.yml', 'web:\n  hosts:\n    web1:\n', {file: 'group_vars/web.yml', line: 2, field: '(top)', message: /must be a mapping/}, {'group_vars/web.yml': '---\n- a\n'}],
  ['a host_vars file with a syntax error', 'inv.yml', 'web:\n  hosts:\n    web1:\n', {file: 'host_vars/web1/main.yml', line: 2, message: /YAML syntax error/}, {'host_vars/web1/main.yml': 'a: 1\nb: c: d\n'}],
];

for (const [title, name, text, want, extra] of cases) {
  test(`error: ${title}`, async (t) => {
    const file = write(name, text, extra);
    const err = await t.throwsAsync(loadInventory(file), {instanceOf: UserError});
    t.is(err!.exitCode, ExitCode.parseError);
    t.is(err!.exitCode, 4);
    t.regex(err!.message, want.message);
    const where = err!.where!;
    t.is(where.file, want.file ? join(file, '..', want.file) : file);
    if (want.line !== undefined) t.is(where.line, want.line);
    else t.true(typeof where.line === 'number' && where.line > 0);
    if (want.field !== undefined) t.is(where.field, want.field);
    const line = err!.oneLine();
    t.false(line.includes('\n'));
    t.true(line.startsWith(`${where.file}:${where.line}`));
  });
}

test('error: a missing inventory file', async (t) => {
  const missing = join(tmpdir(), 'provision-no-such-inventory.yml');
  const err = await t.throwsAsync(loadInventory(missing), {instanceOf: UserError});
  t.is(err!.exitCode, 4);
  t.is(err!.where?.file, missing);
  t.regex(err!.oneLine(), /no such file/);
});

test('error: an unreadable inventory file (a path through a plain file: unreadable by root too)', async (t) => {
  const file = join(write('inv.yml', 'all: {}\n'), 'inv.yml');
  const err = await t.throwsAsync(loadInventory(file), {instanceOf: UserError});
  t.is(err!.exitCode, ExitCode.parseError);
  t.is(err!.where?.file, file);
  t.regex(err!.oneLine(), /cannot read inventory: ENOTDIR/);
});

// Root reads a file whatever its mode: this case can only fail for another user.
const isRoot = process.getuid?.() === 0;
(isRoot ? test.skip : test)(`error: an inventory file without read permission${isRoot ? ' (skipped: root reads every file)' : ''}`, async (t) => {
  const file = write('inv.yml', 'all: {}\n');
  chmodSync(file, 0o000);
  const err = await t.throwsAsync(loadInventory(file), {instanceOf: UserError});
  t.is(err!.exitCode, ExitCode.parseError);
  t.is(err!.where?.file, file);
  t.regex(err!.message, /permission denied/);
});

test('error: an empty directory given as inventory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'provision-inv-'));
  const err = await t.throwsAsync(loadInventory(dir), {instanceOf: UserError});
  t.is(err!.exitCode, 4);
});

test('unexpected keys are warnings, as in Ansible', async (t) => {
  const file = write('inv.yml', 'web:\n  host:\n    web1:\n  hosts:\n    web2:\n');
  const inv = await loadInventory(file);
  t.deepEqual(inv.hostNames, ['web2']);
  t.is(inv.warnings.length, 1);
  t.regex(inv.warnings[0]!, /inv\.yml:2: web\.host: skipping unexpected key/);
});

test('an empty file is an empty inventory', async (t) => {
  const inv = await loadInventory(write('inv.yml', '# nothing yet\n'));
  t.deepEqual(inv.hostNames, []);
  t.deepEqual([...inv.groups.keys()], ['all', 'ungrouped']);
});

test('an error naming a key with a line break is still one line (found by fuzzing: a !!binary key)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-inv-nl-'));
  writeFileSync(join(dir, 'inv.yml'), '"a\\nb": {hosts: {h1: {}}}\n? !!binary "YQpi"\n: {}\n');
  const e = await loadInventory(join(dir, 'inv.yml')).then(() => undefined, (err: unknown) => err);
  t.true(e instanceof UserError);
  t.false((e as UserError).oneLine().includes('\n'), (e as UserError).oneLine());
});

test('an alias bomb in a vars file ("billion laughs") is a clean error, not a hang or a crash', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-inv-bomb-'));
  mkdirSync(join(dir, 'group_vars'));
  writeFileSync(join(dir, 'inv.yml'), 'all:\n  hosts:\n    h1: {}\n');
  const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  for (let i = 1; i < 9; i++) levels.push(`${'abcdefghi'[i]}: &${'abcdefghi'[i]} [${Array(10).fill(`*${'abcdefghi'[i - 1]}`).join(',')}]`);
  writeFileSync(join(dir, 'group_vars', 'all.yml'), levels.join('\n') + '\n');
  const e = await loadInventory(join(dir, 'inv.yml')).then((inv) => inv.hostVars('h1'), (err: unknown) => err);
  t.true(e instanceof UserError, String(e).slice(0, 200));
  t.is((e as UserError).exitCode, ExitCode.parseError);
  t.regex((e as UserError).oneLine(), /all\.yml:\d+: .*alias/i);
});

test('aliases in real use (an anchor shared by many hosts and values) still load', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-inv-alias-'));
  const hosts = Array.from({length: 300}, (_, i) => `    h${i}: {ports: *ports, env: *env}`).join('\n');
  writeFileSync(join(dir, 'inv.yml'), `all:\n  vars:\n    p: &ports [80, 443, 8080]\n    e: &env {A: 1, B: [1, 2, 3]}\n  hosts:\n${hosts}\n`);
  const inv = await loadInventory(join(dir, 'inv.yml'));
  t.deepEqual(inv.hostVars('h299').ports, [80, 443, 8080]);
  t.deepEqual(inv.hostVars('h0').env, {A: 1, B: [1, 2, 3]});
});
