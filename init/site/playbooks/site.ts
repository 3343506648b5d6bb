/**
 * The site: two HAProxy load balancers sharing a VIP through keepalived, Nginx and a Node.js app on
 * the web servers, a MariaDB primary and a GTID replica, ufw on every host, HTTPS from an ACME CA
 * (certbot), node_exporter everywhere and Prometheus with alert rules. The roles ship with provision
 * ('provision/roles'); a role's parameters override its defaults (the inventory still wins).
 *
 *   npx provision run site -i inventory/hosts.yml --check --diff    # what would change
 *   npx provision run site -i inventory/hosts.yml
 *
 * Order: every host gets its base and firewall first (SSH stays open to admin_network); then the
 * databases (the primary before the replicas, which need its replication account), the web servers
 * and the load balancers one host at a time (serial: 1, so a change never takes both down), the
 * certificate once both balancers serve, and monitoring last, when every target exists: Prometheus
 * and the Alertmanager that delivers its alerts (alertmanager_webhook_url); last, when enabled
 * (provision_watch_enabled), `provision watch site` as a service on the monitoring host.
 */
import {definePlaybook} from 'provision';
import {alertmanager, app, certbot, common, database, firewall, haproxy, keepalived, mysqld_exporter, nginx, prometheus, provision_watch} from 'provision/roles';

export default definePlaybook({
  name: 'site',
  plays: [
    {name: 'every host: base, node_exporter, firewall', hosts: 'all', roles: [common(), firewall()]},
    {name: 'database primary', hosts: 'db_primary', roles: [database(), mysqld_exporter()]},
    {name: 'database replicas', hosts: 'db_replicas', roles: [database(), mysqld_exporter()]},
    {name: 'web servers: nginx and the app', hosts: 'webservers', serial: 1, roles: [nginx({nginx_site_root: '/var/www/site'}), app()]},
    {name: 'load balancers: HAProxy and keepalived', hosts: 'loadbalancers', serial: 1, roles: [haproxy(), keepalived()]},
    {name: 'load balancers: certificate', hosts: 'loadbalancers', serial: 1, roles: [certbot()]},
    {name: 'monitoring: Prometheus and Alertmanager', hosts: 'monitoring', roles: [alertmanager(), prometheus()]},
    // provision watch as a service on the monitoring host, with its own SSH key: provision_watch_enabled.
    {name: 'drift watcher: provision watch on the monitoring host (provision_watch_enabled)', hosts: 'all', roles: [provision_watch()]},
  ],
});
