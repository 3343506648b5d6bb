/**
 * Alert delivery, end to end, in the lab (issue 16): the site's Prometheus evaluates, its Alertmanager
 * on mon1 delivers to the lab's receiver on the bridge address (`lab up` runs it), which appends every
 * POST to .lab/alerts/received.jsonl. Every assertion reads that file: an alert in it went all the way.
 *
 * Self-contained: `lab up` (keeps what runs) and `run site` (a no-op on a converged lab), then one
 * fault at a time, each undone before the next: web1 powered off (WebServerDown), lb1 powered off
 * (LoadBalancerDown, VIPMoved), replication stopped on db2 (ReplicationBroken), a one-day certificate in
 * lb2's HAProxy PEM (CertificateExpiringSoon); each must arrive within 2 minutes, and its resolution
 * after the fault is undone. Lab down at the end (PROVISION_E2E_KEEP_LAB=1 keeps it).
 *
 * The lab inventory makes it quick: scrape and evaluation every 5 s, `for: 15s`, group_wait 2 s.
 */
import test from 'ava';
import {connect as tlsConnect} from 'node:tls';
import {existsSync, readFileSync} from 'node:fs';
import {join} from 'node:path';
import type {LabHost} from '../../src/lab/config.ts';
import {cfg, host, inventory, isRoot, paths, provision, root, run, sleep, ssh, tcpOpen} from '../helpers/lab.ts';
import {receiverFiles} from '../../src/lab/receiver.ts';

const received = receiverFiles(paths).received;
const mon = host('mon1').address;
const certPath = '/etc/haproxy/certs/site.pem';




/** One alert of a delivered notification (Alertmanager's webhook payload, version 4). */
interface Delivered {at: number; path: string; from: string; status: 'firing' | 'resolved'; labels: Record<string, string>}

/** Every alert the receiver got, in order. */
function deliveries(): Delivered[] {
  if (!existsSync(received)) return [];
  const out: Delivered[] = [];
  for (const line of readFileSync(received, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const r = JSON.parse(line) as {received_at: string; path: string; from: string; body: {alerts?: {status: 'firing' | 'resolved'; labels: Record<string, string>}[]}};
    for (const a of r.body?.alerts ?? []) out.push({at: Date.parse(r.received_at), path: r.path, from: r.from, status: a.status, labels: a.labels});
  }
  return out;
}

/** Wait (2 minutes at most) for `alertname` with these labels and status, delivered after `since`. */
async function waitDelivered(alertname: string, labels: Record<string, string>, since: number, status: 'firing' | 'resolved' = 'firing', timeoutMs = 120_000): Promise<Delivered | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hit = deliveries().find((d) => d.at >= since && d.status === status && d.labels.alertname === alertname && Object.entries(labels).every(([k, v]) => d.labels[k] === v));
    if (hit || Date.now() > end) return hit;
    await sleep(2000);
  }
}

/** What was delivered after `since`, one line per alert, for failure messages. */
const seen = (since: number): string =>
  deliveries().filter((d) => d.at >= since).map((d) => `${d.status} ${d.labels.alertname}{instance=${d.labels.instance ?? ''}}`).join(', ') || 'nothing';

/** Prometheus's HTTP API on mon1 (open to admin_network, which the controller is in). */
async function promQuery<T>(path: string): Promise<T> {
  const r = await run('curl', ['-s', '--max-time', '5', `http://${mon}:9090${path}`], 30_000);
  return (JSON.parse(r.stdout) as {data: T}).data;
}

const t = isRoot ? test.serial : test.serial.skip;
if (!isRoot) test.skip('the alert e2e tests (skipped: they need root on Linux)', () => undefined);

/** When this file started: deliveries before it are an earlier lab's. */
const startedAt = Date.now();
const figures: string[] = [];
test.after.always(async () => {
  if (figures.length) console.log(`\nalert figures:\n  ${figures.join('\n  ')}`);
  if (isRoot && !process.env.PROVISION_E2E_KEEP_LAB) await provision('lab', 'down', '-i', inventory);
});

