import test from 'ava';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';
import {execFileSync} from 'node:child_process';
import {join} from 'node:path';
import type {Plan} from '../../src/core/types.ts';
import {parseUnitState, service, serviceModule, serviceProbeScript, type ServiceArgs, type UnitState} from '../../src/modules/systemd.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));

const unit = (active: string, unitFile: string, extra: Partial<Extract<UnitState, {kind: 'unit'}>> = {}): UnitState => ({
  kind: 'unit',
  load: 'loaded',
  active,
  sub: active === 'active' ? 'running' : 'dead',
  unitFile,
  needReload: false,
  ...extra,
});
const notFound: UnitState = {kind: 'unit', load: 'not-found', active: 'inactive', sub: 'dead', unitFile: '', needReload: false};
const masked: UnitState = {kind: 'unit', load: 'masked', active: 'inactive', sub: 'dead', unitFile: 'masked', needReload: false};

// ---- pure plans: state in, steps out

const cases: {title: string; have: UnitState; args: ServiceArgs; cmds: string[]; reason?: RegExp}[] = [
  {title: 'stopped and disabled → enable + start', have: unit('inactive', 'disabled'), args: {name: 'nginx', state: 'started', enabled: true}, cmds: ['systemctl enable -- nginx', 'systemctl start -- nginx'], reason: /enable \(was disabled\); start \(was inactive \(dead\)\)/},
  {title: 'failed → start', have: unit('failed', 'enabled', {sub: 'failed'}), args: {name: 'nginx', state: 'started'}, cmds: ['systemctl start -- nginx']},
  {title: 'running and enabled → nothing', have: unit('active', 'enabled'), args: {name: 'nginx', state: 'started', enabled: true}, cmds: [], reason: /^enabled, already active \(running\)$/},
  {title: 'activating counts as started', have: unit('activating', 'enabled', {sub: 'start'}), args: {name: 'nginx', state: 'started'}, cmds: [], reason: /already activating/},
  {title: 'running, want stopped and disabled → disable + stop', have: unit('active', 'enabled'), args: {name: 'nginx', state: 'stopped', enabled: false}, cmds: ['systemctl disable -- nginx', 'systemctl stop -- nginx']},
  {title: 'stopped and disabled → nothing', have: unit('inactive', 'disabled'), args: {name: 'nginx', state: 'stopped', enabled: false}, cmds: [], reason: /not enabled \(disabled\), already inactive/},
  {title: 'failed counts as stopped', have: unit('failed', 'disabled', {sub: 'failed'}), args: {name: 'nginx', state: 'stopped'}, cmds: []},
  {title: 'restarted: always', have: unit('active', 'enabled'), args: {name: 'nginx', state: 'restarted'}, cmds: ['systemctl restart -- nginx']},
  {title: 'reloaded: running → reload', have: unit('active', 'enabled'), args: {name: 'nginx', state: 'reloaded'}, cmds: ['systemctl reload -- nginx']},
  {title: 'reloaded: not running → start', have: unit('inactive', 'enabled'), args: {name: 'nginx', state: 'reloaded'}, cmds: ['systemctl start -- nginx'], reason: /nothing to reload/},
  {title: 'static unit: enabled is a no-op with a reason', have: unit('inactive', 'static'), args: {name: 'systemd-tmpfiles-clean.service', enabled: true}, cmds: [], reason: /static unit/},
  {title: 'enabled-runtime → enable persistently', have: unit('active', 'enabled-runtime'), args: {name: 'x', enabled: true}, cmds: ['systemctl enable -- x']},
  {title: 'indirect unit with enabled → nothing', have: unit('inactive', 'indirect'), args: {name: 'x', enabled: true}, cmds: [], reason: /indirect/},
  {title: 'daemonReload with changed unit files → daemon-reload first', have: unit('active', 'enabled', {needReload: true}), args: {name: 'app', state: 'started', daemonReload: true}, cmds: ['systemctl daemon-reload'], reason: /daemon-reload \(unit files changed\)/},
  {title: 'daemonReload when nothing changed → nothing (idempotent)', have: unit('active', 'enabled'), args: {name: 'app', state: 'started', daemonReload: true}, cmds: []},
  {title: 'new unit file (not-found) with daemonReload → reload, enable, start', have: notFound, args: {name: 'app', state: 'started', enabled: true, daemonReload: true}, cmds: ['systemctl daemon-reload', 'systemctl enable -- app', 'systemctl start -- app']},
  {title: 'mask a running unit and stop it', have: unit('active', 'enabled'), args: {name: 'cups', state: 'stopped', masked: true}, cmds: ['systemctl stop -- cups', 'systemctl mask -- cups']},
  {title: 'already masked → nothing', have: masked, args: {name: 'cups', masked: true}, cmds: [], reason: /masked/},
  {title: 'mask a unit that does not exist', have: notFound, args: {name: 'nope', masked: true}, cmds: ['systemctl mask -- nope']},
  {title: 'masked, want unmasked and started → unmask + start', have: masked, args: {name: 'cups', masked: false, state: 'started'}, cmds: ['systemctl unmask -- cups', 'systemctl start -- cups']},
  {title: 'runtime mask → unmask --runtime', have: {...masked, unitFile: 'masked-runtime'} as UnitState, args: {name: 'cups', masked: false}, cmds: ['systemctl unmask --runtime -- cups']},
  {title: 'nothing asked → nothing, with the state as reason', have: unit('active', 'enabled'), args: {name: 'nginx'}, cmds: [], reason: /nothing asked; active \(running\), enabled/},
  {title: 'unit names that start with a dash are passed after --', have: unit('active', 'static', {sub: 'mounted'}), args: {name: '-.mount', state: 'restarted'}, cmds: ['systemctl restart -- -.mount']},
];

