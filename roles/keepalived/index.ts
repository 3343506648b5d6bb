/**
 * keepalived on the load balancers: the virtual IP (`vip`) held by one LB and moved when HAProxy stops
 * (a `vrrp_script` tracking the haproxy unit), not only when the host dies.
 *
 * - `lb_mode: active-passive` (default): one VRRP instance for `vip`; the first host of the group is
 *   MASTER with the highest priority and takes the VIP back when it recovers.
 * - `lb_mode: active-active`: a second instance for `vip_secondary`; each LB is master of one VIP
 *   (publish both addresses in DNS).
 *
 * The check runs as an unprivileged user under `enable_script_security`. In a container
 * `/bin/pidof` resolves to killall5 and is refused: `systemctl is-active --quiet haproxy` is used.
 *
 * On every VRRP state change keepalived runs `keepalived-vip-metric` (as root: it writes
 * node_exporter's textfile directory, `node_exporter_textfile_dir`), which records which VIPs this
 * balancer holds as `keepalived_vip_held{vip, vrrp_instance, preferred}`: the prometheus role's
 * VIPMoved, VIPNotHeld and VIPSplitBrain alerts read it.
 */
import {defineRole, apt, user, copy, command, template, service, type TaskContext} from '../../src/index.ts';

function str(ctx: TaskContext, name: string): string {
  const v = ctx.vars[name];
  if (v === undefined || v === null || v === '') throw new Error(`variable '${name}' is not set`);
  return String(v);
}

function num(ctx: TaskContext, name: string): number {
  const n = Number(ctx.vars[name]);
  if (!Number.isInteger(n)) throw new Error(`variable '${name}' must be an integer, got '${String(ctx.vars[name])}'`);
  return n;
}

interface Instance {
  readonly name: string;
  /** The VIP alone (no prefix). */
  readonly vip: string;
  /** 'true' on the instance's configured MASTER (the VIP's preferred holder). */
  readonly preferred: 'true' | 'false';
  readonly state: 'MASTER' | 'BACKUP';
  readonly router_id: number;
  readonly priority: number;
  readonly address: string;
}

const metricScript = '/usr/local/sbin/keepalived-vip-metric';

/** Everything keepalived.conf.mustache (and keepalived-vip-metric.mustache) needs, computed here. */
export function configVars(ctx: TaskContext): Record<string, unknown> {
  const mode = str(ctx, 'lb_mode');
  if (mode !== 'active-passive' && mode !== 'active-active') throw new Error(`lb_mode must be 'active-passive' or 'active-active', got '${mode}'`);
  const peers = ctx.groups[str(ctx, 'keepalived_group')] ?? [];
  const index = peers.indexOf(ctx.host);
  if (index < 0) throw new Error(`${ctx.host} is not in group '${String(ctx.vars.keepalived_group)}'`);
  const iface = String(ctx.vars.keepalived_interface || ctx.facts.defaultIpv4?.interface || '');
  if (!iface) throw new Error('no interface for VRRP: no default IPv4 interface in the facts; set keepalived_interface');
  const prefix = num(ctx, 'vip_prefix');
  const top = num(ctx, 'keepalived_priority');
  const baseId = num(ctx, 'keepalived_router_id');
  const vips = mode === 'active-active' ? [str(ctx, 'vip'), str(ctx, 'vip_secondary')] : [str(ctx, 'vip')];
  // Instance k is mastered by host k (mod the group size); the others back it up in group order.
  const instances: Instance[] = vips.map((address, k) => {
    const rank = (index - (k % peers.length) + peers.length) % peers.length;
    return {
      name: k === 0 ? 'VI_VIP' : `VI_VIP${k + 1}`,
      vip: address,
      preferred: rank === 0 ? 'true' : 'false',
      state: rank === 0 ? 'MASTER' : 'BACKUP',
      router_id: baseId + k,
      priority: top - 50 * rank > 0 ? top - 50 * rank : 1,
      address: `${address}/${prefix}`,
    };
  });
  const hostOf = (h: string): string => String(ctx.hostvars(h).ansible_host ?? h);
  const unicast = ctx.vars.keepalived_unicast === true || ctx.vars.keepalived_unicast === 'true';
  return {
    interface: iface,
    instances,
    metric_script: metricScript,
    unicast,
    unicast_src: hostOf(ctx.host),
    unicast_peers: peers.filter((h) => h !== ctx.host).map(hostOf),
  };
}

