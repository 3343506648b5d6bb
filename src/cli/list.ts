/**
 * `provision run PLAYBOOK --list-hosts / --list-tasks / --list-tags`, and the check that a
 * `--start-at-task` names a task, as `ansible-playbook` does them: nothing connects. The playbook's
 * roles are loaded once (`listedPlays`); the rest are pure functions of the loaded plays, the host
 * selection and the tags, to Ansible's text.
 */
import {selectedByTags, taskName, type LoadedRole, type RunOptions} from '../core/engine.ts';
import type {Playbook, Task} from '../core/types.ts';
import {matchesTaskName} from '../shared/glob.ts';

/** A task as the listings show it. */
export interface ListedTask {
  /** Its name (`taskName`: a task without one shows its module and what it acts on). */
  readonly name: string;
  readonly role: string | null;
  /** Its play's tags, its blocks' and its own, as the engine selects on. */
  readonly tags: readonly string[];
  /** A `block()`: its parts, their tags including the block's. */
  readonly block?: {readonly tasks: readonly ListedTask[]; readonly rescue: readonly ListedTask[]; readonly always: readonly ListedTask[]};
}

/** A play with its roles loaded: its tasks in run order (the roles' first, as the engine runs them). */
export interface ListedPlay {
  readonly name: string;
  /** Its host pattern. */
  readonly hosts: string;
  readonly tags: readonly string[];
  readonly tasks: readonly ListedTask[];
}

/** Which hosts and tasks the run would take: the pattern and --limit, --tags and --skip-tags. */
export interface ListSelection extends Pick<RunOptions, 'tags' | 'skipTags'> {
  /** Hosts matching an Ansible pattern, in inventory order. */
  select(pattern: string): readonly string[];
  /** Hosts allowed by --limit (all when undefined). */
  readonly limit?: ReadonlySet<string>;
}

/** What to list; Ansible prints them together when several are asked. */
export interface ListWhat {
  readonly hosts: boolean;
  readonly tasks: boolean;
  readonly tags: boolean;
}

/** Load the plays' roles (named ones through `loadRole`) into what the listings read. */
export async function listedPlays(playbook: Playbook, loadRole: (name: string) => Promise<LoadedRole>): Promise<ListedPlay[]> {
  return Promise.all(playbook.plays.map(async (play) => {
    const roles = await Promise.all((play.roles ?? []).map(async (r) => (typeof r === 'string' ? (await loadRole(r)).role : r)));
    const playTags = play.tags ?? [];
    const listed = (task: Task, role: string | null, outer: readonly string[]): ListedTask => {
      const tags = [...outer, ...(task.options.tags ?? [])];
      const part = (list: readonly Task[] | undefined): ListedTask[] => (list ?? []).map((k) => listed(k, role, tags));
      const b = task.block;
      return {name: taskName(task), role, tags, ...(b ? {block: {tasks: part(b.tasks), rescue: part(b.rescue), always: part(b.always)}} : {})};
    };
    const tasks: ListedTask[] = [
      ...roles.flatMap((role) => role.tasks.map((task) => listed(task, role.name, playTags))),
      ...(play.tasks ?? []).map((task) => listed(task, null, playTags)),
    ];
    return {name: play.name, hosts: play.hosts, tags: playTags, tasks};
  }));
}

/** `role : name`, as Ansible's `task.get_name()` and provision's TASK headers. */
function shownName(t: ListedTask): string {
  return t.role === null ? t.name : `${t.role} : ${t.name}`;
}

/** Python's repr of a string (Ansible prints the pattern as a Python list). */
function pyRepr(s: string): string {
  const body = s.replace(/\\/g, '\\\\');
  return s.includes("'") && !s.includes('"') ? `"${body}"` : `'${body.replace(/'/g, "\\'")}'`;
}

const sorted = (tags: Iterable<string>): string[] => [...new Set(tags)].sort();

/** The hosts a play targets: its pattern, then --limit, in inventory order. */
export function playHosts(play: ListedPlay, sel: ListSelection): string[] {
  return sel.select(play.hosts).filter((h) => !sel.limit || sel.limit.has(h));
}

/**
 * The tasks of a play that --tags and --skip-tags select, in run order, as Ansible lists them: a
 * block's tasks in its place (not its rescue and always: Ansible's --list-tasks leaves them out).
 */
export function selectedTasks(play: ListedPlay, sel: Pick<ListSelection, 'tags' | 'skipTags'>): ListedTask[] {
  const listed = (t: ListedTask): ListedTask[] => (t.block ? t.block.tasks.flatMap(listed) : selectedByTags(t.tags, sel) ? [t] : []);
  return play.tasks.flatMap(listed);
}

/** Whether the run takes a task: a block, when it takes any task of it (as the engine keeps a block). */
function taken(t: ListedTask, sel: Pick<ListSelection, 'tags' | 'skipTags'>): boolean {
  return t.block ? [...t.block.tasks, ...t.block.rescue, ...t.block.always].some((k) => taken(k, sel)) : selectedByTags(t.tags, sel);
}

/**
 * `ansible-playbook --list-hosts/--list-tasks/--list-tags`'s text (`cli/playbook.py`): `playbook: X`,
 * then per play `play #N (pattern): name<TAB>TAGS: [a,b]`, its `pattern:` and `hosts (N):`, its
 * `tasks:` (`role : name<TAB>TAGS: [a, b]`), and `TASK TAGS: [a, b]`. Tags are sorted (Ansible prints
 * a play's in set order); hosts are in inventory order (Ansible: set order).
 */
export function listing(playbookShown: string, plays: readonly ListedPlay[], what: ListWhat, sel: ListSelection): string {
  let out = `\nplaybook: ${playbookShown}\n`;
  for (const [i, play] of plays.entries()) {
    out += `\n  play #${i + 1} (${play.hosts}): ${play.name}\tTAGS: [${sorted(play.tags).join(',')}]\n`;
    if (what.hosts) {
      const hosts = playHosts(play, sel);
      out += `    pattern: [${pyRepr(play.hosts)}]\n    hosts (${hosts.length}):\n`;
      for (const h of hosts) out += `      ${h}\n`;
    }
    if (!what.tasks && !what.tags) continue;
    const tasks = selectedTasks(play, sel);
    if (what.tasks) {
      out += '    tasks:\n';
      for (const t of tasks) out += `      ${shownName(t)}\tTAGS: [${sorted(t.tags).join(', ')}]\n`;
    }
    if (what.tags) out += `      TASK TAGS: [${sorted([...play.tags, ...tasks.flatMap((t) => t.tags)]).join(', ')}]\n`;
  }
  return out;
}

/**
 * Whether `--start-at-task PATTERN` names a task the run would take, as the engine matches it: among
 * the tasks --tags and --skip-tags select, by name or `role : name`, equal or as a glob; a block by its
 * own name (the engine starts at a play's tasks and blocks, not inside a block, where Ansible can).
 */
export function startAtTaskFound(plays: readonly ListedPlay[], pattern: string, sel: Pick<ListSelection, 'tags' | 'skipTags'>): boolean {
  return plays.some((p) => p.tasks.some((t) => taken(t, sel) && matchesTaskName(pattern, t.name, t.role)));
}
