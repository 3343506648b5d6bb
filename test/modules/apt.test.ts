import test from 'ava';
import {commandWorks} from '../helpers/cli.ts';
import {assertCheckMode, fakeHost} from '../helpers/fakehost.ts';
import {execFileSync} from 'node:child_process';
import {join} from 'node:path';
import {q} from '../../src/core/cmd.ts';
import {definePlaybook} from '../../src/core/task.ts';
import type {Plan} from '../../src/core/types.ts';
import {APT_UPDATE_SCRIPT, apt, aptModule, aptProbeScript, parseAptProbe, parsePolicy, parseSpecs, type AptArgs, type AptState} from '../../src/modules/apt.ts';
import {localExec, type Handler} from '../../src/transport/fake.ts';
import {spawn} from 'node:child_process';
import type {TaskContext} from '../../src/core/types.ts';
import {aptLockNote, aptUpdateScript, hostLockTimeout} from '../../src/modules/apt.ts';
import {runFake} from '../helpers/engine.ts';

/** Each step's argv joined with spaces (readable; quoting is cmd.ts's business). */
const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind !== 'exec' ? s.kind : 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.cmd.shell));

const install = 'env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60';
const update = APT_UPDATE_SCRIPT;

const state = (packages: AptState['packages'], cacheAge: number | null = 60, policy: AptState['policy'] = {}): AptState => ({packages, policy, cacheAge});
const inst = (version: string) => ({kind: 'installed', version}) as const;
const missing = {kind: 'missing'} as const;

// ---- pure plans: state in, steps out

