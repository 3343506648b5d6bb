/**
 * Prometheus on the monitoring host (Debian's package, listening on :9090): scrapes itself, the
 * node_exporter of every host, HAProxy's built-in exporter on each load balancer and mysqld_exporter on
 * each database host, with alert rules (instance down, HAProxy backend or server down, MySQL down,
 * replication broken or lagging). Both files are checked by `promtool` before they replace the old
 * ones; a change reloads Prometheus (SIGHUP through `systemctl reload`).
 *
 * Targets carry `instance="<inventory name>"` (the address stays in `__address__`), so alerts name hosts.
 */
import {defineRole, apt, file, template, service, type TaskContext} from '../../src/index.ts';

const rulesDir = '/etc/prometheus/rules';
const rulesFile = `${rulesDir}/site.yml`;

function str(ctx: TaskContext, name: string): string {
  const v = ctx.vars[name];
  if (v === undefined || v === null || v === '') throw new Error(`variable '${name}' is not set`);
  return String(v);
}

/** `host:port` of every host of a group, labelled with its inventory name. */
function targets(ctx: TaskContext, group: string, port: string): {host: string; address: string}[] {
  return (ctx.groups[group] ?? []).map((h) => {
    const hv = ctx.hostvars(h);
    const a = String(hv.ansible_host ?? hv.facts?.defaultIpv4?.address ?? h);
    return {host: h, address: `${a.includes(':') ? `[${a}]` : a}:${port}`};
  });
}

/** The scrape jobs for prometheus.yml.mustache; a job without targets is left out. */
function configVars(ctx: TaskContext): Record<string, unknown> {
  const jobs = [
    {name: 'node', path: '/metrics', targets: targets(ctx, str(ctx, 'prometheus_node_group'), str(ctx, 'prometheus_node_port'))},
    {name: 'haproxy', path: str(ctx, 'prometheus_haproxy_path'), targets: targets(ctx, str(ctx, 'prometheus_haproxy_group'), str(ctx, 'haproxy_stats_port'))},
    {name: 'mysqld', path: '/metrics', targets: targets(ctx, str(ctx, 'prometheus_mysqld_group'), str(ctx, 'prometheus_mysqld_port'))},
  ].filter((j) => j.targets.length > 0);
  return {jobs, rules_file: rulesFile, self: ctx.host};
}

export default defineRole({
  name: 'prometheus',
  defaults: {
    prometheus_scrape_interval: '15s',
    prometheus_evaluation_interval: '15s',
    /** node_exporter on every host of this group. */
    prometheus_node_group: 'all',
    prometheus_node_port: 9100,
    /** HAProxy's Prometheus exporter (haproxy role: `haproxy_stats_port`, path /metrics) on this group. */
    prometheus_haproxy_group: 'loadbalancers',
    haproxy_stats_port: 8404,
    prometheus_haproxy_path: '/metrics',
    /** mysqld_exporter on every host of this group. */
    prometheus_mysqld_group: 'databases',
    prometheus_mysqld_port: 9104,
    /** How long a condition must hold before an alert fires. */
    prometheus_alert_for: '1m',
    /** ReplicationLagging fires above this many seconds behind the primary. */
    prometheus_replication_lag_seconds: 30,
  },
  tasks: [
    apt({packages: ['prometheus'], installRecommends: false}, {name: 'prometheus installed'}),
    file({path: rulesDir, state: 'directory', owner: 'root', group: 'root', mode: '0755'}, {name: 'rules directory'}),
    // The rules first: `promtool check config` also loads the rule files the config names.
    template(
      {src: 'site-rules.yml.mustache', dest: rulesFile, owner: 'root', group: 'root', mode: '0644', validate: 'promtool check rules %s'},
      {name: 'alert rules', notify: 'reload prometheus'},
    ),
    template(
      (ctx) => ({
        src: 'prometheus.yml.mustache',
        dest: '/etc/prometheus/prometheus.yml',
        owner: 'root',
        group: 'root',
        mode: '0644',
        validate: 'promtool check config %s',
        vars: configVars(ctx),
      }),
      {name: 'prometheus.yml', notify: 'reload prometheus'},
    ),
    // daemonReload: in --check on a fresh host the package (and so the unit) is not there yet.
    service({name: 'prometheus', state: 'started', enabled: true, daemonReload: true}, {name: 'prometheus running'}),
  ],
  handlers: [service({name: 'prometheus', state: 'reloaded', daemonReload: true}, {name: 'reload prometheus'})],
});
