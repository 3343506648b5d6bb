/**
 * Ansible's `constructed` inventory plugin (`plugins/inventory/constructed.py` and `Constructable`
 * in `plugins/inventory/__init__.py`): a YAML source holding `plugin: constructed` that, where it
 * stands among the sources, goes over the hosts loaded so far and adds variables (`compose`), groups
 * from conditions (`groups`) and groups from values (`keyed_groups`).
 *
 * The variables it sees are Ansible's: the inline variables of the host's groups (by depth, priority,
 * name) and of the host; with `use_vars_plugins: true` also the `group_vars/`/`host_vars/` beside the
 * sources read before it. Expressions are the subset of src/inventory/jinja.ts; one outside it is a
 * parse error (exit 4) naming the file, line and key, whatever `strict` says. A failing expression
 * (undefined variable, type error) skips that entry for that host, or with `strict: true` is an error.
 */
import {extname, join} from 'node:path';
import type {Node} from 'yaml';
import {isMap, isScalar, isSeq} from 'yaml';
import {parseError} from '../core/errors.ts';
import {EvaluationError, ExpressionError, evaluateCondition, evaluateTemplate, parseExpression, pyStr, toSafeGroupName, type Expr} from './jinja.ts';
import {InventoryData, InventoryRuleError} from './model.ts';
import {loadVars} from './varsfiles.ts';
import {type YamlSource, entries, keyString, kindOf, lineOf, valueOf, type VaultAccess} from './yamlsource.ts';

interface Entry {
  readonly name: string;
  readonly expr: Expr;
  readonly line?: number;
  readonly field: string;
}

interface KeyedGroup {
  readonly key: Entry;
  readonly prefix: string;
  readonly separator: string;
  readonly defaultValue?: string;
  readonly trailingSeparator?: boolean;
  readonly parentGroup?: string;
}

/** A `plugin: constructed` source, checked and with its expressions parsed. */
export interface ConstructedConfig {
  readonly file: string;
  readonly strict: boolean;
  readonly compose: readonly Entry[];
  readonly groups: readonly Entry[];
  readonly keyedGroups: readonly KeyedGroup[];
  readonly leadingSeparator: boolean;
  readonly useVarsPlugins: boolean;
}

const KNOWN = new Set([
  'plugin', 'strict', 'compose', 'groups', 'keyed_groups', 'leading_separator', 'use_vars_plugins', 'use_extra_vars',
  'cache', 'cache_plugin', 'cache_timeout', 'cache_connection', 'cache_prefix',
]);

/** Is this YAML source an inventory plugin's configuration (a `.yml`/`.yaml` mapping with a string `plugin`), as Ansible's `auto` plugin sees it? */
export function pluginName(src: YamlSource): string | undefined {
  if (!['.yml', '.yaml'].includes(extname(src.file))) return undefined;
  const root = src.doc.contents as Node | null;
  if (!root || !isMap(root)) return undefined;
  const e = entries(src, root).find((x) => x.key === 'plugin');
  const v = e?.value;
  return v && isScalar(v) && typeof v.value === 'string' ? v.value : undefined;
}

/** Python's str() of a YAML scalar given as a template, as Ansible builds `{{ value }}`. */
function exprText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return pyStr(v);
  return undefined;
}