const cases: {title: string; have: AptState; args: AptArgs; cmds: string[]; reason?: RegExp}[] = [
  {
    title: 'missing → install (fresh cache: no update)',
    have: state({nginx: missing, curl: inst('7.88.1-10')}),
    args: {packages: ['nginx', 'curl']},
    cmds: [`${install} nginx`],
    reason: /install nginx/,
  },
  {
    title: 'missing, stale cache → update then install',
    have: state({nginx: missing}, 7200),
    args: {packages: 'nginx'},
    cmds: [update, `${install} nginx`],
    reason: /update cache \(lists 2h old\); install nginx/,
  },
  {
    title: 'missing, no lists at all → update then install',
    have: state({nginx: missing}, null),
    args: {packages: 'nginx'},
    cmds: [update, `${install} nginx`],
    reason: /no package lists/,
  },
  {
    title: 'missing, stale cache, updateCache: false → install only',
    have: state({nginx: missing}, 7200),
    args: {packages: 'nginx', updateCache: false},
    cmds: [`${install} nginx`],
  },
  {
    title: 'converged → nothing, even with a stale cache',
    have: state({nginx: inst('1.22.1-9'), curl: inst('7.88.1-10')}, 999999),
    args: {packages: ['nginx', 'curl']},
    cmds: [],
    reason: /^all present: nginx, curl$/,
  },
  {
    title: 'converged, updateCache and stale → update only',
    have: state({nginx: inst('1.22.1-9')}, 4000),
    args: {packages: ['nginx'], updateCache: true},
    cmds: [update],
  },
  {
    title: 'converged, updateCache, cache within cacheValidTime → nothing',
    have: state({nginx: inst('1.22.1-9')}, 4000),
    args: {packages: ['nginx'], updateCache: true, cacheValidTime: 86400},
    cmds: [],
    reason: /all present: nginx/,
  },
  {
    title: 'several missing → one apt-get call; string with commas',
    have: state({a: missing, b: {kind: 'config-files', version: '1'}, c: inst('1')}),
    args: {packages: 'a, b,c'},
    cmds: [`${install} a b`],
    reason: /install a, b/,
  },
  {
    title: 'half-configured → install again',
    have: state({a: {kind: 'partial', status: 'half-configured', version: '1'}}),
    args: {packages: ['a']},
    cmds: [`${install} a`],
    reason: /a is half-configured/,
  },
  {
    title: 'pinned version drifted → install name=version, downgrades allowed',
    have: state({nginx: inst('1.22.1-9+deb12u1')}),
    args: {packages: ['nginx=1.22.1-9']},
    cmds: [`${install} --allow-downgrades nginx=1.22.1-9`],
    reason: /nginx 1.22.1-9\+deb12u1 → 1.22.1-9/,
  },
  {
    title: 'pinned version converged → nothing',
    have: state({nginx: inst('1:1.22.1-9')}),
    args: {packages: ['nginx=1:1.22.1-9']},
    cmds: [],
    reason: /all present: nginx=1:1.22.1-9/,
  },
  {
    title: 'installRecommends → no --no-install-recommends',
    have: state({a: missing}),
    args: {packages: ['a'], installRecommends: true},
    cmds: [`${install.replace('--no-install-recommends', '-o APT::Install-Recommends=true')} a`],
  },
  {
    title: 'latest: candidate newer → upgrade',
    have: state({bash: inst('5.2.15-2+b8'), curl: inst('7.88.1-10')}, 60, {bash: {installed: '5.2.15-2+b8', candidate: '5.2.15-2+b13'}, curl: {installed: '7.88.1-10', candidate: '7.88.1-10'}}),
    args: {packages: ['bash', 'curl'], state: 'latest'},
    cmds: [`${install} bash`],
    reason: /upgrade bash 5.2.15-2\+b8 → 5.2.15-2\+b13/,
  },
  {
    title: 'latest: converged → nothing',
    have: state({bash: inst('5.2.15-2+b13')}, 60, {bash: {installed: '5.2.15-2+b13', candidate: '5.2.15-2+b13'}}),
    args: {packages: ['bash'], state: 'latest'},
    cmds: [],
    reason: /all latest: bash 5.2.15-2\+b13/,
  },
  {
    title: 'latest, updateCache, stale: update, then every package (candidates were stale)',
    have: state({bash: inst('5.2.15-2+b13'), curl: missing}, 90000, {bash: {installed: '5.2.15-2+b13', candidate: '5.2.15-2+b13'}}),
    args: {packages: ['bash', 'curl'], state: 'latest', updateCache: true},
    cmds: [update, `${install} curl bash`],
    reason: /latest of bash after the update/,
  },
  {
    title: 'absent: installed → remove',
    have: state({nginx: inst('1'), curl: missing}),
    args: {packages: ['nginx', 'curl'], state: 'absent'},
    cmds: ['env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=60 nginx'],
    reason: /remove nginx/,
  },
  {
    title: 'absent + purge: config-files left → purge',
    have: state({nginx: {kind: 'config-files', version: '1'}}),
    args: {packages: ['nginx'], state: 'absent', purge: true},
    cmds: ['env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=60 nginx'],
  },
  {
    title: 'absent: config-files without purge, and missing → nothing',
    have: state({nginx: {kind: 'config-files', version: '1'}, curl: missing}),
    args: {packages: ['nginx', 'curl'], state: 'absent'},
    cmds: [],
    reason: /^all absent: nginx, curl$/,
  },
  {
    title: 'absent with a pin: another version installed → nothing',
    have: state({nginx: inst('2')}),
    args: {packages: ['nginx=1'], state: 'absent'},
    cmds: [],
  },
  {
    title: 'no packages, updateCache, stale → update only',
    have: state({}, 5000),
    args: {packages: [], updateCache: true},
    cmds: [update],
  },
  {
    title: 'no packages, updateCache, fresh → nothing with a reason',
    have: state({}, 50),
    args: {packages: [], updateCache: true},
    cmds: [],
    reason: /cache fresh \(lists 50s old\)/,
  },
  {
    title: 'multi-arch name is passed through',
    have: state({'libc6:i386': missing}),
    args: {packages: ['libc6:i386']},
    cmds: [`${install} libc6:i386`],
  },
];

for (const c of cases) {
  test(`apt plan: ${c.title}`, (t) => {
    const plan = aptModule.plan(c.have, c.args);
    t.is(plan.fail, undefined);
    t.deepEqual(cmds(plan), c.cmds);
    t.truthy(plan.reason, 'every plan carries a reason');
    if (c.reason) t.regex(plan.reason ?? '', c.reason);
  });
}

test('apt plan: bad package names fail without steps; probe and describe do not throw', (t) => {
  for (const bad of ['Nginx', 'nginx;rm -rf /', '-x', 'a=', 'pkg*']) {
    const a: AptArgs = {packages: [bad]};
    const plan = aptModule.plan(state({}), a);
    t.deepEqual(plan.steps, []);
    t.regex(plan.fail ?? '', /bad package/);
    t.notThrows(() => aptModule.probe!(a));
    t.notThrows(() => aptModule.describe(a));
  }
  t.regex(aptModule.plan(state({}), {packages: ['a=1', 'a=2']}).fail ?? '', /twice/);
});

