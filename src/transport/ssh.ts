/**
 * The SSH transport: one node-ssh (ssh2) connection per host, reused for every command.
 *
 * - `resolveConnection` turns an inventory host and its variables (plus ~/.ssh/config) into a plain
 *   `ConnectionSpec`, with Ansible's precedence: inventory variables beat the ssh config, which beats
 *   the defaults. It is pure apart from reading the ssh config and checking which key files exist.
 * - `connectSsh` opens the connection, checks the host key against a known_hosts file the way
 *   OpenSSH does (plain, hashed and `[host]:port` entries; `@revoked` honoured), and returns a
 *   `Transport`. Every failure to reach the host is an `UnreachableError` with one clear line;
 *   host key problems are its subclass `HostKeyError`.
 *
 * A leaf module: it imports only the transport types.
 */
import {createHash, createHmac} from 'node:crypto';
import type {EventEmitter} from 'node:events';
import {appendFileSync, existsSync, mkdirSync, readFileSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {homedir, userInfo} from 'node:os';
import {dirname, isAbsolute, join, resolve} from 'node:path';
import type {Duplex, Readable} from 'node:stream';
import {NodeSSH} from 'node-ssh';
import SSHConfig from 'ssh-config';
import {parse as shellParse} from 'shell-quote';
import {HostKeyError, UnreachableError, type ExecOptions, type ExecResult, type RunningCommand, type Transport} from './types.ts';

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

const DEFAULT_PORT = 22;
const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'] as const;
const DEFAULT_MAX_SESSIONS = 10;
const MAX_JUMP_DEPTH = 5;

// ---------------------------------------------------------------------------------------------------
// Resolving a host's connection

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
  };
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
  let host = rest;
  let port: number | undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] !== undefined) port = Number(bracketed[2]);
  } else if (rest.split(':').length === 2) {
    const [h, p] = rest.split(':');
    host = h!;
    port = Number(p);
  }
  return {...(user ? {user} : {}), host, ...(port !== undefined && port > 0 ? {port} : {})};
}

/** `-J host` or `-o ProxyJump=host` inside `ansible_ssh_common_args`. */
function jumpFromCommonArgs(args: string | undefined): string | undefined {
  if (!args) return undefined;
  const words = shellParse(args).filter((w): w is string => typeof w === 'string');
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if (w === '-J' && words[i + 1] !== undefined) return words[i + 1];
    if (w.startsWith('-J') && w.length > 2) return w.slice(2);
    const option = w === '-o' ? words[i + 1] : w.startsWith('-o') ? w.slice(2) : undefined;
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
    if (typeof v === 'object' && v !== null && typeof (v as {reveal?: unknown}).reveal === 'function') {
      const clear = (v as {reveal(): unknown}).reveal();
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

// ---------------------------------------------------------------------------------------------------
// known_hosts

interface KnownHostEntry {
  readonly marker: '' | '@revoked' | '@cert-authority';
  readonly hosts: string;
  readonly type: string;
  readonly key: string;
  readonly line: number;
}

function parseKnownHosts(text: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = '';
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority') marker = fields.shift() as KnownHostEntry['marker'];
    const [hosts, type, key] = fields;
    if (hosts === undefined || type === undefined || key === undefined) return;
    out.push({marker, hosts, type, key, line: i + 1});
  });
  return out;
}

