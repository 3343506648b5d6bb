/**
 * Ansible inventories, read as `ansible-inventory` reads them: YAML or INI files, `group_vars/` and
 * `host_vars/` beside them, Ansible's variable precedence, host patterns, and the `--list`/`--graph`
 * views. Everything is loaded and checked up front; a mistake is a `UserError` naming file, line and
 * field (exit code 4).
 */
import {existsSync, readFileSync, statSync} from 'node:fs';
import {dirname, extname, isAbsolute, join, resolve} from 'node:path';
import type {Node} from 'yaml';
import {isMap, isScalar} from 'yaml';
import {UserError, parseError} from '../core/errors.ts';
import {parseIniInventory} from './ini.ts';
import {InventoryData} from './model.ts';
import {loadVars, vaultFilesUnder, type VaultAccess} from './varsfiles.ts';
import {isAnsibleVaultText, isVaultText, Keyring, vaultSecrets} from '../core/vault.ts';
import {Secrets} from '../core/secret.ts';

export type {VaultAccess} from './varsfiles.ts';
import {parseYamlInventory} from './yaml.ts';
import {type YamlSource, parseYaml} from './yamlsource.ts';

export {inventoryGraph, inventoryList, sortKeys} from './output.ts';
export {selectHosts, splitHostPattern} from './patterns.ts';
export {expandHostEntry, expandRanges} from './ranges.ts';

/** A group of the inventory. */
export interface Group {
  readonly name: string;
  /** Direct hosts, in inventory order. */
  readonly hosts: readonly string[];
  /** Direct child groups, in inventory order. */
  readonly children: readonly string[];
  /** The group's own variables: inline ones, then its `group_vars/` files (which win). */
  readonly vars: Readonly<Record<string, unknown>>;
  /** `ansible_group_priority` (default 1): at the same depth, a higher priority wins. */
  readonly priority: number;
  /** Longest distance from `all` (0 for `all`): deeper groups win. */
  readonly depth: number;
}

/** A loaded inventory. */
export interface Inventory {
  /** Absolute path of the inventory file. */
  readonly source: string;
  /** Every host, in Ansible's inventory order (that of `ansible all --list-hosts`). */
  readonly hostNames: readonly string[];
  /** Every group, including `all` and `ungrouped`. */
  readonly groups: ReadonlyMap<string, Group>;
  /** What Ansible only warns about (e.g. an unexpected key in a YAML group), each as `file:line: field: message`. */
  readonly warnings: readonly string[];
  /** A host's variables merged by Ansible's precedence (no magic variables), as in `_meta.hostvars`. */
  hostVars(host: string): Record<string, unknown>;
  /** Every group the host is in, transitively, sorted, without `all` (Ansible's `group_names`). */
  groupsOf(host: string): string[];
  /** Every host of a group and its descendants, in inventory order. */
  groupHosts(group: string): string[];
}

