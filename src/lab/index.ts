/**
 * `provision lab`: up, down, status, stop, start, shell. The steps of `up` and `down` run as listr2
 * tasks with timing; everything the lab starts is recorded in `.lab/state.json` and `down` removes
 * exactly that, then verifies nothing is left.
 */
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {dirname, join, relative, resolve} from 'node:path';
import {ensureLabVault} from './vault.ts';
import {Listr, PRESET_TIMER, type ListrTask} from 'listr2';
import {UserError} from '../core/errors.ts';
import {labPaths, loadLabConfig, type LabConfig, type LabHost, type LabPaths} from './config.ts';
import {ensureAptCacher, machineSources, pickMirrors} from './aptcache.ts';
import {baseIsCurrent, buildBase} from './base.ts';
import {deleteLink, ensureBridge, linkExists, linksWithPrefix} from './network.ts';
import {ensurePebble, addARecords, pebbleFiles} from './pebble.ts';
import {ensureReceiver, receiverFiles, receiverPort} from './receiver.ts';
import {ensurePrerequisites, assertRootOnLinux, missingPackages, installCommand} from './prereqs.ts';
import {
  ensureNspawnRuntimeDir, hasIdentity, hostDirNames, hostDirs, hostDiskKiB, hostMemoryKiB, hostPublicKey,
  isMounted, leaderPid, mountHost, mountPoints, removeHostFiles, startHost, stopHost, unmountUnder, vethName,
  waitForSsh, writeIdentity,
} from './hosts.ts';
import {runCmd, runInteractive, waitFor} from './run.ts';
import {cgroupMemoryKiB, leftoverCgroups} from './cgroups.ts';
import {isAlive, readState, writeState, type DaemonState, type LabState} from './state.ts';

export {LAB_APT_PACKAGES} from './prereqs.ts';
export {fetchPebbleRoot} from './pebble.ts';
export {receiverFiles, receiverPort} from './receiver.ts';
export {labPaths, loadLabConfig, projectRoot} from './config.ts';

export interface LabOptions {
  /** Inventory path (relative to the working directory). */
  readonly inventory: string;
  /** Project root override (tests); default: the directory holding package.json. */
  readonly root?: string;
}

interface Ctx {
  cfg: LabConfig;
  paths: LabPaths;
  state: LabState;
}

const listrOptions = {
  concurrent: false,
  exitOnError: true,
  rendererOptions: {timer: PRESET_TIMER, collapseSubtasks: false, collapseSkips: false},
  fallbackRendererOptions: {timer: PRESET_TIMER},
} as const;

// ---------------------------------------------------------------------------------------------- lock

/** One lab command at a time per project: a lock file holding our PID. */
function withLock<T>(paths: LabPaths, fn: () => Promise<T>): Promise<T> {
  mkdirSync(paths.lab, {recursive: true});
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(paths.lock, 'wx');
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      return fn().finally(() => rmSync(paths.lock, {force: true}));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const pid = Number(readFileSync(paths.lock, 'utf8'));
      if (pid && existsSync(`/proc/${pid}`)) throw new UserError(`another lab command is running (pid ${pid}); lock ${paths.lock}`);
      rmSync(paths.lock, {force: true}); // stale
    }
  }
  throw new UserError(`cannot take the lab lock ${paths.lock}`);
}

function context(opts: LabOptions): Ctx {
  const paths = labPaths(opts.root);
  const cfg = loadLabConfig(opts.inventory);
  return {cfg, paths, state: readState(paths.state)};
}

const save = (ctx: Ctx): void => writeState(ctx.paths.state, ctx.state);

// ------------------------------------------------------------------------------------------------ up

/** The lab's client key pair (made once, kept by `down`). */
async function ensureClientKey(paths: LabPaths): Promise<string> {
  mkdirSync(paths.sshDir, {recursive: true, mode: 0o700});
  if (!existsSync(paths.clientKey))
    await runCmd(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'provision-lab', '-f', paths.clientKey]);
  return readFileSync(`${paths.clientKey}.pub`, 'utf8');
}

