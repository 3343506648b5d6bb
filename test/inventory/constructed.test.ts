/**
 * Ansible's `constructed` inventory plugin: `provision inventory --list` must equal
 * `ansible-inventory --list` on trees mixing YAML, INI, an inventory script, group_vars and constructed
 * files (compose, groups, keyed_groups with string, list and dict keys), given as a directory and as
 * repeated -i; and seeded random expressions of the supported subset must compose the values Ansible
 * composes. Without ansible-inventory the differential tests are skipped, and their titles say why.
 */
import test from 'ava';
import {execFile} from 'node:child_process';
import {chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import {promisify} from 'node:util';
import {commandWorks, runCli} from '../helpers/cli.ts';
import {ansibleInventoryEnv} from '../helpers/ansible.ts';
import {loadInventories} from '../../src/inventory/index.ts';
import {UserError} from '../../src/core/errors.ts';
import {evaluateTemplate, parseExpression, pyFloatRepr, toSafeGroupName, ExpressionError} from '../../src/inventory/jinja.ts';
import {rng as mulberry32} from '../helpers/rng.ts';

const exec = promisify(execFile);
const live = commandWorks('ansible-inventory', ['--version']);
const scratch = mkdtempSync(join(tmpdir(), 'provision-constructed-'));
test.after.always(() => rmSync(scratch, {recursive: true, force: true}));
const env = ansibleInventoryEnv(scratch);
const skipWhy = live ? '' : ' (skipped: ansible-inventory not installed)';
const differential = live ? test : test.skip;

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(scratch, 'tree-'));
  for (const [path, text] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(dirname(full), {recursive: true});
    writeFileSync(full, text);
    if (text.startsWith('#!')) chmodSync(full, 0o755);
  }
  return root;
}

async function ansibleList(args: string[], cwd: string): Promise<unknown> {
  const {stdout} = await exec('ansible-inventory', [...args, '--list'], {cwd, env: {...process.env, ...env}, maxBuffer: 64 << 20});
  return JSON.parse(stdout);
}

