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
 * Also here: a command's `Keyring` (where the passphrase comes from: a file, the environment, or an
 * interactive prompt the CLI gives it; the keys derived with it) and what a decrypted vault file
 * holds that must be masked (`vaultSecrets`).
 * The lab's generated vault (`ensureLabVault`) is in src/lab/vault.ts.
 */
import {createCipheriv, createDecipheriv, randomBytes, scrypt, scryptSync} from 'node:crypto';
import {readFileSync} from 'node:fs';
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

/** Ansible's own vault format, which we do not read (a clear error instead of a YAML parse error). */
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

/** Decrypt vault file text. Throws `VaultError` (never anything else) when that is not possible. */
export function decrypt(text: string, passphrase: string, keys?: KeyCache): string {
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

/** Where a command's vault passphrase may come from. */
export interface PassphraseSources {
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

  /** The passphrase without asking anyone: --vault-password-file, $PROVISION_VAULT_PASSWORD_FILE, $PROVISION_VAULT_PASSWORD, the named file. */
  passphraseSync(): string | undefined {
    if (this.#pass !== undefined) return this.#pass;
    const env = this.sources.env ?? process.env;
    const file = this.sources.file ?? env.PROVISION_VAULT_PASSWORD_FILE;
    if (file) return (this.#pass = readPassFile(file));
    if (env.PROVISION_VAULT_PASSWORD) return (this.#pass = env.PROVISION_VAULT_PASSWORD);
    if (this.#namedFile) return (this.#pass = readPassFile(this.#namedFile));
    return undefined;
  }

  /** The passphrase, asking on the terminal (once) when neither file nor environment gives it. */
  async passphrase(forWhat: string, opts: {confirm?: boolean} = {}): Promise<string> {
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
   * The clear text of a vars file that is a vault, for the loaders (group_vars, host_vars, `-e @file`):
   * decrypted with the passphrase known so far; the caller masks what it parses (`vaultSecrets`). A
   * wrong passphrase is a one-line `UserError` naming the file, exit 1.
   */
  open(text: string, file: string): string {
    if (isAnsibleVaultText(text)) {
      throw new UserError(`${file}: this is an Ansible vault file; decrypt it with ansible-vault and encrypt it with 'provision vault encrypt'`, ExitCode.error);
    }
    const pass = this.passphraseSync();
    if (pass === undefined) throw noPassphrase(`vault file ${file}`);
    try {
      return this.decrypt(text, pass);
    } catch (e) {
      if (e instanceof VaultError) throw new UserError(`${file}: ${e.message}`, ExitCode.error);
      throw e;
    }
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
