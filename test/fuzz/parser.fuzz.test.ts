/**
 * Fuzzing the parsers with fast-check: mutated inventories (YAML, INI, JSON), mutated vars files
 * (group_vars/host_vars, vault files included), host patterns, and CLI argument lists run through
 * `main()` in this process. Every input must end in success or in one clean error: a `UserError`
 * (one line, Ansible exit code) or commander's usage error (exit 5); never an internal error or a
 * stack trace.
 */
import test from 'ava';
import fc from 'fast-check';
import {existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join, resolve} from 'node:path';
import {UserError} from '../../src/core/errors.ts';
import {encrypt} from '../../src/core/vault.ts';
import {inventoryGraph, inventoryList, loadInventory, selectHosts} from '../../src/inventory/index.ts';
import {runMain} from '../helpers/inprocess.ts';

const root = resolve(import.meta.dirname, '..', '..');
const fixtures = join(root, 'test', 'fixtures', 'inventory');
const VAULT_PASS = 'fuzz-pass';
/** Thousands of tiny files: a RAM disk when there is one (ten times faster than a VM's disk). */
const scratchRoot = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

const yamlSeeds = [
  readFileSync(join(fixtures, 'yaml', 'site.yml'), 'utf8'),
  readFileSync(join(fixtures, 'patterns', 'hosts.yml'), 'utf8'),
  readFileSync(join(root, 'inventory', 'lab.yml'), 'utf8'),
  'all:\n  hosts:\n    web[01:03]:\n      ansible_port: 2222\n  children:\n    db: {hosts: {db1: null}, vars: {x: [1, 2]}}\n',
  'ungrouped:\n  hosts:\n    "10.0.0.[1:4]:22":\nweb:\n  children: db\n  vars: &v {a: 1}\ndb:\n  vars: {<<: *v, b: yes}\n',
];
const iniSeeds = [
  readFileSync(join(fixtures, 'ini', 'hosts.ini'), 'utf8'),
  readFileSync(join(fixtures, 'ini-noext', 'hosts'), 'utf8'),
  'host0 a=1\n[web]\nweb[1:3] ansible_port=22 x="a b"\n[web:vars]\nk=v # c\n[all:children]\nweb\n[db:children]\nweb\n',
];
const jsonSeeds = [readFileSync(join(fixtures, 'json', 'inventory.json'), 'utf8')];
const varsSeeds = [
  readFileSync(join(fixtures, 'yaml', 'group_vars', 'all.yml'), 'utf8'),
  readFileSync(join(fixtures, 'yaml', 'group_vars', 'dbs', '01-base.yml'), 'utf8'),
  readFileSync(join(fixtures, 'yaml', 'group_vars', 'db_replicas.json'), 'utf8'),
  'a: 1\nb: [x, y]\nc: {d: e}\nansible_group_priority: 3\nlist: &x [1]\nref: *x\n',
  encrypt('secret_one: abcdefgh\nnested: {k: value-two}\n', VAULT_PASS),
];

/** Characters that matter to the formats, plus a few awkward ones. */
const syntax = [...'[]{}:,=#;!&*@%|>-?"\'\\\t\n \r~$`0123456789abcxyz.'.split(''), '\u0000', 'é', '\u2028', '\uFEFF', '---', '...', '<<', '[0:9]', '[a:z]', '[0:99]', '[0:99999999]', '[0:999]-[0:999]', '[1:2:0]', '[01:3]', 'all', 'hosts', 'children', 'vars', ':children', ':vars', '\n[', '\n  ', 'plugin', '$PROVISION_VAULT;1.0;AES256GCM\n', '$ANSIBLE_VAULT;1.1;AES256\n', '&a ', '*a', '!!binary ', '!!python/object ', '%YAML 1.1\n'];

type Op = {kind: 'insert'; at: number; text: string} | {kind: 'delete'; at: number; len: number} | {kind: 'dupline'; at: number} | {kind: 'swap'; a: number; b: number} | {kind: 'truncate'; at: number} | {kind: 'replace'; at: number; text: string};

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...syntax), fc.string({maxLength: 6}), fc.fullUnicodeString({maxLength: 3}))}),
  fc.record({kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({min: 1, max: 12})}),
  fc.record({kind: fc.constant('dupline' as const), at: fc.nat()}),
  fc.record({kind: fc.constant('swap' as const), a: fc.nat(), b: fc.nat()}),
  fc.record({kind: fc.constant('truncate' as const), at: fc.nat()}),
  fc.record({kind: fc.constant('replace' as const), at: fc.nat(), text: fc.constantFrom(...syntax)}),
);

