/**
 * The site: a highly available web infrastructure (docs/architecture.md).
 *
 *   provision run site                   # on the lab (inventory/lab.yml)
 *   provision run site -i inventory/production/hosts.yml --check --diff
 *
 * Order: every host gets its base and firewall first (SSH stays open to admin_network); then the
 * databases (the primary before the replicas, which need its replication account), the web servers
 * and the load balancers one host at a time (serial: 1, so a change never takes both down), the
 * certificate once both balancers serve, and monitoring last, when every target exists: Prometheus
 * and the Alertmanager that delivers its alerts (alertmanager_webhook_url); last, when enabled
 * (provision_watch_enabled), `provision watch` of this playbook as a service on the monitoring host,
 * with its own SSH key authorized on every host (docs/watch.md).
 */
import {definePlaybook} from '../src/index.ts';

export default definePlaybook({
  name: 'site',
  plays: [
    {name: 'every host: base, node_exporter, firewall', hosts: 'all', roles: ['common', 'firewall']},
    {name: 'database primary', hosts: 'db_primary', roles: ['database', 'mysqld_exporter']},
    {name: 'database replicas', hosts: 'db_replicas', roles: ['database', 'mysqld_exporter']},
    {name: 'web servers: nginx and the app', hosts: 'webservers', serial: 1, roles: ['nginx', 'app']},
    {name: 'load balancers: HAProxy and keepalived', hosts: 'loadbalancers', serial: 1, roles: ['haproxy', 'keepalived']},
    {name: 'load balancers: certificate', hosts: 'loadbalancers', serial: 1, roles: ['certbot']},
    {name: 'monitoring: Prometheus and Alertmanager', hosts: 'monitoring', roles: ['alertmanager', 'prometheus']},
    {name: 'drift watcher: provision watch on the monitoring host (provision_watch_enabled)', hosts: 'all', roles: ['provision_watch']},
  ],
});
