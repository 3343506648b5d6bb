/**
 * Nginx on the web servers (issue 4): serves the static site from `nginx_site_root` and proxies `/api/`
 * and `/health` to the app on the same host (127.0.0.1:3000). Plain HTTP on port 80: HAProxy on the
 * load balancers terminates TLS, and the client's address is taken from X-Forwarded-For only when the
 * connection comes from a load balancer.
 *
 * Validation: `nginx -t` can only check a whole configuration, and a site file checked on its own
 * proves little. The site is written to `conf.d/site.conf` (included by Debian's nginx.conf, so the
 * file's presence is what enables it) with `validate` running `nginx-check-candidate`, shipped by this
 * role: it copies /etc/nginx to a temporary directory, puts the candidate at its place there, and runs
 * `nginx -t` on the copy's nginx.conf. A file that would break the configuration is never written, so
 * the `reload nginx` handler never meets a bad configuration (and nginx itself keeps its old
 * configuration if a reload fails to parse).
 */
import {apt, copy, defineRole, file, service, template, type TaskContext} from '../../src/index.ts';

const checker = '/usr/local/sbin/nginx-check-candidate';
const site = '/etc/nginx/conf.d/site.conf';

/**
 * Addresses whose X-Forwarded-For is trusted: `nginx_trusted_proxies` if set, else every host of the
 * `loadbalancers` group (its ansible_host) and the virtual IPs (`vip`, `vip_secondary`) they hold.
 */
export function trustedProxies(ctx: TaskContext): string[] {
  const v = ctx.vars.nginx_trusted_proxies;
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string' && v !== '') return v.split(/[\s,]+/).filter((s) => s !== '');
  const lbs = (ctx.groups.loadbalancers ?? []).map((h) => String(ctx.hostvars(h).ansible_host ?? h));
  const vips = [ctx.vars.vip, ctx.vars.vip_secondary].filter((x): x is string => typeof x === 'string' && x !== '');
  return [...new Set([...lbs, ...vips])];
}

export default defineRole({
  name: 'nginx',
  defaults: {
    /** Plain HTTP port (the firewall opens it to the load balancers only). */
    nginx_listen_port: 80,
    /** server_name of the site; it is the default server, so any Host is answered. */
    nginx_server_name: '_',
    /** Document root of the static site. */
    nginx_site_root: '/var/www/site',
    /** Where the app listens (the app role's app_bind:app_port). */
    nginx_app_address: '127.0.0.1:3000',
    /** Addresses trusted for X-Forwarded-For (list or comma-separated); null: the load balancers and the VIPs. */
    nginx_trusted_proxies: null as string | readonly string[] | null,
  },
  tasks: [
    apt({packages: ['nginx']}, {name: 'nginx package'}),
    copy({src: 'nginx-check-candidate', dest: checker, owner: 'root', group: 'root', mode: '0755'}, {name: 'nginx config checker'}),
    // Before the site: Debian's default site is also `default_server` on port 80.
    file({path: '/etc/nginx/sites-enabled/default', state: 'absent'}, {name: 'default site disabled', notify: 'reload nginx'}),
    file((ctx) => ({path: String(ctx.vars.nginx_site_root), state: 'directory', owner: 'root', group: 'root', mode: '0755'}), {name: 'site root'}),
    file((ctx) => ({path: `${ctx.vars.nginx_site_root}/assets`, state: 'directory', owner: 'root', group: 'root', mode: '0755'}), {name: 'site assets directory'}),
    copy((ctx) => ({src: 'index.html', dest: `${ctx.vars.nginx_site_root}/index.html`, owner: 'root', group: 'root', mode: '0644'}), {name: 'site index page'}),
    copy((ctx) => ({src: 'style.css', dest: `${ctx.vars.nginx_site_root}/assets/style.css`, owner: 'root', group: 'root', mode: '0644'}), {name: 'site stylesheet'}),
    template(
      (ctx) => ({src: 'site.conf.mustache', dest: site, owner: 'root', group: 'root', mode: '0644', validate: `${checker} %s ${site}`, vars: {trusted_proxies: trustedProxies(ctx)}}),
      {name: 'site config', notify: 'reload nginx'},
    ),
    service({name: 'nginx', state: 'started', enabled: true}, {name: 'nginx running'}),
  ],
  handlers: [service({name: 'nginx', state: 'reloaded'}, {name: 'reload nginx'})],
});
