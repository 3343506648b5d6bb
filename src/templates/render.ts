/**
 * Mustache rendering and role file lookup. Pure apart from reading the role's files.
 * Templates are rendered without HTML escaping: they are config files, not web pages.
 */
import {readFileSync} from 'node:fs';
import {join, normalize} from 'node:path';
import Mustache from 'mustache';

function inside(dir: string, sub: string, name: string): string {
  const path = normalize(join(dir, sub, name));
  if (!path.startsWith(normalize(join(dir, sub)) + '/')) throw new Error(`'${name}' escapes the role's ${sub}/ folder`);
  return path;
}

function readRoleFile(dir: string, sub: string, name: string): Buffer {
  const path = inside(dir, sub, name);
  try {
    return readFileSync(path);
  } catch {
    throw new Error(`${sub.slice(0, -1)} not found: ${path}`);
  }
}

/** Render a mustache string with a view; no escaping. */
export function renderString(template: string, view: Record<string, unknown>): string {
  return Mustache.render(template, view, undefined, {escape: (s: string) => s});
}

/** Render `roles/<role>/templates/<name>`. */
export function renderTemplate(roleDir: string, name: string, view: Record<string, unknown>): string {
  return renderString(readRoleFile(roleDir, 'templates', name).toString('utf8'), view);
}

/** Read `roles/<role>/files/<name>`. */
export function readRoleFileContent(roleDir: string, name: string): Buffer {
  return readRoleFile(roleDir, 'files', name);
}
