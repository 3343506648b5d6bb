/**
 * Secrets never show, whatever they contain: a seeded fast-check property registers secrets full of
 * quotes, backslashes, newlines, tabs, unicode (astral characters and lone surrogates included) and
 * JSON-looking text, puts them into run events and ad-hoc outcomes, and feeds those through every
 * writer: the JSON lines (`--json`), the plain lines (verbose, colour, diffs), the live UI's store
 * (every string of every snapshot), the audit log lines and `ping`/`exec` output. No output may hold a secret in clear,
 * nor in its JSON-escaped form, nor even a piece of one (each secret carries a marker that appears
 * nowhere else); JSON output must still parse.
 *
 * Each secret is `<nasty text><marker><nasty text>`, sometimes around an earlier secret (a secret
 * containing another must be masked whole). The marker (`SEKRIT<n>X`) cannot come from escaping or
 * formatting, so finding it in an output means part of a secret leaked; it also keeps a secret from
 * matching the writers' own text (a secret `"a"` would "show" in every `PLAY`).
 */
import test from 'ava';
import fc from 'fast-check';
import type {HostCounts, RunEvent, Status} from '../../src/core/events.ts';
import {Secrets, secret} from '../../src/core/secret.ts';
import {formatOutcome, type Outcome} from '../../src/cli/adhoc.ts';
import {jsonWriter} from '../../src/ui/json.ts';
import {LiveStore, type RunInfo} from '../../src/ui/live-store.ts';
import {plainWriter} from '../../src/ui/plain.ts';
import {auditLine} from '../../src/core/session.ts';

/** The property's fixed seed and run count: a failure is replayed by running the file again. */
const SEED = 0x5ec2e7;
const RUNS = 300;

// ---------------------------------------------------------------------------------------------
// The writers, each reduced to "events in, every string a user can see out".

function jsonOut(events: readonly RunEvent[], secrets: Secrets): string {
  let out = '';
  const emit = jsonWriter((line) => (out += line), secrets);
  for (const e of events) emit(e);
  return out;
}

function plainOut(events: readonly RunEvent[], verbose: number, color: boolean, secrets: Secrets): string {
  let out = '';
  const emit = plainWriter((s) => (out += s), {verbose, color, secrets});
  for (const e of events) emit(e);
  return out;
}

/** Every string reachable from `value` (object keys too), one per line. */
function strings(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, into);
  else if (value instanceof Map) for (const [k, v] of value) strings([k, v], into);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      into.push(k);
      strings(v, into);
    }
  }
  return into;
}

/** The live store: every string of the snapshot after each event. */
function liveOut(events: readonly RunEvent[], info: RunInfo, secrets: Secrets): string {
  let t = 0;
  const store = new LiveStore(info, secrets, () => (t += 100));
  const seen: string[] = strings(store.snapshot());
  for (const e of events) {
    store.apply(e);
    strings(store.snapshot(), seen);
  }
  return seen.join('\n');
}

function adhocOut(kind: 'ping' | 'exec', outcomes: readonly Outcome[], json: boolean, secrets: Secrets): string {
  return outcomes.map((o) => formatOutcome(kind, o, json, secrets)).join('');
}

/** The audit log lines the engine would write on the hosts, one per result (what changed: its message and command). */
function auditOut(events: readonly RunEvent[], secrets: Secrets): string {
  return events.flatMap((e) => (e.type === 'result'
    ? [auditLine(new Date(0), {user: 'root@ctl', host: e.host, playbook: 'site', play: e.play, task: e.task, change: `${e.msg} ${e.cmd ?? ''}`}, secrets.mask)]
    : [])).join('\n');
}

/** Throws (for fast-check to shrink and report) when `output` shows any of `secrets`, or a part. */
function assertClean(writer: string, output: string, secrets: readonly {value: string; marker: string}[]): void {
  for (const {value, marker} of secrets) {
    const escaped = JSON.stringify(value).slice(1, -1);
    const how = output.includes(value) ? 'in clear' : output.includes(escaped) ? 'JSON-escaped' : output.includes(marker) ? 'in part' : null;
    if (how) throw new Error(`${writer}: secret ${JSON.stringify(value)} shows ${how} in ${JSON.stringify(output)}`);
  }
}

