import test from 'ava';
import {execFileSync} from 'node:child_process';
import {mkdirSync, writeFileSync, chmodSync, rmSync} from 'node:fs';
import {userInfo} from 'node:os';
import {join} from 'node:path';
import {fakeHost, isProbeBatch} from '../helpers/fakehost.ts';
import {runFake} from '../helpers/engine.ts';
import {definePlaybook} from '../../src/core/task.ts';
import {q} from '../../src/core/cmd.ts';
import type {Plan} from '../../src/core/types.ts';
import {authorizedKey, authorizedKeyModule, authorizedKeyProbeScript, editAuthorizedKeys, keyIdentity, parseAuthorizedKeys, type AuthorizedKeyArgs, type AuthorizedKeysState} from '../../src/modules/authorizedkey.ts';

const steps = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : `write ${s.kind === 'write' ? `${s.dest} ${s.mode} ${s.owner}:${s.group}` : ''}`));
const written = (p: Plan): string | undefined => {
  const w = p.steps.find((s) => s.kind === 'write');
  return w?.kind === 'write' ? w.content.toString() : undefined;
};

const ED = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const RSA = 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7';
const key = `${ED} alice@laptop`;
const F = '/home/alice/.ssh/authorized_keys';
const ok700 = {kind: 'present', mode: 0o700, owner: 'alice', gid: 1000} as const;
const user = (dir: Extract<AuthorizedKeysState, {kind: 'user'}>['dir'], file: Extract<AuthorizedKeysState, {kind: 'user'}>['file']): AuthorizedKeysState => ({kind: 'user', home: '/home/alice', uid: 1000, gid: 1000, dir, file});
const file = (content: string, mode = 0o600, owner = 'alice') => ({kind: 'present', mode, owner, gid: 1000, content}) as const;

const cases: {title: string; have: AuthorizedKeysState; args: AuthorizedKeyArgs; steps: string[]; after?: string; reason: RegExp}[] = [
  {title: 'no .ssh → mkdir 0700, chown, write 0600', have: user({kind: 'missing'}, {kind: 'missing'}), args: {user: 'alice', key}, steps: ['mkdir -m 0700 -- /home/alice/.ssh', 'chown alice:1000 -- /home/alice/.ssh', `write ${F} 0600 alice:1000`], after: `${key}\n`, reason: /create \/home\/alice\/\.ssh; create/},
  {title: 'other keys kept, the key appended', have: user(ok700, file(`# mine\n${RSA} bob\n`)), args: {user: 'alice', key}, steps: [`write ${F} 0600 alice:1000`], after: `# mine\n${RSA} bob\n${key}\n`, reason: /^add 1 key$/},
  {title: 'same key, other comment and options → line rewritten in place', have: user(ok700, file(`from="10.0.0.1" ${ED} old\n${RSA} bob\n`)), args: {user: 'alice', key}, steps: [`write ${F} 0600 alice:1000`], after: `${key}\n${RSA} bob\n`, reason: /rewrite key line/},
  {title: 'converged → nothing', have: user(ok700, file(`${RSA} bob\n${key}\n`)), args: {user: 'alice', key}, steps: [], reason: /^key already present$/},
  {title: 'drifted modes → chmod only', have: user({...ok700, mode: 0o755}, file(`${key}\n`, 0o644)), args: {user: 'alice', key}, steps: ['chmod 0700 -- /home/alice/.ssh', `chmod 0600 -- ${F}`], reason: /mode 0755 → 0700.*mode 0644 → 0600/},
  {title: 'exclusive → other keys removed, comments kept', have: user(ok700, file(`# mine\n${RSA} bob\n${key}\n`)), args: {user: 'alice', key, exclusive: true}, steps: [`write ${F} 0600 alice:1000`], after: `# mine\n${key}\n`, reason: /remove 1 key/},
  {title: 'absent → the key removed (by type and blob)', have: user(ok700, file(`${ED} other-comment\n${RSA} bob\n`)), args: {user: 'alice', key, state: 'absent'}, steps: [`write ${F} 0600 alice:1000`], after: `${RSA} bob\n`, reason: /remove 1 key/},
  {title: 'absent, no file → nothing', have: user({kind: 'missing'}, {kind: 'missing'}), args: {user: 'alice', key, state: 'absent'}, steps: [], reason: /does not exist/},
  {title: 'path override', have: user({...ok700, owner: 'root', gid: 0, mode: 0o755}, {kind: 'missing'}), args: {user: 'alice', key, path: '/etc/ssh/keys/alice'}, steps: ['chown alice:1000 -- /etc/ssh/keys', 'chmod 0700 -- /etc/ssh/keys', 'write /etc/ssh/keys/alice 0600 alice:1000'], after: `${key}\n`, reason: /create \/etc\/ssh\/keys\/alice/},
];

