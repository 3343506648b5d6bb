import test from 'ava';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';
import {execFileSync} from 'node:child_process';
import {join} from 'node:path';
import {q} from '../../src/core/cmd.ts';
import type {Plan, Task} from '../../src/core/types.ts';
import {group, groupModule, groupProbeScript, parseGroupLine, parseGroupState, parseUserState, user, userModule, userProbeScript, type GroupArgs, type GroupState, type UserArgs, type UserState} from '../../src/modules/users.ts';

const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' && 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.kind));

const alice: UserState = {
  kind: 'present', uid: 1001, gid: 1001, comment: 'Alice Liddell,,,', home: '/home/alice', shell: '/bin/bash',
  primary: 'alice', groups: ['alice', 'sudo', 'docker'], ownGroup: true,
};

// ---- user: pure plans

const userCases: {title: string; have: UserState; args: UserArgs; cmds: string[]; reason?: RegExp}[] = [
  {
    title: 'missing → useradd with every given field',
    have: {kind: 'missing', ownGroup: false},
    args: {name: 'deploy', uid: 1500, groups: ['sudo', 'www-data'], shell: '/bin/bash', comment: 'Deploy user', home: '/srv/deploy'},
    cmds: ['useradd --uid 1500 --groups sudo,www-data --home-dir /srv/deploy --shell /bin/bash --comment Deploy user --create-home -- deploy'],
    reason: /create user deploy/,
  },
  {
    title: 'missing system user → no home by default',
    have: {kind: 'missing', ownGroup: false},
    args: {name: 'prometheus', system: true, shell: '/usr/sbin/nologin'},
    cmds: ['useradd --system --shell /usr/sbin/nologin --no-create-home -- prometheus'],
  },
  {
    title: 'missing, a group of the same name exists → --gid it (useradd would refuse otherwise)',
    have: {kind: 'missing', ownGroup: true},
    args: {name: 'app'},
    cmds: ['useradd --gid app --create-home -- app'],
  },
  {
    title: 'missing, explicit primary group and createHome false',
    have: {kind: 'missing', ownGroup: true},
    args: {name: 'app', group: 'www-data', createHome: false},
    cmds: ['useradd --gid www-data --no-create-home -- app'],
  },
  {
    title: 'converged → nothing',
    have: alice,
    args: {name: 'alice', uid: 1001, group: 'alice', groups: ['sudo', 'docker'], shell: '/bin/bash', home: '/home/alice', comment: 'Alice Liddell,,,'},
    cmds: [],
    reason: /^user alice present \(uid 1001, group alice\)$/,
  },
  {
    title: 'converged: groups in another order, primary listed too, gid given as a number',
    have: alice,
    args: {name: 'alice', group: 1001, groups: ['docker', 'alice', 'sudo']},
    cmds: [],
  },
  {
    title: 'drifted shell and comment → one usermod with only those',
    have: alice,
    args: {name: 'alice', shell: '/bin/zsh', comment: 'Alice', home: '/home/alice'},
    cmds: ['usermod --shell /bin/zsh --comment Alice -- alice'],
    reason: /shell \/bin\/bash → \/bin\/zsh, comment 'Alice Liddell,,,' → 'Alice'/,
  },
  {
    title: 'drifted uid, primary group and home',
    have: alice,
    args: {name: 'alice', uid: 2001, group: 'staff', home: '/srv/alice'},
    cmds: ['usermod --uid 2001 --gid staff --home /srv/alice -- alice'],
    reason: /uid 1001 → 2001, group alice → staff, home \/home\/alice → \/srv\/alice/,
  },
  {
    title: 'groups exact: extra membership is dropped',
    have: alice,
    args: {name: 'alice', groups: ['sudo', 'adm']},
    cmds: ['usermod --groups sudo,adm -- alice'],
    reason: /groups \+adm -docker/,
  },
  {
    title: 'groups exact: empty list removes every supplementary group',
    have: alice,
    args: {name: 'alice', groups: []},
    cmds: ['usermod --groups  -- alice'],
  },
  {
    title: 'groups append: only the missing ones are added',
    have: alice,
    args: {name: 'alice', groups: ['docker', 'adm'], append: true},
    cmds: ['usermod --append --groups adm -- alice'],
    reason: /groups \+adm$/,
  },
  {
    title: 'groups append: already a member → nothing',
    have: alice,
    args: {name: 'alice', groups: ['docker'], append: true},
    cmds: [],
  },
  {
    title: 'absent: present → userdel',
    have: alice,
    args: {name: 'alice', state: 'absent'},
    cmds: ['userdel -- alice'],
    reason: /remove user alice \(uid 1001\)/,
  },
  {
    title: 'absent: missing → nothing',
    have: {kind: 'missing', ownGroup: false},
    args: {name: 'alice', state: 'absent'},
    cmds: [],
    reason: /already absent/,
  },
];