async function provisionList(args: string[], cwd: string): Promise<unknown> {
  const r = await runCli(['inventory', ...args, '--list'], {cwd});
  if (r.code !== 0) throw new Error(`provision inventory failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const cloudScript = (list: unknown): string => `#!/bin/sh\ncase "$1" in\n  --list) echo '${JSON.stringify(list)}';;\n  *) echo '{}';;\nesac\n`;

const constructed = [
  'plugin: constructed',
  'strict: false',
  'compose:',
  '  web_port: port | int',
  "  fqdn: inventory_hostname ~ '.' ~ site",
  '  is_prod: labels.env | default(\'none\') == \'prod\'',
  '  first_tag: tags[0] | default(\'untagged\') | upper',
  '  tag_count: tags | default([]) | length',
  '  zone: cloud.zone',
  '  kept: port',
  '  role_and_site: role ~ \'@\' ~ site',
  'groups:',
  "  prod: labels.env | default('') == 'prod'",
  "  Linux-Servers: \"'linux' in os | default('') | lower or 'debian' in os | default('') | lower\"",
  "  big_ports: port | int > 8080",
  "  not_web: \"'web' not in group_names\"",
  'keyed_groups:',
  '  - key: tags',
  '    prefix: tag',
  '  - key: labels',
  '    prefix: label',
  '  - key: labels',
  '    prefix: lbl',
  '    separator: "-"',
  '    trailing_separator: false',
  '  - key: os | default(\'\')',
  '    prefix: os',
  '    default_value: unknown',
  '  - key: cloud.provider | default(\'\')',
  '    separator: ""',
  '    parent_group: clouds',
  '',
].join('\n');

const fixture = tree({
  'inv/01-hosts.yml': [
    'all:',
    '  vars: {site: example.com}',
    '  children:',
    '    web:',
    '      hosts:',
    "        web1: {port: 8080, tags: [frontend, 'blue-green'], labels: {env: prod, tier: ''}, os: Ubuntu 22.04}",
    "        web2: {port: '8081', tags: [], labels: {}, os: Debian}",
    '        10.0.0.7: {port: 80}',
    '      vars: {role: web}',
    '',
  ].join('\n'),
  'inv/02-more.ini': '[db]\ndb1 port=5432 os="Rocky Linux"\ndb2 os=debian\n[db:vars]\nrole=db\n[all:vars]\nntp=pool.ntp.org\n',
  'inv/03-cloud': cloudScript({cloud: {hosts: ['c1.eu.example'], vars: {role: 'worker'}}, _meta: {hostvars: {'c1.eu.example': {cloud: {provider: 'aws', zone: 'eu-west-1a'}, tags: ['spot', 'x.y'], port: 22}}}}),
  'inv/04-constructed.yml': constructed,
  'inv/group_vars/web.yml': 'from_group_vars: web\nsite: overridden-by-group-vars\n',
  'inv/group_vars/all.yml': 'gv_all: 1\n',
  'inv/host_vars/web1.yml': 'hv: web1\n',
  // a second constructed pass, after a later -i source: it sees the groups the first one made
  'late.yml': 'late:\n  hosts:\n    late1: {port: 9000, tags: [late]}\n',
  'late-constructed.yaml': [
    'plugin: ansible.builtin.constructed',
    'compose:',
    "  tagged_prod: \"'prod' in group_names\"",
    '  n_groups: group_names | length',
    'groups:',
    "  from_second_pass: \"'tag_frontend' in group_names or 'late' in group_names\"",
    'keyed_groups:',
    '  - key: group_names',
    '    prefix: member',
    '',
  ].join('\n'),
  // use_vars_plugins: group_vars/host_vars of the sources read before it are seen
  'vp.yaml': [
    'plugin: constructed',
    'use_vars_plugins: true',
    'compose:',
    '  seen_group_vars: from_group_vars | default(\'no\')',
    '  seen_host_vars: hv | default(\'no\')',
    'groups:',
    "  gv_web: from_group_vars | default('') == 'web'",
    '',
  ].join('\n'),
  'novp.yaml': [
    'plugin: constructed',
    'compose:',
    '  seen_group_vars_novp: from_group_vars | default(\'no\')',
    '',
  ].join('\n'),
});

const cases: Array<[string, string[]]> = [
  ['-i DIR: YAML, INI, a script, then the constructed file (name order), with group_vars', ['-i', 'inv']],
  ['repeated -i: the directory, a YAML file, a second constructed pass', ['-i', 'inv', '-i', 'late.yml', '-i', 'late-constructed.yaml']],
  ['use_vars_plugins: group_vars and host_vars of earlier sources', ['-i', 'inv', '-i', 'vp.yaml', '-i', 'novp.yaml']],
  ['a constructed source before the others sees no hosts', ['-i', 'late-constructed.yaml', '-i', 'late.yml']],
];
for (const [title, args] of cases) {
  differential(`${title}: --list equals ansible-inventory's${skipWhy}`, async (t) => {
    t.deepEqual(await provisionList(args, fixture), await ansibleList(args, fixture));
  });
}

// What the differential tests check, stated without ansible.
test('compose, groups and keyed groups (list and dict keys), names made safe as Ansible does', async (t) => {
  const inv = await loadInventories([join(fixture, 'inv')]);
  const web1 = inv.hostVars('web1');
  t.is(web1.web_port, '8080'); // rendered: a string, as Ansible's templar gives it
  t.is(web1.kept, 8080); // a bare variable keeps its type
  t.is(web1.is_prod, true);
  t.is(web1.first_tag, 'FRONTEND');
  t.is(web1.fqdn, 'web1.example.com'); // inline vars only: group_vars are not seen without use_vars_plugins
  t.deepEqual(inv.groupHosts('tag_blue_green'), ['web1']);
  t.deepEqual(inv.groupHosts('label_env_prod'), ['web1']);
  t.deepEqual(inv.groupHosts('label_tier_'), ['web1']);
  t.deepEqual(inv.groupHosts('lbl_tier'), ['web1']);
  t.deepEqual(inv.groupHosts('os_Ubuntu_22_04'), ['web1']);
  t.deepEqual(inv.groupHosts('Linux_Servers'), ['web2', 'db1', 'db2']);
  t.deepEqual(inv.groups.get('clouds')?.children, ['aws']);
  t.is(inv.hostVars('c1.eu.example').zone, 'eu-west-1a');
  t.false('zone' in web1); // undefined: skipped, not strict
});

test('an expression outside the subset is a parse error naming the file, line and key (exit 4)', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['compose:\n  x: port + 1\n', /bad\.yml:3: compose\.x: '\+' \(arithmetic\) is not supported/],
    ["compose:\n  x: port | regex_replace('a', 'b')\n", /compose\.x: the filter 'regex_replace' is not supported/],
    ['groups:\n  g: port is defined\n', /groups\.g: tests \('is …'\) are not supported/],
    ["keyed_groups:\n  - key: '{{ port }}'\n", /keyed_groups\[0\]\.key: write the bare expression/],
    ['compose:\n  x: labels.keys\n', /compose\.x: '\.keys' names a Python method/],
  ];
  for (const [body, want] of cases) {
    const dir = tree({'h.yml': 'all:\n  hosts:\n    h1: {port: 1, labels: {a: 1}}\n', 'bad.yml': `plugin: constructed\n${body}`});
    const err = await t.throwsAsync(loadInventories([join(dir, 'h.yml'), join(dir, 'bad.yml')]), {instanceOf: UserError});
    t.regex(err!.oneLine(), want);
    t.is(err!.exitCode, 4);
  }
});