for (const c of cases) {
  test(`authorizedKey plan: ${c.title}`, (t) => {
    const plan = authorizedKeyModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(steps(plan), c.steps);
    t.regex(plan.reason ?? '', c.reason);
    t.is(written(plan), c.after);
    if (c.after !== undefined) {
      t.is(plan.diff?.after, c.after);
      t.is(editAuthorizedKeys(c.after, c.args), c.after, 'idempotent');
    }
  });
}

test('authorizedKey plan fails: no user, not a key, relative path', (t) => {
  t.regex(authorizedKeyModule.plan({kind: 'nouser'}, {user: 'zed', key}).fail ?? '', /no user 'zed'/);
  t.regex(authorizedKeyModule.plan(user(ok700, {kind: 'missing'}), {user: 'alice', key: 'hello world'}).fail ?? '', /not an SSH public key/);
  t.regex(authorizedKeyModule.plan(user(ok700, {kind: 'missing'}), {user: 'alice', key, path: 'keys'}).fail ?? '', /absolute/);
});

test('key identity skips options with quoted spaces', (t) => {
  t.is(keyIdentity(`command="echo a b",no-pty ${ED} c`), ED);
  t.is(keyIdentity(`${RSA}`), RSA);
  t.is(keyIdentity('# ssh-rsa AAAA'), undefined);
  t.is(keyIdentity(''), undefined);
});

test('parser: passwd line, folder and file', (t) => {
  const b64 = Buffer.from(`${key}\n`).toString('base64');
  t.deepEqual(parseAuthorizedKeys(`passwd alice:x:1000:1000::/home/alice:/bin/bash\ndir 700 alice 1000\nfile 600 alice 1000\n${b64}\n`),
    user(ok700, file(`${key}\n`)));
  t.deepEqual(parseAuthorizedKeys('nouser\n'), {kind: 'nouser'});
  t.like(parseAuthorizedKeys('passwd alice:x:1000:1000::/home/alice:/bin/bash\ndir missing\nfile missing\n'), {kind: 'user', dir: {kind: 'missing'}, file: {kind: 'missing'}});
  t.like(parseAuthorizedKeys('passwd alice:x:1000:1000::/home/alice:/bin/bash\ndir other\nfile missing\n'), {odd: 'folder'});
});

// ---- the probe, for real, and check mode through the engine: a fake `getent` gives a temp home

const me = userInfo();
const fakeKeysHost = (setup: (home: string) => void) => {
  const host = fakeHost('authkey', {getent: `[ "$1" = passwd ] && [ "$3" = ${me.username} ] && echo "${me.username}:x:${me.uid}:${me.gid}::$FAKE/home:/bin/sh"`}, {});
  mkdirSync(join(host.dir, 'home'));
  setup(join(host.dir, 'home'));
  return host;
};

