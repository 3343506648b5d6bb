/**
 * `ufw`: the host firewall. Four task types over one probe:
 * - `ufwRule`: one rule present or absent;
 * - `ufwRules`: a set of rules, optionally pruning the rules it manages that are no longer wanted;
 * - `ufwDefault`: the default policy of one direction;
 * - `ufwState`: enabled (loaded now and at boot) or disabled.
 *
 * The probe (run as root: ufw refuses otherwise) reads whether ufw's chains are in iptables (what
 * `ufw status` reports as active),
 * `/etc/ufw/ufw.conf` (enabled at boot?), `/etc/default/ufw` (default policies, IPv6) and the rule
 * tuples ufw keeps in `/etc/ufw/user.rules` and `user6.rules` (`### tuple ### allow tcp 22 0.0.0.0/0
 * any 10.0.0.0/24 in comment=<hex>`): exact fields, one line per address family, whether ufw is
 * enabled or not. Every task uses the same probe script, so a play probes ufw once.
 *
 * Rules are compared the way ufw itself matches them: by protocol, ports, addresses and direction,
 * after ufw's normalisation (`10.0.0.5/24` → `10.0.0.0/24`, `/32` dropped, IPv6 compressed); a rule
 * that matches but has another action or comment is re-added, which ufw turns into an in-place update.
 */
import {argv, type Cmd} from '../core/cmd.ts';
import {makeTask, type ArgsOf} from '../core/task.ts';
import {z, type Exact} from '../core/validate.ts';
import type {ModuleDef, Plan, Probe, Step, Task, TaskOptions} from '../core/types.ts';
import {group} from '../shared/match.ts';

export type UfwAction = 'allow' | 'deny' | 'reject' | 'limit';
/** Protocols ufw 0.36 knows; the ones after `udp` have no ports. */
export type UfwProto = 'any' | 'tcp' | 'udp' | 'vrrp' | 'esp' | 'ah' | 'gre' | 'igmp' | 'ipv6';
export type UfwPolicy = 'allow' | 'deny' | 'reject';
export type UfwDirection = 'incoming' | 'outgoing' | 'routed';

const ufwAction = z.enum(['allow', 'deny', 'reject', 'limit']);
const ufwProto = z.enum(['any', 'tcp', 'udp', 'vrrp', 'esp', 'ah', 'gre', 'igmp', 'ipv6']);
const ufwPolicy = z.enum(['allow', 'deny', 'reject']);
const ufwDirection = z.enum(['incoming', 'outgoing', 'routed']);

const portless: readonly UfwProto[] = ['vrrp', 'esp', 'ah', 'gre', 'igmp', 'ipv6'];

export interface UfwRuleArgs {
  /** What the rule does with matching packets (`limit`: allow, but refuse a source after 6 connections in 30 s). */
  readonly rule: UfwAction;
  /** Destination port: `22`, `'8000:8100'` (a range, needs `proto`), `'80,443'` (a list, needs `proto`). Unset: every port. */
  readonly port?: number | string;
  /** Protocol (default `any`). `vrrp`, `esp`, `ah`, `gre`, `igmp`, `ipv6` take no port. */
  readonly proto?: UfwProto;
  /** Source address or CIDR network (`10.0.0.5`, `10.0.0.0/24`, `2001:db8::/32`); default `any`. */
  readonly from?: string;
  /** Destination address or network (`224.0.0.18` for VRRP); default `any`. */
  readonly to?: string;
  /** Incoming (default) or outgoing traffic. */
  readonly direction?: 'in' | 'out';
  /** A note stored with the rule (`ufw status` shows it). No single quotes. */
  readonly comment?: string;
  /** `present` (default) or `absent`. */
  readonly state?: 'present' | 'absent';
}

const ufwRuleArgs = z.strictObject({
  rule: ufwAction,
  port: z.optional(z.union([z.int(), z.string()])),
  proto: z.optional(ufwProto),
  from: z.optional(z.string()),
  to: z.optional(z.string()),
  direction: z.optional(z.enum(['in', 'out'])),
  comment: z.optional(z.string()),
  state: z.optional(z.enum(['present', 'absent'])),
});
const ufwRuleInSync: Exact<z.infer<typeof ufwRuleArgs>, UfwRuleArgs> = true;

