/**
 * Resolving a host's connection: an inventory host and its variables (plus ~/.ssh/config) become a
 * plain `ConnectionSpec`, with Ansible's precedence: inventory variables beat the ssh config, which
 * beats the defaults. Pure apart from reading the ssh config and checking which key files exist.
 */
import {existsSync, readFileSync} from 'node:fs';
import {homedir, userInfo} from 'node:os';
import {isAbsolute, join, resolve} from 'node:path';
import SSHConfig from 'ssh-config';
import {parse as shellParse} from 'shell-quote';
import {truthy} from '../shared/vars.ts';
import {DEFAULT_MAX_STARTUPS, type Pacing} from './pacing.ts';
import {UnreachableError} from './types.ts';

/** Everything needed to open one SSH connection; plain data, built by `resolveConnection`. */
export interface ConnectionSpec {
  /** The inventory name, used in messages and also matched against known_hosts. */
  readonly host: string;
  /** The address to connect to (IP or DNS name). */
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** The private key to offer first; an explicitly named key that does not exist fails the connection. */
  readonly privateKeyPath?: string;
  /** Further keys to offer after `privateKeyPath` (more IdentityFile lines, or the other default keys). */
  readonly extraPrivateKeyPaths?: readonly string[];
  /** Password for password and keyboard-interactive authentication. */
  readonly password?: string;
  /** The known_hosts file the host key is checked against (and appended to when accepting new keys). */
  readonly knownHostsFile: string;
  /** Trust and record a host key that is not yet known. A changed key is refused regardless. */
  readonly acceptNewHostKeys: boolean;
  /** Limit for TCP connect, handshake and authentication together. */
  readonly connectTimeoutMs: number;
  /** Path of an ssh-agent socket (SSH_AUTH_SOCK). */
  readonly agent?: string;
  /** Reach this host through a jump host (nested for several hops: the first hop is the innermost). */
  readonly proxyJump?: ConnectionSpec;
  /** Commands run at the same time over the one connection (sshd's MaxSessions, default 10). */
  readonly maxSessions?: number;
  /**
   * Run every command through one shell on the host (transport/mux.ts): true always, false never,
   * unset when the host's login shell is slow (`provision_multiplex`: `auto`, the default).
   */
  readonly multiplex?: boolean;
  /** How new connections are paced (`provision_ssh_max_startups`, `provision_connect_rate`; pacing.ts). */
  readonly pacing?: Pacing;
}

