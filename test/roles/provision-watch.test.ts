/**
 * The provision_watch role without a lab: the release (what is shipped, its key, its archive, and the
 * key an unpacked release computes for itself, which is what keeps the watcher's check of its own
 * host free of drift), the unit, the variables the service starts with, the authorized key line, and
 * Prometheus scraping the watcher of its own host. The e2e (test/e2e/site.test.ts) runs it in the lab.
 */
import test from 'ava';
import {execFileSync} from 'node:child_process';
import {mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join} from 'node:path';
import {Secret} from '../../src/core/secret.ts';
import type {TaskContext, TaskResult, Vars} from '../../src/core/types.ts';
import {loadLabConfig} from '../../src/lab/config.ts';
import watchRole, {authorizedLine, unitText, watcherVars} from '../../roles/provision_watch/index.ts';
import prometheusRole, {configVars} from '../../roles/prometheus/index.ts';
import {nodeInRelease, releaseArchive, releaseFiles, releaseKey, type ReleaseSpec} from '../../roles/provision_watch/release.ts';

const root = join(import.meta.dirname, '..', '..');
const tmp = mkdtempSync(join(tmpdir(), 'prov-watch-role-'));
test.after.always(() => rmSync(tmp, {recursive: true, force: true}));

function put(base: string, rel: string, content = rel): void {
  mkdirSync(dirname(join(base, rel)), {recursive: true});
  writeFileSync(join(base, rel), content);
}

/** A project: sources, a lock with production, dev and missing optional packages, and what is never shipped. */
function project(name: string): string {
  const p = join(tmp, name);
  put(p, 'package.json', '{"name": "infra"}');
  put(p, 'package-lock.json', JSON.stringify({lockfileVersion: 3, packages: {
    '': {name: 'infra'},
    'node_modules/prod': {version: '1.0.0'},
    'node_modules/prod/node_modules/nested': {version: '2.0.0'},
    'node_modules/devonly': {version: '1.0.0', dev: true},
    'node_modules/@esbuild/other-platform': {version: '1.0.0', optional: true},
  }}));
  for (const f of ['playbooks/site.ts', 'inventory/hosts.yml', 'inventory/group_vars/all/vault.yml', 'node_modules/prod/index.js',
    'node_modules/prod/node_modules/nested/index.js', 'node_modules/devonly/index.js', 'node_modules/.cache/provision/x.mjs', 'node_modules/.bin/tool',
    '.git/HEAD', '.lab/ssh/id_ed25519', '.lab/vault-pass', 'site.retry', 'logs/run.log']) put(p, f);
  return p;
}

const exclude = ['.git', '.lab', '.provision', '.secrets', 'tmp', '*.retry', '*.log'];

test('the release holds the project and its production packages, not what is excluded; include puts a file back', (t) => {
  const p = project('files');
  const files = releaseFiles({root: p, exclude, include: ['.lab/vault-pass']});
  t.deepEqual(files, [
    '.lab/vault-pass', 'inventory/group_vars/all/vault.yml', 'inventory/hosts.yml', 'node_modules/prod/index.js',
    'node_modules/prod/node_modules/nested/index.js', 'package-lock.json', 'package.json', 'playbooks/site.ts',
  ]);
  t.throws(() => releaseFiles({root: p, exclude, include: ['../elsewhere']}), {message: /provision_watch_include: '..\/elsewhere' is not a path inside the project/});
  t.throws(() => releaseFiles({root: p, exclude, include: ['nope.pem']}), {message: /provision_watch_include: 'nope.pem' does not exist/});
});

test('provision installed as a dev dependency: the dev packages are shipped too (its dependencies are dev then)', (t) => {
  const p = project('devdep');
  put(p, 'package-lock.json', JSON.stringify({lockfileVersion: 3, packages: {'': {}, 'node_modules/provision': {dev: true}, 'node_modules/devonly': {dev: true}, 'node_modules/prod': {}}}));
  put(p, 'node_modules/provision/bin/provision.js');
  const mods = (provision?: string): string[] => releaseFiles({root: p, exclude, include: [], ...(provision ? {provision} : {})}).filter((f) => f.startsWith('node_modules/'));
  t.deepEqual(mods('node_modules/provision'), ['node_modules/devonly/index.js', 'node_modules/prod/index.js', 'node_modules/provision/bin/provision.js']);
  t.deepEqual(mods(), ['node_modules/prod/index.js'], 'a package the lock does not list (prod/node_modules/nested here) is not shipped');
});