export interface UfwRulesArgs {
  /** The rules wanted. Duplicates (same match, same action) are merged. */
  readonly rules: readonly UfwRuleArgs[];
  /**
   * Delete rules found on the host that none of `rules` matches: `false` (default) keeps them;
   * `{commentPrefix}` deletes only those whose comment starts with the prefix (the rules this task
   * set manages, tagged through their comments); `true` deletes every other plain rule (rules with
   * an interface, an application profile or route rules are never touched).
   */
  readonly prune?: boolean | {readonly commentPrefix: string};
}

const ufwRulesArgs = z.strictObject({
  rules: z.array(ufwRuleArgs),
  prune: z.optional(z.union([z.boolean(), z.strictObject({commentPrefix: z.string()})])),
});
const ufwRulesInSync: Exact<z.infer<typeof ufwRulesArgs>, UfwRulesArgs> = true;

export interface UfwDefaultArgs {
  readonly direction: UfwDirection;
  readonly policy: UfwPolicy;
}

const ufwDefaultArgs = z.strictObject({direction: ufwDirection, policy: ufwPolicy});
const ufwDefaultInSync: Exact<z.infer<typeof ufwDefaultArgs>, UfwDefaultArgs> = true;

export interface UfwStateArgs {
  /** Loaded now and at boot (`ufw --force enable`), or not (`ufw disable`). */
  readonly enabled: boolean;
  /**
   * Before enabling, check on the host (at apply time, not in the plan) that an `allow` or `limit`
   * rule opens this TCP port, and refuse to enable otherwise: a guard against locking out SSH.
   * Default 22; `false` skips the check.
   */
  readonly requirePort?: number | false;
}

const ufwStateArgs = z.strictObject({
  enabled: z.boolean(),
  requirePort: z.optional(z.union([z.int(), z.literal(false)])),
});
const ufwStateInSync: Exact<z.infer<typeof ufwStateArgs>, UfwStateArgs> = true;

/** One rule as ufw stores it (one per address family), from a `### tuple ###` line. */
export interface UfwTuple {
  /** `allow`, `deny`, `reject`, `limit`. */
  readonly action: string;
  /** Logging suffix of the action (`log`, `log-all`), or ''. */
  readonly log: string;
  /** `any`, `tcp`, `udp`, `vrrp`, … */
  readonly proto: string;
  readonly dport: string;
  /** `0.0.0.0/0` or `::/0` for anywhere. */
  readonly dst: string;
  readonly sport: string;
  readonly src: string;
  /** `in` or `out`. */
  readonly direction: string;
  /** Interface field (`in_eth0`), application names, or route: rules this module never builds. */
  readonly special: boolean;
  /** Decoded comment, '' when none. */
  readonly comment: string;
  /** From user6.rules. */
  readonly v6: boolean;
}

export type UfwState =
  /** The `ufw` command is not installed. */
  | {readonly kind: 'missing'}
  /** ufw answered with an error (e.g. not run as root). */
  | {readonly kind: 'error'; readonly message: string}
  | {
      readonly kind: 'ufw';
      /** `ufw status` says active: the rules are loaded in the kernel. */
      readonly active: boolean;
      /** `ENABLED=yes` in /etc/ufw/ufw.conf: loaded at boot. */
      readonly enabledAtBoot: boolean;
      /** `IPV6=yes` in /etc/default/ufw: rules from/to anywhere get an IPv6 copy. */
      readonly ipv6: boolean;
      /** Default policies; undefined when the file does not say. */
      readonly defaults: Readonly<Partial<Record<UfwDirection, UfwPolicy>>>;
      readonly rules: readonly UfwTuple[];
    };

// ---------------------------------------------------------------- probe

/** The one probe of every ufw task: sections fenced by `@name` lines. */
export const ufwProbeScript = [
  '(',
  'if ! command -v ufw >/dev/null 2>&1 && [ ! -x /usr/sbin/ufw ]; then echo @missing; exit 0; fi',
  'PATH=$PATH:/usr/sbin:/sbin',
  // Loaded or not, as `ufw status` decides it (its user chains exist), without starting ufw's Python:
  // that took ~50 ms of CPU per host on every probe batch.
  'echo @status',
  'if [ "$(id -u)" != 0 ]; then echo "ERROR: You need to be root to run this script"; else',
  's=active; for c in input output forward; do iptables -w -n -L "ufw-user-$c" >/dev/null 2>&1 || { s=inactive; break; }; done; echo "Status: $s"',
  'fi',
  'echo @conf',
  "grep -E '^(ENABLED|IPV6|DEFAULT_[A-Z]+_POLICY)=' /etc/ufw/ufw.conf /etc/default/ufw 2>/dev/null | sed 's/^[^:]*://'",
  'echo @rules4',
  "grep '^### tuple ###' /etc/ufw/user.rules 2>/dev/null",
  'echo @rules6',
  "grep '^### tuple ###' /etc/ufw/user6.rules 2>/dev/null",
  'echo @end',
  'true',
  ')',
].join('\n');

