import test from 'ava';
import {join} from 'node:path';
import type {Plan} from '../../src/core/types.ts';
import {editSysctlFile, parseSysctl, sysctl, sysctlModule, type SysctlArgs, type SysctlState} from '../../src/modules/sysctl.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const short = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.join(' ') : s.kind === 'write' ? `write ${s.dest}: ${s.content.toString()}` : ''));
const F = '/etc/sysctl.d/99-provision.conf';
const file = (text: string): SysctlState['file'] => ({kind: 'file', text, mode: 0o644, owner: 'root', group: 'root'});

// ---- pure plans: state in, steps out

const cases: {title: string; have: SysctlState; args: SysctlArgs; steps: string[]; reason: RegExp}[] = [
  {title: 'missing everywhere → sysctl -w, then the file created', have: {running: '0', file: {kind: 'missing'}}, args: {name: 'net.ipv4.ip_forward', value: 1},
    steps: ['sysctl -w net.ipv4.ip_forward=1', `write ${F}: net.ipv4.ip_forward = 1\n`], reason: /set net.ipv4.ip_forward = 1 \(running: 0\); create .* with/},
  {title: 'drifted line → rewritten in place, others kept', have: {running: '1', file: file('# mine\nnet.ipv4.ip_forward=0\nvm.swappiness = 10\n')}, args: {name: 'net.ipv4.ip_forward', value: '1'},
    steps: [`write ${F}: # mine\nnet.ipv4.ip_forward = 1\nvm.swappiness = 10\n`], reason: /^update/},
  {title: 'drifted running value only → sysctl -w', have: {running: '60', file: file('vm.swappiness = 10\n')}, args: {name: 'vm.swappiness', value: 10},
    steps: ['sysctl -w vm.swappiness=10'], reason: /running: 60/},
  {title: 'converged (whitespace does not count) → nothing', have: {running: '4096\t87380  6291456', file: file('net.ipv4.tcp_rmem=4096 87380 6291456\n')}, args: {name: 'net.ipv4.tcp_rmem', value: '4096 87380 6291456'},
    steps: [], reason: /already .* \(running and in file\)/},
  {title: 'slash spelling in the file is the same key', have: {running: '1', file: file('net/ipv4/ip_forward = 1\n')}, args: {name: 'net.ipv4.ip_forward', value: 1},
    steps: [], reason: /already/},
  {title: 'duplicates: the first is kept, later ones removed', have: {running: '1', file: file('vm.swappiness=1\nx=2\nvm.swappiness=5\n')}, args: {name: 'vm.swappiness', value: 1},
    steps: [`write ${F}: vm.swappiness=1\nx=2\n`], reason: /update/},
  {title: 'reload false → file only, running value ignored', have: {running: '0', file: {kind: 'missing'}}, args: {name: 'net.ipv4.ip_forward', value: 1, reload: false},
    steps: [`write ${F}: net.ipv4.ip_forward = 1\n`], reason: /create/},
  {title: 'absent → line removed, running left', have: {running: '1', file: file('a = 1\nnet.ipv4.ip_forward = 1\n')}, args: {name: 'net.ipv4.ip_forward', state: 'absent'},
    steps: [`write ${F}: a = 1\n`], reason: /remove net.ipv4.ip_forward from/},
  {title: 'absent and not there → nothing', have: {running: '1', file: {kind: 'missing'}}, args: {name: 'net.ipv4.ip_forward', state: 'absent'},
    steps: [], reason: /not in/},
];

for (const c of cases) {
  test(`sysctl plan: ${c.title}`, (t) => {
    const p = sysctlModule.plan(c.have, c.args);
    t.is(p.fail, undefined);
    t.deepEqual(short(p), c.steps);
    t.regex(p.reason ?? '', c.reason);
    if (c.steps.length > 0) t.truthy(p.diff);
  });
}

test('sysctl plan fails: unknown key, no value, file not a file', (t) => {
  t.regex(sysctlModule.plan({file: {kind: 'missing'}}, {name: 'net.nope', value: 1}).fail ?? '', /unknown to the running kernel/);
  t.regex(sysctlModule.plan({running: '1', file: {kind: 'missing'}}, {name: 'vm.swappiness'}).fail ?? '', /needs value/);
  t.regex(sysctlModule.plan({running: '1', file: {kind: 'other'}}, {name: 'vm.swappiness', value: 1}).fail ?? '', /not a regular file/);
  t.regex(sysctl({name: 'vm.swappiness; reboot', value: 1}).problems().join(), /sysctl name/);
});

test('the file edit keeps comments and the existing line when only its spacing differs', (t) => {
  t.is(editSysctlFile('# c\nvm.swappiness=10\n', 'vm.swappiness', '10'), '# c\nvm.swappiness=10\n');
  t.is(editSysctlFile('', 'vm.swappiness', '10'), 'vm.swappiness = 10\n');
});

test('parse: running value and file', (t) => {
  t.deepEqual(parseSysctl(`running\n1\nfile\n600 root adm\n${Buffer.from('a=1\n').toString('base64')}\n`), {running: '1', file: {kind: 'file', text: 'a=1\n', mode: 0o600, owner: 'root', group: 'adm'}});
  t.deepEqual(parseSysctl('unknown\n\nmissing\n'), {running: undefined, file: {kind: 'missing'}});
});

// ---- check mode through the engine, on a fake host: `sysctl -n` reads $FAKE/sysctl.<name>; `sysctl -w` is only recorded

const host = (running: Record<string, string>, conf?: string) => fakeHost('sysctl', {sysctl: '[ "$1" = -n ] && cat "$FAKE/sysctl.$2" 2>/dev/null || exit 255'}, {
  ...Object.fromEntries(Object.entries(running).map(([k, v]) => [`sysctl.${k}`, `${v}\n`])),
  ...(conf === undefined ? {} : {'99-provision.conf': conf}),
});

test('sysctl check mode: missing → would set and create; a real run sends sysctl -w and the write', async (t) => {
  const h = host({'net.ipv4.ip_forward': '0'});
  const f = join(h.dir, '99-provision.conf');
  await assertCheckMode(t, h, sysctl({name: 'net.ipv4.ip_forward', value: 1, file: f}), {
    status: 'changed',
    msg: `would set net.ipv4.ip_forward = 1 (running: 0); create ${f} with net.ipv4.ip_forward = 1`,
    cmds: ['sysctl -w net.ipv4.ip_forward\\=1', `write ${f}: net.ipv4.ip_forward = 1\n`],
  });
});

test('sysctl check mode: drifted file only → would update it', async (t) => {
  const h = host({'vm.swappiness': '10'}, 'vm.swappiness = 60\n');
  const f = join(h.dir, '99-provision.conf');
  await assertCheckMode(t, h, sysctl({name: 'vm.swappiness', value: '10', file: f}), {
    status: 'changed',
    msg: `would update ${f} with vm.swappiness = 10`,
    cmds: [`write ${f}: vm.swappiness = 10\n`],
  });
});

test('sysctl check mode: converged → ok, nothing sent', async (t) => {
  const h = host({'vm.swappiness': '10'}, 'vm.swappiness=10\n');
  await assertCheckMode(t, h, sysctl({name: 'vm.swappiness', value: 10, file: join(h.dir, '99-provision.conf')}), {
    status: 'ok',
    msg: 'already vm.swappiness = 10 (running and in file)',
    cmds: [],
  });
});
