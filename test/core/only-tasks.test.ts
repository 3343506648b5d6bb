/**
 * RunOptions.onlyTasks (run --only-drifted) in the engine: a task runs on a host only when the filter
 * chooses it by (host, play, the task's name on that host); a task chosen nowhere is not run at all;
 * handlers still run when a chosen task notifies them. The names come from a real check's events.
 */
import test from 'ava';
import {mkdtempSync, readFileSync, writeFileSync, existsSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {block, definePlaybook} from '../../src/core/task.ts';
import {copy} from '../../src/modules/files.ts';
import {shell} from '../../src/modules/command.ts';
import {runFake} from '../helpers/engine.ts';
import {applyCheck, emptyState, keyOf, observer} from '../../src/cli/drift.ts';
import type {RunEvent} from '../../src/core/events.ts';

function project(): {root: string; log: string; pb: ReturnType<typeof definePlaybook>} {
  const root = mkdtempSync(join(tmpdir(), 'prov-only-'));
  const log = join(root, 'handler.log');
  const pb = definePlaybook({name: 'pb', plays: [{
    name: 'p', hosts: 'all_hosts', gatherFacts: false,
    tasks: [
      copy((ctx) => ({dest: join(root, `${ctx.host}.motd`), content: `hello ${ctx.host}\n`}), {name: 'motd', notify: 'reload'}),
      // No name: its name is computed per host (`copy <root>/h1.conf`).
      copy((ctx) => ({dest: join(root, `${ctx.host}.conf`), content: 'port=1\n'})),
      block({tasks: [copy((ctx) => ({dest: join(root, `${ctx.host}.inner`), content: 'inner\n'}), {name: 'inner'})]}, {name: 'blk'}),
      shell((ctx) => ({script: `echo ran >> ${join(root, `${ctx.host}.always`)}`}), {name: 'always runs'}),
    ],
    handlers: [shell((ctx) => ({script: `echo "reload ${ctx.host}" >> ${log}`}), {name: 'reload'})],
  }]});
  return {root, log, pb};
}

const groups = {all_hosts: ['h1', 'h2']};
const results = (events: readonly RunEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'result' ? [`${e.host}|${e.task}|${e.status}`] : []));

test('onlyTasks: only the chosen (host, task) pairs run, by their per-host names; handlers they notify run; the rest is not even announced', async (t) => {
  const {root, log, pb} = project();
  t.is((await runFake(pb, {groups})).summary.hosts.h1?.failed, 0);
  writeFileSync(log, '');
  // Drift: h1's motd, h2's unnamed conf.
  writeFileSync(join(root, 'h1.motd'), 'edited\n');
  writeFileSync(join(root, 'h2.conf'), 'port=2\n');

  // A check, as watch runs it: its events through the observer into the drift state.
  const check = await runFake(pb, {groups, check: true});
  const seen = observer((s) => s);
  for (const e of check.events) seen.emit(e);
  const {state} = applyCheck(emptyState('/pb.ts'), seen.done());
  const drifted = state.tasks.filter((x) => x.state === 'drifted').map((x) => `${x.host}|${x.task}`).sort();
  // `always runs` is a shell: it "would change" every time (drift by nature), on both hosts.
  t.deepEqual(drifted, ['h1|always runs', 'h1|motd', `h2|always runs`, `h2|copy ${join(root, 'h2.conf')}`]);

  const keys = new Set(state.tasks.filter((x) => x.state === 'drifted' && x.task !== 'always runs').map(keyOf));
  const asked: string[] = [];
  const repair = await runFake(pb, {groups, onlyTasks: (host, play, task) => {
    asked.push(`${host}|${task}`);
    return keys.has(keyOf({host, play, task}));
  }});
  t.deepEqual(results(repair.events).sort(), ['h1|motd|changed', 'h1|reload|changed', `h2|copy ${join(root, 'h2.conf')}|changed`]);
  const tasks = repair.events.flatMap((e) => (e.type === 'task' ? [`${e.name}${e.handler ? ' (handler)' : ''}:${(e.hosts ?? []).join(',')}`] : []));
  t.deepEqual(tasks, ['motd:h1', `copy ${join(root, 'h2.conf')}:h2`, 'reload (handler):h1']);
  t.true(asked.includes(`h1|copy ${join(root, 'h1.conf')}`), 'asked with the name the task has on that host');
  t.is(readFileSync(join(root, 'h1.motd'), 'utf8'), 'hello h1\n');
  t.is(readFileSync(join(root, 'h2.conf'), 'utf8'), 'port=1\n');
  t.is(readFileSync(log, 'utf8'), 'reload h1\n', 'the handler ran where the repaired task notified it, only there');
  t.is(readFileSync(join(root, 'h1.always'), 'utf8'), 'ran\n', 'a task not chosen did not run (once, at converge)');
});

test('onlyTasks choosing nothing: no task runs, no handler, no failure', async (t) => {
  const {root, pb} = project();
  const run = await runFake(pb, {groups, onlyTasks: () => false});
  t.deepEqual(results(run.events), []);
  t.is(run.events.filter((e) => e.type === 'task').length, 0);
  t.false(existsSync(join(root, 'h1.motd')));
  t.deepEqual(run.summary.hosts.h1, {ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: 0});
});

test('onlyTasks reaches tasks inside a block', async (t) => {
  const {root, pb} = project();
  const run = await runFake(pb, {groups, onlyTasks: (host, _play, task) => host === 'h2' && task === 'inner'});
  t.deepEqual(results(run.events), ['h2|inner|changed']);
  t.true(existsSync(join(root, 'h2.inner')));
  t.false(existsSync(join(root, 'h1.inner')));
});