/** How a host is written in known_hosts: `name` on port 22, `[name]:port` otherwise. */
function knownHostName(name: string, port: number): string {
  return port === DEFAULT_PORT ? name : `[${name}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** Does a known_hosts host field (`a,b,!c`, wildcards, or a hashed `|1|salt|hash`) name one of `names`? */
function hostsFieldMatches(field: string, names: readonly string[]): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const key = Buffer.from(salt, 'base64');
    return names.some((n) => createHmac('sha1', key).update(n).digest('base64') === hash);
  }
  let positive = false;
  for (const pattern of field.split(',')) {
    if (pattern.startsWith('!')) {
      if (names.some((n) => globToRegExp(pattern.slice(1)).test(n))) return false;
    } else if (names.some((n) => globToRegExp(pattern).test(n))) {
      positive = true;
    }
  }
  return positive;
}

/** The key type named inside an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
function blobKeyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Host key algorithms to offer, those already known for the host first (as OpenSSH does). */
const HOST_KEY_ALGORITHMS: Record<string, readonly string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

function hostKeyAlgorithms(knownTypes: ReadonlySet<string>): string[] {
  const all = Object.values(HOST_KEY_ALGORITHMS).flat();
  const preferred = [...knownTypes].flatMap((t) => HOST_KEY_ALGORITHMS[t] ?? []);
  return [...new Set([...preferred, ...all])];
}

type HostKeyVerdict = {ok: true} | {ok: false; message: string};

/** Compare a presented host key with the known_hosts entries; on an unknown key, maybe record it. */
function verifyHostKey(spec: ConnectionSpec, entries: readonly KnownHostEntry[], blob: Buffer): HostKeyVerdict {
  const names = [...new Set([knownHostName(spec.address, spec.port), knownHostName(spec.host, spec.port)])];
  const type = blobKeyType(blob);
  const key = blob.toString('base64');
  const where = `${spec.host} (${spec.address}:${spec.port})`;
  const matching = entries.filter((e) => e.marker !== '@cert-authority' && hostsFieldMatches(e.hosts, names));

  const revoked = matching.find((e) => e.marker === '@revoked' && e.key === key);
  if (revoked) {
    return {ok: false, message: `host key for ${where} is marked @revoked in ${spec.knownHostsFile}:${revoked.line}; refusing to connect`};
  }
  const plain = matching.filter((e) => e.marker === '');
  if (plain.some((e) => e.type === type && e.key === key)) return {ok: true};
  const changed = plain.find((e) => e.type === type);
  if (changed) {
    return {
      ok: false,
      message:
        `host key for ${where} has CHANGED: the ${type} key presented (${fingerprint(blob)}) differs from ` +
        `${spec.knownHostsFile}:${changed.line}; this may be an attack. If the host was reinstalled, remove the old ` +
        `entry (ssh-keygen -R '${knownHostName(spec.address, spec.port)}' -f ${spec.knownHostsFile})`,
    };
  }
  if (!spec.acceptNewHostKeys) {
    return {
      ok: false,
      message:
        `host key for ${where} is not in ${spec.knownHostsFile} (${type} ${fingerprint(blob)}); ` +
        `connect once with --accept-new-host-keys to trust it`,
    };
  }
  try {
    appendKnownHost(spec.knownHostsFile, `${knownHostName(spec.address, spec.port)} ${type} ${key}\n`);
  } catch (err) {
    return {ok: false, message: `cannot record the host key for ${where} in ${spec.knownHostsFile}: ${errorText(err)}`};
  }
  return {ok: true};
}

function appendKnownHost(file: string, line: string): void {
  mkdirSync(dirname(file), {recursive: true, mode: 0o700});
  let prefix = '';
  try {
    const current = readFileSync(file);
    if (current.length > 0 && current[current.length - 1] !== 0x0a) prefix = '\n';
  } catch {
    // A new file: created below with mode 0600.
  }
  appendFileSync(file, prefix + line, {mode: 0o600});
}

// ---------------------------------------------------------------------------------------------------
// Connecting

/** The parts of ssh2's Client and ClientChannel used here (ssh2 ships no types). */
interface Ssh2Channel extends Duplex {
  readonly stderr: Readable;
}
interface Ssh2Client extends EventEmitter {
  exec(command: string, options: object, callback: (err: Error | undefined, channel: Ssh2Channel) => void): boolean;
  end(): void;
}
type AuthAttempt =
  | {type: 'publickey'; username: string; key: Buffer}
  | {type: 'agent'; username: string; agent: string}
  | {type: 'password'; username: string; password: string}
  | {
      type: 'keyboard-interactive';
      username: string;
      prompt: (name: string, instructions: string, lang: string, prompts: unknown[], finish: (answers: string[]) => void) => void;
    };

interface Connected {
  readonly ssh: NodeSSH;
  readonly client: Ssh2Client;
  readonly jump?: Connected;
  /** The last error ssh2 reported after login (for the "connection lost" message). */
  lastError?: string;
  /** The socket is closed. */
  closed: boolean;
}

/**
 * Connect to a host (through its jump hosts, if any) and return a transport that runs every command
 * over this one connection. Rejects with `UnreachableError` (or `HostKeyError`) and a one-line message.
 */
export async function connectSsh(spec: ConnectionSpec): Promise<Transport> {
  const connected = await connectChain(spec);
  return new SshTransport(spec, connected);
}

async function connectChain(spec: ConnectionSpec): Promise<Connected> {
  if (!spec.proxyJump) return connectOne(spec, undefined);
  const jump = await connectChain(spec.proxyJump);
  let sock: Duplex;
  try {
    sock = (await jump.ssh.forwardOut('127.0.0.1', 0, spec.address, spec.port)) as Duplex;
  } catch (err) {
    await closeConnected(jump);
    throw new UnreachableError(
      spec.host,
      `cannot connect to ${spec.host} (${spec.address}:${spec.port}) through jump host ${spec.proxyJump.host}: ${errorText(err)}`,
    );
  }
  try {
    return await connectOne(spec, {sock, jump});
  } catch (err) {
    await closeConnected(jump);
    throw err;
  }
}

async function connectOne(spec: ConnectionSpec, via: {sock: Duplex; jump: Connected} | undefined): Promise<Connected> {
  const where = `${spec.host} (${spec.address}:${spec.port})`;
  const {auths, tried} = await authAttempts(spec);
  const entries = parseKnownHosts(await readFile(spec.knownHostsFile, 'utf8').catch(() => ''));
  const names = [knownHostName(spec.address, spec.port), knownHostName(spec.host, spec.port)];
  const knownTypes = new Set(
    entries.filter((e) => e.marker === '' && hostsFieldMatches(e.hosts, names)).map((e) => e.type),
  );

  let hostKeyProblem: string | undefined;
  const hostVerifier = (blob: Buffer): boolean => {
    const verdict = verifyHostKey(spec, entries, blob);
    if (!verdict.ok) hostKeyProblem = verdict.message;
    return verdict.ok;
  };

  let next = 0;
  const authHandler = (methodsLeft: string[] | null): AuthAttempt | false => {
    while (next < auths.length) {
      const attempt = auths[next++]!;
      const method = attempt.type === 'agent' ? 'publickey' : attempt.type;
      if (methodsLeft === null || methodsLeft.includes(method)) return attempt;
    }
    return false;
  };

  const ssh = new NodeSSH();
  try {
    const connecting = ssh.connect({
      ...(via ? {sock: via.sock} : {host: spec.address, port: spec.port}),
      username: spec.user,
      readyTimeout: spec.connectTimeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 3,
      hostVerifier,
      authHandler,
      algorithms: {serverHostKey: hostKeyAlgorithms(knownTypes)},
    });
    // node-ssh creates the ssh2 client synchronously inside connect(). Disable Nagle's algorithm on its
    // socket: small SSH packets otherwise wait for delayed ACKs (~40 ms per command on a fast link).
    (ssh.connection as {setNoDelay?: (on: boolean) => void} | null)?.setNoDelay?.(true);
    await connecting;
  } catch (err) {
    ssh.dispose();
    if (hostKeyProblem !== undefined) throw new HostKeyError(spec.host, hostKeyProblem);
    throw new UnreachableError(spec.host, connectFailure(spec, where, err, tried), {transient: isTransient(err)});
  }
  const client = ssh.connection as Ssh2Client | null;
  if (!client) throw new UnreachableError(spec.host, `cannot connect to ${where}: connection closed during login`);
  const connected: Connected = {ssh, client, closed: false, ...(via ? {jump: via.jump} : {})};
  // After login node-ssh no longer listens for errors: without this listener one would crash the process.
  client.on('error', (err: unknown) => {
    connected.lastError = errorText(err);
  });
  client.on('close', () => {
    connected.closed = true;
  });
  return connected;
}

/** Keys (in order), then the agent, then the password; plus a description for the auth failure message. */
async function authAttempts(spec: ConnectionSpec): Promise<{auths: AuthAttempt[]; tried: string[]}> {
  const username = spec.user;
  const auths: AuthAttempt[] = [];
  const tried: string[] = [];
  const keyPaths = [spec.privateKeyPath, ...(spec.extraPrivateKeyPaths ?? [])].filter((p): p is string => !!p);
  for (const [i, path] of keyPaths.entries()) {
    let key: Buffer;
    try {
      key = await readFile(path);
    } catch (err) {
      // The first key was named explicitly: failing to read it is the user's to fix.
      if (i === 0 && spec.privateKeyPath === path) {
        throw new UnreachableError(spec.host, `cannot read private key ${path} for ${spec.host}: ${errorText(err)}`);
      }
      continue;
    }
    if (isEncryptedKey(key)) {
      tried.push(`key ${path} (encrypted: passphrases are not supported, load it into ssh-agent)`);
      continue;
    }
    auths.push({type: 'publickey', username, key});
    tried.push(`key ${path}`);
  }
  if (spec.agent) {
    auths.push({type: 'agent', username, agent: spec.agent});
    tried.push('ssh-agent');
  }
  const password = spec.password;
  if (password !== undefined) {
    auths.push({type: 'password', username, password});
    auths.push({
      type: 'keyboard-interactive',
      username,
      prompt: (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => password)),
    });
    tried.push('password');
  }
  return {auths, tried};
}

/** A passphrase-protected key (PEM `ENCRYPTED` header, or an openssh-key-v1 with a cipher other than none). */
function isEncryptedKey(key: Buffer): boolean {
  const text = key.toString('latin1');
  if (/Proc-Type:\s*4,ENCRYPTED|BEGIN ENCRYPTED PRIVATE KEY/.test(text)) return true;
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----([\s\S]*?)-----END OPENSSH PRIVATE KEY-----/.exec(text);
  if (!m) return false;
  const body = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (body.subarray(0, magic.length).toString('latin1') !== magic || body.length < magic.length + 4) return false;
  const len = body.readUInt32BE(magic.length);
  return body.subarray(magic.length + 4, magic.length + 4 + len).toString('latin1') !== 'none';
}

function connectFailure(spec: ConnectionSpec, where: string, err: unknown, tried: readonly string[]): string {
  const e = err as {code?: unknown; level?: unknown; message?: unknown};
  const code = typeof e.code === 'string' ? e.code : '';
  const message = errorText(err);
  const prefix = `cannot connect to ${where}`;
  if (e.level === 'client-authentication' || /authentication methods failed/i.test(message)) {
    const methods = tried.length > 0 ? tried.join(', ') : 'no key, agent or password available';
    return `authentication failed for ${spec.user}@${where} (tried: ${methods})`;
  }
  if (e.level === 'client-timeout' || /timed out/i.test(message) || code === 'ETIMEDOUT') {
    return `${prefix}: timed out after ${Math.round(spec.connectTimeoutMs / 100) / 10} s`;
  }
  switch (code) {
    case 'ECONNREFUSED':
      return `${prefix}: connection refused`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${prefix}: cannot resolve ${spec.address}`;
    case 'EHOSTUNREACH':
      return `${prefix}: no route to host`;
    case 'ENETUNREACH':
      return `${prefix}: network unreachable`;
    case 'ECONNRESET':
      return `${prefix}: connection reset during login`;
  }
  return `${prefix}: ${message}`;
}

