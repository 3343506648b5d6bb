/** --start-at-task in the engine (planPlay): nothing before the first match across the playbook runs. */
import test from 'ava';
import {block, definePlaybook, defineRole} from '../../src/core/task.ts';
import {command} from '../../src/modules/command.ts';
import {runFake} from '../helpers/engine.ts';

const role = defineRole({name: 'r', tasks: [command({argv: ['true']}, {name: 'x', tags: ['t']}), command({argv: ['true']}, {name: 'y'})]});
const playbook = definePlaybook({
  name: 'pb',
  plays: [
    {name: 'one', hosts: 'all_hosts', gatherFacts: false, tasks: [command({argv: ['true']}, {name: 'a'}), command({argv: ['true']}, {name: 'b'})]},
    {name: 'two', hosts: 'all_hosts', gatherFacts: false, roles: ['r'], tasks: [command({argv: ['true']}, {name: 'c'}), command({argv: ['true']}, {name: 'b'}), block({tasks: [command({argv: ['true']}, {name: 'd'})]}, {name: 'blk'})]},
  ],
});

const table: readonly (readonly [start: string | undefined, tags: readonly string[] | undefined, ran: readonly string[]])[] = [
  [undefined, undefined, ['a', 'b', 'x', 'y', 'c', 'b', 'd']],
  ['a', undefined, ['a', 'b', 'x', 'y', 'c', 'b', 'd']],
  ['b', undefined, ['b', 'x', 'y', 'c', 'b', 'd']], // the first match; later plays run fully
  ['y', undefined, ['y', 'c', 'b', 'd']],
  ['r : y', undefined, ['y', 'c', 'b', 'd']],
  ['r : *', undefined, ['x', 'y', 'c', 'b', 'd']],
  ['[c]', undefined, ['c', 'b', 'd']],
  ['x', ['t'], ['x']], // among the tasks --tags selects
  ['y', ['t'], []],
  ['blk', undefined, ['d']], // a block, by its name
  ['d', undefined, []], // not inside a block (Ansible would start there)
  ['nosuch', undefined, []],
];

for (const [startAtTask, tags, ran] of table) {
  test(`--start-at-task ${JSON.stringify(startAtTask)}${tags ? ` --tags ${tags.join(',')}` : ''}: runs ${ran.join(' ') || 'nothing'}`, async (t) => {
    const run = await runFake(playbook, {startAtTask, tags, roles: {r: {role, dir: ''}}});
    t.deepEqual(run.results().map((r) => r.task), ran);
    // Every play still starts (a play before the match runs no task).
    t.deepEqual(run.events.filter((e) => e.type === 'play').map((e) => (e.type === 'play' ? `${e.name}:${e.tasks}` : '')).length, 2);
  });
}
