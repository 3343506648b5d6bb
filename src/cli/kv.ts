/**
 * Ansible's `key=value` argument strings, as `-e` reads them: a port of ansible-core's `parse_kv` and
 * `split_args` (lib/ansible/parsing/splitter.py) and `unquote` (parsing/quoting.py).
 *
 * Not shell quoting. The string is cut at spaces and newlines, and the pieces are glued back while a
 * quote or a Jinja2 block (`{{ }}`, `{% %}`, `{# #}`) is open; quotes stay in the word. In each word,
 * Python-style escapes are decoded (`\n`, `\t`, `\"`, `\\`, `\x41`, `\u00e9`, `\U0001f600`); the key
 * ends at the first `=` after the first character that no backslash precedes; key and value are
 * trimmed and the value alone loses one pair of quotes when it is quoted whole. Values stay strings.
 *
 *     msg='hello world' n=1      → {msg: 'hello world', n: '1'}
 *     a=x'y z'w                  → {a: "x'y z'w"}          (quotes inside a value are kept)
 *     'a=b c'                    → {"'a": "b c'"}           (a quoted pair is not unquoted)
 *     msg=hello world            → {msg: 'hello'} and the free word `world`
 *
 * Words without `=` are returned apart (Ansible stores them in `_raw_params`; the CLI refuses them).
 */

/** The string cannot be split: an unclosed quote or Jinja2 block, or an escape that cannot be decoded. */
export class KvSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KvSyntaxError';
  }
}

export interface KeyValues {
  /** key → value, in the order written; a later key wins. */
  readonly vars: Readonly<Record<string, string>>;
  /** Words without an unescaped `=` (Ansible's `_raw_params`), `\=` turned into `=`. */
  readonly free: readonly string[];
}

// Python's str.isspace(), which str.strip() trims (JavaScript's trim() differs: \x1c-\x1f, \x85, \ufeff).
const PY_SPACE = '\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const PY_STRIP = new RegExp(`^[${PY_SPACE}]+|[${PY_SPACE}]+$`, 'g');

function pyStrip(s: string): string {
  return s.replace(PY_STRIP, '');
}

const ESCAPE = /\\U[0-9a-fA-F]{8}|\\u[0-9a-fA-F]{4}|\\x[0-9a-fA-F]{2}|\\N\{[^}]+\}|\\[\\'"abfnrtv]/g;
const SIMPLE: Readonly<Record<string, string>> = {
  '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
};

/** `_decode_escapes`: Python's unicode-escape, applied to the escapes above only. */
function decodeEscapes(word: string): string {
  return word.replace(ESCAPE, (m) => {
    const kind = m.charAt(1); // every ESCAPE match is a backslash and a letter or quote
    if (kind === 'N') throw new KvSyntaxError(`${m}: named Unicode escapes are not supported; write the character, or \\u/\\U with its code`);
    if (kind === 'U' || kind === 'u' || kind === 'x') {
      const code = parseInt(m.slice(2), 16);
      if (code > 0x10ffff) throw new KvSyntaxError(`${m}: not a Unicode character`);
      return String.fromCodePoint(code);
    }
    const simple = SIMPLE[kind];
    if (simple === undefined) throw new Error(`internal error: ESCAPE matched ${m}, which SIMPLE does not know`);
    return simple;
  });
}

/** `unquote`: drop one pair of matching outer quotes, unless the closing one is escaped. */
function unquote(s: string): string {
  const quoted = s.length > 1 && s[0] === s[s.length - 1] && (s[0] === '"' || s[0] === "'") && s[s.length - 2] !== '\\';
  return quoted ? s.slice(1, -1) : s;
}

/** `_get_quote_state`: the quote still open after `token`, given the one open before it. */
function quoteState(token: string, open: string | undefined): string | undefined {
  for (let i = 0; i < token.length; i++) {
    const c = token[i];
    if ((c === '"' || c === "'") && (i === 0 || token[i - 1] !== '\\')) {
      if (open === undefined) open = c;
      else if (c === open) open = undefined;
    }
  }
  return open;
}

function count(s: string, sub: string): number {
  return s.split(sub).length - 1;
}

/** `_count_jinja2_blocks`. */
function blockDepth(token: string, depth: number, open: string, close: string): number {
  const opened = count(token, open);
  const closed = count(token, close);
  return opened === closed ? depth : Math.max(0, depth + opened - closed);
}

/** `split_args`: the words of `args`, quotes and Jinja2 blocks kept whole (with their spaces and newlines). */
export function splitArgs(args: string): string[] {
  const params: string[] = [];
  const last = (): number => {
    // Python's params[-1] on an empty list: ansible-core reports "Unable to parse argument string".
    if (params.length === 0) throw new KvSyntaxError('cannot split it: it starts with two spaces or an empty line');
    return params.length - 1;
  };
  const items = args.split('\n');
  let quote: string | undefined;
  let inQuotes = false;
  let print = 0;
  let block = 0;
  let comment = 0;
  items.forEach((item, itemIdx) => {
    const tokens = item.split(' ');
    let continuation = false;
    tokens.forEach((token, idx) => {
      if (token.length === 0 && idx !== 0) {
        params[last()] += ' ';
        return;
      }
      if (token === '\\' && !inQuotes) {
        continuation = true;
        return;
      }
      const wasInQuotes = inQuotes;
      quote = quoteState(token, quote);
      inQuotes = quote !== undefined;
      let appended = false;
      if (inQuotes && !wasInQuotes && !(print || block || comment)) {
        params.push(token);
        appended = true;
      } else if (print || block || comment || inQuotes || wasInQuotes) {
        const i = last();
        if (idx === 0 && wasInQuotes) params[i] += token;
        else if (tokens.length > 1) params[i] += (idx > 0 ? ' ' : '') + token;
        else params[i] += `\n${token}`;
        appended = true;
      }
      for (const [open, close, get, set] of [
        ['{{', '}}', () => print, (d: number) => (print = d)],
        ['{%', '%}', () => block, (d: number) => (block = d)],
        ['{#', '#}', () => comment, (d: number) => (comment = d)],
      ] as const) {
        const before = get();
        set(blockDepth(token, before, open, close));
        if (get() !== before && !appended) {
          params.push(token);
          appended = true;
        }
      }
      if (!(print || block || comment) && !inQuotes && !appended && token !== '') params.push(token);
    });
    if (items.length > 1 && itemIdx !== items.length - 1 && !continuation) params[last()] += '\n';
  });
  if (print || block || comment || inQuotes) {
    throw new KvSyntaxError('an unclosed quote or Jinja2 block');
  }
  return params;
}

/** `parse_kv` (without `check_raw`): the `key=value` pairs of `args`, and its free words apart. */
export function parseKeyValues(args: string): KeyValues {
  const vars: Record<string, string> = {};
  const free: string[] = [];
  for (const word of splitArgs(args)) {
    const x = decodeEscapes(word);
    if (!x.includes('=')) {
      free.push(word);
      continue;
    }
    let pos = 0;
    for (;;) {
      pos = x.indexOf('=', pos + 1);
      if (pos < 0 || x[pos - 1] !== '\\') break;
    }
    if (pos < 0) {
      free.push(x.replace(/\\=/g, '='));
      continue;
    }
    Object.defineProperty(vars, pyStrip(x.slice(0, pos)), {value: unquote(pyStrip(x.slice(pos + 1))), enumerable: true, writable: true, configurable: true});
  }
  return {vars, free};
}
