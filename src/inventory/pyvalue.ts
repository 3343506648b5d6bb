/**
 * The two Python helpers Ansible's INI inventory leans on: POSIX `shlex.split(line, comments=True)`
 * for host lines, and `ast.literal_eval` for values (`1` is a number, `'a'` a string, `[1, 2]` a list,
 * anything else stays the raw text).
 */

/** POSIX shlex split with `#` comments; throws on an unclosed quote or a trailing backslash. */
export function shlexSplit(line: string): string[] {
  const tokens: string[] = [];
  let token = '';
  let inToken = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      if (inToken) tokens.push(token);
      token = '';
      inToken = false;
      i++;
    } else if (c === '#') {
      break;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('No escaped character');
      token += line[i + 1];
      inToken = true;
      i += 2;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error('No closing quotation');
      token += line.slice(i + 1, end);
      inToken = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inToken = true;
      for (;;) {
        if (i >= line.length) throw new Error('No closing quotation');
        const d = line[i];
        if (d === '"') {
          i++;
          break;
        }
        if (d === '\\' && i + 1 < line.length && (line[i + 1] === '"' || line[i + 1] === '\\')) {
          token += line[i + 1];
          i += 2;
        } else {
          token += d;
          i++;
        }
      }
    } else {
      token += c;
      inToken = true;
      i++;
    }
  }
  if (inToken) tokens.push(token);
  return tokens;
}

class NotLiteral extends Error {}

/** A recursive-descent reader for the literals `ast.literal_eval` accepts (no complex numbers, no bytes). */
class LiteralReader {
  private i = 0;
  constructor(private readonly s: string) {}

  private ws(): void {
    while (this.i < this.s.length && ' \t\r\n'.includes(this.s.charAt(this.i))) this.i++;
  }

  private peek(): string {
    return this.s[this.i] ?? '';
  }

  readAll(): unknown {
    const v = this.value(true);
    this.ws();
    if (this.i !== this.s.length) throw new NotLiteral();
    return v;
  }

  private value(top = false): unknown {
    this.ws();
    const c = this.peek();
    if (c === '[') return this.sequence(']');
    if (c === '(') return this.sequence(')');
    if (c === '{') return this.dict();
    if (c === '"' || c === "'" || /^[rRuU]['"]/.test(this.s.slice(this.i, this.i + 2))) return this.strings();
    const word = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.s.slice(this.i));
    if (word) {
      this.i += word[0].length;
      if (word[0] === 'True') return true;
      if (word[0] === 'False') return false;
      if (word[0] === 'None') return null;
      throw new NotLiteral();
    }
    void top;
    return this.number();
  }

  private number(): number {
    const rest = this.s.slice(this.i);
    const m =
      /^[+-]?(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|(?:(?:[0-9](?:_?[0-9])*)?\.[0-9](?:_?[0-9])*|[0-9](?:_?[0-9])*\.?)(?:[eE][+-]?[0-9](?:_?[0-9])*)?)(?![A-Za-z0-9_.])/.exec(
        rest,
      );
    if (!m) throw new NotLiteral();
    this.i += m[0].length;
    let text = m[0].replace(/_/g, '');
    let sign = 1;
    if (text[0] === '+' || text[0] === '-') {
      if (text[0] === '-') sign = -1;
      text = text.slice(1);
    }
    if (/^0[xXoObB]/.test(text)) {
      const base = {x: 16, o: 8, b: 2}[text.charAt(1).toLowerCase() as 'x' | 'o' | 'b'];
      return sign * Number.parseInt(text.slice(2), base);
    }
    if (/^[0-9]+$/.test(text) && text.length > 1 && text[0] === '0' && /[1-9]/.test(text)) {
      throw new NotLiteral(); // Python refuses leading zeros in a decimal integer
    }
    return sign * Number(text);
  }

  private strings(): string {
    let out = '';
    let any = false;
    for (;;) {
      this.ws();
      const head = /^[rRuU]?(?:'''|"""|'|")/.exec(this.s.slice(this.i));
      if (!head) break;
      any = true;
      const raw = /^[rR]/.test(head[0]);
      const quote = head[0].replace(/^[rRuU]/, '');
      this.i += head[0].length;
      let closed = false;
      while (this.i < this.s.length) {
        if (this.s.startsWith(quote, this.i)) {
          this.i += quote.length;
          closed = true;
          break;
        }
        const c = this.s[this.i];
        if (c === '\n' && quote.length === 1) throw new NotLiteral();
        if (c === '\\' && this.i + 1 < this.s.length) {
          if (raw) {
            out += c + this.s[this.i + 1];
            this.i += 2;
          } else {
            out += this.escape();
          }
          continue;
        }
        out += c;
        this.i++;
      }
      if (!closed) throw new NotLiteral();
    }
    if (!any) throw new NotLiteral();
    return out;
  }

  /** Called on a backslash that is not the last character: `this.s[this.i + 1]` exists. */
  private escape(): string {
    const c = this.s.charAt(this.i + 1);
    this.i += 2;
    const simple: Record<string, string> = {
      '\n': '', '\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
    };
    const plain = simple[c];
    if (plain !== undefined) return plain;
    const hex = (len: number): string => {
      const h = this.s.slice(this.i, this.i + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(h)) throw new NotLiteral();
      this.i += len;
      return String.fromCodePoint(Number.parseInt(h, 16));
    };
    if (c === 'x') return hex(2);
    if (c === 'u') return hex(4);
    if (c === 'U') return hex(8);
    if (/[0-7]/.test(c)) {
      let digits = c;
      while (digits.length < 3 && /[0-7]/.test(this.s[this.i] ?? '')) digits += this.s.charAt(this.i++);
      return String.fromCodePoint(Number.parseInt(digits, 8));
    }
    return '\\' + c;
  }

  private sequence(close: string): unknown[] {
    this.i++;
    const items: unknown[] = [];
    let sawComma = false;
    for (;;) {
      this.ws();
      if (this.peek() === close) {
        this.i++;
        // `(1)` is just 1 in Python; `(1,)` and `()` are tuples
        if (close === ')' && items.length === 1 && !sawComma) return items[0] as unknown[];
        return items;
      }
      items.push(this.value());
      this.ws();
      if (this.peek() === ',') {
        this.i++;
        sawComma = true;
      } else if (this.peek() !== close) {
        throw new NotLiteral();
      }
    }
  }

  private dict(): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    for (;;) {
      this.ws();
      if (this.peek() === '}') {
        this.i++;
        return out;
      }
      const key = this.value();
      if (key !== null && typeof key === 'object') throw new NotLiteral();
      this.ws();
      if (this.peek() !== ':') throw new NotLiteral();
      this.i++;
      out[key === true ? 'true' : key === false ? 'false' : String(key)] = this.value();
      this.ws();
      if (this.peek() === ',') this.i++;
      else if (this.peek() !== '}') throw new NotLiteral();
    }
  }
}

/** Ansible's INI `_parse_value`: a Python literal when the text is one, else the text itself. */
export function parseIniValue(text: string): unknown {
  try {
    return new LiteralReader(text).readAll();
  } catch (e) {
    if (e instanceof NotLiteral) return text;
    throw e;
  }
}
