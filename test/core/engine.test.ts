import test from 'ava';
import {mkdtempSync, readFileSync, existsSync, writeFileSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook, defineRole} from '../../src/core/task.ts';
import {copy, file, template} from '../../src/modules/files.ts';
import {command, shell} from '../../src/modules/command.ts';
import {batches} from '../../src/core/engine.ts';
import {batchScript, parseBatch} from '../../src/core/remote.ts';
import {secret} from '../../src/core/secret.ts';
import {runFake} from '../helpers/engine.ts';
import {localExec} from '../../src/transport/fake.ts';
import type {Play} from '../../src/core/types.ts';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `prov-${p}-`));
const one = (tasks: Play['tasks'], extra: Partial<Play> = {}) => definePlaybook({name: 't', plays: [{name: 'p', hosts: 'all_hosts', gatherFacts: false, tasks, ...extra}]});

test('probe batch: outputs are split exactly, with exit codes, even without trailing newlines', async (t) => {
  const scripts = ['printf abc', 'echo "two\nlines"', 'exit 3', 'cat', 'printf "\\n\\n"'];
  const marker = '__m__';
  const r = await localExec('sh -s', {stdin: batchScript(scripts, marker)});
  t.deepEqual(parseBatch(r.stdout, scripts.length, marker), [
    {stdout: 'abc', code: 0}, {stdout: 'two\nlines\n', code: 0}, {stdout: '', code: 3}, {stdout: '', code: 0}, {stdout: '\n\n', code: 0},
  ]);
});

test('serial batches: numbers and percentages', (t) => {
  t.deepEqual(batches([1, 2, 3, 4, 5], 2), [[1, 2], [3, 4], [5]]);
  t.deepEqual(batches([1, 2, 3, 4], '50%'), [[1, 2], [3, 4]]);
  t.deepEqual(batches([1, 2, 3], '10%'), [[1], [2], [3]]);
  t.deepEqual(batches([1, 2, 3], undefined), [[1, 2, 3]]);
});

test('command: creates/removes/unless skip; changed only when it ran; register feeds later tasks', async (t) => {
  const root = tmp('cmd');
  const marker = join(root, 'done');
  const pb = one([
    command({argv: ['touch', marker], creates: marker}, {name: 'make marker'}),
    shell({script: `echo ran >> ${join(root, 'log')}`, unless: `test -e ${marker}`}, {name: 'guarded'}),
    command({argv: ['echo', 'hello world']}, {name: 'say', register: 'said', changedWhen: () => false}),
    copy((ctx) => ({dest: join(root, 'said'), content: ctx.results.said?.stdout ?? ''}), {name: 'use result'}),
    command({argv: ['rm', marker], removes: join(root, 'nothing-here')}, {name: 'removes'}),
  ]);
  const first = await runFake(pb);
  t.deepEqual(first.results().map((r) => `${r.task}:${r.status}`), ['make marker:changed', 'guarded:ok', 'say:ok', 'use result:changed', 'removes:ok']);
  t.is(readFileSync(join(root, 'said'), 'utf8'), 'hello world\n');
  t.false(existsSync(join(root, 'log')));
  const second = await runFake(pb);
  t.deepEqual(second.results().map((r) => r.status), ['ok', 'ok', 'ok', 'ok', 'ok']);
});

test('handlers run once at the end, in definition order, only where notified', async (t) => {
  const root = tmp('handlers');
  const log = join(root, 'log');
  const pb = definePlaybook({name: 't', plays: [{
    name: 'p', hosts: 'all_hosts', gatherFacts: false,
    tasks: [
      copy((ctx) => ({dest: join(root, `${ctx.host}.conf`), content: ctx.host === 'h1' ? 'a' : 'b'}), {notify: ['second', 'first']}),
      copy((ctx) => ({dest: join(root, `${ctx.host}.other`), content: 'x'}), {notify: 'first', when: (ctx) => ctx.host === 'h1'}),
    ],
    handlers: [
      shell({script: `echo "first $(hostname)" >> ${log}`}, {name: 'first'}),
      shell({script: `echo second >> ${log}`}, {name: 'second'}),
      shell({script: `echo never >> ${log}`}, {name: 'never'}),
    ],
  }]});
  const run = await runFake(pb, {groups: {all_hosts: ['h1', 'h2']}});
  const handlerTasks = run.events.filter((e) => e.type === 'task' && e.handler).map((e) => e.type === 'task' ? e.name : '');
  t.deepEqual(handlerTasks, ['first', 'second']);
  t.is(readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('first')).length, 2, 'once per notifying host');
  t.false(readFileSync(log, 'utf8').includes('never'));
  // Converged: no handler runs.
  const again = await runFake(pb, {groups: {all_hosts: ['h1', 'h2']}});
  t.is(again.events.filter((e) => e.type === 'task' && e.handler).length, 0);
});

