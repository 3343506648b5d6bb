import test from 'ava';
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import type {FileState} from '../../src/facts/file.ts';
import {pythonRegExp, pythonReplacement, replace, replaceIn, replaceModule, type ReplaceArgs} from '../../src/modules/replace.ts';
import {runFake} from '../helpers/engine.ts';

// ---- pure edits

const cases: {title: string; text: string; args: Omit<ReplaceArgs, 'path'>; want: string; count: number}[] = [
  {title: 'every occurrence', text: 'a=1\na=2\n', args: {regexp: 'a=', replace: 'b='}, want: 'b=1\nb=2\n', count: 2},
  {title: '^ and $ match at each line (MULTILINE)', text: '#x\n#y\n', args: {regexp: '^#(\\w)$', replace: '\\1'}, want: 'x\ny\n', count: 2},
  {title: 'Python named groups and \\g<name>', text: 'port 80\n', args: {regexp: 'port (?P<n>\\d+)', replace: 'listen \\g<n>'}, want: 'listen 80\n', count: 1},
  {title: '\\g<1> and JS $1 alike', text: 'k=v\n', args: {regexp: '(\\w)=(\\w)', replace: '\\g<2>=$1'}, want: 'v=k\n', count: 1},
  {title: '(?P=name) backreference', text: 'aa ab\n', args: {regexp: '(?P<c>\\w)(?P=c)', replace: 'X'}, want: 'X ab\n', count: 1},
  {title: 'leading (?i)', text: 'Foo foo\n', args: {regexp: '(?i)foo', replace: 'bar'}, want: 'bar bar\n', count: 2},
  {title: '\\A and \\Z: start and end of the file only', text: 'x\nx\n', args: {regexp: '\\Ax', replace: 'y'}, want: 'y\nx\n', count: 1},
  {title: 'default replacement is empty', text: 'a # c\n', args: {regexp: ' #.*$'}, want: 'a\n', count: 1},
  {title: '\\n in the replacement is a newline', text: 'a;b\n', args: {regexp: ';', replace: '\\n'}, want: 'a\nb\n', count: 1},
  {title: 'after: only past its first match', text: 'x\n[s]\nx\n[s]\nx\n', args: {regexp: '^x$', replace: 'y', after: '\\[s\\]'}, want: 'x\n[s]\ny\n[s]\ny\n', count: 2},
  {title: 'before: only up to its last match', text: 'x\n[s]\nx\n[s]\nx\n', args: {regexp: '^x$', replace: 'y', before: '\\[s\\]'}, want: 'y\n[s]\ny\n[s]\nx\n', count: 2},
  {title: 'after and before: the first section between them', text: 'x\n<a>\nx\n</a>\nx\n<a>\nx\n</a>\n', args: {regexp: '^x$', replace: 'y', after: '<a>', before: '</a>'}, want: 'x\n<a>\ny\n</a>\nx\n<a>\nx\n</a>\n', count: 1},
  {title: 'nothing matches → same text', text: 'a\n', args: {regexp: 'zzz', replace: 'y'}, want: 'a\n', count: 0},
];

for (const c of cases) {
  test(`replaceIn: ${c.title}`, (t) => {
    const r = replaceIn(c.text, c.args);
    t.is(r.text, c.want);
    t.is(r.count, c.count);
  });
}

test('replaceIn: after matching nothing → no section, no change', (t) => {
  t.deepEqual(replaceIn('x\n', {regexp: 'x', replace: 'y', after: 'nope'}), {text: 'x\n', count: 0, section: false});
});

test('Python spellings translated', (t) => {
  t.is(pythonRegExp('(?P<a>x)(?P=a)', 'gm').source, '(?<a>x)\\k<a>');
  t.is(pythonRegExp('[(?P<]', '').source, '[(?P<]', 'not inside a character class');
  t.is(pythonRegExp('(?s)a.b', 'gm').flags, 'gms');
  t.throws(() => pythonRegExp('(?x)a b', ''), {message: /not supported/});
  t.is(pythonReplacement('\\1-\\g<x>-\\\\'), '$1-$<x>-\\');
});

// ---- pure plans

const attrs = {mode: 0o644, owner: 'root', group: 'root'};
const fileWith = (text: string): FileState => ({kind: 'file', size: Buffer.byteLength(text), sha256: 'x', content: Buffer.from(text), ...attrs});

test('plan: missing → fail; drifted → write with diff; converged and no match → nothing; bad regexp → fail', (t) => {
  t.regex(replaceModule.plan({kind: 'missing'}, {path: '/etc/x', regexp: 'a'}).fail ?? '', /does not exist/);
  const p = replaceModule.plan(fileWith('a=1\na=2\n'), {path: '/etc/x', regexp: '^a=', replace: 'b='});
  t.is(p.reason, 'replace 2 matches');
  t.like(p.steps[0], {kind: 'write', dest: '/etc/x', mode: '0644'});
  t.deepEqual(p.diff, {path: '/etc/x', before: 'a=1\na=2\n', after: 'b=1\nb=2\n'});
  const none = replaceModule.plan(fileWith('b=1\n'), {path: '/etc/x', regexp: '^a=', replace: 'b='});
  t.deepEqual(none.steps, []);
  t.is(none.reason, 'pattern not found');
  const same = replaceModule.plan(fileWith('b=1\n'), {path: '/etc/x', regexp: '^b=1', replace: 'b=1'});
  t.deepEqual(same.steps, []);
  t.regex(same.reason ?? '', /already replaced/);
  t.regex(replaceModule.plan(fileWith('x'), {path: '/etc/x', regexp: '('}).fail ?? '', /bad regular expression/);
});

// ---- through the engine on a temp file

test('replace on a real file: drifted → fixed, converged → ok, check → only the probe', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'prov-replace-'));
  const path = join(root, 'hosts');
  writeFileSync(path, '10.0.0.1 old.example old\n10.0.0.2 other\n');
  const pb = definePlaybook({name: 'r', plays: [{name: 'r', hosts: 'all_hosts', gatherFacts: false, tasks: [
    replace({path, regexp: '(\\s+)old\\.example(\\s+.*)?$', replace: '\\1new.example\\2'}),
  ]}]});
  const check = await runFake(pb, {check: true});
  t.deepEqual(check.results().map((r) => [r.status, r.msg]), [['changed', 'would replace 1 match']]);
  t.is(check.transports.get('h1')!.execs.length, 1, 'only the probe batch');
  t.is(readFileSync(path, 'utf8'), '10.0.0.1 old.example old\n10.0.0.2 other\n');

  const run = await runFake(pb);
  t.is(run.results()[0]?.status, 'changed');
  t.is(readFileSync(path, 'utf8'), '10.0.0.1 new.example old\n10.0.0.2 other\n');
  t.like(run.results()[0]?.diff, {before: '10.0.0.1 old.example old\n10.0.0.2 other\n'});

  const again = await runFake(pb);
  t.deepEqual(again.results().map((r) => [r.status, r.msg]), [['ok', 'pattern not found']]);
  t.is(again.transports.get('h1')!.execs.length, 1);
});