t('lab up runs the alert receiver; the site converges', async (tt) => {
  const up = await provision('lab', 'up', '-i', inventory);
  tt.is(up.code, 0, up.stderr + up.stdout);
  const status = JSON.parse((await provision('lab', 'status', '--json', '-i', inventory)).stdout) as {services: {alert_receiver: {running: boolean}}};
  tt.true(status.services.alert_receiver.running, 'lab status: the alert receiver runs');
  const site = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(site.code, 0, site.stdout.split('\n').filter((l) => l.includes('"status":"failed"')).join('\n').slice(0, 5000) + site.stderr);
  figures.push(`lab up + run site: ${((up.ms + site.ms) / 1000).toFixed(1)} s`);
});

t('Alertmanager listens on mon1\'s loopback only; Prometheus sends to it; Watchdog reaches the receiver', async (tt) => {
  tt.false(await tcpOpen(mon, 9093), 'Alertmanager is not reachable from outside mon1');
  tt.false(await tcpOpen(mon, 9094), 'no cluster gossip port');
  // Prometheus finds its Alertmanager a moment after the reload that configured it.
  let urls: string[] = [];
  for (const t0 = Date.now(); urls.length === 0 && Date.now() - t0 < 60_000; await sleep(1000)) {
    urls = (await promQuery<{activeAlertmanagers: {url: string}[]}>('/api/v1/alertmanagers')).activeAlertmanagers.map((a) => a.url);
  }
  tt.deepEqual(urls, ['http://127.0.0.1:9093/api/v2/alerts']);
  // Watchdog fires at Prometheus's first evaluation, but reaches Alertmanager only once Prometheus has
  // found it after the reload that configured it: up to Prometheus's resend delay (1 min) later. One
  // delivered since this file started (not left from an earlier lab) proves delivery.
  const w = await waitDelivered('Watchdog', {}, startedAt, 'firing', 150_000);
  tt.truthy(w, `no Watchdog in ${received}`);
  tt.is(w?.path, '/watchdog');
  tt.is(w?.from.replace(/^::ffff:/, ''), mon, 'delivered by mon1');
});

t('at rest, nothing but Watchdog fires', async (tt) => {
  const end = Date.now() + 90_000;
  let firing: string[] = [];
  while (Date.now() < end) {
    const a = await promQuery<{alerts: {state: string; labels: Record<string, string>}[]}>('/api/v1/alerts');
    firing = a.alerts.filter((x) => x.labels.alertname !== 'Watchdog').map((x) => `${x.state} ${x.labels.alertname}{instance=${x.labels.instance ?? ''}}`);
    if (firing.length === 0) break;
    await sleep(3000);
  }
  tt.deepEqual(firing, []);
});

t('web1 powered off: WebServerDown arrives within 2 minutes, and resolves when it is back', async (tt) => {
  const t0 = Date.now();
  const off = await provision('lab', 'stop', 'web1', '-i', inventory);
  tt.is(off.code, 0, off.stderr);
  let fired: Delivered | undefined;
  try {
    fired = await waitDelivered('WebServerDown', {instance: 'web1'}, t0);
  } finally {
    const on = await provision('lab', 'start', 'web1', '-i', inventory);
    tt.is(on.code, 0, on.stderr);
  }
  tt.truthy(fired, `WebServerDown{instance=web1} not delivered; delivered: ${seen(t0)}`);
  if (fired) figures.push(`web1 off → WebServerDown delivered after ${((fired.at - t0) / 1000).toFixed(1)} s (InstanceDown of web1 ${deliveries().some((d) => d.at >= t0 && d.labels.alertname === 'InstanceDown' && d.labels.instance === 'web1') ? 'also delivered' : 'held back by the inhibition'})`);
  const t1 = Date.now();
  const resolved = await waitDelivered('WebServerDown', {instance: 'web1'}, t1, 'resolved');
  tt.truthy(resolved, `WebServerDown{instance=web1} never resolved; delivered: ${seen(t1)}`);
  if (resolved) figures.push(`web1 back → WebServerDown resolved after ${((resolved.at - t1) / 1000).toFixed(1)} s`);
});