export default defineRole({
  name: 'keepalived',
  defaults: {
    /** `active-passive` (one VIP) or `active-active` (`vip` and `vip_secondary`, each LB master of one). */
    lb_mode: 'active-passive',
    /** The group sharing the VIP; its first host is MASTER of `vip`. */
    keepalived_group: 'loadbalancers',
    /** VRRP interface; empty: the default IPv4 interface from the facts. */
    keepalived_interface: '',
    /** Prefix length of the VIP on the interface. */
    vip_prefix: 32,
    /** virtual_router_id of the `vip` instance (+1 for `vip_secondary`); unique on the network segment. */
    keepalived_router_id: 51,
    /** Priority of the master; each next host has 50 less. */
    keepalived_priority: 150,
    /** VRRP to the peers' addresses instead of multicast 224.0.0.18 (for networks without multicast). */
    keepalived_unicast: false,
    /** The unit the check script tracks. */
    keepalived_check_service: 'haproxy',
    /** Unprivileged user running the check script. */
    keepalived_script_user: 'keepalived_script',
    /** node_exporter's textfile collector directory (Debian's default), for `keepalived_vip_held`. */
    node_exporter_textfile_dir: '/var/lib/prometheus/node-exporter',
  },
  tasks: [
    apt({packages: ['keepalived']}, {name: 'keepalived installed'}),
    user(
      (ctx) => ({name: str(ctx, 'keepalived_script_user'), system: true, shell: '/usr/sbin/nologin', home: '/nonexistent', createHome: false, comment: 'keepalived check scripts'}),
      {name: 'check script user'},
    ),
    copy({src: 'keepalived-config-test', dest: '/usr/local/sbin/keepalived-config-test', owner: 'root', group: 'root', mode: '0755'}, {name: 'config checker'}),
    // Before keepalived.conf: its `notify` runs the script as soon as the new configuration is loaded.
    template(
      (ctx) => ({src: 'keepalived-vip-metric.mustache', dest: metricScript, owner: 'root', group: 'root', mode: '0755', vars: configVars(ctx)}),
      {name: 'VIP metric script', notify: 'write the VIP metric'},
    ),
    template(
      (ctx) => ({
        src: 'keepalived.conf.mustache',
        dest: '/etc/keepalived/keepalived.conf',
        owner: 'root',
        group: 'root',
        mode: '0640',
        // `keepalived --config-test -f`, made usable as a validator (see files/keepalived-config-test).
        validate: '/usr/local/sbin/keepalived-config-test %s',
        vars: configVars(ctx),
      }),
      {name: 'keepalived.conf', notify: 'reload keepalived'},
    ),
    service({name: 'keepalived', state: 'started', enabled: true}, {name: 'keepalived running'}),
    // keepalived writes it on its next state change; until then (first run, or a reload that keeps
    // the state), from the interface. Nothing to do without node_exporter's directory.
    command(
      (ctx) => {
        const dir = String(ctx.vars.node_exporter_textfile_dir);
        return {argv: [metricScript], unless: `[ -e ${dir}/keepalived_vip.prom ] || [ ! -d ${dir} ]`};
      },
      {name: 'VIP metric written'},
    ),
  ],
  handlers: [
    service({name: 'keepalived', state: 'reloaded'}, {name: 'reload keepalived'}),
    command({argv: [metricScript]}, {name: 'write the VIP metric'}),
  ],
});
