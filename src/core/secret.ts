/**
 * Secrets: a distinct type that prints as `***`, and one registry of every secret value seen in the
 * run so that every output path (events, diffs, logs) can mask them with `mask()`.
 */
const known = new Set<string>();

export class Secret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
    if (value.length > 0) known.add(value);
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
  if (value.length > 0) known.add(value);
}

/** Replace every registered secret value in `text` by `***`. */
export function mask(text: string): string {
  if (known.size === 0 || text.length === 0) return text;
  let out = text;
  // Longest first, so that a secret containing another is masked whole.
  for (const value of [...known].sort((a, b) => b.length - a.length)) {
    if (out.includes(value)) out = out.split(value).join('***');
  }
  return out;
}