test('apt specs: split, pins, arch, dedupe', (t) => {
  t.deepEqual(parseSpecs('nginx curl,git'), [{name: 'nginx'}, {name: 'curl'}, {name: 'git'}]);
  t.deepEqual(parseSpecs(['libc6:i386=2.36-9', 'nginx', 'nginx']), [{name: 'libc6:i386', version: '2.36-9'}, {name: 'nginx'}]);
  t.deepEqual(parseSpecs(['g++', 'libstdc++6=12.2.0-14', 'python3.11']).map((s) => s.name), ['g++', 'libstdc++6', 'python3.11']);
  t.is(aptModule.describe({packages: ['nginx', 'curl=1']}), 'nginx, curl=1');
  t.is(aptModule.describe({packages: 'nginx', state: 'absent'}), 'nginx (absent)');
});

// ---- check mode through the engine, on a fake host

/**
 * A host whose dpkg, apt-cache and package lists are files: `dpkg` (dpkg-query's lines), `policy`
 * (apt-cache policy's output), `age` (seconds since the lists were updated).
 */
const fakeAptHost = (files: Readonly<Record<string, string>>) => fakeHost('apt', {
  'dpkg-query': 'cat "$FAKE/dpkg"',
  'apt-cache': 'cat "$FAKE/policy" 2>/dev/null',
  stat: 'echo "mtime $(($(date +%s) - $(cat "$FAKE/age"))) /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"',
}, {age: '60', dpkg: '', ...files});

const row = (name: string, status: string, version: string): string => `dpkg ${name} amd64 install ok ${status} ${version}\n`;
/** An argv command as the host receives it (each word quoted; no word holds a space). */
const sent = (words: string): string => words.split(' ').map(q).join(' ');

interface CheckCase {
  readonly title: string;
  /** The fake host's files (see `fakeAptHost`). */
  readonly host: Readonly<Record<string, string>>;
  readonly args: AptArgs;
  /** The --check result: status and message. */
  readonly status: 'changed' | 'ok';
  readonly msg: string;
  /** What a run without --check sends besides probes. */
  readonly cmds: readonly string[];
}

const checkCases: CheckCase[] = [
  {
    title: 'missing → would install',
    host: {dpkg: row('curl', 'installed', '7.88.1-10')},
    args: {packages: ['nginx', 'curl']},
    status: 'changed',
    msg: 'would install nginx',
    cmds: [sent(`${install} nginx`)],
  },
  {
    title: 'missing, stale lists → would update then install',
    host: {age: '10000'},
    args: {packages: 'nginx'},
    status: 'changed',
    msg: 'would update cache (lists 2h old); install nginx',
    cmds: [update, sent(`${install} nginx`)],
  },
  {
    title: 'candidate newer → would upgrade',
    host: {dpkg: row('bash', 'installed', '5.2.15-2+b8'), policy: 'bash:\n  Installed: 5.2.15-2+b8\n  Candidate: 5.2.15-2+b13\n'},
    args: {packages: ['bash'], state: 'latest'},
    status: 'changed',
    msg: 'would upgrade bash 5.2.15-2+b8 → 5.2.15-2+b13',
    cmds: [sent(`${install} bash`)],
  },
  {
    title: 'installed, want absent → would remove',
    host: {dpkg: row('nginx', 'installed', '1.22.1-9')},
    args: {packages: 'nginx', state: 'absent'},
    status: 'changed',
    msg: 'would remove nginx',
    cmds: [sent('env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q -o DPkg::Lock::Timeout=60 nginx')],
  },
  {
    title: 'converged → ok',
    host: {dpkg: row('nginx', 'installed', '1.22.1-9') + row('curl', 'installed', '7.88.1-10'), age: '999999'},
    args: {packages: ['nginx', 'curl']},
    status: 'ok',
    msg: 'all present: nginx, curl',
    cmds: [],
  },
];

for (const c of checkCases) {
  test(`apt check mode: ${c.title}`, (t) => assertCheckMode(t, fakeAptHost(c.host), apt(c.args), c));
}

