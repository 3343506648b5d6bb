/**
 * The control keywords on the fake transport (the local shell against temp folders): loop, retries and
 * until, timeout, runOnce, delegateTo, throttle, environment, checkMode, serial lists, anyErrorsFatal,
 * handler topics and flushHandlers, and the debug/assert/fail/setFact tasks.
 */
import test from 'ava';
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {block, definePlaybook} from '../../src/core/task.ts';
import {batches} from '../../src/core/engine.ts';
import {command, shell} from '../../src/modules/command.ts';
import {file} from '../../src/modules/files.ts';
import {assert, debug, fail, flushHandlers, setFact} from '../../src/modules/control.ts';
import type {Play} from '../../src/core/types.ts';
import {runFake} from '../helpers/engine.ts';

const tmp = (p: string): string => mkdtempSync(join(tmpdir(), `prov-control-${p}-`));
const one = (tasks: Play['tasks'], extra: Partial<Play> = {}) => definePlaybook({name: 't', plays: [{name: 'p', hosts: 'all_hosts', gatherFacts: false, tasks, ...extra}]});
/** A process that runs (a zombie waiting for PID 1 to reap it has ended). */
const alive = (pid: string): boolean => existsSync(`/proc/${pid}`) && !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
const lines = (path: string): string[] => (existsSync(path) ? readFileSync(path, 'utf8').trim().split('\n').filter((l) => l !== '') : []);

test('loop: one try per item with ctx.item and ctx.index; when per item; one result with its items; register holds each', async (t) => {
  const dir = tmp('loop');
  const out = join(dir, 'out');
  const pb = one([
    shell((ctx) => ({script: `echo ${String(ctx.item)}-${ctx.index} >> ${out}`}), {name: 'each', loop: () => ['a', 'b', 'c'], when: (ctx) => ctx.item !== 'b', register: 'each'}),
    shell((ctx) => ({script: `echo ${ctx.results.each?.items?.map((i) => `${String(i.item)}:${i.status}`).join(',')} > ${join(dir, 'seen')}`}), {name: 'read register'}),
  ]);
  const r = await runFake(pb);
  t.deepEqual(lines(out), ['a-0', 'c-2']);
  const [each] = r.results('h1');
  t.is(each?.status, 'changed');
  t.deepEqual(each?.items?.map((i) => [i.item, i.status]), [['a', 'changed'], ['b', 'skipped'], ['c', 'changed']]);
  t.is(readFileSync(join(dir, 'seen'), 'utf8'), 'a:changed,b:skipped,c:changed\n');
  t.deepEqual(r.summary.hosts.h1, {ok: 0, changed: 2, failed: 0, skipped: 0, unreachable: 0}, 'a looped task counts once');
});

test('loop: a failing item fails the task (the others still run); ignoreErrors forgives it', async (t) => {
  const dir = tmp('loopfail');
  const out = join(dir, 'out');
  const task = (ignoreErrors: boolean) => shell((ctx) => ({script: `[ ${String(ctx.item)} != 2 ] && echo ${String(ctx.item)} >> ${out}`}), {name: 'items', loop: () => [1, 2, 3], ignoreErrors});
  const r = await runFake(one([task(false), shell({script: 'true'}, {name: 'after'})]));
  t.deepEqual(lines(out), ['1', '3']);
  t.deepEqual(r.results('h1').map((e) => [e.task, e.status]), [['items', 'failed']]);
  const ignored = await runFake(one([task(true), shell({script: 'true'}, {name: 'after', changedWhen: () => false})]));
  t.deepEqual(ignored.results('h1').map((e) => [e.task, e.status]), [['items', 'failed'], ['after', 'ok']]);
  t.is(ignored.summary.hosts.h1?.failed, 0);
});

test('loop under --check: every item planned, nothing run', async (t) => {
  const dir = tmp('loopcheck');
  const r = await runFake(one([file((ctx) => ({path: join(dir, String(ctx.item)), state: 'directory'}), {loop: () => ['x', 'y']})]), {check: true});
  t.deepEqual(r.results('h1')[0]?.items?.map((i) => i.status), ['changed', 'changed']);
  t.false(existsSync(join(dir, 'x')));
  t.true(r.transports.get('h1')!.execs.every((e) => e.command === 'sh -s'), 'only probes');
});

