/**
 * The live UI rendered to strings (ink-testing-library) from scripted run events: a normal run, a
 * failure, an unreachable host, check mode, 100 hosts, a narrow terminal; the keys; and the real
 * `startLiveUi` on fake streams (frames are batched, resizes are followed, `q` stops).
 */
import '../helpers/interactive-terminal.ts'; // before ink loads: see the file
import test from 'ava';
import React from 'react';
import {EventEmitter} from 'node:events';
import {render} from 'ink-testing-library';
import type {RunEvent} from '../../src/core/events.ts';
import {Secrets} from '../../src/core/secret.ts';
import {LiveStore, type Snapshot} from '../../src/ui/live-store.ts';
import {LiveView, type UiState} from '../../src/ui/components/LiveView.tsx';
import {GROUP_FROM, layoutHosts} from '../../src/ui/components/HostTable.tsx';
import {LiveApp, startLiveUi} from '../../src/ui/live.tsx';
import {hostNames, script} from './script.ts';
import {FakeStdin} from '../helpers/fake-stdin.ts';

const ansi = /\x1b\[[0-9;?]*[A-Za-z]/g;
const strip = (s: string | undefined): string => (s ?? '').replace(ansi, '');
const noUi: UiState = {selected: null, expanded: null};
const info = {playbook: 'site', inventory: 'inventory/lab.yml', check: false, diff: false};

function storeOf(events: readonly RunEvent[], secrets = new Secrets()): LiveStore {
  let t = 1_000_000;
  const store = new LiveStore(info, secrets, () => (t += 100));
  for (const e of events) store.apply(e);
  return store;
}

function frame(snapshot: Snapshot, o: {columns?: number; rows?: number; ui?: UiState} = {}): string {
  const r = render(<LiveView snapshot={snapshot} columns={o.columns ?? 100} rows={o.rows ?? 40} ui={o.ui ?? noUi} />);
  const out = strip(r.lastFrame());
  r.unmount();
  return out;
}

/** The live region only: the same snapshot without the scrollback. */
function live(snapshot: Snapshot, o: {columns?: number; rows?: number; ui?: UiState} = {}): string[] {
  return frame({...snapshot, statics: []}, o).split('\n');
}

test('a normal run: rows with marks, progress and counts while running; recap and scrollback at the end', (t) => {
  const mid = storeOf(script({hosts: 6, stopAfterTask: 4, answered: 2})).snapshot();
  const rows = live(mid);
  t.regex(rows[0]!, /^provision · site · inventory\/lab\.yml · APPLY · /);
  t.is(rows[1], 'PLAY [web servers] · task 4/11: nginx : motd');
  // web1 and web2 answered task 4 (idle ▹, 4/11); web3..web6 still run it (▸, 3/11).
  t.regex(rows[2]!, /^ ▹ web1 +━+─+ +4\/11 ok=1 chg=3 fail=0 skip=0 +\S+ nginx : motd$/);
  t.regex(rows[4]!, /^ ▸ web3 +━+─+ +3\/11 ok=0 chg=3 fail=0 skip=0 +\S+ nginx : motd$/);
  t.is(rows.filter((l) => /^ [▸▹] web\d/.test(l)).length, 6);
  t.is(rows.at(-1), 'q stop · ↑↓ host · enter log');

  const end = storeOf(script({hosts: 6})).snapshot();
  const out = frame(end);
  t.regex(out, /^PLAY \[web servers\] · 6 hosts$/m);
  t.regex(out, /^~ web1 · nginx : config dir · changed$/m);
  t.notRegex(out, /nginx : motd/, 'ok results do not scroll');
  t.regex(out, /^PLAY RECAP · finished in 12s$/m);
  t.regex(out, /^web1 : ok=2 +changed=7 +unreachable=0 +failed=0 +skipped=2$/m);
  t.regex(out, /^web6 : ok=2 +changed=7 /m);
  t.is(out.trimEnd().split('\n').at(-1), '✔ done · 6 hosts · 42 changed · 0 failed · 0 unreachable · 12s');
  t.notRegex(out, /failure/);
});

test('a failure: the row turns red with the task, the scrollback shows host, task, command, rc and output in full', (t) => {
  const mid = storeOf(script({hosts: 3, fail: {web2: 3}, stopAfterTask: 4})).snapshot();
  const rows = live(mid);
  t.regex(rows.find((l) => l.includes('web2'))!, /^ ✘ web2 .* 3\/11 ok=0 chg=2 fail=1 skip=0 .* FAILED: nginx : app config$/);
  const out = frame(mid);
  t.regex(out, /^✘ web2 · nginx : app config · FAILED: exit 2: nginx: \[emerg\] unknown directive "lsten"$/m);
  t.regex(out, /^ {4}cmd: nginx -t -c \/etc\/nginx\/nginx\.conf$/m);
  t.regex(out, /^ {4}rc: 2$/m);
  t.regex(out, /^ {4}stderr:\n {6}nginx: \[emerg\] unknown directive "lsten" in \/etc\/nginx\/sites-enabled\/app:3\n {6}nginx: configuration file \/etc\/nginx\/nginx\.conf test failed$/m);

  const end = frame(storeOf(script({hosts: 3, fail: {web2: 3}})).snapshot());
  t.regex(end, /^web2 : ok=0 +changed=2 +unreachable=0 +failed=1 +skipped=0$/m);
  t.regex(end, /^1 failure \(in full above\):\n✘ web2 · nginx : app config: exit 2: /m);
  t.regex(end.trimEnd().split('\n').at(-1)!, /^✘ done · 3 hosts · \d+ changed · 1 failed · 0 unreachable/);
});

test('an unreachable host: its row says UNREACHABLE, the others go on', (t) => {
  const mid = storeOf(script({hosts: 4, unreachable: ['web3'], stopAfterTask: 2})).snapshot();
  const rows = live(mid);
  t.regex(rows.find((l) => l.includes('web3'))!, /^ ⊘ web3 .* 0\/11 .*UNREACHABLE$/);
  t.regex(rows.find((l) => l.includes('web4'))!, /^ [▸▹] web4 .* 2\/11 /);
  const end = frame(storeOf(script({hosts: 4, unreachable: ['web3']})).snapshot());
  t.regex(end, /^⊘ web3 · Gathering Facts · UNREACHABLE: ssh: connect to host web3 port 22: Connection refused$/m);
  t.regex(end, /^web3 : ok=0 +changed=0 +unreachable=1 +failed=0 +skipped=0$/m);
  t.regex(end, /^⊘ web3 · Gathering Facts: ssh: connect/m);
  t.regex(end, /· 1 unreachable · /);
});

test('check mode: CHECK in the header, "would change", and results resting on an earlier would-change are marked', (t) => {
  const events = script({hosts: 2, check: true, diff: true});
  const mid = storeOf(events.slice(0, 12)).snapshot();
  const rows = live(mid);
  t.regex(rows[0]!, / · CHECK · /);
  t.regex(rows[2]!, /ok=\d+ would=\d+ fail=0 skip=0 .* ≈$/, 'the row marks a host whose plan rests on a would-change');
  const out = frame(storeOf(events).snapshot());
  t.regex(out, /^~ web1 · nginx : config dir · would change$/m, 'the first change does not rest on anything');
  t.regex(out, /^~ web1 · nginx : log dir · would change ≈ rests on an earlier would-change$/m);
  t.regex(out, /^PLAY RECAP · finished in 12s · check mode: nothing was changed$/m);
  t.regex(out, /^web1 : ok=2 +would change=7 /m);
  t.regex(out, /· 14 would change · /);
  // --diff: a preview of the diff under the change.
  t.regex(out, /^~ web1 · nginx : app config · would change ≈ rests on an earlier would-change\n {4}--- before: \/etc\/nginx\/app\.conf\n {4}\+\+\+ after: \/etc\/nginx\/app\.conf\n {4}@@ .* @@\n {4}-port=80\n {4}\+port=8080$/m);
});

test('100 hosts: grouped; failing and running hosts get rows, the live region fits the terminal', (t) => {
  const names = hostNames(100);
  const mid = storeOf(script({hosts: 100, fail: {[names[9]!]: 2, [names[40]!]: 3}, unreachable: [names[70]!], stopAfterTask: 4, answered: 60})).snapshot();
  for (const rowsN of [40, 24, 12, 6]) {
    const rows = live(mid, {rows: rowsN});
    t.true(rows.length <= rowsN - 1, `${rows.length} lines at ${rowsN} rows`);
  }
  const rows = live(mid, {rows: 24});
  t.is(rows[2], '100 hosts: ▸ 37 running  ▹ 60 done with this task  ✘ 2 failed  ⊘ 1 unreachable');
  t.regex(live(mid, {rows: 24, columns: 120})[2]!, /⊘ 1 unreachable {2}ok=\d+ chg=\d+ fail=3 skip=\d+$/, 'totals when there is room');
  t.regex(rows[3]!, /^ ✘ web010 .* FAILED: nginx : log dir$/);
  t.regex(rows[4]!, /^ ✘ web041 .* FAILED: nginx : app config$/);
  t.regex(rows[5]!, /^ ⊘ web071 .*UNREACHABLE$/);
  t.regex(rows[6]!, /^ ▸ web06\d /, 'then the hosts still running the task');
  t.regex(rows.at(-2)!, /^ {2}… and \d+ more running$/);
  t.false(rows.some((l) => / ▹ web/.test(l)), 'hosts done with the task are counted, not listed');
  const hidden = Number(/and (\d+) more/.exec(rows.at(-2)!)![1]);
  t.is(rows.filter((l) => / ▸ web/.test(l)).length + hidden, 37);

  // At the end: the final line, and the recap in the scrollback.
  const end = storeOf(script({hosts: 100, fail: {[names[9]!]: 2}})).snapshot();
  const out = frame(end, {rows: 24});
  t.is(out.trimEnd().split('\n').at(-1), '✘ done · 100 hosts · 694 changed · 1 failed · 0 unreachable · 12s');
  t.is(out.split('\n').filter((l) => /^web\d{3} : ok=/.test(l)).length, 100);
});

test('from 50 hosts the scrollback groups changes: one line per task with how many hosts; failures stay one each. From 200, the recap groups hosts by their counts', (t) => {
  const names = hostNames(GROUP_FROM);
  const out = frame(storeOf(script({hosts: GROUP_FROM, fail: {[names[3]!]: 4}, diff: true})).snapshot(), {columns: 140, rows: 30});
  t.regex(out, new RegExp(`^~ ${GROUP_FROM} hosts · nginx : config dir · changed · ${names.slice(0, 5).join(', ')}, … ${GROUP_FROM - 5} more$`, 'm'));
  t.notRegex(out, /^~ web\d+ · /m, 'no line per host and change');
  t.regex(out, new RegExp(`^✘ ${names[3]} · .* · FAILED: `, 'm'), 'the failure in full, as always');
  t.is(out.split('\n').filter((l) => /^web\d+ +: ok=/.test(l)).length, GROUP_FROM, 'below 200 hosts: a recap line per host');

  const many = hostNames(250);
  const big = frame(storeOf(script({hosts: 250, fail: {[many[7]!]: 2}, unreachable: [many[9]!]})).snapshot(), {columns: 160, rows: 30});
  const recap = big.slice(big.indexOf('PLAY RECAP')).split('\n');
  t.regex(recap[0]!, /· 250 hosts, grouped by their counts$/);
  t.regex(recap[1]!, new RegExp(`^${many[7]} +: ok=.* failed=1 `));
  t.regex(recap[2]!, new RegExp(`^${many[9]} +: ok=.* unreachable=1 `));
  t.regex(recap[3]!, /^248 hosts : ok=\d+ +changed=\d+ +unreachable=0 +failed=0 +skipped=\d+ \(web001, web002, web003, … 245 more\)$/);
  t.regex(big.trimEnd().split('\n').at(-1)!, /^✘ done · 250 hosts · \d+ changed · 1 failed · 1 unreachable · 12s$/);
});

test('from 50 hosts the table groups even when the terminal is tall; below, one row each', (t) => {
  const few = storeOf(script({hosts: GROUP_FROM - 1, stopAfterTask: 1, answered: 0})).snapshot();
  t.false(layoutHosts(few.hosts, 200, null, null).grouped);
  const many = storeOf(script({hosts: GROUP_FROM, stopAfterTask: 1, answered: 0})).snapshot();
  const l = layoutHosts(many.hosts, 200, null, null);
  t.true(l.grouped);
  t.is(l.rows.length, GROUP_FROM, 'all running: all shown when they fit');
  // Six hosts in a short terminal: grouped, with the selected host always shown.
  const six = storeOf(script({hosts: 6, stopAfterTask: 2, answered: 0})).snapshot();
  const small = layoutHosts(six.hosts, 4, 'web6', null);
  t.true(small.grouped);
  t.true(small.rows.some((h) => h.name === 'web6'));
  t.true(small.height <= 4);
});

test('a narrow terminal: no line is wider than 40 columns, scrollback included', (t) => {
  const secrets = new Secrets();
  secrets.add('s3cr3t-value');
  const names = hostNames(12);
  const events = script({hosts: 12, fail: {[names[1]!]: 3}, unreachable: [names[5]!], diff: true});
  const withSecret: RunEvent[] = events.map((e) => (e.type === 'result' && e.status === 'failed' ? {...e, stderr: `${e.stderr}token=s3cr3t-value and a very long line of compiler output that goes on and on\n`} : e));
  for (const cut of [30, 60, withSecret.length]) {
    const out = frame(storeOf(withSecret.slice(0, cut), secrets).snapshot(), {columns: 40, rows: 16});
    const wide = out.split('\n').filter((l) => l.length > 40);
    t.deepEqual(wide, [], `after ${cut} events`);
    t.notRegex(out, /s3cr3t-value/);
  }
  const mid = frame(storeOf(withSecret.slice(0, 60), secrets).snapshot(), {columns: 40, rows: 16});
  t.regex(mid, /token=\*\*\*/);
  const rows = live(storeOf(withSecret.slice(0, 60), secrets).snapshot(), {columns: 40, rows: 16});
  t.true(rows.length <= 15);
  t.regex(rows[0]!, /^provision · site · .*APPLY · /);
});

test('keys: q and Ctrl-C stop, ↓ selects a host, enter opens its log, esc closes it', async (t) => {
  const snap = storeOf(script({hosts: 3, stopAfterTask: 4, answered: 1})).snapshot();
  const stops: string[] = [];
  const r = render(<LiveApp snapshot={snap} onStop={(k) => stops.push(k)} size={{columns: 100, rows: 30}} />);
  const frameOf = (): string => strip(r.lastFrame());
  const until = async (ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 100 && !ok(); i++) await new Promise((res) => setTimeout(res, 20));
  };
  await until(() => frameOf() !== '');
  r.stdin.write('\x1b[B'); // ↓
  await until(() => /^›. web1 /m.test(frameOf()));
  r.stdin.write('\x1b[B');
  await until(() => /^›. web2 /m.test(frameOf()));
  t.regex(frameOf(), /^›[▸▹] web2 /m);
  r.stdin.write('\r');
  await until(() => frameOf().includes('log of'));
  const open = frameOf();
  t.regex(open, /^── log of web2: 3 of 3 results/m, open);
  t.regex(open, /^ {2}changed +nginx : config dir +\d+ms$/m);
  t.regex(open, /enter\/esc close log$/m);
  r.stdin.write('\x1b');
  await until(() => !frameOf().includes('log of'));
  t.notRegex(frameOf(), /log of web2/);
  r.stdin.write('q');
  await until(() => stops.length === 1);
  r.stdin.write('\x03');
  await until(() => stops.length === 2);
  t.deepEqual(stops, ['q', 'ctrl-c']);
  r.unmount();
});

