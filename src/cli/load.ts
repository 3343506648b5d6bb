/**
 * Finding and loading user code: playbooks (`playbooks/<name>.ts` or a path) and roles
 * (`roles/<name>/index.ts`), TypeScript loaded at run time (see importUserModule).
 */
import {existsSync} from 'node:fs';
import {dirname, isAbsolute, join, relative, resolve} from 'node:path';
import {pathToFileURL} from 'node:url';
import {ExitCode, UserError, parseError} from '../core/errors.ts';
import {projectRoot} from '../core/paths.ts';
import {compiledUserModule} from './usercode.ts';
import type {LoadedRole} from '../core/engine.ts';
import type {Playbook, Role} from '../core/types.ts';

export {projectRoot};

/** Where a path given by the user or found in an inventory is, trying the cwd, then `base`, then the project root. */
export function resolveUserPath(path: string, base?: string): string {
  if (isAbsolute(path)) return path;
  for (const dir of [process.cwd(), base, projectRoot]) {
    if (dir && existsSync(join(dir, path))) return resolve(dir, path);
  }
  return resolve(path);
}

/** `site` → playbooks/site.ts (cwd first, then provision's own); a path is taken as is. */
export function findPlaybook(nameOrPath: string): string {
  const candidates = /[/\\]|\.[cm]?[jt]s$/.test(nameOrPath)
    ? [resolve(nameOrPath)]
    : [join(process.cwd(), 'playbooks', `${nameOrPath}.ts`), join(projectRoot, 'playbooks', `${nameOrPath}.ts`)];
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
    if (m) throw parseError(m[3], {file: relative(process.cwd(), m[1]) || m[1], line: Number(m[2])});
    throw new UserError(`${relative(process.cwd(), path)}: cannot load: ${msg.split('\n')[0]}`, ExitCode.parseError);
  }
}

function isPlaybook(v: unknown): v is Playbook {
  return typeof v === 'object' && v !== null && Array.isArray((v as Playbook).plays);
}

export async function loadPlaybook(path: string): Promise<Playbook> {
  const mod = (await importUserModule(path)) as {default?: unknown};
  const pb = mod.default;
  if (!isPlaybook(pb)) throw parseError('the default export must be a playbook: export default definePlaybook({name, plays: [...]})', {file: relative(process.cwd(), path), field: 'default'});
  pb.plays.forEach((p, i) => {
    if (typeof p?.hosts !== 'string' || typeof p?.name !== 'string') throw parseError('every play needs a name and a hosts pattern', {file: relative(process.cwd(), path), field: `plays[${i}]`});
  });
  return pb;
}

/** A role loader looking in `roles/` beside the playbook's folder, the cwd, then provision's own. */
export function roleLoader(playbookPath: string): (name: string) => Promise<LoadedRole> {
  const cache = new Map<string, Promise<LoadedRole>>();
  const roots = [...new Set([join(dirname(playbookPath), 'roles'), join(dirname(playbookPath), '..', 'roles'), join(process.cwd(), 'roles'), join(projectRoot, 'roles')].map((p) => resolve(p)))];
  return (name) => {
    let p = cache.get(name);
    if (!p) {
      p = (async () => {
        const dir = roots.map((r) => join(r, name)).find((d) => existsSync(join(d, 'index.ts')));
        if (!dir) throw new UserError(`role '${name}' not found (looked in ${roots.map((r) => relative(process.cwd(), r) || '.').join(', ')})`, ExitCode.parseError);
        const mod = (await importUserModule(join(dir, 'index.ts'))) as {default?: Role};
        const role = mod.default;
        if (!role || !Array.isArray(role.tasks)) throw parseError('the default export must be a role: export default defineRole({name, tasks: [...]})', {file: relative(process.cwd(), join(dir, 'index.ts')), field: 'default'});
        return {role, dir};
      })();
      cache.set(name, p);
    }
    return p;
  };
}