/** A command that fails until its `n`-th run (a counter file). */
const flaky = (dir: string, n: number): string => `c=$(cat ${dir}/count 2>/dev/null || echo 0); c=$((c+1)); echo $c > ${dir}/count; [ $c -ge ${n} ]`;

const retryTable: readonly {title: string; n: number; retries?: number; until?: boolean; status: 'changed' | 'failed'; runs: number; msg?: RegExp}[] = [
  {title: 'succeeds on the 3rd try of 4', n: 3, retries: 3, status: 'changed', runs: 3},
  {title: 'retries exhausted', n: 9, retries: 2, status: 'failed', runs: 3, msg: /^3 attempts, retries exhausted: /},
  {title: 'until: the output says so', n: 2, retries: 5, until: true, status: 'changed', runs: 2},
  {title: 'until alone defaults to 3 retries', n: 9, until: true, status: 'failed', runs: 4, msg: /^4 attempts, retries exhausted: until was still false/},
];

for (const row of retryTable) {
  test(`retries: ${row.title}`, async (t) => {
    const dir = tmp('retry');
    const script = row.until ? `${flaky(dir, row.n)} && echo READY; true` : flaky(dir, row.n);
    const r = await runFake(one([shell({script}, {
      name: 'flaky', delay: 0,
      ...(row.retries === undefined ? {} : {retries: row.retries}),
      ...(row.until ? {until: (res) => res.stdout.includes('READY')} : {}),
    })]));
    const [res] = r.results('h1');
    t.is(res?.status, row.status);
    t.is(Number(readFileSync(join(dir, 'count'), 'utf8')), row.runs);
    if (row.msg) t.regex(res?.msg ?? '', row.msg);
  });
}

test('timeout: a hung command is killed on the host and the task fails saying so; the next task works', async (t) => {
  const dir = tmp('timeout');
  const r = await runFake(one([
    shell({script: `echo $$ > ${dir}/pid; sleep 30; touch ${dir}/never`}, {name: 'hangs', timeout: 1}),
    shell({script: `touch ${dir}/next`}, {name: 'next'}),
  ]), {});
  const [hung] = r.results('h1');
  t.is(hung?.status, 'failed');
  t.regex(hung?.msg ?? '', /timed out after 1 s \(killed\)/);
  t.true(r.summary.hosts.h1!.failed === 1);
  // The shell that ran the step is gone (killed, not left running).
  const pid = readFileSync(join(dir, 'pid'), 'utf8').trim();
  t.false(alive(pid), `the step's shell ${pid} is gone`);
  t.false(existsSync(join(dir, 'never')));
  const again = await runFake(one([shell({script: 'sleep 5'}, {name: 'hangs', timeout: 1, ignoreErrors: true}), shell({script: `touch ${dir}/next`}, {name: 'next'})]));
  t.deepEqual(again.results('h1').map((e) => e.status), ['failed', 'changed']);
  t.true(existsSync(join(dir, 'next')));
});

test('runOnce: runs on the first host only; every host gets its registered result', async (t) => {
  const dir = tmp('once');
  const r = await runFake(one([
    shell((ctx) => ({script: `echo ${ctx.host} >> ${dir}/ran; echo schema-v2`}), {name: 'migrate', runOnce: true, register: 'migration'}),
    shell((ctx) => ({script: `echo ${ctx.results.migration?.stdout.trim() ?? 'none'} > ${dir}/${ctx.host}`}), {name: 'use it'}),
  ]), {groups: {all_hosts: ['h1', 'h2', 'h3']}});
  t.deepEqual(lines(join(dir, 'ran')), ['h1']);
  for (const h of ['h1', 'h2', 'h3']) t.is(readFileSync(join(dir, h), 'utf8'), 'schema-v2\n');
  t.deepEqual(r.results().filter((e) => e.task === 'migrate').map((e) => e.host), ['h1']);
});

