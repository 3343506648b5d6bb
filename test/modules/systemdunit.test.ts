import test from 'ava';
import {createHash} from 'node:crypto';
import {mkdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {FileState} from '../../src/facts/file.ts';
import type {Plan} from '../../src/core/types.ts';
import {systemdUnit, systemdUnitModule, unitPath, type SystemdUnitArgs} from '../../src/modules/systemdunit.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const steps = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind === 'write' ? `write ${s.dest} ${s.mode}` : ''));
const unit = '[Unit]\nDescription=App\n\n[Service]\nExecStart=/usr/bin/app\n';
const fileOf = (text: string): FileState => ({kind: 'file', size: text.length, sha256: createHash('sha256').update(text).digest('hex'), content: Buffer.from(text), mode: 0o644, owner: 'root', group: 'root'});
const S = '/etc/systemd/system';

const cases: {title: string; have: FileState; args: SystemdUnitArgs; steps: string[]; diff?: {before: string; after: string}; reason: RegExp}[] = [
  {title: 'missing unit → mkdir, write, daemon-reload', have: {kind: 'missing'}, args: {name: 'app.service', content: unit}, steps: [`mkdir -p -- ${S}`, `write ${S}/app.service 0644`, 'systemctl daemon-reload'], diff: {before: '', after: unit}, reason: /^create \/etc\/systemd\/system\/app\.service; daemon-reload$/},
  {title: 'drifted unit → write, daemon-reload', have: fileOf('[Unit]\n'), args: {name: 'app.service', content: unit}, steps: [`write ${S}/app.service 0644`, 'systemctl daemon-reload'], diff: {before: '[Unit]\n', after: unit}, reason: /^update/},
  {title: 'converged → nothing, no reload', have: fileOf(unit), args: {name: 'app.service', content: unit}, steps: [], reason: /up to date/},
  {title: 'a timer is a unit', have: {kind: 'missing'}, args: {name: 'backup.timer', content: '[Timer]\nOnCalendar=daily\n'}, steps: [`mkdir -p -- ${S}`, `write ${S}/backup.timer 0644`, 'systemctl daemon-reload'], reason: /create/},
  {title: 'missing drop-in → its folder made', have: {kind: 'missing'}, args: {name: 'nginx.service', dropIn: 'limits', content: '[Service]\nLimitNOFILE=65536\n'}, steps: [`mkdir -p -- ${S}/nginx.service.d`, `write ${S}/nginx.service.d/limits.conf 0644`, 'systemctl daemon-reload'], reason: /create/},
  {title: 'absent → rm, daemon-reload', have: fileOf(unit), args: {name: 'app.service', state: 'absent'}, steps: [`rm -f -- ${S}/app.service`, 'systemctl daemon-reload'], diff: {before: unit, after: ''}, reason: /remove/},
  {title: 'absent drop-in → rm, rmdir if empty, daemon-reload', have: fileOf('x\n'), args: {name: 'nginx.service', dropIn: 'limits.conf', state: 'absent'}, steps: [`rm -f -- ${S}/nginx.service.d/limits.conf`, `rmdir --ignore-fail-on-non-empty -- ${S}/nginx.service.d`, 'systemctl daemon-reload'], reason: /remove/},
  {title: 'absent and missing → nothing', have: {kind: 'missing'}, args: {name: 'app.service', state: 'absent'}, steps: [], reason: /already absent/},
];
for (const c of cases) {
  test(`systemdUnit plan: ${c.title}`, (t) => {
    const plan = systemdUnitModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(steps(plan), c.steps);
    t.regex(plan.reason ?? '', c.reason);
    if (c.diff) t.like(plan.diff, c.diff);
  });
}

test('systemdUnit plan fails: no type, bad drop-in, no content, a folder in the way', (t) => {
  t.regex(systemdUnitModule.plan({kind: 'missing'}, {name: 'app', content: ''}).fail ?? '', /needs its type/);
  t.regex(systemdUnitModule.plan({kind: 'missing'}, {name: 'a.service', dropIn: '../x', content: ''}).fail ?? '', /bad dropIn/);
  t.regex(systemdUnitModule.plan({kind: 'missing'}, {name: 'a.service'}).fail ?? '', /needs content/);
  t.regex(systemdUnitModule.plan({kind: 'directory', mode: 0o755, owner: 'root', group: 'root'}, {name: 'a.service', content: ''}).fail ?? '', /is a directory/);
});

test('unitPath', (t) => {
  t.is(unitPath({name: 'a.service'}), '/etc/systemd/system/a.service');
  t.is(unitPath({name: 'a.service', dropIn: 'override'}), '/etc/systemd/system/a.service.d/override.conf');
  t.is(unitPath({name: 'a.timer', dir: '/run/systemd/system/'}), '/run/systemd/system/a.timer');
});

// ---- check mode through the engine, against a temp units folder (systemctl is never run: only recorded)

const checkCases: {title: string; setup: (dir: string) => void; args: Omit<SystemdUnitArgs, 'dir'>; status: 'changed' | 'ok'; msg: string; cmds: (d: string) => string[]}[] = [
  {title: 'missing → would create', setup: () => {}, args: {name: 'app.service', content: unit}, status: 'changed', msg: 'would create {d}/app.service; daemon-reload', cmds: (d) => [`mkdir -p -- ${d}`, `write ${d}/app.service`, 'systemctl daemon-reload']},
  {title: 'drifted → would update', setup: (d) => writeFileSync(join(d, 'app.service'), '[Unit]\n'), args: {name: 'app.service', content: unit}, status: 'changed', msg: 'would update {d}/app.service; daemon-reload', cmds: (d) => [`write ${d}/app.service`, 'systemctl daemon-reload']},
  {title: 'converged → ok', setup: (d) => writeFileSync(join(d, 'app.service'), unit), args: {name: 'app.service', content: unit}, status: 'ok', msg: '{d}/app.service up to date', cmds: () => []},
  {title: 'drop-in absent → would remove', setup: (d) => { mkdirSync(join(d, 'x.service.d')); writeFileSync(join(d, 'x.service.d/o.conf'), 'a\n'); }, args: {name: 'x.service', dropIn: 'o', state: 'absent'}, status: 'changed', msg: 'would remove {d}/x.service.d/o.conf; daemon-reload', cmds: (d) => [`rm -f -- ${d}/x.service.d/o.conf`, `rmdir --ignore-fail-on-non-empty -- ${d}/x.service.d`, 'systemctl daemon-reload']},
];
for (const c of checkCases) {
  test(`systemdUnit check mode: ${c.title}`, async (t) => {
    const host = fakeHost('unit', {systemctl: 'exit 99'}, {});
    const d = join(host.dir, 'units');
    mkdirSync(d);
    c.setup(d);
    await assertCheckMode(t, host, systemdUnit({...c.args, dir: d}), {status: c.status, msg: c.msg.replaceAll('{d}', d), cmds: c.cmds(d)}, {writeContent: false});
  });
}
