/**
 * Ansible's INI inventory format (`plugins/inventory/ini.py`): lines before any section are ungrouped
 * hosts; `[group]` lists hosts (`host key=value …`, ranges, `host:port`), `[group:vars]` sets
 * `key=value` group variables, `[group:children]` names child groups, which may be declared later.
 */
import {parseError, type UserError} from '../core/errors.ts';
import {group as matchGroup} from '../shared/match.ts';
import {InventoryData, InventoryRuleError} from './model.ts';
import {parseIniValue, shlexSplit} from './pyvalue.ts';
import {expandHostEntry} from './ranges.ts';

const sectionRe = /^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$/;
const groupNameRe = /^([^:\]\s]+)\s*(?:#.*)?$/;

interface Pending {
  readonly line: number;
  readonly state: 'vars' | 'children';
  readonly name: string;
  readonly parents: string[];
}

/** Reads an INI inventory into `data`. */
export function parseIniInventory(text: string, file: string, data: InventoryData): void {
  const lines = text.split(/\r\n|\n|\r/);
  let group = 'ungrouped';
  let state: 'hosts' | 'vars' | 'children' = 'hosts';
  const pending = new Map<string, Pending>();
  let lineno = 0;

  const fail = (message: string, field?: string, line = lineno): UserError =>
    parseError(message, {file, line, field: field ?? (state === 'hosts' ? group : `${group}:${state}`)});
  const guard = <T>(step: () => T, field?: string): T => {
    try {
      return step();
    } catch (e) {
      if (e instanceof InventoryRuleError) throw fail(e.message, field);
      throw e;
    }
  };
  const addPendingChildren = (name: string): void => {
    const p = pending.get(name)!;
    for (const parent of p.parents) {
      guard(() => data.addChild(parent, name));
      const pp = pending.get(parent);
      if (pp && pp.state === 'children') addPendingChildren(parent);
    }
    pending.delete(name);
  };

  for (const rawLine of lines) {
    lineno++;
    const line = rawLine.trim();
    if (line === '' || line[0] === ';' || line[0] === '#') continue;

    const m = sectionRe.exec(line);
    if (m) {
      group = matchGroup(m, 1);
      const tag = m[2] ?? 'hosts';
      if (tag !== 'hosts' && tag !== 'vars' && tag !== 'children') {
        throw fail(`section [${group}:${tag}] has unknown type ${tag} (expected vars or children)`, `${group}:${tag}`);
      }
      state = tag;
      if (!data.groups.has(group)) {
        if (state === 'vars' && !pending.has(group)) {
          pending.set(group, {line: lineno, state, name: group, parents: []});
        }
        data.addGroup(group);
      }
      const p = pending.get(group);
      if (p && state !== 'vars') {
        if (p.state === 'children') addPendingChildren(group);
        else pending.delete(group);
      }
      continue;
    }
    if (line.startsWith('[') && line.endsWith(']')) {
      throw fail(`invalid section ${line}: no spaces or other invalid characters allowed in a section name`, line);
    }

    if (state === 'hosts') {
      let tokens: string[];
      try {
        tokens = shlexSplit(line);
      } catch (e) {
        throw fail(`cannot parse host line ${JSON.stringify(line)}: ${(e as Error).message}`);
      }
      const [entry, ...assignments] = tokens;
      if (entry === undefined) continue;
      const field = `${group}.${entry}`;
      const {hosts, port} = guard(() => expandHostEntry(entry), field);
      if (entry.trim().endsWith(':') && port === undefined) {
        throw fail(`invalid host ${entry}: a trailing ':' must be followed by a port`, field);
      }
      if (hosts.some((h) => h.trim() === '---')) {
        throw fail(`invalid host ${entry}: '---' suggests this is a YAML file`, field);
      }
      const vars: [string, unknown][] = [];
      for (const t of assignments) {
        const eq = t.indexOf('=');
        if (eq < 0) throw fail(`expected key=value host variable, got ${t}`, field);
        vars.push([t.slice(0, eq), parseIniValue(t.slice(eq + 1))]);
      }
      for (const host of hosts) {
        guard(() => data.addHost(host, group, port), field);
        for (const [k, v] of vars) data.setHostVar(host, k, v);
      }
    } else if (state === 'vars') {
      const eq = line.indexOf('=');
      if (eq < 0) throw fail(`expected key=value, got ${line}`);
      const key = line.slice(0, eq).trim();
      guard(() => data.setGroupVar(group, key, parseIniValue(line.slice(eq + 1).trim())));
    } else {
      const g = groupNameRe.exec(line);
      if (!g) throw fail(`expected a group name, got ${line}`);
      const child = matchGroup(g, 1);
      if (!data.groups.has(child)) {
        const p = pending.get(child);
        if (p) p.parents.push(group);
        else pending.set(child, {line: lineno, state: 'children', name: child, parents: [group]});
      } else {
        guard(() => data.addChild(group, child));
      }
    }
  }

  for (const p of pending.values()) {
    if (p.state === 'vars') {
      throw parseError(`section [${p.name}:vars] is for an undefined group ${p.name}`, {file, line: p.line, field: `${p.name}:vars`});
    }
    throw parseError(`section [${p.parents[p.parents.length - 1]}:children] includes undefined group ${p.name}`, {
      file,
      line: p.line,
      field: `${p.parents[p.parents.length - 1]}:children`,
    });
  }
}