class FakeStdout extends EventEmitter {
  columns = 80;
  rows = 24;
  isTTY = true;
  writes: string[] = [];
  write = (s: string, cb?: () => void): boolean => {
    this.writes.push(s);
    cb?.();
    return true;
  };
}

// Serial: it counts frames and waits on timers; other tests rendering in this process meanwhile disturb both.
test.serial('startLiveUi: a burst of events costs a few frames, resizes are followed, q calls onInterrupt once', async (t) => {
  const stdout = new FakeStdout();
  const stdin = new FakeStdin();
  let interrupts = 0;
  const ui = startLiveUi({...info, onInterrupt: () => interrupts++, stdout: stdout as unknown as NodeJS.WriteStream, stdin: stdin as unknown as NodeJS.ReadStream, secrets: new Secrets()});
  t.teardown(() => ui.done());
  const recent = (): string => strip(stdout.writes.slice(-3).join(''));
  const until = async (ok: () => boolean): Promise<void> => {
    for (let i = 0; i < 500 && !ok(); i++) await new Promise((r) => setTimeout(r, 20)); // up to 10 s on a loaded machine
  };
  const events = script({hosts: 100, fail: {web010: 2}});
  const before = stdout.writes.length;
  for (const e of events.slice(0, -1)) ui.emit(e); // ~1100 events at once
  await until(() => /task 11\/11/.test(recent()));
  const frames = stdout.writes.length - before;
  t.true(frames > 0 && frames <= 12, `${frames} writes for ${events.length} events`);
  t.true(strip(stdout.writes.join('')).split('\n').every((l) => l.length <= 80));

  stdout.columns = 50;
  stdout.emit('resize');
  await until(() => /100 hosts: /.test(recent()) && recent().split('\n').every((l) => l.length <= 50));
  const after = recent();
  t.regex(after, /100 hosts: /);
  t.true(after.split('\n').every((l) => l.length <= 50), 'redrawn at the new width');

  stdin.type('q');
  stdin.type('q');
  await until(() => /stopping: running tasks finish/.test(recent()));
  t.is(interrupts, 1, 'q stops once; a second q is ignored');
  t.regex(recent(), /stopping: running tasks finish/);
  stdin.type('\x03');
  t.is(interrupts, 2, 'Ctrl-C reaches the CLI each time (the second stops at once)');

  ui.emit(events.at(-1)!);
  await ui.done();
  const end = strip(stdout.writes.join(''));
  t.regex(end, /PLAY RECAP · finished in 12s/);
  t.regex(end, /✘ done · 100 hosts · /);
});

