import test from 'ava';
import {mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {createHash} from 'node:crypto';
import {definePlaybook} from '../../src/core/task.ts';
import {fetch, fetchDestination, fetchModule, type FetchPlanArgs} from '../../src/modules/fetch.ts';
import type {FileState} from '../../src/facts/file.ts';
import {runFake} from '../helpers/engine.ts';
import {isProbeBatch} from '../helpers/fakehost.ts';
import {localExec} from '../../src/transport/fake.ts';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const attrs = {mode: 0o644, owner: 'root', group: 'root'};
const onHost = (text: string): FileState => ({kind: 'file', size: text.length, sha256: sha(text), content: Buffer.from(text), ...attrs});
const args = (have?: string): FetchPlanArgs => ({src: '/etc/app.conf', local: '/backup/web1/etc/app.conf', failOnMissing: true, ...(have === undefined ? {} : {have: {sha256: sha(have), text: have}})});

// ---- pure plans

const cases: {title: string; have: FileState; args: FetchPlanArgs; steps: number; fail?: RegExp; reason?: RegExp; diff?: [string, string]}[] = [
  {title: 'not on the controller yet → fetch', have: onHost('a=1\n'), args: args(), steps: 1, reason: /^fetch \/backup\/web1\/etc\/app.conf \(4 bytes from \/etc\/app.conf\)$/, diff: ['', 'a=1\n']},
  {title: 'controller copy differs → update, with a diff', have: onHost('a=2\n'), args: args('a=1\n'), steps: 1, reason: /^update /, diff: ['a=1\n', 'a=2\n']},
  {title: 'same sha256 → nothing', have: onHost('a=1\n'), args: args('a=1\n'), steps: 0, reason: /already has it/},
  {title: 'missing on the host → fails (failOnMissing default)', have: {kind: 'missing'}, args: args(), steps: 0, fail: /does not exist on the host/},
  {title: 'missing, failOnMissing false → ok, nothing', have: {kind: 'missing'}, args: {...args(), failOnMissing: false}, steps: 0, reason: /nothing fetched/},
  {title: 'a directory → fails', have: {kind: 'directory', ...attrs}, args: args(), steps: 0, fail: /a directory, not a regular file/},
  {title: 'a symlink → fails, naming the target', have: {kind: 'link', target: '/x', ...attrs}, args: args(), steps: 0, fail: /symbolic link \(to \/x\)/},
  {title: 'binary content → fetch without a diff', have: {kind: 'file', size: 3, sha256: sha('a\0b'), content: Buffer.from('a\0b'), ...attrs}, args: args(), steps: 1, reason: /^fetch/},
];

for (const c of cases) {
  test(`fetch plan: ${c.title}`, (t) => {
    const p = fetchModule.plan(c.have, c.args);
    t.is(p.steps.length, c.steps);
    if (c.fail) t.regex(p.fail ?? '', c.fail);
    else t.is(p.fail, undefined);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
    t.deepEqual(p.diff ? [p.diff.before, p.diff.after] : undefined, c.diff);
    const s = p.steps[0];
    if (s) t.deepEqual(s, {kind: 'fetch', src: '/etc/app.conf', dest: '/backup/web1/etc/app.conf', sha256: c.have.kind === 'file' ? c.have.sha256 : ''});
  });
}

test('fetch: where a file lands, as Ansible (tree per host, flat, flat into a folder); a relative src is refused', (t) => {
  t.is(fetchDestination({src: '/etc/profile', dest: '/backup'}, 'web1'), '/backup/web1/etc/profile');
  t.is(fetchDestination({src: '/etc/profile', dest: '/backup/p.txt', flat: true}, 'web1'), '/backup/p.txt');
  t.is(fetchDestination({src: '/etc/profile', dest: '/backup/', flat: true}, 'web1'), '/backup/profile');
  t.is(fetchDestination({src: '/etc/profile', dest: 'rel'}, 'web1'), join(process.cwd(), 'rel/web1/etc/profile'));
  t.regex(fetch({src: 'etc/profile', dest: '/b'}).problems().join(), /absolute path/);
});

// ---- through the engine: the fake transport's host is this machine, so the files are real

test('fetch through the engine: fetched, then ok; --check on a changed file says so and writes nothing; a file that changes under the fetch is refused', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-fetch-'));
  const src = join(dir, 'remote.conf');
  writeFileSync(src, 'one\n');
  const pb = definePlaybook({name: 'f', plays: [{name: 'f', hosts: 'all_hosts', gatherFacts: false, tasks: [fetch({src, dest: join(dir, 'backup')})]}]});
  const local = join(dir, 'backup', 'h1', src);

  const first = await runFake(pb);
  t.deepEqual(first.results().map((r) => [r.status, r.msg]), [['changed', `fetch ${local} (4 bytes from ${src})`]]);
  t.is(readFileSync(local, 'utf8'), 'one\n');
  t.is(statSync(local).mode & 0o777, 0o644);

  const second = await runFake(pb);
  t.is(second.results()[0]?.status, 'ok', second.results()[0]?.msg);

  writeFileSync(src, 'two\n');
  const check = await runFake(pb, {check: true});
  t.deepEqual(check.results().map((r) => [r.status, r.msg]), [['changed', `would update ${local} (4 bytes from ${src})`]]);
  t.true(check.transports.get('h1')!.execs.every(isProbeBatch), 'only probes under --check');
  t.is(check.transports.get('h1')!.log.filter((r) => r.kind === 'get').length, 0);
  t.is(readFileSync(local, 'utf8'), 'one\n', 'untouched by --check');
  t.deepEqual(check.results()[0]?.diff, {path: local, before: 'one\n', after: 'two\n'});

  // The host's file changes between the probe and the copy: the bytes do not match the probed sha256.
  const racing = await runFake(pb, {handler: async (command, stdin) => {
    const r = await localExec(command, {stdin});
    if (isProbeBatch({command, stdin})) writeFileSync(src, 'three\n');
    return r;
  }});
  t.is(racing.results()[0]?.status, 'failed');
  t.regex(racing.results()[0]?.msg ?? '', /changed while it was fetched .*: not written/);
  t.is(readFileSync(local, 'utf8'), 'one\n', 'the controller copy is as it was');
  rmSync(dir, {recursive: true});
});
