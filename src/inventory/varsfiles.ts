/**
 * `group_vars/` and `host_vars/` beside the inventory file, found as Ansible's `host_group_vars` plugin
 * finds them: the first of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` that exists; when that is a
 * directory, every file in it (recursively, sorted, hidden and `~` backups skipped, only those
 * extensions or none) merged in order, later files winning key by key (shallow).
 */
import {closeSync, openSync, readdirSync, readFileSync, readSync, statSync} from 'node:fs';
import {extname, isAbsolute, join} from 'node:path';
import {isMap, isScalar} from 'yaml';
import type {Node} from 'yaml';
import {parseError} from '../core/errors.ts';
import {isAnsibleVaultText, isVaultText, vaultSecrets} from '../core/vault.ts';
import {entries, hasInlineVault, keyString, kindOf, lineOf, parseYaml, valueOf, type VaultAccess} from './yamlsource.ts';

export type {VaultAccess} from './yamlsource.ts';

const extensions = ['.yml', '.yaml', '.json'];

function kindAt(path: string): 'file' | 'dir' | 'none' {
  try {
    const st = statSync(path);
    return st.isDirectory() ? 'dir' : 'file';
  } catch {
    return 'none';
  }
}

function dirFiles(dir: string): string[] {
  const found: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.') || name.endsWith('~')) continue;
    const ext = extname(name);
    const full = join(dir, name);
    const kind = kindAt(full);
    if (kind === 'dir' && ext === '') found.push(...dirFiles(full));
    else if (kind === 'file' && (ext === '' || extensions.includes(ext))) found.push(full);
  }
  return found;
}

/** The vars files for one host or group name under `dir` (`…/group_vars`), in merge order. */
export function findVarsFiles(dir: string, name: string): string[] {
  if (name.startsWith('/') || isAbsolute(name)) return [];
  const base = join(dir, name);
  for (const ext of ['', ...extensions]) {
    const kind = kindAt(base + ext);
    if (kind === 'dir') return dirFiles(base + ext);
    if (kind === 'file') return [base + ext];
  }
  return [];
}

/** Reads one vars file: a mapping (or an empty file); anything else is a located parse error. */
export function readVarsFile(file: string, vault: VaultAccess): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw parseError(`cannot read vars file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {file});
  }
  // A vault file: decrypted with the run's passphrase; every string in it is masked in all output.
  const isVault = isVaultText(text) || isAnsibleVaultText(text);
  if (isVault) text = vault.keyring.open(text, file);
  const src = parseYaml(text, file, vault);
  const root = src.doc.contents as Node | null;
  if (!root || (isScalar(root) && root.value === null)) return {};
  if (!isMap(root)) {
    throw parseError(`a vars file must be a mapping of variables, got ${kindOf(root)}`, {file, line: lineOf(src, root) ?? 1, field: '(top)'});
  }
  const vars: Record<string, unknown> = {};
  for (const e of entries(src, root)) vars[keyString(e.key)] = valueOf(src, e.value);
  if (isVault) vault.secrets.add(...vaultSecrets(vars));
  return vars;
}

/** Does this file start with a vault header? (Reads its first bytes only.) */
export function isVaultFile(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const head = Buffer.alloc(32);
    const n = readSync(fd, head, 0, head.length, 0);
    const text = head.subarray(0, n).toString('utf8');
    return isVaultText(text) || isAnsibleVaultText(text);
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Is this file a vault, or a YAML file holding inline `!vault` values? (Reads all of it: vars files are small.) */
export function needsVault(file: string): boolean {
  if (isVaultFile(file)) return true;
  try {
    return hasInlineVault(readFileSync(file, 'utf8'));
  } catch {
    return false;
  }
}

/** The files among the vars files under `dir` (a `group_vars` or `host_vars` folder), any depth, that need the vault passphrase. */
export function vaultFilesUnder(dir: string): string[] {
  if (kindAt(dir) !== 'dir') return [];
  const out: string[] = [];
  const walk = (d: string, depth: number): void => {
    if (depth > 8) return;
    let names: string[];
    try {
      names = readdirSync(d).sort();
    } catch {
      return;
    }
    for (const name of names) {
      if (name.startsWith('.') || name.endsWith('~')) continue;
      const full = join(d, name);
      const kind = kindAt(full);
      if (kind === 'dir') walk(full, depth + 1);
      else if (kind === 'file' && needsVault(full)) out.push(full);
    }
  };
  walk(dir, 0);
  return out;
}

/** The merged variables of the vars files for `name` under `dir`. */
export function loadVars(dir: string, name: string, vault: VaultAccess): Record<string, unknown> {
  if (kindAt(dir) !== 'dir') return {};
  let vars: Record<string, unknown> = {};
  for (const file of findVarsFiles(dir, name)) vars = {...vars, ...readVarsFile(file, vault)};
  return vars;
}
