/**
 * Where provision itself is: the folder holding its package.json (its shipped playbooks, roles and
 * lab inventory), found by walking up from this module. That works from src/ and from the prebuilt
 * bundle under node_modules/.cache/provision/ alike (bin/build.mjs).
 */
import {existsSync} from 'node:fs';
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
