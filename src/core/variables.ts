/**
 * Variables: what a task sees of its host (`TaskContext`), with the precedence provision keeps, lowest
 * first: role defaults < inventory (group < host, merged by src/inventory) < play vars < extra vars
 * (`-e`) < the magic variables (`inventory_hostname`, `group_names`). Built once per host and play run,
 * not per task.
 */
import type {Facts} from '../facts/host.ts';
import {noFacts} from '../facts/host.ts';
import type {Play, TaskContext, TaskResult, Vars} from './types.ts';
import {Secret, type Secrets} from './secret.ts';

/** What the engine needs of an inventory (src/inventory implements it). */
export interface InventoryView {
  readonly source: string;
  readonly hostNames: readonly string[];
  hostVars(host: string): Record<string, unknown>;
  groupsOf(host: string): string[];
  groupHosts(group: string): string[];
  readonly groups: ReadonlyMap<string, unknown>;
}

/** What a host has learnt so far in the run: its facts and registered results. */
export interface HostKnowledge {
  readonly facts: Facts | undefined;
  readonly results: Readonly<Record<string, TaskResult>>;
  /** Set by tasks (`setFact`). */
  readonly taskVars: Vars;
  /** In a block's rescue or always: what failed. */
  readonly failure?: {readonly task: string; readonly msg: string} | undefined;
}

/** Where templates and files are looked up, and how. */
export interface FileAccess {
  render(dirs: readonly string[], name: string, view: Vars, options?: {readonly allowMissingVars?: boolean}): string;
  readFile(dirs: readonly string[], name: string): Buffer;
}

export class Variables {
  /** Group → hosts: the inventory does not change during a run, so built once. */
  #groups: Readonly<Record<string, readonly string[]>> | undefined;
  /** A host's variables in a play run, keyed by that play run's `defaults` object. */
  readonly #byDefaults = new WeakMap<Vars, Map<string, {vars: Vars; groupNames: readonly string[]}>>();

  constructor(
    private readonly inventory: InventoryView,
    private readonly extraVars: Vars,
    /** What other hosts have learnt (for `hostvars`), undefined for a host not started. */
    private readonly knowledgeOf: (host: string) => HostKnowledge | undefined,
    private readonly files: FileAccess,
    private readonly check: boolean,
    /** The run's secrets: `ctx.secret()` adds to them. */
    private readonly secrets: Secrets,
  ) {}

  get groups(): Readonly<Record<string, readonly string[]>> {
    if (!this.#groups) {
      const all: Record<string, readonly string[]> = {};
      for (const g of this.inventory.groups.keys()) all[g] = Object.freeze(this.inventory.groupHosts(g));
      this.#groups = Object.freeze(all);
    }
    return this.#groups;
  }

  /** The host's variables in a play (`defaults`: its roles' defaults merged, one object per play run). */
  vars(host: string, play: Play, defaults: Vars): {vars: Vars; groupNames: readonly string[]} {
    let byHost = this.#byDefaults.get(defaults);
    if (!byHost) this.#byDefaults.set(defaults, (byHost = new Map()));
    let shared = byHost.get(host);
    if (!shared) {
      const groupNames = Object.freeze(this.inventory.groupsOf(host));
      const base: Vars = {
        ...defaults,
        ...this.inventory.hostVars(host),
        ...(play.vars ?? {}),
        ...this.extraVars,
        inventory_hostname: host,
        group_names: groupNames,
      };
      byHost.set(host, (shared = {vars: Object.freeze(base), groupNames}));
    }
    return shared;
  }

  /** The context a task runs in on `host`; `dirs`: where its templates and files are. */
  context(host: string, known: HostKnowledge, play: Play, defaults: Vars, dirs: readonly string[]): TaskContext {
    const shared = this.vars(host, play, defaults);
    const {groupNames} = shared;
    // Set by tasks: over the play's vars, under extra vars (the magic ones stay).
    const vars: Vars = Object.keys(known.taskVars).length === 0
      ? shared.vars
      : {...shared.vars, ...known.taskVars, ...this.extraVars, inventory_hostname: host, group_names: groupNames};
    const groups = this.groups;
    const facts = known.facts ?? noFacts;
    const {inventory, files, knowledgeOf, secrets, extraVars} = this;
    return {
      host,
      vars,
      facts,
      groups,
      groupNames,
      hostvars(other: string) {
        const o = knowledgeOf(other);
        // Extra vars are every host's (Ansible's hostvars shows them too), over what tasks set.
        return {...inventory.hostVars(other), ...(o?.taskVars ?? {}), ...extraVars, inventory_hostname: other, ...(o?.facts ? {facts: o.facts} : {}), results: o?.results ?? {}};
      },
      results: known.results,
      check: this.check,
      ...(known.failure ? {failed: known.failure} : {}),
      render(name, extra, options) {
        return files.render(dirs, name, {...vars, facts, groups, ...(extra ?? {})}, options);
      },
      readFile(name) {
        return files.readFile(dirs, name);
      },
      secret(value) {
        secrets.add(value);
        return new Secret(value);
      },
    };
  }
}
