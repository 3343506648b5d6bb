/**
 * The two views of `ansible-inventory`: `--list` (JSON: one key per non-empty group with `hosts` and
 * `children`, plus `_meta.hostvars`) and `--graph` (the indented tree).
 */
import {badOption} from '../core/errors.ts';
import type {Inventory} from './index.ts';

/** A copy with object keys sorted, as Ansible's `json.dumps(sort_keys=True)`. */
export function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value).sort()) out[k] = sortKeys((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

/** The JSON of `ansible-inventory --list`. Groups with neither hosts nor children are left out, as Ansible does. */
export function inventoryList(inv: Inventory): Record<string, unknown> {
  const results: Record<string, {hosts?: string[]; children?: string[]}> = {};
  const seen = new Set<string>();
  const format = (name: string): void => {
    const group = inv.groups.get(name)!;
    const entry: {hosts?: string[]; children?: string[]} = {};
    results[name] = entry;
    if (name !== 'all' && group.hosts.length > 0) entry.hosts = [...group.hosts];
    if (group.children.length > 0) entry.children = [...group.children];
    for (const kid of group.children) {
      if (!seen.has(kid)) {
        format(kid);
        seen.add(kid);
      }
    }
    if (!entry.hosts && !entry.children) delete results[name];
  };
  format('all');

  const hostvars: Record<string, unknown> = {};
  for (const host of [...inv.hostNames].sort()) {
    const vars = inv.hostVars(host);
    if (Object.keys(vars).length > 0) hostvars[host] = sortKeys(vars);
  }
  const out: Record<string, unknown> = {_meta: {hostvars}};
  for (const k of Object.keys(results).sort()) out[k] = results[k];
  return out;
}

/** The text of `ansible-inventory --graph [GROUP]`; an unknown group is a bad option (exit 5). */
export function inventoryGraph(inv: Inventory, group = 'all'): string {
  if (!inv.groups.has(group)) throw badOption(`--graph needs a group name, and there is no group ${group}`);
  const lines: string[] = [];
  const name = (text: string, depth: number): string => (depth ? '  |'.repeat(depth) + '--' + text : text);
  const walk = (g: string, depth: number): void => {
    lines.push(name(`@${g}:`, depth));
    const data = inv.groups.get(g)!;
    for (const kid of data.children) walk(kid, depth + 1);
    if (g !== 'all') for (const h of data.hosts) lines.push(name(h, depth + 1));
  };
  walk(group, 0);
  return lines.join('\n');
}