// ---- parsers on realistic output

const probeOutput = `now 1732611000
mtime 1732600000 /var/lib/apt/lists/partial
mtime 1732600000 /var/lib/apt/lists
mtime 1732590000 lists
dpkg bash amd64 install ok installed 5.2.15-2+b8
dpkg libc-ares1  unknown ok not-installed 
dpkg libc6 amd64 install ok installed 2.36-9+deb12u14
dpkg libc6 i386 deinstall ok config-files 2.36-9+deb12u7
dpkg nginx amd64 install ok half-configured 1.22.1-9
dpkg man-db amd64 install ok triggers-pending 2.11.2-2
dpkg vim amd64 hold ok installed 2:9.0.1378-2
@policy
bash:
  Installed: 5.2.15-2+b8
  Candidate: 5.2.15-2+b13
  Version table:
     5.2.15-2+b13 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 5.2.15-2+b8 100
        100 /var/lib/dpkg/status
libc6:
  Installed: 2.36-9+deb12u14
  Candidate: 2.36-9+deb12u14
  Version table:
 *** 2.36-9+deb12u14 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        100 /var/lib/dpkg/status
libc6:i386:
  Installed: (none)
  Candidate: 2.36-9+deb12u14
  Version table:
     2.36-9+deb12u14 500
        500 http://deb.debian.org/debian bookworm/main i386 Packages
libc-ares1:
  Installed: (none)
  Candidate: (none)
  Version table:
`;

test('apt parser: dpkg status rows, multi-arch, unknown names, cache age, policy', (t) => {
  const names = ['bash', 'libc-ares1', 'libc6', 'libc6:i386', 'libc6:amd64', 'nginx', 'man-db', 'vim', 'nosuchpkg'];
  const s = parseAptProbe(probeOutput, names);
  t.deepEqual(s.packages, {
    bash: {kind: 'installed', version: '5.2.15-2+b8'},
    'libc-ares1': {kind: 'missing'},
    libc6: {kind: 'installed', version: '2.36-9+deb12u14'},
    'libc6:i386': {kind: 'config-files', version: '2.36-9+deb12u7'},
    'libc6:amd64': {kind: 'installed', version: '2.36-9+deb12u14'},
    nginx: {kind: 'partial', status: 'half-configured', version: '1.22.1-9'},
    'man-db': {kind: 'installed', version: '2.11.2-2'},
    vim: {kind: 'installed', version: '2:9.0.1378-2'},
    nosuchpkg: {kind: 'missing'},
  });
  t.is(s.cacheAge, 11000, 'newest of the markers');
  t.deepEqual(s.policy.bash, {installed: '5.2.15-2+b8', candidate: '5.2.15-2+b13'});
  t.deepEqual(s.policy['libc6:amd64'], {installed: '2.36-9+deb12u14', candidate: '2.36-9+deb12u14'}, 'native arch falls back to the bare section');
  t.deepEqual(s.policy['libc6:i386'], {installed: null, candidate: '2.36-9+deb12u14'});
  t.deepEqual(s.policy['libc-ares1'], {installed: null, candidate: null});
  t.false('nosuchpkg' in s.policy);
});

test('apt parser: no *_Packages lists means no cache, whatever the markers say', (t) => {
  const s = parseAptProbe('now 1732611000\nmtime 1732600000 /var/lib/apt/lists/partial\nmtime  lists\n', ['x']);
  t.is(s.cacheAge, null);
  t.deepEqual(s.packages, {x: {kind: 'missing'}});
  t.is(parseAptProbe('', []).cacheAge, null);
  t.is(parseAptProbe('now 100\nmtime 200 lists\n', []).cacheAge, 0, 'clock skew counts as fresh');
});

test('apt probe: every present/absent task shares one script (a batch runs it once); latest names its packages', (t) => {
  const one = aptModule.probe!({packages: ['nginx']}).script;
  t.is(aptModule.probe!({packages: ['haproxy', 'curl=7.88.1-10']}).script, one);
  t.is(aptModule.probe!({packages: ['ufw'], state: 'absent'}).script, one);
  t.notRegex(one, /nginx/);
  const latest = aptModule.probe!({packages: ['nginx'], state: 'latest'}).script;
  t.regex(latest, /apt-cache policy -- nginx/);
  t.regex(latest, /dpkg-query .* -- nginx/);
  // The shared script's output answers each task for its own names.
  const out = 'now 100\nmtime 90 /var/lib/apt/lists/x_Packages\ndpkg nginx amd64 install ok installed 1.22\ndpkg ufw all deinstall ok config-files 0.36\n';
  t.deepEqual(parseAptProbe(out, ['nginx', 'ufw', 'haproxy']).packages, {nginx: {kind: 'installed', version: '1.22'}, ufw: {kind: 'config-files', version: '0.36'}, haproxy: {kind: 'missing'}});
});