for (const c of userCases) {
  test(`user plan: ${c.title}`, (t) => {
    const plan = userModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(cmds(plan), c.cmds);
    t.truthy(plan.reason);
    if (c.reason) t.regex(plan.reason ?? '', c.reason);
  });
}

test('user plan: bad names fail', (t) => {
  t.regex(userModule.plan({kind: 'missing', ownGroup: false}, {name: '-rf'}).fail ?? '', /bad user name/);
  t.regex(userModule.plan({kind: 'missing', ownGroup: false}, {name: 'a b'}).fail ?? '', /bad user name/);
  t.regex(userModule.plan({kind: 'missing', ownGroup: false}, {name: 'ok', groups: ['x,y']}).fail ?? '', /bad group name 'x,y'/);
  t.regex(userModule.plan({kind: 'missing', ownGroup: false}, {name: '1000'}).fail ?? '', /bad user name/);
  t.is(userModule.plan({kind: 'missing', ownGroup: false}, {name: 'ok', group: '100'}).fail, undefined, 'a gid as a string is fine');
});

// ---- group: pure plans

const groupCases: {title: string; have: GroupState; args: GroupArgs; cmds: string[]; reason?: RegExp}[] = [
  {title: 'missing → groupadd', have: {kind: 'missing'}, args: {name: 'app', gid: 1500}, cmds: ['groupadd --gid 1500 -- app'], reason: /create group app/},
  {title: 'missing system group', have: {kind: 'missing'}, args: {name: 'app', system: true}, cmds: ['groupadd --system -- app']},
  {title: 'drifted gid → groupmod', have: {kind: 'present', name: 'app', gid: 1001, members: []}, args: {name: 'app', gid: 1500}, cmds: ['groupmod --gid 1500 -- app'], reason: /gid 1001 → 1500/},
  {title: 'converged → nothing', have: {kind: 'present', name: 'app', gid: 1500, members: ['alice']}, args: {name: 'app', gid: 1500}, cmds: [], reason: /group app present \(gid 1500\)/},
  {title: 'present without a gid → nothing', have: {kind: 'present', name: 'app', gid: 1500, members: []}, args: {name: 'app', system: true}, cmds: []},
  {title: 'absent → groupdel', have: {kind: 'present', name: 'app', gid: 1500, members: []}, args: {name: 'app', state: 'absent'}, cmds: ['groupdel -- app']},
  {title: 'absent, missing → nothing', have: {kind: 'missing'}, args: {name: 'app', state: 'absent'}, cmds: [], reason: /already absent/},
];

for (const c of groupCases) {
  test(`group plan: ${c.title}`, (t) => {
    const plan = groupModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(cmds(plan), c.cmds);
    t.truthy(plan.reason);
    if (c.reason) t.regex(plan.reason ?? '', c.reason);
  });
}

// ---- check mode through the engine, on a fake host

/** A fake host's account databases: `passwd` and `group` lines, and what `id -gn`/`id -Gn` print (one user). */
interface Accounts {
  readonly passwd?: string;
  readonly group?: string;
  readonly primary?: string;
  readonly groups?: string;
}

/** A host whose `getent` and `id` read the files of `accounts`. */
const fakeAccountsHost = (accounts: Accounts) => fakeHost('users', {
  // getent passwd|group -- NAME
  getent: 'grep -- "^$3:" "$FAKE/$1" || exit 2',
  // id -gn|-Gn -- NAME
  id: 'grep -q -- "^$3:" "$FAKE/passwd" || exit 1\ncase "$1" in -gn) cat "$FAKE/primary";; -Gn) cat "$FAKE/groups";; esac',
}, {passwd: '', group: '', primary: '', groups: '', ...accounts});

/** alice as in `alice` above, on the fake host. */
const aliceHost: Accounts = {
  passwd: 'alice:x:1001:1001:Alice Liddell,,,:/home/alice:/bin/bash\n',
  group: 'alice:x:1001:\nsudo:x:27:alice\ndocker:x:999:alice\n',
  primary: 'alice\n',
  groups: 'alice sudo docker\n',
};

/** An argv command as the host receives it (each word quoted; no word holds a space). */
const sent = (words: string): string => words.split(' ').map(q).join(' ');

interface CheckCase {
  readonly title: string;
  readonly host: Accounts;
  readonly task: Task;
  /** The --check result: status and message. */
  readonly status: 'changed' | 'ok';
  readonly msg: string;
  /** What a run without --check sends besides probes. */
  readonly cmds: readonly string[];
}

