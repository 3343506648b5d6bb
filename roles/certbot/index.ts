/**
 * certbot on the load balancers: a certificate for `site_domain` from the ACME server in `acme_server`
 * (HTTP-01, certbot's standalone listener on `acme_http01_port`), installed as HAProxy's PEM, renewed by
 * certbot's systemd timer with a deploy hook that rebuilds the PEM and reloads HAProxy.
 *
 * Each LB obtains and renews its own certificate. HAProxy (role haproxy) sends
 * `/.well-known/acme-challenge/` to the certbot listener of the local LB first and, when that connection
 * is refused, to its peers: whichever LB holds the VIP, the challenge reaches the LB that asked. So both
 * LBs always hold a valid certificate, renewals need no playbook run and no private key crosses the
 * controller. Needs the peers' `acme_http01_port` reachable from each other.
 *
 * Run it in a play after haproxy and keepalived (their handlers must have run): the challenge arrives
 * on the VIP:80 of the HAProxy that holds it.
 *
 * The served certificate's expiry is a metric for Prometheus (CertificateExpiringSoon):
 * `provision-cert-expiry` writes `ssl_certificate_expiry_seconds{path}` (notAfter, Unix time) into
 * node_exporter's textfile directory, hourly (a systemd timer), after each renewal (the deploy hook) and
 * when the role changes it. It runs as root with no capabilities (the PEMs are root's, mode 0600).
 */
import {defineRole, apt, file, copy, command, template, service, type TaskContext} from '../../src/index.ts';

function str(ctx: TaskContext, name: string): string {
  const v = ctx.vars[name];
  if (v === undefined || v === null || v === '') throw new Error(`variable '${name}' is not set`);
  return String(v);
}

const bundle = '/etc/ssl/certs/ca-certificates.crt';
const expiryScript = '/usr/local/sbin/provision-cert-expiry';
const expiryUnit = 'provision-cert-expiry';
const hookPath = '/etc/letsencrypt/renewal-hooks/deploy/haproxy';
const domain = (ctx: TaskContext): string => str(ctx, 'site_domain');
const live = (ctx: TaskContext): string => `/etc/letsencrypt/live/${domain(ctx)}`;

/** The certificates whose expiry is exported: `certbot_expiry_paths`, or HAProxy's PEM. */
export function expiryPaths(ctx: TaskContext): string[] {
  const v = ctx.vars.certbot_expiry_paths;
  const list = Array.isArray(v) && v.length > 0 ? v.map(String) : [str(ctx, 'haproxy_cert_path')];
  for (const p of list) if (!/^\/[\w./@+-]+$/.test(p)) throw new Error(`certbot_expiry_paths: '${p}' is not an absolute path of letters, digits and ./_@+-`);
  return list;
}