test('delegateTo: another inventory host runs the command with this host\'s variables; localhost runs on the controller', async (t) => {
  const dir = tmp('delegate');
  const r = await runFake(one([
    shell((ctx) => ({script: `echo for-${ctx.host} >> ${dir}/on-lb`}), {name: 'drain', delegateTo: 'lb'}),
    shell((ctx) => ({script: `echo for-${ctx.host} >> ${dir}/on-controller`}), {name: 'local', delegateTo: 'localhost'}),
    shell((ctx) => ({script: `echo on-${ctx.vars.target} >> ${dir}/by-fn`}), {name: 'computed', delegateTo: (ctx) => String(ctx.vars.target)}),
  ], {hosts: 'web'}), {groups: {web: ['w1', 'w2'], lbs: ['lb']}, hostVars: {w1: {target: 'w2'}, w2: {target: 'w2'}}});
  t.deepEqual(lines(join(dir, 'on-lb')).sort(), ['for-w1', 'for-w2']);
  t.deepEqual(lines(join(dir, 'on-controller')).sort(), ['for-w1', 'for-w2']);
  const lbLog = r.transports.get('lb')!.execs.map((e) => e.command).join('\n');
  t.regex(lbLog, /for-w1/);
  t.notRegex(r.transports.get('w1')!.execs.map((e) => e.command).join('\n'), /on-lb|on-controller/, 'nothing of it ran on w1');
  t.regex(r.transports.get('w2')!.execs.map((e) => e.command).join('\n'), /on-w2/, 'w1 delegated to w2 by a function');
  t.deepEqual(r.results().filter((e) => e.task === 'drain').map((e) => [e.host, e.status]).sort(), [['w1', 'changed'], ['w2', 'changed']], 'the results are the delegating hosts\'');
});

test('throttle: at most N hosts run the task at once', async (t) => {
  const dir = tmp('throttle');
  // Fails when another host is inside at the same time.
  const script = `mkdir ${dir}/inside 2>/dev/null || exit 9; sleep 0.2; rmdir ${dir}/inside`;
  const groups = {all_hosts: ['h1', 'h2', 'h3', 'h4']};
  const throttled = await runFake(one([shell({script}, {name: 'one at a time', throttle: 1})]), {groups});
  t.deepEqual(throttled.results().map((e) => e.status), ['changed', 'changed', 'changed', 'changed']);
  const free = await runFake(one([shell({script}, {name: 'all at once'})]), {groups});
  t.true(free.results().some((e) => e.status === 'failed'), 'without throttle they overlap (so the check above can fail)');
});

test('environment: play < role < task, in commands and probes', async (t) => {
  const dir = tmp('env');
  const r = await runFake(one([
    shell({script: `echo "$A-$B" > ${dir}/out`, unless: `[ "$A" = never ]`}, {name: 'env', environment: {B: 'task'}}),
  ], {environment: {A: 'play', B: 'play'}}));
  t.is(r.results('h1')[0]?.status, 'changed');
  t.is(readFileSync(join(dir, 'out'), 'utf8'), 'play-task\n');
  const skipped = await runFake(one([shell({script: `touch ${dir}/ran`, unless: '[ "$A" = set ]'}, {environment: {A: 'set'}})]));
  t.is(skipped.results('h1')[0]?.status, 'ok', 'the probe (unless) saw the environment');
  t.false(existsSync(join(dir, 'ran')));
});

test('checkMode: false runs a read-only task for real under --check, so later tasks plan on its output', async (t) => {
  const dir = tmp('checkmode');
  writeFileSync(join(dir, 'version'), '7\n');
  const r = await runFake(one([
    command({argv: ['cat', join(dir, 'version')]}, {name: 'read', checkMode: false, register: 'v', changedWhen: () => false}),
    file((ctx) => ({path: join(dir, `v${ctx.results.v?.stdout.trim() ?? 'unknown'}`), state: 'directory'}), {name: 'make'}),
  ]), {check: true});
  t.deepEqual(r.results('h1').map((e) => [e.task, e.status]), [['read', 'ok'], ['make', 'changed']]);
  t.regex(r.results('h1')[1]?.msg ?? '', /would/);
  t.false(existsSync(join(dir, 'v7')), 'the change is only planned');
  t.true(r.transports.get('h1')!.execs.some((e) => e.command.includes('cat')), 'the read ran');
});