test('without a package-lock.json, all of node_modules but .bin and .cache', (t) => {
  const p = project('nolock');
  rmSync(join(p, 'package-lock.json'));
  const mods = releaseFiles({root: p, exclude, include: []}).filter((f) => f.startsWith('node_modules/'));
  t.deepEqual(mods, ['node_modules/devonly/index.js', 'node_modules/prod/index.js', 'node_modules/prod/node_modules/nested/index.js']);
});

test('the key follows content, size and mtime; the archive is built once, 0600, and an unpacked release computes the same key', (t) => {
  const p = project('key');
  const spec: ReleaseSpec = {root: p, exclude, include: ['.lab/vault-pass']};
  const key = releaseKey(spec, releaseFiles(spec));
  t.is(releaseKey(spec, releaseFiles(spec)), key, 'stable');

  const cache = join(tmp, 'cache');
  const a = releaseArchive(spec, cache);
  t.is(a.key, key);
  t.is(statSync(a.archive).mode & 0o777, 0o600, 'the archive may hold the vault password file');
  const again = releaseArchive(spec, cache);
  t.is(again.archive, a.archive);
  t.is(statSync(again.archive).mtimeMs, statSync(a.archive).mtimeMs, 'not built twice');

  const out = join(tmp, 'unpacked');
  mkdirSync(out);
  execFileSync('tar', ['-xzf', a.archive, '-C', out]);
  const node = join(out, nodeInRelease);
  t.true(statSync(node).size > 1_000_000, 'Node.js is in the release');
  t.is(execFileSync(node, ['-p', 'process.version'], {encoding: 'utf8'}).trim(), process.version);
  const unpacked: ReleaseSpec = {root: out, exclude, include: ['.lab/vault-pass'], node};
  t.deepEqual(releaseFiles(unpacked), releaseFiles(spec), 'the same files, the binary not among them');
  t.is(releaseKey(unpacked, releaseFiles(unpacked)), key, 'the watcher finds its own release in place');

  // A one-byte edit changes the size; an edit of the same size still changes the mtime.
  writeFileSync(join(p, 'playbooks/site.ts'), 'playbooks/site.ts!');
  const edited = releaseKey(spec, releaseFiles(spec));
  t.not(edited, key);
  utimesSync(join(p, 'playbooks/site.ts'), new Date(), new Date(Date.now() + 5000));
  t.not(releaseKey(spec, releaseFiles(spec)), edited);
  const b = releaseArchive(spec, cache);
  t.deepEqual(readdirSync(cache).filter((f) => f.endsWith('.tar.gz')), [`${b.key}.tar.gz`], 'older archives removed');
});