t('lb1 powered off: LoadBalancerDown and VIPMoved (the VIP on lb2) arrive within 2 minutes, and resolve', async (tt) => {
  const t0 = Date.now();
  const off = await provision('lab', 'stop', 'lb1', '-i', inventory);
  tt.is(off.code, 0, off.stderr);
  let down: Delivered | undefined;
  let moved: Delivered | undefined;
  try {
    [down, moved] = await Promise.all([
      waitDelivered('LoadBalancerDown', {instance: 'lb1'}, t0),
      waitDelivered('VIPMoved', {instance: 'lb2', vip: String(cfg.vars.vip)}, t0),
    ]);
  } finally {
    const on = await provision('lab', 'start', 'lb1', '-i', inventory);
    tt.is(on.code, 0, on.stderr);
  }
  tt.truthy(down, `LoadBalancerDown{instance=lb1} not delivered; delivered: ${seen(t0)}`);
  tt.truthy(moved, `VIPMoved{instance=lb2} not delivered; delivered: ${seen(t0)}`);
  if (down && moved) figures.push(`lb1 off → LoadBalancerDown after ${((down.at - t0) / 1000).toFixed(1)} s, VIPMoved after ${((moved.at - t0) / 1000).toFixed(1)} s`);
  // lb1 back: it takes the VIP back (it is the preferred master), both resolve.
  const t1 = Date.now();
  const [up, back] = await Promise.all([
    waitDelivered('LoadBalancerDown', {instance: 'lb1'}, t1, 'resolved'),
    waitDelivered('VIPMoved', {instance: 'lb2'}, t1, 'resolved'),
  ]);
  tt.truthy(up, `LoadBalancerDown never resolved; delivered: ${seen(t1)}`);
  tt.truthy(back, `VIPMoved never resolved (the VIP did not return to lb1?); delivered: ${seen(t1)}`);
});

t('replication stopped on db2: ReplicationBroken arrives within 2 minutes, and resolves', async (tt) => {
  const t0 = Date.now();
  const stop = await ssh(host('db2'), 'mysql -e "STOP SLAVE SQL_THREAD"');
  tt.is(stop.code, 0, stop.stderr);
  let fired: Delivered | undefined;
  try {
    fired = await waitDelivered('ReplicationBroken', {instance: 'db2'}, t0);
  } finally {
    const start = await ssh(host('db2'), 'mysql -e "START SLAVE SQL_THREAD"');
    tt.is(start.code, 0, start.stderr);
  }
  tt.truthy(fired, `ReplicationBroken{instance=db2} not delivered; delivered: ${seen(t0)}`);
  if (fired) figures.push(`db2 SQL thread stopped → ReplicationBroken after ${((fired.at - t0) / 1000).toFixed(1)} s`);
  const t1 = Date.now();
  tt.truthy(await waitDelivered('ReplicationBroken', {instance: 'db2'}, t1, 'resolved'), `ReplicationBroken never resolved; delivered: ${seen(t1)}`);
});

t('a one-day certificate in lb2\'s HAProxy PEM: CertificateExpiringSoon arrives within 2 minutes, and resolves', async (tt) => {
  // Today's certificate is far from expiry (the baseline: nothing fires for it).
  const now = await promQuery<{result: {value: [number, string]}[]}>(`/api/v1/query?query=${encodeURIComponent('ssl_certificate_expiry_seconds{instance="lb2"} - time()')}`);
  tt.is(now.result.length, 1, 'lb2 exports its certificate\'s expiry');
  tt.true(Number(now.result[0]?.value[1]) > 14 * 86400, `the served certificate expires in ${Number(now.result[0]?.value[1]) / 86400} days`);
  // HAProxy keeps serving the certificate it loaded (no reload): only the file the exporter reads changes.
  const t0 = Date.now();
  const short = await ssh(host('lb2'), [
    `cp -p ${certPath} ${certPath}.e2e-backup`,
    'd=$(mktemp -d)',
    'openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=e2e-short -keyout $d/k -out $d/c 2>/dev/null',
    `cat $d/c $d/k > ${certPath}`,
    'rm -rf $d',
    'systemctl start provision-cert-expiry.service',
  ].join(' && '));
  tt.is(short.code, 0, short.stderr);
  let fired: Delivered | undefined;
  try {
    fired = await waitDelivered('CertificateExpiringSoon', {instance: 'lb2', path: certPath}, t0);
  } finally {
    const restore = await ssh(host('lb2'), `mv -f ${certPath}.e2e-backup ${certPath} && systemctl start provision-cert-expiry.service`);
    tt.is(restore.code, 0, restore.stderr);
  }
  tt.truthy(fired, `CertificateExpiringSoon{instance=lb2} not delivered; delivered: ${seen(t0)}`);
  if (fired) figures.push(`one-day certificate on lb2 → CertificateExpiringSoon after ${((fired.at - t0) / 1000).toFixed(1)} s`);
  const t1 = Date.now();
  tt.truthy(await waitDelivered('CertificateExpiringSoon', {instance: 'lb2'}, t1, 'resolved'), `CertificateExpiringSoon never resolved; delivered: ${seen(t1)}`);
});

