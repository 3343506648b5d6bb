/**
 * `provision watch` on the monitoring host, as a systemd service (docs/watch.md, "On the monitoring
 * host"): a check of the playbook every `provision_watch_every`, its metrics on
 * `provision_watch_listen` for the Prometheus beside it. Off unless `provision_watch_enabled`.
 *
 * Runs in a play on every host (`hosts: all`), last in the site:
 * - on the watcher hosts (the group `provision_watch_group` with `provision_watch_enabled`): a system
 *   user `provision-watch` with its own ed25519 key, generated on the host (the private key never
 *   leaves it);
 * - on every host: that key authorized for the login user (`ansible_user`), restricted to the watcher's
 *   address (`from="…"`, no forwarding), and the host's own SSH key read, so the watcher's known_hosts
 *   is built from keys read over connections already verified (no trust on first use);
 * - on the watcher hosts: the release (release.ts: the project as the controller has it, its production
 *   packages and the controller's Node.js), unpacked once per content key under
 *   /opt/provision-watch/releases/, `current` linking to it; the unit, and the service started.
 *
 * Revoking: `provision_watch_enabled: false` for a watcher host stops and removes its service, its
 * releases (they hold the vault's password file) and settings, and removes its key from every host's
 * authorized_keys (the user and its key pair stay on the host).
 *
 * The watcher runs with `-e @/etc/provision-watch/vars.json`: every `provision_watch_*` variable as
 * the deploying run saw it, and the connection's key and known_hosts. So when it checks this role on
 * its own host, it computes what the deploying run wrote: no drift of its own.
 */
import {readFileSync} from 'node:fs';
import {isIP} from 'node:net';
import {join, relative} from 'node:path';
import {defineRole, assert, authorizedKey, command, copy, file, knownHosts, service, shell, stat, statOf, systemdUnit, unarchive, user, type TaskContext} from '../../src/index.ts';
import {currentProject, projectRoot, userCacheDir} from '../../src/core/paths.ts';
import {truthy} from '../../src/shared/vars.ts';
import {nodeInRelease, releaseArchive, releaseFiles, releaseKey, type ReleaseSpec} from './release.ts';

const account = 'provision-watch';
const home = '/var/lib/provision-watch';
const sshKey = `${home}/.ssh/id_ed25519`;
const knownHostsFile = `${home}/known_hosts`;
const base = '/opt/provision-watch';
const current = `${base}/current`;
const upload = `${base}/release.tar.gz`;
const varsFile = '/etc/provision-watch/vars.json';
const unit = 'provision-watch.service';

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined || v === null || v === '' ? [] : [String(v)]);

/** The hosts of `provision_watch_group` (watchers when enabled, revoked when not). */
export function watcherHosts(ctx: TaskContext): string[] {
  return [...(ctx.groups[String(ctx.vars.provision_watch_group)] ?? [])];
}
const isWatcherHost = (ctx: TaskContext): boolean => ctx.groupNames.includes(String(ctx.vars.provision_watch_group));
/** `provision_watch_enabled` of a host: its own (inventory, -e), else this play's (role defaults and parameters). */
function enabledOn(ctx: TaskContext, host: string): boolean {
  const v = ctx.hostvars(host).provision_watch_enabled;
  return truthy(v === undefined ? ctx.vars.provision_watch_enabled : v);
}
/** This host runs the watcher. */
export const isWatcher = (ctx: TaskContext): boolean => isWatcherHost(ctx) && truthy(ctx.vars.provision_watch_enabled);

/**
 * Where Prometheus on this host scrapes the watcher this role runs here (`host:port`, a wildcard
 * listen address as loopback); undefined when it runs none. For other roles' plays, where this role's
 * defaults are not in `ctx.vars`, they stand in for what is unset.
 */
export function localWatcherTarget(ctx: TaskContext): string | undefined {
  const v = (name: keyof typeof defaults): unknown => ctx.vars[name] ?? defaults[name];
  if (!truthy(v('provision_watch_enabled')) || !ctx.groupNames.includes(String(v('provision_watch_group')))) return undefined;
  const listen = String(v('provision_watch_listen') ?? '');
  if (listen === '') return undefined;
  return listen.startsWith(':') ? `127.0.0.1${listen}` : listen.replace(/^0\.0\.0\.0:/, '127.0.0.1:');
}
const anyWatcher = (ctx: TaskContext): boolean => watcherHosts(ctx).some((w) => enabledOn(ctx, w));

