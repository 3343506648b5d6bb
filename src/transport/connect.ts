/**
 * Opening an SSH connection: through its jump hosts, with the host key checked (`knownhosts.ts`) and
 * the keys, the agent and the password tried in turn. node-ssh opens the connection (and the jump
 * hosts' forwarded sockets); afterwards its ssh2 `Client` is used directly (`ssh.ts`). Every failure
 * is an `UnreachableError` with one clear line; host key problems are its subclass `HostKeyError`.
 */
import {readFile} from 'node:fs/promises';
import {NodeSSH} from 'node-ssh';
import type {
  AgentAuthMethod,
  AuthenticationType,
  Client,
  KeyboardInteractiveAuthMethod,
  PasswordAuthMethod,
  PublicKeyAuthMethod,
} from 'ssh2';
import type {Readable} from 'node:stream';
import type {ConnectionSpec} from './config.ts';
import {loadHostKeyCheck} from './knownhosts.ts';
import {paced, type Pacing} from './pacing.ts';
import {HostKeyError, UnreachableError} from './types.ts';

/** One open connection (and the jump host connection it runs through). */
export interface Connected {
  readonly ssh: NodeSSH;
  readonly client: Client;
  readonly jump?: Connected;
  /** The last error ssh2 reported after login (for the "connection lost" message). */
  lastError?: string;
  /** The socket is closed. */
  closed: boolean;
}

type AuthAttempt = PublicKeyAuthMethod | AgentAuthMethod | PasswordAuthMethod | KeyboardInteractiveAuthMethod;

/** Connect to `spec`, through its jump hosts (each connected the same way), innermost first. */
export async function connectChain(spec: ConnectionSpec, pacing: Pacing | undefined = spec.pacing): Promise<Connected> {
  if (!spec.proxyJump) return connectOne(spec, undefined, pacing);
  // The jump hosts' handshakes are paced by the target's settings (the inventory names only the target).
  const jump = await connectChain(spec.proxyJump, pacing);
  let sock: Readable;
  try {
    sock = await jump.ssh.forwardOut('127.0.0.1', 0, spec.address, spec.port);
  } catch (err) {
    await closeConnected(jump);
    throw new UnreachableError(
      spec.host,
      `cannot connect to ${spec.host} (${spec.address}:${spec.port}) through jump host ${spec.proxyJump.host}: ${errorText(err)}`,
    );
  }
  try {
    return await connectOne(spec, {sock, jump}, pacing);
  } catch (err) {
    await closeConnected(jump);
    throw err;
  }
}

async function connectOne(spec: ConnectionSpec, via: {sock: Readable; jump: Connected} | undefined, pacing: Pacing | undefined): Promise<Connected> {
  const where = `${spec.host} (${spec.address}:${spec.port})`;
  const {auths, tried} = await authAttempts(spec);
  const hostKeys = await loadHostKeyCheck(spec);

  let hostKeyProblem: string | undefined;
  const hostVerifier = (blob: Buffer): boolean => {
    const verdict = hostKeys.verify(blob);
    if (!verdict.ok) hostKeyProblem = verdict.message;
    return verdict.ok;
  };

  // ssh2 calls this with null first, then with the methods the server still accepts. Returning the
  // next attempt, or false for "no more", is ssh2's synchronous form (its README; @types/ssh2 only
  // declares the callback form, whose `next` does not take false).
  const pending = [...auths];
  const authHandler = (methodsLeft: AuthenticationType[] | null): AuthAttempt | false => {
    for (let attempt = pending.shift(); attempt !== undefined; attempt = pending.shift()) {
      const method = attempt.type === 'agent' ? 'publickey' : attempt.type;
      if (methodsLeft === null || methodsLeft.includes(method)) return attempt;
    }
    return false;
  };

  const ssh = new NodeSSH();
  try {
    await paced(`${spec.address}:${spec.port}`, pacing, async () => {
      const connecting = ssh.connect({
        ...(via ? {sock: via.sock} : {host: spec.address, port: spec.port}),
        username: spec.user,
        readyTimeout: spec.connectTimeoutMs,
        keepaliveInterval: 15_000,
        keepaliveCountMax: 3,
        hostVerifier,
        authHandler,
        algorithms: {serverHostKey: hostKeys.algorithms},
      });
      // node-ssh creates the ssh2 client synchronously inside connect(). Disable Nagle's algorithm on its
      // socket: small SSH packets otherwise wait for delayed ACKs (~40 ms per command on a fast link).
      ssh.connection?.setNoDelay(true);
      await connecting;
    });
  } catch (err) {
    ssh.dispose();
    if (hostKeyProblem !== undefined) throw new HostKeyError(spec.host, hostKeyProblem);
    throw new UnreachableError(spec.host, connectFailure(spec, where, err, tried), {transient: isTransient(err)});
  }
  const client = ssh.connection;
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
  if (m?.[1] === undefined) return false;
  const body = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  const magic = 'openssh-key-v1\0';
  if (body.subarray(0, magic.length).toString('latin1') !== magic || body.length < magic.length + 4) return false;
  const len = body.readUInt32BE(magic.length);
  return body.subarray(magic.length + 4, magic.length + 4 + len).toString('latin1') !== 'none';
}

/** The errno code (`ECONNREFUSED`) and ssh2's `level` (`client-authentication`) of an error, '' when absent. */
function errorFacts(err: unknown): {code: string; level: string} {
  if (typeof err !== 'object' || err === null) return {code: '', level: ''};
  return {
    code: 'code' in err && typeof err.code === 'string' ? err.code : '',
    level: 'level' in err && typeof err.level === 'string' ? err.level : '',
  };
}

function connectFailure(spec: ConnectionSpec, where: string, err: unknown, tried: readonly string[]): string {
  const {code, level} = errorFacts(err);
  const message = errorText(err);
  const prefix = `cannot connect to ${where}`;
  if (level === 'client-authentication' || /authentication methods failed/i.test(message)) {
    const methods = tried.length > 0 ? tried.join(', ') : 'no key, agent or password available';
    return `authentication failed for ${spec.user}@${where} (tried: ${methods})`;
  }
  if (level === 'client-timeout' || /timed out/i.test(message) || code === 'ETIMEDOUT') {
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

const TRANSIENT_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'EPIPE', 'EAI_AGAIN']);

/** A connect failure worth trying again: refused, timed out, no route, reset, lost before the handshake. Never auth. */
export function isTransient(err: unknown): boolean {
  const {code, level} = errorFacts(err);
  if (level === 'client-authentication') return false;
  if (TRANSIENT_CODES.has(code) || level === 'client-timeout') return true;
  return /timed out|before handshake|ECONNRESET|socket hang up/i.test(errorText(err));
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Close a connection, then the jump hosts it ran through. */
export async function closeConnected(c: Connected): Promise<void> {
  if (!c.closed) await endClient(c.client);
  if (c.jump) await closeConnected(c.jump);
}

/** End a connection and wait (at most 2 s) for its socket to close. */
function endClient(client: Client): Promise<void> {
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