function hexDecode(hex: string): string {
  return /^[0-9a-fA-F]*$/.test(hex) && hex.length % 2 === 0 ? Buffer.from(hex, 'hex').toString('utf8') : hex;
}

/** Pure parser of one `### tuple ### ...` line (ufw's `_read_rules`), or undefined when malformed. */
export function parseTuple(line: string, v6: boolean): UfwTuple | undefined {
  let body = line.replace(/^### tuple ###\s*/, '');
  let comment = '';
  const c = body.indexOf(' comment=');
  if (c >= 0) {
    comment = hexDecode(body.slice(c + ' comment='.length).trim());
    body = body.slice(0, c);
  }
  const f = body.trim().split(/\s+/);
  if (f.length < 6 || f.length > 9) return undefined;
  const [rawAction = '', proto = '', dport = '', dst = '', sport = '', src = '', ...rest] = f; // six there
  const route = rawAction.includes(':');
  const [, routeAction = ''] = rawAction.split(':');
  const act = route ? routeAction : rawAction;
  const [action = '', ...logParts] = act.split('_');
  // 6 fields: old format (in); 7: + direction/interface; 8: + apps (old); 9: + apps + direction/interface.
  const [ifaces = 'in'] = rest.length === 1 || rest.length === 3 ? rest.slice(-1) : [];
  const apps = rest.length >= 2 ? rest.slice(0, 2) : ['-', '-'];
  const [dirAndIface = ''] = ifaces.split('_');
  const [direction = ''] = dirAndIface.split('!');
  const special = route || ifaces.includes('_') || apps.some((a) => a !== '-');
  return {action, log: logParts.join('_'), proto, dport, dst, sport, src, direction, special, comment, v6};
}

function policyOf(word: string): UfwPolicy | undefined {
  return ({DROP: 'deny', ACCEPT: 'allow', REJECT: 'reject'} as Record<string, UfwPolicy>)[word.replace(/"/g, '')];
}

/** Pure parser of `ufwProbeScript`'s output. */
export function parseUfwProbe(stdout: string): UfwState {
  const sections = new Map<string, string[]>();
  let cur: string[] | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^@(\w+)$/.exec(line);
    if (m) sections.set(group(m, 1), (cur = []));
    else cur?.push(line);
  }
  if (sections.has('missing')) return {kind: 'missing'};
  const status = (sections.get('status') ?? []).filter((l) => l.trim() !== '');
  const statusLine = status.find((l) => /^Status:/.test(l));
  if (!statusLine) return {kind: 'error', message: `ufw status: ${status.join(' ').trim() || 'no answer'}`};
  const conf = new Map<string, string>();
  for (const l of sections.get('conf') ?? []) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(l.trim());
    if (m) conf.set(group(m, 1), group(m, 2).replace(/^["']|["']$/g, '').trim());
  }
  const defaults: Partial<Record<UfwDirection, UfwPolicy>> = {};
  const pol = (k: string, d: UfwDirection): void => {
    const p = conf.has(k) ? policyOf(conf.get(k)!) : undefined;
    if (p) defaults[d] = p;
  };
  pol('DEFAULT_INPUT_POLICY', 'incoming');
  pol('DEFAULT_OUTPUT_POLICY', 'outgoing');
  pol('DEFAULT_FORWARD_POLICY', 'routed');
  const rules: UfwTuple[] = [];
  for (const [name, v6] of [['rules4', false], ['rules6', true]] as const) {
    for (const l of sections.get(name) ?? []) {
      if (!l.startsWith('### tuple ###')) continue;
      const t = parseTuple(l, v6);
      if (t) rules.push(t);
    }
  }
  return {
    kind: 'ufw',
    active: /^Status:\s*active\b/.test(statusLine),
    enabledAtBoot: (conf.get('ENABLED') ?? 'no').toLowerCase() === 'yes',
    ipv6: (conf.get('IPV6') ?? 'yes').toLowerCase() === 'yes',
    defaults,
    rules,
  };
}

const probe: Probe<UfwState> = {script: ufwProbeScript, parse: (out) => parseUfwProbe(out.stdout)};

// ---------------------------------------------------------------- normalisation

type Family = 'any' | 'v4' | 'v6';
interface Addr {
  readonly family: Family;
  /** ufw's form: 'any', `10.0.0.0/24`, `10.0.0.5`, `2001:db8::1`. */
  readonly text: string;
}

const v4Re = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?:\/(\d{1,2}))?$/;

/** An address as ufw normalises it (`util.normalize_address`); throws on nonsense. */
export function normalizeAddress(raw: string, field: string): Addr {
  const s = raw.trim().toLowerCase();
  if (s === '' || s === 'any' || s === '0.0.0.0/0' || s === '::/0') return {family: 'any', text: 'any'};
  const m = v4Re.exec(s);
  if (m) {
    const octets = m.slice(1, 5).map(Number);
    const bits = m[5] === undefined ? 32 : Number(m[5]);
    if (octets.some((o) => o > 255) || bits > 32) throw new Error(`${field}: bad IPv4 address '${raw}'`);
    if (bits === 32) return {family: 'v4', text: octets.join('.')};
    // The network address (ufw's `_address4_to_network`), in arithmetic: JS bitwise ops are signed 32-bit.
    const n = octets.reduce((a, o) => a * 256 + o, 0);
    const net = n - (n % 2 ** (32 - bits));
    const o = [24, 16, 8, 0].map((sh) => Math.floor(net / 2 ** sh) % 256);
    return {family: 'v4', text: `${o.join('.')}/${bits}`};
  }
  if (s.includes(':')) {
    const [addr, bits, extra] = s.split('/');
    if (extra !== undefined || (bits !== undefined && !/^\d{1,3}$/.test(bits)) || Number(bits) > 128) throw new Error(`${field}: bad IPv6 address '${raw}'`);
    let host: string;
    try {
      host = new URL(`http://[${addr}]/`).hostname.replace(/^\[|\]$/g, '');
    } catch {
      throw new Error(`${field}: bad IPv6 address '${raw}'`);
    }
    return {family: 'v6', text: bits === undefined || bits === '128' ? host : `${host}/${bits}`};
  }
  throw new Error(`${field}: '${raw}' is not an IP address or CIDR network (host names are not resolved)`);
}

/** A wanted rule, normalised and checked. */
export interface NormRule {
  readonly action: UfwAction;
  readonly proto: UfwProto;
  /** 'any' or the port spec as ufw stores it. */
  readonly dport: string;
  readonly src: Addr;
  readonly dst: Addr;
  readonly direction: 'in' | 'out';
  readonly comment: string;
  readonly state: 'present' | 'absent';
}

const protos: readonly UfwProto[] = ['any', 'tcp', 'udp', 'vrrp', 'esp', 'ah', 'gre', 'igmp', 'ipv6'];

/** Check and normalise rule arguments; throws with a message naming the rule. */
export function normalizeRule(a: UfwRuleArgs): NormRule {
  const what = describeArgs(a);
  if (!['allow', 'deny', 'reject', 'limit'].includes(a.rule)) throw new Error(`ufw rule '${what}': unknown action '${a.rule}'`);
  const proto = a.proto ?? 'any';
  if (!protos.includes(proto)) throw new Error(`ufw rule '${what}': unknown protocol '${proto}'`);
  let dport = 'any';
  if (a.port !== undefined && a.port !== '') {
    dport = String(a.port).replace(/\s+/g, '');
    if (!/^\d+(?::\d+)?(?:,\d+(?::\d+)?)*$/.test(dport)) throw new Error(`ufw rule '${what}': bad port '${a.port}' (numbers, ranges a:b, lists a,b)`);
    if (dport.split(/[,:]/).some((p) => Number(p) < 1 || Number(p) > 65535)) throw new Error(`ufw rule '${what}': port out of range`);
    if (portless.includes(proto)) throw new Error(`ufw rule '${what}': protocol ${proto} has no ports`);
    if (/[,:]/.test(dport) && proto !== 'tcp' && proto !== 'udp') throw new Error(`ufw rule '${what}': a port range or list needs proto tcp or udp`);
  }
  const src = normalizeAddress(a.from ?? 'any', `ufw rule '${what}': from`);
  const dst = normalizeAddress(a.to ?? 'any', `ufw rule '${what}': to`);
  if (src.family !== 'any' && dst.family !== 'any' && src.family !== dst.family) throw new Error(`ufw rule '${what}': from and to mix IPv4 and IPv6`);
  const comment = a.comment ?? '';
  if (comment.includes("'")) throw new Error(`ufw rule '${what}': a comment cannot hold a single quote`);
  return {action: a.rule, proto, dport, src, dst, direction: a.direction ?? 'in', comment, state: a.state ?? 'present'};
}

/** The tuples ufw stores for a rule: one per address family. */
function familiesOf(r: NormRule, ipv6: boolean): ('v4' | 'v6')[] {
  const fam = r.src.family !== 'any' ? r.src.family : r.dst.family;
  if (fam === 'v4' || fam === 'v6') return [fam];
  return ipv6 ? ['v4', 'v6'] : ['v4'];
}

const anyOf = (v6: boolean): string => (v6 ? '::/0' : '0.0.0.0/0');
const tupleAddr = (a: Addr, v6: boolean): string => (a.family === 'any' ? anyOf(v6) : a.text);
const showAddr = (t: string): string => (t === '0.0.0.0/0' || t === '::/0' ? 'any' : t);

/** ufw's match key: everything but action, logging and comment. */
function tupleKey(t: Pick<UfwTuple, 'proto' | 'dport' | 'dst' | 'sport' | 'src' | 'direction' | 'v6'>): string {
  return [t.v6 ? '6' : '4', t.direction, t.proto, t.dport, t.dst, t.sport, t.src].join(' ');
}

function wantedKey(r: NormRule, v6: boolean): string {
  return tupleKey({v6, direction: r.direction, proto: r.proto, dport: r.dport, dst: tupleAddr(r.dst, v6), sport: 'any', src: tupleAddr(r.src, v6)});
}

/** The ufw command words of a rule (full syntax, as `ufw show added` prints it). */
function ruleWords(action: string, direction: string, src: string, dst: string, dport: string, proto: string, comment: string): string[] {
  return [
    action,
    ...(direction === 'out' ? ['out'] : []),
    'from', src, 'to', dst,
    ...(dport !== 'any' ? ['port', dport] : []),
    ...(proto !== 'any' ? ['proto', proto] : []),
    ...(comment !== '' ? ['comment', comment] : []),
  ];
}

function addCmd(r: NormRule): Cmd {
  return argv('ufw', ...ruleWords(r.action, r.direction, r.src.text, r.dst.text, r.dport, r.proto, r.comment));
}

function deleteCmd(t: UfwTuple): Cmd {
  // Without the comment: ufw deletes a rule that matches in everything but its comment.
  return argv('ufw', 'delete', ...ruleWords(t.log ? `${t.action} ${t.log}` : t.action, t.direction, showAddr(t.src), showAddr(t.dst), t.dport, t.proto, '').flatMap((w) => w.split(' ')));
}

/** `allow 22/tcp from 10.0.0.0/24` (for labels and reasons). */
export function describeRule(r: NormRule): string {
  const port = r.dport === 'any' ? (r.proto === 'any' ? 'any' : r.proto) : r.proto === 'any' ? r.dport : `${r.dport}/${r.proto}`;
  return `${r.action}${r.direction === 'out' ? ' out' : ''} ${port} from ${r.src.text}${r.dst.family === 'any' ? '' : ` to ${r.dst.text}`}`;
}

function describeArgs(a: UfwRuleArgs): string {
  const port = a.port === undefined ? (a.proto ?? 'any') : a.proto && a.proto !== 'any' ? `${a.port}/${a.proto}` : String(a.port);
  return `${a.rule} ${port} from ${a.from ?? 'any'}${a.to && a.to !== 'any' ? ` to ${a.to}` : ''}`;
}

function describeTuple(t: UfwTuple): string {
  const port = t.dport === 'any' ? (t.proto === 'any' ? 'any' : t.proto) : t.proto === 'any' ? t.dport : `${t.dport}/${t.proto}`;
  const dst = showAddr(t.dst);
  return `${t.action}${t.direction === 'out' ? ' out' : ''} ${port} from ${showAddr(t.src)}${dst === 'any' ? '' : ` to ${dst}`}`;
}

// ---------------------------------------------------------------- plans

type Ready = Extract<UfwState, {kind: 'ufw'}>;

/** The state to plan against: a missing ufw is planned as a fresh install (defaults of Debian's package). */
function ready(have: UfwState): Ready | {fail: string} {
  if (have.kind === 'error') return {fail: `${have.message} (ufw needs root: run the task with become)`};
  if (have.kind === 'missing') return {kind: 'ufw', active: false, enabledAtBoot: false, ipv6: true, defaults: {incoming: 'deny', outgoing: 'allow', routed: 'deny'}, rules: []};
  return have;
}

/** Plan a set of rules; exported for tests. */
export function planRules(have: UfwState, a: UfwRulesArgs): Plan {
  const st = ready(have);
  if ('fail' in st) return {steps: [], fail: st.fail};
  let wanted: NormRule[];
  try {
    wanted = a.rules.map(normalizeRule);
  } catch (e) {
    return {steps: [], fail: (e as Error).message};
  }
  const existing = new Map<string, UfwTuple>();
  for (const t of st.rules) if (!t.special) existing.set(tupleKey(t), t);

  // Later entries win over earlier ones with the same match (as ufw would update in place).
  const byKey = new Map<string, NormRule>();
  for (const r of wanted) byKey.set(familiesOf(r, st.ipv6).map((v) => wantedKey(r, v === 'v6')).join('|'), r);

  const adds: Step[] = [];
  const dels: Step[] = [];
  const deleted = new Set<string>();
  const why: string[] = [];
  const ok: string[] = [];
  const keep = new Set<string>();
  const del = (t: UfwTuple): void => {
    const cmd = deleteCmd(t);
    const k = JSON.stringify(cmd);
    if (deleted.has(k)) return;
    deleted.add(k);
    dels.push({kind: 'exec', cmd});
  };
  for (const r of byKey.values()) {
    const keys = familiesOf(r, st.ipv6).map((v) => wantedKey(r, v === 'v6'));
    const found = keys.map((k) => existing.get(k));
    if (r.state === 'absent') {
      const present = found.filter((t): t is UfwTuple => t !== undefined);
      if (present.length === 0) ok.push(`absent: ${describeRule(r)}`);
      else {
        present.forEach(del);
        why.push(`delete ${describeRule(r)}`);
      }
      continue;
    }
    keys.forEach((k) => keep.add(k));
    if (found.some((t) => t === undefined)) {
      adds.push({kind: 'exec', cmd: addCmd(r)});
      why.push(`add ${describeRule(r)}${found.some((t) => t !== undefined) ? ' (IPv6 copy missing)' : ''}`);
    } else if (found.some((t) => t!.action !== r.action || t!.log !== '' || t!.comment !== r.comment)) {
      const t = found.find((x) => x!.action !== r.action || x!.log !== '' || x!.comment !== r.comment)!;
      adds.push({kind: 'exec', cmd: addCmd(r)});
      const what = t.action !== r.action || t.log !== '' ? `${t.action}${t.log ? `_${t.log}` : ''} → ${r.action}` : `comment '${t.comment}' → '${r.comment}'`;
      why.push(`update ${describeRule(r)} (${what})`);
    } else ok.push(describeRule(r));
  }
  if (a.prune) {
    const prefix = typeof a.prune === 'object' ? a.prune.commentPrefix : undefined;
    for (const t of st.rules) {
      if (t.special || keep.has(tupleKey(t))) continue;
      if (prefix !== undefined && !t.comment.startsWith(prefix)) continue;
      const before = dels.length;
      del(t);
      if (dels.length > before) why.push(`prune ${describeTuple(t)}${t.comment ? ` ('${t.comment}')` : ''}`);
    }
  }
  // Additions first: a rule being replaced by another never leaves a gap.
  const steps = [...adds, ...dels];
  if (steps.length > 0) return {steps, reason: why.join('; ')};
  return {steps, reason: ok.length > 0 ? `${ok.length} rule(s) as wanted: ${ok.join(', ')}` : 'no rules wanted'};
}

export function planDefault(have: UfwState, a: UfwDefaultArgs): Plan {
  const st = ready(have);
  if ('fail' in st) return {steps: [], fail: st.fail};
  if (!['incoming', 'outgoing', 'routed'].includes(a.direction)) return {steps: [], fail: `ufw default: unknown direction '${a.direction}'`};
  if (!['allow', 'deny', 'reject'].includes(a.policy)) return {steps: [], fail: `ufw default: unknown policy '${a.policy}'`};
  const cur = st.defaults[a.direction];
  if (cur === a.policy) return {steps: [], reason: `already ${a.policy} (${a.direction})`};
  return {steps: [{kind: 'exec', cmd: argv('ufw', 'default', a.policy, a.direction)}], reason: `default ${a.direction}: ${cur ?? 'unset'} → ${a.policy}`};
}

/** The shell guard of `requirePort`: an allow/limit rule for PORT over tcp or any protocol, IPv4. */
function guardScript(port: number): string {
  const re = `^### tuple ### (allow|limit)[^ ]* (tcp|any) ${port} `;
  // One line: a failure message shows the whole command, then ufw's (or the guard's) stderr.
  return `grep -Eq '${re}' /etc/ufw/user.rules || { echo 'refusing to enable ufw: no allow rule for port ${port}/tcp (it would cut SSH)' >&2; exit 1; }; ufw --force enable`;
}

export function planState(have: UfwState, a: UfwStateArgs): Plan {
  const st = ready(have);
  if ('fail' in st) return {steps: [], fail: st.fail};
  if (a.enabled) {
    if (st.active && st.enabledAtBoot) return {steps: [], reason: 'already active and enabled at boot'};
    const port = a.requirePort ?? 22;
    const cmd: Cmd = port === false ? argv('ufw', '--force', 'enable') : {shell: guardScript(port)};
    const what = st.enabledAtBoot ? 'enabled at boot but not loaded: enable' : 'enable';
    return {steps: [{kind: 'exec', cmd}], reason: what};
  }
  if (!st.active && !st.enabledAtBoot) return {steps: [], reason: 'already disabled'};
  return {steps: [{kind: 'exec', cmd: argv('ufw', 'disable')}], reason: 'disable'};
}

// ---------------------------------------------------------------- modules and tasks

export const ufwRulesModule: ModuleDef<UfwRulesArgs, UfwState> = {
  name: 'ufw.rules',
  schema: ufwRulesArgs,
  describe: (a) => `${a.rules.length} rule(s)${a.prune ? ', prune' : ''}`,
  probe: () => probe,
  plan: planRules,
};

export const ufwRuleModule: ModuleDef<UfwRuleArgs, UfwState> = {
  name: 'ufw.rule',
  schema: ufwRuleArgs,
  describe: (a) => `${describeArgs(a)}${a.state === 'absent' ? ' (absent)' : ''}`,
  probe: () => probe,
  plan: (have, a) => planRules(have, {rules: [a]}),
};

export const ufwDefaultModule: ModuleDef<UfwDefaultArgs, UfwState> = {
  name: 'ufw.default',
  schema: ufwDefaultArgs,
  describe: (a) => `${a.direction} ${a.policy}`,
  probe: () => probe,
  plan: planDefault,
};

export const ufwStateModule: ModuleDef<UfwStateArgs, UfwState> = {
  name: 'ufw.state',
  schema: ufwStateArgs,
  describe: (a) => (a.enabled ? 'enabled' : 'disabled'),
  probe: () => probe,
  plan: planState,
};

/** One ufw rule present or absent: `ufwRule({rule: 'allow', port: 22, proto: 'tcp', from: '10.0.0.0/24'})`. */
export const ufwRule = (args: ArgsOf<UfwRuleArgs>, options?: TaskOptions): Task => makeTask(ufwRuleModule, args, options);
/** A set of ufw rules, optionally pruning the managed rules no longer wanted. */
export const ufwRules = (args: ArgsOf<UfwRulesArgs>, options?: TaskOptions): Task => makeTask(ufwRulesModule, args, options);
/** ufw's default policy for one direction. */
export const ufwDefault = (args: ArgsOf<UfwDefaultArgs>, options?: TaskOptions): Task => makeTask(ufwDefaultModule, args, options);
/** ufw enabled (loaded now and at boot) or disabled. */
export const ufwState = (args: ArgsOf<UfwStateArgs>, options?: TaskOptions): Task => makeTask(ufwStateModule, args, options);

void [ufwRuleInSync, ufwRulesInSync, ufwDefaultInSync, ufwStateInSync];