const checkCases: CheckCase[] = [
  {
    title: 'user missing → would create',
    host: {group: 'sudo:x:27:\n'},
    task: user({name: 'deploy', groups: ['sudo'], shell: '/bin/bash'}),
    status: 'changed',
    msg: 'would create user deploy',
    cmds: [sent('useradd --groups sudo --shell /bin/bash --create-home -- deploy')],
  },
  {
    title: 'user drifted → would usermod only what differs',
    host: aliceHost,
    task: user({name: 'alice', shell: '/bin/zsh', groups: ['sudo', 'adm']}),
    status: 'changed',
    msg: 'would groups +adm -docker, shell /bin/bash → /bin/zsh',
    cmds: [sent('usermod --groups sudo,adm --shell /bin/zsh -- alice')],
  },
  {
    title: 'user present, want absent → would remove',
    host: aliceHost,
    task: user({name: 'alice', state: 'absent'}),
    status: 'changed',
    msg: 'would remove user alice (uid 1001)',
    cmds: [sent('userdel -- alice')],
  },
  {
    title: 'user converged → ok',
    host: aliceHost,
    task: user({name: 'alice', uid: 1001, group: 'alice', groups: ['docker', 'sudo'], shell: '/bin/bash', home: '/home/alice'}),
    status: 'ok',
    msg: 'user alice present (uid 1001, group alice)',
    cmds: [],
  },
  {
    title: 'group missing → would create',
    host: {},
    task: group({name: 'app', gid: 1500}),
    status: 'changed',
    msg: 'would create group app',
    cmds: [sent('groupadd --gid 1500 -- app')],
  },
  {
    title: 'group drifted gid → would groupmod',
    host: {group: 'app:x:1001:\n'},
    task: group({name: 'app', gid: 1500}),
    status: 'changed',
    msg: 'would gid 1001 → 1500',
    cmds: [sent('groupmod --gid 1500 -- app')],
  },
  {
    title: 'group converged → ok',
    host: {group: 'app:x:1500:alice\n'},
    task: group({name: 'app', gid: 1500}),
    status: 'ok',
    msg: 'group app present (gid 1500)',
    cmds: [],
  },
];

for (const c of checkCases) {
  test(`user/group check mode: ${c.title}`, (t) => assertCheckMode(t, fakeAccountsHost(c.host), c.task, c));
}

// ---- parsers on realistic output

test('user parser: an existing user with supplementary groups and its own group', (t) => {
  const out = [
    'passwd alice:x:1001:1001:Alice Liddell,,,:/home/alice:/bin/bash',
    'primary alice',
    'groups alice sudo docker',
    'group alice:x:1001:',
    '',
  ].join('\n');
  t.deepEqual(parseUserState(out), alice);
});

test('user parser: missing user, with and without a group of that name', (t) => {
  t.deepEqual(parseUserState(''), {kind: 'missing', ownGroup: false});
  t.deepEqual(parseUserState('group app:x:998:\n'), {kind: 'missing', ownGroup: true});
});

test('user parser: empty GECOS, nologin shell, group without a name', (t) => {
  const out = 'passwd www-data:x:33:33::/var/www:/usr/sbin/nologin\nprimary 33\ngroups 33\n';
  t.like(parseUserState(out), {kind: 'present', uid: 33, gid: 33, comment: '', home: '/var/www', shell: '/usr/sbin/nologin', primary: '33', groups: ['33'], ownGroup: false});
});

test('group parser: members, none, missing, malformed', (t) => {
  t.deepEqual(parseGroupState('group docker:x:999:alice,bob\n'), {kind: 'present', name: 'docker', gid: 999, members: ['alice', 'bob']});
  t.deepEqual(parseGroupState('group root:x:0:\n'), {kind: 'present', name: 'root', gid: 0, members: []});
  t.deepEqual(parseGroupState(''), {kind: 'missing'});
  t.is(parseGroupLine('garbage'), undefined);
});

// ---- the probes, for real on this machine

const run = (script: string): string => execFileSync('sh', ['-c', script], {encoding: 'utf8', timeout: 10_000});

test('user and group probes are valid sh and read this host', (t) => {
  for (const s of [userProbeScript('root'), userProbeScript("o'brien"), groupProbeScript('root')]) t.notThrows(() => execFileSync('sh', ['-n', '-c', s]));
  const started = Date.now();
  const root = parseUserState(run(userProbeScript('root')));
  t.like(root, {kind: 'present', uid: 0, gid: 0, primary: 'root', home: '/root', ownGroup: true});
  t.true(root.kind === 'present' && root.groups.includes('root'));
  t.deepEqual(parseUserState(run(userProbeScript('no-such-user-xyz'))), {kind: 'missing', ownGroup: false});
  t.like(parseGroupState(run(groupProbeScript('root'))), {kind: 'present', name: 'root', gid: 0});
  t.deepEqual(parseGroupState(run(groupProbeScript('no-such-group-xyz'))), {kind: 'missing'});
  t.true(Date.now() - started < 5000);
  t.is(userModule.plan(root, {name: 'root', uid: 0, group: 'root', home: '/root'}).steps.length, 0);
});

test('probes leave no variables behind in the batch', (t) => {
  const out = run(`p=keep; g=keep\n${userProbeScript('root')}\n${groupProbeScript('root')}\necho "$p $g"`);
  t.true(out.trimEnd().endsWith('keep keep'));
});
