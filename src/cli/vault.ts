/**
 * `provision vault encrypt|decrypt|edit|view|create|rekey FILE`: encrypted variable files (format and
 * crypto in core/vault.ts). `view`, `decrypt` and `rekey` read Ansible's vault files too; `rekey`
 * converts one to provision's format. The passphrase comes from --vault-password-file, then
 * $PROVISION_VAULT_PASSWORD_FILE, then $PROVISION_VAULT_PASSWORD, then a prompt without echo when
 * stdin is a terminal; otherwise a clear error (exit 5). A wrong passphrase is exit 1, as Ansible.
 */
import {spawnSync} from 'node:child_process';
import {existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {basename, join} from 'node:path';
import type {Command} from 'commander';
import {ExitCode, UserError} from '../core/errors.ts';
import {VaultError, decrypt, encrypt, isAnsibleVaultText, isVaultText, Keyring, parseVaultId, readPassFile, vaultSecrets, writePrivateFile} from '../core/vault.ts';
import {needsVault} from '../inventory/varsfiles.ts';
import {entries, keyString, parseYaml, valueOf, type VaultAccess} from '../inventory/yamlsource.ts';
import type {Node} from 'yaml';
import {isMap, isScalar} from 'yaml';

/** Read a line from the terminal without echoing it. */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    process.stderr.write(question);
    let answer = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode?.(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error): void => {
      stdin.off('data', onData);
      stdin.setRawMode?.(wasRaw ?? false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new UserError('interrupted', ExitCode.interrupted));
        if (ch === '\u007f' || ch === '\b') answer = answer.slice(0, -1);
        else answer += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/**
 * A command's keyring: `--vault-id label@source` (repeatable; source a file, an executable script or
 * `prompt`), `--vault-password-file`, the environment, and a prompt when stdin is a terminal.
 */
export function commandKeyring(vaultPasswordFile: string | undefined, vaultIds: readonly string[] = []): Keyring {
  const ids = vaultIds.map(parseVaultId);
  return new Keyring({
    ...(ids.length === 0 ? {} : {ids}),
    ...(vaultPasswordFile === undefined ? {} : {file: vaultPasswordFile}),
    ...(process.stdin.isTTY ? {prompt: promptHidden} : {}),
  });
}

/**
 * `-e @file` items that are vault files or hold `!vault` values: get the passphrase before the
 * (synchronous) extra-vars parsing decrypts them.
 */
export async function primeExtraVarsVault(items: readonly string[], keyring: Keyring): Promise<void> {
  const vaults = items.filter((i) => i.startsWith('@') && needsVault(i.slice(1)));
  if (vaults.length > 0) await keyring.passphrase(`-e ${vaults[0]}`);
}

/**
 * The variables of `-e @FILE`: YAML (or JSON) as Ansible reads it, a mapping; the file may be a vault,
 * and may hold inline `!vault` values; their clear text joins `vault.secrets`. Mistakes are bad options (exit 5),
 * a wrong passphrase exit 1.
 */
export function readExtraVarsFile(item: string, vault: VaultAccess): Record<string, unknown> {
  const file = item.slice(1);
  let text: string;
  try {
    if (statSync(file).isDirectory()) throw new Error('a directory');
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UserError(`-e ${item}: cannot read ${file}`, ExitCode.badOptions);
  }
  const isVault = isVaultText(text) || isAnsibleVaultText(text);
  if (isVault) text = vault.keyring.open(text, file);
  let root: Node | null;
  let vars: Record<string, unknown>;
  try {
    const src = parseYaml(text, file, vault);
    root = src.doc.contents as Node | null;
    if (!root || !isMap(root)) {
      const empty = !root || (isScalar(root) && root.value === null);
      throw new UserError(`-e ${item}: the file must hold a mapping${empty ? ' (it is empty)' : ''}`, ExitCode.badOptions);
    }
    vars = {};
    for (const e of entries(src, root)) {
      Object.defineProperty(vars, keyString(e.key), {value: valueOf(src, e.value), enumerable: true, writable: true, configurable: true});
    }
  } catch (e) {
    if (e instanceof UserError && e.exitCode === ExitCode.parseError) {
      throw new UserError(`-e ${item}: not valid YAML: ${e.oneLine()}`, ExitCode.badOptions);
    }
    throw e;
  }
  if (isVault) vault.secrets.add(...vaultSecrets(vars));
  return vars;
}

function readText(file: string): string {
  try {
    if (statSync(file).isDirectory()) throw new UserError(`${file} is a directory`, ExitCode.badOptions);
    return readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`, ExitCode.badOptions);
  }
}

/** A vault file's text (provision's or, with `ansible`, Ansible's), checked before any passphrase is asked for. */
function readVault(file: string, ansible: 'ansible-too' | 'provision-only' = 'ansible-too'): string {
  const text = readText(file);
  if (isAnsibleVaultText(text) && ansible === 'provision-only') {
    throw new UserError(`${file}: this is an Ansible vault file; convert it first with 'provision vault rekey ${file}'`, ExitCode.error);
  }
  if (!isVaultText(text) && !isAnsibleVaultText(text)) throw new UserError(`${file} is not a vault file (use 'provision vault encrypt ${file}')`, ExitCode.error);
  return text;
}

function open(file: string, text: string, pass: string): string {
  try {
    const clear = decrypt(text, pass);
    return clear;
  } catch (e) {
    if (e instanceof VaultError) throw new UserError(`${file}: ${e.message}`, ExitCode.error);
    throw e;
  }
}

/** Open `initial` in $VISUAL / $EDITOR (default vi) on a 0600 file in a private 0700 folder; return the result. */
function editText(initial: string, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'provision-vault-'));
  const file = join(dir, basename(name).replace(/^\.+/, '') || 'vault.yml');
  try {
    writeFileSync(file, initial, {mode: 0o600});
    const editor = process.env.VISUAL || process.env.EDITOR || 'vi';
    // The editor setting may carry arguments ("code -w"): let the shell split it.
    const r = spawnSync('sh', ['-c', `${editor} "$1"`, 'sh', file], {stdio: 'inherit'});
    if (r.error) throw new UserError(`cannot run the editor '${editor}': ${r.error.message}`);
    if (r.status !== 0) throw new UserError(`the editor '${editor}' exited with ${r.status ?? r.signal}; the vault is unchanged`);
    return readFileSync(file, 'utf8');
  } finally {
    rmSync(dir, {recursive: true, force: true});
  }
}

interface VaultFlags {
  readonly vaultPasswordFile?: string;
  readonly vaultId?: readonly string[];
  readonly newVaultPasswordFile?: string;
}

/** Adds `provision vault …` to `program`. */
export function registerVault(program: Command): void {
  const vault = program
    .command('vault')
    .description('encrypted variable files (AES-256-GCM): encrypt, decrypt, edit, view, create, rekey');
  const sub = (name: string, description: string, action: (file: string, keyring: Keyring) => Promise<void>): void => {
    vault
      .command(name)
      .description(description)
      .argument('<file>', 'the vars file')
      .option('--vault-password-file <file>', 'read the passphrase from this file')
      .option('--vault-id <label@source>', 'a passphrase: label@file, label@script or label@prompt (repeatable; the first encrypts)', (v: string, prev: string[] = []) => [...prev, v])
      .action(async (file: string, flags: VaultFlags) => {
        await action(file, commandKeyring(flags.vaultPasswordFile, flags.vaultId));
      });
  };

  sub('encrypt', 'encrypt a plain vars file in place', async (file, keyring) => {
    const text = readText(file);
    if (isVaultText(text) || isAnsibleVaultText(text)) throw new UserError(`${file} is already a vault file`, ExitCode.error);
    const pass = await keyring.passphrase(`vault encrypt ${file}`, {confirm: true});
    writePrivateFile(file, encrypt(text, pass));
    process.stderr.write(`Encryption successful: ${file}\n`);
  });

  sub('decrypt', 'decrypt a vault file in place', async (file, keyring) => {
    const text = readVault(file);
    await keyring.passphrase(`vault decrypt ${file}`);
    const clear = keyring.open(text, file);
    writePrivateFile(file, clear);
    process.stderr.write(`Decryption successful: ${file}\n`);
  });

  sub('view', 'print a vault file in clear', async (file, keyring) => {
    const text = readVault(file);
    await keyring.passphrase(`vault view ${file}`);
    const clear = keyring.open(text, file);
    process.stdout.write(clear);
  });

  sub('edit', 'edit a vault file in $EDITOR (a 0600 temp file), re-encrypt on save', async (file, keyring) => {
    const text = readVault(file, 'provision-only');
    const pass = await keyring.passphrase(`vault edit ${file}`);
    const clear = open(file, text, pass);
    const edited = editText(clear, file);
    if (edited === clear) {
      process.stderr.write(`${file}: unchanged\n`);
      return;
    }
    writePrivateFile(file, encrypt(edited, pass));
  });

  vault
    .command('rekey')
    .description("re-encrypt a vault file in provision's format: an Ansible vault file is converted (same passphrase unless a new one is given), a provision one gets a new passphrase")
    .argument('<file>', 'the vault file')
    .option('--vault-password-file <file>', 'read the current passphrase from this file')
    .option('--new-vault-password-file <file>', 'read the new passphrase from this file')
    .action(async (file: string, flags: VaultFlags) => {
      const text = readVault(file);
      const keyring = commandKeyring(flags.vaultPasswordFile);
      const pass = await keyring.passphrase(`vault rekey ${file}`);
      const clear = open(file, text, pass);
      let next: string;
      if (flags.newVaultPasswordFile !== undefined) next = readPassFile(flags.newVaultPasswordFile);
      else if (isAnsibleVaultText(text)) next = pass;
      else if (process.stdin.isTTY) {
        const ask = (question: string): Promise<string> => promptHidden(`New ${question.charAt(0).toLowerCase()}${question.slice(1)}`);
        next = await new Keyring({prompt: ask, env: {}}).passphrase(`vault rekey ${file}`, {confirm: true});
      }
      else throw new UserError(`vault rekey ${file}: give the new passphrase with --new-vault-password-file`, ExitCode.badOptions);
      writePrivateFile(file, encrypt(clear, next));
      process.stderr.write(`Rekey successful: ${file}\n`);
    });

  sub('create', 'create a new vault file in $EDITOR', async (file, keyring) => {
    if (existsSync(file)) throw new UserError(`${file} already exists (use 'provision vault edit ${file}')`, ExitCode.error);
    const pass = await keyring.passphrase(`vault create ${file}`, {confirm: true});
    const text = editText('', file);
    writePrivateFile(file, encrypt(text, pass));
  });
}
