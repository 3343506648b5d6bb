import test from 'ava';
import type {Plan} from '../../src/core/types.ts';
import {hostname, hostnameModule, parseHostname, type HostnameState} from '../../src/modules/hostname.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const short = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.join(' ') : s.kind === 'write' ? `write ${s.dest}: ${s.content.toString()}` : ''));

// ---- pure plans

const cases: {title: string; have: HostnameState; steps: string[]; reason: RegExp}[] = [
  {title: 'systemd, drifted → hostnamectl set-hostname', have: {tool: 'hostnamectl', static: 'localhost', running: 'localhost'}, steps: ['hostnamectl set-hostname web1'], reason: /was static localhost, running localhost/},
  {title: 'systemd, only the running name drifted → hostnamectl set-hostname', have: {tool: 'hostnamectl', static: 'web1', running: 'tmp'}, steps: ['hostnamectl set-hostname web1'], reason: /was running tmp/},
  {title: 'systemd, converged → nothing', have: {tool: 'hostnamectl', static: 'web1', running: 'web1'}, steps: [], reason: /^already web1$/},
  {title: 'no systemd, missing /etc/hostname → write it and run hostname', have: {tool: 'file', running: 'localhost'}, steps: ['write /etc/hostname: web1\n', 'hostname web1'], reason: /static \(none\)/},
  {title: 'no systemd, file drifted, running right → write only', have: {tool: 'file', static: 'old', running: 'web1'}, steps: ['write /etc/hostname: web1\n'], reason: /was static old\)/},
  {title: 'no systemd, converged → nothing', have: {tool: 'file', static: 'web1', running: 'web1'}, steps: [], reason: /already/},
];

for (const c of cases) {
  test(`hostname plan: ${c.title}`, (t) => {
    const p = hostnameModule.plan(c.have, {name: 'web1'});
    t.deepEqual(short(p), c.steps);
    t.regex(p.reason ?? '', c.reason);
    if (c.steps.length > 0) t.truthy(p.diff);
  });
}

test('hostname: a bad name is refused where the task is written; the probe output parses', (t) => {
  t.regex(hostname({name: 'web_1;reboot'}).problems().join(), /host name/);
  t.deepEqual(parseHostname('hostnamectl\nweb1\nweb1\n'), {tool: 'hostnamectl', static: 'web1', running: 'web1'});
  t.deepEqual(parseHostname('file\n-\nlocalhost\n'), {tool: 'file', running: 'localhost'});
});

// ---- check mode through the engine, on fake hosts: every tool the probe uses is a script; nothing else runs

const noSystemd = 'echo "System has not been booted with systemd as init system (PID 1). Can\'t operate." >&2; exit 1';
/** `cat /etc/hostname` reads $FAKE/etc-hostname; anything else is the real cat. */
const fakeCat = 'if [ "$1" = /etc/hostname ]; then exec cat "$FAKE/etc-hostname"; fi; PATH=/usr/bin:/bin exec cat "$@"';

test('hostname with systemd: drifted → would set; a real run sends hostnamectl', async (t) => {
  const h = fakeHost('hostname', {hostnamectl: '[ "$1" = --static ] && cat "$FAKE/static"', hostname: 'cat "$FAKE/running"'}, {static: 'localhost\n', running: 'localhost\n'});
  await assertCheckMode(t, h, hostname({name: 'web1'}), {status: 'changed', msg: 'would set hostname web1 (was static localhost, running localhost)', cmds: ['hostnamectl set-hostname web1']});
});

test('hostname with systemd: converged → ok, nothing sent', async (t) => {
  const h = fakeHost('hostname', {hostnamectl: '[ "$1" = --static ] && cat "$FAKE/static"', hostname: 'cat "$FAKE/running"'}, {static: 'web1\n', running: 'web1\n'});
  await assertCheckMode(t, h, hostname({name: 'web1'}), {status: 'ok', msg: 'already web1', cmds: []});
});

test('hostname without systemd: /etc/hostname missing → would write it and run hostname', async (t) => {
  const h = fakeHost('hostname', {hostnamectl: noSystemd, hostname: 'cat "$FAKE/running"', cat: fakeCat}, {running: 'localhost\n'});
  await assertCheckMode(t, h, hostname({name: 'web1'}), {status: 'changed', msg: 'would set hostname web1 (was static (none), running localhost)', cmds: ['write /etc/hostname: web1\n', 'hostname web1']});
});

test('hostname without systemd: file drifted (comments skipped) → would write it only', async (t) => {
  const h = fakeHost('hostname', {hostnamectl: noSystemd, hostname: 'cat "$FAKE/running"', cat: fakeCat}, {'etc-hostname': '# set by the installer\nold\n', running: 'web1\n'});
  await assertCheckMode(t, h, hostname({name: 'web1'}), {status: 'changed', msg: 'would set hostname web1 (was static old)', cmds: ['write /etc/hostname: web1\n']});
});