test('the probe reads a real folder', (t) => {
  const host = fakeKeysHost((home) => {
    mkdirSync(join(home, '.ssh'), {mode: 0o700});
    writeFileSync(join(home, '.ssh/authorized_keys'), `${key}\n`, {mode: 0o600});
  });
  const out = execFileSync('sh', ['-c', `PATH=${host.dir}/bin:$PATH FAKE=${host.dir}; export PATH FAKE\n${authorizedKeyProbeScript({user: me.username})}`], {encoding: 'utf8'});
  t.like(parseAuthorizedKeys(out), {kind: 'user', home: join(host.dir, 'home'), dir: {kind: 'present', mode: 0o700, owner: me.username}, file: {kind: 'present', mode: 0o600, content: `${key}\n`}});
  t.regex(authorizedKeyModule.plan(parseAuthorizedKeys(out), {user: me.username, key}).reason ?? '', /already present/);
});

const checkCases: {title: string; setup: (home: string) => void; args: Omit<AuthorizedKeyArgs, 'user'>; status: 'changed' | 'ok'; msg: string; cmds: (home: string) => string[]}[] = [
  {title: 'no .ssh → would create', setup: () => {}, args: {key}, status: 'changed', msg: 'would create {home}/.ssh; create {home}/.ssh/authorized_keys', cmds: (h) => [`mkdir -m 0700 -- ${h}/.ssh`, `chown ${q(`${me.username}:${me.gid}`)} -- ${h}/.ssh`, `write ${h}/.ssh/authorized_keys`]},
  {title: 'other key → would add', setup: (h) => { mkdirSync(join(h, '.ssh'), {mode: 0o700}); writeFileSync(join(h, '.ssh/authorized_keys'), `${RSA} bob\n`, {mode: 0o600}); }, args: {key}, status: 'changed', msg: 'would add 1 key', cmds: (h) => [`write ${h}/.ssh/authorized_keys`]},
  {title: 'converged → ok', setup: (h) => { mkdirSync(join(h, '.ssh'), {mode: 0o700}); writeFileSync(join(h, '.ssh/authorized_keys'), `${key}\n`, {mode: 0o600}); }, args: {key}, status: 'ok', msg: 'key already present', cmds: () => []},
  {title: 'mode drifted → would chmod', setup: (h) => { mkdirSync(join(h, '.ssh'), {mode: 0o700}); writeFileSync(join(h, '.ssh/authorized_keys'), `${key}\n`); chmodSync(join(h, '.ssh/authorized_keys'), 0o644); }, args: {key}, status: 'changed', msg: 'would mode 0644 → 0600', cmds: (h) => [`chmod 0600 -- ${h}/.ssh/authorized_keys`]},
];

/** A command a real run sends, with a write step's upload script shortened to `write <dest>`. */
const shortCmd = (c: string): string => (c.startsWith("sh -c 'set -e") ? `write ${/mv -f "\$t" (\S+)/.exec(c)?.[1] ?? '?'}` : c);

for (const c of checkCases) {
  test(`authorizedKey check mode: ${c.title}`, async (t) => {
    const host = fakeKeysHost(c.setup);
    const home = join(host.dir, 'home');
    const pb = definePlaybook({name: 'check', plays: [{name: 'check', hosts: 'all_hosts', gatherFacts: false, tasks: [authorizedKey({user: me.username, ...c.args})]}]});
    const check = await runFake(pb, {handler: host.handler, check: true});
    t.deepEqual(check.results().map((r) => [r.status, r.msg]), [[c.status, c.msg.replaceAll('{home}', home)]]);
    const log = check.transports.get('h1')!.execs;
    t.is(log.length, 1, 'one probe batch');
    t.true(log.every(isProbeBatch), 'only probes');
    const real = await runFake(pb, {handler: host.handler});
    t.is(real.results()[0]?.status, c.status);
    t.deepEqual(real.transports.get('h1')!.execs.filter((r) => !isProbeBatch(r)).map((r) => shortCmd(r.command)), c.cmds(home));
    rmSync(host.dir, {recursive: true});
  });
}
