/**
 * ufw on every host: default deny incoming / allow outgoing, SSH from `admin_network` first, then the
 * rules of every group the host is in, computed from the inventory, and only then enabled (refusing to
 * enable when no rule opens SSH).
 *
 * Rules per group come from the variable `firewall_rules_<group>` (every group of the host, `all`
 * included): a list of
 *   {port?, proto?, from, to?, rule?, comment}
 * where `from` (a string or a list) is `any`, `admin_network`, `group:NAME` (the `ansible_host` of every
 * host of that group but this one) or an address/CIDR; `to` is `any` (default), an address, `self` (this
 * host's address) or `vrrp` (224.0.0.18, or `self` when `keepalived_unicast` is true); `port` is a
 * number, a range/list string, or the name of a variable holding the port (`haproxy_stats_port`).
 *
 * The rules this role adds carry a comment starting with `firewall_comment_prefix` and, with
 * `firewall_prune` (default true), a rule with that prefix that is no longer wanted is deleted: the
 * role owns its rules and leaves rules added by hand or by other roles alone.
 */
import {defineRole, apt, ufwDefault, ufwRules, ufwState, type TaskContext, type UfwRuleArgs} from '../../src/index.ts';

type Proto = NonNullable<UfwRuleArgs['proto']>;

/** One entry of a `firewall_rules_<group>` list, as written in vars (YAML or TS). */
export interface RuleSpec {
  readonly port?: number | string;
  readonly proto?: Proto;
  readonly from: string | readonly string[];
  readonly to?: string;
  readonly rule?: UfwRuleArgs['rule'];
  readonly comment: string;
}

/** A list of rules, typed as RuleSpec (for the role's defaults). */
const ruleList = (rules: readonly RuleSpec[]): readonly RuleSpec[] => rules;

const fail = (msg: string): never => {
  throw new Error(msg);
};

function list(v: unknown): string[] {
  if (v === undefined || v === null || v === '') return [];
  return (Array.isArray(v) ? v : [v]).map(String).filter((s) => s !== '');
}

/** The address of an inventory host: `ansible_host`, else its default IPv4 address from the facts. */
function addressOf(ctx: TaskContext, host: string): string {
  const hv = ctx.hostvars(host);
  const a = hv.ansible_host ?? hv.facts?.defaultIpv4?.address;
  return a ? String(a) : fail(`firewall: host '${host}' has no ansible_host (and no facts): cannot build its rules`);
}

/** `from` words to (label, address) pairs. */
function sources(ctx: TaskContext, from: RuleSpec['from'], where: string): {label: string; address: string}[] {
  const out: {label: string; address: string}[] = [];
  for (const w of list(from)) {
    if (w === 'any') out.push({label: 'any', address: 'any'});
    else if (w === 'admin_network') {
      const nets = list(ctx.vars.admin_network);
      if (nets.length === 0) fail(`firewall: ${where}: admin_network is not set`);
      for (const n of nets) out.push({label: 'admin', address: n});
    } else if (w.startsWith('group:')) {
      const g = w.slice('group:'.length);
      const members = ctx.groups[g] ?? fail(`firewall: ${where}: no group '${g}' in the inventory`);
      for (const h of members) if (h !== ctx.host) out.push({label: h, address: addressOf(ctx, h)});
    } else out.push({label: w, address: w});
  }
  return out;
}

function destination(ctx: TaskContext, to: string | undefined): string {
  const unicast = ctx.vars.keepalived_unicast === true || ctx.vars.keepalived_unicast === 'true';
  if (to === undefined || to === 'any') return 'any';
  if (to === 'self') return addressOf(ctx, ctx.host);
  if (to === 'vrrp') return unicast ? addressOf(ctx, ctx.host) : String(ctx.vars.firewall_vrrp_multicast || '224.0.0.18');
  return to;
}

function port(ctx: TaskContext, p: RuleSpec['port'], where: string): number | string | undefined {
  if (p === undefined || p === null || p === '') return undefined;
  if (typeof p === 'string' && /^[A-Za-z_]\w*$/.test(p)) {
    const v = ctx.vars[p];
    return v === undefined || v === null || v === '' ? fail(`firewall: ${where}: port variable '${p}' is not set`) : (v as number | string);
  }
  return p;
}