/** Options of `resolveConnection`, usually from the command line. */
export interface ResolveOptions {
  /** The ssh client config to read; default ~/.ssh/config (a missing file is fine). */
  readonly sshConfigPath?: string;
  /** known_hosts file, unless the inventory names one; default ~/.ssh/known_hosts. */
  readonly knownHostsFile?: string;
  /** Trust unknown host keys on first connection (`--accept-new-host-keys`). */
  readonly acceptNewHostKeys?: boolean;
  /** Unless the inventory sets `ansible_timeout`; default 10 s (or ConnectTimeout from the ssh config). */
  readonly connectTimeoutMs?: number;
  /** Environment for HOME and SSH_AUTH_SOCK; default `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
}

/** SSH's port; known_hosts writes hosts on it without `[…]:port`. */
export const DEFAULT_PORT = 22;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;
const MAX_JUMP_DEPTH = 5;

/**
 * Build the connection spec of an inventory host. Precedence, as with Ansible: inventory variables
 * (`ansible_host`, `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`, `ansible_ssh_pass`,
 * `ansible_ssh_common_args: -o ProxyJump=…`), then the ssh config (looked up by `ansible_host`, else
 * the inventory name, as `ssh` would), then the defaults.
 */
export function resolveConnection(host: string, vars: Record<string, unknown>, opts: ResolveOptions = {}): ConnectionSpec {
  const env = opts.env ?? process.env;
  const home = env.HOME || homedir();
  const localUser = currentUser(env);
  const config = loadSshConfig(opts.sshConfigPath ?? join(home, '.ssh', 'config'));

  const lookup = varString(vars, 'ansible_host') ?? host;
  const cfg = computeConfig(config, lookup);

  const user = varString(vars, 'ansible_user', 'ansible_ssh_user') ?? cfgString(cfg, 'user') ?? localUser;
  const port = varPort(host, vars, 'ansible_port', 'ansible_ssh_port') ?? cfgPort(cfg) ?? DEFAULT_PORT;
  const address = hostNameFrom(cfg, lookup);
  const expand = (p: string) => expandPath(p, {home, localUser, remoteHost: address, remoteUser: user});

  const namedKey = varString(vars, 'ansible_ssh_private_key_file', 'ansible_private_key_file');
  const keys = namedKey !== undefined ? [expand(namedKey)] : configOrDefaultKeys(cfg, home, expand);

  const knownHostsVar = varString(vars, 'provision_known_hosts_file', 'ansible_ssh_known_hosts_file');
  const knownHostsCfg = cfgString(cfg, 'userknownhostsfile')?.split(/\s+/)[0];
  const knownHostsFile = expand(
    knownHostsVar ?? opts.knownHostsFile ?? knownHostsCfg ?? join(home, '.ssh', 'known_hosts'),
  );

  const strict = cfgString(cfg, 'stricthostkeychecking')?.toLowerCase();
  const acceptNewHostKeys = opts.acceptNewHostKeys === true || strict === 'accept-new' || strict === 'no';

  const timeoutVar = varNumber(vars, 'ansible_timeout', 'ansible_ssh_timeout');
  const timeoutCfg = Number(cfgString(cfg, 'connecttimeout'));
  const connectTimeoutMs =
    timeoutVar !== undefined
      ? timeoutVar * 1000
      : (opts.connectTimeoutMs ?? (timeoutCfg > 0 ? timeoutCfg * 1000 : DEFAULT_TIMEOUT_MS));

  const password = varSecret(vars, 'ansible_ssh_pass', 'ansible_password');
  const agent = env.SSH_AUTH_SOCK || undefined;

  const jumpText = jumpFromCommonArgs(varString(vars, 'ansible_ssh_common_args')) ?? cfgString(cfg, 'proxyjump');
  const shared = {knownHostsFile, acceptNewHostKeys, connectTimeoutMs, agent, home, localUser, config};
  const proxyJump = jumpText === undefined ? undefined : resolveJumpChain(jumpText, shared, 0);

  return {
    host,
    address,
    port,
    user,
    ...(keys[0] !== undefined ? {privateKeyPath: keys[0]} : {}),
    ...(keys.length > 1 ? {extraPrivateKeyPaths: keys.slice(1)} : {}),
    ...(password !== undefined ? {password} : {}),
    knownHostsFile,
    acceptNewHostKeys,
    connectTimeoutMs,
    ...(agent !== undefined ? {agent} : {}),
    ...(proxyJump !== undefined ? {proxyJump} : {}),
    ...(vars.provision_multiplex === undefined || vars.provision_multiplex === 'auto' ? {} : {multiplex: truthy(vars.provision_multiplex)}),
    pacing: pacingOf(host, vars),
  };
}

/** `provision_ssh_max_startups` (a whole number ≥ 1, default 8) and `provision_connect_rate` (> 0 per second). */
function pacingOf(host: string, vars: Record<string, unknown>): Pacing {
  const number = (name: string, ok: (n: number) => boolean, what: string): number | undefined => {
    const v = vars[name];
    if (v === undefined || v === null || v === '') return undefined;
    const n = Number(v);
    if (!ok(n)) throw new UnreachableError(host, `${host}: ${name} is not ${what}: ${JSON.stringify(v)}`);
    return n;
  };
  const maxStartups = number('provision_ssh_max_startups', (n) => Number.isInteger(n) && n >= 1, 'a whole number of 1 or more') ?? DEFAULT_MAX_STARTUPS;
  const ratePerS = number('provision_connect_rate', (n) => Number.isFinite(n) && n > 0, 'a number of connections per second above 0');
  return {maxStartups, ...(ratePerS !== undefined ? {ratePerS} : {})};
}

type Computed = Record<string, string | string[]>;

interface JumpContext {
  readonly knownHostsFile: string;
  readonly acceptNewHostKeys: boolean;
  readonly connectTimeoutMs: number;
  readonly agent: string | undefined;
  readonly home: string;
  readonly localUser: string;
  readonly config: SSHConfig | undefined;
}

/** `a,b,c` → c reached through b reached through a: returns the spec of the last hop. */
function resolveJumpChain(text: string, ctx: JumpContext, depth: number): ConnectionSpec | undefined {
  if (text.trim().toLowerCase() === 'none') return undefined;
  let previous: ConnectionSpec | undefined;
  for (const hopText of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const hop = parseJumpHop(hopText);
    const cfg = computeConfig(ctx.config, hop.host);
    const user = hop.user ?? cfgString(cfg, 'user') ?? ctx.localUser;
    const address = hostNameFrom(cfg, hop.host);
    const expand = (p: string) => expandPath(p, {home: ctx.home, localUser: ctx.localUser, remoteHost: address, remoteUser: user});
    const keys = configOrDefaultKeys(cfg, ctx.home, expand);
    // The first hop may itself need a jump host (its own ProxyJump in the ssh config).
    const own = cfgString(cfg, 'proxyjump');
    const via =
      previous ?? (own !== undefined && depth < MAX_JUMP_DEPTH ? resolveJumpChain(own, ctx, depth + 1) : undefined);
    previous = {
      host: hop.host,
      address,
      port: hop.port ?? cfgPort(cfg) ?? DEFAULT_PORT,
      user,
      ...(keys[0] !== undefined ? {privateKeyPath: keys[0]} : {}),
      ...(keys.length > 1 ? {extraPrivateKeyPaths: keys.slice(1)} : {}),
      knownHostsFile: ctx.knownHostsFile,
      acceptNewHostKeys: ctx.acceptNewHostKeys,
      connectTimeoutMs: ctx.connectTimeoutMs,
      ...(ctx.agent !== undefined ? {agent: ctx.agent} : {}),
      ...(via !== undefined ? {proxyJump: via} : {}),
    };
  }
  return previous;
}

/** `[user@]host[:port]`, `[user@][v6addr]:port`, or `ssh://user@host:port`. */
function parseJumpHop(text: string): {user?: string; host: string; port?: number} {
  let rest = text.replace(/^ssh:\/\//, '');
  let user: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  // `[addr]:port` (an IPv6 address in brackets) or `name:port`; a bare IPv6 address has several colons.
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest) ?? /^([^:]*):([^:]*)$/.exec(rest);
  const host = m?.[1] ?? rest;
  const port = m?.[2] === undefined ? undefined : Number(m[2]);
  return {...(user ? {user} : {}), host, ...(port !== undefined && port > 0 ? {port} : {})};
}

/** `-J host` or `-o ProxyJump=host` inside `ansible_ssh_common_args`. */
function jumpFromCommonArgs(args: string | undefined): string | undefined {
  if (!args) return undefined;
  const words = shellParse(args).filter((w): w is string => typeof w === 'string');
  for (const [i, w] of words.entries()) {
    const next = words[i + 1];
    if (w === '-J' && next !== undefined) return next;
    if (w.startsWith('-J') && w.length > 2) return w.slice(2);
    const option = w === '-o' ? next : w.startsWith('-o') ? w.slice(2) : undefined;
    const m = option === undefined ? null : /^ProxyJump\s*[= ]\s*(.+)$/i.exec(option);
    if (m) return m[1];
  }
  return undefined;
}

/** IdentityFile lines that exist (as OpenSSH, missing ones are skipped), else the default keys present. */
function configOrDefaultKeys(cfg: Computed, home: string, expand: (p: string) => string): string[] {
  const named = cfgList(cfg, 'identityfile').filter((p) => p.toLowerCase() !== 'none');
  if (named.length > 0) return named.map(expand).filter((p) => existsSync(p));
  return DEFAULT_KEYS.map((k) => join(home, '.ssh', k)).filter((p) => existsSync(p));
}

function loadSshConfig(path: string): SSHConfig | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return SSHConfig.parse(text);
}