/** known_hosts: one exact line per host address, from the host keys made on the controller. */
function writeKnownHosts(ctx: Ctx): void {
  const lines: string[] = [];
  for (const h of ctx.cfg.hosts) {
    const key = hostPublicKey(ctx.paths, h.name);
    if (key) lines.push(`${h.address} ${key}`);
  }
  writeFileSync(ctx.paths.knownHosts, `${lines.join('\n')}\n`);
}

async function hostRunning(ctx: Ctx, name: string): Promise<boolean> {
  return isAlive(ctx.state.hosts[name]?.nspawn);
}

/** Bring one host up: overlay, identity (first time), boot, SSH. Kept if already running. */
async function upHost(ctx: Ctx, host: LabHost, clientPub: string, cas: Record<string, string>, setTitle: (t: string) => void): Promise<void> {
  const {paths, cfg, state} = ctx;
  if (await hostRunning(ctx, host.name)) {
    setTitle(`${host.name} ${host.address}: running (kept)`);
    return;
  }
  await mountHost(paths, host.name);
  state.hosts[host.name] = {name: host.name, address: host.address, mounted: true};
  save(ctx);
  if (!hasIdentity(paths, host.name)) await writeIdentity(cfg, paths, host, clientPub, cas);
  writeKnownHosts(ctx);
  const nspawn = await startHost(cfg, paths, host);
  state.hosts[host.name] = {name: host.name, address: host.address, mounted: true, nspawn};
  save(ctx);
  await waitForSsh(host, nspawn, paths);
  const boot = await waitBooted(paths, host);
  if (boot.state !== 'running') throw new UserError(`${host.name} booted ${boot.state}: failed units: ${boot.failed.join(', ') || '?'}`);
  setTitle(`${host.name} ${host.address}: booted`);
}

/** Wait until the host's systemd finished booting (`is-system-running --wait`), over SSH as root. */
async function waitBooted(paths: LabPaths, host: LabHost): Promise<{state: string; failed: string[]}> {
  const r = await runCmd([...sshArgv(paths, host.address), 'systemctl is-system-running --wait; systemctl --failed --no-legend --plain | cut -d" " -f1'], {allowFail: true, timeoutMs: 90_000});
  const [state = `unknown (ssh exit ${r.code}: ${r.stderr.trim()})`, ...failed] = r.stdout.trim().split('\n');
  return {state, failed: failed.filter(Boolean)};
}

/** `provision lab up`. */
/**
 * The lab's site secrets: a vault beside the lab inventory (`group_vars/all/vault.yml`, git-ignored)
 * and its generated passphrase, named by the inventory's `provision_vault_password_file`.
 */
export function labVaultPaths(cfg: LabConfig, root: string): {vault: string; passFile: string} {
  const named = cfg.vars.provision_vault_password_file;
  return {
    vault: join(dirname(cfg.inventoryPath), 'group_vars', 'all', 'vault.yml'),
    passFile: resolve(root, typeof named === 'string' ? named : '.lab/vault-pass'),
  };
}