test('serial as a list: a canary, then growing batches, the last size repeating', (t) => {
  const ten = [...Array(10).keys()];
  t.deepEqual(batches(ten, [1, '30%', '100%']).map((b) => b.length), [1, 3, 6]);
  t.deepEqual(batches(ten, [2, 3]).map((b) => b.length), [2, 3, 3, 2]);
  t.deepEqual(batches([1, 2, 3], ['10%']).map((b) => b.length), [1, 1, 1]);
});

test('anyErrorsFatal: one host fails, the play and the run stop on every host', async (t) => {
  const dir = tmp('fatal');
  const pb = definePlaybook({name: 't', plays: [
    {name: 'p1', hosts: 'all_hosts', gatherFacts: false, anyErrorsFatal: true, tasks: [
      shell((ctx) => ({script: ctx.host === 'h1' ? 'exit 1' : 'true'}), {name: 'check'}),
      shell((ctx) => ({script: `touch ${dir}/${ctx.host}-second`}), {name: 'second'}),
    ]},
    {name: 'p2', hosts: 'all_hosts', gatherFacts: false, tasks: [shell({script: `touch ${dir}/p2`}, {name: 'later'})]},
  ]});
  const r = await runFake(pb, {groups: {all_hosts: ['h1', 'h2']}});
  t.false(existsSync(join(dir, 'h2-second')));
  t.false(existsSync(join(dir, 'p2')));
  t.deepEqual(r.results().map((e) => [e.host, e.task, e.status]).sort(), [['h1', 'check', 'failed'], ['h2', 'check', 'changed']]);
  const without = await runFake(definePlaybook({...pb, plays: pb.plays.map((p) => ({...p, anyErrorsFatal: false}))}), {groups: {all_hosts: ['h1', 'h2']}});
  t.true(without.results().some((e) => e.host === 'h2' && e.task === 'second'), 'without it, h2 goes on');
});

test('handlers: listen topics (two handlers, one topic), and flushHandlers runs them mid-play', async (t) => {
  const dir = tmp('handlers');
  const log = join(dir, 'log');
  const pb = definePlaybook({name: 't', plays: [{
    name: 'p', hosts: 'all_hosts', gatherFacts: false,
    tasks: [
      shell({script: `echo change >> ${log}`}, {name: 'change', notify: 'restart web'}),
      flushHandlers(),
      shell({script: `echo after-flush >> ${log}`}, {name: 'after'}),
    ],
    handlers: [
      shell({script: `echo nginx >> ${log}`}, {name: 'reload nginx', listen: 'restart web'}),
      shell({script: `echo app >> ${log}`}, {name: 'restart app', listen: ['restart web']}),
      shell({script: `echo never >> ${log}`}, {name: 'unrelated'}),
    ],
  }]});
  await runFake(pb);
  t.deepEqual(lines(log), ['change', 'nginx', 'app', 'after-flush']);
});

test('setFact, debug, assert and fail', async (t) => {
  const dir = tmp('facts');
  const pb = one([
    setFact((ctx) => ({port: Number(ctx.vars.base) + 1, name: 'x'}), {name: 'compute'}),
    shell((ctx) => ({script: `echo ${String(ctx.vars.port)} > ${dir}/${ctx.host}`}), {name: 'use'}),
    debug((ctx) => ({msg: `port is ${String(ctx.vars.port)}`}), {name: 'say'}),
    assert((ctx) => ({that: [Number(ctx.vars.port) > 1000, ctx.host !== 'h2'], failMsg: `${ctx.host}: bad port`}), {name: 'check'}),
    fail({msg: 'stop here'}, {name: 'guard', when: (ctx) => ctx.host === 'h3'}),
  ]);
  const r = await runFake(pb, {groups: {all_hosts: ['h1', 'h2', 'h3']}, hostVars: {h1: {base: 8079}, h2: {base: 8080}, h3: {base: 8081}}, extraVars: {}});
  t.is(readFileSync(join(dir, 'h1'), 'utf8'), '8080\n');
  t.is(r.results('h1').find((e) => e.task === 'say')?.msg, 'port is 8080');
  t.deepEqual(r.results('h2').find((e) => e.task === 'check')?.msg, 'h2: bad port');
  t.deepEqual(r.results('h3').map((e) => [e.task, e.status]).at(-1), ['guard', 'failed']);
  t.deepEqual(r.results('h1').map((e) => e.status), ['ok', 'changed', 'ok', 'ok', 'skipped']);
  // Extra vars still win over setFact.
  const over = await runFake(one([setFact({port: 1}), shell((ctx) => ({script: `echo ${String(ctx.vars.port)} > ${dir}/over`}))]), {extraVars: {port: 9}});
  t.is(over.results('h1')[0]?.status, 'ok');
  t.is(readFileSync(join(dir, 'over'), 'utf8'), '9\n');
});