for (const c of cases) {
  test(`service plan: ${c.title}`, (t) => {
    const plan = serviceModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(cmds(plan), c.cmds);
    t.truthy(plan.reason);
    if (c.reason) t.regex(plan.reason ?? '', c.reason);
  });
}

const failures: {title: string; have: UnitState; args: ServiceArgs; fail: RegExp}[] = [
  {title: 'unknown unit', have: notFound, args: {name: 'nginx', state: 'started'}, fail: /unit nginx not found/},
  {title: 'unknown unit, only enabled asked', have: notFound, args: {name: 'nginx', enabled: false}, fail: /not found/},
  {title: 'masked unit asked to start', have: masked, args: {name: 'cups', state: 'started'}, fail: /is masked; set masked: false/},
  {title: 'masked: true with started', have: unit('active', 'enabled'), args: {name: 'cups', state: 'started', masked: true}, fail: /conflicts/},
  {title: 'unit with a bad setting', have: unit('inactive', 'disabled', {load: 'bad-setting'}), args: {name: 'app', state: 'started'}, fail: /failed to load \(LoadState=bad-setting\)/},
  {title: 'no systemd', have: {kind: 'unavailable', message: 'System has not been booted with systemd as init system (PID 1).'}, args: {name: 'nginx', state: 'started'}, fail: /cannot query systemd for nginx: System has not been booted/},
  {title: 'bad name', have: notFound, args: {name: 'nginx; reboot', state: 'started'}, fail: /bad unit name/},
];

for (const c of failures) {
  test(`service plan fails: ${c.title}`, (t) => {
    const plan = serviceModule.plan(c.have, c.args);
    t.deepEqual(plan.steps, []);
    t.regex(plan.fail ?? '', c.fail);
  });
}

// ---- check mode through the engine, on a fake host

/** A host whose `systemctl show` prints `show` (its file). */
const fakeSystemdHost = (show: string) => fakeHost('systemd', {systemctl: '[ "$1" = show ] && cat "$FAKE/show"'}, {show});

/** `systemctl show -p …` output. */
const show = (active: string, sub: string, unitFile: string, needReload = 'no'): string =>
  `LoadState=loaded\nActiveState=${active}\nSubState=${sub}\nUnitFileState=${unitFile}\nNeedDaemonReload=${needReload}\n`;

interface CheckCase {
  readonly title: string;
  /** What the fake host's `systemctl show` prints. */
  readonly show: string;
  readonly args: ServiceArgs;
  /** The --check result: status and message. */
  readonly status: 'changed' | 'ok';
  readonly msg: string;
  /** What a run without --check sends besides probes. */
  readonly cmds: readonly string[];
}

