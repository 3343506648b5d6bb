import test from 'ava';
import {execFileSync} from 'node:child_process';
import {join} from 'node:path';
import type {Plan} from '../../src/core/types.ts';
import {npm, npmModule, npmProbeScript, parseNpm, parseNpmSpec, type NpmArgs, type NpmState} from '../../src/modules/npm.ts';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));
const tree = (pkgs: Record<string, string>): NpmState => ({kind: 'tree', packages: new Map(Object.entries(pkgs))});
const Q = '--no-audit --no-fund --no-update-notifier';

// ---- pure plans

const cases: {title: string; have: NpmState; args: Partial<NpmArgs>; cmds: string[]; reason?: RegExp; fail?: RegExp}[] = [
  {title: 'folder missing → mkdir, one install', have: {kind: 'nodir'}, args: {name: ['left-pad@1.3.0', '@scope/x']}, cmds: ['mkdir -p -- /srv/app', `npm install --prefix /srv/app ${Q} left-pad@1.3.0 @scope/x`], reason: /^install left-pad@1\.3\.0, @scope\/x in \/srv\/app$/},
  {title: 'missing and drifted → one install of those, with registry and extra args', have: tree({'left-pad': '1.2.0', 'is-odd': '3.0.1'}), args: {name: ['left-pad@1.3.0', 'is-odd', 'chalk@^5'], registry: 'http://r:4873/', extraArgs: ['--omit=dev']}, cmds: [`npm install --prefix /srv/app ${Q} --registry http://r:4873/ --omit=dev left-pad@1.3.0 chalk@^5`], reason: /^install left-pad 1\.2\.0 → 1\.3\.0, chalk@\^5 in \/srv\/app$/},
  {title: 'converged (a range or a file: spec: installed is enough) → nothing', have: tree({'left-pad': '1.3.0', tiny: '1.0.0'}), args: {name: ['left-pad@1.3.0', 'tiny@file:/w/tiny-1.0.0.tgz']}, cmds: [], reason: /^already left-pad@1\.3\.0, tiny@1\.0\.0$/},
  {title: 'absent, installed → one uninstall of those', have: tree({'left-pad': '1.3.0', '@scope/x': '2.0.0'}), args: {name: ['left-pad', '@scope/x@2.0.0', 'gone'], state: 'absent'}, cmds: [`npm uninstall --prefix /srv/app ${Q} left-pad @scope/x`], reason: /^uninstall left-pad@1\.3\.0, @scope\/x@2\.0\.0 from \/srv\/app$/},
  {title: 'absent at another version → nothing', have: tree({'left-pad': '1.3.0'}), args: {name: ['left-pad@1.0.0'], state: 'absent'}, cmds: [], reason: /^not installed/},
  {title: 'absent, folder missing → nothing', have: {kind: 'nodir'}, args: {name: ['left-pad'], state: 'absent'}, cmds: []},
  {title: 'global → -g', have: tree({}), args: {name: ['pm2'], path: undefined}, cmds: [`npm install -g ${Q} pm2`], reason: /in the global packages$/},
  {title: 'no npm → fails', have: {kind: 'nonpm'}, args: {name: ['x']}, cmds: [], fail: /npm is not installed/},
  {title: 'a bad name → fails', have: tree({}), args: {name: ['Not A Name']}, cmds: [], fail: /expected a package name/},
];
for (const c of cases) {
  test(`npm plan: ${c.title}`, (t) => {
    const p = npmModule.plan(c.have, {name: [], path: '/srv/app', ...c.args});
    t.deepEqual(cmds(p), c.cmds);
    if (c.fail) t.regex(p.fail ?? '', c.fail);
    else t.is(p.fail, undefined);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
    if (c.cmds.length > 0) t.truthy(p.diff);
  });
}

test('npm: specs split at the right @; npm ls JSON parses (missing entries are not installed)', (t) => {
  t.deepEqual(parseNpmSpec('@scope/x@1.2.3'), {spec: '@scope/x@1.2.3', name: '@scope/x', range: '1.2.3', exact: true});
  t.deepEqual(parseNpmSpec('@scope/x'), {spec: '@scope/x', name: '@scope/x', exact: false});
  t.deepEqual(parseNpmSpec('x@latest'), {spec: 'x@latest', name: 'x', range: 'latest', exact: false});
  t.is(typeof parseNpmSpec('x@'), 'string');
  t.deepEqual(parseNpm('ok\n{"name":"app","dependencies":{"a":{"version":"1.0.0"},"b":{"required":"^2","missing":true}}}\n'), tree({a: '1.0.0'}));
  t.deepEqual(parseNpm('ok\n{}\n\n'), tree({}));
  t.deepEqual(parseNpm('nodir\n'), {kind: 'nodir'});
  t.is(parseNpm('ok\nnot json\n').kind, 'error');
  t.notThrows(() => execFileSync('sh', ['-n', '-c', npmProbeScript({name: ['x'], path: "/it's"})]));
  t.regex(npm({name: ['x'], state: 'latest' as 'present'}).problems().join(), /state/);
});

// ---- check mode on a fake host: `npm ls` answers from $FAKE/ls.json

const fakeNpm = 'if [ "$1" = ls ]; then cat "$FAKE/ls.json"; exit 1; fi; exit 2';

test('npm check mode: folder missing → would install (and make it)', async (t) => {
  const h = fakeHost('npm', {npm: fakeNpm}, {});
  const path = join(h.dir, 'app');
  await assertCheckMode(t, h, npm({name: ['tiny@1.0.0'], path}), {status: 'changed', msg: `would install tiny@1.0.0 in ${path}`, cmds: [`mkdir -p -- ${path}`, `npm install --prefix ${path} ${Q} tiny\\@1.0.0`]});
});

test('npm check mode: drifted → would install the version; converged → ok', async (t) => {
  const ls = JSON.stringify({name: 'app', dependencies: {tiny: {version: '1.0.0'}}});
  const h = fakeHost('npm', {npm: fakeNpm}, {'ls.json': ls});
  await assertCheckMode(t, h, npm({name: ['tiny@2.0.0'], path: h.dir}), {status: 'changed', msg: `would install tiny 1.0.0 → 2.0.0 in ${h.dir}`, cmds: [`npm install --prefix ${h.dir} ${Q} tiny\\@2.0.0`]});
  const h2 = fakeHost('npm', {npm: fakeNpm}, {'ls.json': ls});
  await assertCheckMode(t, h2, npm({name: ['tiny'], path: h2.dir}), {status: 'ok', msg: 'already tiny@1.0.0', cmds: []});
});

test('npm check mode: absent → would uninstall', async (t) => {
  const h = fakeHost('npm', {npm: fakeNpm}, {'ls.json': JSON.stringify({dependencies: {tiny: {version: '1.0.0'}}})});
  await assertCheckMode(t, h, npm({name: ['tiny'], path: h.dir, state: 'absent'}), {status: 'changed', msg: `would uninstall tiny@1.0.0 from ${h.dir}`, cmds: [`npm uninstall --prefix ${h.dir} ${Q} tiny`]});
});
