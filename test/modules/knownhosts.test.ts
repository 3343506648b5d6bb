import test from 'ava';
import {execFileSync} from 'node:child_process';
import type {Plan} from '../../src/core/types.ts';
import {editKnownHosts, knownHosts, knownHostsModule, knownHostsProbeScript, parseKnownHosts, type KnownHostsArgs, type KnownHostsState} from '../../src/modules/knownhosts.ts';
import {fakeHost, assertCheckMode} from '../helpers/fakehost.ts';

const steps = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind === 'write' ? `write ${s.dest} ${s.mode}` : ''));
const written = (p: Plan): string | undefined => {
  const w = p.steps.find((s) => s.kind === 'write');
  return w?.kind === 'write' ? w.content.toString() : undefined;
};
const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const ED2 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBBnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const RSA = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7';
const P = '/root/.ssh/known_hosts';
const st = (content: string | undefined, dir = true): KnownHostsState => ({path: P, dir, file: content === undefined ? {kind: 'missing'} : {kind: 'file', mode: 0o600, content}});

const cases: {title: string; have: KnownHostsState; args: KnownHostsArgs; steps: string[]; after?: string; reason: RegExp}[] = [
  {title: 'no file, no .ssh → mkdir + write 0644', have: st(undefined, false), args: {name: 'github.com', key: `github.com ${ED}`}, steps: ['mkdir -p -m 0700 -- /root/.ssh', `write ${P} 0644`], after: `github.com ${ED}\n`, reason: /add the ssh-ed25519 key of github.com/},
  {title: 'a bare key gets the name', have: st(''), args: {name: '[git.example.com]:2222', key: ED}, steps: [`write ${P} 0600`], after: `[git.example.com]:2222 ${ED}\n`, reason: /add/},
  {title: 'other hosts and hashed lines kept, the entry appended (mode kept)', have: st(`|1|abc=|def= ${ED}\nother ${RSA}\n`), args: {name: 'github.com', key: ED}, steps: [`write ${P} 0600`], after: `|1|abc=|def= ${ED}\nother ${RSA}\ngithub.com ${ED}\n`, reason: /add/},
  {title: 'drifted key of the same type → replaced; other types kept', have: st(`github.com ${ED2}\ngithub.com ${RSA}\n`), args: {name: 'github.com', key: ED}, steps: [`write ${P} 0600`], after: `github.com ${RSA}\ngithub.com ${ED}\n`, reason: /replace the ssh-ed25519 key of github.com/},
  {title: 'drifted key on a line of several hosts → only the name goes', have: st(`a,github.com ${ED2}\n`), args: {name: 'github.com', key: ED}, steps: [`write ${P} 0600`], after: `a ${ED2}\ngithub.com ${ED}\n`, reason: /replace/},
  {title: 'converged (on a line naming more hosts) → nothing', have: st(`github.com,140.82.121.4 ${ED}\n`), args: {name: 'github.com', key: ED}, steps: [], reason: /already has this ssh-ed25519 key/},
  {title: 'absent → every entry of the host removed', have: st(`github.com ${ED}\ngithub.com ${RSA}\nx,github.com ${ED2}\nother ${RSA}\n`), args: {name: 'github.com', state: 'absent'}, steps: [`write ${P} 0600`], after: `x ${ED2}\nother ${RSA}\n`, reason: /remove github.com/},
  {title: 'absent, no file → nothing', have: st(undefined), args: {name: 'github.com', state: 'absent'}, steps: [], reason: /no entry/},
];

for (const c of cases) {
  test(`knownHosts plan: ${c.title}`, (t) => {
    const plan = knownHostsModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(steps(plan), c.steps);
    t.regex(plan.reason ?? '', c.reason);
    t.is(written(plan), c.after);
    if (c.after !== undefined) {
      t.deepEqual(plan.diff, {path: P, before: c.have.file.kind === 'file' ? c.have.file.content : '', after: c.after});
      t.is(knownHostsModule.plan({...c.have, file: {kind: 'file', mode: 0o644, content: c.after}}, c.args).steps.length, 0, 'idempotent');
    }
  });
}

test('knownHosts plan fails: no key, bad key, key of another host, bad name, relative path', (t) => {
  t.regex(knownHostsModule.plan(st(''), {name: 'a'}).fail ?? '', /needs key/);
  t.regex(knownHostsModule.plan(st(''), {name: 'a', key: 'hello'}).fail ?? '', /not a host key/);
  t.regex(knownHostsModule.plan(st(''), {name: 'a', key: `b ${ED}`}).fail ?? '', /names b, not a/);
  t.regex(knownHostsModule.plan(st(''), {name: 'a b', key: ED}).fail ?? '', /bad host name/);
  t.regex(knownHostsModule.plan(st(''), {name: 'a', key: ED, path: 'kh'}).fail ?? '', /absolute or start with ~\//);
});

test('editKnownHosts leaves marker lines and comments alone', (t) => {
  const text = `# note\n@cert-authority *.example.com ${ED2}\n`;
  t.is(editKnownHosts(text, 'github.com', undefined), text);
});

test('the probe resolves ~ with HOME and reads the file', (t) => {
  const host = fakeHost('kh-probe', {}, {});
  execFileSync('sh', ['-c', `mkdir -p ${host.dir}/.ssh && printf 'x %s\\n' '${ED}' > ${host.dir}/.ssh/known_hosts && chmod 600 ${host.dir}/.ssh/known_hosts`]);
  const out = execFileSync('sh', ['-c', knownHostsProbeScript('~/.ssh/known_hosts')], {encoding: 'utf8', env: {...process.env, HOME: host.dir}});
  t.deepEqual(parseKnownHosts(out), {path: `${host.dir}/.ssh/known_hosts`, dir: true, file: {kind: 'file', mode: 0o600, content: `x ${ED}\n`}});
  t.deepEqual(parseKnownHosts(execFileSync('sh', ['-c', knownHostsProbeScript(`${host.dir}/nope/kh`)], {encoding: 'utf8'})), {path: `${host.dir}/nope/kh`, dir: false, file: {kind: 'missing'}});
});

// ---- check mode through the engine, against a file of a temp folder

const checkCases: {title: string; files: Record<string, string>; args: Omit<KnownHostsArgs, 'path'>; status: 'changed' | 'ok'; msg: string; cmds: (p: string) => string[]}[] = [
  {title: 'missing → would add', files: {}, args: {name: 'github.com', key: ED}, status: 'changed', msg: 'would add the ssh-ed25519 key of github.com', cmds: (p) => [`write ${p}`]},
  {title: 'drifted → would replace', files: {kh: `github.com ${ED2}\n`}, args: {name: 'github.com', key: ED}, status: 'changed', msg: 'would replace the ssh-ed25519 key of github.com', cmds: (p) => [`write ${p}`]},
  {title: 'converged → ok', files: {kh: `github.com ${ED}\n`}, args: {name: 'github.com', key: ED}, status: 'ok', msg: 'github.com already has this ssh-ed25519 key', cmds: () => []},
  {title: 'absent → would remove', files: {kh: `github.com ${ED}\n`}, args: {name: 'github.com', state: 'absent'}, status: 'changed', msg: 'would remove github.com', cmds: (p) => [`write ${p}`]},
];
for (const c of checkCases) {
  test(`knownHosts check mode: ${c.title}`, async (t) => {
    const host = fakeHost('kh', {}, c.files);
    const path = `${host.dir}/kh`;
    await assertCheckMode(t, host, knownHosts({...c.args, path}), {status: c.status, msg: c.msg, cmds: c.cmds(path)}, {writeContent: false});
  });
}