test('apt parser: policy without sections', (t) => {
  t.deepEqual(parsePolicy('', ['a']), {});
});

// ---- the probe, for real on this machine

test('apt probe script is valid sh and runs on any host (dpkg or not)', (t) => {
  for (const [names, policy] of [[[], false], [['bash'], false], [['bash', 'nosuchpkg-xyz', 'libc6:amd64'], true]] as const) {
    const script = aptProbeScript(names, policy);
    t.notThrows(() => execFileSync('sh', ['-n', '-c', script]));
  }
  const probe = aptModule.probe!({packages: ['bash', 'nosuchpkg-xyz']});
  const stdout = execFileSync('sh', ['-c', probe.script], {encoding: 'utf8', timeout: 10_000});
  t.deepEqual(probe.parse({stdout, code: 0}).packages['nosuchpkg-xyz'], {kind: 'missing'});
});

const dpkg = commandWorks('sh', ['-c', 'command -v dpkg-query']);

(dpkg ? test : test.skip)(`apt probe reads this host's dpkg database${dpkg ? '' : ' (skipped: no dpkg-query here)'}`, (t) => {
  const a: AptArgs = {packages: ['bash', 'nosuchpkg-xyz']};
  const probe = aptModule.probe!(a);
  const stdout = execFileSync('sh', ['-c', probe.script], {encoding: 'utf8', timeout: 10_000});
  const s = probe.parse({stdout, code: 0});
  t.deepEqual(s.packages['nosuchpkg-xyz'], {kind: 'missing'});
  t.is(s.packages.bash?.kind, 'installed');
  t.true(s.cacheAge === null || s.cacheAge >= 0);
  const plan = aptModule.plan(s, a);
  t.deepEqual(cmds(plan).at(-1), `${install} nosuchpkg-xyz`);
  t.is(aptModule.plan(s, {packages: 'bash'}).reason, 'all present: bash');
});

// ---- waiting for other package managers' locks: DPkg::Lock::Timeout, the lists lock of the update

/** apt's line for each second it waits for a lock (apt 2.6, `-q`, as captured on Debian 12). */
const waiting = (lock: string, holder = 'process 4711 (unattended-upgr)'): string => `Waiting for cache lock: Could not get lock ${lock}. It is held by ${holder}...\n`;
const frontend = '/var/lib/dpkg/lock-frontend';

test('apt lock timeout: on every apt-get call; the argument, else the host variable provision_apt_lock_timeout, else 60', (t) => {
  const have = state({nginx: missing, curl: inst('1')}, null);
  const five = aptModule.plan(have, {packages: 'nginx', lockTimeout: 5});
  t.deepEqual(cmds(five), [aptUpdateScript(5), `${install.replace('Timeout=60', 'Timeout=5')} nginx`]);
  t.regex(aptUpdateScript(5), /apt-get update -q -o DPkg::Lock::Timeout=5 /);
  t.deepEqual(cmds(aptModule.plan(have, {packages: 'curl', state: 'absent', purge: true, lockTimeout: 0})), ['env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q -o DPkg::Lock::Timeout=0 curl']);
  t.deepEqual(apt({packages: 'nginx', lockTimeout: -1}).problems(), ['lockTimeout: expected 0 or more']);

  const bound = (vars: Record<string, unknown>, args: AptArgs = {packages: 'nginx', updateCache: false}): string[] =>
    cmds(apt(args).bind({vars} as unknown as TaskContext).plan(have));
  t.deepEqual(bound({}), [`${install} nginx`]);
  t.deepEqual(bound({provision_apt_lock_timeout: 300}), [`${install.replace('Timeout=60', 'Timeout=300')} nginx`]);
  t.deepEqual(bound({provision_apt_lock_timeout: '0'}), [`${install.replace('Timeout=60', 'Timeout=0')} nginx`], 'text from an INI inventory');
  t.deepEqual(bound({provision_apt_lock_timeout: 300}, {packages: 'nginx', updateCache: false, lockTimeout: 7}), [`${install.replace('Timeout=60', 'Timeout=7')} nginx`], 'the argument wins');
  for (const bad of ['soon', -1, 1.5]) {
    t.throws(() => hostLockTimeout({provision_apt_lock_timeout: bad}), {message: `provision_apt_lock_timeout: expected a whole number of seconds (0 or more), got ${JSON.stringify(bad)}`});
  }
});

