/**
 * What a play's own tasks can do outside a role, and how a task is named and checked (issue 11):
 * templates and files beside the playbook, a missing template variable fails the task naming the
 * template's file and line, arguments computed per host are checked (a failed task with one clear line,
 * never a TypeError), and a task without a name shows its module and what it acts on.
 */
import test from 'ava';
import {existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import {copy, file, template} from '../../src/modules/files.ts';
import {runFake} from '../helpers/engine.ts';
import type {FileArgs} from '../../src/modules/files.ts';
import type {Play} from '../../src/core/types.ts';

const tmp = (p: string) => mkdtempSync(join(tmpdir(), `prov-${p}-`));
const one = (tasks: Play['tasks'], extra: Partial<Play> = {}) => definePlaybook({name: 't', plays: [{name: 'p', hosts: 'all_hosts', gatherFacts: false, tasks, ...extra}]});

/** A playbook folder with templates/ and files/ beside it. */
function playbookDir(): {dir: string; out: string} {
  const dir = tmp('pbdir');
  mkdirSync(join(dir, 'templates'));
  mkdirSync(join(dir, 'files'));
  writeFileSync(join(dir, 'templates', 'motd.mustache'), 'hello {{who}}\n{{#extra}}extra {{extra}}\n{{/extra}}');
  writeFileSync(join(dir, 'templates', 'broken.mustache'), 'line one\nline two {{who}}\nline three {{nobody_defines_this}}\n');
  writeFileSync(join(dir, 'files', 'static.txt'), 'static content\n');
  return {dir, out: tmp('pbout')};
}

test('a play\'s own template and copy {src} read templates/ and files/ beside the playbook', async (t) => {
  const {dir, out} = playbookDir();
  const pb = one([
    template({src: 'motd.mustache', dest: join(out, 'motd')}),
    copy({src: 'static.txt', dest: join(out, 'static.txt')}),
  ], {vars: {who: 'world'}});
  const run = await runFake(pb, {playDirs: [dir]});
  t.deepEqual(run.results().map((r) => r.status), ['changed', 'changed'], JSON.stringify(run.results()));
  t.is(readFileSync(join(out, 'motd'), 'utf8'), 'hello world\n'); // a missing section variable is false, as in mustache
  t.is(readFileSync(join(out, 'static.txt'), 'utf8'), 'static content\n');
  // template is shown as template, not as the copy it becomes.
  t.deepEqual(run.results().map((r) => r.task), [`template ${join(out, 'motd')}`, `copy ${join(out, 'static.txt')}`]);
});

test('a variable no one defines fails the task naming the template file, line and variable; allowMissingVars opts out', async (t) => {
  const {dir, out} = playbookDir();
  const pb = one([
    template({src: 'broken.mustache', dest: join(out, 'broken')}),
    template({src: 'broken.mustache', dest: join(out, 'lenient'), allowMissingVars: true}),
  ], {vars: {who: 'w'}});
  const run = await runFake(pb, {playDirs: [dir]});
  const strict = run.results()[0]!;
  t.is(strict.status, 'failed');
  t.regex(strict.msg, /broken\.mustache:3: variable 'nobody_defines_this' is not defined/);
  t.false(existsSync(join(out, 'broken')), 'nothing written');
  // The host failed at the first task: run the lenient one alone.
  const lenient = await runFake(one([template({src: 'broken.mustache', dest: join(out, 'lenient'), allowMissingVars: true})], {vars: {who: 'w'}}), {playDirs: [dir]});
  t.is(lenient.results()[0]?.status, 'changed');
  t.is(readFileSync(join(out, 'lenient'), 'utf8'), 'line one\nline two w\nline three \n');
});

test('a template missing everywhere names where it was looked for', async (t) => {
  const {dir, out} = playbookDir();
  const run = await runFake(one([template({src: 'nope.mustache', dest: join(out, 'x')})]), {playDirs: [dir]});
  t.is(run.results()[0]?.status, 'failed');
  t.regex(run.results()[0]!.msg, /template 'nope\.mustache' not found \(looked for .*templates\/nope\.mustache\)/);
});

test('arguments computed per host are checked: a failed task with one clear line, never a TypeError', async (t) => {
  const out = tmp('badargs');
  const run = await runFake(one([
    file(() => ({pth: join(out, 'x'), state: 'directory'}) as unknown as FileArgs),
  ]));
  const r = run.results()[0]!;
  t.is(r.status, 'failed');
  t.notRegex(r.msg, /TypeError|Cannot read properties/);
  t.regex(r.msg, /user-tasks\.test\.ts:\d+: .*unknown argument 'pth' \(did you mean 'path'\?\)/);
  const enumRun = await runFake(one([file(() => ({path: join(out, 'y'), state: 'tuoch'}) as unknown as FileArgs)]));
  t.regex(enumRun.results()[0]!.msg, /state: expected one of 'file', 'directory', 'link', 'absent', 'touch', got 'tuoch'/);
  t.false(existsSync(join(out, 'x')) || existsSync(join(out, 'y')));
});

test('a task without a name shows its module and what it acts on, computed per host', async (t) => {
  const out = tmp('names');
  const run = await runFake(one([
    file((ctx) => ({path: join(out, ctx.host), state: 'directory'})),
    file({path: join(out, 'fixed'), state: 'directory'}, {name: 'given name'}),
  ]), {groups: {all_hosts: ['h1', 'h2']}});
  const names = run.results().map((r) => `${r.host} ${r.task}`).sort();
  t.deepEqual(names, [`h1 file ${join(out, 'h1')} (directory)`, 'h1 given name', `h2 file ${join(out, 'h2')} (directory)`, 'h2 given name']);
  const taskEvents = run.events.filter((e) => e.type === 'task').map((e) => (e as {name: string}).name);
  t.deepEqual(taskEvents, [`file ${join(out, 'h1')} (directory)`, 'given name']);
});
