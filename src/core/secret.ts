/**
 * Secrets: a distinct type that prints as `***`, and the registry of one run (`Secrets`): every secret
 * value the run has met, so that every output path (events, diffs, logs) can mask them.
 *
 * Mask before you serialise: a writer masks the values it is given (`maskValue`), then formats them.
 * Masking formatted text misses a secret the formatter changed: `JSON.stringify` escapes `"`, `\`,
 * newlines and control characters; a plain writer indents a multi-line output or trims it. `mask` is
 * for what genuinely is plain text (an error message, a log line) before anything shapes it.
 */
export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
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

/** Wrap a value as a secret: it prints as `***`, and a run that meets it in a task masks it everywhere. */
export function secret(value: string): Secret {
  return new Secret(value);
}

/**
 * The secrets of one run (or one command): every clear value that must never be shown, filled as the
 * run meets them (vault values as they are read, a task's `Secret` arguments and what its module says
 * it reveals as it is bound), and the masking every writer applies. Made by the CLI, passed to the
 * inventory loader, the engine and the writers: no module holds secrets.
 */
export class Secrets {
  readonly #known = new Set<string>();
  /** `#known`, longest first (so that a secret containing another is masked whole); rebuilt on change. */
  #longestFirst: readonly string[] | null = null;

  get size(): number {
    return this.#known.size;
  }

  /** Values that must never be shown (empty ones are ignored). */
  add(...values: readonly string[]): void {
    for (const value of values) {
      if (value.length > 0 && !this.#known.has(value)) {
        this.#known.add(value);
        this.#longestFirst = null;
      }
    }
  }

  /** Every `Secret` inside `value` (a task's arguments), at any depth of arrays and plain objects. */
  addFound(value: unknown): void {
    this.add(...secretsIn(value));
  }

  /** Replace every secret value in `text` by `***`. */
  readonly mask = (text: string): string => {
    if (this.#known.size === 0 || text.length === 0) return text;
    this.#longestFirst ??= [...this.#known].sort((a, b) => b.length - a.length);
    let out = text;
    for (const value of this.#longestFirst) {
      if (out.includes(value)) out = out.split(value).join('***');
    }
    return out;
  };

  /**
   * Mask a value, not its text: a copy of `value` in which every string, at any depth of plain objects
   * and arrays, object keys included, has every secret replaced by `***`. Everything else is kept as
   * it is: numbers, booleans, `null`, `undefined`, and objects that are not plain (a `Secret` already
   * prints as `***`). The input is not changed (with no secret known, it is returned as it is). Keys
   * that are equal once masked become one (the last wins). Format the result:
   * `JSON.stringify(secrets.maskValue(event))`, never `secrets.mask(JSON.stringify(event))`.
   */
  readonly maskValue = <T>(value: T): T => {
    if (this.#known.size === 0) return value;
    return maskDeep(value, this.mask, new Map()) as T;
  };
}

/** The clear values of the `Secret`s inside `value`, at any depth of arrays and plain objects. */
export function secretsIn(value: unknown, seen = new Set<object>()): string[] {
  if (value instanceof Secret) return [value.reveal()];
  if (value === null || typeof value !== 'object' || seen.has(value)) return [];
  seen.add(value);
  if (Array.isArray(value)) return value.flatMap((v) => secretsIn(v, seen));
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return [];
  return Object.values(value).flatMap((v) => secretsIn(v, seen));
}

/** `seen`: the copy of each object already masked, so shared and cyclic references stay so. */
function maskDeep(value: unknown, mask: (text: string) => string, seen: Map<object, unknown>): unknown {
  if (typeof value === 'string') return mask(value);
  if (value === null || typeof value !== 'object') return value;
  const copy = seen.get(value);
  if (copy !== undefined) return copy;
  if (Array.isArray(value)) {
    const out: unknown[] = [];
    seen.set(value, out);
    for (const item of value) out.push(maskDeep(item, mask, seen));
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const out: Record<string, unknown> = {};
  seen.set(value, out);
  for (const [key, item] of Object.entries(value)) {
    // defineProperty: an own `__proto__` key (from JSON.parse) stays a key, not the copy's prototype.
    Object.defineProperty(out, mask(key), {value: maskDeep(item, mask, seen), enumerable: true, writable: true, configurable: true});
  }
  return out;
}
