import test from 'ava';
import {mkdtempSync, readFileSync, writeFileSync, statSync, existsSync, mkdirSync, lstatSync, readlinkSync, chmodSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {copyModule, editLines, fileModule, lineInFileModule} from '../../src/modules/files.ts';
import {parseFileState, fileProbeScript} from '../../src/facts/file.ts';
import {localExec} from '../../src/transport/fake.ts';
import {definePlaybook} from '../../src/core/task.ts';
import {copy, file, lineinfile} from '../../src/modules/files.ts';
import {runFake} from '../helpers/engine.ts';

const attrs = {mode: 0o644, owner: 'root', group: 'root'};

// ---- pure plans: state in, steps out

test('file directory: missing → mkdir + chmod; drifted mode → chmod; converged → nothing', (t) => {
  const a = {path: '/srv/www', state: 'directory', mode: '0755'} as const;
  const missing = fileModule.plan({kind: 'missing'}, a);
  t.deepEqual(missing.steps.map((s) => s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.join(' ') : ''), ['mkdir -p -- /srv/www', 'chmod 0755 -- /srv/www']);
  const drifted = fileModule.plan({kind: 'directory', ...attrs, mode: 0o700}, a);
  t.is(drifted.steps.length, 1);
  t.regex(drifted.reason ?? '', /mode 0700 → 0755/);
  const done = fileModule.plan({kind: 'directory', ...attrs, mode: 0o755}, a);
  t.is(done.steps.length, 0);
  t.regex(done.reason ?? '', /already 0755/);
  t.truthy(fileModule.plan({kind: 'file', size: 1, sha256: 'x', ...attrs}, a).fail);
});

test('file absent / link / touch', (t) => {
  t.is(fileModule.plan({kind: 'missing'}, {path: '/x', state: 'absent'}).steps.length, 0);
  t.is(fileModule.plan({kind: 'directory', ...attrs}, {path: '/x', state: 'absent'}).steps.length, 1);
  t.is(fileModule.plan({kind: 'link', target: '/a', ...attrs}, {path: '/x', state: 'link', src: '/a'}).steps.length, 0);
  t.regex(fileModule.plan({kind: 'link', target: '/b', ...attrs}, {path: '/x', state: 'link', src: '/a'}).reason ?? '', /relink/);
  t.is(fileModule.plan({kind: 'missing'}, {path: '/x', state: 'touch'}).steps.length, 1);
  t.truthy(fileModule.plan({kind: 'missing'}, {path: '/x', state: 'file'}).fail);
  t.throws(() => fileModule.plan({kind: 'missing'}, {path: 'relative', state: 'touch'}), {message: /absolute/});
});

test('copy: missing → write with diff; drifted content → write; same content, other mode → chmod only; converged → nothing', (t) => {
  const a = {dest: '/etc/motd', content: 'hello\n', mode: '0644'};
  const sha = '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03';
  const missing = copyModule.plan({kind: 'missing'}, a);
  t.is(missing.steps[0]?.kind, 'write');
  t.deepEqual(missing.diff, {path: '/etc/motd', before: '', after: 'hello\n'});
  const drifted = copyModule.plan({kind: 'file', size: 4, sha256: 'other', content: Buffer.from('bye\n'), ...attrs}, a);
  t.is(drifted.steps[0]?.kind, 'write');
  t.is(drifted.diff?.before, 'bye\n');
  const modeOnly = copyModule.plan({kind: 'file', size: 6, sha256: sha, ...attrs, mode: 0o600}, a);
  t.deepEqual(modeOnly.steps.map((s) => s.kind), ['exec']);
  t.is(copyModule.plan({kind: 'file', size: 6, sha256: sha, ...attrs}, a).steps.length, 0);
});

test('lineinfile edits: replace by regexp, append, insertAfter, absent, idempotent', (t) => {
  const text = 'a=1\n#b=2\nc=3\n';
  t.is(editLines(text, {path: '/f', regexp: '^#?b=', line: 'b=5'}), 'a=1\nb=5\nc=3\n');
  t.is(editLines(text, {path: '/f', line: 'd=4'}), 'a=1\n#b=2\nc=3\nd=4\n');
  t.is(editLines(text, {path: '/f', line: 'x', insertAfter: '^a='}), 'a=1\nx\n#b=2\nc=3\n');
  t.is(editLines(text, {path: '/f', line: 'x', insertBefore: 'BOF'}), 'x\na=1\n#b=2\nc=3\n');
  t.is(editLines(text, {path: '/f', regexp: '^c=', state: 'absent'}), 'a=1\n#b=2\n');
  t.is(editLines(text, {path: '/f', line: 'c=3'}), text);
  t.is(editLines('', {path: '/f', line: 'only'}), 'only\n');
  const plan = lineInFileModule.plan({kind: 'file', size: text.length, sha256: 'x', content: Buffer.from(text), ...attrs}, {path: '/f', regexp: '^c=', line: 'c=3'});
  t.is(plan.steps.length, 0);
  t.truthy(lineInFileModule.plan({kind: 'missing'}, {path: '/f', line: 'x'}).fail);
});

test('the file probe parses real stat output for a file, a directory, a link and a missing path', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'prov-probe-'));
  writeFileSync(join(dir, 'f'), 'content\n');
  chmodSync(join(dir, 'f'), 0o640);
  const probe = async (p: string) => parseFileState((await localExec(fileProbeScript(p, 'small'))).stdout);
  const f = await probe(join(dir, 'f'));
  t.like(f, {kind: 'file', mode: 0o640, size: 8});
  t.is(f.kind === 'file' ? f.content?.toString() : '', 'content\n');
  t.like(await probe(dir), {kind: 'directory'});
  t.like(await probe(join(dir, 'nope')), {kind: 'missing'});
  await localExec(`ln -s /etc/hostname ${join(dir, 'l')}`);
  t.like(await probe(join(dir, 'l')), {kind: 'link', target: '/etc/hostname'});
});

