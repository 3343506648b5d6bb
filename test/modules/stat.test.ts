import test from 'ava';
import {chmodSync, mkdtempSync, mkdirSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import type {TaskResult} from '../../src/core/types.ts';
import {copy} from '../../src/modules/files.ts';
import {parseStat, stat, statModule, statOf, statProbeScript, type StatArgs, type StatState} from '../../src/modules/stat.ts';
import {localExec} from '../../src/transport/fake.ts';
import {runFake} from '../helpers/engine.ts';
import {isProbeBatch} from '../helpers/fakehost.ts';

const probe = async (a: StatArgs): Promise<StatState> => parseStat((await localExec(statProbeScript(a))).stdout);

test('the probe reads a file, a directory, a link (followed or not) and a missing path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-stat-'));
  const f = join(dir, 'f');
  writeFileSync(f, 'hello\n');
  chmodSync(f, 0o640);
  mkdirSync(join(dir, 'd'));
  symlinkSync(f, join(dir, 'l'));
  const file = await probe({path: f, checksum: true});
  t.like(file, {kind: 'stat', stat: {exists: true, type: 'file', mode: '0640', size: 6, sha256: '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03'}});
  t.true(file.kind === 'stat' && file.stat.exists && Math.abs(file.stat.mtime - Date.now() / 1000) < 120);
  const noSum = await probe({path: f});
  t.true(noSum.kind === 'stat' && noSum.stat.exists && noSum.stat.sha256 === undefined, 'no checksum unless asked');
  t.like(await probe({path: join(dir, 'd')}), {stat: {exists: true, type: 'directory'}});
  t.like(await probe({path: join(dir, 'l'), checksum: true}), {stat: {exists: true, type: 'link', target: f}});
  t.like(await probe({path: join(dir, 'l'), follow: true, checksum: true}), {stat: {exists: true, type: 'file', size: 6}});
  t.deepEqual(await probe({path: join(dir, 'nope')}), {kind: 'stat', stat: {exists: false}});
});

test('plan: never a step; the data in the plan (and a word in the reason); errors fail', (t) => {
  const p = statModule.plan({kind: 'stat', stat: {exists: false}}, {path: '/x'});
  t.deepEqual(p.steps, []);
  t.deepEqual(p.data, {exists: false});
  t.is(p.reason, '/x: absent');
  t.regex(statModule.plan({kind: 'error', message: 'Permission denied'}, {path: '/x'}).fail ?? '', /cannot stat \/x: Permission denied/);
  t.truthy(statModule.plan({kind: 'stat', stat: {exists: false}}, {path: 'x'}).fail);
  t.like(parseStat('error\nstat: cannot stat: Permission denied\n'), {kind: 'error'});
});

test('statOf reads a registered result back, and refuses what is not one', (t) => {
  const base: TaskResult = {status: 'ok', changed: false, failed: false, skipped: false, msg: '/x: absent', diff: null, stdout: '', stderr: '', rc: null, dependsOnPendingChange: false, data: {exists: false}};
  t.deepEqual(statOf(base), {exists: false});
  t.throws(() => statOf({...base, status: 'skipped', skipped: true, msg: 'condition false'}), {message: /was skipped/});
  t.throws(() => statOf({...base, data: {x: 1}}), {message: /not a stat result/});
  t.throws(() => statOf(undefined), {message: /no such/});
});

test('stat through the engine: registered, read by a later when; ok and only probes under --check', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-stat-run-'));
  const path = join(dir, 'app.conf');
  const marker = join(dir, 'seen');
  const pb = definePlaybook({name: 's', plays: [{name: 's', hosts: 'all_hosts', gatherFacts: false, tasks: [
    stat({path, checksum: true}, {register: 'conf'}),
    copy({dest: marker, content: 'missing\n'}, {when: (ctx) => !statOf(ctx.results.conf).exists}),
  ]}]});
  const check = await runFake(pb, {check: true});
  t.deepEqual(check.results().map((r) => r.status), ['ok', 'changed']);
  t.is(check.results()[0]?.msg, `${path}: absent`);
  t.true(check.transports.get('h1')!.execs.every(isProbeBatch), 'only probes');

  writeFileSync(path, 'x\n');
  const run = await runFake(pb);
  t.deepEqual(run.results().map((r) => r.status), ['ok', 'skipped']);
  t.is(run.results()[0]?.msg, `${path}: file`);
  // What later tasks read: the registered result's data.
  const seen = await runFake(definePlaybook({name: 's', plays: [{name: 's', hosts: 'all_hosts', gatherFacts: false, tasks: [
    stat({path, checksum: true}, {register: 'conf'}),
    copy((ctx) => ({dest: marker, content: `${JSON.stringify(statOf(ctx.results.conf))}\n`})),
  ]}]}));
  t.is(seen.results()[1]?.status, 'changed');
  t.like(JSON.parse(readFileSync(marker, 'utf8')), {exists: true, type: 'file', size: 2});
  t.is(run.summary.hosts.h1?.changed, 0);
});