/** A play with one block on h1..h2 and a task after it; each task appends `<host>:<name>` to the log. */
function blockRun(dir: string, body: {fail?: Record<string, string>; rescueFails?: boolean; noRescue?: boolean}, opts: Parameters<typeof runFake>[1] = {}) {
  const log = join(dir, 'log');
  const step = (name: string) => shell((ctx) => ({script: `echo ${ctx.host}:${name} >> ${log}${body.fail?.[ctx.host] === name ? '; exit 1' : ''}`}), {name});
  const pb = definePlaybook({name: 't', plays: [{
    name: 'p', hosts: 'all_hosts', gatherFacts: false,
    tasks: [
      block({
        tasks: [step('b1'), step('b2')],
        ...(body.noRescue ? {} : {rescue: [
          shell((ctx) => ({script: `echo ${ctx.host}:rescue:${ctx.failed?.task ?? '-'} >> ${log}${body.rescueFails ? '; exit 1' : ''}`}), {name: 'rescue', notify: 'h'}),
        ]}),
        always: [step('always')],
      }, {name: 'the block'}),
      step('after'),
    ],
    handlers: [shell((ctx) => ({script: `echo ${ctx.host}:handler >> ${log}`}), {name: 'h'})],
  }]});
  // Per host, in order (the hosts of a task run in parallel).
  return runFake(pb, {groups: {all_hosts: ['h1', 'h2']}, ...opts}).then((r) => ({r, log: ['h1', 'h2'].flatMap((h) => lines(log).filter((l) => l.startsWith(`${h}:`)))}));
}

const blockTable: readonly {title: string; body: Parameters<typeof blockRun>[1]; log: string[]; failed: Record<string, number>}[] = [
  {title: 'no failure: tasks and always, no rescue', body: {}, log: ['h1:b1', 'h1:b2', 'h1:always', 'h1:after', 'h2:b1', 'h2:b2', 'h2:always', 'h2:after'], failed: {h1: 0, h2: 0}},
  {
    title: 'a failure is rescued: the rest of the block is skipped there, rescue sees what failed, always runs, the host goes on, not counted failed; handlers notified from rescue run',
    body: {fail: {h1: 'b1'}},
    log: ['h1:b1', 'h1:rescue:b1', 'h1:always', 'h1:after', 'h1:handler', 'h2:b1', 'h2:b2', 'h2:always', 'h2:after'],
    failed: {h1: 0, h2: 0},
  },
  {title: 'the rescue fails: always still runs, then the host stops', body: {fail: {h2: 'b2'}, rescueFails: true}, log: ['h1:b1', 'h1:b2', 'h1:always', 'h1:after', 'h2:b1', 'h2:b2', 'h2:rescue:b2', 'h2:always'], failed: {h1: 0, h2: 1}},
  {title: 'no rescue: always runs on the failed host, which then stops', body: {fail: {h1: 'b2'}, noRescue: true}, log: ['h1:b1', 'h1:b2', 'h1:always', 'h2:b1', 'h2:b2', 'h2:always', 'h2:after'], failed: {h1: 1, h2: 0}},
];

for (const row of blockTable) {
  test(`block: ${row.title}`, async (t) => {
    const {r, log} = await blockRun(tmp('block'), row.body);
    t.deepEqual(log, row.log);
    t.deepEqual(Object.fromEntries(Object.entries(r.summary.hosts).map(([h, c]) => [h, c.failed])), row.failed);
  });
}

