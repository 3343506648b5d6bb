/**
 * Every host: base packages, trust of the ACME server's CA (when `acme_ca_cert` is set) and
 * prometheus-node-exporter on :9100 (without its recommends: `nvmf-autoconnect` and `openipmi` fail in
 * containers and are not needed).
 *
 * The CA goes to the same file as the certbot role's (`provision-acme-ca.crt`), with the same content:
 * when both roles run, the second finds it in place.
 */
import {existsSync, readFileSync} from 'node:fs';
import {defineRole, apt, copy, command, service, type TaskContext} from '../../src/index.ts';

const bundle = '/etc/ssl/certs/ca-certificates.crt';
const caFile = '/usr/local/share/ca-certificates/provision-acme-ca.crt';

/** `acme_ca_cert`: PEM text, or a path on the controller (relative to the working directory). */
function caPem(ctx: TaskContext): string {
  const v = String(ctx.vars.acme_ca_cert ?? '');
  if (v.includes('-----BEGIN CERTIFICATE-----')) return v.endsWith('\n') ? v : `${v}\n`;
  if (!existsSync(v)) throw new Error(`acme_ca_cert: '${v}' is neither a PEM certificate nor a file on the controller`);
  const pem = readFileSync(v, 'utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`acme_ca_cert: ${v} holds no PEM certificate`);
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}
const hasCa = (ctx: TaskContext): boolean => String(ctx.vars.acme_ca_cert ?? '') !== '';
const on = (v: unknown): boolean => v === true || v === 'true';

function packages(ctx: TaskContext): string[] {
  const base = Array.isArray(ctx.vars.common_packages) ? ctx.vars.common_packages.map(String) : [];
  return [...base, ...(on(ctx.vars.node_exporter_enabled) ? ['prometheus-node-exporter'] : [])];
}

export default defineRole({
  name: 'common',
  defaults: {
    /** Packages on every host. */
    common_packages: ['ca-certificates', 'curl'],
    /** Extra CA to trust (the lab's ACME server): PEM text or a controller path. Empty: none. */
    acme_ca_cert: '',
    /** prometheus-node-exporter installed, enabled and running (it listens on :9100). */
    node_exporter_enabled: true,
  },
  tasks: [
    apt((ctx) => ({packages: packages(ctx), installRecommends: false}), {name: 'base packages and node_exporter'}),

    copy((ctx) => ({content: caPem(ctx), dest: caFile, owner: 'root', group: 'root', mode: '0644'}), {name: 'ACME server CA', when: hasCa}),
    command(
      () => ({
        argv: ['update-ca-certificates'],
        // Up to date when the CA's body is in the bundle (a missing file is not: grep -F '' matches anything).
        unless: `[ -s ${caFile} ] && tr -d '\\r\\n' < ${bundle} | grep -qF "$(sed '/^-----/d' ${caFile} | tr -d '\\r\\n')"`,
      }),
      {name: 'ACME server CA trusted', when: hasCa},
    ),

    // daemonReload: in --check on a fresh host the package (and so the unit) is not there yet.
    service({name: 'prometheus-node-exporter', state: 'started', enabled: true, daemonReload: true}, {name: 'node_exporter running', when: (ctx) => on(ctx.vars.node_exporter_enabled)}),
  ],
});
