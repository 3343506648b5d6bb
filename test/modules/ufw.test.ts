import test from 'ava';
import {mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, chmodSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {definePlaybook} from '../../src/core/task.ts';
import {q} from '../../src/core/cmd.ts';
import {localExec} from '../../src/transport/fake.ts';
import {runFake} from '../helpers/engine.ts';
import type {Plan} from '../../src/core/types.ts';
import {
  normalizeAddress,
  parseTuple,
  parseUfwProbe,
  planDefault,
  planRules,
  planState,
  ufwDefault,
  ufwRuleModule,
  ufwRules,
  ufwProbeScript,
  ufwState,
  type UfwRuleArgs,
  type UfwState,
} from '../../src/modules/ufw.ts';

/** Each step as one readable line: argv joined with spaces, or the shell snippet. */
const cmds = (p: Plan): string[] => p.steps.map((s) => (s.kind === 'exec' ? ('argv' in s.cmd ? s.cmd.argv.map(String).join(' ') : `sh: ${s.cmd.shell}`) : s.kind));

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');
/** A `### tuple ###` line as ufw 0.36 writes it. */
const tuple = (fields: string, comment?: string): string => `### tuple ### ${fields}${comment ? ` comment=${hex(comment)}` : ''}`;

/** Probe output with the given tuples (v4 and v6). */
function probeOut(o: {active?: boolean; enabled?: boolean; v4?: string[]; v6?: string[]; input?: string; ipv6?: boolean}): string {
  return [
    '@status',
    `Status: ${o.active === false ? 'inactive' : 'active'}`,
    '@conf',
    `ENABLED=${o.enabled === false ? 'no' : 'yes'}`,
    `IPV6=${o.ipv6 === false ? 'no' : 'yes'}`,
    `DEFAULT_INPUT_POLICY="${o.input ?? 'DROP'}"`,
    'DEFAULT_OUTPUT_POLICY="ACCEPT"',
    'DEFAULT_FORWARD_POLICY="DROP"',
    '@rules4',
    ...(o.v4 ?? []),
    '@rules6',
    ...(o.v6 ?? []),
    '@end',
    '',
  ].join('\n');
}
const state = (o: Parameters<typeof probeOut>[0]): UfwState => parseUfwProbe(probeOut(o));

// ---- real output, captured on mon1 (Debian 12, ufw 0.36.2) in the lab: the firewall role's rules plus
// throw-away test rules (playbooks/dev/platform-ufwtest.ts), `sudo -n sh -s < ufwProbeScript`.
const realProbe = [
  "@status",
  "Status: active",
  "",
  "To                         Action      From",
  "@conf",
  "ENABLED=yes",
  "IPV6=yes",
  "DEFAULT_INPUT_POLICY=\"DROP\"",
  "DEFAULT_OUTPUT_POLICY=\"ACCEPT\"",
  "DEFAULT_FORWARD_POLICY=\"DROP\"",
  "DEFAULT_APPLICATION_POLICY=\"SKIP\"",
  "@rules4",
  "### tuple ### allow tcp 22 0.0.0.0/0 any 10.231.0.0/24 in comment=70726f766973696f6e3a207373682066726f6d2061646d696e",
  "### tuple ### allow tcp 9090 0.0.0.0/0 any 10.231.0.0/24 in comment=70726f766973696f6e3a206d6f6e69746f72696e672070726f6d6574686575732066726f6d2061646d696e",
  "### tuple ### allow vrrp any 224.0.0.18 any 10.231.0.12 in comment=746573743a2076727270",
  "### tuple ### allow tcp 4444 0.0.0.0/0 any 0.0.0.0/0 in comment=746573743a20616e79",
  "### tuple ### allow tcp 4445 0.0.0.0/0 any 10.231.0.0/24 in comment=746573743a20686f73742062697473",
  "### tuple ### limit tcp 5000,5001 0.0.0.0/0 any 10.231.0.1 in comment=746573743a206d756c7469706f7274",
  "### tuple ### allow udp 6000:6010 0.0.0.0/0 any 10.231.0.1 in comment=746573743a2072616e6765",
  "@rules6",
  "### tuple ### allow tcp 4444 ::/0 any ::/0 in comment=746573743a20616e79",
  "@end",
  '',
].join('\n');

test('parser: real probe output of mon1', (t) => {
  const s = parseUfwProbe(realProbe);
  if (s.kind !== 'ufw') return t.fail(`kind ${s.kind}`);
  t.true(s.active);
  t.true(s.enabledAtBoot);
  t.true(s.ipv6);
  t.deepEqual(s.defaults, {incoming: 'deny', outgoing: 'allow', routed: 'deny'});
  t.is(s.rules.length, 8);
  t.deepEqual(s.rules[0], {
    action: 'allow', log: '', proto: 'tcp', dport: '22', dst: '0.0.0.0/0', sport: 'any', src: '10.231.0.0/24',
    direction: 'in', special: false, comment: 'provision: ssh from admin', v6: false,
  });
  t.like(s.rules[2], {proto: 'vrrp', dport: 'any', dst: '224.0.0.18', src: '10.231.0.12', comment: 'test: vrrp'});
  t.like(s.rules[5], {action: 'limit', dport: '5000,5001'});
  t.like(s.rules[7], {v6: true, dport: '4444', src: '::/0', comment: 'test: any'});
});

test('parser: ufw missing, ufw error, inactive with no rules', (t) => {
  t.deepEqual(parseUfwProbe('@missing\n'), {kind: 'missing'});
  const err = parseUfwProbe('@status\nERROR: You need to be root to run this script\n@conf\n@rules4\n@rules6\n@end\n');
  t.is(err.kind, 'error');
  t.regex(err.kind === 'error' ? err.message : '', /need to be root/);
  const s = state({active: false, enabled: false});
  t.like(s, {kind: 'ufw', active: false, enabledAtBoot: false, rules: []});
});

test('parser: tuples with logging, interfaces, apps, route rules, v6', (t) => {
  t.like(parseTuple('### tuple ### allow_log tcp 80 0.0.0.0/0 any 0.0.0.0/0 in', false), {action: 'allow', log: 'log', special: false});
  t.like(parseTuple('### tuple ### allow any any 0.0.0.0/0 any 0.0.0.0/0 in_eth1', false), {direction: 'in', special: true});
  t.like(parseTuple('### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in', false), {special: true});
  t.like(parseTuple('### tuple ### route:allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in', false), {action: 'allow', special: true});
  t.like(parseTuple('### tuple ### allow vrrp any 224.0.0.18 any 10.231.0.12 in', false), {proto: 'vrrp', dst: '224.0.0.18', src: '10.231.0.12'});
  t.like(parseTuple('### tuple ### allow tcp 443 ::/0 any ::/0 in', true), {v6: true, src: '::/0'});
  t.is(parseTuple('### tuple ### allow tcp', false), undefined);
});

test('the probe script reads status, config and both rule files, read-only', (t) => {
  t.regex(ufwProbeScript, /iptables -w -n -L "ufw-user-\$c"/);
  t.regex(ufwProbeScript, /user\.rules/);
  t.regex(ufwProbeScript, /user6\.rules/);
  t.notRegex(ufwProbeScript, /ufw (allow|deny|enable|disable|default|delete)/);
});

test('addresses are normalised the way ufw does', (t) => {
  t.deepEqual(normalizeAddress('10.231.0.5/24', 'x'), {family: 'v4', text: '10.231.0.0/24'});
  t.deepEqual(normalizeAddress('10.231.0.41/32', 'x'), {family: 'v4', text: '10.231.0.41'});
  t.deepEqual(normalizeAddress('172.16.200.1/12', 'x'), {family: 'v4', text: '172.16.0.0/12'});
  t.deepEqual(normalizeAddress('255.255.255.255/1', 'x'), {family: 'v4', text: '128.0.0.0/1'});
  t.deepEqual(normalizeAddress('0.0.0.0/0', 'x'), {family: 'any', text: 'any'});
  t.deepEqual(normalizeAddress('2001:DB8:0:0::1/128', 'x'), {family: 'v6', text: '2001:db8::1'});
  t.deepEqual(normalizeAddress('2001:db8::/32', 'x'), {family: 'v6', text: '2001:db8::/32'});
  t.throws(() => normalizeAddress('web1', 'from'), {message: /not an IP address/});
  t.throws(() => normalizeAddress('10.0.0.300', 'from'), {message: /bad IPv4/});
});

// ---- plans: state in, commands out

const ssh: UfwRuleArgs = {rule: 'allow', port: 22, proto: 'tcp', from: '10.231.0.0/24', comment: 'provision: ssh from admin'};
const sshTuple = tuple('allow tcp 22 0.0.0.0/0 any 10.231.0.0/24 in', 'provision: ssh from admin');
const http: UfwRuleArgs = {rule: 'allow', port: 80, proto: 'tcp', comment: 'provision: http'};
const vrrp: UfwRuleArgs = {rule: 'allow', proto: 'vrrp', from: '10.231.0.12', to: '224.0.0.18', comment: 'provision: vrrp from lb2'};

const ruleCases: {title: string; have: UfwState; rules: UfwRuleArgs[]; prune?: boolean | {commentPrefix: string}; cmds: string[]; reason?: RegExp}[] = [
  {
    title: 'missing → add (full syntax, comment)',
    have: state({}),
    rules: [ssh],
    cmds: ['ufw allow from 10.231.0.0/24 to any port 22 proto tcp comment provision: ssh from admin'],
    reason: /add allow 22\/tcp from 10\.231\.0\.0\/24/,
  },
  {
    title: 'ufw not installed yet → planned as a fresh install',
    have: {kind: 'missing'},
    rules: [ssh],
    cmds: ['ufw allow from 10.231.0.0/24 to any port 22 proto tcp comment provision: ssh from admin'],
  },
  {
    title: 'converged → nothing',
    have: state({v4: [sshTuple]}),
    rules: [ssh],
    cmds: [],
    reason: /as wanted: allow 22\/tcp from 10\.231\.0\.0\/24/,
  },
  {
    title: 'converged, the rule written with host bits and /32 forms → nothing',
    have: state({v4: [sshTuple, tuple('allow tcp 9100 0.0.0.0/0 any 10.231.0.41 in', 'n')]}),
    rules: [{...ssh, from: '10.231.0.7/24'}, {rule: 'allow', port: '9100', proto: 'tcp', from: '10.231.0.41/32', comment: 'n'}],
    cmds: [],
  },
  {
    title: 'drifted comment → re-added (ufw updates in place)',
    have: state({v4: [tuple('allow tcp 22 0.0.0.0/0 any 10.231.0.0/24 in', 'old')]}),
    rules: [ssh],
    cmds: ['ufw allow from 10.231.0.0/24 to any port 22 proto tcp comment provision: ssh from admin'],
    reason: /update .*comment 'old' → 'provision: ssh from admin'/,
  },
  {
    title: 'drifted action (deny) → re-added as allow',
    have: state({v4: [tuple('deny tcp 22 0.0.0.0/0 any 10.231.0.0/24 in', 'provision: ssh from admin')]}),
    rules: [ssh],
    cmds: ['ufw allow from 10.231.0.0/24 to any port 22 proto tcp comment provision: ssh from admin'],
    reason: /deny → allow/,
  },
  {
    title: 'a rule from anywhere needs its IPv6 copy too',
    have: state({v4: [tuple('allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in', 'provision: http')]}),
    rules: [http],
    cmds: ['ufw allow from any to any port 80 proto tcp comment provision: http'],
    reason: /IPv6 copy missing/,
  },
  {
    title: 'a rule from anywhere, both copies present → nothing',
    have: state({v4: [tuple('allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in', 'provision: http')], v6: [tuple('allow tcp 80 ::/0 any ::/0 in', 'provision: http')]}),
    rules: [http],
    cmds: [],
  },
  {
    title: 'IPV6=no: the v4 copy is enough',
    have: state({ipv6: false, v4: [tuple('allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in', 'provision: http')]}),
    rules: [http],
    cmds: [],
  },
  {
    title: 'VRRP from the peer to the multicast group: missing → add; present → nothing',
    have: state({}),
    rules: [vrrp],
    cmds: ['ufw allow from 10.231.0.12 to 224.0.0.18 proto vrrp comment provision: vrrp from lb2'],
  },
  {
    title: 'VRRP present → nothing',
    have: state({v4: [tuple('allow vrrp any 224.0.0.18 any 10.231.0.12 in', 'provision: vrrp from lb2')]}),
    rules: [vrrp],
    cmds: [],
  },
  {
    title: 'absent, present on the host → delete with the host\'s action, no comment; v4+v6 once',
    have: state({v4: [tuple('allow tcp 80 0.0.0.0/0 any 0.0.0.0/0 in', 'x')], v6: [tuple('allow tcp 80 ::/0 any ::/0 in', 'x')]}),
    rules: [{rule: 'deny', port: 80, proto: 'tcp', state: 'absent'}],
    cmds: ['ufw delete allow from any to any port 80 proto tcp'],
    reason: /delete/,
  },
  {
    title: 'absent, not there → nothing',
    have: state({v4: [sshTuple]}),
    rules: [{rule: 'allow', port: 80, proto: 'tcp', state: 'absent'}],
    cmds: [],
    reason: /absent: allow 80\/tcp/,
  },
  {
    title: 'prune by comment prefix: managed leftovers deleted after the additions, foreign rules kept',
    have: state({
      v4: [
        sshTuple,
        tuple('allow tcp 3306 0.0.0.0/0 any 10.231.0.99 in', 'provision: databases mysql from old'),
        tuple('allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in', 'added by hand'),
        tuple('allow tcp 5000 0.0.0.0/0 any 0.0.0.0/0 in'),
      ],
    }),
    rules: [ssh, {rule: 'allow', port: 3306, proto: 'tcp', from: '10.231.0.21', comment: 'provision: databases mysql from web1'}],
    prune: {commentPrefix: 'provision:'},
    cmds: [
      'ufw allow from 10.231.0.21 to any port 3306 proto tcp comment provision: databases mysql from web1',
      'ufw delete allow from 10.231.0.99 to any port 3306 proto tcp',
    ],
    reason: /prune allow 3306\/tcp from 10\.231\.0\.99/,
  },
  {
    title: 'prune: true deletes every other plain rule, never interface/app/route rules',
    have: state({
      v4: [
        sshTuple,
        tuple('allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in', 'added by hand'),
        tuple('allow any any 0.0.0.0/0 any 0.0.0.0/0 in_eth1'),
        tuple('allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in'),
      ],
      v6: [tuple('allow tcp 8080 ::/0 any ::/0 in', 'added by hand')],
    }),
    rules: [ssh],
    prune: true,
    cmds: ['ufw delete allow from any to any port 8080 proto tcp'],
  },
  {
    title: 'duplicates are merged',
    have: state({}),
    rules: [ssh, ssh],
    cmds: ['ufw allow from 10.231.0.0/24 to any port 22 proto tcp comment provision: ssh from admin'],
  },
];

for (const c of ruleCases) {
  test(`rules: ${c.title}`, (t) => {
    const p = planRules(c.have, {rules: c.rules, prune: c.prune});
    t.is(p.fail, undefined);
    t.deepEqual(cmds(p), c.cmds);
    if (c.reason) t.regex(p.reason ?? '', c.reason);
  });
}

test('rules: the real mon1 state re-planned with the rules that made it → nothing; a missing one → added', (t) => {
  const s = parseUfwProbe(realProbe);
  const rules: UfwRuleArgs[] = [
    ssh,
    {rule: 'allow', port: 9090, proto: 'tcp', from: '10.231.0.0/24', comment: 'provision: monitoring prometheus from admin'},
    {rule: 'allow', proto: 'vrrp', from: '10.231.0.12', to: '224.0.0.18', comment: 'test: vrrp'},
    {rule: 'allow', port: 4444, proto: 'tcp', comment: 'test: any'},
    {rule: 'allow', port: '4445', proto: 'tcp', from: '10.231.0.77/24', comment: 'test: host bits'},
    {rule: 'limit', port: '5000,5001', proto: 'tcp', from: '10.231.0.1', comment: 'test: multiport'},
    {rule: 'allow', port: '6000:6010', proto: 'udp', from: '10.231.0.1/32', comment: 'test: range'},
  ];
  t.deepEqual(cmds(planRules(s, {rules, prune: true})), []);
  const more = [...rules, {rule: 'allow', port: 9100, proto: 'tcp', from: '10.231.0.41', comment: 'provision: all node_exporter from mon1'} as const];
  t.deepEqual(cmds(planRules(s, {rules: more, prune: {commentPrefix: 'provision:'}})), ['ufw allow from 10.231.0.41 to any port 9100 proto tcp comment provision: all node_exporter from mon1']);
  // Pruning the test rules by their own prefix, keeping the rest.
  t.deepEqual(cmds(planRules(s, {rules: rules.slice(0, 2), prune: {commentPrefix: 'test:'}})), [
    'ufw delete allow from 10.231.0.12 to 224.0.0.18 proto vrrp',
    'ufw delete allow from any to any port 4444 proto tcp',
    'ufw delete allow from 10.231.0.0/24 to any port 4445 proto tcp',
    'ufw delete limit from 10.231.0.1 to any port 5000,5001 proto tcp',
    'ufw delete allow from 10.231.0.1 to any port 6000:6010 proto udp',
  ]);
});

test('rules: bad arguments fail the plan with the rule named', (t) => {
  const bad: [UfwRuleArgs, RegExp][] = [
    [{rule: 'allow', port: 'http', proto: 'tcp'}, /bad port 'http'/],
    [{rule: 'allow', port: 70000, proto: 'tcp'}, /out of range/],
    [{rule: 'allow', port: '80,443'}, /needs proto tcp or udp/],
    [{rule: 'allow', port: 112, proto: 'vrrp'}, /vrrp has no ports/],
    [{rule: 'allow', port: 22, proto: 'tcp', from: 'web1'}, /allow 22\/tcp from web1.*not an IP address/],
    [{rule: 'allow', port: 22, proto: 'tcp', from: '10.0.0.1', to: '::1'}, /mix IPv4 and IPv6/],
    [{rule: 'allow', port: 22, proto: 'tcp', comment: "it's"}, /single quote/],
  ];
  for (const [r, re] of bad) t.regex(planRules(state({}), {rules: [r]}).fail ?? '', re);
});

test('rules: an error from ufw (not root) fails with a hint', (t) => {
  t.regex(planRules({kind: 'error', message: 'ufw status: ERROR: You need to be root'}, {rules: [ssh]}).fail ?? '', /become/);
});

test('ufwRule: one rule, same plan', (t) => {
  t.deepEqual(cmds(ufwRuleModule.plan(state({}), ssh)), ['ufw allow from 10.231.0.0/24 to any port 22 proto tcp comment provision: ssh from admin']);
  t.deepEqual(cmds(ufwRuleModule.plan(state({v4: [sshTuple]}), ssh)), []);
  t.is(ufwRuleModule.describe(ssh), 'allow 22/tcp from 10.231.0.0/24');
});

// ---- defaults and state

test('default: missing/drifted → set; converged → nothing', (t) => {
  t.deepEqual(cmds(planDefault(state({input: 'ACCEPT'}), {direction: 'incoming', policy: 'deny'})), ['ufw default deny incoming']);
  t.regex(planDefault(state({input: 'ACCEPT'}), {direction: 'incoming', policy: 'deny'}).reason ?? '', /allow → deny/);
  t.deepEqual(cmds(planDefault(state({}), {direction: 'incoming', policy: 'deny'})), []);
  t.deepEqual(cmds(planDefault(state({}), {direction: 'outgoing', policy: 'allow'})), []);
  t.deepEqual(cmds(planDefault(state({}), {direction: 'routed', policy: 'reject'})), ['ufw default reject routed']);
  t.deepEqual(cmds(planDefault({kind: 'missing'}, {direction: 'incoming', policy: 'deny'})), []);
});

test('state: inactive → enable behind the SSH guard; active → nothing; disable', (t) => {
  const p = planState(state({active: false, enabled: false}), {enabled: true});
  t.is(p.steps.length, 1);
  const c = cmds(p)[0]!;
  t.regex(c, /^sh: /);
  t.regex(c, /grep -Eq '\^### tuple ### \(allow\|limit\)\[\^ \]\* \(tcp\|any\) 22 ' \/etc\/ufw\/user\.rules/);
  t.regex(c, /ufw --force enable/);
  t.regex(cmds(planState(state({active: false}), {enabled: true, requirePort: 2222}))[0]!, / 2222 /);
  t.deepEqual(cmds(planState(state({active: false}), {enabled: true, requirePort: false})), ['ufw --force enable']);
  t.regex(planState(state({active: false, enabled: true}), {enabled: true}).reason ?? '', /not loaded/);
  t.deepEqual(cmds(planState(state({}), {enabled: true})), []);
  t.deepEqual(cmds(planState(state({}), {enabled: false})), ['ufw disable']);
  t.deepEqual(cmds(planState(state({active: false, enabled: false}), {enabled: false})), []);
});

// ---- through the engine, with a fake `ufw` on the fake transport

/** A fake ufw: logs its arguments, keeps tuples (IPv4 only: IPV6=no) and the status in $FAKE_UFW. */
const fakeUfw = `#!/bin/sh
[ "$1" = status ] || echo "$*" >> "$FAKE_UFW/applied"
case "$1" in
  allow|deny|limit|reject)
    a=$1; shift; src=0.0.0.0/0; dst=0.0.0.0/0; port=any; proto=any; c=
    while [ $# -gt 0 ]; do case "$1" in
      from) src=$2; shift 2;; to) dst=$2; shift 2;; port) port=$2; shift 2;; proto) proto=$2; shift 2;;
      comment) c=" comment=$(printf %s "$2" | od -An -tx1 | tr -d ' \\n')"; shift 2;; *) shift;; esac; done
    [ "$src" = any ] && src=0.0.0.0/0; [ "$dst" = any ] && dst=0.0.0.0/0
    echo "### tuple ### $a $proto $port $dst any $src in$c" >> "$FAKE_UFW/etc/ufw/user.rules";;
  status) cat "$FAKE_UFW/status";;
  --force) echo 'Status: active' > "$FAKE_UFW/status"; sed -i s/ENABLED=no/ENABLED=yes/ "$FAKE_UFW/etc/ufw/ufw.conf";;
  default) sed -i "s/DEFAULT_INPUT_POLICY=.*/DEFAULT_INPUT_POLICY=\\"DROP\\"/" "$FAKE_UFW/etc/default/ufw";;
esac
`;

function fakeHost(): {dir: string; handler: (cmd: string, stdin: string | undefined) => ReturnType<typeof localExec>; applied(): string} {
  const dir = mkdtempSync(join(tmpdir(), 'prov-ufw-'));
  mkdirSync(join(dir, 'etc/ufw'), {recursive: true});
  mkdirSync(join(dir, 'etc/default'), {recursive: true});
  mkdirSync(join(dir, 'bin'));
  writeFileSync(join(dir, 'bin/ufw'), fakeUfw);
  chmodSync(join(dir, 'bin/ufw'), 0o755);
  // ufw's chains are loaded when its status says so (the probe asks iptables, as \`ufw status\` does).
  writeFileSync(join(dir, 'bin/iptables'), `#!/bin/sh\ngrep -q 'Status: active' "$FAKE_UFW/status"\n`);
  chmodSync(join(dir, 'bin/iptables'), 0o755);
  writeFileSync(join(dir, 'status'), 'Status: inactive\n');
  writeFileSync(join(dir, 'etc/ufw/ufw.conf'), 'ENABLED=no\nLOGLEVEL=low\n');
  writeFileSync(join(dir, 'etc/default/ufw'), 'IPV6=no\nDEFAULT_INPUT_POLICY="ACCEPT"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\nDEFAULT_FORWARD_POLICY="DROP"\n');
  writeFileSync(join(dir, 'etc/ufw/user.rules'), '*filter\n### RULES ###\n');
  // Every absolute /etc/ path of the probe, the plan and the guard points into the temp dir.
  const jail = (s: string): string => s.split('/etc/').join(`${dir}/etc/`);
  return {
    dir,
    handler: (cmd, stdin) => localExec(`PATH=${q(join(dir, 'bin'))}:$PATH FAKE_UFW=${q(dir)}; export PATH FAKE_UFW\n${jail(cmd)}`, stdin === undefined ? {} : {stdin: jail(stdin)}),
    applied: () => (existsSync(join(dir, 'applied')) ? readFileSync(join(dir, 'applied'), 'utf8') : ''),
  };
}

const fwPlaybook = (rules: UfwRuleArgs[]) => definePlaybook({name: 'fw', plays: [{name: 'fw', hosts: 'all_hosts', gatherFacts: false, tasks: [
  ufwDefault({direction: 'incoming', policy: 'deny'}, {name: 'default incoming'}),
  ufwRules({rules, prune: {commentPrefix: 'provision:'}}, {name: 'rules'}),
  ufwState({enabled: true}, {name: 'enabled'}),
]}]});

test('engine: missing → created (rules before enable); converged → 0 changed in one round trip; check → only the probe', async (t) => {
  const host = fakeHost();
  const pb = fwPlaybook([ssh, {rule: 'allow', port: 9100, proto: 'tcp', from: '10.231.0.41', comment: 'provision: node_exporter from mon1'}]);
  const check0 = await runFake(pb, {handler: host.handler, check: true});
  t.deepEqual(check0.results().map((r) => r.status), ['changed', 'changed', 'changed']);
  t.is(check0.transports.get('h1')!.execs.length, 1, 'check mode sends only the probe batch');
  t.is(host.applied(), '');

  const first = await runFake(pb, {handler: host.handler});
  t.deepEqual(first.results().map((r) => r.status), ['changed', 'changed', 'changed']);
  t.deepEqual(host.applied().trim().split('\n'), [
    'default deny incoming',
    'allow from 10.231.0.0/24 to any port 22 proto tcp comment provision: ssh from admin',
    'allow from 10.231.0.41 to any port 9100 proto tcp comment provision: node_exporter from mon1',
    '--force enable',
  ]);

  const second = await runFake(pb, {handler: host.handler});
  t.deepEqual(second.results().map((r) => r.status), ['ok', 'ok', 'ok']);
  t.is(second.transports.get('h1')!.execs.length, 1, 'one probe batch, nothing applied');

  // Drift: the node_exporter source changed in the inventory → the new rule is added, the old one pruned.
  const before = host.applied().length;
  const moved = await runFake(fwPlaybook([ssh, {rule: 'allow', port: 9100, proto: 'tcp', from: '10.231.0.42', comment: 'provision: node_exporter from mon2'}]), {handler: host.handler});
  t.deepEqual(moved.results().map((r) => r.status), ['ok', 'changed', 'ok']);
  t.deepEqual(host.applied().slice(before).trim().split('\n'), [
    'allow from 10.231.0.42 to any port 9100 proto tcp comment provision: node_exporter from mon2',
    'delete allow from 10.231.0.41 to any port 9100 proto tcp',
  ]);
});

test('engine: enabling without an SSH rule is refused on the host', async (t) => {
  const host = fakeHost();
  const pb = definePlaybook({name: 'fw', plays: [{name: 'fw', hosts: 'all_hosts', gatherFacts: false, tasks: [ufwState({enabled: true}, {name: 'enabled'})]}]});
  const run = await runFake(pb, {handler: host.handler});
  t.deepEqual(run.results().map((r) => r.status), ['failed']);
  t.regex(run.results()[0]!.msg, /refusing to enable ufw: no allow rule for port 22\/tcp/);
  t.false(host.applied().includes('enable'));
});
