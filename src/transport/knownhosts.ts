/**
 * Host keys, checked against a known_hosts file the way OpenSSH does: plain, hashed (`|1|salt|hash`)
 * and `[host]:port` entries, wildcards and `!negations`, `@revoked` honoured, `@cert-authority`
 * ignored. A changed key is always refused; an unknown one is refused unless new keys are accepted,
 * then it is appended to the file.
 */
import {createHash, createHmac} from 'node:crypto';
import {appendFileSync, mkdirSync, readFileSync} from 'node:fs';
import {readFile} from 'node:fs/promises';
import {dirname} from 'node:path';
import type {ServerHostKeyAlgorithm} from 'ssh2';
import {DEFAULT_PORT, type ConnectionSpec} from './config.ts';

/** What checking a host's key needs to know of its connection. */
export type HostKeyTarget = Pick<ConnectionSpec, 'host' | 'address' | 'port' | 'knownHostsFile' | 'acceptNewHostKeys'>;

export type HostKeyVerdict = {readonly ok: true} | {readonly ok: false; readonly message: string};

/** The host key policy for one connection: the algorithms to offer and the verifier of the key presented. */
export interface HostKeyCheck {
  /** Host key algorithms to offer, those already known for the host first (as OpenSSH does). */
  readonly algorithms: ServerHostKeyAlgorithm[];
  /** Compare the key presented with the file; on an unknown key, maybe record it. */
  verify(blob: Buffer): HostKeyVerdict;
}

/** Read the host's known_hosts file (a missing one knows no host) and return its check. */
export async function loadHostKeyCheck(target: HostKeyTarget): Promise<HostKeyCheck> {
  const entries = parseKnownHosts(await readFile(target.knownHostsFile, 'utf8').catch(() => ''));
  const names = hostNames(target);
  const knownTypes = new Set(entries.filter((e) => e.marker === '' && hostsFieldMatches(e.hosts, names)).map((e) => e.type));
  return {
    algorithms: hostKeyAlgorithms(knownTypes),
    verify: (blob) => verifyHostKey(target, entries, blob),
  };
}

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
    const first = fields[0];
    const marker = first === '@revoked' || first === '@cert-authority' ? first : '';
    const [hosts, type, key] = marker === '' ? fields : fields.slice(1);
    if (hosts === undefined || type === undefined || key === undefined) return;
    out.push({marker, hosts, type, key, line: i + 1});
  });
  return out;
}

/** How a host is written in known_hosts: `name` on port 22, `[name]:port` otherwise. */
function knownHostName(name: string, port: number): string {
  return port === DEFAULT_PORT ? name : `[${name}]:${port}`;
}

/** The names a host may be recorded under: its address and its inventory name. */
function hostNames(target: HostKeyTarget): string[] {
  return [...new Set([knownHostName(target.address, target.port), knownHostName(target.host, target.port)])];
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

/** The signature algorithms of each host key type. */
const HOST_KEY_ALGORITHMS: Readonly<Record<string, readonly ServerHostKeyAlgorithm[]>> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

function hostKeyAlgorithms(knownTypes: ReadonlySet<string>): ServerHostKeyAlgorithm[] {
  const all = Object.values(HOST_KEY_ALGORITHMS).flat();
  const preferred = [...knownTypes].flatMap((t) => HOST_KEY_ALGORITHMS[t] ?? []);
  return [...new Set([...preferred, ...all])];
}

function verifyHostKey(target: HostKeyTarget, entries: readonly KnownHostEntry[], blob: Buffer): HostKeyVerdict {
  const file = target.knownHostsFile;
  const type = blobKeyType(blob);
  const key = blob.toString('base64');
  const where = `${target.host} (${target.address}:${target.port})`;
  const names = hostNames(target);
  const matching = entries.filter((e) => e.marker !== '@cert-authority' && hostsFieldMatches(e.hosts, names));

  const revoked = matching.find((e) => e.marker === '@revoked' && e.key === key);
  if (revoked) {
    return {ok: false, message: `host key for ${where} is marked @revoked in ${file}:${revoked.line}; refusing to connect`};
  }
  const plain = matching.filter((e) => e.marker === '');
  if (plain.some((e) => e.type === type && e.key === key)) return {ok: true};
  const changed = plain.find((e) => e.type === type);
  if (changed) {
    return {
      ok: false,
      message:
        `host key for ${where} has CHANGED: the ${type} key presented (${fingerprint(blob)}) differs from ` +
        `${file}:${changed.line}; this may be an attack. If the host was reinstalled, remove the old ` +
        `entry (ssh-keygen -R '${knownHostName(target.address, target.port)}' -f ${file})`,
    };
  }
  if (!target.acceptNewHostKeys) {
    return {
      ok: false,
      message: `host key for ${where} is not in ${file} (${type} ${fingerprint(blob)}); connect once with --accept-new-host-keys to trust it`,
    };
  }
  try {
    appendKnownHost(file, `${knownHostName(target.address, target.port)} ${type} ${key}\n`);
  } catch (err) {
    return {ok: false, message: `cannot record the host key for ${where} in ${file}: ${err instanceof Error ? err.message : String(err)}`};
  }
  return {ok: true};
}

/** Append a line, after a newline if the file does not end with one; a new file is 0600 in a 0700 directory. */
function appendKnownHost(file: string, line: string): void {
  mkdirSync(dirname(file), {recursive: true, mode: 0o700});
  let prefix = '';
  try {
    const current = readFileSync(file);
    if (current.length > 0 && current.at(-1) !== 0x0a) prefix = '\n';
  } catch {
    // A new file: created below with mode 0600.
  }
  appendFileSync(file, prefix + line, {mode: 0o600});
}