const noteCases: {title: string; stdout: string; stderr?: string; code?: number; note: string | undefined}[] = [
  {title: 'no wait → no note', stdout: 'Reading package lists...\nSetting up nginx (1.22.1-9) ...\n', note: undefined},
  {
    title: 'waited, then got the lock → how long and for whom (the last holder)',
    stdout: waiting(frontend, 'process 4711 (apt-get)') + waiting(frontend).repeat(2) + 'Reading package lists...\n',
    note: `waited 3 s for ${frontend}, held by process 4711 (unattended-upgr)`,
  },
  {
    title: 'waited, then failed for another reason → still says it waited',
    stdout: waiting(frontend) + 'Reading package lists...\n',
    stderr: 'E: Unable to locate package nosuchpkg\n',
    code: 100,
    note: `waited 1 s for ${frontend}, held by process 4711 (unattended-upgr)`,
  },
  {
    title: 'gave up: apt-get install at its DPkg::Lock::Timeout',
    stdout: waiting(frontend).repeat(60),
    stderr: `E: Unable to acquire the dpkg frontend lock (${frontend}), is another process using it?\n`,
    code: 100,
    note: `gave up after waiting 60 s (lockTimeout) for ${frontend}, held by process 4711 (unattended-upgr)`,
  },
  {
    title: 'gave up: the update script on the lists lock',
    stdout: waiting('/var/lib/apt/lists/lock').repeat(2),
    stderr: 'Reading package lists...\nE: Could not get lock /var/lib/apt/lists/lock. It is held by process 4711 (unattended-upgr)\nE: Unable to lock directory /var/lib/apt/lists/\n',
    code: 1,
    note: 'gave up after waiting 60 s (lockTimeout) for /var/lib/apt/lists/lock, held by process 4711 (unattended-upgr)',
  },
  {
    title: 'a holder apt could not name → its words',
    stdout: 'Waiting for cache lock: Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)...\n',
    note: 'waited 1 s for Could not get lock /var/lib/dpkg/lock - open (11: Resource temporarily unavailable)',
  },
];

for (const c of noteCases) {
  test(`apt lock note: ${c.title}`, (t) => {
    t.is(aptLockNote({stdout: c.stdout, stderr: c.stderr ?? '', code: c.code ?? 0}, 60), c.note);
  });
}

/** A host whose probes run here (a package no dpkg knows: missing) and whose apt-get answers `reply`. */
const lockedHost = (reply: (command: string) => {stdout: string; stderr: string; code: number}): {handler: Handler; sent: string[]} => {
  const sent: string[] = [];
  const handler: Handler = (command, stdin) => (command === 'sh -s' ? localExec(command, {stdin}) : (sent.push(command), reply(command)));
  return {handler, sent};
};
const pkg = 'provision-test-nosuchpkg';
const aptPlaybook = (args: AptArgs) => definePlaybook({name: 'apt', plays: [{name: 'apt', hosts: 'all_hosts', gatherFacts: false, tasks: [apt(args)]}]});

