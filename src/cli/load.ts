/**
 * Finding and loading user code: playbooks (`playbooks/<name>.ts` or a path) and roles
 * (`roles/<name>/index.ts`), TypeScript loaded at run time (see importUserModule).
 */
import {existsSync, readFileSync} from 'node:fs';
import {dirname, isAbsolute, join, relative, resolve} from 'node:path';
import {pathToFileURL} from 'node:url';
import {ExitCode, UserError, parseError} from '../core/errors.ts';
import {group} from '../shared/match.ts';
import {currentProject, projectRoot, userCacheDir} from '../core/paths.ts';
import {compiledUserModule} from './usercode.ts';
import {taskName, taskSource, type LoadedRole} from '../core/engine.ts';
import {didYouMean} from '../core/validate.ts';
import type {Playbook, Role, Task} from '../core/types.ts';

export {currentProject, projectRoot, userCacheDir};

/** Where a path given by the user or found in an inventory is, trying the cwd, then `base`, then the project root. */
export function resolveUserPath(path: string, base?: string): string {
  if (isAbsolute(path)) return path;
  for (const dir of [process.cwd(), base, projectRoot]) {
    if (dir && existsSync(join(dir, path))) return resolve(dir, path);
  }
  return resolve(path);
}

/** `site` → playbooks/site.ts of the current project (never provision's own); a path is taken as is. */
export function findPlaybook(nameOrPath: string): string {
  const candidates = /[/\\]|\.[cm]?[jt]s$/.test(nameOrPath)
    ? [resolve(nameOrPath)]
    : [...new Set([join(process.cwd(), 'playbooks', `${nameOrPath}.ts`), join(currentProject(), 'playbooks', `${nameOrPath}.ts`)])];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new UserError(`playbook '${nameOrPath}' not found (looked for ${candidates.map((c) => relative(process.cwd(), c) || c).join(', ')})`, ExitCode.badOptions);
  return found;
}

declare global {
  /** The folder of the prebuilt bundle this process runs from (set by bin/provision.js); unset: the sources. */
  var __PROVISION_BUNDLE__: string | undefined;
}

/**
 * Import user TypeScript. From the sources, tsx is registered already (by bin/provision.js or the
 * test runner); from the prebuilt bundle, the file is compiled (and cached) by compiledUserModule.
 */
