/**
 * Vault: encrypted variable files. AES-256-GCM with a key derived by scrypt from a passphrase.
 *
 * File format (version 1.0): a header line, then base64 of salt(16) | iv(12) | tag(16) | ciphertext,
 * wrapped at 80 columns:
 *
 *     $PROVISION_VAULT;1.0;AES256GCM
 *     <base64 …>
 *
 * scrypt parameters are fixed by the version: N = 2^15, r = 8, p = 1, 32-byte key. The header line is
 * authenticated too (GCM additional data), so any change to header, salt, iv, tag or ciphertext is
 * refused, as is a wrong passphrase (GCM cannot tell the two apart).
 *
 * Ansible's format is read too (`decrypt` dispatches on the header), so that an Ansible project's vault
 * files and inline `!vault` values work as they are; see `decryptAnsible`. provision writes only its own.
 *
 * Also here: a command's `Keyring` (where the passphrase comes from: a file, the environment, or an
 * interactive prompt the CLI gives it; the keys derived with it) and what a decrypted vault file
 * holds that must be masked (`vaultSecrets`).
 * The lab's generated vault (`ensureLabVault`) is in src/lab/vault.ts.
 */
import {execFileSync} from 'node:child_process';
import {createCipheriv, createDecipheriv, createHmac, pbkdf2Sync, randomBytes, scrypt, scryptSync, timingSafeEqual} from 'node:crypto';
import {accessSync, constants, readFileSync, statSync} from 'node:fs';
import {basename, extname} from 'node:path';
import {ExitCode, UserError} from './errors.ts';
import {writeFileAtomic} from './localfs.ts';

export const VAULT_HEADER = '$PROVISION_VAULT;1.0;AES256GCM';
const SALT = 16;
const IV = 12;
const TAG = 16;
const SCRYPT = {N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024} as const;

/** Thrown by `decrypt` for a wrong passphrase, a damaged file, or a file that is no vault at all. */
export class VaultError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VaultError';
  }
}

/** Does this text look like a vault file (ours, by its header)? */
export function isVaultText(text: string): boolean {
  return text.startsWith('$PROVISION_VAULT;');
}

/** Ansible's vault format (`$ANSIBLE_VAULT;1.1;AES256`, or `1.2;AES256;<vault-id>`), read by `decrypt`. */
export function isAnsibleVaultText(text: string): boolean {
  return text.startsWith('$ANSIBLE_VAULT;');
}

/** Derived keys by salt and passphrase: scrypt is slow on purpose (~80 ms), a keyring keeps the last few. */
export type KeyCache = Map<string, Buffer>;

function deriveKey(passphrase: string, salt: Buffer, keys?: KeyCache): Buffer {
  const id = `${salt.toString('hex')}:${passphrase}`;
  let key = keys?.get(id);
  if (!key) {
    key = scryptSync(passphrase.normalize('NFC'), salt, 32, SCRYPT);
    if (keys) {
      keys.set(id, key);
      const oldest = keys.keys().next();
      if (keys.size > 16 && !oldest.done) keys.delete(oldest.value);
    }
  }
  return key;
}

