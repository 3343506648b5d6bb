/**
 * HAProxy on the load balancers: HTTP → HTTPS redirect (except ACME HTTP-01 challenges, sent to the
 * certbot listener of the load balancers), TLS termination with one PEM, the web servers behind it
 * checked with `GET /health`, and a stats page plus Prometheus metrics on a separate port.
 *
 * Frontends bind `*` (not the VIP): every LB listens all the time, so a VIP that moves in is served at
 * once, with no `net.ipv4.ip_nonlocal_bind` and no restart on failover.
 *
 * HAProxy refuses to start with a missing certificate, so a self-signed PEM is made when there is
 * none yet; the certbot role replaces it with the ACME certificate.
 */
import {createHash} from 'node:crypto';
import {defineRole, apt, file, command, template, service, type TaskContext} from '../../src/index.ts';
import {sha512Crypt} from './sha512crypt.ts';

const algorithms = ['roundrobin', 'leastconn', 'source'] as const;

function str(ctx: TaskContext, name: string): string {
  const v = ctx.vars[name];
  if (v === undefined || v === null || v === '') throw new Error(`variable '${name}' is not set`);
  return String(v);
}

/** The certificate HAProxy serves (fullchain + private key in one file). */
const certPath = (ctx: TaskContext): string => str(ctx, 'haproxy_cert_path');
const certDir = (ctx: TaskContext): string => certPath(ctx).replace(/\/[^/]+$/, '') || '/';

/** Everything haproxy.cfg.mustache needs, computed here (mustache has no logic). */
function configVars(ctx: TaskContext): Record<string, unknown> {
  const algorithm = str(ctx, 'lb_algorithm');
  if (!(algorithms as readonly string[]).includes(algorithm)) throw new Error(`lb_algorithm must be one of ${algorithms.join(', ')}, got '${algorithm}'`);
  const hostOf = (h: string): string => String(ctx.hostvars(h).ansible_host ?? h);
  const backends = (ctx.groups[str(ctx, 'haproxy_backend_group')] ?? []).map((h) => ({name: h, address: hostOf(h)}));
  // ACME challenges go to the certbot listener of whichever LB is asking: this host first, then its peers
  // (a refused connection is redispatched to the next one), so each LB can obtain and renew its own certificate.
  const lbs = ctx.groups[str(ctx, 'haproxy_acme_group')] ?? [];
  const acme = [ctx.host, ...lbs.filter((h) => h !== ctx.host)].map((h) => ({name: h, address: hostOf(h)}));
  // The stats password is stored as a SHA-512 crypt hash (HAProxy checks it with crypt()), so neither
  // haproxy.cfg nor a diff of it ever holds the password. The salt is derived from the password, so the
  // hash (and the file) only changes when the password does. A secret of the run all the same.
  const password = ctx.secret(str(ctx, 'haproxy_stats_password')).reveal();
  const salt = createHash('sha256').update(`haproxy-stats:${String(ctx.vars.haproxy_stats_user)}:${password}`).digest('hex').slice(0, 16);
  return {
    lb_algorithm: algorithm,
    backends,
    acme_servers: acme,
    haproxy_stats_password_hash: sha512Crypt(password, salt),
  };
}

export default defineRole({
  name: 'haproxy',
  defaults: {
    /** `roundrobin`, `leastconn` or `source`. */
    lb_algorithm: 'roundrobin',
    /** Group whose hosts (`ansible_host`) are the web backends. */
    haproxy_backend_group: 'webservers',
    /** Port of the web servers. */
    haproxy_backend_port: 80,
    /** Health check path on the web servers (must answer 200). */
    haproxy_health_path: '/health',
    /** Group of the load balancers: their certbot listeners answer ACME HTTP-01 challenges. */
    haproxy_acme_group: 'loadbalancers',
    /** Port of certbot's standalone HTTP-01 listener on the LBs (same variable as the certbot role). */
    acme_http01_port: 8888,
    /** The PEM (certificate chain + key) served on :443. */
    haproxy_cert_path: '/etc/haproxy/certs/site.pem',
    /** Stats page (`/stats`, basic auth) and Prometheus metrics (`/metrics`) port. */
    haproxy_stats_port: 8404,
    haproxy_stats_user: 'admin',
    /** Required: the stats page password (from the vault). */
    haproxy_stats_password: '',
    /** Timeouts. */
    haproxy_timeout_connect: '5s',
    haproxy_timeout_client: '60s',
    haproxy_timeout_server: '60s',
  },
  tasks: [
    // socat: the runtime API (admin socket), through which the app role drains a web server around a restart.
    apt({packages: ['haproxy', 'openssl', 'socat']}, {name: 'haproxy installed'}),
    file((ctx) => ({path: certDir(ctx), state: 'directory', owner: 'root', group: 'root', mode: '0700'}), {name: 'certificate directory'}),
    command(
      (ctx) => ({
        argv: [
          'sh', '-c',
          // A throw-away self-signed certificate so that HAProxy can start before certbot has run.
          'set -e; umask 077; d=$(mktemp -d); trap \'rm -rf "$d"\' EXIT; ' +
            'openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$1" -addext "subjectAltName=DNS:$1" -keyout "$d/key" -out "$d/crt" 2>/dev/null; ' +
            'cat "$d/crt" "$d/key" > "$d/pem"; chmod 0600 "$d/pem"; mv "$d/pem" "$2"',
          'bootstrap-cert', str(ctx, 'site_domain'), certPath(ctx),
        ],
        creates: certPath(ctx),
      }),
      {name: 'bootstrap self-signed certificate (only when none yet)'},
    ),
    template(
      (ctx) => ({
        src: 'haproxy.cfg.mustache',
        dest: '/etc/haproxy/haproxy.cfg',
        owner: 'root',
        group: 'haproxy',
        mode: '0640',
        validate: 'haproxy -c -q -f %s',
        vars: configVars(ctx),
      }),
      {name: 'haproxy.cfg', notify: 'reload haproxy'},
    ),
    service({name: 'haproxy', state: 'started', enabled: true}, {name: 'haproxy running'}),
  ],
  handlers: [service({name: 'haproxy', state: 'reloaded'}, {name: 'reload haproxy'})],
});
