import test from 'ava';
import {execFileSync} from 'node:child_process';
import type {Plan} from '../../src/core/types.ts';
import {APT_UPDATE_SCRIPT, aptModule, aptProbeScript, parseAptProbe, parsePolicy, parseSpecs, type AptArgs, type AptState} from '../../src/modules/apt.ts';

/** Each step's argv joined with spaces (readable; quoting is cmd.ts's business). */
const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind !== 'exec' ? s.kind : 'argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : s.cmd.shell));

const install = 'env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold';
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
    cmds: ['env DEBIAN_FRONTEND=noninteractive apt-get remove -y -q nginx'],
    reason: /remove nginx/,
  },
  {
    title: 'absent + purge: config-files left → purge',
    have: state({nginx: {kind: 'config-files', version: '1'}}),
    args: {packages: ['nginx'], state: 'absent', purge: true},
    cmds: ['env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q nginx'],
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

test('apt probe script is valid sh and reads this host', (t) => {
  for (const [names, policy] of [[[], false], [['bash'], false], [['bash', 'nosuchpkg-xyz', 'libc6:amd64'], true]] as const) {
    const script = aptProbeScript(names, policy);
    t.notThrows(() => execFileSync('sh', ['-n', '-c', script]));
  }
  let dpkg = true;
  try {
    execFileSync('sh', ['-c', 'command -v dpkg-query'], {stdio: 'ignore'});
  } catch {
    dpkg = false;
  }
  const a: AptArgs = {packages: ['bash', 'nosuchpkg-xyz']};
  const probe = aptModule.probe!(a);
  const stdout = execFileSync('sh', ['-c', probe.script], {encoding: 'utf8', timeout: 10_000});
  const s = probe.parse({stdout, code: 0});
  t.deepEqual(s.packages['nosuchpkg-xyz'], {kind: 'missing'});
  if (!dpkg) return t.pass('no dpkg here');
  t.is(s.packages.bash.kind, 'installed');
  t.true(s.cacheAge === null || s.cacheAge >= 0);
  const plan = aptModule.plan(s, a);
  t.deepEqual(cmds(plan).at(-1), `${install} nosuchpkg-xyz`);
  t.is(aptModule.plan(s, {packages: 'bash'}).reason, 'all present: bash');
});
