/** provision watch's pure parts: observing a check, state transitions, backoff, the state file, metrics text, options. */
import test from 'ava';
import {mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {
  applyCheck, backedOff, backoffChecks, emptyState, observer, parseState, readDriftedTasks, stateJson, writeAtomic,
  type DriftState, type Observation,
} from '../../src/cli/drift.ts';
import {metricsText} from '../../src/cli/metrics.ts';
import {changeLine, checkLine, parseDuration, parseListen, without} from '../../src/cli/watch.ts';
import {UserError} from '../../src/core/errors.ts';
import type {HostCounts, RunEvent, Status} from '../../src/core/events.ts';

const counts = (c: Partial<HostCounts> = {}): HostCounts => ({ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0, ...c});

/** An observation: `results` as `host|task|status`, all in play `p`. */
function obs(at: string, results: string[], opts: {unreachable?: Record<string, string>; hosts?: Record<string, Partial<HostCounts>>; interrupted?: boolean} = {}): Observation {
  const rs = results.map((r) => {
    const [host = '', task = '', status = 'ok'] = r.split('|');
    return {host, play: 'p', task, status: status as Status, msg: `${status} ${task}`};
  });
  const hosts: Record<string, HostCounts> = {};
  for (const r of rs) hosts[r.host] = counts();
  for (const [h, c] of Object.entries(opts.hosts ?? {})) hosts[h] = counts(c);
  for (const h of Object.keys(opts.unreachable ?? {})) hosts[h] = counts({unreachable: 1});
  return {at, durationMs: 1500, results: rs, unreachable: opts.unreachable ?? {}, hosts, interrupted: opts.interrupted ?? false};
}

const drifted = (s: DriftState): string[] => s.tasks.filter((t) => t.state === 'drifted').map((t) => `${t.host}|${t.task}`).sort();
const changes = (c: ReturnType<typeof applyCheck>['changes']): string[] => c.map((x) => (x.type === 'drift' ? `${x.state} ${x.host}|${x.task}` : `${x.state} ${x.host}`));

test('observer: task results (not handlers), unreachable hosts apart, every label masked', (t) => {
  const o = observer((s) => s.replaceAll('hunter2', '***'), new Date('2026-01-01T00:00:00Z'));
  const events: RunEvent[] = [
    {type: 'start', playbook: 'pb', inventory: 'i', check: true, diff: false, hosts: ['h1', 'h2']},
    {type: 'result', host: 'h2', task: 'connect', play: '', role: null, status: 'unreachable', duration_ms: 3, diff: null, msg: 'ECONNREFUSED', pending: false},
    {type: 'play', name: 'p', hosts: ['h1'], tasks: 2},
    {type: 'task', play: 'p', name: 'pw hunter2', role: null},
    {type: 'result', host: 'h1', task: 'pw hunter2', play: 'p', role: null, status: 'changed', duration_ms: 3, diff: null, msg: 'would write hunter2', pending: false},
    {type: 'task', play: 'p', name: 'reload', role: null, handler: true},
    {type: 'result', host: 'h1', task: 'reload', play: 'p', role: null, status: 'changed', duration_ms: 3, diff: null, msg: 'would run', pending: false},
    {type: 'recap', hosts: {h1: counts({changed: 2}), h2: counts({unreachable: 1})}, duration_ms: 42, check: true},
  ];
  for (const e of events) o.emit(e);
  const seen = o.done();
  t.deepEqual(seen.results, [{host: 'h1', play: 'p', task: 'pw ***', status: 'changed', msg: 'would write ***'}]);
  t.deepEqual(seen.unreachable, {h2: 'ECONNREFUSED'});
  t.is(seen.durationMs, 42);
  t.false(seen.interrupted);
  t.is(seen.at, '2026-01-01T00:00:00.000Z');
});

test('observer: no recap means the check did not finish', (t) => {
  t.true(observer((s) => s).done().interrupted);
});

test('transitions: drifted on first sight, cleared when ok again, no event while unchanged; since kept', (t) => {
  let s = emptyState('/pb.ts');
  let r = applyCheck(s, obs('T1', ['h1|a|ok', 'h1|b|changed', 'h2|a|ok', 'h2|b|ok']));
  t.deepEqual(changes(r.changes), ['drifted h1|b']);
  s = r.state;
  t.deepEqual(drifted(s), ['h1|b']);
  r = applyCheck(s, obs('T2', ['h1|a|ok', 'h1|b|changed', 'h2|a|ok', 'h2|b|changed']));
  t.deepEqual(changes(r.changes), ['drifted h2|b'], 'h1|b still drifted: no event');
  t.is(r.state.tasks.find((x) => x.host === 'h1' && x.task === 'b')?.since, 'T1');
  r = applyCheck(r.state, obs('T3', ['h1|a|ok', 'h1|b|ok', 'h2|a|skipped', 'h2|b|changed']));
  t.deepEqual(changes(r.changes), ['cleared h1|b']);
  t.deepEqual(drifted(r.state), ['h2|b']);
  t.is(r.state.checkedAt, 'T3');
  t.is(r.state.lastSuccessAt, 'T3');
});

test('transitions: a failed task keeps its state; a host with a failure keeps the tasks the check did not reach', (t) => {
  const s = applyCheck(emptyState('/pb.ts'), obs('T1', ['h1|a|changed', 'h1|b|changed', 'h1|c|ok'])).state;
  const r = applyCheck(s, obs('T2', ['h1|a|failed'], {hosts: {h1: {failed: 1}}}));
  t.deepEqual(changes(r.changes), []);
  t.deepEqual(drifted(r.state), ['h1|a', 'h1|b']);
  t.is(r.state.lastSuccessAt, 'T1', 'a check with a failed host is no success');
});

test('transitions: a host checked to the end loses tasks gone from the playbook (drifted ones cleared); interrupted checks drop nothing', (t) => {
  const s = applyCheck(emptyState('/pb.ts'), obs('T1', ['h1|old|changed', 'h1|a|ok', 'h2|old|changed'])).state;
  const partial = applyCheck(s, obs('T2', ['h1|a|ok'], {interrupted: true}));
  t.deepEqual(drifted(partial.state), ['h1|old', 'h2|old']);
  t.is(partial.state.lastSuccessAt, 'T1');
  const r = applyCheck(s, obs('T2', ['h1|a|ok', 'h1|renamed|ok']));
  t.deepEqual(changes(r.changes), ['cleared h1|old']);
  t.deepEqual(r.state.tasks.map((x) => `${x.host}|${x.task}`).sort(), ['h1|a', 'h1|renamed', 'h2|old'], 'h2 was not in this check: kept');
});

test('unreachable: tracked apart, tasks kept, event on change only; reachable again resets', (t) => {
  const s0 = applyCheck(emptyState('/pb.ts'), obs('T1', ['h1|a|changed', 'h2|a|ok'])).state;
  const r1 = applyCheck(s0, obs('T2', ['h2|a|ok'], {unreachable: {h1: 'connect ECONNREFUSED'}}));
  t.deepEqual(changes(r1.changes), ['unreachable h1']);
  t.deepEqual(drifted(r1.state), ['h1|a'], 'its last known drift stays');
  t.deepEqual(r1.state.hosts.h1, {unreachable: true, failures: 1, skip: 2, msg: 'connect ECONNREFUSED'});
  const r2 = applyCheck(r1.state, obs('T3', [], {unreachable: {h1: 'again'}}));
  t.deepEqual(changes(r2.changes), [], 'still unreachable: no event');
  t.is(r2.state.hosts.h1?.failures, 2);
  const r3 = applyCheck(r2.state, obs('T4', ['h1|a|ok']));
  t.deepEqual(changes(r3.changes), ['reachable h1', 'cleared h1|a']);
  t.deepEqual(r3.state.hosts.h1, {unreachable: false, failures: 0, skip: 0});
});

test('backoff: 2^N scheduled checks after N in a row, capped; a skipped host counts down and stays reported unreachable', (t) => {
  t.deepEqual([0, 1, 2, 3, 4, 5, 6, 40].map((n) => backoffChecks(n)), [0, 2, 4, 8, 16, 32, 32, 32]);
  t.is(backoffChecks(3, 5), 5);
  let s = applyCheck(emptyState('/pb.ts'), obs('T1', [], {unreachable: {h1: 'down'}, hosts: {h2: {}}})).state;
  t.deepEqual([...backedOff(s)], ['h1']);
  const skipped: string[] = [];
  // Scheduled checks: h1 left out while skip > 0, then tried (and down again: 4 more).
  for (let i = 0; i < 3; i++) {
    const skip = backedOff(s);
    skipped.push([...skip].join(','));
    const unreachable: Record<string, string> = skip.has('h1') ? {} : {h1: 'down'};
    s = applyCheck(s, obs(`T${i + 2}`, ['h2|a|ok'], {unreachable}), skip).state;
    t.true(s.hosts.h1?.unreachable, 'reported unreachable while backed off');
  }
  t.deepEqual(skipped, ['h1', 'h1', '']);
  t.deepEqual(s.hosts.h1, {unreachable: true, failures: 2, skip: 4, msg: 'down'});
});

test('state file: written atomically, read back the same; other versions and garbage refused with a reason', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-drift-'));
  const s = applyCheck(emptyState('/pb.ts'), obs('2026-01-01T00:00:00.000Z', ['h1|a|changed', 'h1|b|ok'], {unreachable: {h2: 'down'}})).state;
  const path = join(dir, 'sub', 'drift.json');
  writeAtomic(path, stateJson(s));
  t.deepEqual(readdirSync(join(dir, 'sub')), ['drift.json'], 'no temporary file left');
  const text = readFileSync(path, 'utf8');
  t.deepEqual(parseState(text), s);
  const file = JSON.parse(text) as Record<string, unknown>;
  t.deepEqual(file.drifted, [{host: 'h1', play: 'p', task: 'a', msg: 'changed a', since: '2026-01-01T00:00:00.000Z'}]);
  t.is(file.checked_at, '2026-01-01T00:00:00.000Z');
  t.regex(String(parseState(JSON.stringify({...file, version: 0}))), /format version 0/);
  t.is(parseState('{'), 'not JSON');
  t.is(parseState('[]'), 'not a drift state');
});

