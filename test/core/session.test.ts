/**
 * The host session on the fake transport: the run lock and the audit log run the same control script
 * as over SSH (the fake starts it with the local shell), with a lock file and an audit log in a temp
 * folder. test/integration/reliability.test.ts proves the same over a real sshd and the CLI.
 */
import test from 'ava';
import {existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import {copy} from '../../src/modules/files.ts';
import {shell} from '../../src/modules/command.ts';
import {secret} from '../../src/core/secret.ts';
import {q} from '../../src/core/cmd.ts';
import type {Play} from '../../src/core/types.ts';
import {runFake} from '../helpers/engine.ts';

const tmp = (p: string): string => mkdtempSync(join(tmpdir(), `prov-session-${p}-`));
const one = (tasks: Play['tasks']) => definePlaybook({name: 'session', plays: [{name: 'p', hosts: 'all_hosts', gatherFacts: false, tasks}]});

test('audit log: one line per change, secrets masked, nothing for unchanged tasks', async (t) => {
  const dir = tmp('audit');
  const audit = join(dir, 'audit.log');
  const pw = secret('Aud1t-"pass\\word');
  const pb = one([
    copy({dest: join(dir, 'conf'), content: pw}, {name: 'write conf'}),
    shell({script: 'true'}, {name: 'read only', changedWhen: () => false}),
    shell({script: `test -n ${q(pw.reveal())}`}, {name: 'uses the secret'}),
  ]);
  const vars = {h1: {provision_audit_log: audit}};
  const first = await runFake(pb, {hostVars: vars});
  t.deepEqual(first.summary.hosts.h1, {ok: 1, changed: 2, failed: 0, skipped: 0, unreachable: 0});
  const lines = readFileSync(audit, 'utf8').trim().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[0] ?? '', /^time=\S+ user=\S+ host=h1 playbook=session play=p task="write conf" change="write \S+\/conf \(\d+ bytes\)"$/);
  t.regex(lines[1] ?? '', /task="uses the secret"/);
  t.false(readFileSync(audit, 'utf8').includes('Aud1t'), 'the secret is masked in the audit log');

  // Converged, and --check: no new line.
  await runFake(pb, {hostVars: vars, check: true});
  t.is(readFileSync(audit, 'utf8').trim().split('\n').length, 2);
});

test('audit log: a failed change is logged as FAILED', async (t) => {
  const dir = tmp('auditfail');
  const audit = join(dir, 'audit.log');
  const r = await runFake(one([shell({script: 'exit 3'}, {name: 'breaks'})]), {hostVars: {h1: {provision_audit_log: audit}}});
  t.is(r.summary.hosts.h1?.failed, 1);
  t.regex(readFileSync(audit, 'utf8'), /task=breaks change="FAILED /);
});

test('run lock: a second run waits for the first; their tasks never interleave', async (t) => {
  const dir = tmp('lock');
  const lock = join(dir, 'provision.lock');
  const trace = join(dir, 'trace');
  const step = (run: string) => shell({script: `echo ${run}-start >> ${trace}; sleep 0.4; echo ${run}-end >> ${trace}`}, {name: `trace ${run}`});
  const vars = {h1: {provision_lock: true, provision_lock_file: lock}};
  const a = runFake(one([step('A')]), {hostVars: vars});
  // B starts while A holds the lock (A's step is running).
  for (let i = 0; i < 100 && !existsSync(trace); i++) await new Promise((r) => setTimeout(r, 20));
  const b = await runFake(one([step('B')]), {hostVars: vars, lockTimeoutS: 10});
  await a;
  t.deepEqual(readFileSync(trace, 'utf8').trim().split('\n'), ['A-start', 'A-end', 'B-start', 'B-end']);
  t.is(b.summary.hosts.h1?.changed, 1);
  t.false(existsSync(`${lock}.info`), 'the holder record is removed when the lock is released');
});

test('run lock: held by another run past the timeout, the host fails naming the holder; others go on', async (t) => {
  const dir = tmp('busy');
  const lock = join(dir, 'provision.lock');
  writeFileSync(`${lock}.info`, 'feedfacefeedface someone@elsewhere pid=42 playbook=other since=now\n');
  const holder = await import('node:child_process').then(({spawn}) => spawn('flock', ['-x', lock, 'sleep', '5'], {stdio: 'ignore'}));
  t.teardown(() => holder.kill());
  for (let i = 0; i < 100 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  const r = await runFake(one([shell({script: 'true'}, {name: 'work'})]), {
    groups: {all_hosts: ['h1', 'h2']},
    hostVars: {h1: {provision_lock: true, provision_lock_file: lock}},
    lockTimeoutS: 0,
  });
  const failed = r.results('h1');
  t.is(failed.length, 1);
  t.is(failed[0]?.task, 'Acquire run lock');
  t.is(failed[0]?.msg, 'locked by another provision run: someone@elsewhere pid=42 playbook=other since=now (waited 0 s; see --lock-timeout)');
  t.is(r.summary.hosts.h2?.changed, 1, 'a host without that lock runs');
});

test('run lock: interrupted while waiting for another run\'s lock, the run ends at once; nothing ran, nothing failed', async (t) => {
  const dir = tmp('lockint');
  const lock = join(dir, 'provision.lock');
  const holder = await import('node:child_process').then(({spawn}) => spawn('flock', ['-x', lock, 'sleep', '20'], {stdio: 'ignore'}));
  t.teardown(() => holder.kill());
  for (let i = 0; i < 100 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 100));
  const ac = new AbortController();
  const t0 = Date.now();
  setTimeout(() => ac.abort(), 300);
  const r = await runFake(one([shell({script: `touch ${join(dir, 'ran')}`}, {name: 'work'})]), {hostVars: {h1: {provision_lock: true, provision_lock_file: lock}}, lockTimeoutS: 20, signal: ac.signal});
  t.true(Date.now() - t0 < 5000, `ended ${Date.now() - t0} ms after it started, not at the lock's timeout`);
  t.true(r.summary.interrupted);
  t.deepEqual(r.results(), [], 'no result: not a failure to take the lock');
  t.false(existsSync(join(dir, 'ran')));
});

test('the control session starts on every host of a run', async (t) => {
  const r = await runFake(one([shell({script: 'true'}, {name: 'work'})]), {groups: {all_hosts: ['h1', 'h2', 'h3']}});
  for (const [host, transport] of r.transports) {
    t.true(transport.log.some((c) => c.command.includes('LOCKED')), `${host}: the control script was started`);
  }
  t.is(Object.values(r.summary.hosts).reduce((n, c) => n + c.changed, 0), 3);
});
