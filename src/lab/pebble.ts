/**
 * The lab's ACME test server: Debian's `pebble` on the bridge address, resolving names through
 * `pebble-challtestsrv` (empty defaults, so unknown names do not resolve to 127.0.0.1), with its own
 * small CA for pebble's HTTPS listener. Pebble makes a new root at every start: fetch it from the
 * management port (`fetchPebbleRoot`).
 */
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs';
import {request as httpsRequest} from 'node:https';
import {request as httpRequest} from 'node:http';
import {join} from 'node:path';
import type {LabPaths} from './config.ts';
import {runCmd, spawnDetached, waitFor} from './run.ts';
import {daemonOf, isAlive, type DaemonState} from './state.ts';
import {tcpOpen} from './net-probe.ts';

export const ACME_PORT = 14000;
export const ACME_MGMT_PORT = 15000;
export const DNS_PORT = 8053;
export const DNS_MGMT_PORT = 8055;

export interface PebbleFiles {
  readonly dir: string;
  /** The lab CA that signed pebble's listener certificate (hosts trust it, so certbot can talk to pebble). */
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly config: string;
  /** Pebble's current root CA (issuer of the certificates it hands out). */
  readonly roots: string;
}

export function pebbleFiles(paths: LabPaths): PebbleFiles {
  const dir = paths.pebble;
  return {
    dir,
    caCert: join(dir, 'lab-ca.pem'),
    caKey: join(dir, 'lab-ca.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    config: join(dir, 'pebble-config.json'),
    roots: join(dir, 'roots.pem'),
  };
}

/** The lab CA and a server certificate for the bridge IP (made once; the server cert again if the IP changes). */
export async function ensureCerts(f: PebbleFiles, ip: string): Promise<void> {
  mkdirSync(f.dir, {recursive: true});
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  if (!existsSync(f.caCert) || !existsSync(f.caKey)) {
    await runCmd(['openssl', 'req', '-x509', ...ec, '-keyout', f.caKey, '-out', f.caCert, '-days', '3650', '-subj', '/CN=provision lab CA']);
  }
  const ipFile = join(f.dir, 'server.ip');
  if (existsSync(f.serverCert) && existsSync(ipFile) && readFileSync(ipFile, 'utf8') === ip) return;
  const csr = join(f.dir, 'server.csr');
  const ext = join(f.dir, 'server.ext');
  writeFileSync(ext, `subjectAltName=IP:${ip}\nextendedKeyUsage=serverAuth\n`);
  await runCmd(['openssl', 'req', ...ec, '-keyout', f.serverKey, '-out', csr, '-subj', `/CN=${ip}`]);
  await runCmd(['openssl', 'x509', '-req', '-in', csr, '-CA', f.caCert, '-CAkey', f.caKey, '-CAcreateserial', '-out', f.serverCert, '-days', '3650', '-extfile', ext]);
  writeFileSync(ipFile, ip);
}

function post(host: string, port: number, path: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = httpRequest({host, port, path, method: 'POST', headers: {'content-type': 'application/json', 'content-length': Buffer.byteLength(data)}, timeout: 5000}, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`POST ${path}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${path}: timeout`)));
    req.on('error', reject);
    req.end(data);
  });
}

/** Fetch pebble's current root CA from `https://IP:15000/roots/0`, trusting the lab CA. */
export function fetchPebbleRoot(ip: string, labCaPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({host: ip, port: ACME_MGMT_PORT, path: '/roots/0', ca: labCaPem, timeout: 5000}, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => (res.statusCode === 200 && body.includes('BEGIN CERTIFICATE') ? resolve(body) : reject(new Error(`roots/0: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error('roots/0: timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Add (or replace) A records in pebble-challtestsrv's DNS. */
export async function addARecords(ip: string, records: Readonly<Record<string, string>>): Promise<void> {
  for (const [host, addr] of Object.entries(records)) await post(ip, DNS_MGMT_PORT, '/add-a', {host, addresses: [addr]});
}

export interface PebbleDaemons {
  challtestsrv: DaemonState;
  pebble: DaemonState;
  started: boolean;
}

/** Start challtestsrv and pebble on `ip` unless the recorded ones still run. */
export async function ensurePebble(
  paths: LabPaths,
  ip: string,
  current: {pebble?: DaemonState; challtestsrv?: DaemonState},
): Promise<PebbleDaemons> {
  const f = pebbleFiles(paths);
  mkdirSync(paths.logs, {recursive: true});
  let started = false;
  let challtestsrv = current.challtestsrv;
  if (!challtestsrv || !(await isAlive(challtestsrv))) {
    if (await tcpOpen(ip, DNS_MGMT_PORT, 500)) throw new Error(`port ${ip}:${DNS_MGMT_PORT} is taken by another program`);
    const pid = spawnDetached(
      ['pebble-challtestsrv', '-dns01', `${ip}:${DNS_PORT}`, '-management', `${ip}:${DNS_MGMT_PORT}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-defaultIPv4', '', '-defaultIPv6', ''],
      join(paths.logs, 'pebble-challtestsrv.log'),
    );
    challtestsrv = await daemonOf(pid);
    started = true;
  }
  const dns = challtestsrv;
  if (!(await waitFor(async () => (await isAlive(dns)) && (await tcpOpen(ip, DNS_MGMT_PORT, 500)), 15_000)))
    throw new Error(`pebble-challtestsrv did not start; see ${join(paths.logs, 'pebble-challtestsrv.log')}`);

  let pebble = current.pebble;
  if (!pebble || !(await isAlive(pebble))) {
    await ensureCerts(f, ip);
    const config = {
      pebble: {
        listenAddress: `${ip}:${ACME_PORT}`,
        managementListenAddress: `${ip}:${ACME_MGMT_PORT}`,
        certificate: f.serverCert,
        privateKey: f.serverKey,
        httpPort: 80,
        tlsPort: 443,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    };
    writeFileSync(f.config, `${JSON.stringify(config, null, 2)}\n`);
    if (await tcpOpen(ip, ACME_PORT, 500)) throw new Error(`port ${ip}:${ACME_PORT} is taken by another program`);
    const pid = spawnDetached(['pebble', '-config', f.config, '-dnsserver', `${ip}:${DNS_PORT}`], join(paths.logs, 'pebble.log'), {
      PEBBLE_VA_NOSLEEP: '1',
      PEBBLE_WFE_NONCEREJECT: '0',
    });
    pebble = await daemonOf(pid);
    started = true;
  }
  const acme = pebble;
  if (!(await waitFor(async () => (await isAlive(acme)) && (await tcpOpen(ip, ACME_PORT, 500)) && (await tcpOpen(ip, ACME_MGMT_PORT, 500)), 20_000)))
    throw new Error(`pebble did not start; see ${join(paths.logs, 'pebble.log')}`);
  const root = await fetchPebbleRoot(ip, readFileSync(f.caCert, 'utf8'));
  writeFileSync(f.roots, root);
  return {challtestsrv: dns, pebble: acme, started};
}