test('apt lock message through the engine: a wait is told in the task message; giving up names the holder', async (t) => {
  const waited = lockedHost(() => ({stdout: waiting(frontend).repeat(3) + 'Reading package lists...\n', stderr: '', code: 0}));
  const ok = await runFake(aptPlaybook({packages: pkg, updateCache: false}), {handler: waited.handler});
  t.deepEqual(ok.results().map((r) => [r.status, r.msg]), [['changed', `install ${pkg}; waited 3 s for ${frontend}, held by process 4711 (unattended-upgr)`]]);

  const quiet = lockedHost(() => ({stdout: 'Reading package lists...\n', stderr: '', code: 0}));
  t.deepEqual((await runFake(aptPlaybook({packages: pkg, updateCache: false}), {handler: quiet.handler})).results().map((r) => r.msg), [`install ${pkg}`], 'no wait, no note');

  const busy = lockedHost(() => ({stdout: waiting(frontend).repeat(2), stderr: `E: Unable to acquire the dpkg frontend lock (${frontend}), is another process using it?\n`, code: 100}));
  const failed = await runFake(aptPlaybook({packages: pkg, updateCache: false}), {handler: busy.handler, hostVars: {h1: {provision_apt_lock_timeout: 2}}});
  const r = failed.results()[0]!;
  t.is(r.status, 'failed');
  t.true(busy.sent[0]?.includes(q('DPkg::Lock::Timeout=2')), busy.sent[0]);
  t.regex(r.msg, /apt-get install .*provision-test-nosuchpkg: E: Unable to acquire the dpkg frontend lock \(\/var\/lib\/dpkg\/lock-frontend\), is another process using it\?; gave up after waiting 2 s \(lockTimeout\) for \/var\/lib\/dpkg\/lock-frontend, held by process 4711 \(unattended-upgr\)$/);
});

// ---- the lock wait, for real: this machine's apt-get against a process holding dpkg's frontend lock

/**
 * Hold `path` with an fcntl lock (apt's kind) for `seconds` in a python3 child; resolves with the
 * holder once it holds it (`release` ends it early), or null when another process holds the lock.
 */
function holdDpkgLock(path: string, seconds: number): Promise<{pid: number; done: Promise<void>; release(): Promise<void>} | null> {
  const py = 'import fcntl,os,sys,time\nfd=os.open(sys.argv[1],os.O_RDWR|os.O_CREAT,0o640)\ntry:\n  fcntl.lockf(fd,fcntl.LOCK_EX|fcntl.LOCK_NB)\nexcept OSError:\n  print("busy",flush=True);sys.exit(0)\nprint("held",flush=True)\ntime.sleep(float(sys.argv[2]))\n';
  const child = spawn('python3', ['-c', py, path, String(seconds)], {stdio: ['ignore', 'pipe', 'inherit']});
  const done = new Promise<void>((r) => child.on('close', () => r()));
  return new Promise((resolve) => {
    const release = (): Promise<void> => {
      child.kill();
      return done;
    };
    child.stdout.once('data', (d: Buffer) => resolve(d.toString().startsWith('held') ? {pid: child.pid!, done, release} : null));
    child.on('error', () => resolve(null));
  });
}

function canHoldDpkgLock(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root';
  return commandWorks('sh', ['-c', 'command -v apt-get && command -v python3']) ? undefined : 'no apt-get or python3 here';
}
const noRealLock = canHoldDpkgLock();

(noRealLock ? test.skip : test.serial)(`apt lock, for real: apt-get waits for the frontend lock and the note names the holder${noRealLock ? ` (skipped: ${noRealLock})` : ''}`, async (t) => {
  // A package that does not exist: apt-get ends with "Unable to locate package" once it has the lock; nothing is installed.
  const run = (lockTimeout: number) => localExec(cmds(aptModule.plan(state({[pkg]: missing}), {packages: pkg, updateCache: false, lockTimeout}))[0]!);
  const short = await holdDpkgLock(frontend, 4);
  if (!short) return t.fail('dpkg\'s frontend lock is held by another process here: try again later');
  const gaveUp = await run(1);
  t.is(aptLockNote(gaveUp, 1), `gave up after waiting 1 s (lockTimeout) for ${frontend}, held by process ${short.pid} (python3)`, gaveUp.stdout + gaveUp.stderr);
  await short.release();

  const holder = await holdDpkgLock(frontend, 2);
  if (!holder) return t.fail('dpkg\'s frontend lock is held by another process here: try again later');
  const t0 = Date.now();
  const waited = await run(20);
  t.log(`apt-get waited ${Date.now() - t0} ms`);
  t.is(waited.code, 100);
  t.regex(waited.stderr, /Unable to locate package/);
  t.regex(aptLockNote(waited, 20) ?? '', new RegExp(`^waited [123] s for /var/lib/dpkg/lock-frontend, held by process ${holder.pid} \\(python3\\)$`));
  await holder.done;
});