/** Every rule this host needs, SSH first, in group order (`all` first, then the host's groups). */
export function firewallRules(ctx: TaskContext): UfwRuleArgs[] {
  const prefix = String(ctx.vars.firewall_comment_prefix ?? 'provision:');
  const admin = list(ctx.vars.admin_network);
  if (admin.length === 0) fail('firewall: admin_network is not set: refusing to build a firewall that would shut SSH');
  const sshPort = Number(ctx.vars.firewall_ssh_port ?? 22);
  const rules: UfwRuleArgs[] = admin.map((net) => ({rule: 'limit' === ctx.vars.firewall_ssh_rule ? 'limit' : 'allow', port: sshPort, proto: 'tcp', from: net, comment: `${prefix} ssh from admin`}));
  const groups = ['all', ...ctx.groupNames.filter((g) => g !== 'all')];
  for (const g of groups) {
    const specs = ctx.vars[`firewall_rules_${g}`];
    if (specs === undefined || specs === null) continue;
    if (!Array.isArray(specs)) fail(`firewall: firewall_rules_${g} must be a list`);
    (specs as RuleSpec[]).forEach((s, i) => {
      const where = `firewall_rules_${g}[${i}]`;
      if (typeof s !== 'object' || s === null || s.from === undefined || !s.comment) fail(`firewall: ${where}: needs 'from' and 'comment'`);
      const p = port(ctx, s.port, where);
      const to = destination(ctx, s.to);
      for (const src of sources(ctx, s.from, where)) {
        rules.push({
          rule: s.rule ?? 'allow',
          ...(p !== undefined ? {port: p} : {}),
          ...(s.proto ? {proto: s.proto} : {}),
          from: src.address,
          to,
          comment: `${prefix} ${g} ${s.comment} from ${src.label}`,
        });
      }
    });
  }
  return rules;
}

export default defineRole({
  name: 'firewall',
  defaults: {
    /** Required (the inventory sets it): network(s) SSH is always open to. A string or a list. */
    admin_network: '',
    /** SSH port kept open to `admin_network`. */
    firewall_ssh_port: 22,
    /** `allow` or `limit` (ufw's rate limit: 6 connections in 30 s) for SSH. */
    firewall_ssh_rule: 'allow',
    firewall_default_incoming: 'deny',
    firewall_default_outgoing: 'allow',
    /** Start of the comment of every rule this role adds: the mark of the rules it manages. */
    firewall_comment_prefix: 'provision:',
    /** Delete rules carrying the prefix that are no longer wanted (rules without it are left alone). */
    firewall_prune: true,
    /** Destination of VRRP adverts (keepalived's multicast group); with `keepalived_unicast`, this host. */
    firewall_vrrp_multicast: '224.0.0.18',
    /** Ports that other roles define; the same defaults as those roles. */
    haproxy_stats_port: 8404,
    acme_http01_port: 8888,
    haproxy_backend_port: 80,
    mysql_port: 3306,
    /** Every host. */
    firewall_rules_all: ruleList([
      {port: 9100, proto: 'tcp', from: 'group:monitoring', comment: 'node_exporter'},
    ]),
    firewall_rules_loadbalancers: ruleList([
      {port: 80, proto: 'tcp', from: 'any', comment: 'http'},
      {port: 443, proto: 'tcp', from: 'any', comment: 'https'},
      {proto: 'vrrp', from: 'group:loadbalancers', to: 'vrrp', comment: 'vrrp'},
      // HAProxy forwards ACME HTTP-01 challenges to the certbot listener of the LB that asked.
      {port: 'acme_http01_port', proto: 'tcp', from: 'group:loadbalancers', comment: 'acme http-01'},
      {port: 'haproxy_stats_port', proto: 'tcp', from: 'group:monitoring', comment: 'haproxy metrics'},
    ]),
    firewall_rules_webservers: ruleList([
      {port: 'haproxy_backend_port', proto: 'tcp', from: 'group:loadbalancers', comment: 'http'},
    ]),
    firewall_rules_databases: ruleList([
      // Web servers use the primary (writes) and the replicas (reads); replicas replicate from the primary,
      // and any database host may become a replica or the primary (db-switchover, db-failover).
      {port: 'mysql_port', proto: 'tcp', from: ['group:webservers', 'group:databases'], comment: 'mysql'},
      {port: 9104, proto: 'tcp', from: 'group:monitoring', comment: 'mysqld_exporter'},
    ]),
    firewall_rules_monitoring: ruleList([
      {port: 9090, proto: 'tcp', from: 'admin_network', comment: 'prometheus'},
    ]),
  },
  tasks: [
    apt({packages: ['ufw']}, {name: 'ufw installed'}),
    ufwDefault((ctx) => ({direction: 'incoming', policy: ctx.vars.firewall_default_incoming as 'deny'}), {name: 'default incoming policy'}),
    ufwDefault((ctx) => ({direction: 'outgoing', policy: ctx.vars.firewall_default_outgoing as 'allow'}), {name: 'default outgoing policy'}),
    ufwRules(
      (ctx) => ({
        rules: firewallRules(ctx),
        prune: ctx.vars.firewall_prune === true || ctx.vars.firewall_prune === 'true' ? {commentPrefix: String(ctx.vars.firewall_comment_prefix)} : false,
      }),
      {name: 'firewall rules (SSH from the admin network first)'},
    ),
    ufwState((ctx) => ({enabled: true, requirePort: Number(ctx.vars.firewall_ssh_port ?? 22)}), {name: 'ufw enabled'}),
  ],
});