const checkCases: CheckCase[] = [
  {
    title: 'stopped and disabled → would enable and start',
    show: show('inactive', 'dead', 'disabled'),
    args: {name: 'nginx', state: 'started', enabled: true},
    status: 'changed',
    msg: 'would enable (was disabled); start (was inactive (dead))',
    cmds: ['systemctl enable -- nginx', 'systemctl start -- nginx'],
  },
  {
    title: 'running, want stopped and disabled → would disable and stop',
    show: show('active', 'running', 'enabled'),
    args: {name: 'nginx', state: 'stopped', enabled: false},
    status: 'changed',
    msg: 'would disable (was enabled); stop (was active (running))',
    cmds: ['systemctl disable -- nginx', 'systemctl stop -- nginx'],
  },
  {
    title: 'restarted → would restart, even when running',
    show: show('active', 'running', 'enabled'),
    args: {name: 'nginx', state: 'restarted'},
    status: 'changed',
    msg: 'would restart',
    cmds: ['systemctl restart -- nginx'],
  },
  {
    title: 'unit files changed, daemonReload → would daemon-reload',
    show: show('active', 'running', 'enabled', 'yes'),
    args: {name: 'app', state: 'started', daemonReload: true},
    status: 'changed',
    msg: 'would daemon-reload (unit files changed)',
    cmds: ['systemctl daemon-reload'],
  },
  {
    title: 'running and enabled → ok',
    show: show('active', 'running', 'enabled'),
    args: {name: 'nginx', state: 'started', enabled: true},
    status: 'ok',
    msg: 'enabled, already active (running)',
    cmds: [],
  },
];

for (const c of checkCases) {
  test(`service check mode: ${c.title}`, (t) => assertCheckMode(t, fakeSystemdHost(c.show), service(c.args), c));
}

// ---- parser on realistic output

test('service parser: loaded running unit', (t) => {
  const out = 'LoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nNeedDaemonReload=no\n';
  t.deepEqual(parseUnitState(out), {kind: 'unit', load: 'loaded', active: 'active', sub: 'running', unitFile: 'enabled', needReload: false});
});

test('service parser: property order does not matter; NeedDaemonReload=yes', (t) => {
  const out = 'NeedDaemonReload=yes\nUnitFileState=disabled\nSubState=dead\nActiveState=inactive\nLoadState=loaded\n';
  t.like(parseUnitState(out), {kind: 'unit', active: 'inactive', unitFile: 'disabled', needReload: true});
});

test('service parser: not-found and masked units', (t) => {
  t.deepEqual(parseUnitState('LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\nNeedDaemonReload=no\n'), notFound);
  t.like(parseUnitState('LoadState=masked\nActiveState=inactive\nSubState=dead\nUnitFileState=masked\nNeedDaemonReload=no\n'), {load: 'masked', unitFile: 'masked'});
});

test('service parser: systemctl errors become unavailable with the message', (t) => {
  const out = "System has not been booted with systemd as init system (PID 1). Can't operate.\nFailed to connect to bus: Host is down\n";
  t.deepEqual(parseUnitState(out), {kind: 'unavailable', message: "System has not been booted with systemd as init system (PID 1). Can't operate. Failed to connect to bus: Host is down"});
  const missing = parseUnitState('sh: 1: systemctl: not found\n');
  t.regex(missing.kind === 'unavailable' ? missing.message : '', /systemctl: not found/);
  t.like(parseUnitState(''), {kind: 'unavailable'});
});

// ---- the probe, for real on this machine

test('service probe script is valid sh, runs fast, and parses whatever this host says', (t) => {
  const script = serviceProbeScript('nginx.service');
  t.notThrows(() => execFileSync('sh', ['-n', '-c', script]));
  t.notThrows(() => execFileSync('sh', ['-n', '-c', serviceProbeScript('-.mount')]));
  const started = Date.now();
  const stdout = execFileSync('sh', ['-c', script], {encoding: 'utf8', timeout: 30_000});
  t.true(Date.now() - started < 10_000);
  const s = parseUnitState(stdout);
  t.true(s.kind === 'unavailable' ? s.message.length > 0 : s.load.length > 0);
});