test('--only-drifted: a missing, old or foreign state file is one clear line, exit 5; the filter matches masked names', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-drift-'));
  const err = (f: () => unknown): UserError => {
    const e = t.throws(f);
    if (!(e instanceof UserError)) throw new Error('not a UserError');
    t.is(e.exitCode, 5);
    t.notRegex(e.message, /\n/);
    return e;
  };
  t.regex(err(() => readDriftedTasks(join(dir, 'none.json'), '/pb.ts')).message, /no drift state at .*none\.json: run 'provision watch PLAYBOOK --once' first/);
  writeFileSync(join(dir, 'old.json'), JSON.stringify({tasks: []}));
  t.regex(err(() => readDriftedTasks(join(dir, 'old.json'), '/pb.ts')).message, /not a drift state this provision reads \(format version null/);
  const s = applyCheck(emptyState('/pb.ts'), obs('T1', ['h1|pw ***|changed', 'h1|b|ok', 'h2|b|changed'])).state;
  writeFileSync(join(dir, 'ok.json'), stateJson(s));
  t.regex(err(() => readDriftedTasks(join(dir, 'ok.json'), '/other.ts')).message, /holds the drift of \/pb\.ts, not of \/other\.ts/);
  const d = readDriftedTasks(join(dir, 'ok.json'), '/pb.ts');
  t.deepEqual([...d.hosts(['h1', 'h2', 'h3'])], ['h1', 'h2']);
  t.deepEqual([...d.hosts(['h2'])], ['h2'], 'within --limit');
  const only = d.onlyTasks((x) => x.replaceAll('hunter2', '***'));
  t.true(only('h1', 'p', 'pw hunter2'));
  t.false(only('h1', 'p', 'b'));
  t.true(only('h2', 'p', 'b'));
  t.false(only('h1', 'q', 'pw hunter2'), 'another play');
});