/** The project shipped to the watcher: this run's project, without what it never needs. */
export function releaseSpec(ctx: TaskContext): ReleaseSpec {
  const root = currentProject();
  const include = list(ctx.vars.provision_watch_include);
  // The vault's password file, when the inventory names one inside the project.
  const vault = String(ctx.vars.provision_vault_password_file ?? '');
  if (vault !== '') {
    const rel = relative(root, join(root, vault));
    if (!rel.startsWith('..') && !rel.startsWith('/')) include.push(rel);
  }
  const provision = relative(root, projectRoot);
  return {root, exclude: list(ctx.vars.provision_watch_exclude), include: [...new Set(include)], ...(provision.startsWith('node_modules') ? {provision} : {})};
}

const keys = new Map<string, string>();
/**
 * The release's content key, from the project as it is at its first use in this process (a walk and an
 * lstat per file, ~50 ms for 8,000 files: once, not at each task that names the release, nor at each of
 * a watcher's checks: its release never changes under it).
 */
export function releaseKeyOf(ctx: TaskContext): string {
  const spec = releaseSpec(ctx);
  const id = JSON.stringify(spec);
  let key = keys.get(id);
  if (key === undefined) keys.set(id, (key = releaseKey(spec, releaseFiles(spec))));
  return key;
}

/** The watcher's public key line, as the registered read found it ('' when there is none yet). */
function publicKey(ctx: TaskContext, host: string): string {
  const r = ctx.hostvars(host).results.provision_watch_pubkey;
  const line = r?.rc === 0 ? r.stdout.trim() : '';
  return /^ssh-ed25519 [A-Za-z0-9+/=]+( |$)/.test(line) ? line : '';
}

/**
 * The address a watcher's connections come from: `provision_watch_from`, else its `ansible_host` when
 * that is an address (sshd matches `from=` names only with UseDNS, off by default), else the address
 * its facts found; '' (no restriction) when none is known.
 */
function fromOf(ctx: TaskContext, watcher: string): string {
  const hv = ctx.hostvars(watcher);
  const set = hv.provision_watch_from;
  const from = set !== undefined && set !== null ? String(set) : isIP(String(hv.ansible_host ?? '')) ? String(hv.ansible_host) : (hv.facts?.defaultIpv4?.address ?? '');
  if (!/^[\w.:*?!,/-]*$/.test(from)) throw new Error(`provision_watch_from: '${from}' is not a from= pattern list (addresses, CIDRs, * and ?)`);
  return from;
}

/** The authorized_keys line for a watcher: its key, restricted to its address, no forwarding. */
export function authorizedLine(ctx: TaskContext, watcher: string): string {
  const from = fromOf(ctx, watcher);
  const [type, blob] = publicKey(ctx, watcher).split(' ');
  const opts = [...(from === '' ? [] : [`from="${from}"`]), 'no-agent-forwarding', 'no-port-forwarding', 'no-X11-forwarding', 'no-pty'];
  return `${opts.join(',')} ${type} ${blob} ${account}@${watcher}`;
}

/** What the service is started with: every provision_watch_* variable, and its own key and known_hosts. */
export function watcherVars(ctx: TaskContext): string {
  const own = Object.keys(ctx.vars).filter((k) => k.startsWith('provision_watch_')).sort();
  const vars: Record<string, unknown> = Object.fromEntries(own.map((k) => [k, ctx.vars[k]]));
  vars.ansible_ssh_private_key_file = sshKey;
  vars.ansible_ssh_known_hosts_file = knownHostsFile;
  return `${JSON.stringify(vars, null, 2)}\n`;
}

