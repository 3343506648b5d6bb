/**
 * Prometheus on the monitoring host (Debian's package, listening on :9090): scrapes itself, the
 * node_exporter of every host, HAProxy's built-in exporter on each load balancer and mysqld_exporter on
 * each database host, with alert rules (instance, web server or load balancer down, VIP moved or not
 * held, HAProxy backend or server down, MySQL down, replication broken or lagging, certificate expiring,
 * disk nearly full; docs/operations.md, "Alerts") sent to Alertmanager (`prometheus_alertmanagers`, the
 * alertmanager role on the same host). Both files are checked by `promtool` before they replace the old
 * ones; a change reloads Prometheus (SIGHUP through `systemctl reload`).
 *
 * Targets carry `instance="<inventory name>"` (the address stays in `__address__`), so alerts name hosts.
 */
import {defineRole, apt, file, template, service, type TaskContext} from '../../src/index.ts';
import {localWatcherTarget} from '../provision_watch/index.ts';

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

/** `prometheus_alertmanagers`: a list of `host:port` (or one string); empty: no alerting section. */
function alertmanagers(ctx: TaskContext): string[] {
  const v = ctx.vars.prometheus_alertmanagers;
  const list = Array.isArray(v) ? v.map(String) : v === undefined || v === null || v === '' ? [] : [String(v)];
  for (const a of list) if (!/^[\w.-]+:\d+$|^\[[0-9a-fA-F:]+\]:\d+$/.test(a)) throw new Error(`prometheus_alertmanagers: '${a}' is not host:port`);
  return list;
}

/** A regular expression matching exactly these names, for a PromQL string (`"..."`). */
function anyOf(names: readonly string[]): string {
  return names.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&')).join('|');
}

/** What site-rules.yml.mustache needs beyond the role's variables. */
export function rulesVars(ctx: TaskContext): Record<string, unknown> {
  const fstypes = ctx.vars.prometheus_disk_ignore_fstypes;
  return {
    prometheus_disk_ignore_fstypes: Array.isArray(fstypes) ? anyOf(fstypes.map(String)) : str(ctx, 'prometheus_disk_ignore_fstypes'),
  };
}

/** `provision watch --listen` endpoints (`host:port`) from `prometheus_watch_targets`, labelled by address. */
function watchTargets(ctx: TaskContext): {host: string; address: string}[] {
  const v = ctx.vars.prometheus_watch_targets;
  const list = Array.isArray(v) ? v.map(String) : [];
  // The watcher the provision_watch role runs on this host, when it does.
  const own = localWatcherTarget(ctx);
  if (own !== undefined) list.push(own);
  for (const t of list) if (!/^[\w.:[\]-]+:\d+$/.test(t)) throw new Error(`prometheus_watch_targets: '${t}' is not host:port`);
  return [...new Set(list)].map((address) => ({host: address, address}));
}

/** The scrape jobs for prometheus.yml.mustache; a job without targets is left out. */
export function configVars(ctx: TaskContext): Record<string, unknown> {
  const jobs = [
    {name: 'node', path: '/metrics', targets: targets(ctx, str(ctx, 'prometheus_node_group'), str(ctx, 'prometheus_node_port'))},
    {name: 'haproxy', path: str(ctx, 'prometheus_haproxy_path'), targets: targets(ctx, str(ctx, 'prometheus_haproxy_group'), str(ctx, 'haproxy_stats_port'))},
    {name: 'mysqld', path: '/metrics', targets: targets(ctx, str(ctx, 'prometheus_mysqld_group'), str(ctx, 'prometheus_mysqld_port'))},
    {name: 'provision_watch', path: '/metrics', targets: watchTargets(ctx)},
  ].filter((j) => j.targets.length > 0);
  const ams = alertmanagers(ctx);
  return {jobs, rules_file: rulesFile, self: ctx.host, alertmanagers: ams, has_alertmanagers: ams.length > 0};
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
    /** Alertmanagers (`host:port`) Prometheus sends firing alerts to: the alertmanager role on this host. */
    prometheus_alertmanagers: ['127.0.0.1:9093'],
    /** HAProxy's backend of the web servers (role haproxy): WebServerDown reads its servers' checks. */
    prometheus_haproxy_web_backend: 'web',
    /** CertificateExpiringSoon fires when a served certificate expires within this many days. */
    prometheus_cert_expiry_days: 14,
    /** DiskNearlyFull fires below this fraction of free space. */
    prometheus_disk_free_ratio: 0.1,
    /**
     * `provision watch --listen` endpoints to scrape (`host:port`, docs/watch.md): drift of the site
     * becomes the ProvisionDrift alert. Empty: none. The watcher of the provision_watch role on this
     * host (`provision_watch_enabled`) is scraped without being listed.
     */
    prometheus_watch_targets: [] as string[],
    /** ProvisionDrift fires when a task stays drifted this long (a deploy in progress is not drift). */
    prometheus_drift_for: '30m',
    /** ProvisionCheckStale fires when no check of the watcher succeeded for this many seconds (3 intervals of 5m). */
    prometheus_watch_stale_seconds: 900,
    /** Filesystem types DiskNearlyFull ignores (memory-backed ones). */
    prometheus_disk_ignore_fstypes: ['tmpfs', 'ramfs', 'squashfs'],
  },
  tasks: [
    apt({packages: ['prometheus'], installRecommends: false}, {name: 'prometheus installed'}),
    file({path: rulesDir, state: 'directory', owner: 'root', group: 'root', mode: '0755'}, {name: 'rules directory'}),
    // The rules first: `promtool check config` also loads the rule files the config names.
    template(
      (ctx) => ({src: 'site-rules.yml.mustache', dest: rulesFile, owner: 'root', group: 'root', mode: '0644', validate: 'promtool check rules %s', vars: rulesVars(ctx)}),
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
