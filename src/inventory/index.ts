/**
 * Ansible inventories, read as `ansible-inventory` reads them: YAML or INI files, `group_vars/` and
 * `host_vars/` beside them, Ansible's variable precedence, host patterns, and the `--list`/`--graph`
 * views. Everything is loaded and checked up front; a mistake is a `UserError` naming file, line and
 * field (exit code 4).
 */
import {existsSync, readdirSync, readFileSync, statSync} from 'node:fs';
import {basename, dirname, extname, isAbsolute, join, resolve} from 'node:path';
import type {Node} from 'yaml';
import {isMap, isScalar} from 'yaml';
import {ExitCode, UserError, badOption, parseError} from '../core/errors.ts';
import {parseIniInventory} from './ini.ts';
import {loadScriptInventory, scriptKind} from './script.ts';
import {InventoryData} from './model.ts';
import {loadVars, vaultFilesUnder, type VaultAccess} from './varsfiles.ts';
import {isAnsibleVaultText, isVaultText, Keyring, vaultSecrets} from '../core/vault.ts';
import {Secrets} from '../core/secret.ts';

export type {VaultAccess} from './varsfiles.ts';
import {parseYamlInventory} from './yaml.ts';
import {type YamlSource, hasInlineVault, parseYaml} from './yamlsource.ts';
import {applyConstructed, pluginName, readConstructedConfig, type ConstructedConfig} from './constructed.ts';

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
  /** Absolute path of the inventory source (file or directory); with several `-i`, the first. */
  readonly source: string;
  /** Every inventory source given (`-i`, repeatable), absolute, in the order they were merged. */
  readonly sources?: readonly string[];
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
function parseInventoryText(text: string, file: string, warnings: string[], vault: VaultAccess, data = new InventoryData()): InventoryData {
  const ext = extname(file);
  if (ext !== '' && !yamlExtensions.includes(ext)) {
    parseIniInventory(text, file, data);
    return data;
  }
  let src: YamlSource | undefined;
  let yamlError: unknown;
  try {
    src = parseYaml(text, file, vault);
  } catch (e) {
    // A `!vault` value that cannot be opened is that, not a sign that the file is INI.
    if (e instanceof UserError && e.exitCode !== ExitCode.parseError) throw e;
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

/** The folders whose `group_vars/` and `host_vars/` apply: each source's (a directory's own, a file's folder), in order. */
function varsBases(sources: readonly string[]): string[] {
  return sources.map((s) => (isDirectory(s) ? s : dirname(s)));
}

class LoadedInventory implements Inventory {
  readonly source: string;
  readonly hostNames: readonly string[];
  readonly groups: ReadonlyMap<string, Group>;
  private readonly vars = new Map<string, Record<string, unknown>>();
  private readonly memberOf = new Map<string, string[]>();

  constructor(
    readonly sources: readonly string[],
    data: InventoryData,
    readonly warnings: readonly string[],
    vault: VaultAccess,
  ) {
    this.source = sources[0]!;
    // Ansible's vars plugins run per source, each over the host's groups: `groupFileVars[i]` is source i's.
    const bases = varsBases(sources);
    const depths = data.depths();
    const groupFileVars = bases.map(() => new Map<string, Record<string, unknown>>());
    const groups = new Map<string, Group>();
    for (const g of data.groups.values()) {
      let fromFiles: Record<string, unknown> = {};
      bases.forEach((dir, i) => {
        const mine = loadVars(join(dir, 'group_vars'), g.name, vault);
        groupFileVars[i]!.set(g.name, mine);
        fromFiles = {...fromFiles, ...mine};
      });
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
      // Ansible's VARIABLE_PRECEDENCE: inline all, inline groups, group_vars/all, group_vars/*, then the
      // host; the vars files source by source (a later source's shallower group beats an earlier one's deeper).
      let merged: Record<string, unknown> = {...all.vars};
      for (const g of ordered) merged = {...merged, ...data.groups.get(g.name)!.vars};
      for (const files of groupFileVars) merged = {...merged, ...files.get('all')};
      for (const files of groupFileVars) for (const g of ordered) merged = {...merged, ...files.get(g.name)};
      merged = {...merged, ...data.hosts.get(host)!.vars};
      for (const dir of bases) merged = {...merged, ...loadVars(join(dir, 'host_vars'), host, vault)};
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

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A read error as a located parse error (exit 4). */
function unreadable(e: unknown, file: string): UserError {
  if (e instanceof UserError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message);
  return parseError(`cannot read inventory: ${why}`, {file});
}

/**
 * What Ansible skips in an inventory directory (`inventory/manager.py`): hidden names, `group_vars`,
 * `host_vars`, `vars_plugins`, and the extensions of ansible-core's INVENTORY_IGNORE_EXTS default
 * (REJECT_EXTS + `.orig`, `.cfg`, `.retry`; `.ini` files are read, as since ansible-core 2.18).
 */
const ignoredNames = /^\.|^host_vars$|^group_vars$|^vars_plugins$/;
const ignoredExtensions = ['.pyc', '.pyo', '.swp', '.bak', '~', '.rpm', '.md', '.txt', '.rst', '.orig', '.cfg', '.retry'];

/** The inventory files of a source: the file itself, or a directory's files, sorted, recursively, as Ansible walks it. */
function sourceFiles(source: string): string[] {
  let st;
  try {
    st = statSync(source);
  } catch (e) {
    throw unreadable(e, source);
  }
  if (!st.isDirectory()) return [source];
  let names: string[];
  try {
    names = readdirSync(source).sort();
  } catch (e) {
    throw unreadable(e, source);
  }
  const files: string[] = [];
  for (const name of names) {
    if (ignoredNames.test(name) || ignoredExtensions.some((x) => name.endsWith(x))) continue;
    files.push(...sourceFiles(join(source, name)));
  }
  return files;
}

/**
 * Reads one inventory file (a script, or YAML or INI, maybe vaulted) into `data`; an inventory
 * plugin's configuration (`plugin: constructed`) is returned instead, for the caller to run.
 */
async function readInventoryFile(file: string, data: InventoryData, warnings: string[], vault: VaultAccess): Promise<ConstructedConfig | undefined> {
  const kind = scriptKind(file);
  if (kind === 'script') {
    await loadScriptInventory(file, data);
    return undefined;
  }
  if (kind === 'not-executable') {
    throw parseError(`starts with #! like an inventory script, but is not executable (chmod +x ${basename(file)})`, {file});
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw unreadable(e, file);
  }
  // The inventory file itself may be a vault: decrypted, and its variables masked.
  const vaulted = isVaultText(text) || isAnsibleVaultText(text);
  if (vaulted) {
    await vault.keyring.passphrase(`vault file ${file}`);
    text = vault.keyring.open(text, file);
  }
  // Inline `!vault` values: the passphrase now (maybe asking), for the synchronous parsing.
  if (hasInlineVault(text)) await vault.keyring.passphrase(`the !vault values in ${file}`);
  if (vaulted) {
    // Its values are secrets: read it once more on its own to know which they are (a reference to a
    // group of an earlier source may fail there, after the values were read).
    const own = new InventoryData();
    try {
      parseInventoryText(text, file, [], vault, own);
    } catch {
      // the parse below reports it
    }
    for (const g of own.groups.values()) vault.secrets.add(...vaultSecrets(g.vars));
    for (const h of own.hosts.values()) vault.secrets.add(...vaultSecrets(h.vars));
  }
  // An inventory plugin's configuration (Ansible's `auto` plugin: a .yml/.yaml file with `plugin:`).
  if (/^['"]?plugin['"]?\s*:/m.test(text) && ['.yml', '.yaml'].includes(extname(file))) {
    let src: YamlSource | undefined;
    try {
      src = parseYaml(text, file, vault);
    } catch {
      // not YAML: the parse below reports it
    }
    if (src && pluginName(src) !== undefined) return readConstructedConfig(src, warnings);
  }
  // Every source adds to the same inventory, as Ansible's plugins do: later values win.
  parseInventoryText(text, file, warnings, vault, data);
  return undefined;
}

/**
 * Reads an inventory source (YAML or INI file, inventory script, or a directory of them) with its
 * `group_vars/` and `host_vars/`. Vault files are opened with `vault.keyring`; their values join
 * `vault.secrets` (the command's, to be masked).
 */
export async function loadInventory(path: string, vault: VaultAccess = {keyring: new Keyring(), secrets: new Secrets()}): Promise<Inventory> {
  return loadInventories([path], vault);
}

/**
 * Reads several inventory sources (`-i A -i B`) into one inventory, as Ansible merges them: in
 * order, each adding its hosts and groups, a later source's variables winning over an earlier one's,
 * and the `group_vars/`/`host_vars/` beside each source applied source by source.
 */
export async function loadInventories(paths: readonly string[], vault: VaultAccess = {keyring: new Keyring(), secrets: new Secrets()}): Promise<Inventory> {
  if (paths.length === 0) throw badOption('no inventory given');
  const sources = paths.map((p) => resolve(p));
  const data = new InventoryData();
  const warnings: string[] = [];
  // The folders of the files read so far (Ansible's `processed_sources`), for `constructed`'s use_vars_plugins.
  const processed: string[] = [];
  for (const source of sources) {
    const files = sourceFiles(source);
    if (files.length === 0) throw parseError('no inventory file in this directory', {file: source});
    for (const file of files) {
      const constructed = await readInventoryFile(file, data, warnings, vault);
      if (constructed) {
        // It runs here, over the hosts read so far, as Ansible runs it in the order of the sources.
        if (constructed.useVarsPlugins) {
          const vaults = [...new Set(processed)].flatMap((dir) => [...vaultFilesUnder(join(dir, 'group_vars')), ...vaultFilesUnder(join(dir, 'host_vars'))]);
          if (vaults.length > 0) await vault.keyring.passphrase(`vault file ${vaults[0]}`);
        }
        applyConstructed(constructed, data, processed, vault);
      }
      processed.push(dirname(file));
    }
  }
  data.reconcile();
  // Vault files among the vars files: get the passphrase now (maybe asking on the terminal), so that
  // the synchronous loading below can decrypt them.
  const bases = varsBases(sources);
  const vaults = bases.flatMap((dir) => [...vaultFilesUnder(join(dir, 'group_vars')), ...vaultFilesUnder(join(dir, 'host_vars'))]);
  if (vaults.length > 0) {
    // An inventory may name its passphrase file (the lab's is generated): relative to the cwd, the
    // inventory's folder, or the folder above it (the project root for inventory/lab.yml).
    const named = data.groups.get('all')?.vars.provision_vault_password_file;
    if (typeof named === 'string' && named !== '') {
      const candidates = isAbsolute(named) ? [named] : [resolve(named), ...bases.flatMap((b) => [resolve(b, named), resolve(b, '..', named)])];
      vault.keyring.nameFile(candidates.find((c) => existsSync(c)) ?? candidates[0]);
    }
    await vault.keyring.passphrase(`vault file ${vaults[0]}`);
    await vault.keyring.prime(vaults);
  }
  return new LoadedInventory(sources, data, warnings, vault);
}
