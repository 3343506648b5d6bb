/**
 * Reading YAML the way Ansible's loader (PyYAML, YAML 1.1) does, while keeping every node's line for
 * error messages: 1.1 scalars with PyYAML's booleans (`yes`/`on`, not `y`), `<<` merge keys, duplicate
 * keys allowed (the last wins), and Ansible's inline `!vault |` values, decrypted at load with the
 * command's keyring (their clear text joins the command's secrets).
 */
import {
  type Document,
  type Node,
  LineCounter,
  Pair,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  parseDocument,
  type ScalarTag,
  type Tags,
  visit,
} from 'yaml';
import {parseError} from '../core/errors.ts';
import type {Secrets} from '../core/secret.ts';
import {vaultSecrets, type Keyring} from '../core/vault.ts';

/** What loading YAML needs for vault files and `!vault` values: the command's keyring, and where their values go to be masked. */
export interface VaultAccess {
  readonly keyring: Keyring;
  readonly secrets: Secrets;
}

/** Ansible's `!vault` tag: the scalar (vault text) is kept as it is by the parser and decrypted after it (`openInlineVaults`). */
const vaultTag: ScalarTag = {tag: '!vault', resolve: (value) => value};

const boolTag = 'tag:yaml.org,2002:bool';
/** PyYAML's bool resolver: `y`/`n` stay strings. */
const pyTrue = /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/;
const pyFalse = /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/;

function pyYamlTags(tags: Tags): Tags {
  return tags.map((t) => {
    if (typeof t === 'object' && 'tag' in t && t.tag === boolTag && 'test' in t && t.test) {
      const s = t as ScalarTag;
      return {...s, test: s.test?.test('true') ? pyTrue : pyFalse} as ScalarTag;
    }
    return t;
  });
}

/** A parsed YAML file with its line counter. */
export interface YamlSource {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

/**
 * Parses YAML text; a syntax error is a `UserError` naming the file and line. `!vault` values are
 * decrypted with `vault` (a wrong passphrase: a `UserError` naming file and line, exit 1).
 */
export function parseYaml(text: string, file: string, vault?: VaultAccess): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, {
    version: '1.1',
    uniqueKeys: false,
    merge: true,
    customTags: (tags) => [...pyYamlTags(tags), vaultTag],
    lineCounter: lines,
    prettyErrors: true,
  });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0].line;
    const [firstLine = ''] = err.message.split('\n');
    const message = firstLine.replace(/ at line \d+, column \d+:?$/, '');
    throw parseError(`YAML syntax error: ${message}`, {file, line});
  }
  if (text.includes('!vault')) openInlineVaults({file, doc, lines}, vault);
  return {file, doc, lines};
}

/** Does this YAML text hold an inline `!vault` value? (A cheap test, to get the passphrase before loading.) */
export function hasInlineVault(text: string): boolean {
  return /!vault\b/.test(text);
}

/** Replaces each `!vault` scalar's vault text by its clear text; every clear text joins `vault.secrets`. */
function openInlineVaults(src: YamlSource, vault: VaultAccess | undefined): void {
  visit(src.doc, {
    Scalar(_key, node) {
      if (node.tag !== '!vault') return;
      const line = lineOf(src, node);
      if (typeof node.value !== 'string') throw parseError('a !vault value must be a string of vault text', {file: src.file, line});
      if (!vault) throw parseError('a !vault value is not read here', {file: src.file, line});
      const clear = vault.keyring.open(node.value, src.file, line);
      vault.secrets.add(...vaultSecrets(clear));
      node.value = clear;
    },
  });
}

/** 1-based line of a node, when it has a position. */
export function lineOf(src: YamlSource, node: Node | null | undefined): number | undefined {
  const offset = node?.range?.[0];
  return offset === undefined ? undefined : src.lines.linePos(offset).line;
}

/** Follows aliases to the node they name. */
export function deref(src: YamlSource, node: unknown): Node | null {
  let n = node as Node | null | undefined;
  for (let i = 0; i < 100 && n && isAlias(n); i++) n = n.resolve(src.doc) as Node | undefined;
  return n ?? null;
}

/** One key/value of a mapping, merges resolved. */
export interface Entry {
  readonly key: unknown;
  readonly keyNode: Node | null;
  readonly value: Node | null;
}

function isMergeKey(key: unknown): boolean {
  return isScalar(key) && (typeof key.value === 'symbol' || (key.value === '<<' && key.source === '<<'));
}

/**
 * The entries of a mapping in PyYAML's order: merged (`<<`) entries first, then the map's own; a
 * repeated key keeps its first position and takes its last value, like a Python dict.
 */
export function entries(src: YamlSource, map: Node): Entry[] {
  const byKey = new Map<unknown, Entry>();
  const put = (e: Entry): void => {
    const k = e.key === null || typeof e.key !== 'object' ? e.key : JSON.stringify(e.key);
    byKey.set(k, e);
  };
  const collect = (node: Node, depth: number): Entry[] => {
    if (!isMap(node) || depth > 50) return [];
    const merged: Entry[] = [];
    const own: Entry[] = [];
    for (const item of node.items) {
      const pair = item as Pair<unknown, unknown>;
      if (isMergeKey(pair.key)) {
        const target = deref(src, pair.value);
        const maps = target && isSeq(target) ? target.items.map((i) => deref(src, i)) : [target];
        for (const m of maps.reverse()) if (m) merged.push(...collect(m, depth + 1));
        continue;
      }
      const keyNode = deref(src, pair.key);
      const key = keyNode ? toJS(src, keyNode, {}) : pair.key;
      own.push({key, keyNode: (pair.key as Node | null) ?? null, value: deref(src, pair.value)});
    }
    return [...merged, ...own];
  };
  for (const e of collect(map, 0)) put(e);
  return [...byKey.values()];
}

/**
 * Aliases one value may expand (yaml's guard against alias bombs, a "billion laughs": each alias counts
 * the nodes it copies). Generous for real inventories, where one value expands a few anchors.
 */
const MAX_ALIAS_COUNT = 10_000;

/** The plain value of a node (null for an absent value). */
export function valueOf(src: YamlSource, node: Node | null): unknown {
  if (!node) return null;
  return toJS(src, node, {maxAliasCount: MAX_ALIAS_COUNT});
}

/** `node.toJS`, its errors (e.g. a `<<` merge of something not a mapping) made located parse errors. */
function toJS(src: YamlSource, node: Node, options: {maxAliasCount?: number}): unknown {
  try {
    return node.toJS(src.doc, options);
  } catch (e) {
    throw parseError(`YAML error: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`, {file: src.file, line: lineOf(src, node)});
  }
}

/** A short name for a YAML node's type, for messages. */
export function kindOf(node: Node | null): string {
  if (!node) return 'null';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    if (v === null) return 'null';
    return typeof v === 'string' ? 'a string' : typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'a boolean' : 'a scalar';
  }
  return 'a scalar';
}

/** A variable name as Python's json.dumps would write a dict key. */
export function keyString(key: unknown): string {
  if (key === true) return 'true';
  if (key === false) return 'false';
  if (key === null || key === undefined) return 'null';
  return String(key);
}
