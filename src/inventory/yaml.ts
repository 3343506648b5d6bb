/**
 * Ansible's YAML inventory format (`plugins/inventory/yaml.py`): top-level keys are groups; a group is
 * a mapping (or null) with `hosts`, `children` and `vars`; a section given as a string stands for
 * `{that: null}`. Where Ansible only warns about a group that is not a mapping we refuse it: a
 * silently dropped group is a host that never gets provisioned.
 */
import type {Node} from 'yaml';
import {isMap, isScalar} from 'yaml';
import {parseError, type UserError} from '../core/errors.ts';
import {InventoryData, InventoryRuleError} from './model.ts';
import {expandHostEntry} from './ranges.ts';
import {type YamlSource, entries, keyString, kindOf, lineOf, valueOf} from './yamlsource.ts';

const sections = new Set(['hosts', 'children', 'vars']);

class YamlInventoryParser {
  constructor(
    private readonly src: YamlSource,
    private readonly data: InventoryData,
    private readonly warnings: string[],
  ) {}

  private fail(message: string, node: Node | null, field: string): UserError {
    return parseError(message, {file: this.src.file, line: lineOf(this.src, node) ?? 1, field});
  }

  /** Runs a builder step, turning its rule errors into located parse errors. */
  private guard<T>(node: Node | null, field: string, step: () => T): T {
    try {
      return step();
    } catch (e) {
      if (e instanceof InventoryRuleError) throw this.fail(e.message, node, field);
      throw e;
    }
  }

  parse(): void {
    const root = this.src.doc.contents as Node | null;
    if (!root || (isScalar(root) && root.value === null)) return; // an empty file is an empty inventory
    if (!isMap(root)) {
      throw this.fail(`an inventory must be a mapping of groups, got ${kindOf(root)}`, root, '(top)');
    }
    const top = entries(this.src, root);
    if (top.some((e) => e.key === 'plugin')) {
      throw this.fail('this is an inventory plugin configuration, not a YAML inventory', root, 'plugin');
    }
    for (const e of top) this.group(e.key, e.value, e.keyNode, '');
  }

  private groupName(key: unknown, keyNode: Node | null, field: string): string {
    if (typeof key !== 'string' || key === '') {
      throw this.fail(`group name must be a non-empty string, got ${JSON.stringify(key)}`, keyNode, field);
    }
    return key;
  }

  /** Parses one group body and returns the group's name. */
  private group(key: unknown, body: Node | null, keyNode: Node | null, prefix: string): string {
    const field = prefix + keyString(key);
    const name = this.groupName(key, keyNode, field);
    if (body && !isMap(body) && !(isScalar(body) && body.value === null)) {
      throw this.fail(`group ${name} must be a mapping (with hosts, children, vars) or empty, got ${kindOf(body)}`, body, field);
    }
    this.guard(keyNode, field, () => this.data.addGroup(name));
    if (!body || !isMap(body)) return name;

    for (const section of entries(this.src, body)) {
      const sfield = `${field}.${keyString(section.key)}`;
      const value = section.value;
      if (typeof section.key !== 'string' || !sections.has(section.key)) {
        this.warnings.push(
          `${this.src.file}:${lineOf(this.src, section.keyNode) ?? 1}: ${sfield}: skipping unexpected key in group ${name}, only "vars", "children" and "hosts" are valid`,
        );
        continue;
      }
      if (!value || (isScalar(value) && value.value === null)) continue;
      let items: {key: unknown; keyNode: Node | null; value: Node | null}[];
      if (isScalar(value) && typeof value.value === 'string') {
        items = [{key: value.value, keyNode: value, value: null}];
      } else if (isMap(value)) {
        items = entries(this.src, value);
      } else {
        throw this.fail(`"${section.key}" of group ${name} must be a mapping, got ${kindOf(value)}`, value, sfield);
      }
      if (section.key === 'vars') {
        for (const v of items) {
          this.guard(v.keyNode, `${sfield}.${keyString(v.key)}`, () =>
            this.data.setGroupVar(name, keyString(v.key), valueOf(this.src, v.value)),
          );
        }
      } else if (section.key === 'children') {
        for (const c of items) {
          const child = this.group(c.key, c.value, c.keyNode, `${sfield}.`);
          this.guard(c.keyNode, `${sfield}.${child}`, () => this.data.addChild(name, child));
        }
      } else {
        for (const h of items) this.hosts(name, h.key, h.keyNode, h.value, sfield);
      }
    }
    return name;
  }

  private hosts(group: string, key: unknown, keyNode: Node | null, body: Node | null, prefix: string): void {
    const field = `${prefix}.${keyString(key)}`;
    if (typeof key !== 'string' || key === '') {
      throw this.fail(`host name must be a non-empty string (quote numbers), got ${JSON.stringify(key)}`, keyNode, field);
    }
    const {hosts, port} = this.guard(keyNode, field, () => expandHostEntry(key));
    const raw = valueOf(this.src, body);
    const empty = raw === null || raw === false || raw === 0 || raw === '' || (Array.isArray(raw) && raw.length === 0);
    if (!empty && !(body && isMap(body))) {
      throw this.fail(`variables of host ${key} must be a mapping, got ${kindOf(body)}`, body, field);
    }
    const vars = empty || !body ? [] : entries(this.src, body);
    for (const host of hosts) {
      this.guard(keyNode, field, () => this.data.addHost(host, group, port));
      for (const v of vars) this.data.setHostVar(host, keyString(v.key), valueOf(this.src, v.value));
    }
  }
}

/** Reads a YAML inventory document into `data`; unexpected keys are reported in `warnings`. */
export function parseYamlInventory(src: YamlSource, data: InventoryData, warnings: string[]): void {
  new YamlInventoryParser(src, data, warnings).parse();
}
