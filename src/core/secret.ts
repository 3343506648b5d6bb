/**
 * Secrets: a distinct type that prints as `***`, and one registry of every secret value seen in the
 * run so that every output path (events, diffs, logs) can mask them.
 *
 * Mask before you serialise: a writer masks the values it is given (`maskValue`), then formats them.
 * Masking formatted text misses a secret the formatter changed: `JSON.stringify` escapes `"`, `\`,
 * newlines and control characters; a plain writer indents a multi-line output or trims it. `mask` is
 * for what genuinely is plain text (an error message, a log line) before anything shapes it.
 */
const known = new Set<string>();
/** `known`, longest first (so that a secret containing another is masked whole); rebuilt on change. */
let longestFirst: readonly string[] | null = null;

function remember(value: string): void {
  if (value.length > 0 && !known.has(value)) {
    known.add(value);
    longestFirst = null;
  }
}

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    remember(value);
  }
  /** The clear value, for the one place that must send it (a command's stdin or argv). */
  reveal(): string {
    return this.#value;
  }
  toString(): string {
    return '***';
  }
  toJSON(): string {
    return '***';
  }
}

/** Wrap a value as a secret (also registers it for masking). */
export function secret(value: string): Secret {
  return new Secret(value);
}

/** Register a clear value that must never be shown (e.g. read from a vault file). */
export function registerSecretValue(value: string): void {
  remember(value);
}

/** Replace every registered secret value in `text` by `***`. */
export function mask(text: string): string {
  if (known.size === 0 || text.length === 0) return text;
  longestFirst ??= [...known].sort((a, b) => b.length - a.length);
  let out = text;
  for (const value of longestFirst) {
    if (out.includes(value)) out = out.split(value).join('***');
  }
  return out;
}

/**
 * Mask a value, not its text: a copy of `value` in which every string, at any depth of plain objects
 * and arrays, object keys included, has every registered secret replaced by `***`. Everything else is
 * kept as it is: numbers, booleans, `null`, `undefined`, and objects that are not plain (a `Secret`
 * already prints as `***`). The input is not changed (with no secret registered, it is returned as
 * it is). Keys that are equal once masked become one (the last wins). Format the result:
 * `JSON.stringify(maskValue(event))`, never `mask(JSON.stringify(event))`.
 */
export function maskValue<T>(value: T): T {
  if (known.size === 0) return value;
  return maskDeep(value, new Map()) as T;
}

/** `seen`: the copy of each object already masked, so shared and cyclic references stay so. */
function maskDeep(value: unknown, seen: Map<object, unknown>): unknown {
  if (typeof value === 'string') return mask(value);
  if (value === null || typeof value !== 'object') return value;
  const copy = seen.get(value);
  if (copy !== undefined) return copy;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(maskDeep(item, seen));
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  for (const [key, item] of Object.entries(value)) {
    // defineProperty: an own `__proto__` key (from JSON.parse) stays a key, not the copy's prototype.
    Object.defineProperty(out, mask(key), {value: maskDeep(item, seen), enumerable: true, writable: true, configurable: true});
  }
  return out;
}
