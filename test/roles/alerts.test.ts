/**
 * Alert delivery, without a lab: the monitoring templates rendered for the lab inventory and checked by
 * the real tools (`promtool check config`, `promtool check rules`, `amtool check-config`), the alerts
 * proven on series by `promtool test rules` (test/roles/alerts/site-rules.test.yml: series in, alerts
 * out), Alertmanager's routing by `amtool config routes test`, and the two textfile exporters (VIP
 * holder, certificate expiry) run for real on this machine. Skipped, visibly, without the tools
 * (scripts/install-deps.sh installs prometheus and prometheus-alertmanager).
 */
import test from 'ava';
import {execFileSync, spawnSync} from 'node:child_process';
import {copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {join} from 'node:path';
import {parse} from 'yaml';
import {Secret} from '../../src/core/secret.ts';
import type {TaskContext, Vars} from '../../src/core/types.ts';
import {renderTemplate} from '../../src/templates/render.ts';
import {loadLabConfig} from '../../src/lab/config.ts';
import alertmanagerRole, {alertmanagerVars, alertmanagerArgs} from '../../roles/alertmanager/index.ts';
import prometheusRole, {configVars, rulesVars} from '../../roles/prometheus/index.ts';
import keepalivedRole, {configVars as keepalivedVars} from '../../roles/keepalived/index.ts';
import certbotRole, {expiryPaths, expiryService} from '../../roles/certbot/index.ts';

const root = join(import.meta.dirname, '..', '..');
const cfg = loadLabConfig(join(root, 'inventory/lab.yml'));
const labVars = cfg.vars as Vars;
const groups: Record<string, string[]> = {all: cfg.hosts.map((h) => h.name)};
for (const h of cfg.hosts) for (const g of h.groups) (groups[g] ??= []).push(h.name);
const address = (h: string): string => cfg.hosts.find((x) => x.name === h)!.address;

/** A task context for `host` of the lab, with `defaults` under the lab inventory's vars. */
function ctx(host: string, defaults: Vars | undefined, extra: Vars = {}): TaskContext {
  return {
    host,
    vars: {...defaults, ...labVars, inventory_hostname: host, ...extra},
    facts: {defaultIpv4: {interface: 'host0', address: address(host)}} as unknown as TaskContext['facts'],
    groups,
    groupNames: cfg.hosts.find((x) => x.name === host)!.groups,
    hostvars: (h) => ({ansible_host: address(h), results: {}}),
    results: {},
    check: false,
    render: () => '',
    readFile: () => Buffer.alloc(0),
    secret: (v) => new Secret(v),
  };
}

const render = (role: string, name: string, c: TaskContext, extra: Vars): string =>
  renderTemplate(join(root, 'roles', role), name, {...c.vars, groups: c.groups, ...extra});

const has = (bin: string): boolean => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
const promtool = has('promtool');
const amtool = has('amtool');
// The real tools or a failure (scripts/install-deps.sh installs prometheus and prometheus-alertmanager), never a skip.
const withPromtool = promtool ? test : (title: string) => test(title, (t) => t.fail('promtool is not installed (scripts/install-deps.sh installs prometheus)'));
const withAmtool = amtool ? test : (title: string) => test(title, (t) => t.fail('amtool is not installed (scripts/install-deps.sh installs prometheus-alertmanager)'));

const dir = mkdtempSync(join(tmpdir(), 'prov-alerts-'));
test.after.always(() => rmSync(dir, {recursive: true, force: true}));

const mon = ctx('mon1', prometheusRole.defaults);
const rulesPath = join(dir, 'site.yml');
writeFileSync(rulesPath, render('prometheus', 'site-rules.yml.mustache', mon, rulesVars(mon)));
const configPath = join(dir, 'prometheus.yml');
writeFileSync(configPath, render('prometheus', 'prometheus.yml.mustache', mon, {...configVars(mon), rules_file: rulesPath}));
const am = ctx('mon1', alertmanagerRole.defaults);
const amPath = join(dir, 'alertmanager.yml');
writeFileSync(amPath, render('alertmanager', 'alertmanager.yml.mustache', am, alertmanagerVars(am)));

/** Run a tool; its output on failure, for the assertion message. */
function tool(bin: string, args: readonly string[]): {ok: boolean; out: string} {
  const r = spawnSync(bin, args, {encoding: 'utf8', cwd: dir});
  return {ok: r.status === 0, out: `${r.stdout}${r.stderr}`};
}

test('prometheus.yml for the lab: Alertmanager on loopback, every job, lab intervals', (t) => {
  const conf = parse(readFileSync(configPath, 'utf8')) as {
    global: Record<string, string>;
    alerting: {alertmanagers: {static_configs: {targets: string[]}[]}[]};
    scrape_configs: {job_name: string}[];
  };
  t.deepEqual(conf.alerting.alertmanagers[0]!.static_configs[0]!.targets, ['127.0.0.1:9093']);
  t.deepEqual(conf.scrape_configs.map((j) => j.job_name), ['prometheus', 'alertmanager', 'node', 'haproxy', 'mysqld']);
  t.is(conf.global.scrape_interval, '5s');
  const none = ctx('mon1', prometheusRole.defaults, {prometheus_alertmanagers: []});
  t.false(render('prometheus', 'prometheus.yml.mustache', none, configVars(none)).includes('alerting:'), 'no Alertmanager: no alerting section');
  t.throws(() => configVars(ctx('mon1', prometheusRole.defaults, {prometheus_alertmanagers: ['http://x']})), {message: /not host:port/});
  // provision watch endpoints: a job of their own, only when given.
  const watched = ctx('mon1', prometheusRole.defaults, {prometheus_watch_targets: ['10.231.0.1:9469']});
  const withWatch = parse(render('prometheus', 'prometheus.yml.mustache', watched, configVars(watched))) as {scrape_configs: {job_name: string; static_configs: {targets: string[]}[]}[]};
  t.deepEqual(withWatch.scrape_configs.find((j) => j.job_name === 'provision_watch')?.static_configs[0]?.targets, ['10.231.0.1:9469']);
  t.throws(() => configVars(ctx('mon1', prometheusRole.defaults, {prometheus_watch_targets: ['http://ctl:9469/metrics']})), {message: /not host:port/});
});

withPromtool('promtool check config and check rules accept the rendered files', (t) => {
  const c = tool('promtool', ['check', 'config', configPath]);
  t.true(c.ok, c.out);
  const r = tool('promtool', ['check', 'rules', rulesPath]);
  t.true(r.ok, r.out);
  t.regex(r.out, /SUCCESS: \d+ rules found/);
});

withPromtool('promtool test rules: each alert fires on its series, and only there (test/roles/alerts/site-rules.test.yml)', (t) => {
  copyFileSync(join(root, 'test/roles/alerts/site-rules.test.yml'), join(dir, 'site-rules.test.yml'));
  const r = tool('promtool', ['test', 'rules', join(dir, 'site-rules.test.yml')]);
  t.true(r.ok, r.out);
  t.regex(r.out, /SUCCESS/);
});

test('alertmanager.yml for the lab: the lab receiver, Watchdog apart, short group_wait', (t) => {
  const conf = parse(readFileSync(amPath, 'utf8')) as {
    route: {receiver: string; group_wait: string; routes: {receiver: string}[]};
    receivers: {name: string; webhook_configs?: {url: string}[]}[];
  };
  t.is(conf.route.group_wait, '2s');
  t.deepEqual(conf.receivers.map((r) => [r.name, r.webhook_configs?.[0]?.url]), [
    ['site', 'http://10.231.0.1:19093/alerts'],
    ['watchdog', 'http://10.231.0.1:19093/watchdog'],
  ]);
  t.regex(alertmanagerArgs(am), /^ARGS="--web.listen-address=127\.0\.0\.1:9093 --cluster.listen-address="$/m, 'loopback only, no gossip port');
});

test('alertmanager_webhook_url is required (or explicitly none) and must be an http(s) URL', (t) => {
  t.throws(() => alertmanagerVars(ctx('mon1', alertmanagerRole.defaults, {alertmanager_webhook_url: ''})), {message: /alertmanager_webhook_url' is not set/});
  t.throws(() => alertmanagerVars(ctx('mon1', alertmanagerRole.defaults, {alertmanager_webhook_url: 'ftp://x/'})), {message: /not an http\(s\) URL/});
  t.throws(() => alertmanagerVars(ctx('mon1', alertmanagerRole.defaults, {alertmanager_webhook_url: "http://x/'a"})), {message: /quote or a space/});
  const none = ctx('mon1', alertmanagerRole.defaults, {alertmanager_webhook_url: 'none', alertmanager_watchdog_url: ''});
  const text = render('alertmanager', 'alertmanager.yml.mustache', none, alertmanagerVars(none));
  t.false(text.includes('webhook_configs'));
});

withAmtool('amtool check-config accepts it; routes: alerts to site, Watchdog to watchdog', (t) => {
  const c = tool('amtool', ['check-config', amPath]);
  t.true(c.ok, c.out);
  const route = (...labels: string[]): string =>
    spawnSync('amtool', ['config', 'routes', 'test', `--config.file=${amPath}`, ...labels], {encoding: 'utf8'}).stdout.trim();
  t.is(route('alertname=WebServerDown', 'instance=web1'), 'site');
  t.is(route('alertname=Watchdog'), 'watchdog');
  const none = ctx('mon1', alertmanagerRole.defaults, {alertmanager_webhook_url: 'none', alertmanager_watchdog_url: ''});
  writeFileSync(join(dir, 'am-none.yml'), render('alertmanager', 'alertmanager.yml.mustache', none, alertmanagerVars(none)));
  const n = tool('amtool', ['check-config', join(dir, 'am-none.yml')]);
  t.true(n.ok, n.out);
});

/** A textfile exporter script rendered for the lab, with its directory moved to `textfile`. */
function script(role: string, name: string, c: TaskContext, extra: Vars, textfile: string): string {
  const path = join(dir, name.replace('.mustache', ''));
  writeFileSync(path, render(role, name, c, {...extra, node_exporter_textfile_dir: textfile}), {mode: 0o755});
  return path;
}

test('keepalived: each VRRP instance notifies the VIP metric script as root; lb1 is the preferred holder', (t) => {
  const lb1 = ctx('lb1', keepalivedRole.defaults);
  const conf = render('keepalived', 'keepalived.conf.mustache', lb1, keepalivedVars(lb1));
  t.regex(conf, /^ {4}notify \/usr\/local\/sbin\/keepalived-vip-metric root$/m);
  const aa = ctx('lb2', keepalivedRole.defaults, {lb_mode: 'active-active'});
  const inst = (keepalivedVars(aa).instances as {vip: string; preferred: string}[]).map((i) => `${i.vip} ${i.preferred}`);
  t.deepEqual(inst, ['10.231.0.10 false', '10.231.0.9 true'], 'active-active: lb2 is the preferred holder of the second VIP');
});

test('keepalived-vip-metric writes keepalived_vip_held from the notified state', (t) => {
  const textfile = mkdtempSync(join(dir, 'tf-'));
  const lb2 = ctx('lb2', keepalivedRole.defaults, {lb_mode: 'active-active', keepalived_interface: 'no-such-if0'});
  const s = script('keepalived', 'keepalived-vip-metric.mustache', lb2, keepalivedVars(lb2), textfile);
  execFileSync(s, ['INSTANCE', 'VI_VIP', 'MASTER', '100']);
  const prom = readFileSync(join(textfile, 'keepalived_vip.prom'), 'utf8');
  t.regex(prom, /^keepalived_vip_held\{vip="10\.231\.0\.10",vrrp_instance="VI_VIP",preferred="false"\} 1$/m);
  t.regex(prom, /^keepalived_vip_held\{vip="10\.231\.0\.9",vrrp_instance="VI_VIP2",preferred="true"\} 0$/m, 'not notified: read from the interface');
  execFileSync(s, ['INSTANCE', 'VI_VIP', 'BACKUP', '100']);
  t.regex(readFileSync(join(textfile, 'keepalived_vip.prom'), 'utf8'), /preferred="false"\} 0$/m);
  t.deepEqual(execFileSync('ls', ['-A', textfile], {encoding: 'utf8'}).trim().split('\n'), ['.keepalived_vip.lock', 'keepalived_vip.prom'], 'no temporary file left');
  if (promtool) {
    const r = spawnSync('promtool', ['check', 'metrics'], {input: prom, encoding: 'utf8'});
    t.is(r.status, 0, r.stdout + r.stderr);
  }
});

test('provision-cert-expiry writes the notAfter of each certificate, and 0 readable for a missing one', (t) => {
  const textfile = mkdtempSync(join(dir, 'tf-'));
  const lb1 = ctx('lb1', certbotRole.defaults);
  t.deepEqual(expiryPaths(lb1), ['/etc/haproxy/certs/site.pem']);
  t.regex(expiryService(lb1), /^ExecStart=\/usr\/local\/sbin\/provision-cert-expiry \/etc\/haproxy\/certs\/site\.pem$/m);
  t.regex(expiryService(lb1), /^CapabilityBoundingSet=$/m);
  t.throws(() => expiryPaths(ctx('lb1', certbotRole.defaults, {certbot_expiry_paths: ['relative.pem']})), {message: /absolute path/});
  const s = script('certbot', 'cert-expiry.sh.mustache', lb1, {}, textfile);
  // A one-day certificate with its key after it, as in HAProxy's PEM.
  const pem = join(dir, 'short.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=short', '-keyout', join(dir, 'short.key'), '-out', join(dir, 'short.crt')], {stdio: 'ignore'});
  writeFileSync(pem, readFileSync(join(dir, 'short.crt'), 'utf8') + readFileSync(join(dir, 'short.key'), 'utf8'));
  execFileSync(s, [pem, join(dir, 'missing.pem')]);
  const prom = readFileSync(join(textfile, 'ssl_certificate.prom'), 'utf8');
  const m = new RegExp(`^ssl_certificate_expiry_seconds\\{path="${pem}"\\} (\\d+)$`, 'm').exec(prom);
  t.truthy(m, prom);
  const inADay = Date.now() / 1000 + 86400;
  t.true(Math.abs(Number(m![1]) - inADay) < 120, `notAfter ${m![1]} is about now + 1 day (${inADay})`);
  t.regex(prom, new RegExp(`^ssl_certificate_readable\\{path="${pem}"\\} 1$`, 'm'));
  t.regex(prom, /^ssl_certificate_readable\{path="[^"]*missing\.pem"\} 0$/m);
  if (promtool) {
    const r = spawnSync('promtool', ['check', 'metrics'], {input: prom, encoding: 'utf8'});
    t.is(r.status, 0, r.stdout + r.stderr);
  }
});

test('alertmanager: a reload is never sent right after a restart (reload is the first handler)', (t) => {
  // Both are notified on a first run; a SIGHUP that reaches the new process before it handles it ends
  // it, and systemd counts that as a clean exit (the alerts e2e caught Alertmanager down so).
  const names = (alertmanagerRole.handlers ?? []).map((h) => h.options.name);
  t.deepEqual(names, ['reload alertmanager', 'restart alertmanager']);
});