test('block: its when and tags reach its tasks; --check runs nothing inside it', async (t) => {
  const dir = tmp('blockopts');
  const log = join(dir, 'log');
  const pb = one([
    block({tasks: [shell((ctx) => ({script: `echo ${ctx.host}:in >> ${log}`}), {name: 'in', when: (ctx) => ctx.host !== 'h3'})]}, {when: (ctx) => ctx.host !== 'h2', tags: ['web']}),
    shell((ctx) => ({script: `echo ${ctx.host}:untagged >> ${log}`}), {name: 'untagged'}),
  ]);
  const groups = {all_hosts: ['h1', 'h2', 'h3']};
  await runFake(pb, {groups, tags: ['web']});
  t.deepEqual(lines(log), ['h1:in'], 'h2 by the block\'s when, h3 by the task\'s, the untagged task by --tags');
  const check = await runFake(pb, {groups, check: true});
  t.true(check.transports.get('h1')!.execs.every((e) => e.command === 'sh -s'));
  t.deepEqual(lines(log), ['h1:in']);
});

test('block: become passes to its tasks', async (t) => {
  const r = await runFake(one([block({tasks: [command({argv: ['true']}, {name: 'as root'}), command({argv: ['true']}, {name: 'as me', become: false})]}, {become: true})]), {
    handler: () => ({code: 0, stdout: '', stderr: ''}),
  });
  // One probe batch per identity: the block's task's through sudo, the one that says become: false without.
  const cmds = r.transports.get('h1')!.execs.map((e) => e.command);
  t.deepEqual(cmds.slice(0, 2).sort(), ['sh -s', 'sudo -n -H -u root -- sh -s']);
});

test('retries under --check: a task that would run is not waited for (it did not run)', async (t) => {
  // Waiting would take an hour and time the test out.
  const r = await runFake(one([
    shell({script: 'false'}, {name: 'wait for it', retries: 5, delay: 3600, until: (res) => res.rc === 0}),
    shell({script: 'false'}, {name: 'read-only', retries: 5, delay: 3600, until: (res) => res.rc === 0, changedWhen: () => false}),
  ]), {check: true});
  t.deepEqual(r.results('h1').map((e) => [e.status, e.msg]), [['changed', 'would run false'], ['ok', 'would run false']]);
});

test('async: the job runs detached and is polled to its end; its output is the result\'s', async (t) => {
  const dir = tmp('async');
  const r = await runFake(one([
    shell({script: `sleep 0.5; echo done; echo warn >&2; touch ${dir}/ended`}, {name: 'long job', async: 20, poll: 0.2, register: 'job'}),
    shell((ctx) => ({script: `echo "${ctx.results.job?.stdout.trim() ?? ''}" > ${dir}/seen`}), {name: 'after'}),
  ]));
  t.deepEqual(r.results('h1').map((e) => [e.task, e.status]), [['long job', 'changed'], ['after', 'changed']]);
  t.is(readFileSync(join(dir, 'seen'), 'utf8'), 'done\n');
  t.true(existsSync(join(dir, 'ended')));
});

test('async: past its time the job is killed (its whole session) and the task fails saying so', async (t) => {
  const dir = tmp('asynckill');
  const r = await runFake(one([shell({script: `echo $$ > ${dir}/pid; sleep 30 & wait; touch ${dir}/never`}, {name: 'too long', async: 1, poll: 0.2})]));
  const [res] = r.results('h1');
  t.is(res?.status, 'failed');
  t.regex(res?.msg ?? '', /async job ran past 1 s: killed/);
  const pid = readFileSync(join(dir, 'pid'), 'utf8').trim();
  t.false(alive(pid), 'the job is gone');
  t.false(existsSync(join(dir, 'never')));
});

test('async: a poll that finds the connection gone connects again; the job went on', async (t) => {
  const dir = tmp('asyncdrop');
  let polls = 0;
  const {UnreachableError} = await import('../../src/transport/types.ts');
  const {localExec} = await import('../../src/transport/local.ts');
  const r = await runFake(one([shell({script: `sleep 0.6; echo survived`}, {name: 'job', async: 20, poll: 0.2, register: 'job'})]), {
    handler: (command, stdin) => {
      if (command.includes('elif [ -e "$j.pid" ]') && ++polls === 1) throw new UnreachableError('h1', 'h1: connection lost');
      return localExec(command, {stdin});
    },
  });
  const [res] = r.results('h1');
  t.is(res?.status, 'changed', res?.msg);
  t.regex(res?.msg ?? '', /polled over 1 new connection after the connection dropped/);
  t.true(polls >= 2);
  void dir;
});

