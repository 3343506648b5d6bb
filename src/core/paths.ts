/**
 * Where provision itself is: the folder holding its package.json (its shipped playbooks, roles and
 * lab inventory), found by walking up from this module. That works from src/ and from the prebuilt
 * bundle under node_modules/.cache/provision/ alike (bin/build.mjs).
 */
import {accessSync, constants, existsSync, mkdirSync} from 'node:fs';
import {tmpdir} from 'node:os';
import {dirname, join, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`provision: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The folder holding provision's own package.json. */
export const projectRoot: string = findRoot();

/**
 * The project a command runs in: the nearest folder from the working directory up that has a
 * package.json (else the working directory). Playbooks by name, the default inventory and the lab's
 * state (`.lab/`) belong to it; in provision's own repository it is provision's root.
 */
export function currentProject(cwd = process.cwd()): string {
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) return resolve(cwd);
  }
}

/**
 * A cache folder of the current project's (compiled user code, type-check results):
 * `node_modules/.cache/provision/<name>` of the nearest node_modules (in provision's repository, its
 * own), else (none, or not writable) one under the system's temp folder.
 */
export function userCacheDir(name: string, cwd = process.cwd()): string {
  for (let dir = currentProject(cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) {
      const cache = join(dir, 'node_modules', '.cache', 'provision', name);
      try {
        mkdirSync(cache, {recursive: true});
        accessSync(cache, constants.W_OK);
        return cache;
      } catch {
        break;
      }
    }
    if (dirname(dir) === dir) break;
  }
  return join(tmpdir(), `provision-cache-${process.getuid?.() ?? 'user'}`, name);
}