export async function labUp(opts: LabOptions & {readonly installDeps?: boolean}): Promise<void> {
  assertRootOnLinux();
  if (!opts.installDeps) await ensurePrerequisites(false);
  const ctx = context(opts);
  await withLock(ctx.paths, async () => {
    const {cfg, paths} = ctx;
    const mirrors = pickMirrors(machineSources(), cfg.suite);
    let clientPub = '';
    const cas: Record<string, string> = {};
    const failed: string[] = [];
    const tasks: ListrTask<Ctx>[] = [
      {
        title: 'Install prerequisites',
        enabled: () => !!opts.installDeps,
        skip: () => (missingPackages().length ? false : 'all installed'),
        task: async (_, t) => {
          t.title = `Install prerequisites: ${installCommand(missingPackages()).join(' ')}`;
          await ensurePrerequisites(true);
        },
      },
      {
        title: 'Lab SSH key',
        task: async () => {
          clientPub = await ensureClientKey(paths);
        },
      },
      {
        title: `Bridge ${cfg.bridge} ${cfg.bridgeIp}/${cfg.prefixLength}`,
        task: async (_, t) => {
          const r = await ensureBridge(cfg.bridge, cfg.bridgeIp, cfg.prefixLength);
          ctx.state.bridge ??= {name: cfg.bridge, address: cfg.bridgeIp};
          save(ctx);
          t.title = `Bridge ${cfg.bridge} ${cfg.bridgeIp}/${cfg.prefixLength} (${r})`;
        },
      },
      {
        title: `apt cache (apt-cacher-ng on ${cfg.bridgeIp}:${cfg.aptProxyPort}, mirror ${mirrors.debian})`,
        task: async (_, t) => {
          const r = await ensureAptCacher(paths, cfg.bridgeIp, cfg.aptProxyPort, mirrors, ctx.state.aptCacher);
          ctx.state.aptCacher = {...r.daemon, port: cfg.aptProxyPort};
          save(ctx);
          if (!r.started) t.title += ' (kept)';
        },
      },
      {
        title: `Base image (${cfg.suite}, debootstrap)`,
        task: async (_, t) => {
          if (baseIsCurrent(paths, cfg.suite)) {
            t.title = `Base image (${cfg.suite}): cached`;
            return;
          }
          const mounted = hostDirNames(paths).filter((n) => isMounted(hostDirs(paths, n).root));
          if (mounted.length) throw new UserError(`the base image must be rebuilt but hosts still use it (${mounted.join(', ')}): run \`provision lab down\` first`);
          await buildBase(paths, cfg.suite, mirrors, `http://${cfg.bridgeIp}:${cfg.aptProxyPort}`, (l) => (t.output = l));
          t.title = `Base image (${cfg.suite}): built`;
        },
      },
      {
        title: `ACME server (pebble on ${cfg.bridgeIp}:14000, DNS for *.${cfg.domain})`,
        task: async (_, t) => {
          const r = await ensurePebble(paths, cfg.bridgeIp, ctx.state);
          ctx.state.pebble = r.pebble;
          ctx.state.challtestsrv = r.challtestsrv;
          save(ctx);
          const records: Record<string, string> = {};
          if (cfg.siteDomain && cfg.vip) {
            records[cfg.siteDomain] = cfg.vip;
            records[`www.${cfg.siteDomain}`] = cfg.vip;
          }
          for (const h of cfg.hosts) records[`${h.name}.${cfg.domain}`] = h.address;
          await addARecords(cfg.bridgeIp, records);
          const f = pebbleFiles(paths);
          cas['provision-lab-ca'] = readFileSync(f.caCert, 'utf8');
          cas['provision-lab-acme-root'] = readFileSync(f.roots, 'utf8');
          if (!r.started) t.title += ' (kept)';
        },
      },
      {
        title: `Alert receiver (${cfg.bridgeIp}:${receiverPort(cfg) ?? '-'}, ${relative(paths.root, receiverFiles(paths).received)})`,
        enabled: () => receiverPort(cfg) !== undefined,
        task: async (_, t) => {
          const port = receiverPort(cfg)!;
          // A receiver recorded on another port (the inventory changed): replaced.
          if (ctx.state.receiver && ctx.state.receiver.port !== port) {
            await killDaemon(ctx.state.receiver);
            delete ctx.state.receiver;
            save(ctx);
          }
          const r = await ensureReceiver(paths, cfg.bridgeIp, port, ctx.state.receiver);
          ctx.state.receiver = {...r.daemon, port};
          save(ctx);
          if (!r.started) t.title += ' (kept)';
        },
      },
      {
        title: `Hosts (${cfg.hosts.length})`,
        task: async (_, t) => {
          if (await ensureNspawnRuntimeDir()) {
            ctx.state.nspawnTmpfs = true;
            save(ctx);
          }
          return t.newListr(
            cfg.hosts.map((h) => ({
              title: `${h.name} ${h.address}`,
              task: async (_c: Ctx, st: {title: string}) => {
                try {
                  await upHost(ctx, h, clientPub, cas, (s) => (st.title = s));
                } catch (e) {
                  failed.push(`${h.name}: ${(e as Error).message}`);
                  throw e;
                }
              },
            })),
            {concurrent: true, exitOnError: false},
          );
        },
      },
      {
        title: 'known_hosts',
        task: () => {
          writeKnownHosts(ctx);
          if (failed.length) throw new UserError(`lab up: ${failed.length} host(s) failed: ${failed.join('; ')}`);
        },
      },
      {
        title: 'Site secrets (vault)',
        task: (_c, task) => {
          const v = labVaultPaths(cfg, paths.root);
          const r = ensureLabVault(v.vault, v.passFile);
          task.title = `Site secrets: ${relative(paths.root, v.vault)}${r.written ? ` (${r.added.length} generated)` : ''}, passphrase in ${relative(paths.root, v.passFile)}`;
        },
      },
    ];
    await new Listr<Ctx>(tasks, {...listrOptions, ctx}).run();
  });
}