function mutate(seed: string, ops: readonly Op[]): string {
  let s = seed;
  for (const op of ops) {
    const n = Math.max(1, s.length);
    switch (op.kind) {
      case 'insert': {
        const i = op.at % (s.length + 1);
        s = s.slice(0, i) + op.text + s.slice(i);
        break;
      }
      case 'delete': {
        const i = op.at % n;
        s = s.slice(0, i) + s.slice(i + op.len);
        break;
      }
      case 'replace': {
        const i = op.at % n;
        s = s.slice(0, i) + op.text + s.slice(i + 1);
        break;
      }
      case 'truncate':
        s = s.slice(0, op.at % (s.length + 1));
        break;
      case 'dupline':
      case 'swap': {
        const lines = s.split('\n');
        if (op.kind === 'dupline') {
          const i = op.at % lines.length;
          lines.splice(i, 0, lines[i]!);
        } else {
          const i = op.a % lines.length;
          const j = op.b % lines.length;
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        }
        s = lines.join('\n');
        break;
      }
    }
  }
  return s;
}

const patternArb = fc.oneof(
  fc.constantFrom('all', '*', 'web*', 'db:&web', 'all:!db', '~^w.*[0-9]$', 'web[0]', 'web[1:2]', 'web[-1]', '~(', '[', 'a,b,,c', '!x', '&y', '@/nonexistent/file', `@${fixtures}/patterns/site.retry`, ''),
  fc.string({maxLength: 12}),
  fc.stringOf(fc.constantFrom(...':!&~*?[],@-0123456789abwebdball'.split('')), {maxLength: 14}),
);

/** The only acceptable failure: a one-line UserError with an Ansible exit code. */
function assertClean(e: unknown, what: () => string): void {
  if (!(e instanceof UserError)) {
    throw new Error(`internal error (${e instanceof Error ? e.name : typeof e}: ${e instanceof Error ? e.message : String(e)}) for ${what()}`);
  }
  const line = e.oneLine();
  if (line.includes('\n') || line.length === 0) throw new Error(`not one line: ${JSON.stringify(line)} for ${what()}`);
  if (![1, 4, 5].includes(e.exitCode)) throw new Error(`exit code ${e.exitCode} for ${what()}`);
}

let tried = 0;
const counts: Record<string, number> = {};
const bump = (k: string): void => {
  counts[k] = (counts[k] ?? 0) + 1;
  tried++;
};

test.before(() => {
  process.env.PROVISION_VAULT_PASSWORD = VAULT_PASS;
});
test.after.always(() => {
  delete process.env.PROVISION_VAULT_PASSWORD;
});

test.serial('mutated inventories (YAML, INI, JSON) with mutated vars files: success or a clean error', async (t) => {
  const base = mkdtempSync(join(scratchRoot, 'prov-fuzz-inv-'));
  let i = 0;
  const formats = [
    {name: 'inventory.yml', seeds: yamlSeeds},
    {name: 'hosts.ini', seeds: iniSeeds},
    {name: 'hosts', seeds: [...iniSeeds, ...yamlSeeds]},
    {name: 'inventory.json', seeds: jsonSeeds},
  ];
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.nat(formats.length - 1), fc.nat(20), fc.array(opArb, {minLength: 1, maxLength: 8}),
        fc.option(fc.tuple(fc.nat(varsSeeds.length - 1), fc.array(opArb, {maxLength: 6}), fc.constantFrom('group_vars/all.yml', 'group_vars/web/x.yml', 'host_vars/web1', 'group_vars/all/vault.yml', 'host_vars/db1.json')), {nil: undefined}),
        fc.array(patternArb, {maxLength: 3}),
        async (f, seedIx, ops, vars, patterns) => {
          const format = formats[f]!;
          const dir = join(base, String(i++));
          mkdirSync(dir);
          const file = join(dir, format.name);
          const text = mutate(format.seeds[seedIx % format.seeds.length]!, ops);
          writeFileSync(file, text);
          let varsText = '';
          if (vars) {
            varsText = mutate(varsSeeds[vars[0]]!, vars[1]);
            mkdirSync(join(dir, vars[2], '..'), {recursive: true});
            writeFileSync(join(dir, vars[2]), varsText);
          }
          const what = () => `${format.name}:\n${text}\n--- ${vars?.[2]}:\n${varsText}\n--- patterns ${JSON.stringify(patterns)}`;
          bump(format.name);
          if (vars) bump('vars file');
          try {
            const inv = await loadInventory(file);
            inventoryList(inv);
            inventoryGraph(inv, 'all');
            for (const h of inv.hostNames) inv.hostVars(h);
            for (const p of patterns) {
              bump('pattern');
              try {
                selectHosts(inv, p, dir);
              } catch (e) {
                assertClean(e, () => `pattern ${JSON.stringify(p)} on ${what()}`);
              }
            }
          } catch (e) {
            assertClean(e, what);
          } finally {
            rmSync(dir, {recursive: true, force: true});
          }
        },
      ),
      {numRuns: 4000},
    );
  } finally {
    rmSync(base, {recursive: true, force: true});
  }
  t.pass();
});