const cfg = loadLabConfig(join(root, 'inventory/lab.yml'));
const groups: Record<string, string[]> = {all: cfg.hosts.map((h) => h.name)};
for (const h of cfg.hosts) for (const g of h.groups) (groups[g] ??= []).push(h.name);
const address = (h: string): string => cfg.hosts.find((x) => x.name === h)!.address;
const pubkey = {rc: 0, stdout: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyFakeKeyFakeKeyFakeKeyFakeKeyFakeKey provision-watch@mon1\n'} as TaskResult;

function ctx(host: string, defaults: Vars, extra: Vars = {}): TaskContext {
  const vars = {...defaults, ...(cfg.vars as Vars), ...extra};
  return {
    host,
    vars,
    facts: {architecture: 'x86_64'} as unknown as TaskContext['facts'],
    groups,
    groupNames: cfg.hosts.find((x) => x.name === host)!.groups,
    hostvars: (h) => ({...vars, ansible_host: address(h), results: (h === 'mon1' ? {provision_watch_pubkey: pubkey} : {}) as Record<string, TaskResult>}),
    results: {},
    check: false,
    render: () => '',
    readFile: () => Buffer.alloc(0),
    secret: (v) => new Secret(v),
  };
}

test('the unit runs the shipped Node.js and provision from the release, with the watcher\'s variables', (t) => {
  const c = ctx('mon1', watchRole.defaults as Vars, {provision_watch_enabled: true, provision_watch_every: '30s'});
  const text = unitText(c);
  const exec = /^ExecStart=(.*)$/m.exec(text)?.[1]?.split(' ');
  t.deepEqual(exec, [
    `/opt/provision-watch/current/${nodeInRelease}`, '/opt/provision-watch/current/bin/provision.js', 'watch', 'site', '-i', 'inventory/lab.yml',
    '--every', '30s', '--listen', '127.0.0.1:9469', '--state', '/var/lib/provision-watch/drift.json', '-e', '@/etc/provision-watch/vars.json', '--no-typecheck',
  ]);
  t.regex(text, /^User=provision-watch$/m);
  t.throws(() => unitText(ctx('mon1', watchRole.defaults as Vars, {provision_watch_args: ['-l', 'web servers']})), {message: /'web servers' cannot be a word/});

  const vars = JSON.parse(watcherVars(c)) as Record<string, unknown>;
  t.is(vars.provision_watch_enabled, true);
  t.is(vars.provision_watch_every, '30s');
  t.deepEqual(vars.provision_watch_include, ['.lab/pebble/lab-ca.pem']);
  t.is(vars.ansible_ssh_private_key_file, '/var/lib/provision-watch/.ssh/id_ed25519');
  t.is(vars.ansible_ssh_known_hosts_file, '/var/lib/provision-watch/known_hosts');
  t.false(Object.keys(vars).some((k) => !k.startsWith('provision_watch_') && !k.startsWith('ansible_ssh_')), 'nothing else from the inventory');
});

test('the watcher\'s key is restricted to its address, without forwarding; provision_watch_from overrides it', (t) => {
  const c = ctx('web1', watchRole.defaults as Vars);
  t.is(authorizedLine(c, 'mon1'), 'from="10.231.0.41",no-agent-forwarding,no-port-forwarding,no-X11-forwarding,no-pty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyFakeKeyFakeKeyFakeKeyFakeKeyFakeKey provision-watch@mon1');
  t.regex(authorizedLine(ctx('web1', watchRole.defaults as Vars, {provision_watch_from: ''}), 'mon1'), /^no-agent-forwarding,/);
  t.regex(authorizedLine(ctx('web1', watchRole.defaults as Vars, {provision_watch_from: '10.0.0.0/24'}), 'mon1'), /^from="10.0.0.0\/24",/);
  t.throws(() => authorizedLine(ctx('web1', watchRole.defaults as Vars, {provision_watch_from: '1.2.3.4" command="sh'}), 'mon1'), {message: /is not a from= pattern list/});
  // A host name in ansible_host: sshd would not match it (UseDNS is off by default); the address facts found instead.
  const named = {...ctx('web1', watchRole.defaults as Vars), hostvars: (h: string) => ({ansible_host: 'mon1.example.org', facts: {defaultIpv4: {address: '192.0.2.41', interface: 'eth0'}}, results: {provision_watch_pubkey: pubkey}}) as never};
  t.regex(authorizedLine(named as TaskContext, 'mon1'), /^from="192.0.2.41",/);
});

test('Prometheus scrapes the watcher of its own host when it is enabled', (t) => {
  const jobs = (extra: Vars): unknown => (configVars(ctx('mon1', prometheusRole.defaults as Vars, extra)).jobs as {name: string; targets: {address: string}[]}[])
    .find((j) => j.name === 'provision_watch')?.targets.map((x) => x.address);
  t.is(jobs({}), undefined, 'off by default: no job');
  t.deepEqual(jobs({provision_watch_enabled: true}), ['127.0.0.1:9469'], 'the provision_watch role\'s default address, unset in this play');
  t.deepEqual(jobs({provision_watch_enabled: 'true', provision_watch_listen: '127.0.0.1:9555'}), ['127.0.0.1:9555']);
  t.deepEqual(jobs({provision_watch_enabled: true, provision_watch_listen: ':9469', prometheus_watch_targets: ['10.0.0.5:9469']}), ['10.0.0.5:9469', '127.0.0.1:9469']);
});