/** Encrypt `plaintext` with `passphrase` into the vault file text (a fresh salt and iv every time). */
export function encrypt(plaintext: string, passphrase: string, keys?: KeyCache): string {
  if (passphrase.length === 0) throw new VaultError('the vault passphrase is empty');
  const salt = randomBytes(SALT);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(passphrase, salt, keys), iv);
  cipher.setAAD(Buffer.from(VAULT_HEADER, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const blob = Buffer.concat([salt, iv, cipher.getAuthTag(), body]).toString('base64');
  const lines = blob.match(/.{1,80}/g) ?? [''];
  return `${VAULT_HEADER}\n${lines.join('\n')}\n`;
}

/** Decrypt vault text, provision's or Ansible's. Throws `VaultError` (never anything else) when that is not possible. */
export function decrypt(text: string, passphrase: string, keys?: KeyCache): string {
  if (isAnsibleVaultText(text)) return decryptAnsible(text, passphrase, keys);
  const nl = text.indexOf('\n');
  const header = (nl < 0 ? text : text.slice(0, nl)).trim();
  if (!isVaultText(header)) throw new VaultError('not a vault file (no $PROVISION_VAULT header)');
  const [, version, cipherName] = header.split(';');
  if (version !== '1.0' || cipherName !== 'AES256GCM') {
    throw new VaultError(`unsupported vault format ${JSON.stringify(header)} (this provision reads ${VAULT_HEADER})`);
  }
  const b64 = (nl < 0 ? '' : text.slice(nl + 1)).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new VaultError('damaged vault file (the body is not base64)');
  const blob = Buffer.from(b64, 'base64');
  if (blob.length < SALT + IV + TAG) throw new VaultError('damaged vault file (too short)');
  const salt = blob.subarray(0, SALT);
  const iv = blob.subarray(SALT, SALT + IV);
  const tag = blob.subarray(SALT + IV, SALT + IV + TAG);
  const body = blob.subarray(SALT + IV + TAG);
  try {
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(passphrase, salt, keys), iv);
    decipher.setAAD(Buffer.from(VAULT_HEADER, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    throw new VaultError('cannot decrypt: wrong passphrase, or the file was altered');
  }
}

// ---------------------------------------------------------------------------------------------------
// Ansible's format (ansible-core lib/ansible/parsing/vault/__init__.py: VaultAES256,
// format_vaulttext_envelope, parse_vaulttext_envelope)
//
//     $ANSIBLE_VAULT;1.1;AES256                 (or 1.2;AES256;<vault-id>)
//     <hex of: hex(salt) "\n" hex(hmac) "\n" hex(ciphertext)>, wrapped at 80 columns
//
// PBKDF2-HMAC-SHA256, 10000 iterations, over the passphrase's UTF-8 and the salt (32 bytes when
// ansible-vault writes it) gives 80 bytes: AES key (32) | HMAC key (32) | counter block (16).
// The plaintext is PKCS#7-padded to 16 bytes and encrypted with AES-256-CTR; the HMAC-SHA256 of the
// ciphertext (only: the header and vault id are not authenticated) is checked before decrypting.

const ANSIBLE_ITERATIONS = 10_000;

/** What an Ansible vault header says. The vault id is a label for choosing a passphrase, not authenticated. */
export interface AnsibleVaultHeader {
  readonly version: '1.1' | '1.2';
  readonly cipher: 'AES256';
  readonly vaultId?: string;
}

/** The header of Ansible vault text; a `VaultError` when it is not one this provision reads. */
export function ansibleVaultHeader(text: string): AnsibleVaultHeader {
  const first = text.trimStart().split(/\r?\n/, 1)[0]!.trim();
  if (!isAnsibleVaultText(first)) throw new VaultError('not an Ansible vault (no $ANSIBLE_VAULT header)');
  const [, version, cipher, vaultId] = first.split(';').map((p) => p.trim());
  if ((version !== '1.1' && version !== '1.2') || cipher !== 'AES256') {
    throw new VaultError(`unsupported Ansible vault format ${JSON.stringify(first)} (this provision reads 1.1 and 1.2 with AES256)`);
  }
  return vaultId ? {version, cipher, vaultId} : {version, cipher};
}

function ansibleKeys(passphrase: string, salt: Buffer, keys?: KeyCache): {aes: Buffer; mac: Buffer; iv: Buffer} {
  const id = `ansible:${salt.toString('hex')}:${passphrase}`;
  let derived = keys?.get(id);
  if (!derived) {
    derived = pbkdf2Sync(Buffer.from(passphrase, 'utf8'), salt, ANSIBLE_ITERATIONS, 80, 'sha256');
    if (keys) {
      keys.set(id, derived);
      const oldest = keys.keys().next();
      if (keys.size > 16 && !oldest.done) keys.delete(oldest.value);
    }
  }
  return {aes: derived.subarray(0, 32), mac: derived.subarray(32, 64), iv: derived.subarray(64, 80)};
}

function unhex(text: string, what: string): Buffer {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new VaultError(`damaged Ansible vault (${what} is not hex)`);
  return Buffer.from(text, 'hex');
}

/** Decrypt Ansible vault text (a file, or the block of an inline `!vault` value). Throws `VaultError` only. */
export function decryptAnsible(text: string, passphrase: string, keys?: KeyCache): string {
  ansibleVaultHeader(text);
  const lines = text.trimStart().split(/\r?\n/);
  const envelope = unhex(lines.slice(1).join('').replace(/\s+/g, ''), 'the body').toString('latin1');
  const parts = envelope.split('\n');
  if (parts.length < 3) throw new VaultError('damaged Ansible vault (no salt, hmac and ciphertext)');
  const salt = unhex(parts[0]!, 'the salt');
  const hmac = unhex(parts[1]!, 'the hmac');
  const body = unhex(parts.slice(2).join('\n'), 'the ciphertext');
  if (salt.length === 0 || body.length === 0 || body.length % 16 !== 0) throw new VaultError('damaged Ansible vault (bad lengths)');
  const k = ansibleKeys(passphrase, salt, keys);
  const expected = createHmac('sha256', k.mac).update(body).digest();
  if (hmac.length !== expected.length || !timingSafeEqual(hmac, expected)) {
    throw new VaultError('cannot decrypt: wrong passphrase, or the file was altered');
  }
  const decipher = createDecipheriv('aes-256-ctr', k.aes, k.iv);
  const padded = Buffer.concat([decipher.update(body), decipher.final()]);
  const pad = padded[padded.length - 1]!;
  if (pad < 1 || pad > 16 || !padded.subarray(padded.length - pad).every((b) => b === pad)) {
    throw new VaultError('damaged Ansible vault (bad padding)');
  }
  return padded.subarray(0, padded.length - pad).toString('utf8');
}

/**
 * Encrypt into Ansible's format (1.1, or 1.2 with a vault id), as `ansible-vault encrypt` writes it.
 * provision writes its own format; this is for tests and for handing a value back to Ansible.
 */
export function encryptAnsible(plaintext: string, passphrase: string, opts: {vaultId?: string; salt?: Buffer} = {}): string {
  if (passphrase.length === 0) throw new VaultError('the vault passphrase is empty');
  const salt = opts.salt ?? randomBytes(32);
  const k = ansibleKeys(passphrase, salt);
  const clear = Buffer.from(plaintext, 'utf8');
  const pad = 16 - (clear.length % 16);
  const cipher = createCipheriv('aes-256-ctr', k.aes, k.iv);
  const body = Buffer.concat([cipher.update(Buffer.concat([clear, Buffer.alloc(pad, pad)])), cipher.final()]);
  const hmac = createHmac('sha256', k.mac).update(body).digest();
  const envelope = Buffer.from([salt.toString('hex'), hmac.toString('hex'), body.toString('hex')].join('\n'), 'latin1').toString('hex');
  const header = opts.vaultId && opts.vaultId !== 'default' ? `$ANSIBLE_VAULT;1.2;AES256;${opts.vaultId}` : '$ANSIBLE_VAULT;1.1;AES256';
  return `${header}\n${(envelope.match(/.{1,80}/g) ?? []).join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------
// The passphrase

/** Strings shorter than this are not masked: masking `no` or `1` everywhere would wreck every output. */
export const MIN_MASKED_LENGTH = 4;

/** The passphrase held in a file (one line; a final newline is dropped). A missing or empty file is a `UserError`. */
export function readPassFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the vault passphrase file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.badOptions);
  }
  const pass = text.replace(/\r?\n$/, '');
  if (pass.length === 0) throw new UserError(`the vault passphrase file ${path} is empty`, ExitCode.badOptions);
  return pass;
}

function noPassphrase(forWhat: string): UserError {
  return new UserError(
    `${forWhat} needs the vault passphrase: set PROVISION_VAULT_PASSWORD_FILE (a file holding it) or PROVISION_VAULT_PASSWORD, or run on a terminal to be asked`,
    ExitCode.badOptions,
  );
}

/** One `--vault-id label@source`: a passphrase file, an executable script printing it, or `prompt`. */
export interface VaultId {
  /** The label (`default` when none was given) an Ansible 1.2 vault header may name. */
  readonly label: string;
  /** `prompt`, or the path of a file holding the passphrase or of a script printing it. */
  readonly source: string;
}

/** Parses `--vault-id` as Ansible does: `label@source`, or `source` alone (label `default`). */
export function parseVaultId(text: string): VaultId {
  const at = text.indexOf('@');
  const [label, source] = at < 0 ? ['default', text] : [text.slice(0, at), text.slice(at + 1)];
  if (label === '' || source === '') {
    throw new UserError(`--vault-id ${text}: expected label@source (source: a file, an executable script, or prompt)`, ExitCode.badOptions);
  }
  return {label, source};
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The passphrase of a `--vault-id` file or script, as Ansible reads it: an executable is run (with
 * `--vault-id LABEL` when its name ends in `-client`, Ansible's client scripts) and its output, less
 * line breaks at either end, is the passphrase; a plain file's text, less line breaks at either end.
 */
export function readVaultIdSource(id: VaultId): string {
  const what = `--vault-id ${id.label}@${id.source}`;
  let pass: string;
  if (isExecutableFile(id.source)) {
    const client = basename(id.source, extname(id.source)).endsWith('-client');
    try {
      pass = execFileSync(id.source, client ? ['--vault-id', id.label] : [], {encoding: 'utf8', stdio: ['inherit', 'pipe', 'inherit'], maxBuffer: 1 << 20});
    } catch (e) {
      const status = (e as {status?: number | null}).status;
      throw new UserError(`${what}: the passphrase script ${status == null ? `could not run: ${(e as Error).message.split('\n')[0]}` : `exited with ${status}`}`, ExitCode.error);
    }
  } else {
    try {
      pass = readFileSync(id.source, 'utf8');
    } catch (e) {
      throw new UserError(`${what}: cannot read the passphrase file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, ExitCode.badOptions);
    }
  }
  pass = pass.replace(/^[\r\n]+|[\r\n]+$/g, '');
  if (pass.length === 0) throw new UserError(`${what}: the passphrase is empty`, ExitCode.badOptions);
  return pass;
}