const yamlExtensions = ['.yml', '.yaml', '.json'];
const iniSection = /^\s*\[[^:\]\s]+(?::\w+)?\]\s*(?:[#;].*)?$/m;

function isYamlMapping(src: YamlSource): boolean {
  const root = src.doc.contents as Node | null;
  return !root || isMap(root) || (isScalar(root) && root.value === null);
}

/**
 * Chooses the format as Ansible's plugin chain does: a `.yml`/`.yaml`/`.json` or extensionless file
 * is tried as YAML, and read as INI when it is not a YAML mapping; any other file is INI.
 */
function parseInventoryText(text: string, file: string, warnings: string[]): InventoryData {
  const data = new InventoryData();
  const ext = extname(file);
  if (ext !== '' && !yamlExtensions.includes(ext)) {
    parseIniInventory(text, file, data);
    return data;
  }
  let src: YamlSource | undefined;
  let yamlError: unknown;
  try {
    src = parseYaml(text, file);
  } catch (e) {
    yamlError = e;
  }
  if (src && isYamlMapping(src)) {
    parseYamlInventory(src, data, warnings);
    return data;
  }
  try {
    parseIniInventory(text, file, data);
    return data;
  } catch (iniError) {
    // neither format fits: report the error of the format the file was meant to be in
    if (ext === '' && iniSection.test(text)) throw iniError;
    if (yamlError) throw yamlError;
    parseYamlInventory(src!, new InventoryData(), warnings); // throws: the root is not a mapping
    throw iniError;
  }
}

class LoadedInventory implements Inventory {
  readonly hostNames: readonly string[];
  readonly groups: ReadonlyMap<string, Group>;
  private readonly vars = new Map<string, Record<string, unknown>>();
  private readonly memberOf = new Map<string, string[]>();

  constructor(
    readonly source: string,
    data: InventoryData,
    readonly warnings: readonly string[],
    vault: VaultAccess,
  ) {
    const dir = dirname(source);
    const depths = data.depths();
    const groupFileVars = new Map<string, Record<string, unknown>>();
    const groups = new Map<string, Group>();
    for (const g of data.groups.values()) {
      const fromFiles = loadVars(join(dir, 'group_vars'), g.name, vault);
      groupFileVars.set(g.name, fromFiles);
      groups.set(g.name, {
        name: g.name,
        hosts: [...g.hosts],
        children: [...g.children],
        vars: {...g.vars, ...fromFiles},
        priority: g.priority,
        depth: depths.get(g.name) ?? 0,
      });
    }
    this.groups = groups;
    this.hostNames = data.hostsOf('all');

    const all = data.groups.get('all')!;
    const membership = data.membership();
    for (const host of this.hostNames) {
      const mine = [...membership.get(host)!].filter((g) => g !== 'all');
      const ordered = mine
        .map((name) => groups.get(name)!)
        .sort((a, b) => a.depth - b.depth || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      // Ansible's VARIABLE_PRECEDENCE: inline all, inline groups, group_vars/all, group_vars/*, then the host
      let merged: Record<string, unknown> = {...all.vars};
      for (const g of ordered) merged = {...merged, ...data.groups.get(g.name)!.vars};
      merged = {...merged, ...groupFileVars.get('all')};
      for (const g of ordered) merged = {...merged, ...groupFileVars.get(g.name)};
      merged = {...merged, ...data.hosts.get(host)!.vars, ...loadVars(join(dir, 'host_vars'), host, vault)};
      this.vars.set(host, merged);
      this.memberOf.set(host, mine.sort());
    }
    this.hostsOfGroup = (g) => data.hostsOf(g);
  }

  private readonly hostsOfGroup: (group: string) => string[];

  private known(host: string): void {
    if (!this.vars.has(host)) throw new UserError(`no host ${host} in inventory ${this.source}`);
  }

  hostVars(host: string): Record<string, unknown> {
    this.known(host);
    return structuredClone(this.vars.get(host)!);
  }

  groupsOf(host: string): string[] {
    this.known(host);
    return [...this.memberOf.get(host)!];
  }

  groupHosts(group: string): string[] {
    return this.hostsOfGroup(group);
  }
}

/**
 * Reads an inventory file (YAML or INI) with its `group_vars/` and `host_vars/`. Vault files are
 * opened with `vault.keyring`; their values join `vault.secrets` (the command's, to be masked).
 */
export async function loadInventory(path: string, vault: VaultAccess = {keyring: new Keyring(), secrets: new Secrets()}): Promise<Inventory> {
  const file = resolve(path);
  let text: string;
  try {
    if (statSync(file).isDirectory()) {
      throw parseError('is a directory: give the inventory file itself', {file});
    }
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message);
    throw parseError(`cannot read inventory: ${why}`, {file});
  }
  // The inventory file itself may be a vault: decrypted, and its variables masked.
  const vaulted = isVaultText(text) || isAnsibleVaultText(text);
  if (vaulted) {
    await vault.keyring.passphrase(`vault file ${file}`);
    text = vault.keyring.open(text, file);
  }
  const warnings: string[] = [];
  const data = parseInventoryText(text, file, warnings);
  if (vaulted) {
    for (const g of data.groups.values()) vault.secrets.add(...vaultSecrets(g.vars));
    for (const h of data.hosts.values()) vault.secrets.add(...vaultSecrets(h.vars));
  }
  data.reconcile();
  // Vault files among the vars files: get the passphrase now (maybe asking on the terminal), so that
  // the synchronous loading below can decrypt them.
  const vaults = [...vaultFilesUnder(join(dirname(file), 'group_vars')), ...vaultFilesUnder(join(dirname(file), 'host_vars'))];
  if (vaults.length > 0) {
    // An inventory may name its passphrase file (the lab's is generated): relative to the cwd, the
    // inventory's folder, or the folder above it (the project root for inventory/lab.yml).
    const named = data.groups.get('all')?.vars.provision_vault_password_file;
    if (typeof named === 'string' && named !== '') {
      const candidates = isAbsolute(named) ? [named] : [resolve(named), resolve(dirname(file), named), resolve(dirname(file), '..', named)];
      vault.keyring.nameFile(candidates.find((c) => existsSync(c)) ?? candidates[0]);
    }
    await vault.keyring.passphrase(`vault file ${vaults[0]}`);
    await vault.keyring.prime(vaults);
  }
  return new LoadedInventory(file, data, warnings, vault);
}