/** A connect failure worth trying again: refused, timed out, no route, reset, lost before the handshake. Never auth. */
export function isTransient(err: unknown): boolean {
  const e = err as {code?: unknown; level?: unknown};
  if (e?.level === 'client-authentication') return false;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN'].includes(code)) return true;
  if (e?.level === 'client-timeout') return true;
  return /timed out|before handshake|ECONNRESET|socket hang up/i.test(errorText(err));
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function closeConnected(c: Connected): Promise<void> {
  if (!c.closed) await endClient(c.client);
  if (c.jump) await closeConnected(c.jump);
}

/** End a connection and wait (at most 2 s) for its socket to close. */
function endClient(client: Ssh2Client): Promise<void> {
  return new Promise<void>((done) => {
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      done();
    };
    const timer = setTimeout(finish, 2000);
    client.once('close', finish);
    try {
      client.end();
    } catch {
      finish();
    }
  });
}

// ---------------------------------------------------------------------------------------------------
// The transport

/** The server refused to open a session channel (internal: retried by `exec`). */
class ChannelRefused extends Error {}

const MAX_OPEN_RETRIES = 8;

class SshTransport implements Transport {
  readonly host: string;
  readonly #spec: ConnectionSpec;
  readonly #conn: Connected;
  #maxSessions: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];
  /** Why the connection is gone (undefined while it is up). */
  #down: string | undefined;
  #closing: Promise<void> | undefined;