// ---------------------------------------------------------------------------------------------- down

async function killDaemon(d: DaemonState | undefined): Promise<void> {
  if (!d || !(await isAlive(d))) return;
  try {
    process.kill(d.pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await waitFor(async () => !(await isAlive(d)), 5000, 50)) return;
  try {
    process.kill(d.pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  await waitFor(async () => !(await isAlive(d)), 5000, 50);
}

/** Processes whose command line mentions `needle` (our own paths only, so never another user's). */
async function processesMentioning(needle: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      const cmd = (await readFile(`/proc/${e}/cmdline`, 'utf8')).split('\0').join(' ').trim();
      if (cmd.includes(needle) && cmd) out.push(`${e} ${cmd.slice(0, 120)}`);
    } catch {
      /* raced */
    }
  }
  return out;
}

/** What the lab left on the machine (empty = clean). */
export async function leftovers(paths: LabPaths, cfg: LabConfig, state: LabState): Promise<string[]> {
  const left: string[] = [];
  for (const p of await processesMentioning(`${paths.lab}/`)) left.push(`process ${p}`);
  for (const d of [state.aptCacher, state.pebble, state.challtestsrv, state.receiver]) if (await isAlive(d)) left.push(`process ${d?.pid}`);
  for (const m of mountPoints()) if (m === paths.lab || m.startsWith(`${paths.lab}/`)) left.push(`mount ${m}`);
  if (linkExists(cfg.bridge)) left.push(`link ${cfg.bridge}`);
  for (const c of leftoverCgroups()) left.push(`cgroup ${c}`);
  const names = new Set([...cfg.hosts.map((h) => h.name), ...Object.keys(state.hosts)]);
  for (const l of await linksWithPrefix('vb-')) if (names.has(l.slice(3))) left.push(`link ${l}`);
  return left;
}

/** `provision lab down`. */
export async function labDown(opts: LabOptions & {readonly purge?: boolean}): Promise<void> {
  assertRootOnLinux();
  const ctx = context(opts);
  await withLock(ctx.paths, async () => {
    const {cfg, paths, state} = ctx;
    const names = [...new Set([...Object.keys(state.hosts), ...hostDirNames(paths)])];
    const tasks: ListrTask<Ctx>[] = [
      {
        title: `Stop hosts (${names.length})`,
        skip: () => (names.length ? false : 'no hosts'),
        task: (_, t) =>
          t.newListr(
            names.map((n) => ({
              title: n,
              task: async () => {
                const h = state.hosts[n];
                if (h?.nspawn) await stopHost(h.nspawn);
                if (h) {
                  delete h.nspawn;
                  save(ctx);
                }
              },
            })),
            {concurrent: true, exitOnError: false},
          ),
      },
      {
        title: 'Remove hosts (overlays, layers, veths)',
        skip: () => (names.length ? false : 'no hosts'),
        task: async () => {
          for (const n of names) {
            await removeHostFiles(paths, n);
            await deleteLink(vethName(n));
            delete state.hosts[n];
            save(ctx);
          }
          rmSync(paths.hosts, {recursive: true, force: true});
          rmSync(paths.knownHosts, {force: true});
        },
      },
      {
        title: 'Stop pebble, pebble-challtestsrv, apt-cacher-ng, the alert receiver',
        task: async () => {
          await Promise.all([killDaemon(state.pebble), killDaemon(state.challtestsrv), killDaemon(state.aptCacher), killDaemon(state.receiver)]);
          delete state.pebble;
          delete state.challtestsrv;
          delete state.aptCacher;
          delete state.receiver;
          save(ctx);
        },
      },
      {
        title: `Remove bridge ${state.bridge?.name ?? cfg.bridge}`,
        task: async () => {
          await deleteLink(state.bridge?.name ?? cfg.bridge);
          delete state.bridge;
          if (state.nspawnTmpfs) {
            await unmountUnder('/run/systemd/nspawn');
            delete state.nspawnTmpfs;
          }
          // Anything a failed debootstrap left mounted.
          await unmountUnder(`${paths.base}.tmp`);
          save(ctx);
        },
      },
      {
        title: 'Purge base image, apt cache and keys',
        enabled: () => !!opts.purge,
        task: async () => {
          await unmountUnder(paths.lab);
          rmSync(paths.lab, {recursive: true, force: true});
          mkdirSync(paths.lab, {recursive: true});
          // The generated site secrets go with their passphrase (kept in .lab/).
          rmSync(labVaultPaths(cfg, paths.root).vault, {force: true});
        },
      },
      {
        title: 'Verify nothing is left',
        task: async () => {
          const left = await leftovers(paths, cfg, state);
          if (left.length) throw new Error(`left behind: ${left.join('; ')}`);
          if (existsSync(paths.state)) unlinkSync(paths.state);
        },
      },
    ];
    await new Listr<Ctx>(tasks, {...listrOptions, ctx}).run();
  });
}

// -------------------------------------------------------------------------------------------- status

export type HostRunState = 'running' | 'stopped' | 'absent';

export interface HostStatus {
  readonly name: string;
  readonly address: string;
  readonly groups: readonly string[];
  readonly state: HostRunState;
  /** The systemd-nspawn PID, when running. */
  readonly pid: number | null;
  /** The container's PID 1 as seen from the controller, when running. */
  readonly leader_pid: number | null;
  /** Sum of the host's processes' PSS, in MiB, when running. */
  readonly memory_mib: number | null;
  /** The host's memory cgroup usage (includes its page cache), in MiB, when running. */
  readonly cgroup_memory_mib: number | null;
  /** Size of the host's copy-on-write layer, in MiB. */
  readonly disk_mib: number | null;
}

export interface LabStatus {
  readonly bridge: {readonly name: string; readonly address: string; readonly up: boolean};
  readonly base: {readonly cached: boolean};
  readonly services: Readonly<Record<'apt_cacher_ng' | 'pebble' | 'challtestsrv' | 'alert_receiver', {readonly pid: number | null; readonly running: boolean}>>;
  readonly hosts: readonly HostStatus[];
}

const mib = (kib: number): number => Math.round((kib / 1024) * 10) / 10;
const mibOrNull = (kib: number | undefined): number | null => (kib === undefined ? null : mib(kib));

export async function labStatus(opts: LabOptions): Promise<LabStatus> {
  const {cfg, paths, state} = context(opts);
  const hosts: HostStatus[] = [];
  for (const h of cfg.hosts) {
    const hs = state.hosts[h.name];
    const running = await isAlive(hs?.nspawn);
    const exists = existsSync(hostDirs(paths, h.name).upper);
    const leader = running && hs?.nspawn ? await leaderPid(hs.nspawn) : undefined;
    hosts.push({
      name: h.name,
      address: h.address,
      groups: h.groups,
      state: running ? 'running' : exists ? 'stopped' : 'absent',
      pid: running ? (hs?.nspawn?.pid ?? null) : null,
      leader_pid: leader ?? null,
      memory_mib: leader !== undefined ? mib(await hostMemoryKiB(leader)) : null,
      cgroup_memory_mib: leader !== undefined ? mibOrNull(cgroupMemoryKiB(h.name)) : null,
      disk_mib: exists ? mib(await hostDiskKiB(paths, h.name)) : null,
    });
  }
  const svc = async (d: DaemonState | undefined) => {
    const running = await isAlive(d);
    return {pid: running ? (d?.pid ?? null) : null, running};
  };
  return {
    bridge: {name: cfg.bridge, address: `${cfg.bridgeIp}/${cfg.prefixLength}`, up: linkExists(cfg.bridge)},
    base: {cached: baseIsCurrent(paths, cfg.suite)},
    services: {
      apt_cacher_ng: await svc(state.aptCacher),
      pebble: await svc(state.pebble),
      challtestsrv: await svc(state.challtestsrv),
      alert_receiver: await svc(state.receiver),
    },
    hosts,
  };
}

export function formatStatus(s: LabStatus): string {
  const rows = [['HOST', 'ADDRESS', 'STATE', 'PID', 'MEMORY', 'DISK', 'GROUPS']];
  for (const h of s.hosts)
    rows.push([h.name, h.address, h.state, h.pid === null ? '-' : String(h.pid), h.memory_mib === null ? '-' : `${h.memory_mib} MiB`, h.disk_mib === null ? '-' : `${h.disk_mib} MiB`, h.groups.join(',')]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const table = rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
  const on = (b: boolean): string => (b ? 'running' : 'stopped');
  return [
    `bridge ${s.bridge.name} ${s.bridge.address}: ${s.bridge.up ? 'up' : 'absent'}; base image: ${s.base.cached ? 'cached' : 'not built'}`,
    `apt-cacher-ng: ${on(s.services.apt_cacher_ng.running)}; pebble: ${on(s.services.pebble.running)}; pebble-challtestsrv: ${on(s.services.challtestsrv.running)}; alert receiver: ${on(s.services.alert_receiver.running)}`,
    table,
  ].join('\n');
}

// --------------------------------------------------------------------------------- stop, start, shell

function findHost(cfg: LabConfig, name: string): LabHost {
  const h = cfg.hosts.find((x) => x.name === name);
  if (!h) throw new UserError(`no lab host named ${name} (hosts: ${cfg.hosts.map((x) => x.name).join(', ')})`);
  return h;
}

/** `provision lab stop HOST`: power a host off (cleanly, or `hard` = a power cut). Its disk is kept. */
export async function labStop(opts: LabOptions & {readonly host: string; readonly hard?: boolean}): Promise<'stopped' | 'was stopped'> {
  assertRootOnLinux();
  const ctx = context(opts);
  findHost(ctx.cfg, opts.host);
  return withLock(ctx.paths, async () => {
    const hs = ctx.state.hosts[opts.host];
    if (!hs?.nspawn || !(await isAlive(hs.nspawn))) return 'was stopped';
    await stopHost(hs.nspawn, opts.hard);
    delete hs.nspawn;
    save(ctx);
    return 'stopped';
  });
}

/** `provision lab start HOST`: boot a stopped host and wait for SSH. */
export async function labStart(opts: LabOptions & {readonly host: string}): Promise<string> {
  assertRootOnLinux();
  const ctx = context(opts);
  const host = findHost(ctx.cfg, opts.host);
  return withLock(ctx.paths, async () => {
    if (await hostRunning(ctx, host.name)) return 'was running';
    if (!linkExists(ctx.cfg.bridge) || !hasIdentity(ctx.paths, host.name)) throw new UserError(`${host.name} does not exist: run \`provision lab up\``);
    await mountHost(ctx.paths, host.name);
    const nspawn = await startHost(ctx.cfg, ctx.paths, host);
    ctx.state.hosts[host.name] = {name: host.name, address: host.address, mounted: true, nspawn};
    save(ctx);
    await waitForSsh(host, nspawn, ctx.paths);
    const boot = await waitBooted(ctx.paths, host);
    return boot.state === 'running' ? 'started' : `started (${boot.state}: ${boot.failed.join(', ')})`;
  });
}

/** The ssh argv for a lab host, with the lab key and exact known_hosts. */
export function sshArgv(paths: LabPaths, address: string, user = 'root', tty = false): string[] {
  return [
    'ssh', ...(tty ? ['-t'] : []), '-i', paths.clientKey,
    '-o', `UserKnownHostsFile=${paths.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'LogLevel=ERROR',
    `${user}@${address}`,
  ];
}

/** `provision lab shell HOST [COMMAND...]`: a root shell (or command) in the host, over SSH. */
export async function labShell(opts: LabOptions & {readonly host: string; readonly command: readonly string[]; readonly user?: string}): Promise<number> {
  const ctx = context(opts);
  const host = findHost(ctx.cfg, opts.host);
  if (!(await hostRunning(ctx, host.name))) throw new UserError(`${host.name} is not running (provision lab start ${host.name})`);
  const tty = opts.command.length === 0 && process.stdin.isTTY === true;
  return runInteractive([...sshArgv(ctx.paths, host.address, opts.user ?? 'root', tty), ...opts.command]);
}
