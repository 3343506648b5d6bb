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
 * Also here: where the passphrase comes from (`vaultPassphrase`: a file, the environment, or an
 * interactive prompt the CLI plugs in) and what a decrypted vault file registers for masking.
 * The lab's generated vault (`ensureLabVault`) is in src/lab/vault.ts.
 */
import {createCipheriv, createDecipheriv, randomBytes, scrypt, scryptSync} from 'node:crypto';
import {readFileSync} from 'node:fs';
import {ExitCode, UserError} from './errors.ts';
import {registerSecretValue} from './secret.ts';
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

/** scrypt is slow on purpose (~80 ms); the last few keys are kept for files read again in one process. */
const recentKeys = new Map<string, Buffer>();

function deriveKey(passphrase: string, salt: Buffer): Buffer {
  const id = `${salt.toString('hex')}:${passphrase}`;
  let key = recentKeys.get(id);
  if (!key) {
    key = scryptSync(passphrase.normalize('NFC'), salt, 32, SCRYPT);
    recentKeys.set(id, key);
    if (recentKeys.size > 16) recentKeys.delete(recentKeys.keys().next().value!);
  }
  return key;
}

/**
 * Derive the key of each vault file off the main thread (libuv's pool), so that loading the files
 * later (synchronous, with the YAML) finds it ready: the ~80 ms of scrypt overlap the playbook's load.
 * Files that are not vaults or cannot be read are left to the synchronous path and its errors.
 */
export async function primeVaultKeys(files: readonly string[]): Promise<void> {
  const pass = vaultPassphraseSync();
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
    if (recentKeys.has(id)) return;
    const key = await new Promise<Buffer>((res, rej) => scrypt(pass.normalize('NFC'), salt, 32, SCRYPT, (e, k) => (e ? rej(e) : res(k))));
    recentKeys.set(id, key);
  }));
}

/** Encrypt `plaintext` with `passphrase` into the vault file text (a fresh salt and iv every time). */
export function encrypt(plaintext: string, passphrase: string): string {
  if (passphrase.length === 0) throw new VaultError('the vault passphrase is empty');
  const salt = randomBytes(SALT);
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(passphrase, salt), iv);
  cipher.setAAD(Buffer.from(VAULT_HEADER, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  const blob = Buffer.concat([salt, iv, cipher.getAuthTag(), body]).toString('base64');
  const lines = blob.match(/.{1,80}/g) ?? [''];
  return `${VAULT_HEADER}\n${lines.join('\n')}\n`;
}

/** Decrypt vault file text. Throws `VaultError` (never anything else) when that is not possible. */
export function decrypt(text: string, passphrase: string): string {
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
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(passphrase, salt), iv);
    decipher.setAAD(Buffer.from(VAULT_HEADER, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    throw new VaultError('cannot decrypt: wrong passphrase, or the file was altered');
  }
}

// ---------------------------------------------------------------------------------------------------
// The passphrase

/** Strings shorter than this are not registered for masking: masking `no` or `1` everywhere would wreck every output. */
export const MIN_MASKED_LENGTH = 4;

let cached: string | undefined;
let prompt: ((question: string) => Promise<string>) | undefined;
let explicitFile: string | undefined;

/** The CLI plugs in an interactive prompt (no echo) when stdin is a terminal. */
export function setVaultPrompt(fn: ((question: string) => Promise<string>) | undefined): void {
  prompt = fn;
}

/** `--vault-password-file`: beats the environment. */
export function setVaultPasswordFile(path: string | undefined): void {
  explicitFile = path;
  cached = undefined;
}

let defaultFile: string | undefined;

/**
 * The passphrase file an inventory names (`provision_vault_password_file`, e.g. the lab's generated
 * one): used only when neither --vault-password-file nor the environment gives a passphrase.
 */
export function setDefaultVaultPasswordFile(path: string | undefined): void {
  defaultFile = path;
}

/** Forget the passphrase read so far (tests). */
export function resetVaultPassphrase(): void {
  cached = undefined;
  explicitFile = undefined;
  defaultFile = undefined;
}

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

/** The passphrase without asking anyone: --vault-password-file, $PROVISION_VAULT_PASSWORD_FILE, $PROVISION_VAULT_PASSWORD. */
export function vaultPassphraseSync(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (cached !== undefined) return cached;
  const file = explicitFile ?? env.PROVISION_VAULT_PASSWORD_FILE;
  if (file) return (cached = readPassFile(file));
  if (env.PROVISION_VAULT_PASSWORD) return (cached = env.PROVISION_VAULT_PASSWORD);
  if (defaultFile) return (cached = readPassFile(defaultFile));
  return undefined;
}

function noPassphrase(forWhat: string): UserError {
  return new UserError(
    `${forWhat} needs the vault passphrase: set PROVISION_VAULT_PASSWORD_FILE (a file holding it) or PROVISION_VAULT_PASSWORD, or run on a terminal to be asked`,
    ExitCode.badOptions,
  );
}

/** The passphrase, asking on the terminal (once per process) when neither file nor environment gives it. */
export async function vaultPassphrase(forWhat: string, opts: {confirm?: boolean} = {}): Promise<string> {
  const known = vaultPassphraseSync();
  if (known !== undefined) return known;
  if (!prompt) throw noPassphrase(forWhat);
  const pass = await prompt('Vault passphrase: ');
  if (pass.length === 0) throw new UserError('the vault passphrase is empty', ExitCode.badOptions);
  if (opts.confirm && (await prompt('Confirm vault passphrase: ')) !== pass) {
    throw new UserError('the passphrases do not match', ExitCode.badOptions);
  }
  return (cached = pass);
}

/** Register every string inside a decrypted value for masking. */
export function registerVaultValues(value: unknown): void {
  if (typeof value === 'string') {
    if (value.length >= MIN_MASKED_LENGTH) registerSecretValue(value);
    // A multi-line secret (a key, a certificate) may show up one line at a time.
    if (value.includes('\n')) for (const line of value.split('\n')) if (line.trim().length >= 8) registerSecretValue(line.trim());
  } else if (Array.isArray(value)) {
    value.forEach(registerVaultValues);
  } else if (typeof value === 'object' && value !== null) {
    Object.values(value).forEach(registerVaultValues);
  }
}

/**
 * The clear text of a vars file that is a vault, for the loaders (group_vars, host_vars, `-e @file`):
 * decrypts with the passphrase known so far (see `vaultPassphrase`), registers nothing (the caller
 * registers the parsed values). A wrong passphrase is a one-line `UserError` naming the file, exit 1.
 */
export function openVaultFile(text: string, file: string): string {
  if (isAnsibleVaultText(text)) {
    throw new UserError(`${file}: this is an Ansible vault file; decrypt it with ansible-vault and encrypt it with 'provision vault encrypt'`, ExitCode.error);
  }
  const pass = vaultPassphraseSync();
  if (pass === undefined) throw noPassphrase(`vault file ${file}`);
  try {
    return decrypt(text, pass);
  } catch (e) {
    if (e instanceof VaultError) throw new UserError(`${file}: ${e.message}`, ExitCode.error);
    throw e;
  }
}

/** Write a file atomically (temp file beside it, then rename), mode 0600. */
export function writePrivateFile(path: string, content: string): void {
  writeFileAtomic(path, content, 0o600);
}