test.serial('found by fuzzing: a huge host range is a clean error at once, not a hang', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-fuzz-range-'));
  try {
    for (const [name, text] of [['hosts.ini', '[web]\nweb[0:99999999]\n'], ['inv.yml', 'all:\n  hosts:\n    "h[0:999]-[0:999]":\n']] as const) {
      writeFileSync(join(dir, name), text);
      const t0 = Date.now();
      const e = await t.throwsAsync(loadInventory(join(dir, name)), {instanceOf: UserError, message: /expands to more than 100000 hosts/});
      t.is(e.exitCode, 4);
      t.true(Date.now() - t0 < 1000);
    }
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
});

test.serial('CLI argument lists through main(): success or a clean error with the right exit code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-fuzz-cli-'));
  // Hosts that refuse at once (port 1, no connect retries): commands that reach them end quickly.
  const inv = join(dir, 'inventory.yml');
  writeFileSync(inv, 'all:\n  vars: {ansible_ssh_retries: 0, ansible_host: 127.0.0.1, ansible_port: 1, provision_audit_log: false}\n  children:\n    web: {hosts: {web1: null, web2: null}}\n    db: {hosts: {db1: null}}\n');
  const badInv = join(dir, 'bad.yml');
  writeFileSync(badInv, 'all: [1, 2\n');
  const varsFile = join(dir, 'vars.yml');
  writeFileSync(varsFile, 'a: 1\n');
  const vaultFile = join(dir, 'vault.yml');
  writeFileSync(vaultFile, encrypt('v: secret-value\n', VAULT_PASS));
  const wrongVault = join(dir, 'wrong.yml');
  writeFileSync(wrongVault, encrypt('v: other-secret\n', 'not-the-pass'));
  const retry = join(dir, 'site.retry');
  writeFileSync(retry, 'web1\nnope\n');
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  const fixturePlaybook = join(root, 'test', 'fixtures', 'project', 'playbooks', 'files.ts');

  const word = fc.oneof(
    {weight: 6, arbitrary: fc.constantFrom(
      'run', 'inventory', 'ping', 'exec', 'vault', 'help', '--help', '-h', '-V', '--version',
      '-i', inv, badInv, '/nonexistent.yml', dir, '--list', '--graph', '--host', 'web1', 'web', 'all', 'nope',
      '-l', '--limit', `@${retry}`, '@/nonexistent.retry', 'web:!db', '~[', '-e', 'a=b', '=b', '{"a": 1}', '{bad', `@${varsFile}`, `@${vaultFile}`, `@${wrongVault}`, '@/nope.yml',
      '-f', '0', '-3', '2', 'abc', '--forks', '-C', '--check', '-D', '--diff', '--json', '-v', '-vvv', '--no-tui', '-t', '--tags', '--skip-tags', 'x,y',
      '-T', '--timeout', '-1', '0.5', '--lock-timeout', 'NaN', '--vault-password-file', '/nonexistent-pass', varsFile,
      '--accept-new-host-keys', '-b', '--become', '--', 'echo', 'true',
      fixturePlaybook, 'nope-playbook', './nope.ts', 'encrypt', 'decrypt', 'view', 'edit', 'create',
      join(scratch, 'a.yml'), join(scratch, 'b.yml'), vaultFile, '--unknown', '-Z', '',
    )},
    {weight: 1, arbitrary: fc.string({maxLength: 8})},
  );
  // Never `lab` (it would build containers); `run` only with the fixture playbook or missing ones.
  const argvArb = fc.array(word, {minLength: 0, maxLength: 8}).filter((a) => !a.includes('lab') && !a.some((w) => /^(site|lab)$/.test(w)));

  const env = {PROVISION_INVENTORY: inv, EDITOR: 'true', VISUAL: undefined, PROVISION_RETRY_DIR: scratch, NO_COLOR: '1'};
  try {
    await fc.assert(
      fc.asyncProperty(argvArb, async (argv) => {
        bump('cli argv');
        const r = await runMain(argv, env);
        const what = `provision ${argv.map((a) => JSON.stringify(a)).join(' ')} → exit ${r.code}\nstderr: ${r.stderr}`;
        if (/internal error/.test(r.stderr) || /^\s+at .+:\d+:\d+\)?$/m.test(r.stderr + r.stdout)) throw new Error(`internal error: ${what}`);
        if (![0, 1, 2, 4, 5].includes(r.code)) throw new Error(`unexpected exit code: ${what}`);
        const errLines = r.stderr.split('\n').filter((l) => l.startsWith('provision: '));
        if (errLines.length > 1) throw new Error(`more than one error line: ${what}`);
        if (r.code !== 0 && r.stderr.trim() === '' && r.code !== 2 && r.code !== 4) throw new Error(`failed without a message: ${what}`);
      }),
      {numRuns: 1500},
    );
  } finally {
    rmSync(dir, {recursive: true, force: true});
    process.env.PROVISION_VAULT_PASSWORD = VAULT_PASS;
  }
  t.pass();
});

test.after('report', (t) => {
  t.log(`fuzz inputs tried: ${tried} (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')})`);
  console.log(`fuzz inputs tried: ${tried} (${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')})`);
});
