/**
 * The shipped roles as functions (`provision/roles`): each takes the role's variables to override
 * (typed from its defaults) and gives the role, ready to put in a play's `roles`:
 *
 *   import {definePlaybook} from 'provision';
 *   import {common, nginx} from 'provision/roles';
 *   export default definePlaybook({name: 'web', plays: [
 *     {name: 'web', hosts: 'webservers', roles: [common(), nginx({nginx_site_root: '/srv/www'})]},
 *   ]});
 *
 * A parameter becomes the role's default: inventory, play vars and `-e` still override it. The role's
 * `dir` is its folder in the installed package, where its `templates/` and `files/` are.
 */
import {join} from 'node:path';
import {projectRoot} from '../src/core/paths.ts';
import type {Role, Vars} from '../src/index.ts';
import alertmanagerRole from './alertmanager/index.ts';
import appRole from './app/index.ts';
import certbotRole from './certbot/index.ts';
import commonRole from './common/index.ts';
import databaseRole from './database/index.ts';
import firewallRole from './firewall/index.ts';
import haproxyRole from './haproxy/index.ts';
import keepalivedRole from './keepalived/index.ts';
import mysqldExporterRole from './mysqld_exporter/index.ts';
import nginxRole from './nginx/index.ts';
import prometheusRole from './prometheus/index.ts';
import provisionWatchRole from './provision_watch/index.ts';

/** A shipped role with some of its defaults overridden (none: the role as shipped). */
export type ShippedRole<D extends Vars> = (params?: Partial<D>) => Role<D>;
/** The type of a role's defaults. */
export type DefaultsOf<R> = R extends Role<infer D> ? D : never;

function shipped<D extends Vars>(role: Role<D>, folder: string): ShippedRole<D> {
  const dir = join(projectRoot, 'roles', folder);
  return (params = {}) => ({...role, defaults: {...role.defaults, ...params} as D, dir});
}

/** HAProxy on the load balancers: TLS termination, web backends, stats and metrics. */
export const haproxy: ShippedRole<DefaultsOf<typeof haproxyRole>> = shipped(haproxyRole, 'haproxy');
/** keepalived: the VIP (or two, active-active) moved between the load balancers. */
export const keepalived: ShippedRole<DefaultsOf<typeof keepalivedRole>> = shipped(keepalivedRole, 'keepalived');
/** Nginx on the web servers: the static site, /api/ and /health proxied to the app. */
export const nginx: ShippedRole<DefaultsOf<typeof nginxRole>> = shipped(nginxRole, 'nginx');
/** The sample Node.js app behind nginx, run by systemd. */
export const app: ShippedRole<DefaultsOf<typeof appRole>> = shipped(appRole, 'app');
/** MariaDB (MySQL on Ubuntu) with GTID replication from the primary to the replicas. */
export const database: ShippedRole<DefaultsOf<typeof databaseRole>> = shipped(databaseRole, 'database');
/** ufw: SSH from `admin_network` first, then the rules of every group the host is in. */
export const firewall: ShippedRole<DefaultsOf<typeof firewallRole>> = shipped(firewallRole, 'firewall');
/** certbot: the site's certificate from an ACME CA, installed as HAProxy's PEM and renewed. */
export const certbot: ShippedRole<DefaultsOf<typeof certbotRole>> = shipped(certbotRole, 'certbot');
/** Every host: base packages, an extra CA, node_exporter. */
export const common: ShippedRole<DefaultsOf<typeof commonRole>> = shipped(commonRole, 'common');
/** prometheus-mysqld-exporter on the database hosts. */
export const mysqld_exporter: ShippedRole<DefaultsOf<typeof mysqldExporterRole>> = shipped(mysqldExporterRole, 'mysqld_exporter');
/** Prometheus with the site's scrape jobs and alert rules. */
export const prometheus: ShippedRole<DefaultsOf<typeof prometheusRole>> = shipped(prometheusRole, 'prometheus');
/** Alertmanager beside Prometheus: delivers its alerts to `alertmanager_webhook_url`. */
export const alertmanager: ShippedRole<DefaultsOf<typeof alertmanagerRole>> = shipped(alertmanagerRole, 'alertmanager');
/** `provision watch` as a service on the monitoring host, with its own SSH key (play on `hosts: all`). */
export const provision_watch: ShippedRole<DefaultsOf<typeof provisionWatchRole>> = shipped(provisionWatchRole, 'provision_watch');
/** The same as `prometheus`. */
export const monitoring = prometheus;
