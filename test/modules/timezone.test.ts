import test from 'ava';
import {existsSync} from 'node:fs';
import type {Plan} from '../../src/core/types.ts';
import {parseTimezone, timezone, timezoneModule, zoneOfLink, type TimezoneState} from '../../src/modules/timezone.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const short = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.join(' ') : s.kind === 'write' ? `write ${s.dest}: ${s.content.toString()}` : ''));

// ---- pure plans

const cases: {title: string; have: TimezoneState; steps: string[]; reason: RegExp}[] = [
  {title: 'systemd, drifted → timedatectl set-timezone', have: {tool: 'timedatectl', zone: 'Etc/UTC', known: true}, steps: ['timedatectl set-timezone Europe/Paris'], reason: /was Etc\/UTC/},
  {title: 'systemd, converged → nothing', have: {tool: 'timedatectl', zone: 'Europe/Paris', known: true}, steps: [], reason: /^already Europe\/Paris$/},
  {title: 'no systemd, link and /etc/timezone drifted → relink and write', have: {tool: 'file', zone: 'Etc/UTC', timezoneFile: 'Etc/UTC', known: true},
    steps: ['ln -sfn /usr/share/zoneinfo/Europe/Paris /etc/localtime', 'write /etc/timezone: Europe/Paris\n'], reason: /was Etc\/UTC/},
  {title: 'no systemd, no /etc/timezone (not Debian) → relink only', have: {tool: 'file', zone: 'UTC', known: true}, steps: ['ln -sfn /usr/share/zoneinfo/Europe/Paris /etc/localtime'], reason: /set time zone/},
  {title: 'no systemd, missing /etc/localtime → link it', have: {tool: 'file', known: true}, steps: ['ln -sfn /usr/share/zoneinfo/Europe/Paris /etc/localtime'], reason: /was unknown/},
  {title: 'no systemd, only /etc/timezone drifted → write it', have: {tool: 'file', zone: 'Europe/Paris', timezoneFile: 'UTC', known: true}, steps: ['write /etc/timezone: Europe/Paris\n'], reason: /\/etc\/timezone: UTC → Europe\/Paris/},
  {title: 'no systemd, converged → nothing', have: {tool: 'file', zone: 'Europe/Paris', timezoneFile: 'Europe/Paris', known: true}, steps: [], reason: /already/},
];

for (const c of cases) {
  test(`timezone plan: ${c.title}`, (t) => {
    const p = timezoneModule.plan(c.have, {name: 'Europe/Paris'});
    t.is(p.fail, undefined);
    t.deepEqual(short(p), c.steps);
    t.regex(p.reason ?? '', c.reason);
    if (c.steps.length > 0) t.truthy(p.diff);
  });
}

test('timezone: unknown zone fails (in check mode too); bad names refused; links and output parse', (t) => {
  t.regex(timezoneModule.plan({tool: 'timedatectl', zone: 'UTC', known: false}, {name: 'Europe/Pari'}).fail ?? '', /unknown time zone 'Europe\/Pari'/);
  t.regex(timezone({name: '../../etc/passwd'}).problems().join(), /tz database zone/);
  t.is(zoneOfLink('../usr/share/zoneinfo/Europe/Paris'), 'Europe/Paris');
  t.is(zoneOfLink('/usr/share/zoneinfo/posix/Asia/Tokyo'), 'Asia/Tokyo');
  t.is(zoneOfLink(''), undefined);
  t.deepEqual(parseTimezone('file\n/usr/share/zoneinfo/UTC\nnotzfile\n\nknown\n'), {tool: 'file', zone: 'UTC', known: true});
  t.deepEqual(parseTimezone('timedatectl\nEurope/Paris\ntzfile\nEurope/Paris\nunknown\n'), {tool: 'timedatectl', zone: 'Europe/Paris', timezoneFile: 'Europe/Paris', known: false});
});

// ---- check mode through the engine, on fake hosts. The zone check reads this machine's /usr/share/zoneinfo.

const hasZones = existsSync('/usr/share/zoneinfo/Europe/Paris') && existsSync('/usr/share/zoneinfo/UTC');
const zoneTest = hasZones ? test : test.skip; // skipped visibly: no tzdata on this machine
const noSystemd = 'echo "System has not been booted with systemd as init system (PID 1)." >&2; exit 1';
/** `readlink /etc/localtime` and `cat /etc/timezone` read $FAKE; anything else is the real tool. */
const fakeReadlink = 'if [ "$1" = /etc/localtime ]; then [ -f "$FAKE/localtime" ] && exec cat "$FAKE/localtime"; exit 1; fi; PATH=/usr/bin:/bin exec readlink "$@"';
const fakeCat = 'if [ "$1" = /etc/timezone ]; then exec cat "$FAKE/etc-timezone"; fi; PATH=/usr/bin:/bin exec cat "$@"';

zoneTest('timezone with systemd: drifted → would set; a real run sends timedatectl', async (t) => {
  const h = fakeHost('timezone', {timedatectl: '[ "$1" = show ] && cat "$FAKE/zone"', cat: fakeCat}, {zone: 'Etc/UTC\n'});
  await assertCheckMode(t, h, timezone({name: 'Europe/Paris'}), {status: 'changed', msg: 'would set time zone Europe/Paris (was Etc/UTC)', cmds: ['timedatectl set-timezone Europe/Paris']});
});

zoneTest('timezone with systemd: converged → ok, nothing sent', async (t) => {
  const h = fakeHost('timezone', {timedatectl: '[ "$1" = show ] && cat "$FAKE/zone"', cat: fakeCat}, {zone: 'Europe/Paris\n'});
  await assertCheckMode(t, h, timezone({name: 'Europe/Paris'}), {status: 'ok', msg: 'already Europe/Paris', cmds: []});
});

zoneTest('timezone without systemd (Debian): drifted → would relink and write /etc/timezone', async (t) => {
  const h = fakeHost('timezone', {timedatectl: noSystemd, readlink: fakeReadlink, cat: fakeCat}, {localtime: '/usr/share/zoneinfo/Etc/UTC\n', 'etc-timezone': 'Etc/UTC\n'});
  await assertCheckMode(t, h, timezone({name: 'Europe/Paris'}), {
    status: 'changed',
    msg: 'would set time zone Europe/Paris (was Etc/UTC)',
    cmds: ['ln -sfn /usr/share/zoneinfo/Europe/Paris /etc/localtime', 'write /etc/timezone: Europe/Paris\n'],
  });
});

zoneTest('timezone without systemd: missing /etc/localtime and no /etc/timezone → would link only', async (t) => {
  const h = fakeHost('timezone', {timedatectl: noSystemd, readlink: fakeReadlink, cat: fakeCat}, {});
  await assertCheckMode(t, h, timezone({name: 'UTC'}), {status: 'changed', msg: 'would set time zone UTC (was unknown)', cmds: ['ln -sfn /usr/share/zoneinfo/UTC /etc/localtime']});
});

zoneTest('timezone: a misspelt zone fails in check mode, nothing sent', async (t) => {
  const h = fakeHost('timezone', {timedatectl: '[ "$1" = show ] && cat "$FAKE/zone"', cat: fakeCat}, {zone: 'UTC\n'});
  await assertCheckMode(t, h, timezone({name: 'Europe/Pariss'}), {status: 'failed', msg: "unknown time zone 'Europe/Pariss' (no /usr/share/zoneinfo/Europe/Pariss on the host)", cmds: []});
});
