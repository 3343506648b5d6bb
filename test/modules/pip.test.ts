import test from 'ava';
import {execFileSync} from 'node:child_process';
import {chmodSync, mkdirSync} from 'node:fs';
import {writeFileSync} from 'node:fs';
import {join} from 'node:path';
import type {Plan} from '../../src/core/types.ts';
import {normalizeName, parsePip, parseRequirement, pip, pipModule, pipProbeScript, sameVersion, type PipArgs, type PipState} from '../../src/modules/pip.ts';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));
const venv = (pkgs: Record<string, string>): PipState => ({kind: 'venv', packages: new Map(Object.entries(pkgs))});
const PY = '/opt/venv/bin/python -m pip';
const INSTALL = `${PY} install --disable-pip-version-check --no-input`;
const UNINSTALL = `${PY} uninstall -y --disable-pip-version-check --no-input`;

// ---- pure plans

const cases: {title: string; have: PipState; args: Partial<PipArgs>; cmds: string[]; reason?: RegExp; fail?: RegExp}[] = [
  {title: 'no virtualenv → create it, install everything in one call', have: {kind: 'novenv'}, args: {name: ['requests', 'flask==3.0.3']}, cmds: ['python3 -m venv /opt/venv', `${INSTALL} requests flask==3.0.3`], reason: /^create virtualenv \/opt\/venv; install requests, flask==3\.0\.3$/},
  {title: 'missing and drifted → one install of those only', have: venv({requests: '2.31.0', flask: '2.0.0'}), args: {name: ['requests', 'flask==3.0.3', 'click'], extraArgs: ['--no-index', '--find-links', '/w']}, cmds: [`${INSTALL} --no-index --find-links /w flask==3.0.3 click`], reason: /^install flask 2\.0\.0 → 3\.0\.3, click in \/opt\/venv$/},
  {title: 'converged (PEP 503 names, 1.0 is 1.0.0) → nothing', have: venv({'zope-interface': '6.0', requests: '2.31.0'}), args: {name: ['Zope.Interface==6.0.0', 'requests']}, cmds: [], reason: /^already Zope\.Interface==6\.0, requests==2\.31\.0$/},
  {title: 'absent, installed → one uninstall', have: venv({requests: '2.31.0', 'foo-bar': '1.0'}), args: {name: ['requests', 'Foo_Bar', 'gone'], state: 'absent'}, cmds: [`${UNINSTALL} requests Foo_Bar`], reason: /^uninstall requests==2\.31\.0, Foo_Bar==1\.0 from \/opt\/venv$/},
  {title: 'absent at another version → nothing', have: venv({requests: '2.31.0'}), args: {name: ['requests==1.0'], state: 'absent'}, cmds: [], reason: /^not installed: requests==1\.0$/},
  {title: 'absent, no virtualenv → nothing (none is made)', have: {kind: 'novenv'}, args: {name: ['requests'], state: 'absent'}, cmds: [], reason: /no virtualenv/},
  {title: 'another interpreter makes the venv', have: {kind: 'novenv'}, args: {name: ['x'], virtualenvPython: '/usr/bin/python3.12'}, cmds: ['/usr/bin/python3.12 -m venv /opt/venv', `${INSTALL} x`]},
  {title: 'a range → fails, naming it', have: venv({}), args: {name: ['requests>=2']}, cmds: [], fail: /'requests>=2': expected a name or name==version/},
  {title: 'pip cannot list → fails', have: {kind: 'error', message: 'No module named pip'}, args: {name: ['x']}, cmds: [], fail: /cannot list the packages of \/opt\/venv: No module named pip/},
  {title: 'relative virtualenv → fails', have: {kind: 'novenv'}, args: {name: ['x'], virtualenv: 'venv'}, cmds: [], fail: /absolute path/},
];
for (const c of cases) {
  test(`pip plan: ${c.title}`, (t) => {
    const p = pipModule.plan(c.have, {name: [], virtualenv: '/opt/venv', ...c.args});
    t.deepEqual(cmds(p), c.cmds);
    if (c.fail) t.regex(p.fail ?? '', c.fail);
    else t.is(p.fail, undefined);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
    if (c.cmds.length > 0) t.truthy(p.diff);
  });
}

