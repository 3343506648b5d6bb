import test from 'ava';
import {mkdtempSync, readFileSync, statSync, writeFileSync, chmodSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import type {FileState} from '../../src/facts/file.ts';
import {blockinfile, blockInFileModule, editBlock, markers, type BlockInFileArgs} from '../../src/modules/blockinfile.ts';
import {runFake} from '../helpers/engine.ts';

const B = '# BEGIN PROVISION MANAGED BLOCK';
const E = '# END PROVISION MANAGED BLOCK';

// ---- pure edits: text in, text out

const edits: {title: string; text: string; args: Omit<BlockInFileArgs, 'path'>; want: string}[] = [
  {title: 'missing block → appended at EOF', text: 'a\nb\n', args: {block: 'x=1\ny=2\n'}, want: `a\nb\n${B}\nx=1\ny=2\n${E}\n`},
  {title: 'empty file → only the block', text: '', args: {block: 'x'}, want: `${B}\nx\n${E}\n`},
  {title: 'no trailing newline → one is added before the block', text: 'a', args: {block: 'x'}, want: `a\n${B}\nx\n${E}\n`},
  {title: 'drifted block → replaced in place', text: `a\n${B}\nold\n${E}\nz\n`, args: {block: 'new1\nnew2'}, want: `a\n${B}\nnew1\nnew2\n${E}\nz\n`},
  {title: 'converged → same text', text: `a\n${B}\nx\n${E}\nz\n`, args: {block: 'x\n'}, want: `a\n${B}\nx\n${E}\nz\n`},
  {title: 'an existing block stays where it is whatever insertAfter says', text: `${B}\nold\n${E}\na\n`, args: {block: 'x', insertAfter: '^a$'}, want: `${B}\nx\n${E}\na\n`},
  {title: 'insertAfter: after the last matching line', text: 'a\n[s]\nb\n[s]\nc\n', args: {block: 'x', insertAfter: '^\\[s\\]'}, want: `a\n[s]\nb\n[s]\n${B}\nx\n${E}\nc\n`},
  {title: 'insertAfter matching nothing → EOF', text: 'a\n', args: {block: 'x', insertAfter: '^nope'}, want: `a\n${B}\nx\n${E}\n`},
  {title: 'insertBefore: before the last matching line', text: 'a\nb\n', args: {block: 'x', insertBefore: '^b'}, want: `a\n${B}\nx\n${E}\nb\n`},
  {title: 'insertBefore BOF', text: 'a\n', args: {block: 'x', insertBefore: 'BOF'}, want: `${B}\nx\n${E}\na\n`},
  {title: 'absent → markers and block removed', text: `a\n${B}\nx\n${E}\nz\n`, args: {state: 'absent'}, want: 'a\nz\n'},
  {title: 'absent without a block → same text', text: 'a\n', args: {state: 'absent'}, want: 'a\n'},
  {title: 'empty block removes the block (as Ansible)', text: `a\n${B}\nx\n${E}\n`, args: {block: ''}, want: 'a\n'},
  {title: 'custom marker and mark words', text: 'a\n', args: {block: 'x', marker: '// {mark} upstreams', markerBegin: 'START', markerEnd: 'STOP'}, want: 'a\n// START upstreams\nx\n// STOP upstreams\n'},
  {title: 'another marker is another block', text: `${B}\nx\n${E}\n`, args: {block: 'y', marker: '# {mark} other'}, want: `${B}\nx\n${E}\n# BEGIN other\ny\n# END other\n`},
  {title: 'markers in the wrong order: the span between them is replaced', text: `a\n${E}\nold\n${B}\nz\n`, args: {block: 'x'}, want: `a\n${B}\nx\n${E}\nz\n`},
  {title: 'CRLF marker lines are recognised', text: `a\r\n${B}\r\nold\r\n${E}\r\n`, args: {block: 'x'}, want: `a\r\n${B}\nx\n${E}\n`},
];

for (const c of edits) {
  test(`editBlock: ${c.title}`, (t) => {
    t.is(editBlock(c.text, {path: '/f', ...c.args}), c.want);
  });
}

test('markers: default and custom', (t) => {
  t.deepEqual(markers({}), [B, E]);
  t.deepEqual(markers({marker: '<!-- {mark} x -->'}), ['<!-- BEGIN x -->', '<!-- END x -->']);
});

// ---- pure plans: state in, steps out

const attrs = {mode: 0o640, owner: 'root', group: 'adm'};
const fileWith = (text: string): FileState => ({kind: 'file', size: Buffer.byteLength(text), sha256: 'x', content: Buffer.from(text), ...attrs});

test('plan: missing file without create → fail; with create → write 0644 as asked, with a diff', (t) => {
  t.regex(blockInFileModule.plan({kind: 'missing'}, {path: '/etc/x', block: 'a'}).fail ?? '', /does not exist.*create: true/);
  const p = blockInFileModule.plan({kind: 'missing'}, {path: '/etc/x', block: 'a', create: true, mode: '0644'});
  t.is(p.reason, 'create file with block');
  t.like(p.steps[0], {kind: 'write', dest: '/etc/x', mode: '0644'});
  t.deepEqual(p.diff, {path: '/etc/x', before: '', after: `${B}\na\n${E}\n`});
  t.is(blockInFileModule.plan({kind: 'missing'}, {path: '/etc/x', state: 'absent'}).steps.length, 0);
});

test('plan: drifted → write keeping mode and owner; converged → nothing; converged with other mode → chmod', (t) => {
  const drifted = blockInFileModule.plan(fileWith(`${B}\nold\n${E}\n`), {path: '/etc/x', block: 'new'});
  t.is(drifted.reason, 'update block');
  t.like(drifted.steps[0], {kind: 'write', mode: '0640', owner: 'root', group: 'adm'});
  t.is(drifted.diff?.after, `${B}\nnew\n${E}\n`);
  const done = blockInFileModule.plan(fileWith(`${B}\nnew\n${E}\n`), {path: '/etc/x', block: 'new'});
  t.deepEqual(done.steps, []);
  t.is(done.reason, 'block already as given');
  const mode = blockInFileModule.plan(fileWith(`${B}\nnew\n${E}\n`), {path: '/etc/x', block: 'new', mode: '0644'});
  t.deepEqual(mode.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.join(' ') : s.kind)), ['chmod 0644 -- /etc/x']);
  t.regex(blockInFileModule.plan(fileWith(`a\n${B}\nx\n${E}\n`), {path: '/etc/x', state: 'absent'}).reason ?? '', /remove block/);
  t.truthy(blockInFileModule.plan({kind: 'directory', ...attrs}, {path: '/etc/x', block: 'a'}).fail);
  t.truthy(blockInFileModule.plan(fileWith(''), {path: '/etc/x', block: 'a', insertAfter: 'x', insertBefore: 'y'}).fail);
});