test('when, tags and skip-tags', async (t) => {
  const root = tmp('tags');
  const pb = one([
    file({path: join(root, 'a'), state: 'touch'}, {tags: ['a']}),
    file({path: join(root, 'b'), state: 'touch'}, {tags: ['b']}),
    file({path: join(root, 'c'), state: 'touch'}, {tags: ['always']}),
    file({path: join(root, 'd'), state: 'touch'}, {when: (ctx) => ctx.vars.wanted === 'yes'}),
  ]);
  const r = await runFake(pb, {tags: ['a'], hostVars: {h1: {wanted: 'no'}}});
  t.deepEqual(r.results().map((x) => x.status), ['changed', 'changed'], 'untagged tasks are left out under --tags');
  t.true(existsSync(join(root, 'a')) && existsSync(join(root, 'c')) && !existsSync(join(root, 'b')) && !existsSync(join(root, 'd')));
  const r2 = await runFake(pb, {skipTags: ['a'], hostVars: {h1: {wanted: 'yes'}}});
  t.deepEqual(r2.results().map((x) => x.status), ['changed', 'ok', 'changed']);
});

test('a failing host stops there; others finish; unreachable hosts are reported', async (t) => {
  const root = tmp('fail');
  const pb = one([
    shell((ctx) => ({script: ctx.host === 'bad' ? 'exit 1' : 'true'}), {name: 'maybe fail'}),
    file((ctx) => ({path: join(root, ctx.host), state: 'touch'}), {name: 'after'}),
  ]);
  const r = await runFake(pb, {groups: {all_hosts: ['good', 'bad', 'gone']}, unreachable: ['gone']});
  t.like(r.summary.hosts.gone, {unreachable: 1, ok: 0});
  t.like(r.summary.hosts.bad, {failed: 1});
  t.like(r.summary.hosts.good, {changed: 2, failed: 0});
  t.true(existsSync(join(root, 'good')));
  t.false(existsSync(join(root, 'bad')));
  t.is(r.results('gone')[0]?.status, 'unreachable');
  t.regex(r.results('gone')[0]?.msg ?? '', /ECONNREFUSED/);
});

test('a failed command reports the command, rc, stdout and stderr', async (t) => {
  const r = await runFake(one([shell({script: 'echo out; echo err >&2; exit 7'}, {name: 'boom'})]));
  const f = r.results()[0];
  t.like(f, {status: 'failed', rc: 7, stdout: 'out\n', stderr: 'err\n'});
  t.regex(f?.cmd ?? '', /exit 7/);
  t.like(r.summary.hosts.h1, {failed: 1});
});

test('serial with max_fail_percentage stops later batches', async (t) => {
  const pb = one([shell({script: 'exit 1'}, {name: 'fail'})], {serial: 1, maxFailPercentage: 0});
  const r = await runFake(pb, {groups: {all_hosts: ['a', 'b', 'c']}});
  t.deepEqual(r.results().map((x) => x.host), ['a']);
});

test('roles: defaults, templates with other hosts\' vars, files, and a secret never in output', async (t) => {
  const root = tmp('role');
  const roleDir = join(root, 'roles', 'web');
  mkdirSync(join(roleDir, 'templates'), {recursive: true});
  mkdirSync(join(roleDir, 'files'), {recursive: true});
  writeFileSync(join(roleDir, 'templates', 'site.conf'), 'port={{port}}\n{{#backends}}server {{.}}\n{{/backends}}pw={{password}}\n');
  writeFileSync(join(roleDir, 'files', 'static.txt'), 'static\n');
  const pw = secret('s3cr3t-value');
  const role = defineRole({
    name: 'web',
    defaults: {port: 80},
    tasks: [
      template((ctx) => ({dest: join(root, `${ctx.host}.conf`), src: 'site.conf', vars: {backends: (ctx.groups.all_hosts ?? []).map((h) => `${h}:${ctx.hostvars(h).port ?? 80}`), password: ctx.secret(pw.reveal()).reveal()}})),
      copy((ctx) => ({dest: join(root, `${ctx.host}.txt`), src: 'static.txt'})),
    ],
  });
  const pb = definePlaybook({name: 't', plays: [{name: 'p', hosts: 'all_hosts', gatherFacts: false, roles: ['web']}]});
  const r = await runFake(pb, {groups: {all_hosts: ['h1', 'h2']}, hostVars: {h2: {port: 8080}}, roles: {web: {role, dir: roleDir}}});
  t.is(readFileSync(join(root, 'h2.conf'), 'utf8'), 'port=8080\nserver h1:80\nserver h2:8080\npw=s3cr3t-value\n');
  t.is(readFileSync(join(root, 'h1.txt'), 'utf8'), 'static\n');
  t.false(JSON.stringify(r.events).includes('s3cr3t-value'), 'secret masked in events and diffs');
  t.true(JSON.stringify(r.events).includes('pw=***'));
});

test('become wraps commands in sudo -n for the become user; probes too', async (t) => {
  const seen: string[] = [];
  const pb = one([command({argv: ['id']}, {becomeUser: 'postgres'})]);
  await runFake(pb, {hostVars: {h1: {ansible_become: true, ansible_user: 'deploy'}}, handler: (c) => {
    seen.push(c);
    return {code: 0, stdout: c.startsWith('sudo -n -H -u postgres -- sh -s') ? '__never__' : '', stderr: ''};
  }}).catch(() => undefined);
  t.true(seen.some((c) => c.startsWith('sudo -n -H -u postgres -- sh -s')), 'probe batch through sudo');
});