test('metrics text: every series, with the state\'s labels, escaped', async (t) => {
  let s = applyCheck(emptyState('/pb.ts'), obs('2026-01-01T00:00:00.000Z', ['h1|a "quoted"|changed', 'h1|b|ok', 'h3|a "quoted"|ok'], {unreachable: {h2: 'down'}})).state;
  s = {...s, durationMs: 2500};
  const text = await metricsText(s);
  const series = text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).sort();
  t.deepEqual(series, [
    'provision_check_duration_seconds 2.5',
    'provision_check_last_success_timestamp 1767225600',
    'provision_drift_hosts 1',
    'provision_drift_tasks{host="h1",play="p",task="a \\"quoted\\""} 1',
    'provision_drift_tasks{host="h1",play="p",task="b"} 0',
    'provision_drift_tasks{host="h3",play="p",task="a \\"quoted\\""} 0',
    'provision_unreachable{host="h1"} 0',
    'provision_unreachable{host="h2"} 1',
    'provision_unreachable{host="h3"} 0',
  ]);
  t.regex(text, /# TYPE provision_drift_tasks gauge/);
  const none = (await metricsText(emptyState('/pb.ts'))).split('\n').filter((l) => l !== '' && !l.startsWith('#')).sort();
  t.deepEqual(none, ['provision_check_duration_seconds 0', 'provision_check_last_success_timestamp 0', 'provision_drift_hosts 0']);
});