// ---- the same modules through the engine, on a real filesystem, via the fake transport

function pb(root: string) {
  return definePlaybook({
    name: 'files',
    plays: [{
      name: 'files',
      hosts: 'all_hosts',
      gatherFacts: false,
      tasks: [
        file({path: join(root, 'etc'), state: 'directory', mode: '0755'}),
        copy({dest: join(root, 'etc/app.conf'), content: 'port=80\n', mode: '0640'}),
        lineinfile({path: join(root, 'etc/app.conf'), regexp: '^port=', line: 'port=8080'}),
        lineinfile({path: join(root, 'etc/env'), regexp: '^LOG=', line: 'LOG=info', create: true, mode: '0600'}),
        file({path: join(root, 'current'), state: 'link', src: join(root, 'etc')}),
      ],
    }],
  });
}

function pb2(root: string) {
  const p = pb(root);
  const play = p.plays[0]!;
  return {...p, plays: [{...play, tasks: play.tasks!.filter((_, i) => i !== 2)}]};
}

test('files: missing → created, converged → 0 changed, drifted → fixed, check → no mutating command', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'prov-files-'));
  const first = await runFake(pb(root));
  t.deepEqual(first.results().map((r) => r.status), ['changed', 'changed', 'changed', 'changed', 'changed']);
  t.is(readFileSync(join(root, 'etc/env'), 'utf8'), 'LOG=info\n');
  t.is(statSync(join(root, 'etc/env')).mode & 0o777, 0o600);
  t.is(statSync(join(root, 'etc/app.conf')).mode & 0o777, 0o640);
  t.is(readlinkSync(join(root, 'current')), join(root, 'etc'));

  const second = await runFake(pb(root));
  // copy then lineinfile on the same file fight each other, as in Ansible: the copy wins each run.
  t.deepEqual(second.results().map((r) => r.status), ['ok', 'changed', 'changed', 'ok', 'ok']);
  await runFake(pb2(root));
  const third = await runFake(pb2(root));
  t.deepEqual(third.results().map((r) => r.status), ['ok', 'ok', 'ok', 'ok']);
  // A run that changes nothing costs one round trip on the host.
  t.is(third.transports.get('h1')!.execs.length, 1);

  writeFileSync(join(root, 'etc/app.conf'), 'port=81\n');
  const check = await runFake(pb2(root), {check: true});
  t.deepEqual(check.results().map((r) => r.status), ['ok', 'changed', 'ok', 'ok']);
  t.true(check.results()[2]?.pending, 'results after a would-change are marked');
  t.false(check.results()[1]?.pending);
  const log = check.transports.get('h1')!.execs;
  t.is(log.length, 1, 'check mode sends only the probe batch');
  t.is(readFileSync(join(root, 'etc/app.conf'), 'utf8'), 'port=81\n');

  const fix = await runFake(pb2(root));
  t.deepEqual(fix.results().map((r) => r.status), ['ok', 'changed', 'ok', 'ok']);
  t.is(readFileSync(join(root, 'etc/app.conf'), 'utf8'), 'port=80\n');
  t.is(fix.transports.get('h1')!.execs.length, 3, 'probe batch, the write, one re-probe of the remaining tasks');
});

test('copy with a failing validate leaves the old file and no temp file behind', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'prov-validate-'));
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/x.conf'), 'good\n');
  const run = await runFake(definePlaybook({name: 'v', plays: [{name: 'v', hosts: 'all_hosts', gatherFacts: false, tasks: [
    copy({dest: join(root, 'etc/x.conf'), content: 'bad\n', validate: 'grep -q good %s'}),
  ]}]}));
  t.is(run.results()[0]?.status, 'failed');
  t.is(readFileSync(join(root, 'etc/x.conf'), 'utf8'), 'good\n');
  t.deepEqual((await localExec(`ls -A ${join(root, 'etc')}`)).stdout.trim().split('\n'), ['x.conf']);
  t.false(existsSync(join(root, 'etc/.x.conf.provision')));
  t.true(lstatSync(join(root, 'etc/x.conf')).isFile());
});