/** Reads a `plugin: constructed` file; any other plugin is a parse error naming it. */
export function readConstructedConfig(src: YamlSource, warnings: string[]): ConstructedConfig {
  const file = src.file;
  const plugin = pluginName(src)!;
  const root = src.doc.contents as Node;
  const at = (node: Node | null, field: string): {file: string; line: number; field: string} => ({file, line: lineOf(src, node) ?? 1, field});
  if (plugin !== 'constructed' && plugin !== 'ansible.builtin.constructed') {
    const e = entries(src, root).find((x) => x.key === 'plugin');
    throw parseError(`this is an inventory plugin configuration for '${plugin}', which provision does not read (of the plugins, it reads constructed)`, at(e?.value ?? null, 'plugin'));
  }
  const bool = (node: Node | null, field: string, dflt: boolean): boolean => {
    if (!node || (isScalar(node) && node.value === null)) return dflt;
    const v = valueOf(src, node);
    if (typeof v !== 'boolean') throw parseError(`expected true or false, got ${kindOf(node)}`, at(node, field));
    return v;
  };
  const expression = (node: Node | null, field: string, name: string): Entry => {
    const text = exprText(valueOf(src, node));
    if (text === undefined) throw parseError(`expected a Jinja2 expression (a string), got ${kindOf(node)}`, at(node, field));
    try {
      return {name, expr: parseExpression(text), line: lineOf(src, node), field};
    } catch (e) {
      if (e instanceof ExpressionError) throw parseError(`${e.message}: ${JSON.stringify(text)}`, at(node, field));
      throw e;
    }
  };
  const mapping = (node: Node | null, field: string): Array<{key: string; value: Node | null}> => {
    if (!node || (isScalar(node) && node.value === null)) return [];
    if (!isMap(node)) throw parseError(`expected a mapping, got ${kindOf(node)}`, at(node, field));
    return entries(src, node).map((e) => ({key: keyString(e.key), value: e.value}));
  };

  let strict = false;
  let leadingSeparator = true;
  let useVarsPlugins = false;
  const compose: Entry[] = [];
  const groups: Entry[] = [];
  const keyedGroups: KeyedGroup[] = [];
  for (const {key, keyNode, value} of entries(src, root)) {
    const k = keyString(key);
    if (k === 'strict') strict = bool(value, k, false);
    else if (k === 'leading_separator') leadingSeparator = bool(value, k, true);
    else if (k === 'use_vars_plugins') useVarsPlugins = bool(value, k, false);
    else if (k === 'use_extra_vars') {
      if (bool(value, k, false)) throw parseError('use_extra_vars is not supported: the inventory is read without extra vars', at(value, k));
    } else if (k === 'compose') {
      for (const e of mapping(value, k)) compose.push(expression(e.value, `compose.${e.key}`, e.key));
    } else if (k === 'groups') {
      for (const e of mapping(value, k)) groups.push(expression(e.value, `groups.${e.key}`, e.key));
    } else if (k === 'keyed_groups') {
      if (!value || (isScalar(value) && value.value === null)) continue;
      if (!isSeq(value)) throw parseError(`expected a list, got ${kindOf(value)}`, at(value, k));
      value.items.forEach((item, i) => {
        const field = `keyed_groups[${i}]`;
        const node = item as Node | null;
        if (!node || !isMap(node)) throw parseError(`a keyed group must be a mapping with a key, got ${kindOf(node)}`, at(node, field));
        const opts = new Map(entries(src, node).map((e) => [keyString(e.key), e.value]));
        for (const name of opts.keys()) {
          if (!['key', 'prefix', 'separator', 'default_value', 'trailing_separator', 'parent_group'].includes(name)) {
            throw parseError(`unknown option '${name}' of a keyed group`, at(node, `${field}.${name}`));
          }
        }
        if (!opts.has('key')) throw parseError('a keyed group needs a key', at(node, field));
        const text = (name: string): string | undefined => {
          if (!opts.has(name)) return undefined;
          const v = valueOf(src, opts.get(name) ?? null);
          if (Array.isArray(v) || (typeof v === 'object' && v !== null)) throw parseError(`expected a string, got ${kindOf(opts.get(name) ?? null)}`, at(opts.get(name) ?? null, `${field}.${name}`));
          return pyStr(v);
        };
        const parentGroup = text('parent_group');
        if (parentGroup !== undefined && /\{\{|\{%/.test(parentGroup)) {
          throw parseError('a templated parent_group is not supported', at(opts.get('parent_group') ?? null, `${field}.parent_group`));
        }
        const defaultValue = text('default_value');
        const trailing = opts.has('trailing_separator') ? bool(opts.get('trailing_separator') ?? null, `${field}.trailing_separator`, true) : undefined;
        if (defaultValue !== undefined && trailing !== undefined) {
          throw parseError('parameters are mutually exclusive for keyed groups: default_value|trailing_separator', at(node, field));
        }
        keyedGroups.push({
          key: expression(opts.get('key') ?? null, `${field}.key`, 'key'),
          prefix: text('prefix') ?? '',
          separator: text('separator') ?? '_',
          ...(defaultValue === undefined ? {} : {defaultValue}),
          ...(trailing === undefined ? {} : {trailingSeparator: trailing}),
          ...(parentGroup ? {parentGroup} : {}),
        });
      });
    } else if (!KNOWN.has(k)) {
      warnings.push(`${file}:${lineOf(src, keyNode) ?? 1}: ${k}: unknown option of the constructed plugin, ignored`);
    }
  }
  return {file, strict, compose, groups, keyedGroups, leadingSeparator, useVarsPlugins};
}

function codePointOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** `sort_groups`: by depth, then priority, then name. */
function sortGroups(data: InventoryData, names: Iterable<string>, depths: Map<string, number>): string[] {
  return [...names].sort((a, b) => {
    const d = (depths.get(a) ?? 0) - (depths.get(b) ?? 0);
    if (d) return d;
    const p = data.groups.get(a)!.priority - data.groups.get(b)!.priority;
    if (p) return p;
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/**
 * Runs a constructed source over the hosts of `data`. `processedDirs` are the folders of the sources
 * read before it, in order (Ansible's `processed_sources`), for `use_vars_plugins`.
 */
export function applyConstructed(cfg: ConstructedConfig, data: InventoryData, processedDirs: readonly string[], vault: VaultAccess): void {
  const where = (e: Entry): {file: string; line?: number; field: string} => ({file: cfg.file, ...(e.line === undefined ? {} : {line: e.line}), field: e.field});
  const membership = data.membership();
  // vars files read once per pass (a group's files serve each of its hosts)
  const files = new Map<string, Record<string, unknown>>();
  const varsOf = (dir: string, name: string): Record<string, unknown> => {
    const id = `${dir}\0${name}`;
    let v = files.get(id);
    if (!v) files.set(id, (v = loadVars(dir, name, vault)));
    return v;
  };
  const depths = data.depths();
  const scope = (host: string): Record<string, unknown> => {
    const mine = membership.get(host) ?? new Set<string>();
    let vars: Record<string, unknown> = {};
    for (const g of sortGroups(data, mine, depths)) vars = {...vars, ...data.groups.get(g)!.vars};
    if (cfg.useVarsPlugins) {
      const ordered = [...data.groups.keys()].filter((g) => mine.has(g));
      for (const dir of processedDirs) for (const g of ordered) vars = {...vars, ...varsOf(join(dir, 'group_vars'), g)};
    }
    // Host.get_vars(): the host's own variables, then its magic variables
    const short = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) || host.includes(':') ? host : host.split('.')[0]!;
    const groupNames = [...mine].filter((g) => g !== 'all').sort(codePointOrder);
    vars = {...vars, ...data.hosts.get(host)!.vars, inventory_hostname: host, inventory_hostname_short: short, group_names: groupNames};
    if (cfg.useVarsPlugins) for (const dir of processedDirs) vars = {...vars, ...varsOf(join(dir, 'host_vars'), host)};
    return vars;
  };
  /** Runs one evaluation: `undefined` when it failed and is skipped (not strict). */
  const attempt = <T>(e: Entry, host: string, what: string, run: () => T): T | undefined => {
    try {
      return run();
    } catch (err) {
      if (err instanceof ExpressionError) throw parseError(err.message, where(e));
      if (err instanceof EvaluationError) {
        if (cfg.strict) throw parseError(`${what} for host ${host}: ${err.message}`, where(e));
        return undefined;
      }
      throw err;
    }
  };
  const guard = (e: Entry, step: () => void): void => {
    try {
      step();
    } catch (err) {
      if (err instanceof InventoryRuleError) throw parseError(err.message, where(e));
      throw err;
    }
  };
  const join3 = (a: string, b: string, c: string): string => `${a}${b}${c}`;

  for (const host of [...data.hosts.keys()]) {
    let vars = scope(host);
    for (const c of cfg.compose) {
      const v = attempt(c, host, `could not set ${c.name}`, () => ({value: evaluateTemplate(c.expr, vars)}));
      if (v) data.setHostVar(host, c.name, v.value);
    }
    if (cfg.compose.length > 0) vars = scope(host);
    for (const g of cfg.groups) {
      const name = toSafeGroupName(g.name);
      const ok = attempt(g, host, `could not add host ${host} to group ${name}`, () => evaluateCondition(g.expr, vars));
      if (ok) guard(g, () => {
        data.addGroup(name);
        data.addHost(host, name);
      });
    }
    for (const kg of cfg.keyedGroups) {
      const e = kg.key;
      const got = attempt(e, host, 'could not generate a group', () => ({key: evaluateTemplate(e.expr, vars)}));
      if (!got) continue;
      const key = got.key;
      const isEmptyContainer = (Array.isArray(key) && key.length === 0) || (typeof key === 'object' && key !== null && !Array.isArray(key) && Object.keys(key).length === 0);
      const truthyKey = key !== null && key !== false && key !== 0 && key !== '' && !isEmptyContainer;
      if (!(truthyKey || (key === '' && kg.defaultValue !== undefined))) {
        if (cfg.strict && !isEmptyContainer) throw parseError(`no key or the key resulted empty for host ${host}`, where(e));
        continue;
      }
      let sep = kg.separator;
      const names: string[] = [];
      if (typeof key === 'string') names.push(key === '' && kg.defaultValue !== undefined ? kg.defaultValue : key);
      else if (Array.isArray(key)) for (const n of key) names.push(n === '' && kg.defaultValue !== undefined ? kg.defaultValue : pyStr(n));
      else if (typeof key === 'object' && key !== null) {
        for (const [gname, gval] of Object.entries(key)) {
          let bare = join3(gname, sep, pyStr(gval));
          if (gval === '') {
            if (kg.defaultValue !== undefined) bare = join3(gname, sep, kg.defaultValue);
            else if (kg.trailingSeparator === false) bare = gname;
          }
          names.push(bare);
        }
      } else {
        throw parseError(`invalid group name format for host ${host}: expected a string, a list of them or a dictionary, got ${typeof key === 'number' ? (Number.isInteger(key) ? 'int' : 'float') : typeof key === 'boolean' ? 'bool' : typeof key}`, where(e));
      }
      for (const bare of names) {
        if (kg.prefix === '' && !cfg.leadingSeparator) sep = '';
        const gname = toSafeGroupName(join3(kg.prefix, sep, bare));
        guard(e, () => {
          data.addGroup(gname);
          data.addHost(host, gname);
          if (kg.parentGroup) {
            const parent = toSafeGroupName(kg.parentGroup);
            data.addGroup(parent);
            data.addChild(parent, gname);
          }
        });
      }
    }
  }
}
