import test from 'ava';
import {createHash} from 'node:crypto';
import type {Plan} from '../../src/core/types.ts';
import {Secret, secret} from '../../src/core/secret.ts';
import {debconf, debconfModule, parseDebconfShow, parsePasswordProbe, type DebconfArgs, type DebconfState} from '../../src/modules/debconf.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const steps = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? `${s.cmd.argv.map(String).join(' ')} < ${s.stdin instanceof Secret ? '***' : s.stdin?.toString() ?? ''}` : ''));
const hash = (s: string): string => createHash('sha256').update(s).digest('hex');
const show = '* tzdata/Areas: Europe\n* tzdata/Zones/Europe: Berlin\n  tzdata/Zones/Etc: UTC\n  tzdata/Zones/Asia:\n';
const area: DebconfArgs = {name: 'tzdata', question: 'tzdata/Areas', vtype: 'select', value: 'Europe'};
const pw: DebconfArgs = {name: 'mysql-server', question: 'mysql-server/root_password', vtype: 'password', value: secret('s3cr3t')};

test('parseDebconfShow: seen or not, empty answers, unknown questions', (t) => {
  t.deepEqual(parseDebconfShow(show, 'tzdata/Areas'), {kind: 'value', value: 'Europe'});
  t.deepEqual(parseDebconfShow(show, 'tzdata/Zones/Etc'), {kind: 'value', value: 'UTC'});
  t.deepEqual(parseDebconfShow(show, 'tzdata/Zones/Asia'), {kind: 'value', value: ''});
  t.deepEqual(parseDebconfShow(show, 'tzdata/Zones/US'), {kind: 'missing'});
  t.deepEqual(parseDebconfShow('', 'tzdata/Areas'), {kind: 'missing'});
  t.deepEqual(parsePasswordProbe(`password ${hash('x')}\n`), {kind: 'password', sha256: hash('x')});
  t.deepEqual(parsePasswordProbe('missing\n'), {kind: 'missing'});
  t.deepEqual(parsePasswordProbe('unknown\n'), {kind: 'unknown'});
});

const cases: {title: string; have: DebconfState; args: DebconfArgs; steps: string[]; diff?: {before: string; after: string}; reason: RegExp}[] = [
  {title: 'missing → set', have: {kind: 'missing'}, args: area, steps: ['debconf-set-selections < tzdata tzdata/Areas select Europe\n'], diff: {before: '', after: 'tzdata/Areas: Europe\n'}, reason: /^set tzdata\/Areas to 'Europe'$/},
  {title: 'drifted → set', have: {kind: 'value', value: 'Asia'}, args: area, steps: ['debconf-set-selections < tzdata tzdata/Areas select Europe\n'], diff: {before: 'tzdata/Areas: Asia\n', after: 'tzdata/Areas: Europe\n'}, reason: /^change tzdata\/Areas from 'Asia' to 'Europe'$/},
  {title: 'converged → nothing', have: {kind: 'value', value: 'Europe'}, args: area, steps: [], reason: /already 'Europe'/},
  {title: 'boolean: true is "yes"', have: {kind: 'value', value: 'true'}, args: {name: 'x', question: 'x/ok', vtype: 'boolean', value: 'yes'}, steps: [], reason: /already 'true'/},
  {title: 'multiselect compared as a set', have: {kind: 'value', value: 'b, a'}, args: {name: 'x', question: 'x/m', vtype: 'multiselect', value: ['a', 'b']}, steps: [], reason: /already/},
  {title: 'multiselect drifted → sorted line', have: {kind: 'value', value: 'a'}, args: {name: 'x', question: 'x/m', vtype: 'multiselect', value: 'b, a'}, steps: ['debconf-set-selections < x x/m multiselect a, b\n'], diff: {before: 'x/m: a\n', after: 'x/m: a, b\n'}, reason: /change/},
  {title: 'password missing → set, stdin a secret, no diff', have: {kind: 'missing'}, args: pw, steps: ['debconf-set-selections < ***'], reason: /^set mysql-server\/root_password \(value hidden\)$/},
  {title: 'password drifted → set', have: {kind: 'password', sha256: hash('old')}, args: pw, steps: ['debconf-set-selections < ***'], reason: /value hidden/},
  {title: 'password converged → nothing', have: {kind: 'password', sha256: hash('s3cr3t')}, args: pw, steps: [], reason: /already set/},
  {title: 'password unreadable → set, and says why', have: {kind: 'unknown'}, args: pw, steps: ['debconf-set-selections < ***'], reason: /debconf-utils/},
];
for (const c of cases) {
  test(`debconf plan: ${c.title}`, (t) => {
    const plan = debconfModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(steps(plan), c.steps);
    t.regex(plan.reason ?? '', c.reason);
    if (c.diff) t.like(plan.diff, c.diff);
    else t.is(plan.diff, undefined);
  });
}