test('a marker without {mark} is refused where the task is written', (t) => {
  const task = blockinfile({path: '/etc/x', block: 'a', marker: '# managed'});
  t.regex(task.problems().join('\n'), /marker.*\{mark\}/);
});

// ---- through the engine on temp files (the fake transport runs the local shell)

const play = (tasks: ReturnType<typeof blockinfile>[]) => definePlaybook({name: 'b', plays: [{name: 'b', hosts: 'all_hosts', gatherFacts: false, tasks}]});

test('blockinfile on a real file: missing → create, converged → ok, drifted → fixed, check → only the probe, absent → removed', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'prov-blockinfile-'));
  const path = join(root, 'sshd_config');
  writeFileSync(path, 'Port 22\n');
  chmodSync(path, 0o600);
  const task = () => play([blockinfile({path, block: 'Match User git\n  PasswordAuthentication no', insertBefore: '^Port'})]);

  const first = await runFake(task());
  t.deepEqual(first.results().map((r) => [r.status, r.msg]), [['changed', 'insert block']]);
  const want = `${B}\nMatch User git\n  PasswordAuthentication no\n${E}\nPort 22\n`;
  t.is(readFileSync(path, 'utf8'), want);
  t.is(statSync(path).mode & 0o777, 0o600, 'the file keeps its mode');
  t.like(first.results()[0]?.diff, {before: 'Port 22\n', after: want});

  const second = await runFake(task());
  t.deepEqual(second.results().map((r) => [r.status, r.msg]), [['ok', 'block already as given']]);

  writeFileSync(path, `Port 22\n${B}\nMatch User bob\n${E}\n`);
  const check = await runFake(task(), {check: true});
  t.deepEqual(check.results().map((r) => [r.status, r.msg]), [['changed', 'would update block']]);
  t.is(check.transports.get('h1')!.execs.length, 1, 'check mode sends only the probe batch');
  t.is(readFileSync(path, 'utf8'), `Port 22\n${B}\nMatch User bob\n${E}\n`);

  const fix = await runFake(task());
  t.is(fix.results()[0]?.status, 'changed');
  t.is(readFileSync(path, 'utf8'), `Port 22\n${B}\nMatch User git\n  PasswordAuthentication no\n${E}\n`, 'replaced in place, not moved');

  const gone = await runFake(play([blockinfile({path, state: 'absent'})]));
  t.deepEqual(gone.results().map((r) => [r.status, r.msg]), [['changed', 'remove block']]);
  t.is(readFileSync(path, 'utf8'), 'Port 22\n');

  const created = await runFake(play([blockinfile({path: join(root, 'new.conf'), block: 'x', create: true, mode: '0640'})]));
  t.is(created.results()[0]?.status, 'changed');
  t.is(readFileSync(join(root, 'new.conf'), 'utf8'), `${B}\nx\n${E}\n`);
  t.is(statSync(join(root, 'new.conf')).mode & 0o777, 0o640);
});