test('pip: names as PEP 503, versions, requirements; the probe parses', (t) => {
  t.is(normalizeName('Foo__Bar.baz-Qux'), 'foo-bar-baz-qux');
  t.true(sameVersion('1.0', '1.0.0'));
  t.true(sameVersion('2.0.0rc1', '2.0rc1'));
  t.false(sameVersion('1.0', '1.0.1'));
  t.deepEqual(parseRequirement(' Flask == 3.0 '), {spec: 'Flask==3.0', name: 'Flask', key: 'flask', version: '3.0'});
  t.is(typeof parseRequirement('pkg[extra]'), 'string');
  t.is(typeof parseRequirement('-e .'), 'string');
  t.deepEqual(parsePip('ok\n[{"name": "Foo_Bar", "version": "1.0"}]\n'), {kind: 'venv', packages: new Map([['foo-bar', '1.0']])});
  t.deepEqual(parsePip('novenv\n'), {kind: 'novenv'});
  t.deepEqual(parsePip('err\n/opt/v/bin/python: No module named pip\n'), {kind: 'error', message: '/opt/v/bin/python: No module named pip'});
  t.notThrows(() => execFileSync('sh', ['-n', '-c', pipProbeScript({name: ['x'], virtualenv: "/it's"})]));
  t.regex(pip({name: [], virtualenv: '/v'}).problems().join(), /name/);
  t.regex(pip({name: ['x'], virtualenv: '/v', state: 'latest' as 'present'}).problems().join(), /state: expected one of 'present', 'absent'/);
});

// ---- check mode on a fake host: <dir>/venv/bin/python answers `-m pip list` from $FAKE/pip.json

function host(pkgs: Record<string, string> | undefined): {handler: ReturnType<typeof fakeHost>['handler']; dir: string; venv: string} {
  const h = fakeHost('pip', {}, pkgs === undefined ? {} : {'pip.json': JSON.stringify(Object.entries(pkgs).map(([name, version]) => ({name, version})))});
  const v = join(h.dir, 'venv');
  if (pkgs !== undefined) {
    mkdirSync(join(v, 'bin'), {recursive: true});
    writeFileSync(join(v, 'bin', 'python'), '#!/bin/sh\n[ "$1 $2 $3" = "-m pip list" ] && exec cat "$FAKE/pip.json"\nexit 2\n');
    chmodSync(join(v, 'bin', 'python'), 0o755);
  }
  return {...h, venv: v};
}

test('pip check mode: no virtualenv → would create it and install', async (t) => {
  const h = host(undefined);
  await assertCheckMode(t, h, pip({name: ['tiny==1.0'], virtualenv: h.venv}), {status: 'changed', msg: `would create virtualenv ${h.venv}; install tiny==1.0`, cmds: [`python3 -m venv ${h.venv}`, `${h.venv}/bin/python -m pip install --disable-pip-version-check --no-input tiny\\=\\=1.0`]});
});

test('pip check mode: drifted version → would install the pinned one', async (t) => {
  const h = host({tiny: '1.0', pip: '23.0'});
  await assertCheckMode(t, h, pip({name: ['Tiny==2.0'], virtualenv: h.venv}), {status: 'changed', msg: `would install Tiny 1.0 → 2.0 in ${h.venv}`, cmds: [`${h.venv}/bin/python -m pip install --disable-pip-version-check --no-input Tiny\\=\\=2.0`]});
});

test('pip check mode: converged → ok; absent → would uninstall', async (t) => {
  const h = host({tiny: '1.0'});
  await assertCheckMode(t, h, pip({name: ['tiny'], virtualenv: h.venv}), {status: 'ok', msg: 'already tiny==1.0', cmds: []});
  const h2 = host({tiny: '1.0'});
  await assertCheckMode(t, h2, pip({name: ['tiny'], virtualenv: h2.venv, state: 'absent'}), {status: 'changed', msg: `would uninstall tiny==1.0 from ${h2.venv}`, cmds: [`${h2.venv}/bin/python -m pip uninstall -y --disable-pip-version-check --no-input tiny`]});
});