test('debconf: a password is sent on stdin only, and is a secret of the task', (t) => {
  const plan = debconfModule.plan({kind: 'missing'}, {...pw, value: 's3cr3t'});
  const step = plan.steps[0];
  t.true(step?.kind === 'exec' && step.stdin instanceof Secret && step.stdin.reveal() === 'mysql-server mysql-server/root_password password s3cr3t\n');
  t.false(JSON.stringify(plan).includes('s3cr3t'));
  t.deepEqual(debconfModule.secrets!({...pw, value: 's3cr3t'}), ['s3cr3t']);
  t.deepEqual(debconfModule.secrets!(area), []);
  t.false(debconfModule.probe!(pw).script.includes('s3cr3t'));
});

test('debconf plan fails: bad names, newline, non-boolean', (t) => {
  t.regex(debconfModule.plan({kind: 'missing'}, {...area, name: '-x'}).fail ?? '', /bad package/);
  t.regex(debconfModule.plan({kind: 'missing'}, {...area, question: 'a b'}).fail ?? '', /bad question/);
  t.regex(debconfModule.plan({kind: 'missing'}, {...area, value: 'a\nb'}).fail ?? '', /newline/);
  t.regex(debconfModule.plan({kind: 'missing'}, {name: 'x', question: 'x/y', vtype: 'boolean', value: 'maybe'}).fail ?? '', /true or false/);
});

// ---- check mode through the engine: debconf-show and debconf-get-selections are scripts reading $FAKE

const tools = {
  'debconf-show': '[ "$1" = tzdata ] && cat "$FAKE/show"; exit 0',
  'debconf-get-selections': 'cat "$FAKE/sel"',
  'debconf-set-selections': 'exit 99',
};
const sel = (v: string): string => `tzdata\ttzdata/Areas\tselect\tEurope\nmysql-server\tmysql-server/root_password\tpassword\t${v}\n`;
const checkCases: {title: string; show: string; sel: string; args: DebconfArgs; status: 'changed' | 'ok'; msg: string}[] = [
  {title: 'missing → would set', show: '', sel: '', args: area, status: 'changed', msg: "would set tzdata/Areas to 'Europe'"},
  {title: 'drifted → would change', show: '* tzdata/Areas: Asia\n', sel: '', args: area, status: 'changed', msg: "would change tzdata/Areas from 'Asia' to 'Europe'"},
  {title: 'converged → ok', show, sel: '', args: area, status: 'ok', msg: "tzdata/Areas already 'Europe'"},
  {title: 'password drifted → would set, hidden', show: '', sel: sel('old'), args: pw, status: 'changed', msg: 'would set mysql-server/root_password (value hidden)'},
  {title: 'password converged → ok', show: '', sel: sel('s3cr3t'), args: pw, status: 'ok', msg: 'mysql-server/root_password already set (password)'},
  {title: 'password with a tab converged → ok', show: '', sel: sel('a\tb'), args: {...pw, value: secret('a\tb')}, status: 'ok', msg: 'mysql-server/root_password already set (password)'},
];
for (const c of checkCases) {
  test(`debconf check mode: ${c.title}`, async (t) => {
    const host = fakeHost('debconf', tools, {show: c.show, sel: c.sel});
    await assertCheckMode(t, host, debconf(c.args), {status: c.status, msg: c.msg, cmds: c.status === 'ok' ? [] : ['debconf-set-selections']});
  });
}