/** The serial of the certificate HAProxy serves on `address`:443 for the site's name. */
function servedSerial(address: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({host: address, port: 443, servername: String(cfg.vars.site_domain), rejectUnauthorized: false, timeout: 3000}, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.end();
      resolve(serial);
    });
    s.on('timeout', () => s.destroy(new Error('timeout')));
    s.on('error', reject);
  });
}

/** `certbot renew --force-renewal` on `lb`, as its timer runs it; then the serial it serves, once it changed (or after 60 s). */
async function renewOn(lb: LabHost): Promise<{code: number; err: string; before: string; after: string; ms: number}> {
  const before = await servedSerial(lb.address);
  const t0 = Date.now();
  const r = await ssh(lb, 'certbot -q renew --force-renewal --no-random-sleep-on-renew');
  let after = before;
  while (Date.now() - t0 < 60_000 && after === before) {
    await sleep(500);
    after = await servedSerial(lb.address).catch(() => before);
  }
  return {code: r.code, err: r.stderr, before, after, ms: Date.now() - t0};
}

t('no single renewer: lb2 renews by itself while lb1 holds the VIP, and alone while lb1 is off; each serves its new certificate within a minute, no playbook run', async (tt) => {
  const [lb1, lb2] = [host('lb1'), host('lb2')];
  const lb1Serial = await servedSerial(lb1.address);
  // lb1 holds the VIP: the ACME server's challenge for lb2 arrives at lb1's HAProxy, which passes it to lb2's certbot.
  const a = await renewOn(lb2);
  tt.is(a.code, 0, a.err);
  tt.not(a.after, a.before, 'lb2 serves its renewed certificate');
  tt.is(await servedSerial(lb1.address), lb1Serial, 'lb1 kept its own');
  figures.push(`lb2 renews while lb1 holds the VIP: new certificate served after ${(a.ms / 1000).toFixed(1)} s`);
  // lb1 off: the VIP is on lb2, which renews alone.
  const off = await provision('lab', 'stop', 'lb1', '-i', inventory);
  tt.is(off.code, 0, off.stderr);
  try {
    await sleep(3000);
    const b = await renewOn(lb2);
    tt.is(b.code, 0, b.err);
    tt.not(b.after, b.before, 'lb2 renews with lb1 down');
    figures.push(`lb2 renews with lb1 off: new certificate served after ${(b.ms / 1000).toFixed(1)} s`);
  } finally {
    const on = await provision('lab', 'start', 'lb1', '-i', inventory);
    tt.is(on.code, 0, on.stderr);
  }
  // And lb1 for itself, once back (the VIP returns to it).
  await sleep(3000);
  const c = await renewOn(lb1);
  tt.is(c.code, 0, c.err);
  tt.not(c.after, c.before, 'lb1 renews too');
});

t('after the faults, a site run changes nothing', async (tt) => {
  const r = await provision('run', 'site', '-i', inventory, '--json');
  tt.is(r.code, 0, r.stderr);
  const recap = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as {hosts: Record<string, {changed: number}>};
  const changed = r.stdout.split('\n').filter((l) => l.includes('"status":"changed"'));
  for (const h of cfg.hosts) tt.is(recap.hosts[h.name]?.changed, 0, `${h.name}: ${changed.filter((l) => l.includes(`"host":"${h.name}"`)).join('\n')}`);
});