/** Where a command's vault passphrase may come from. */
export interface PassphraseSources {
  /**
   * `--vault-id`, repeatable: every passphrase is tried on a vault (the one whose label an Ansible
   * 1.2 header names first, then the others in order). Then `file` or the environment, as `default`.
   */
  readonly ids?: readonly VaultId[];
  /** `--vault-password-file`: beats the environment. */
  readonly file?: string;
  /** Asks on the terminal (no echo); the CLI gives one when stdin is a terminal. */
  readonly prompt?: (question: string) => Promise<string>;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * One command's vault passphrase and derived keys: where the passphrase comes from (a file, the
 * environment, a file the inventory names, or a prompt), read once, and the keys derived with it.
 * Made by the CLI for each command; the loaders that meet vault files are given it.
 */
export class Keyring {
  #pass: string | undefined;
  /** The passphrases of `--vault-id`s read so far, by position in `sources.ids`. */
  readonly #idPass = new Map<number, string>();
  /** The passphrase file an inventory names (`provision_vault_password_file`, e.g. the lab's). */
  #namedFile: string | undefined;
  readonly #keys: KeyCache = new Map();

  constructor(private readonly sources: PassphraseSources = {}) {}

  /**
   * The passphrase file an inventory names: used only when neither --vault-password-file nor the
   * environment gives a passphrase.
   */
  nameFile(path: string | undefined): void {
    this.#namedFile = path;
  }