test('strict: an undefined variable is an error; not strict: the entry is skipped', async (t) => {
  const dir = tree({
    'h.yml': 'all:\n  hosts:\n    h1: {a: 1}\n',
    'strict.yml': 'plugin: constructed\nstrict: true\ncompose:\n  x: missing.b\n',
    'lax.yml': 'plugin: constructed\ncompose:\n  x: missing.b\n  y: missing.b | default(a)\n',
    'other.yml': 'plugin: amazon.aws.aws_ec2\nregions: [eu-west-1]\n',
  });
  const err = await t.throwsAsync(loadInventories([join(dir, 'h.yml'), join(dir, 'strict.yml')]), {instanceOf: UserError});
  t.regex(err!.oneLine(), /strict\.yml:4: compose\.x: could not set x for host h1: 'b' is undefined/);
  t.is(err!.exitCode, 4);
  const inv = await loadInventories([join(dir, 'h.yml'), join(dir, 'lax.yml')]);
  t.deepEqual(inv.hostVars('h1'), {a: 1, y: '1'}); // `default(a)` is rendered: text
  const other = await t.throwsAsync(loadInventories([join(dir, 'other.yml')]), {instanceOf: UserError});
  t.regex(other!.oneLine(), /other\.yml:1: plugin: this is an inventory plugin configuration for 'amazon\.aws\.aws_ec2', which provision does not read/);
});

test('the CLI prints the one-line error and exits 4', async (t) => {
  const dir = tree({'h.yml': 'all:\n  hosts:\n    h1:\n', 'c.yml': 'plugin: constructed\ncompose:\n  x: a * 2\n'});
  const r = await runCli(['inventory', '-i', 'h.yml', '-i', 'c.yml', '--list'], {cwd: dir});
  t.is(r.code, 4);
  t.regex(r.stderr, /c\.yml:3: compose\.x: '\*' \(arithmetic\) is not supported/);
});

test('to_safe_group_name and Python float repr', (t) => {
  t.is(toSafeGroupName('1a-b.c d'), '_a_b_c_d');
  t.is(toSafeGroupName('héllo_wörld'), 'héllo_wörld');
  t.is(toSafeGroupName('a😀'), 'a_');
  t.deepEqual([1.5, 2, 1e16, 1.5e16, 1e-5, 0.0001, 123.456].map(pyFloatRepr), ['1.5', '2.0', '1e+16', '1.5e+16', '1e-05', '0.0001', '123.456']);
  const v = (src: string, vars: Record<string, unknown> = {}): unknown => evaluateTemplate(parseExpression(src), vars);
  t.is(v('n | int', {n: '5'}), '5');
  t.is(v('n', {n: 5}), 5);
  t.is(v('n == 5', {n: 5}), true);
  t.deepEqual(v("l | lower", {l: ['a', 1]}), ['a', 1]); // the text reads as a list again
  t.is(v("l | string", {l: ['a', 1]}), "['a', 1]"); // not after `string` (Ansible's STRING_TYPE_FILTERS)
  t.is(v("nul ~ 'x'", {nul: null}), 'Nonex');
  t.is(v("d.k", {d: {k: null}}), '');
  t.is(v("'a' ~ 2.0"), 'a2.0');
  t.throws(() => parseExpression('a if b else c'), {instanceOf: ExpressionError});
});

// ---------------------------------------------------------------------------------------------------
// Seeded random expressions of the subset: each is a compose entry; the composed values must be Ansible's.


