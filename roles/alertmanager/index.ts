/**
 * Alertmanager on the monitoring host (Debian's `prometheus-alertmanager`): receives the alerts the
 * prometheus role's rules fire and delivers them to `alertmanager_webhook_url` (a webhook: a chat
 * bridge, a pager, the lab's receiver), grouped by alert and instance, repeated every
 * `alertmanager_repeat_interval` while they fire, with a last message when they resolve.
 *
 * Least privilege: it listens on loopback only (`alertmanager_listen_address`, where Prometheus on the
 * same host sends to it), with clustering (gossip on :9094) off, so the firewall opens nothing new;
 * delivery is an outgoing connection (ufw allows outgoing). It runs as the package's `prometheus` user.
 * The configuration is checked by `amtool check-config` before it replaces the old one; a change
 * reloads Alertmanager (SIGHUP), a change of its command line restarts it.
 */
import {defineRole, apt, copy, template, service, type TaskContext} from '../../src/index.ts';

function str(ctx: TaskContext, name: string): string {
  const v = ctx.vars[name];
  if (v === undefined || v === null || v === '') throw new Error(`variable '${name}' is not set`);
  return String(v);
}

/** A URL variable, checked: an http(s) URL; `none` (or, when not `required`, empty): undefined. */
export function urlVar(ctx: TaskContext, name: string, required: boolean): string | undefined {
  const v = String(ctx.vars[name] ?? '');
  if (v === 'none' || (v === '' && !required)) return undefined;
  if (v === '') throw new Error(`variable '${name}' is not set: where should alerts be delivered? (an http(s) URL; 'none' runs Alertmanager without delivery)`);
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new Error(`${name}: '${v}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`${name}: '${v}' is not an http(s) URL`);
  if (/['\s]/.test(v)) throw new Error(`${name}: '${v}' holds a quote or a space`);
  return v;
}

/** What alertmanager.yml.mustache needs beyond the role's variables. */
export function alertmanagerVars(ctx: TaskContext): Record<string, unknown> {
  const url = urlVar(ctx, 'alertmanager_webhook_url', true);
  const watchdog = urlVar(ctx, 'alertmanager_watchdog_url', false);
  return {webhook: url === undefined ? false : {url}, watchdog: watchdog === undefined ? false : {url: watchdog}};
}

/** The daemon's command line (/etc/default/prometheus-alertmanager). */
export function alertmanagerArgs(ctx: TaskContext): string {
  return [
    '# Managed by provision (role alertmanager). Local changes are overwritten.',
    '# Loopback only, no cluster gossip: Prometheus on this host is the only client.',
    `ARGS="--web.listen-address=${str(ctx, 'alertmanager_listen_address')} --cluster.listen-address="`,
    '',
  ].join('\n');
}

export default defineRole({
  name: 'alertmanager',
  defaults: {
    /** Where alerts are POSTed (Alertmanager's webhook format). Required; `none`: no delivery. */
    alertmanager_webhook_url: '',
    /**
     * Where the always-firing Watchdog alert is POSTed every `alertmanager_watchdog_repeat_interval`: a
     * dead man's switch (a service that alerts when the pings stop) watching this monitoring host.
     * Empty: Watchdog is not delivered.
     */
    alertmanager_watchdog_url: '',
    alertmanager_watchdog_repeat_interval: '5m',
    /** Also send a message when an alert resolves. */
    alertmanager_send_resolved: true,
    /** Wait this long after a group's first alert before sending, to batch alerts that fire together. */
    alertmanager_group_wait: '30s',
    /** Wait this long before sending a group's new alerts after its first notification. */
    alertmanager_group_interval: '5m',
    /** Send a firing alert again after this long. */
    alertmanager_repeat_interval: '4h',
    /** host:port Alertmanager listens on (the prometheus role's `prometheus_alertmanager_address`). */
    alertmanager_listen_address: '127.0.0.1:9093',
  },
  tasks: [
    apt({packages: ['prometheus-alertmanager'], installRecommends: false}, {name: 'alertmanager installed'}),
    copy(
      (ctx) => ({dest: '/etc/default/prometheus-alertmanager', owner: 'root', group: 'root', mode: '0644', content: alertmanagerArgs(ctx)}),
      {name: 'alertmanager listens on loopback only', notify: 'restart alertmanager'},
    ),
    template(
      (ctx) => ({
        src: 'alertmanager.yml.mustache',
        dest: '/etc/prometheus/alertmanager.yml',
        owner: 'root',
        group: 'root',
        mode: '0644',
        validate: 'amtool check-config %s',
        vars: alertmanagerVars(ctx),
      }),
      {name: 'alertmanager.yml (routing to the receiver)', notify: 'reload alertmanager'},
    ),
    // daemonReload: in --check on a fresh host the package (and so the unit) is not there yet.
    service({name: 'prometheus-alertmanager', state: 'started', enabled: true, daemonReload: true}, {name: 'alertmanager running'}),
  ],
  // Handlers run in this order: the reload first. A reload right after a restart (both notified on a
  // first run) can reach the new process before it handles SIGHUP, which then ends it, and systemd
  // counts an end by SIGHUP as a clean exit: Alertmanager silently stays down.
  handlers: [
    service({name: 'prometheus-alertmanager', state: 'reloaded'}, {name: 'reload alertmanager'}),
    service({name: 'prometheus-alertmanager', state: 'restarted'}, {name: 'restart alertmanager'}),
  ],
});