test('async with poll: 0: started and not waited for; the job finishes on its own', async (t) => {
  const dir = tmp('asyncfire');
  const r = await runFake(one([shell({script: `sleep 3; touch ${dir}/later`}, {name: 'fire', async: 20, poll: 0})]));
  t.is(r.results('h1')[0]?.status, 'changed');
  t.false(existsSync(join(dir, 'later')), 'not waited for');
  for (let i = 0; i < 100 && !existsSync(join(dir, 'later')); i++) await new Promise((res) => setTimeout(res, 100));
  t.true(existsSync(join(dir, 'later')), 'the job ran to its end after the run');
});

test('-vvv: every command a task sends is an event (probe, then apply), with its host and status; secrets masked', async (t) => {
  const dir = tmp('vvv');
  const r = await runFake(one([
    shell((ctx) => ({script: `echo ${ctx.secret('pa55-vvv-word').reveal()} > /dev/null; touch ${dir}/x`, creates: join(dir, 'x')}), {name: 'make x'}),
    shell({script: 'true'}, {name: 'elsewhere', delegateTo: 'localhost', changedWhen: () => false}),
  ]), {verbose: 3});
  const commands = r.events.filter((e) => e.type === 'command');
  t.deepEqual(commands.map((e) => e.type === 'command' && [e.task, e.phase, e.on, e.rc]), [
    ['make x', 'probe', 'h1', 0], ['make x', 'apply', 'h1', 0], ['elsewhere', 'probe', 'localhost', 0], ['elsewhere', 'apply', 'localhost', 0],
  ]);
  t.false(JSON.stringify(commands).includes('pa55-vvv-word'));
  t.true(JSON.stringify(commands).includes('***'));
  const quiet = await runFake(one([shell({script: 'true'})]));
  t.false(quiet.events.some((e) => e.type === 'command'), 'only from -vvv');
});

test('--step: each task asked (not handlers): no skips it, continue runs the rest without asking', async (t) => {
  const dir = tmp('step');
  const log = join(dir, 'log');
  const asked: string[] = [];
  const answers = ['yes', 'no', 'continue'] as const;
  const task = (n: string) => shell({script: `echo ${n} >> ${log}`}, {name: n, notify: 'h'});
  const pb = definePlaybook({name: 't', plays: [{name: 'p', hosts: 'all_hosts', gatherFacts: false, tasks: [task('one'), task('two'), task('three'), task('four')],
    handlers: [shell({script: `echo handler >> ${log}`}, {name: 'h'})]}]});
  const r = await runFake(pb, {step: async (name) => answers[asked.push(name) - 1] ?? 'no'});
  t.deepEqual(asked, ['one', 'two', 'three']);
  t.deepEqual(lines(log), ['one', 'three', 'four', 'handler']);
  t.deepEqual(r.results('h1').map((e) => e.task), ['one', 'three', 'four', 'h']);
});

test('anyErrorsFatal on a block: decided after its rescue; a failure the rescue clears goes on, one it does not stops everything', async (t) => {
  const dir = tmp('blockfatal');
  const log = join(dir, 'log');
  const run = (rescueFails: boolean) => runFake(one([
    block({
      tasks: [shell((ctx) => ({script: ctx.host === 'h1' ? 'exit 1' : 'true'}), {name: 'risky'})],
      rescue: [shell({script: rescueFails ? 'exit 1' : 'true'}, {name: 'rescue'})],
      always: [shell((ctx) => ({script: `echo ${ctx.host}:always >> ${log}; exit ${ctx.host === 'h2' && rescueFails ? 1 : 0}`}), {name: 'always'})],
    }, {anyErrorsFatal: true}),
    shell((ctx) => ({script: `echo ${ctx.host}:after >> ${log}`}), {name: 'after'}),
  ]), {groups: {all_hosts: ['h1', 'h2']}});
  await run(false);
  t.deepEqual(lines(log).sort(), ['h1:after', 'h1:always', 'h2:after', 'h2:always'], 'rescued: everyone goes on');
  await run(true);
  t.deepEqual(lines(log).sort(), ['h1:after', 'h1:always', 'h1:always', 'h2:after', 'h2:always', 'h2:always'], 'not rescued (and an always failing): nobody runs the next task');
});