/** provision-cert-expiry.service: the exporter, once, as root without capabilities. */
export function expiryService(ctx: TaskContext): string {
  return [
    '# Managed by provision (role certbot).',
    '[Unit]',
    "Description=Served certificates' expiry for Prometheus (node_exporter textfile)",
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${expiryScript} ${expiryPaths(ctx).join(' ')}`,
    // Root only to read root's 0600 PEMs and write root's textfile directory: no capability needed.
    'CapabilityBoundingSet=',
    'NoNewPrivileges=yes',
    '',
  ].join('\n');
}

const expiryTimer = [
  '# Managed by provision (role certbot).',
  '[Unit]',
  "Description=Served certificates' expiry for Prometheus, hourly",
  '',
  '[Timer]',
  'OnBootSec=1min',
  'OnCalendar=hourly',
  'Persistent=true',
  '',
  '[Install]',
  'WantedBy=timers.target',
  '',
].join('\n');

/** The address the domain resolves to (the VIP): certbot waits until HAProxy answers there. */
const challengeAddress = (ctx: TaskContext): string => String(ctx.vars.certbot_challenge_address || ctx.vars.vip || '');

export default defineRole({
  name: 'certbot',
  defaults: {
    /** ACME directory URL. */
    acme_server: 'https://acme-v02.api.letsencrypt.org/directory',
    /** Account e-mail; empty: admin@site_domain. */
    acme_email: '',
    /** Port of certbot's standalone HTTP-01 listener (HAProxy forwards challenges to it). */
    acme_http01_port: 8888,
    /** Where HAProxy finds its PEM (fullchain + key), as in the haproxy role. */
    haproxy_cert_path: '/etc/haproxy/certs/site.pem',
    /** Address HAProxy answers the challenge on (the domain's A record); empty: `vip`. */
    certbot_challenge_address: '',
    /** Certificates whose expiry is exported to Prometheus; empty: `haproxy_cert_path` (what HAProxy serves). */
    certbot_expiry_paths: [] as string[],
    /** node_exporter's textfile collector directory (Debian's default). */
    node_exporter_textfile_dir: '/var/lib/prometheus/node-exporter',
  },
  tasks: [
    apt({packages: ['certbot', 'curl', 'ca-certificates']}, {name: 'certbot installed'}),

    // The ACME server's CA (a private ACME server such as the lab's pebble) is trusted by the common role,
    // which runs on every host before this one (acme_ca_cert).

    // Renewal: the deploy hook, certbot's environment and its timer.
    file({path: '/etc/letsencrypt/renewal-hooks/deploy', state: 'directory', owner: 'root', group: 'root', mode: '0755'}, {name: 'deploy hooks directory'}),
    template((ctx) => ({src: 'deploy-hook.sh.mustache', dest: hookPath, owner: 'root', group: 'root', mode: '0755', vars: {live: live(ctx)}}), {name: 'deploy hook: HAProxy PEM + reload'}),
    file({path: '/etc/systemd/system/certbot.service.d', state: 'directory', owner: 'root', group: 'root', mode: '0755'}, {name: 'certbot.service drop-in directory'}),
    copy(
      {
        dest: '/etc/systemd/system/certbot.service.d/provision.conf',
        owner: 'root',
        group: 'root',
        mode: '0644',
        content: [
          '# Managed by provision (role certbot).',
          '[Service]',
          `Environment=REQUESTS_CA_BUNDLE=${bundle}`,
          // The timer already waits a random delay (RandomizedDelaySec): no second sleep inside certbot.
          'ExecStart=',
          'ExecStart=/usr/bin/certbot -q renew --no-random-sleep-on-renew',
          '',
        ].join('\n'),
      },
      // A new drop-in directory is not flagged by systemd's NeedDaemonReload: reload explicitly.
      {name: 'certbot.service settings', notify: 'systemd daemon-reload'},
    ),

    // Issuance, once: after that the timer renews.
    command(
      (ctx) => {
        const vip = challengeAddress(ctx);
        return {
          argv: [
            'sh', '-c',
            // keepalived may still be electing: wait (30 s at most) until an HAProxy answers on the VIP.
            'i=0; until curl -s -o /dev/null --max-time 2 "http://$1/.well-known/acme-challenge/ping"; do ' +
              'i=$((i+1)); if [ $i -ge 30 ]; then echo "nothing answers on http://$1/" >&2; exit 1; fi; sleep 1; done',
            'wait-for-vip', vip,
          ],
          creates: `${live(ctx)}/fullchain.pem`,
        };
      },
      {name: 'HAProxy answers on the VIP', when: (ctx) => challengeAddress(ctx) !== ''},
    ),
    command(
      (ctx) => ({
        argv: [
          'env', `REQUESTS_CA_BUNDLE=${bundle}`,
          'certbot', 'certonly', '--standalone', '--non-interactive', '--agree-tos',
          '-m', String(ctx.vars.acme_email || `admin@${domain(ctx)}`),
          '--server', str(ctx, 'acme_server'),
          '--http-01-port', String(ctx.vars.acme_http01_port),
          '--cert-name', domain(ctx),
          '-d', domain(ctx),
        ],
        creates: `${live(ctx)}/fullchain.pem`,
      }),
      {name: 'certificate obtained'},
    ),
    command(
      (ctx) => ({
        argv: [hookPath],
        // Up to date when HAProxy's PEM is exactly the live certificate chain and key.
        unless: `cat ${live(ctx)}/fullchain.pem ${live(ctx)}/privkey.pem | cmp -s - ${str(ctx, 'haproxy_cert_path')}`,
      }),
      {name: 'HAProxy serves the certificate'},
    ),
    file((ctx) => ({path: str(ctx, 'haproxy_cert_path'), state: 'file', owner: 'root', group: 'root', mode: '0600'}), {name: 'HAProxy PEM private'}),
    service({name: 'certbot.timer', state: 'started', enabled: true}, {name: 'renewal timer'}),

    // The served certificate's expiry, for Prometheus.
    template({src: 'cert-expiry.sh.mustache', dest: expiryScript, owner: 'root', group: 'root', mode: '0755'}, {name: 'expiry exporter script', notify: 'write the expiry metric'}),
    copy(
      (ctx) => ({dest: `/etc/systemd/system/${expiryUnit}.service`, owner: 'root', group: 'root', mode: '0644', content: expiryService(ctx)}),
      {name: 'expiry exporter service', notify: ['systemd daemon-reload', 'write the expiry metric']},
    ),
    copy({dest: `/etc/systemd/system/${expiryUnit}.timer`, owner: 'root', group: 'root', mode: '0644', content: expiryTimer}, {name: 'expiry exporter timer unit', notify: 'systemd daemon-reload'}),
    service({name: `${expiryUnit}.timer`, state: 'started', enabled: true, daemonReload: true}, {name: 'expiry exporter timer'}),
    command(
      (ctx) => {
        const dir = String(ctx.vars.node_exporter_textfile_dir);
        return {argv: ['systemctl', 'start', `${expiryUnit}.service`], unless: `[ -e ${dir}/ssl_certificate.prom ] || [ ! -d ${dir} ]`};
      },
      {name: 'expiry metric written'},
    ),
  ],
  handlers: [
    command({argv: ['systemctl', 'daemon-reload']}, {name: 'systemd daemon-reload'}),
    command({argv: ['systemctl', 'start', `${expiryUnit}.service`]}, {name: 'write the expiry metric'}),
  ],
});