test('serial: only the batch that runs shows as running; later batches wait until their turn', (t) => {
  const store = storeOf([
    {type: 'start', playbook: 'site', inventory: 'inv', check: false, diff: false, hosts: ['web1', 'web2']},
    {type: 'play', name: 'web servers', hosts: ['web1', 'web2'], tasks: 1},
    {type: 'task', play: 'web servers', name: 'nginx', role: null, hosts: ['web1']},
  ]);
  const phase = (n: string): string | undefined => store.snapshot().hosts.find((h) => h.name === n)?.phase;
  t.is(phase('web1'), 'running');
  t.is(phase('web2'), 'waiting');
  store.apply({type: 'result', host: 'web1', task: 'nginx', play: 'web servers', role: null, status: 'ok', duration_ms: 5, diff: null, msg: 'ok', pending: false});
  store.apply({type: 'task', play: 'web servers', name: 'nginx', role: null, hosts: ['web2']});
  t.is(phase('web1'), 'finished');
  t.is(phase('web2'), 'running');
});

test('-v: a change shows its command output in the scrollback when the result carries it; without -v it does not', (t) => {
  const events: RunEvent[] = [
    {type: 'start', playbook: 'site', inventory: 'inv', check: false, diff: false, hosts: ['web1']},
    {type: 'play', name: 'app', hosts: ['web1'], tasks: 1},
    {type: 'task', play: 'app', name: 'migrate', role: 'app', hosts: ['web1']},
    {type: 'result', host: 'web1', task: 'migrate', play: 'app', role: 'app', status: 'changed', duration_ms: 5, diff: null, msg: 'ran', pending: false, stdout: 'applied 0001\napplied 0002\n', stderr: '', rc: 0},
  ];
  const shown = (verbose: number): string => {
    const store = new LiveStore({...info, verbose}, new Secrets(), () => 1_000_000);
    for (const e of events) store.apply(e);
    return frame(store.snapshot());
  };
  t.regex(shown(1), /^~ web1 · app : migrate · changed · ran\n {4}stdout:\n {6}applied 0001\n {6}applied 0002$/m);
  t.notRegex(shown(1), /stderr:/, 'an empty stream is not shown');
  t.notRegex(shown(0), /stdout:|applied 0001/);
});