test('stream lines: drift and host changes, and one check line', (t) => {
  const r = applyCheck(emptyState('/pb.ts'), obs('T1', ['h1|a|changed'], {unreachable: {h2: 'down'}}));
  t.deepEqual(r.changes.map(changeLine), [
    {type: 'host', host: 'h2', state: 'unreachable', msg: 'down'},
    {type: 'drift', host: 'h1', play: 'p', task: 'a', state: 'drifted', msg: 'changed a'},
  ]);
  t.deepEqual(checkLine(r.state, obs('T1', []), new Set(['h9'])), {
    type: 'check', time: 'T1', duration_ms: 1500, drifted_hosts: 1, drifted_tasks: 1, unreachable_hosts: 1, backed_off: ['h9'], interrupted: false,
  });
});

const durations: readonly (readonly [string, number | RegExp])[] = [
  ['30s', 30_000], ['5m', 300_000], ['1h', 3_600_000], ['1h30m', 5_400_000], ['1500ms', 1500], ['2', 2000], ['1.5s', 1500],
  ['500ms', /at least 1s/], ['5x', /expected a duration/], ['', /expected a duration/], ['-1s', /expected a duration/],
];
for (const [text, want] of durations) {
  test(`--every ${JSON.stringify(text)}`, (t) => {
    if (typeof want === 'number') t.is(parseDuration(text), want);
    else t.regex(t.throws(() => parseDuration(text))?.message ?? '', want);
  });
}

test('--listen ADDR:PORT', (t) => {
  t.deepEqual(parseListen('127.0.0.1:9469'), {host: '127.0.0.1', port: 9469});
  t.deepEqual(parseListen(':0'), {host: undefined, port: 0});
  t.deepEqual(parseListen('[::1]:80'), {host: '::1', port: 80});
  for (const bad of ['9469', '127.0.0.1', 'a:b', 'h:70000']) t.throws(() => parseListen(bad), {message: /--listen: expected ADDR:PORT/});
});

test('without: the check\'s hosts leave out those backed off', (t) => {
  t.is(without(undefined, ['a', 'b'], new Set()), undefined);
  t.deepEqual([...(without(undefined, ['a', 'b', 'c'], new Set(['b'])) ?? [])], ['a', 'c']);
  t.deepEqual([...(without(new Set(['a', 'b']), ['a', 'b', 'c'], new Set(['b'])) ?? [])], ['a']);
});

test('writeAtomic: a place it cannot write is one clear line (exit 1), not an internal error', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-drift-'));
  writeFileSync(join(dir, 'file'), '');
  const e = t.throws(() => writeAtomic(join(dir, 'file', 'drift.json'), '{}'));
  t.true(e instanceof UserError);
  t.is((e as UserError).exitCode, 1);
  t.regex(e?.message ?? '', /^cannot write .*file\/drift\.json: (EEXIST|ENOTDIR)$/);
});
