/**
 * Checking what a user wrote, at run time: module arguments and task options against their schemas
 * (zod), for JavaScript users and for casts that the compiler cannot see through. One schema per
 * argument type, checked against the TypeScript interface at compile time (`Exact`), so the two cannot
 * drift apart: a field added to one and not the other is a type error in `npm test`.
 *
 * A problem is one line naming the field: `unknown argument 'pth' (did you mean 'path'?)`,
 * `state: expected one of 'file', 'directory', …, got 'tuoch'`, `path: required`.
 */
// zod's functional build (zod/mini): the same checks and issues as zod's, a tenth of the code to load
// (bundled, ~10 ms at start against ~50 ms), and every run loads it.
import * as z from 'zod/mini';

export {z};

/**
 * `true` when `A` and `B` are the same type, else a type error at the use: `const _: Exact<A, B> = true`.
 * Readonly modifiers are ignored (schemas infer mutable types).
 */
export type Exact<A, B> = (<T>() => T extends Mutable<A> ? 1 : 2) extends <T>() => T extends Mutable<B> ? 1 : 2 ? true : never;
type Mutable<T> = T extends (...args: never[]) => unknown ? T : T extends readonly (infer E)[] ? Mutable<E>[] : T extends object ? {-readonly [K in keyof T]: Mutable<T[K]>} : T;

/** A function value (for `when`, `changedWhen`, …): only its being a function is checked. */
export const fn = <F extends (...args: never[]) => unknown>() => z.custom<F>((v) => typeof v === 'function', {error: 'expected a function'});

/** A schema's definition, read the same way whichever build of zod made it. */
interface Def {
  readonly type: string;
  readonly shape?: Record<string, unknown>;
  readonly innerType?: unknown;
  readonly options?: readonly unknown[];
  readonly element?: unknown;
}
const defOf = (s: unknown): Def | undefined => (s as {_zod?: {def?: Def}} | undefined)?._zod?.def;

/** The closest of `candidates` to `word` by edit distance, when close enough to be a likely typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  const prefix = (c: string): number => {
    let i = 0;
    while (i < c.length && i < word.length && c.charAt(i).toLowerCase() === word.charAt(i).toLowerCase()) i++;
    return i;
  };
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    // Ties go to the candidate sharing the longest beginning (`prot`: `proto` before `port`).
    if (d < bestD || (d === bestD && best !== undefined && prefix(c) > prefix(best))) [best, bestD] = [c, d];
  }
  return best !== undefined && bestD <= Math.max(1, Math.floor(word.length / 3)) ? best : undefined;
}

/** Edit distance where swapping two neighbouring letters (`mdoe`) counts as one edit, like a typo. */
function editDistance(a: string, b: string): number {
  // d[i][j]: the distance between the first i letters of `a` and the first j of `b`, filled row by row;
  // every cell read is already filled, so `at` never falls back to Infinity.
  const d: number[][] = [Array.from({length: b.length + 1}, (_, j) => j)];
  const at = (i: number, j: number): number => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    d.push(row);
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let dist = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) dist = Math.min(dist, at(i - 2, j - 2) + 1);
      row.push(dist);
    }
  }
  return at(a.length, b.length);
}

const show = (v: unknown): string => (typeof v === 'string' ? `'${v}'` : typeof v === 'function' ? 'a function' : JSON.stringify(v) ?? String(v));

/** The keys a schema accepts at `path` (for "did you mean"), when it is an object schema. */
function keysAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  for (const p of path) {
    const inner = unwrap(s);
    if (defOf(inner)?.type === 'array' && typeof p === 'number') {
      s = defOf(inner)?.element;
      continue;
    }
    const shape = objectShape(s);
    if (!shape || typeof p !== 'string') return [];
    s = shape[p];
  }
  return Object.keys(objectShape(s) ?? {});
}

function unwrap(s: unknown): unknown {
  const d = defOf(s);
  return d && (d.type === 'optional' || d.type === 'nullable') ? unwrap(d.innerType) : s;
}

function objectShape(s: unknown): Record<string, unknown> | undefined {
  const d = defOf(unwrap(s));
  if (d?.type === 'object') return d.shape;
  if (d?.type === 'union') {
    const all: Record<string, unknown> = {};
    for (const o of d.options ?? []) Object.assign(all, objectShape(o) ?? {});
    return all;
  }
  return undefined;
}

/**
 * Problems with `value` under `schema`, one line each (empty: valid). `what` names the kind of key
 * for unknown keys: 'argument' or 'task option'.
 */
export function problems(schema: z.core.$ZodType, value: unknown, what = 'argument'): string[] {
  const r = z.safeParse(schema, value);
  return r.success ? [] : [...new Set(format(r.error.issues, [], schema, value, what))];
}

function format(issues: readonly z.core.$ZodIssue[], base: readonly PropertyKey[], schema: z.core.$ZodType, value: unknown, what: string): string[] {
  const out: string[] = [];
  for (const raw of issues) {
    const issue = {...raw, path: [...base, ...raw.path]} as z.core.$ZodIssue;
    const at = issue.path.map(String).join('.');
    const prefix = at ? `${at}: ` : '';
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const k of issue.keys) {
          const hint = didYouMean(k, keysAt(schema, issue.path));
          out.push(`unknown ${what} '${[...issue.path.map(String), k].join('.')}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
        }
        break;
      case 'invalid_value':
        if (valueAt(value, issue.path) === undefined) out.push(`${prefix}required`);
        else out.push(`${prefix}expected ${issue.values.length === 1 ? show(issue.values[0]) : `one of ${issue.values.map(show).join(', ')}`}, got ${show(valueAt(value, issue.path))}`);
        break;
      case 'invalid_type':
        out.push(valueAt(value, issue.path) === undefined ? `${prefix}required` : `${prefix}expected ${issue.expected}, got ${show(valueAt(value, issue.path))}`);
        break;
      case 'invalid_union': {
        const v = valueAt(value, issue.path);
        // An object that fits no alternative: what is wrong with it under the closest one.
        const closest = v !== null && typeof v === 'object' && !Array.isArray(v)
          ? issue.errors.filter((errs) => errs.length > 0 && !errs.every((e) => e.code === 'invalid_type' && e.path.length === 0)).sort((a, b) => a.length - b.length)[0]
          : undefined;
        if (v === undefined) out.push(`${prefix}required`);
        else if (closest) out.push(...format(closest, issue.path, schema, value, what));
        else out.push(`${prefix}${unionMessage(issue)}, got ${show(v)}`);
        break;
      }
      default:
        out.push(`${prefix}${issue.message}`);
    }
  }
  return out;
}

function unionMessage(issue: z.core.$ZodIssueInvalidUnion): string {
  // The alternatives' own first messages, e.g. "expected string" / "expected array".
  const alts = issue.errors.map((errs) => errs[0]).filter((e) => e !== undefined);
  const expected = [...new Set(alts.map((e) => (e.code === 'invalid_type' ? e.expected : e.code === 'invalid_value' ? e.values.map(show).join(', ') : e.message)))];
  return expected.length > 0 ? `expected ${expected.join(' or ')}` : issue.message;
}

function valueAt(v: unknown, path: readonly PropertyKey[]): unknown {
  let cur = v;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}