  /** The `--vault-id` passphrases known without asking (files and scripts are read once), in order, labelled. */
  #idSecrets(): Array<{label: string; pass: string}> {
    const out: Array<{label: string; pass: string}> = [];
    (this.sources.ids ?? []).forEach((id, i) => {
      let pass = this.#idPass.get(i);
      if (pass === undefined && id.source !== 'prompt') this.#idPass.set(i, (pass = readVaultIdSource(id)));
      if (pass !== undefined) out.push({label: id.label, pass});
    });
    return out;
  }

  /** Every passphrase known without asking: the `--vault-id`s, then the default one (`passphraseSync`). */
  #secrets(): Array<{label: string; pass: string}> {
    const out = this.#idSecrets();
    const dflt = this.#defaultSync();
    if (dflt !== undefined) out.push({label: 'default', pass: dflt});
    return out;
  }

  /**
   * The passphrase without asking anyone: the first `--vault-id`'s (when it is no prompt), else
   * --vault-password-file, $PROVISION_VAULT_PASSWORD_FILE, $PROVISION_VAULT_PASSWORD, the named file.
   */
  passphraseSync(): string | undefined {
    return this.#secrets()[0]?.pass;
  }

  #defaultSync(): string | undefined {
    if (this.#pass !== undefined) return this.#pass;
    const env = this.sources.env ?? process.env;
    const file = this.sources.file ?? env.PROVISION_VAULT_PASSWORD_FILE;
    if (file) return (this.#pass = readPassFile(file));
    if (env.PROVISION_VAULT_PASSWORD) return (this.#pass = env.PROVISION_VAULT_PASSWORD);
    if (this.#namedFile) return (this.#pass = readPassFile(this.#namedFile));
    return undefined;
  }

  /**
   * The (first) passphrase, asking on the terminal (once) when neither file nor environment gives it.
   * With `--vault-id …@prompt`, each such id is asked for now, in order ("Vault password (label): ").
   */
  async passphrase(forWhat: string, opts: {confirm?: boolean} = {}): Promise<string> {
    const ids = this.sources.ids ?? [];
    for (const [i, id] of ids.entries()) {
      if (id.source !== 'prompt' || this.#idPass.has(i)) continue;
      if (!this.sources.prompt) throw noPassphrase(`${forWhat} (--vault-id ${id.label}@prompt)`);
      const pass = await this.sources.prompt(id.label === 'default' ? 'Vault password: ' : `Vault password (${id.label}): `);
      if (pass.length === 0) throw new UserError('the vault passphrase is empty', ExitCode.badOptions);
      this.#idPass.set(i, pass);
    }
    const known = this.passphraseSync();
    if (known !== undefined) return known;
    const prompt = this.sources.prompt;
    if (!prompt) throw noPassphrase(forWhat);
    const pass = await prompt('Vault passphrase: ');
    if (pass.length === 0) throw new UserError('the vault passphrase is empty', ExitCode.badOptions);
    if (opts.confirm && (await prompt('Confirm vault passphrase: ')) !== pass) {
      throw new UserError('the passphrases do not match', ExitCode.badOptions);
    }
    return (this.#pass = pass);
  }

  encrypt(plaintext: string, passphrase: string): string {
    return encrypt(plaintext, passphrase, this.#keys);
  }

  decrypt(text: string, passphrase: string): string {
    return decrypt(text, passphrase, this.#keys);
  }

  /**
   * Derive the key of each vault file off the main thread (libuv's pool), so that loading the files
   * later (synchronous, with the YAML) finds it ready: the ~80 ms of scrypt overlap the playbook's load.
   * Files that are not vaults or cannot be read are left to the synchronous path and its errors.
   */
  async prime(files: readonly string[]): Promise<void> {
    const pass = this.passphraseSync();
    if (pass === undefined) return;
    // (with several passphrases, only the first one's keys are derived ahead)
    await Promise.all(files.map(async (file) => {
      let salt: Buffer;
      try {
        const text = readFileSync(file, 'utf8');
        const nl = text.indexOf('\n');
        if (!isVaultText(text) || nl < 0) return;
        salt = Buffer.from(text.slice(nl + 1).replace(/\s+/g, ''), 'base64').subarray(0, SALT);
        if (salt.length < SALT) return;
      } catch {
        return;
      }
      const id = `${salt.toString('hex')}:${pass}`;
      if (this.#keys.has(id)) return;
      const key = await new Promise<Buffer>((res, rej) => scrypt(pass.normalize('NFC'), salt, 32, SCRYPT, (e, k) => (e ? rej(e) : res(k))));
      this.#keys.set(id, key);
    }));
  }

  /**
   * The clear text of a vars file that is a vault, provision's or Ansible's, for the loaders
   * (group_vars, host_vars, `-e @file`, the inventory file), or of an inline `!vault` value: decrypted with the passphrase known so far; the caller masks what it parses (`vaultSecrets`). A
   * wrong passphrase is a one-line `UserError` naming the file, exit 1.
   */
  open(text: string, file: string, line?: number): string {
    const secrets = this.#secrets();
    if (secrets.length === 0) throw noPassphrase(line === undefined ? `vault file ${file}` : `the !vault value at ${file}:${line}`);
    // Ansible's order: the passphrases of the label a 1.2 header names, then the others, as given.
    let label: string | undefined;
    try {
      label = isAnsibleVaultText(text.trimStart()) ? ansibleVaultHeader(text).vaultId : undefined;
    } catch {
      label = undefined; // the decryption below reports it
    }
    const ordered = label === undefined ? secrets : [...secrets.filter((x) => x.label === label), ...secrets.filter((x) => x.label !== label)];
    let last: VaultError | undefined;
    for (const {pass} of ordered) {
      try {
        return this.decrypt(text, pass);
      } catch (e) {
        if (!(e instanceof VaultError)) throw e;
        last = e;
        if (!/wrong passphrase/.test(e.message)) break; // damaged or unsupported: no passphrase helps
      }
    }
    const several = ordered.length > 1 && /wrong passphrase/.test(last!.message);
    const message = several
      ? `cannot decrypt with any of the ${ordered.length} vault passphrases (vault ids ${ordered.map((x) => x.label).join(', ')}): wrong passphrases, or the file was altered`
      : last!.message;
    if (line === undefined) throw new UserError(`${file}: ${message}`, ExitCode.error);
    throw new UserError(`!vault value: ${message}`, ExitCode.error, {file, line});
  }
}

/** What a decrypted value holds that must be masked: every string in it (long enough), and the lines of multi-line ones. */
export function vaultSecrets(value: unknown): string[] {
  if (typeof value === 'string') {
    const out = value.length >= MIN_MASKED_LENGTH ? [value] : [];
    // A multi-line secret (a key, a certificate) may show up one line at a time.
    if (value.includes('\n')) for (const line of value.split('\n')) if (line.trim().length >= 8) out.push(line.trim());
    return out;
  }
  if (Array.isArray(value)) return value.flatMap(vaultSecrets);
  if (typeof value === 'object' && value !== null) return Object.values(value).flatMap(vaultSecrets);
  return [];
}

/** Write a file atomically (temp file beside it, then rename), mode 0600. */
export function writePrivateFile(path: string, content: string): void {
  writeFileAtomic(path, content, 0o600);
}