/** The unit file. */
export function unitText(ctx: TaskContext): string {
  const bin = relative(currentProject(), join(projectRoot, 'bin', 'provision.js'));
  if (bin.startsWith('..')) throw new Error(`provision_watch: provision (${projectRoot}) is not inside the project (${currentProject()}): install it with npm in the project`);
  const listen = String(ctx.vars.provision_watch_listen);
  const argv = [
    `${current}/${nodeInRelease}`, `${current}/${bin}`, 'watch', String(ctx.vars.provision_watch_playbook),
    ...list(ctx.vars.provision_watch_inventory).flatMap((i) => ['-i', i]),
    '--every', String(ctx.vars.provision_watch_every),
    ...(listen === '' ? [] : ['--listen', listen]),
    '--state', `${home}/drift.json`, '-e', `@${varsFile}`, '--no-typecheck',
    ...list(ctx.vars.provision_watch_args),
  ];
  // No quoting, and no `%` (systemd's specifiers) or `$` (its variables): plain words only.
  for (const a of argv) if (!/^[\w@+=:,./-]+$/.test(a)) throw new Error(`provision_watch: '${a}' cannot be a word of the unit's command line (letters, digits and @+=:,./- only)`);
  return [
    '# Managed by provision (role provision_watch). Local changes are overwritten.',
    '[Unit]',
    'Description=provision watch: drift of the site, checked without changing anything',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    `User=${account}`,
    `Group=${account}`,
    `WorkingDirectory=${current}`,
    `Environment=HOME=${home} NO_COLOR=1`,
    `ExecStart=${argv.join(' ')}`,
    'Restart=always',
    'RestartSec=10',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${home} ${base}`,
    'PrivateTmp=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

const defaults = {
  /** Run `provision watch` as a service on the hosts of `provision_watch_group`. false: revoke it (stop, remove, unauthorize). */
  provision_watch_enabled: false,
  provision_watch_group: 'monitoring',
  /** The playbook the watcher checks, and its inventories (relative to the project; none: the project's default). */
  provision_watch_playbook: 'site',
  provision_watch_inventory: [] as string[],
  /** `--every` of the watcher. */
  provision_watch_every: '5m',
  /** Where it serves /metrics (the prometheus role on the same host scrapes it); '' for none. */
  provision_watch_listen: '127.0.0.1:9469',
  /** More arguments of `provision watch` (`-l`, `-t`, `--skip-tags`…). */
  provision_watch_args: [] as string[],
  /** Where the watcher's connections come from (`from=` of its key); default its `ansible_host` (an address) or its facts' address; '' for no restriction. */
  provision_watch_from: undefined as string | undefined,
  /** Names never shipped (any path segment, `*` a wildcard). */
  provision_watch_exclude: ['.git', '.lab', '.provision', '.secrets', 'tmp', '*.retry', '*.log'],
  /** Project paths shipped even where excluded (the inventory's vault password file is added by itself). */
  provision_watch_include: [] as string[],
};

/** x86_64 → x64, aarch64 → arm64: Node's names for uname's. */
const nodeArch: Record<string, string> = {x86_64: 'x64', aarch64: 'arm64', armv7l: 'arm', ppc64le: 'ppc64', s390x: 's390x'};

const releaseMissing = (ctx: TaskContext): boolean => isWatcher(ctx) && !statOf(ctx.results.provision_watch_release).exists;

export default defineRole({
  name: 'provision_watch',
  defaults,
  tasks: [
    // ----- the watcher's account and key
    assert(
      (ctx) => ({
        that: [nodeArch[ctx.facts.architecture] === process.arch],
        failMsg: `provision_watch: ${ctx.host} is ${ctx.facts.architecture}, the controller's Node.js (which the watcher runs) is ${process.arch}: run the watcher from a controller of the same architecture`,
      }),
      {name: 'watcher: same architecture as the controller', when: isWatcher},
    ),
    user({name: account, system: true, home, createHome: true, shell: '/usr/sbin/nologin', comment: 'provision watch'}, {name: 'watcher: user', when: isWatcher}),
    file({path: home, state: 'directory', owner: account, group: account, mode: '0700'}, {name: 'watcher: home', when: isWatcher}),
    file({path: `${home}/.ssh`, state: 'directory', owner: account, group: account, mode: '0700'}, {name: 'watcher: .ssh', when: isWatcher}),
    command(
      (ctx) => ({argv: ['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', `${account}@${ctx.host}`, '-f', sshKey], creates: sshKey}),
      {name: 'watcher: its own SSH key', when: isWatcher, become: true, becomeUser: account},
    ),
    // Read even when disabled: a revoked watcher's key is removed from every host.
    // `removes`: answered in the probe batch, so a host that never had a watcher pays no round trip.
    command({argv: ['cat', `${sshKey}.pub`], removes: `${sshKey}.pub`}, {name: 'watcher: public key', when: isWatcherHost, register: 'provision_watch_pubkey', checkMode: false, changedWhen: () => false, failedWhen: () => false}),

    // ----- every host: the watcher's access, and the host's key for its known_hosts
    command({argv: ['cat', '/etc/ssh/ssh_host_ed25519_key.pub']}, {name: 'watcher access: host key', when: anyWatcher, register: 'provision_watch_hostkey', checkMode: false, changedWhen: () => false}),
    authorizedKey(
      (ctx) => {
        const w = String(ctx.item);
        return {user: String(ctx.vars.ansible_user ?? 'root'), key: authorizedLine(ctx, w), state: enabledOn(ctx, w) ? 'present' : 'absent'};
      },
      {name: 'watcher access: its key for the login user', loop: (ctx) => watcherHosts(ctx).filter((w) => publicKey(ctx, w) !== '')},
    ),

    // ----- the watcher host: release, known_hosts, service
    file({path: base, state: 'directory', owner: account, group: account, mode: '0700'}, {name: 'watcher: release folder', when: isWatcher}),
    stat((ctx) => ({path: `${base}/releases/${releaseKeyOf(ctx)}/package.json`}), {name: 'watcher: release in place', when: isWatcher, register: 'provision_watch_release'}),
    copy(
      (ctx) => {
        const {archive} = releaseArchive(releaseSpec(ctx), userCacheDir('watch-release'));
        return {dest: upload, content: readFileSync(archive), owner: 'root', group: 'root', mode: '0600'};
      },
      {name: 'watcher: release uploaded', when: releaseMissing, diff: false},
    ),
    // Keep the release `current` links to (the running service) and the new one; remove older ones.
    shell(
      (ctx) => ({script: `cd ${base} && mkdir -p releases && keep=$(basename "$(readlink current 2>/dev/null)") && for d in releases/*; do case "\${d#releases/}" in ${releaseKeyOf(ctx)}|"$keep"|'*') ;; *) rm -rf "$d" && echo "$d" ;; esac; done`}),
      {name: 'watcher: older releases removed', when: releaseMissing, changedWhen: (r) => r.stdout.trim() !== ''},
    ),
    unarchive(
      (ctx) => ({src: upload, dest: `${base}/releases/${releaseKeyOf(ctx)}`, createDest: true, owner: account, group: account}),
      {name: 'watcher: release unpacked', when: (ctx) => releaseMissing(ctx) && !ctx.check},
    ),
    file({path: upload, state: 'absent'}, {name: 'watcher: upload removed', when: isWatcher}),
    file((ctx) => ({path: current, state: 'link', src: `releases/${releaseKeyOf(ctx)}`, owner: account, group: account}), {name: 'watcher: current release', when: isWatcher, notify: 'restart provision-watch'}),
    command({argv: [`${current}/${nodeInRelease}`, '--version']}, {name: 'watcher: Node.js runs on the host', when: (ctx) => isWatcher(ctx) && !ctx.check, changedWhen: () => false}),
    knownHosts(
      (ctx) => {
        const h = String(ctx.item);
        const addr = String(ctx.hostvars(h).ansible_host ?? h);
        const port = Number(ctx.hostvars(h).ansible_port ?? 22);
        const name = port === 22 ? addr : `[${addr}]:${port}`;
        const [type, blob] = ctx.hostvars(h).results.provision_watch_hostkey!.stdout.trim().split(/\s+/);
        return {path: knownHostsFile, name, key: `${name} ${type} ${blob}`};
      },
      {name: 'watcher: known_hosts', when: isWatcher, loop: (ctx) => (ctx.groups.all ?? []).filter((h) => ctx.hostvars(h).results.provision_watch_hostkey?.rc === 0)},
    ),
    file({path: '/etc/provision-watch', state: 'directory', owner: 'root', group: account, mode: '0750'}, {name: 'watcher: settings folder', when: isWatcher}),
    copy((ctx) => ({dest: varsFile, content: watcherVars(ctx), owner: 'root', group: account, mode: '0640'}), {name: 'watcher: its variables', when: isWatcher, notify: 'restart provision-watch'}),
    systemdUnit((ctx) => ({name: unit, content: unitText(ctx)}), {name: 'watcher: unit', when: isWatcher, notify: 'restart provision-watch'}),
    service({name: unit, state: 'started', enabled: true, daemonReload: true}, {name: 'watcher: running', when: isWatcher}),

    // ----- revoked (or never enabled): no service
    stat({path: `/etc/systemd/system/${unit}`}, {name: 'watcher: unit present', when: (ctx) => isWatcherHost(ctx) && !isWatcher(ctx), register: 'provision_watch_unit'}),
    service({name: unit, state: 'stopped', enabled: false}, {name: 'watcher: stopped', when: (ctx) => isWatcherHost(ctx) && !isWatcher(ctx) && statOf(ctx.results.provision_watch_unit).exists}),
    systemdUnit({name: unit, state: 'absent'}, {name: 'watcher: unit removed', when: (ctx) => isWatcherHost(ctx) && !isWatcher(ctx)}),
    // The releases hold the vault's password file: they go too (the user, its key and its last state stay).
    file({path: base, state: 'absent'}, {name: 'watcher: releases removed', when: (ctx) => isWatcherHost(ctx) && !isWatcher(ctx)}),
    file({path: '/etc/provision-watch', state: 'absent'}, {name: 'watcher: settings removed', when: (ctx) => isWatcherHost(ctx) && !isWatcher(ctx)}),
  ],
  handlers: [service({name: unit, state: 'restarted', daemonReload: true}, {name: 'restart provision-watch'})],
});