test('hostvars of another host carry the extra vars (-e), over its inventory and set facts, as Ansible\'s do', async (t) => {
  const pb = one([shell((ctx) => ({script: `echo ${ctx.hostvars('h2').level}-${ctx.hostvars('h2').own}`}), {name: 'read h2', register: 'r'})]);
  const r = await runFake(pb, {groups: {all_hosts: ['h1', 'h2']}, hostVars: {h2: {level: 'inventory', own: 'kept'}}, extraVars: {level: 'extra'}, handler: (c, stdin) => localExec(c, {stdin})});
  t.is(r.results('h1')[0]?.status, 'changed');
  t.true(r.transports.get('h1')!.log.some((x) => `${x.command}${x.stdin ?? ''}`.includes('echo extra-kept')));
});

test('a later task that becomes a user an earlier task creates: its probe ahead of time failing does not fail the task at hand', async (t) => {
  let created = false;
  const seen: string[] = [];
  const pb = one([
    shell({script: 'echo useradd ghost'}, {name: 'create ghost'}),
    command({argv: ['id'], creates: '/nonexistent/ghost'}, {name: 'as ghost', becomeUser: 'ghost'}),
  ]);
  const r = await runFake(pb, {hostVars: {h1: {ansible_become: true, ansible_user: 'deploy'}}, handler: (c, stdin) => {
    seen.push(c);
    if (c.startsWith('sudo -n -H -u ghost') && !created) return {code: 1, stdout: '', stderr: 'sudo: unknown user ghost\nsudo: error initializing audit plugin sudoers_audit\n'};
    if ((c + (stdin ?? '')).includes('useradd ghost')) created = true;
    return localExec(c.replace(/^sudo -n -H -u \S+ -- /, ''), {stdin});
  }});
  t.deepEqual(r.results().map((x) => [x.task, x.status]), [['create ghost', 'changed'], ['as ghost', 'changed']]);
  t.true(seen.filter((c) => c.startsWith('sudo -n -H -u ghost')).length >= 2, 'asked ahead (refused), then again when its turn came');
});

test('extra vars win over the inventory for how a host is reached and become (-e ansible_become=true)', async (t) => {
  const seen: string[] = [];
  const pb = one([command({argv: ['id']})]);
  await runFake(pb, {hostVars: {h1: {ansible_become: false, ansible_user: 'deploy'}}, extraVars: {ansible_become: true}, handler: (c) => {
    seen.push(c);
    return {code: 0, stdout: '', stderr: ''};
  }}).catch(() => undefined);
  t.true(seen.some((c) => c.startsWith('sudo -n -H -u root -- ')), seen.join('\n'));
});

test('interrupt: nothing new starts after the signal, and the recap says so', async (t) => {
  const ac = new AbortController();
  const root = tmp('int');
  const pb = one([
    shell({script: 'true'}, {name: 'first', register: 'x', changedWhen: () => { ac.abort(); return true; }}),
    file({path: join(root, 'never'), state: 'touch'}),
  ]);
  const r = await runFake(pb, {signal: ac.signal});
  t.true(r.summary.interrupted);
  t.false(existsSync(join(root, 'never')));
  t.like(r.events.at(-1), {type: 'recap', interrupted: true});
});

test('check mode: a task that cannot be planned before an earlier would-change is reported as pending, not failed', async (t) => {
  const root = tmp('checkpending');
  const pb = one([
    file({path: join(root, 'dir'), state: 'directory'}, {name: 'make dir'}),
    file({path: join(root, 'dir'), state: 'file'}, {name: 'needs it (fails today)'}),
  ]);
  const r = await runFake(pb, {check: true});
  t.like(r.results()[1], {status: 'changed', pending: true});
  t.regex(r.results()[1]?.msg ?? '', /once earlier changes are made/);
  // Without an earlier would-change, a plan failure is a failure.
  const r2 = await runFake(one([file({path: join(root, 'missing'), state: 'file'})]), {check: true});
  t.is(r2.results()[0]?.status, 'failed');
});

test('a host that fails after notifying still runs the notified handlers (force_handlers)', async (t) => {
  const root = tmp('force');
  const pb = definePlaybook({name: 't', plays: [{
    name: 'p', hosts: 'all_hosts', gatherFacts: false,
    tasks: [
      copy({dest: join(root, 'conf'), content: 'new\n'}, {notify: 'reload'}),
      shell({script: 'exit 1'}, {name: 'later failure'}),
    ],
    handlers: [shell({script: `echo reloaded > ${join(root, 'reloaded')}`}, {name: 'reload'})],
  }]});
  const r = await runFake(pb);
  t.like(r.summary.hosts.h1, {failed: 1});
  t.true(existsSync(join(root, 'reloaded')));
});
