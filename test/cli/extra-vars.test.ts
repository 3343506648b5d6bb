/**
 * `-e key=value` read as Ansible reads it (src/cli/kv.ts, a port of ansible-core's `parse_kv`).
 *
 * The differential test runs the real `ansible` (ad hoc `debug` of `hostvars[inventory_hostname]` on
 * localhost, JSON callback) on hand-written and seeded random key=value strings: spaces, quotes of both
 * kinds inside and around values, `=` and escaped `\=`, Python escapes (`\n`, `\x41`, `\U0001F600`),
 * whitespace Python and JavaScript trim differently, newlines and `\` continuations. Every string
 * `parseExtraVars` accepts must give exactly Ansible's variables (strings); every string it refuses
 * must be one Ansible refuses too or turns into `_raw_params` (a free word, which provision reports
 * as an error instead of a hidden variable). Values never hold `{`: Ansible templates what it shows.
 * Without ansible the differential test is skipped and says so; the table test runs everywhere.
 */
import test from 'ava';
import {commandWorks} from '../helpers/cli.ts';
import {execFile} from 'node:child_process';
import {mkdtempSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {promisify} from 'node:util';
import fc from 'fast-check';
import {parseExtraVars} from '../../src/cli/main.ts';
import {UserError} from '../../src/core/errors.ts';

const run = promisify(execFile);

// ------------------------------------------------------------------------------------------------
// Pinned without ansible: checked against ansible-core 2.14.18 when written.

const table: readonly [string, Record<string, string> | RegExp][] = [
  [`msg='hello world' n=1`, {msg: 'hello world', n: '1'}],
  [`msg="hello world" x='a "b" c'`, {msg: 'hello world', x: 'a "b" c'}],
  [`a=x'y z'w`, {a: "x'y z'w"}],
  [`'q=a b'`, {"'q": "a b'"}],
  [`a="x\\"y" b=a\\nb c=\\u00e9 d=\\x41 e="it's" f=\\\\=z`, {a: 'x"y', b: 'a\nb', c: 'é', d: 'A', e: "it's", f: '\\=z'}],
  [`k\\=x=1 y==2 z=`, {'k\\=x': '1', y: '=2', z: ''}],
  ['a=1\nb=2 \\ c=3', {a: '1', b: '2', c: '3'}],
  ['a=1\tb=2', {a: '1\tb=2'}],
  [`a={{ 'x y' }} b={# c d #}e`, {a: "{{ 'x y' }}", b: '{# c d #}e'}],
  [`a=1 b=2`, {a: '1', b: '2'}],
  ['msg=hello world', /expected key=value, got 'world'/],
  [`a='unclosed`, /unclosed quote/],
  ['  a=1', /starts with two spaces/],
  ['./vars.yml', /-e @\.\/vars\.yml/],
];

for (const [text, want] of table) {
  test(`-e ${JSON.stringify(text)}`, (t) => {
    if (want instanceof RegExp) t.throws(() => parseExtraVars([text]), {instanceOf: UserError, message: want});
    else t.deepEqual(parseExtraVars([text]), want);
  });
}

test('-e given twice: the later value wins; JSON and key=value mix', (t) => {
  t.deepEqual(parseExtraVars([`a=1 b='x y'`, 'a=2', '{"c": [1]}']), {a: '2', b: 'x y', c: [1]});
});

// ------------------------------------------------------------------------------------------------
// Differential: the real ansible.

const live = commandWorks('ansible', ['--version']);

const SEED = 20260512;
const RANDOM_CASES = 160;

const bareChar = fc.constantFrom(...'abcXYZ019_-./:,@+=%#}é€😀'.split(/(?:)/u));
const bare = fc.array(bareChar, {minLength: 1, maxLength: 6}).map((a) => a.join(''));
const inSingle = fc.array(fc.oneof(bareChar, fc.constantFrom(' ', '  ', '"', '=')), {maxLength: 8}).map((a) => `'${a.join('')}'`);
const inDouble = fc.array(fc.oneof(bareChar, fc.constantFrom(' ', "'", '=', '\\"', '\\n')), {maxLength: 8}).map((a) => `"${a.join('')}"`);
const escape = fc.constantFrom(
  '\\n', '\\t', '\\r', '\\\\', '\\x41', '\\xe9', '\\u00e9', '\\U0001F600', "\\'", '\\"', '\\a', '\\v', '\\f',
  '\\x1c', '\\x85', '\\ufeff', '\\u2003', '\\=',
);
/** Anything, unbalanced quotes and lone backslashes included: mostly strings both must refuse. */
const chaos = fc.array(fc.constantFrom(...'ab= \'"\\\n\t'.split('')), {maxLength: 8}).map((a) => a.join(''));
const value = fc.oneof(
  {weight: 16, arbitrary: fc.array(fc.oneof(bare, inSingle, inDouble, escape), {minLength: 1, maxLength: 3}).map((a) => a.join(''))},
  {weight: 2, arbitrary: fc.constant('')},
  {weight: 1, arbitrary: chaos},
);
const pair = fc.record({
  lead: fc.integer({min: 0, max: 11}).map((n) => (n === 0 ? '\t' : '')),
  suffix: fc.constantFrom('', '', '', '_y', '\\=x'),
  value,
  /** The whole pair in single quotes: `'k=a b'` (Ansible keeps the quote in the key and the value). */
  quoted: fc.integer({min: 0, max: 9}).map((n) => n === 0),
  /** A free word instead of key=value (both must refuse the string). */
  free: fc.integer({min: 0, max: 39}).map((n) => n === 0),
});
const shape = fc.record({
  pairs: fc.array(pair, {minLength: 1, maxLength: 4}),
  seps: fc.array(fc.constantFrom(' ', ' ', ' ', ' ', '  ', '\n', ' \\ ', '\t', '\n\n'), {minLength: 3, maxLength: 3}),
});

/** Every key holds `v<case>_<pair>`, so keys of different cases never meet in one ansible run. */
function render(i: number, s: {readonly pairs: readonly {lead: string; suffix: string; value: string; quoted: boolean; free: boolean}[]; readonly seps: readonly string[]}): string {
  return s.pairs
    .map((p, j) => {
      if (p.free) return `w${i}_${j}`;
      const kv = `${p.lead}v${i}_${j}${p.suffix}=${p.value}`;
      return p.quoted && !kv.includes("'") ? `'${kv}'` : kv;
    })
    .reduce((acc, word, j) => (j === 0 ? word : `${acc}${s.seps[j - 1]}${word}`), '');
}

const handWritten = [
  `v0_0='hello world' v0_1=1`,
  `v1_0="it's" v1_1='say "hi"' v1_2=a=b=c`,
  `v2_0=x'y z'w v2_1="a\\"b"`,
  `'v3_0=a b'`,
  `v4_0=\\x1c\\x85x\\ufeff v4_1=\\u2003y`,
  `v5_0=1\nv5_1=2 \\ v5_2=3`,
  `v6_0=1\tv6_1=2`,
  `v7_0=hello world`,
  `v8_0='open`,
  `  v9_0=1`,
  `v10_0=\\U00110000`,
];
const cases = [
  ...handWritten,
  ...fc.sample(shape, {seed: SEED, numRuns: RANDOM_CASES}).map((s, k) => render(handWritten.length + k, s)),
];

const scratch = mkdtempSync(join(tmpdir(), 'provision-extra-vars-'));
const env = {
  ...process.env,
  ANSIBLE_HOME: join(scratch, 'home'),
  ANSIBLE_LOCAL_TEMP: join(scratch, 'tmp'),
  ANSIBLE_CONFIG: join(scratch, 'none.cfg'),
  ANSIBLE_LOAD_CALLBACK_PLUGINS: '1',
  ANSIBLE_STDOUT_CALLBACK: 'json',
  ANSIBLE_LOCALHOST_WARNING: 'false',
  ANSIBLE_INVENTORY_UNPARSED_WARNING: 'false',
  ANSIBLE_DEPRECATION_WARNINGS: 'false',
  ANSIBLE_NOCOLOR: '1',
};

type Answer = {readonly vars: Record<string, unknown>} | {readonly error: string};
interface Case {
  readonly text: string;
  /** What parseExtraVars makes of it. */
  readonly answer: Answer;
}

/** The host's variables as ansible sees them with these `-e` strings (or its error). */
async function ansibleVars(extra: readonly string[]): Promise<Answer> {
  const args = ['localhost', '-c', 'local', '-m', 'debug', '-a', 'var=hostvars[inventory_hostname]', ...extra.flatMap((e) => ['-e', e])];
  try {
    const {stdout} = await run('ansible', args, {env, cwd: scratch, maxBuffer: 64 * 1024 * 1024});
    // One play, one task, one host.
    const doc = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {plays: [{tasks: [{hosts: {localhost: Record<string, unknown>}}]}]};
    return {vars: doc.plays[0].tasks[0].hosts.localhost['hostvars[inventory_hostname]'] as Record<string, unknown>};
  } catch (e) {
    const err = e as {stderr?: string; stdout?: string; message: string};
    return {error: `${err.stderr ?? ''}${err.stdout ?? ''}`.trim() || err.message};
  }
}

/** What `-e` added: the variables minus those of a run without `-e`. */
function extraOf(answer: Answer, baseline: ReadonlySet<string>): Answer {
  if ('error' in answer) return answer;
  return {vars: Object.fromEntries(Object.entries(answer.vars).filter(([k]) => !baseline.has(k)))};
}

function ours(text: string): Answer {
  try {
    return {vars: {...parseExtraVars([text])}};
  } catch (e) {
    if (e instanceof UserError) return {error: e.message};
    throw e;
  }
}

(live ? test : test.skip)(
  `-e key=value: ${handWritten.length} hand-written and ${RANDOM_CASES} random strings (seed ${SEED}) parse as the real ansible parses them${live ? '' : ' (skipped: ansible not installed)'}`,
  async (t) => {
    const base = await ansibleVars([]);
    if ('error' in base) return t.fail(`ansible without -e failed: ${base.error}`);
    const baseline = new Set(Object.keys(base.vars));
    /** Each case in an ansible run of its own, two at a time (the machine has two cores). */
    const eachAlone = async (list: readonly Case[], check: (c: Case, theirs: Answer) => void): Promise<void> => {
      for (let k = 0; k < list.length; k += 2) {
        const slice = list.slice(k, k + 2);
        const answers = await Promise.all(slice.map(async (c) => [c, extraOf(await ansibleVars([c.text]), baseline)] as const));
        for (const [c, theirs] of answers) check(c, theirs);
      }
    };

    const mine: Case[] = cases.map((text) => ({text, answer: ours(text)}));
    const accepted = mine.filter((c) => 'vars' in c.answer);
    const refused = mine.filter((c) => 'error' in c.answer);

    // Accepted strings: one ansible run with all of them (their keys never collide), compared whole;
    // on a difference, each case alone, to name the strings that differ.
    const merged = Object.assign({}, ...accepted.map((c) => (c.answer as {vars: Record<string, unknown>}).vars)) as Record<string, unknown>;
    const together = extraOf(await ansibleVars(accepted.map((c) => c.text)), baseline);
    if (!('vars' in together) || !isDeepEqual(together.vars, merged)) {
      await eachAlone(accepted, (c, theirs) => t.deepEqual(c.answer, theirs, `-e ${JSON.stringify(c.text)}`));
    } else {
      t.pass();
    }

    // Refused strings, one ansible run each: ansible refuses them too, or keeps a free word as `_raw_params`.
    await eachAlone(refused, (c, theirs) => {
      const agrees = 'error' in theirs || '_raw_params' in theirs.vars;
      t.true(agrees, `-e ${JSON.stringify(c.text)}: provision refuses it (${(c.answer as {error: string}).error}), ansible gives ${JSON.stringify(theirs)}`);
    });
    t.log(`${cases.length} strings: ${accepted.length} accepted (${Object.keys(merged).length} variables, equal to ansible's), ${refused.length} refused by both`);
    t.true(accepted.length > cases.length / 2, 'most generated strings are valid key=value');
    t.true(refused.length > 0, 'some generated strings are refused');
  },
);

function isDeepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}