/** The ssh config values for a host, with lower-cased keys (the parser keeps the file's spelling). */
function computeConfig(config: SSHConfig | undefined, host: string): Computed {
  if (!config) return {};
  const out: Computed = {};
  for (const [key, value] of Object.entries(config.compute(host))) {
    const k = key.toLowerCase();
    const existing = out[k];
    if (existing === undefined) out[k] = value;
    else if (Array.isArray(existing)) out[k] = existing.concat(value);
  }
  return out;
}

/** HostName, where `%h` is the name looked up (`Host db*` + `HostName %h.internal`). */
function hostNameFrom(cfg: Computed, lookup: string): string {
  const name = cfgString(cfg, 'hostname');
  return name === undefined ? lookup : name.replace(/%([h%])/g, (_, c: string) => (c === 'h' ? lookup : '%'));
}

function cfgString(cfg: Computed, key: string): string | undefined {
  const v = cfg[key];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

function cfgList(cfg: Computed, key: string): string[] {
  const v = cfg[key];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function cfgPort(cfg: Computed): number | undefined {
  const n = Number(cfgString(cfg, 'port'));
  return Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

function varString(vars: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const v = vars[key];
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number') return String(v);
  }
  return undefined;
}

function varNumber(vars: Record<string, unknown>, ...keys: string[]): number | undefined {
  const s = varString(vars, ...keys);
  const n = Number(s);
  return s !== undefined && Number.isFinite(n) && n > 0 ? n : undefined;
}

function varPort(host: string, vars: Record<string, unknown>, ...keys: string[]): number | undefined {
  const s = varString(vars, ...keys);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0 || n >= 65536) {
    throw new UnreachableError(host, `${host}: ${keys[0]} is not a port number: ${JSON.stringify(s)}`);
  }
  return n;
}

/** A password may be a plain string or a secret value (anything with `reveal()`, e.g. from a vault). */
function varSecret(vars: Record<string, unknown>, ...keys: string[]): string | undefined {
  for (const key of keys) {
    const v = vars[key];
    if (typeof v === 'string') return v;
    if (typeof v === 'object' && v !== null && 'reveal' in v && typeof v.reveal === 'function') {
      const clear: unknown = v.reveal();
      if (typeof clear === 'string') return clear;
    }
  }
  return undefined;
}

function currentUser(env: NodeJS.ProcessEnv): string {
  try {
    return userInfo().username;
  } catch {
    return env.USER || env.LOGNAME || 'root';
  }
}

/** `~` and the ssh_config tokens %d %u %h %r %%; relative paths are taken from the working directory. */
function expandPath(p: string, t: {home: string; localUser: string; remoteHost: string; remoteUser: string}): string {
  let out = p.replace(/^~(?=$|\/)/, t.home);
  out = out.replace(/%([duhr%])/g, (_, c: string) =>
    c === 'd' ? t.home : c === 'u' ? t.localUser : c === 'h' ? t.remoteHost : c === 'r' ? t.remoteUser : '%',
  );
  return isAbsolute(out) ? out : resolve(out);
}
