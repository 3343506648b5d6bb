/**
 * The in-memory inventory while it is being built, mirroring ansible-core's `InventoryData`
 * (`inventory/data.py`, `inventory/group.py`): groups and hosts in insertion order, the
 * `all`/`ungrouped` rules applied by `reconcile()`, and the group depth used for variable precedence.
 */

/** A group while the inventory is built. */
export interface GroupData {
  readonly name: string;
  /** Direct hosts, in the order they were added. */
  readonly hosts: string[];
  /** Child groups, in the order they were added. */
  readonly children: string[];
  readonly parents: string[];
  /** Inline variables from the inventory file. */
  readonly vars: Record<string, unknown>;
  /** `ansible_group_priority`; 1 unless set. */
  priority: number;
}

/** A host while the inventory is built. */
export interface HostData {
  readonly name: string;
  /** Inline variables from the inventory file (plus `ansible_port` from `host:port`). */
  readonly vars: Record<string, unknown>;
}

/** Thrown by the builder for a structural mistake; the parser adds file, line and field. */
export class InventoryRuleError extends Error {}

export class InventoryData {
  readonly groups = new Map<string, GroupData>();
  readonly hosts = new Map<string, HostData>();
  /** Each group's direct hosts as a set: membership checks stay O(1) for big groups. */
  private readonly direct = new Map<string, Set<string>>();

  constructor() {
    this.addGroup('all');
    this.addGroup('ungrouped');
    this.addChild('all', 'ungrouped');
  }

  addGroup(name: string): GroupData {
    if (name === '') throw new InventoryRuleError('empty group name');
    let group = this.groups.get(name);
    if (!group) {
      group = {name, hosts: [], children: [], parents: [], vars: {}, priority: 1};
      this.groups.set(name, group);
    }
    return group;
  }

  /** Adds a host (once) and, when given, makes it a direct member of `group`. */
  addHost(name: string, group?: string, port?: number): HostData {
    if (name === '') throw new InventoryRuleError('empty host name');
    let host = this.hosts.get(name);
    if (!host) {
      host = {name, vars: {}};
      this.hosts.set(name, host);
      if (port !== undefined) host.vars.ansible_port = port;
    }
    if (group !== undefined) {
      const g = this.groups.get(group);
      if (!g) throw new InventoryRuleError(`unknown group ${group}`);
      let set = this.direct.get(group);
      // (re)build when the array was changed behind our back (reconcile removes from `ungrouped`)
      if (!set || set.size !== g.hosts.length) this.direct.set(group, (set = new Set(g.hosts)));
      if (!set.has(name)) {
        g.hosts.push(name);
        set.add(name);
      }
    }
    return host;
  }

  /** Makes `child` a child group of `parent`; refuses a loop, as Ansible does. */
  addChild(parent: string, child: string): void {
    const p = this.groups.get(parent);
    const c = this.groups.get(child);
    if (!p || !c) throw new InventoryRuleError(`unknown group ${p ? child : parent}`);
    if (parent === child) throw new InventoryRuleError(`group ${parent} cannot be a child of itself`);
    if (p.children.includes(child)) return;
    if (this.ancestors(parent).has(child)) {
      throw new InventoryRuleError(`adding group ${child} as a child of ${parent} creates a dependency loop`);
    }
    p.children.push(child);
    if (!c.parents.includes(parent)) c.parents.push(parent);
  }

  /** Sets a group variable; `ansible_group_priority` sets the priority instead, as in Ansible. */
  setGroupVar(group: string, key: string, value: unknown): void {
    const g = this.groups.get(group)!;
    if (key === 'ansible_group_priority') {
      const n = typeof value === 'number' ? value : Number.parseInt(String(value), 10);
      if (!Number.isFinite(n)) throw new InventoryRuleError(`ansible_group_priority must be an integer, got ${JSON.stringify(value)}`);
      g.priority = Math.trunc(n);
      return;
    }
    g.vars[key] = value;
  }

  setHostVar(host: string, key: string, value: unknown): void {
    this.hosts.get(host)!.vars[key] = value;
  }

  /** Every ancestor group of a group (not itself). */
  ancestors(group: string): Set<string> {
    const seen = new Set<string>();
    const todo = [...(this.groups.get(group)?.parents ?? [])];
    while (todo.length > 0) {
      const g = todo.pop()!;
      if (seen.has(g)) continue;
      seen.add(g);
      todo.push(...this.groups.get(g)!.parents);
    }
    return seen;
  }

  /** For every host, each group it is in, directly or through a parent group (with `all` when applicable). */
  membership(): Map<string, Set<string>> {
    const ancestors = new Map<string, Set<string>>();
    const result = new Map<string, Set<string>>();
    for (const host of this.hosts.keys()) result.set(host, new Set());
    for (const g of this.groups.values()) {
      let up = ancestors.get(g.name);
      if (!up) ancestors.set(g.name, (up = this.ancestors(g.name)));
      for (const h of g.hosts) {
        const mine = result.get(h)!;
        mine.add(g.name);
        for (const a of up) mine.add(a);
      }
    }
    return result;
  }

  /**
   * Ansible's `reconcile_inventory`: every parentless group becomes a child of `all`; a host in no
   * group but `all` goes to `ungrouped`; a host in another group leaves `ungrouped`.
   */
  reconcile(): void {
    for (const g of this.groups.values()) {
      if (g.name !== 'all' && g.parents.length === 0) this.addChild('all', g.name);
    }
    const ungrouped = this.groups.get('ungrouped')!;
    const membership = this.membership();
    for (const host of this.hosts.keys()) {
      const mine = membership.get(host)!;
      if (mine.has('ungrouped')) {
        const others = [...mine].filter((g) => g !== 'all' && g !== 'ungrouped');
        if (others.length > 0) {
          const i = ungrouped.hosts.indexOf(host);
          if (i >= 0) ungrouped.hosts.splice(i, 1);
        }
      } else if (mine.size === 0 || (mine.size === 1 && mine.has('all'))) {
        this.addHost(host, 'ungrouped');
      }
    }
  }

  /** Depth of each group: the longest path from `all` (Ansible's `Group.depth`). */
  depths(): Map<string, number> {
    const depth = new Map<string, number>();
    const visit = (name: string): number => {
      const known = depth.get(name);
      if (known !== undefined) return known;
      const parents = this.groups.get(name)!.parents;
      const d = parents.length === 0 ? 0 : Math.max(...parents.map(visit)) + 1;
      depth.set(name, d);
      return d;
    };
    for (const name of this.groups.keys()) visit(name);
    return depth;
  }

  /**
   * All hosts of a group and its descendants, in Ansible's order: the group's own hosts, then its
   * children's, then grandchildren's, level by level (`Group.get_hosts`).
   */
  hostsOf(group: string): string[] {
    const start = this.groups.get(group);
    if (!start) return [];
    const ordered = [start.name, ...start.children];
    const seen = new Set(ordered);
    let level = [...start.children];
    while (level.length > 0) {
      const next: string[] = [];
      for (const g of level) {
        for (const kid of this.groups.get(g)!.children) {
          if (!seen.has(kid)) {
            seen.add(kid);
            ordered.push(kid);
            next.push(kid);
          }
        }
      }
      level = next;
    }
    const hosts: string[] = [];
    const have = new Set<string>();
    for (const g of ordered) {
      for (const h of this.groups.get(g)!.hosts) {
        if (!have.has(h)) {
          have.add(h);
          hosts.push(h);
        }
      }
    }
    return hosts;
  }
}
