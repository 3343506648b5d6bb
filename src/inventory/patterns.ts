/**
 * Ansible host patterns (`inventory/manager.py`): `a:b` or `a,b` (union), `a:&b` (intersection),
 * `a:!b` (exclusion), globs and `~regex` matched against group names (a match takes the whole group)
 * and host names, subscripts `web[0]`, `web[1:3]`, `web[-1]`, and `@file` (one pattern a line, as
 * `--limit @site.retry`). Results are in inventory order, without duplicates.
 */
import {readFileSync, statSync} from 'node:fs';
import {resolve} from 'node:path';
import {UserError} from '../core/errors.ts';
import {globToRegExp} from '../shared/glob.ts';
import {group} from '../shared/match.ts';
import {parseAddress} from './ranges.ts';

/** What pattern matching needs of an inventory. */
export interface PatternSource {
  readonly hostNames: readonly string[];
  readonly groups: ReadonlyMap<string, unknown>;
  groupHosts(group: string): string[];
}

const subscriptRe = /^(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]$/;
const patternWordRe = /(?:[^\s:[\]]|\[[^\]]*\])+/g;

/** Splits a pattern string into single patterns, as Ansible's `split_host_pattern`. */
export function splitHostPattern(pattern: string): string[] {
  let parts: string[];
  if (pattern.includes(',')) {
    parts = pattern.split(',');
  } else {
    // a plain address (possibly with a port or ranges) is one pattern; otherwise ':' separates
    parts = parseAddress(pattern) ? [pattern] : (pattern.match(patternWordRe) ?? []);
  }
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function matcher(pattern: string): RegExp {
  if (!pattern.startsWith('~')) return globToRegExp(pattern);
  try {
    // Python's re.match: anchored at the start only; (?P<name>…) is (?<name>…) in JavaScript
    return new RegExp(`^(?:${pattern.slice(1).replace(/\(\?P</g, '(?<')})`);
  } catch {
    throw new UserError(`invalid host pattern regex: ${pattern}`);
  }
}

function enumerate(inv: PatternSource, pattern: string): string[] {
  const re = matcher(pattern);
  const results: string[] = [];
  const groups = [...inv.groups.keys()].filter((g) => re.test(g));
  for (const g of groups) results.push(...inv.groupHosts(g));
  if (groups.length === 0 || pattern.startsWith('~') || /[.?*[]/.test(pattern)) {
    for (const h of inv.hostNames) if (re.test(h)) results.push(h);
  }
  return results;
}

function matchOne(inv: PatternSource, pattern: string): string[] {
  let expr = pattern;
  let index: number | undefined;
  let slice: [number, number] | undefined;
  if (!pattern.startsWith('~')) {
    const m = subscriptRe.exec(pattern);
    if (m) {
      expr = group(m, 1);
      if (m[2] !== undefined) index = Number(m[2]);
      else slice = [Number(m[3]), m[5] === '' ? -1 : Number(m[5])];
    }
  }
  const hosts = [...new Set(enumerate(inv, expr))];
  if (hosts.length === 0) return hosts;
  if (index === undefined && slice) {
    const [start, endRaw] = slice;
    if (endRaw === 0) index = start; // Ansible: a zero end selects the start host only
    else return hosts.slice(start, (endRaw === -1 ? hosts.length - 1 : endRaw) + 1);
  }
  if (index !== undefined) {
    const h = hosts.at(index);
    return h === undefined ? [] : [h];
  }
  return hosts;
}

function readLimitFile(path: string): string[] {
  let text: string;
  try {
    if (statSync(path).isDirectory()) throw new UserError(`limit starting with "@" must be a file, not a directory: ${path}`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`cannot read limit file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return text.split('\n').map((l) => l.trim());
}

/**
 * The hosts an Ansible pattern selects, in inventory order. No match is an empty list, not an error.
 * `@file` reads patterns from a file (one a line), relative to `baseDir` (default: the working directory).
 */
export function selectHosts(inv: PatternSource, pattern: string, baseDir?: string): string[] {
  const patterns: string[] = [];
  for (const p of splitHostPattern(pattern)) {
    if (p.startsWith('@')) patterns.push(...readLimitFile(resolve(baseDir ?? process.cwd(), p.slice(1))));
    else patterns.push(p);
  }
  const regular = patterns.filter((p) => p !== '' && p[0] !== '!' && p[0] !== '&');
  const ordered = [
    ...(regular.length > 0 ? regular : ['all']),
    ...patterns.filter((p) => p[0] === '&'),
    ...patterns.filter((p) => p[0] === '!'),
  ];
  const known = new Set(inv.hostNames);
  let hosts: string[] = [];
  for (const p of ordered) {
    if (known.has(p)) {
      hosts.push(p);
    } else if (p[0] === '!') {
      const that = new Set(matchOne(inv, p.slice(1)));
      hosts = hosts.filter((h) => !that.has(h));
    } else if (p[0] === '&') {
      const that = new Set(matchOne(inv, p.slice(1)));
      hosts = hosts.filter((h) => that.has(h));
    } else {
      const have = new Set(hosts);
      hosts.push(...matchOne(inv, p).filter((h) => !have.has(h)));
    }
  }
  return [...new Set(hosts)];
}