  constructor(spec: ConnectionSpec, conn: Connected) {
    this.host = spec.host;
    this.#spec = spec;
    this.#conn = conn;
    this.#maxSessions = Math.max(1, spec.maxSessions ?? DEFAULT_MAX_SESSIONS);
    const lost = () => {
      if (this.#down !== undefined) return;
      const why = conn.lastError ? `: ${conn.lastError}` : '';
      this.#down = `connection to ${spec.host} (${spec.address}:${spec.port}) lost${why}`;
      for (const wake of this.#waiting.splice(0)) wake();
    };
    conn.client.on('end', lost);
    conn.client.on('close', lost);
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    for (let attempt = 0; ; attempt++) {
      await this.#acquire();
      try {
        return await this.#run(command, options.stdin);
      } catch (err) {
        if (!(err instanceof ChannelRefused)) throw err;
        // sshd refuses a session beyond its MaxSessions, and briefly also right after one closed (it
        // frees the slot a moment later). Lower the limit to what the server took, and try again.
        if (attempt >= MAX_OPEN_RETRIES || this.#down !== undefined) {
          throw new UnreachableError(this.host, this.#down ?? `cannot start a command on ${this.host}: ${err.message}`);
        }
        this.#maxSessions = Math.max(1, Math.min(this.#maxSessions, this.#running - 1));
      } finally {
        this.#release();
      }
      await new Promise((r) => setTimeout(r, 5 * 2 ** attempt));
    }
  }

  async start(command: string, onStdout: (chunk: string) => void): Promise<RunningCommand> {
    for (let attempt = 0; ; attempt++) {
      await this.#acquire();
      let held: RunningCommand;
      try {
        held = await this.#open(command, onStdout);
      } catch (err) {
        this.#release();
        if (!(err instanceof ChannelRefused)) throw err;
        if (attempt >= MAX_OPEN_RETRIES || this.#down !== undefined) {
          throw new UnreachableError(this.host, this.#down ?? `cannot start a command on ${this.host}: ${err.message}`);
        }
        this.#maxSessions = Math.max(1, Math.min(this.#maxSessions, this.#running));
        await new Promise((r) => setTimeout(r, 5 * 2 ** attempt));
        continue;
      }
      // The session slot is held until the command ends.
      void held.done.then(() => this.#release());
      return held;
    }
  }

  /** Open a channel running `command`, stdin left open. Rejects only when the channel cannot be opened. */
  #open(command: string, onStdout: (chunk: string) => void): Promise<RunningCommand> {
    const spec = this.#spec;
    return new Promise<RunningCommand>((resolveOpen, rejectOpen) => {
      if (this.#down !== undefined) {
        rejectOpen(new UnreachableError(spec.host, this.#down));
        return;
      }
      const onOpen = (err: Error | undefined, channel: Ssh2Channel) => {
        if (err) {
          if (this.#down !== undefined) rejectOpen(new UnreachableError(spec.host, this.#down));
          else if ((err as {reason?: unknown}).reason !== undefined) rejectOpen(new ChannelRefused(err.message));
          else rejectOpen(new UnreachableError(spec.host, `cannot start a command on ${spec.host}: ${err.message}`));
          return;
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | null = null;
        let ended = false;
        const done = new Promise<ExecResult>((resolveDone) => {
          channel.on('data', (chunk: Buffer) => {
            stdout.push(chunk);
            try {
              onStdout(chunk.toString('utf8'));
            } catch {
              // A listener's mistake must not break the channel.
            }
          });
          channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
          channel.on('exit', (c: number | null) => {
            code = typeof c === 'number' ? c : null;
          });
          channel.on('error', () => undefined);
          const finish = (): void => {
            ended = true;
            const lost = code === null && this.#down !== undefined ? `${this.#down}\n` : '';
            resolveDone({code: code ?? -1, stdout: Buffer.concat(stdout).toString('utf8'), stderr: lost + Buffer.concat(stderr).toString('utf8')});
          };
          channel.on('close', finish);
          // A dropped connection may never close the channel itself.
          this.#conn.client.once('close', finish);
        });
        resolveOpen({
          write: (data) => {
            if (!ended) channel.write(data);
          },
          end: () => {
            if (!ended) channel.end();
          },
          done,
        });
      };
      try {
        this.#conn.client.exec(command, {}, onOpen);
      } catch (err) {
        rejectOpen(new UnreachableError(spec.host, this.#down ?? `cannot start a command on ${spec.host}: ${errorText(err)}`));
      }
    });
  }

  close(): Promise<void> {
    if (!this.#closing) {
      this.#down ??= `connection to ${this.host} was closed`;
      for (const wake of this.#waiting.splice(0)) wake();
      this.#closing = closeConnected(this.#conn);
    }
    return this.#closing;
  }

  async #acquire(): Promise<void> {
    while (this.#down === undefined && this.#running >= this.#maxSessions) {
      await new Promise<void>((wake) => this.#waiting.push(wake));
    }
    this.#running++;
  }

  #release(): void {
    this.#running--;
    this.#waiting.shift()?.();
  }

  #run(command: string, stdin: string | Buffer | undefined): Promise<ExecResult> {
    const spec = this.#spec;
    return new Promise<ExecResult>((resolvePromise, reject) => {
      if (this.#down !== undefined) {
        reject(new UnreachableError(spec.host, this.#down));
        return;
      }
      const onOpen = (err: Error | undefined, channel: Ssh2Channel) => {
        if (err) {
          if (this.#down !== undefined) reject(new UnreachableError(spec.host, this.#down));
          else if ((err as {reason?: unknown}).reason !== undefined) reject(new ChannelRefused(err.message));
          else reject(new UnreachableError(spec.host, `cannot start a command on ${spec.host}: ${err.message}`));
          return;
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | null = null;
        let signal: string | undefined;
        channel.on('data', (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        channel.on('exit', (c: number | null, s?: string) => {
          code = typeof c === 'number' ? c : null;
          signal = s ?? undefined;
        });
        channel.on('error', () => {
          // Reported through 'close' below.
        });
        channel.on('close', () => {
          if (code === null && signal === undefined && this.#down !== undefined) {
            reject(new UnreachableError(spec.host, this.#down));
            return;
          }
          resolvePromise({
            code: code ?? -1,
            stdout: Buffer.concat(stdout).toString('utf8'),
            stderr: Buffer.concat(stderr).toString('utf8'),
          });
        });
        if (stdin === undefined) channel.end();
        else channel.end(stdin);
      };
      try {
        // No PTY: output stays clean, stdin stays binary-safe.
        this.#conn.client.exec(command, {}, onOpen);
      } catch (err) {
        reject(new UnreachableError(spec.host, this.#down ?? `cannot start a command on ${spec.host}: ${errorText(err)}`));
      }
    });
  }
}