function randomExpression(rnd: () => number): string {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const vars = ['s', 'n', 'f', 't', 'lst', 'dct', 'nul', 'emp', 'num_s', 'float_s', 'missing', 'inventory_hostname', 'group_names'];
  const strings = ["'a'", "'Web'", "''", "'1_0'", "' 42 '", "'3.7'", "'[1, 2]'", "'True'", '"it\'s"', "'x'"];
  const atom = (depth: number): string => {
    const r = rnd();
    if (r < 0.35) {
      let e = pick(vars);
      if (rnd() < 0.3) e += pick(['.a', "['b']", '[0]', '[1]', '.e', "['zz']"]);
      return e;
    }
    if (r < 0.6) return pick(strings);
    if (r < 0.72) return pick(['0', '1', '5', '7', '2.5', '2.0', '10']);
    if (r < 0.8) return pick(['true', 'false', 'none', 'True', 'None']);
    // list items are literals: an undefined item is not supported (Ansible writes its repr)
    if (r < 0.87 && depth < 2) return `[${pick(strings)}, ${pick(['1', '2.5', 'true', 'none', "'y'"])}]`;
    return `(${expr(depth + 1)})`;
  };
  const filtered = (depth: number): string => {
    let e = atom(depth);
    while (rnd() < 0.35) e += ' | ' + pick(["default('d')", "default('d', true)", 'lower', 'upper', 'string', 'int', 'int(7)', 'length']);
    return e;
  };
  const expr = (depth: number): string => {
    if (depth > 2) return filtered(depth);
    const r = rnd();
    if (r < 0.3) return filtered(depth);
    if (r < 0.45) return `${filtered(depth)} ~ ${filtered(depth)}`;
    if (r < 0.75) return `${filtered(depth)} ${pick(['==', '!=', '<', '>', '<=', '>=', 'in', 'not in'])} ${filtered(depth)}`;
    if (r < 0.9) return `${expr(depth + 1)} ${pick(['and', 'or'])} ${expr(depth + 1)}`;
    return `not ${expr(depth + 1)}`;
  };
  return expr(0);
}

const SEED = Number(process.env.PROVISION_TEST_SEED ?? 20261129);
const rnd = mulberry32(SEED);
const expressions = Array.from({length: 400}, () => randomExpression(rnd));
const randomTree = tree({
  'hosts.yml': [
    'all:',
    '  hosts:',
    "    h1: {s: 'Hello World', n: 5, f: 1.5, t: true, lst: ['a', 'B', 3, ''], dct: {a: 1, b: 'x', e: ''}, nul: null, emp: '', num_s: '42', float_s: '3.7'}",
    "    h2: {s: 'web', n: 0, f: 2.5, t: false, lst: [], dct: {}, nul: null, emp: '', num_s: 'x', float_s: '-1.5'}",
    '',
  ].join('\n'),
  'random.yml': [
    'plugin: constructed',
    'compose:',
    ...expressions.map((e, i) => `  c${i}: ${JSON.stringify(e)}`),
    // the same expressions as conditions, and as keys of keyed groups
    'groups:',
    ...expressions.map((e, i) => `  g${i}: ${JSON.stringify(e)}`),
    'keyed_groups:',
    // (a key giving a boolean or a number fails the whole inventory, in Ansible too: made text here)
    ...expressions.map((e, i) => `  - {key: ${JSON.stringify(`(${e}) ~ '!'`)}, prefix: k${i}}`),
    '',
  ].join('\n'),
});

differential(`${expressions.length} random expressions (seed ${SEED}) compose what Ansible composes${skipWhy}`, async (t) => {
  const args = ['-i', 'hosts.yml', '-i', 'random.yml'];
  type Listed = {_meta: {hostvars: Record<string, Record<string, unknown>>}};
  const mine = (await provisionList(args, randomTree)) as Listed;
  const theirs = (await ansibleList(args, randomTree)) as Listed;
  for (const host of ['h1', 'h2']) {
    const differ = expressions.flatMap((e, i) => {
      const key = `c${i}`;
      const [a, b] = [mine._meta.hostvars[host]![key], theirs._meta.hostvars[host]![key]];
      return JSON.stringify(a) === JSON.stringify(b) ? [] : [`${host}: ${key}: ${e}: provision ${JSON.stringify(a)}, ansible ${JSON.stringify(b)}`];
    });
    t.deepEqual(differ, []);
  }
  const groupsOf = (list: Listed): Record<string, unknown> => Object.fromEntries(Object.entries(list).filter(([k]) => k !== '_meta'));
  t.deepEqual(groupsOf(mine), groupsOf(theirs));
  // the cases are not all failures: most give a value
  const defined = expressions.filter((_, i) => `c${i}` in theirs._meta.hostvars.h1!).length;
  t.true(defined > expressions.length / 2, `${defined} defined`);
});