async function importUserModule(path: string): Promise<unknown> {
  try {
    const bundle = globalThis.__PROVISION_BUNDLE__;
    return await import(bundle ? await compiledUserModule(path, bundle) : pathToFileURL(path).href);
  } catch (e) {
    if (e instanceof UserError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    // esbuild (through tsx) reports syntax errors as "file:line:col: ERROR: message".
    const m = /([^\s:]+\.[cm]?[jt]sx?):(\d+):\d+: ERROR: (.*)/.exec(msg);
    if (m) throw parseError(group(m, 3), {file: relative(process.cwd(), group(m, 1)) || group(m, 1), line: Number(m[2])});
    throw new UserError(`${relative(process.cwd(), path)}: cannot load: ${msg.split('\n')[0]}`, ExitCode.parseError);
  }
}

function isPlaybook(v: unknown): v is Playbook {
  return typeof v === 'object' && v !== null && Array.isArray((v as Playbook).plays);
}

/**
 * Import a playbook. `before` runs on what the module exported, before its shape is checked (the type
 * check, whose messages say more than "every play needs a name").
 */
export async function loadPlaybook(path: string, before?: (exported: unknown) => Promise<void>): Promise<Playbook> {
  const mod = (await importUserModule(path)) as {default?: unknown};
  const pb = mod.default;
  await before?.(pb);
  if (!isPlaybook(pb)) throw parseError('the default export must be a playbook: export default definePlaybook({name, plays: [...]})', {file: relative(process.cwd(), path), field: 'default'});
  pb.plays.forEach((p, i) => {
    if (typeof p?.hosts !== 'string' || typeof p?.name !== 'string') throw parseError('every play needs a name and a hosts pattern', {file: relative(process.cwd(), path), field: `plays[${i}]`});
  });
  return pb;
}

/**
 * A role loader looking in `roles/` beside the playbook's folder, its parent and the current project
 * (provision's shipped roles are imported from 'provision/roles', never found by name).
 */
export function roleLoader(playbookPath: string): (name: string) => Promise<LoadedRole> {
  const cache = new Map<string, Promise<LoadedRole>>();
  const roots = roleRoots(playbookPath);
  return (name) => {
    let p = cache.get(name);
    if (!p) {
      p = (async () => {
        const dir = roleDir(roots, name);
        if (!dir) throw new UserError(`role '${name}' not found (looked in ${roots.map((r) => relative(process.cwd(), r) || '.').join(', ')})`, ExitCode.parseError);
        const mod = (await importUserModule(join(dir, 'index.ts'))) as {default?: Role};
        const role = mod.default;
        if (!role || !Array.isArray(role.tasks)) throw parseError('the default export must be a role: export default defineRole({name, tasks: [...]})', {file: relative(process.cwd(), join(dir, 'index.ts')), field: 'default'});
        return {role, dir, file: join(dir, 'index.ts')};
      })();
      cache.set(name, p);
    }
    return p;
  };
}

function roleRoots(playbookPath: string): string[] {
  return [...new Set([join(dirname(playbookPath), 'roles'), join(dirname(playbookPath), '..', 'roles'), join(currentProject(), 'roles')].map((p) => resolve(p)))];
}

function roleDir(roots: readonly string[], name: string): string | undefined {
  return roots.map((r) => join(r, name)).find((d) => existsSync(join(d, 'index.ts')));
}

/** The files of the roles a playbook names by string (what the type check must see besides the playbook's imports). */
export function roleFiles(exported: unknown, playbookPath: string): string[] {
  const roots = roleRoots(playbookPath);
  const plays: unknown = (exported as {plays?: unknown} | undefined)?.plays;
  const names = new Set((Array.isArray(plays) ? plays : []).flatMap((p: {roles?: unknown} | undefined) => (Array.isArray(p?.roles) ? p.roles : []).filter((r): r is string => typeof r === 'string')));
  return [...names].map((n) => roleDir(roots, n)).filter((d) => d !== undefined).map((d) => join(d, 'index.ts'));
}

/** What makes provision's own declarations differ: its version and the bundle running (a new build: checked again). */
export function provisionVersionKey(): string {
  let version = '?';
  try {
    version = (JSON.parse(readFileSync(join(projectRoot, 'package.json'), 'utf8')) as {version?: string}).version ?? '?';
  } catch {
    // no readable package.json: the bundle path still tells builds apart
  }
  return `${version} ${globalThis.__PROVISION_BUNDLE__ ?? 'src'}`;
}

/** Where the user wrote `t`, else the file it came from: `playbooks/web.ts:12`. */
function at(t: Task, file: string): string {
  return taskSource(t) ?? (relative(process.cwd(), file) || file);
}

/**
 * Every mistake that can be found before a host is touched, one line each naming the file, line, task
 * and field: task options and fixed arguments (their schemas), and a `notify` naming no handler of the
 * play (a lost restart is a silent bug in Ansible). Arguments computed per host are checked when the
 * task runs. Roles named by string are loaded (and cached by `loadRole`) here.
 */
export async function playbookProblems(playbook: Playbook, playbookPath: string, loadRole: (name: string) => Promise<LoadedRole>): Promise<string[]> {
  const out: string[] = [];
  for (const [i, play] of playbook.plays.entries()) {
    const roles = await Promise.all((play.roles ?? []).map(async (r) => {
      if (typeof r !== 'string') return {role: r, file: playbookPath};
      const l = await loadRole(r);
      return {role: l.role, file: l.file ?? l.dir};
    }));
    const where = (list: readonly unknown[] | undefined, file: string, field: string): {task: Task; file: string}[] => (list ?? []).map((task, j) => {
      if (!isTask(task)) out.push(`${relative(process.cwd(), file) || file}: plays[${i}].${field}[${j}]: not a task (make tasks with the module functions: file({...}), apt({...}), ...)`);
      return {task: task as Task, file};
    }).filter((x) => isTask(x.task));
    const tasks = [...roles.flatMap((r) => where(r.role.tasks, r.file, `roles.${r.role.name}.tasks`)), ...where(play.tasks, playbookPath, 'tasks')];
    const handlers = [...roles.flatMap((r) => where(r.role.handlers, r.file, `roles.${r.role.name}.handlers`)), ...where(play.handlers, playbookPath, 'handlers')];
    const names = handlers.map((h) => taskName(h.task));
    for (const {task, file} of [...tasks, ...handlers]) {
      const line = (problem: string): void => void out.push(`${at(task, file)}: task '${taskName(task)}': ${problem}`);
      for (const p of task.problems()) line(p);
      const notify = task.options.notify;
      for (const n of typeof notify === 'string' ? [notify] : Array.isArray(notify) ? notify : []) {
        if (names.includes(n)) continue;
        const hint = didYouMean(n, names);
        line(`notify: no handler named '${n}' in play '${play.name}'${hint ? ` (did you mean '${hint}'?)` : names.length > 0 ? ` (its handlers: ${names.map((x) => `'${x}'`).join(', ')})` : ' (it has no handlers)'}`);
      }
    }
  }
  return [...new Set(out)];
}

function isTask(v: unknown): v is Task {
  return typeof v === 'object' && v !== null && typeof (v as Task).bind === 'function' && typeof (v as Task).problems === 'function';
}
