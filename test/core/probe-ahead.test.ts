/**
 * Probing ahead across plays: a host's first probe batch covers the tasks of every later play that
 * includes it, so a run that changes nothing costs one round trip per host for the whole playbook;
 * answers read before another host changed something are read again at the next play.
 */
import test from 'ava';
import {mkdirSync, mkdtempSync, readFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import {copy, file} from '../../src/modules/files.ts';
import {runFake} from '../helpers/engine.ts';

const groups = {all_hosts: ['h1', 'h2', 'h3'], web: ['h2', 'h3'], solo: ['h1']};

test('no-op: one probe round trip per host for a playbook of four plays (two of them serial)', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'prov-ahead-'));
  const dir = (h: string): string => join(root, h);
  const pb = definePlaybook({name: 'four plays', plays: [
    {name: 'base', hosts: 'all_hosts', gatherFacts: false, tasks: [file((c) => ({path: dir(c.host), state: 'directory'}), {name: 'dir'})]},
    {name: 'web', hosts: 'web', serial: 1, gatherFacts: false, tasks: [
      copy((c) => ({dest: join(dir(c.host), 'a'), content: 'a\n'}), {name: 'a'}),
      copy((c) => ({dest: join(dir(c.host), 'b'), content: 'b\n'}), {name: 'b'}),
    ]},
    {name: 'solo', hosts: 'solo', gatherFacts: false, tasks: [copy((c) => ({dest: join(dir(c.host), 'c'), content: 'c\n'}), {name: 'c'})]},
    {name: 'web again', hosts: 'web', serial: 1, gatherFacts: false, tasks: [copy((c) => ({dest: join(dir(c.host), 'd'), content: 'd\n'}), {name: 'd'})]},
  ]});
  const first = await runFake(pb, {groups});
  t.deepEqual(Object.values(first.summary.hosts).map((c) => c.failed), [0, 0, 0]);
  const again = await runFake(pb, {groups});
  t.deepEqual(again.results().map((r) => r.status).filter((s) => s !== 'ok'), []);
  for (const h of ['h1', 'h2', 'h3']) t.is(again.transports.get(h)!.execs.length, 1, `${h}: one round trip`);
  t.is(readFileSync(join(dir('h3'), 'd'), 'utf8'), 'd\n');
  // Task events name the hosts that run them: with serial, one batch at a time.
  const tasks = again.events.filter((e) => e.type === 'task');
  t.deepEqual(tasks.map((e) => (e.type === 'task' ? e.hosts : undefined)), [['h1', 'h2', 'h3'], ['h2'], ['h2'], ['h3'], ['h3'], ['h1'], ['h2'], ['h3']]);
});

test('a change on one host makes the others read again at the next play (their answers may be stale)', async (t) => {
  // The "hosts" share this machine's disk: h1 writes the file in play 1, and h2's copy of the same
  // content in play 2 must see it. Had h2 kept the answer it read before play 1, it would rewrite it.
  const root = mkdtempSync(join(tmpdir(), 'prov-stale-'));
  const shared = join(root, 'shared.txt');
  for (const h of groups.all_hosts) mkdirSync(join(root, h));
  const pb = definePlaybook({name: 'stale', plays: [
    {name: 'play 1', hosts: 'all_hosts', gatherFacts: false, tasks: [
      file((c) => ({path: join(root, c.host), state: 'directory'}), {name: 'own dir'}),
      copy({dest: shared, content: 'same\n'}, {name: 'write', when: (c) => c.host === 'h1'}),
    ]},
    {name: 'play 2', hosts: 'h2', gatherFacts: false, tasks: [copy({dest: shared, content: 'same\n'}, {name: 'same'})]},
  ]});
  const r = await runFake(pb, {groups});
  t.is(r.results('h1').find((x) => x.task === 'write')?.status, 'changed');
  t.is(r.results('h2').find((x) => x.task === 'same')?.status, 'ok', 'h2 read the file again after h1 changed it');
  // h2: its dir (there already) with play 2's file probed ahead, then play 2's file again.
  t.is(r.transports.get('h2')!.execs.length, 2);
});