function assertJsonLines(writer: string, output: string, count: number): void {
  const lines = output.split('\n');
  if (lines.pop() !== '') throw new Error(`${writer}: output does not end with a newline`);
  if (lines.length !== count) throw new Error(`${writer}: ${lines.length} lines for ${count} events`);
  for (const line of lines) {
    const v: unknown = JSON.parse(line); // throws on a broken line
    if (v === null || typeof v !== 'object' || (v as {type?: unknown}).type === undefined) throw new Error(`${writer}: not an event: ${line}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Generators.

/** Pieces that serialisers and line formatters treat specially. */
const nasty: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '"', '\\', '\\"', '\\\\', '\n', '\r\n', '\r', '\t', '\b', '\f', '\u0000', '\u001b[31m', '\u007f', '\u2028', '\u2029', '\ufeff',
    'é', 'e\u0301', 'ß', '€', '中文', '😀', '𝄞', '👩‍👩‍👧', '\ud83d', '\ude00',
    '{"k":"v"}', '["a",1,null]', '"}', '{"', '\\u0022', '\\n', "'", '`${x}`', '$&', '$1', '***', '*', '%s', '</script>', ' ', '  ',
    '--- before', '+++ after', '@@ -1 +1 @@', '-', '+',
  ),
  fc.string({unit: 'binary', maxLength: 4}),
  fc.string({unit: 'grapheme', maxLength: 4}),
  fc.json({depthSize: 'small'}).map((j) => j.slice(0, 24)),
);

/** A secret's shape: text before and after its marker, and maybe an earlier secret inside it. */
const secretShape = fc.record({
  before: fc.array(nasty, {maxLength: 4}).map((a) => a.join('')),
  after: fc.array(nasty, {maxLength: 4}).map((a) => a.join('')),
  wraps: fc.option(fc.nat(), {nil: undefined}),
  /** Met as a `Secret` in a task's arguments (`addFound`, as the engine does) or as a vault value (`add`). */
  viaSecret: fc.boolean(),
});

/** Text of an event field: filler and references to the run's secrets. */
type Text = readonly (string | {readonly s: number})[];
const text: fc.Arbitrary<Text> = fc.array(fc.oneof({weight: 2, arbitrary: nasty}, {weight: 1, arbitrary: fc.nat().map((s) => ({s}))}), {maxLength: 5});
const optText = fc.option(text, {nil: undefined});

const STATUSES: readonly Status[] = ['ok', 'changed', 'failed', 'skipped', 'unreachable'];
const HOSTS = ['web1', 'db"\\2'] as const;

const resultShape = fc.record({
  status: fc.constantFrom(...STATUSES),
  ignored: fc.boolean(),
  msg: text,
  cmd: optText,
  stdout: optText,
  stderr: optText,
  rc: fc.option(fc.integer({min: 0, max: 255}), {nil: null}),
  diff: fc.option(fc.record({before: text, after: text, path: optText}), {nil: null}),
  pending: fc.boolean(),
});

const runShape = fc.record({
  secrets: fc.array(secretShape, {minLength: 1, maxLength: 4}),
  playbook: text,
  inventory: text,
  play: text,
  check: fc.boolean(),
  tasks: fc.array(fc.record({name: text, role: fc.option(text, {nil: null}), handler: fc.boolean(), results: fc.tuple(resultShape, resultShape)}), {minLength: 1, maxLength: 4}),
  interrupted: fc.boolean(),
  adhoc: fc.array(
    fc.record({host: fc.constantFrom(...HOSTS), status: fc.constantFrom<Outcome['status']>('ok', 'changed', 'failed', 'unreachable'), rc: fc.option(fc.integer({min: 0, max: 255}), {nil: undefined}), stdout: optText, stderr: optText, msg: optText}),
    {minLength: 1, maxLength: 3},
  ),
});
type RunShape = typeof runShape extends fc.Arbitrary<infer T> ? T : never;

let markers = 0;

/** Registers the run's secrets and builds its events and ad-hoc outcomes. */
function build(run: RunShape): {secrets: {value: string; marker: string}[]; registry: Secrets; events: RunEvent[]; info: RunInfo; outcomes: Outcome[]} {
  const secrets: {value: string; marker: string}[] = [];
  const registry = new Secrets();
  for (const shape of run.secrets) {
    const marker = `SEKRIT${markers++}X`;
    const inner = shape.wraps !== undefined && secrets.length > 0 ? secrets[shape.wraps % secrets.length]!.value : '';
    const value = `${shape.before}${inner}${marker}${shape.after}`;
    if (shape.viaSecret) registry.addFound({args: {password: secret(value)}});
    else registry.add(value);
    secrets.push({value, marker});
  }
  const str = (t: Text): string => t.map((p) => (typeof p === 'string' ? p : secrets[p.s % secrets.length]!.value)).join('');
  const opt = (t: Text | undefined): string | undefined => (t === undefined ? undefined : str(t));

  const play = str(run.play);
  const info: RunInfo = {playbook: str(run.playbook), inventory: str(run.inventory), check: run.check, diff: true};
  const counts: Record<string, HostCounts> = Object.fromEntries(HOSTS.map((h) => [h, {ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0}]));
  const events: RunEvent[] = [
    {type: 'start', ...info, hosts: HOSTS},
    {type: 'play', name: play, hosts: HOSTS, tasks: run.tasks.length},
  ];
  for (const task of run.tasks) {
    const name = str(task.name);
    const role = task.role === null ? null : str(task.role);
    events.push({type: 'task', play, name, role, handler: task.handler, ...(task.handler ? {hosts: HOSTS} : {})});
    task.results.forEach((r, i) => {
      const host = HOSTS[i]!; // results: a pair, one per host
      counts[host]![r.status]++;
      const msg = str(r.msg) + (r.status === 'failed' && r.ignored ? ' (ignored)' : '');
      const diff = r.diff === null ? null : {before: str(r.diff.before), after: str(r.diff.after), ...(r.diff.path ? {path: str(r.diff.path)} : {})};
      // -vvv: the command as sent (masked by the engine, and again by each writer).
      if (r.cmd) events.push({type: 'command', host, task: name, on: host, phase: 'apply', cmd: str(r.cmd), rc: r.rc, duration_ms: 7});
      events.push({type: 'result', host, task: name, play, role, status: r.status, duration_ms: 42, diff, msg, pending: r.pending, cmd: opt(r.cmd), stdout: opt(r.stdout), stderr: opt(r.stderr), rc: r.rc});
    });
  }
  events.push({type: 'recap', hosts: counts, duration_ms: 1234, check: run.check, interrupted: run.interrupted});
  const outcomes: Outcome[] = run.adhoc.map((o) => ({host: o.host, status: o.status, rc: o.rc, stdout: opt(o.stdout), stderr: opt(o.stderr), msg: opt(o.msg)}));
  return {secrets, registry, events, info, outcomes};
}

/** Runs every writer on one generated run; throws on the first leak. */
function everyWriter(run: RunShape): void {
  const {secrets, registry, events, info, outcomes} = build(run);
  const json = jsonOut(events, registry);
  assertJsonLines('json', json, events.length);
  assertClean('json', json, secrets);
  for (const verbose of [0, 1, 2, 3]) {
    for (const color of [false, true]) assertClean(`plain -${'v'.repeat(verbose)} color=${color}`, plainOut(events, verbose, color, registry), secrets);
  }
  assertClean('live store', liveOut(events, info, registry), secrets);
  const audit = auditOut(events, registry);
  if ((audit === '' ? 0 : audit.split('\n').length) !== events.filter((e) => e.type === 'result').length) throw new Error(`audit log: a line broke in ${JSON.stringify(audit)}`);
  assertClean('audit log', audit, secrets);
  for (const kind of ['ping', 'exec'] as const) {
    const adhocJson = adhocOut(kind, outcomes, true, registry);
    assertJsonLines(`${kind} --json`, adhocJson, outcomes.length);
    assertClean(`${kind} --json`, adhocJson, secrets);
    assertClean(kind, adhocOut(kind, outcomes, false, registry), secrets);
  }
}

// ---------------------------------------------------------------------------------------------
// Tests.

/** A run whose secret the JSON serialiser escapes: `mask(JSON.stringify(event))` printed it in clear. */
const escapedSecretRun: RunShape = {
  secrets: [{before: 'pa"ss\\word\n\t', after: '😀\ud83d', wraps: undefined, viaSecret: false}],
  playbook: ['site.yml'],
  inventory: ['hosts.yml'],
  play: ['web'],
  check: false,
  tasks: [
    {
      name: ['set password ', {s: 0}],
      role: null,
      handler: false,
      results: [
        {status: 'failed', ignored: false, msg: ['bad ', {s: 0}], cmd: ['echo ', {s: 0}], stdout: ['line\n', {s: 0}, '\n'], stderr: [{s: 0}], rc: 1, diff: {before: ['x\n'], after: ['x\n', {s: 0}, '\n'], path: undefined}, pending: false},
        {status: 'changed', ignored: false, msg: [], cmd: undefined, stdout: undefined, stderr: undefined, rc: null, diff: null, pending: false},
      ],
    },
  ],
  interrupted: false,
  adhoc: [{host: 'web1', status: 'failed', rc: 1, stdout: ['out ', {s: 0}], stderr: [{s: 0}, '\n'], msg: undefined}],
};

test('a secret the JSON serialiser escapes (quote, backslash, newline, astral, lone surrogate) is masked, not escaped', (t) => {
  const value = 'pa"ss\\word\n\t😀\ud83d!';
  const secrets = new Secrets();
  secrets.add(value);
  const escaped = JSON.stringify(value).slice(1, -1);
  const event: RunEvent = {type: 'result', host: 'web1', task: 't', play: 'p', role: null, status: 'failed', duration_ms: 1, diff: null, msg: `token ${value}`, pending: false, stdout: value};
  const json = jsonOut([event], secrets);
  t.false(json.includes(escaped), json);
  t.deepEqual(JSON.parse(json), {...event, msg: 'token ***', stdout: '***'});
  const adhoc = formatOutcome('exec', {host: 'web1', status: 'failed', rc: 1, stdout: value, stderr: ''}, true, secrets);
  t.false(adhoc.includes(escaped), adhoc);
  t.is(JSON.parse(adhoc).stdout, '***');
});

test('a secret with a newline in a failure\'s output or a diff is masked before the lines are indented', (t) => {
  const value = 'first half\nsecond half';
  const secrets = new Secrets();
  secrets.add(value);
  const event: RunEvent = {type: 'result', host: 'web1', task: 't', play: 'p', role: null, status: 'failed', duration_ms: 1, diff: {before: 'a\n', after: `a\n${value}\n`}, msg: 'boom', pending: false, stderr: `x\n${value}\n`};
  const plain = plainOut([event], 0, false, secrets);
  t.notRegex(plain, /first half|second half/);
  t.regex(plain, /^ {2}stderr: x\n {10}\*\*\*$/m);
  t.regex(plain, /^\+\*\*\*$/m);
  const store = new LiveStore({playbook: 'p', inventory: 'i', check: false, diff: true}, secrets);
  store.apply(event);
  t.notRegex(strings(store.snapshot()).join('\n'), /first half|second half/);
});

test('exec output is masked before it is trimmed or joined', (t) => {
  const value = 'tail secret \n';
  const secrets = new Secrets();
  secrets.add(value);
  const out = formatOutcome('exec', {host: 'web1', status: 'changed', rc: 0, stdout: `ok\n${value}`, stderr: ''}, false, secrets);
  t.is(out, 'web1 | CHANGED | rc=0 >>\nok\n***\n');
  t.false(out.includes('tail secret'));
});

test('maskValue masks every string of a value, nested, keys included, and leaves the rest alone', (t) => {
  const secrets = new Secrets();
  secrets.add('k"ey', 'k"ey-longer');
  const {mask, maskValue} = secrets;
  const input = {a: 'x k"ey y', n: 3, b: true, z: null, u: undefined, list: ['k"ey-longer', 1, {deep: ['k"ey']}], ['k"ey']: 'v', s: secret('k"ey')};
  const frozen = structuredClone({...input, s: undefined});
  const out = maskValue(input);
  t.deepEqual({...out, s: undefined}, {a: 'x *** y', n: 3, b: true, z: null, u: undefined, list: ['***', 1, {deep: ['***']}], ['***']: 'v', s: undefined});
  t.is(out.s, input.s, 'a Secret is kept (it prints as ***)');
  t.deepEqual({...input, s: undefined}, frozen, 'the input is not changed');
  t.is(mask('a k"ey-longer b'), 'a *** b', 'the longest secret first');
  const proto = maskValue(JSON.parse('{"__proto__": "k\\"ey"}') as Record<string, unknown>);
  t.is(Object.getPrototypeOf(proto), Object.prototype);
  t.is(Object.getOwnPropertyDescriptor(proto, '__proto__')?.value, '***');
});

test(`property: no writer shows a secret (seed ${SEED}, ${RUNS} runs)`, (t) => {
  let runs = 0;
  fc.assert(
    fc.property(runShape, (run) => {
      runs++;
      everyWriter(run);
    }),
    {seed: SEED, numRuns: RUNS, examples: [[escapedSecretRun]]},
  );
  t.is(runs, RUNS, 'every run (the fixed example is the first) went through the writers');
});
