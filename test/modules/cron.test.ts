import test from 'ava';
import {execFileSync} from 'node:child_process';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';
import type {Plan} from '../../src/core/types.ts';
import {cron, cronModule, cronProbeScript, editCrontab, parseCrontab, type CronArgs, type CrontabState} from '../../src/modules/cron.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));
const stdin = (p: Plan): string => {
  const s = p.steps[0];
  return s?.kind === 'exec' && s.stdin instanceof Buffer ? s.stdin.toString() : '';
};
const tab = (text: string): CrontabState => ({kind: 'crontab', text});
const backup: CronArgs = {name: 'backup', user: 'alice', minute: '30', hour: '2', job: '/usr/local/bin/backup'};

// ---- pure plans: crontab in, steps and new crontab out

const cases: {title: string; have: CrontabState; args: CronArgs; cmds: string[]; after?: string; reason: RegExp}[] = [
  {title: 'no crontab → create with the marker', have: tab(''), args: backup, cmds: ['crontab -u alice -'], after: '#provision: backup\n30 2 * * * /usr/local/bin/backup\n', reason: /^add entry 'backup'$/},
  {title: 'other entries are kept, the new one appended', have: tab('MAILTO=ops\n0 * * * * date\n'), args: backup, cmds: ['crontab -u alice -'], after: 'MAILTO=ops\n0 * * * * date\n#provision: backup\n30 2 * * * /usr/local/bin/backup\n', reason: /add/},
  {title: 'drifted schedule → the entry is replaced in place', have: tab('#provision: backup\n0 3 * * * /usr/local/bin/backup\n0 * * * * date\n'), args: backup, cmds: ['crontab -u alice -'], after: '#provision: backup\n30 2 * * * /usr/local/bin/backup\n0 * * * * date\n', reason: /^update entry 'backup'$/},
  {title: 'converged → nothing', have: tab('0 * * * * date\n#provision: backup\n30 2 * * * /usr/local/bin/backup\n'), args: backup, cmds: [], reason: /^already 30 2 \* \* \* \/usr\/local\/bin\/backup$/},
  {title: 'absent → marker and entry removed', have: tab('#provision: backup\n30 2 * * * /usr/local/bin/backup\n0 * * * * date\n'), args: {name: 'backup', user: 'alice', state: 'absent'}, cmds: ['crontab -u alice -'], after: '0 * * * * date\n', reason: /remove entry/},
  {title: 'absent and not there → nothing', have: tab('0 * * * * date\n'), args: {name: 'backup', state: 'absent'}, cmds: [], reason: /no entry 'backup'/},
  {title: 'a duplicate entry left by hand is removed', have: tab('#provision: backup\n1 1 * * * x\n#provision: backup\n2 2 * * * y\n'), args: backup, cmds: ['crontab -u alice -'], after: '#provision: backup\n30 2 * * * /usr/local/bin/backup\n', reason: /update/},
  {title: 'no user → the current user\'s crontab', have: tab(''), args: {name: 'x', job: 'true', minute: '*/5'}, cmds: ['crontab -'], after: '#provision: x\n*/5 * * * * true\n', reason: /add/},
];

for (const c of cases) {
  test(`cron plan: ${c.title}`, (t) => {
    const plan = cronModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(cmds(plan), c.cmds);
    t.regex(plan.reason ?? '', c.reason);
    if (c.after !== undefined) {
      t.is(stdin(plan), c.after);
      t.deepEqual(plan.diff, {path: c.args.user ? `crontab of ${c.args.user}` : 'crontab', before: c.have.kind === 'crontab' ? c.have.text : '', after: c.after});
      t.is(editCrontab(c.after, c.args), c.after, 'idempotent');
    } else t.is(plan.diff, undefined);
  });
}

const failures: {title: string; have: CrontabState; args: CronArgs; fail: RegExp}[] = [
  {title: 'present without job', have: tab(''), args: {name: 'x'}, fail: /needs job/},
  {title: 'a job on two lines', have: tab(''), args: {name: 'x', job: 'a\nb'}, fail: /one line/},
  {title: 'a name on two lines', have: tab(''), args: {name: 'x\ny', job: 'a'}, fail: /name must be one/},
  {title: 'a bad field', have: tab(''), args: {name: 'x', job: 'a', hour: '2; rm'}, fail: /hour: '2; rm' is not a cron field/},
  {title: 'crontab not usable', have: {kind: 'unavailable', message: 'sh: crontab: not found'}, args: backup, fail: /cannot read the crontab of alice: sh: crontab: not found/},
];
for (const c of failures) {
  test(`cron plan fails: ${c.title}`, (t) => {
    const plan = cronModule.plan(c.have, c.args);
    t.deepEqual(plan.steps, []);
    t.regex(plan.fail ?? '', c.fail);
  });
}

// ---- parser

test('cron parser: a crontab, none yet, and errors', (t) => {
  t.deepEqual(parseCrontab('ok\n0 * * * * date\n'), tab('0 * * * * date\n'));
  t.deepEqual(parseCrontab('ok\n\n'), tab(''));
  t.deepEqual(parseCrontab('err\nno crontab for alice\n'), tab(''));
  t.deepEqual(parseCrontab('err\nsh: 1: crontab: not found\n'), {kind: 'unavailable', message: 'sh: 1: crontab: not found'});
  t.like(parseCrontab(''), {kind: 'unavailable'});
});

test('cron probe script is valid sh', (t) => {
  t.notThrows(() => execFileSync('sh', ['-n', '-c', cronProbeScript('alice')]));
  t.notThrows(() => execFileSync('sh', ['-n', '-c', cronProbeScript(undefined)]));
});

// ---- check mode through the engine: a fake `crontab` reads $FAKE/crontab-<user>

const fakeCronHost = (files: Record<string, string>) => fakeHost('cron', {
  crontab: 'u=$(id -un); [ "$1" = -u ] && { u=$2; shift 2; }\n[ "$1" = -l ] || exit 9\nif [ -f "$FAKE/crontab-$u" ]; then cat "$FAKE/crontab-$u"; else echo "no crontab for $u" >&2; exit 1; fi',
}, files);

const checkCases = [
  {title: 'no crontab → would add', files: {}, args: backup, status: 'changed', msg: "would add entry 'backup'", cmds: ['crontab -u alice -']},
  {title: 'drifted → would update', files: {'crontab-alice': '#provision: backup\n0 3 * * * /usr/local/bin/backup\n'}, args: backup, status: 'changed', msg: "would update entry 'backup'", cmds: ['crontab -u alice -']},
  {title: 'converged → ok', files: {'crontab-alice': '#provision: backup\n30 2 * * * /usr/local/bin/backup\n'}, args: backup, status: 'ok', msg: 'already 30 2 * * * /usr/local/bin/backup', cmds: []},
  {title: 'absent → would remove', files: {'crontab-alice': '#provision: backup\n30 2 * * * /usr/local/bin/backup\n'}, args: {name: 'backup', user: 'alice', state: 'absent'} as CronArgs, status: 'changed', msg: "would remove entry 'backup'", cmds: ['crontab -u alice -']},
] as const;

for (const c of checkCases) {
  test(`cron check mode: ${c.title}`, (t) => assertCheckMode(t, fakeCronHost(c.files), cron(c.args), c));
}
