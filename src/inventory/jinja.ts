/**
 * The Jinja2 expressions of Ansible's `constructed` inventory plugin (`compose`, `groups`,
 * `keyed_groups[].key`), as a small parser and evaluator: nothing is ever `eval`ed.
 *
 * The subset, with Jinja2/Python semantics (ansible-core 2.14, `jinja2_native` off):
 *
 *     names              site, ansible_host            (an undefined name is an error when used, as
 *                                                      Ansible's StrictUndefined; `a.b` of an undefined
 *                                                      `a` stays undefined, so `default` catches it)
 *     access             a.b   a['b']   a[0]   a.0      (no negative literals: `-` is not in the subset)
 *     literals           'x' "x"  1  1.5  true/false/True/False  none/None  [1, 'a']
 *     comparisons        ==  !=  <  >  <=  >=  in  not in   (chained as in Python: a < b < c)
 *     logic              and  or  not  ( … )            (`and`/`or` return an operand, as Python)
 *     concatenation      a ~ b                          (each side as Python's str())
 *     filters            default(v[, true]) / d, lower, upper, string, int([default]), length / count
 *
 * Anything else (arithmetic, `is` tests, other filters, calls, `{{ }}` inside an expression, a
 * variable whose value is itself a template, a Python method name such as `a.keys`, an undefined
 * variable inside a list literal) is an `ExpressionError`, never a guess.
 *
 * What a compose expression gives is what Ansible's templar gives: a bare defined variable keeps its
 * value (a number stays a number); anything else is rendered to text and turned back into a list,
 * dict or boolean when the text looks like one (`ast.literal_eval`), so `n | int` is the string "5"
 * and `n == 5` is `true`.
 */

/** An expression outside the subset, or a syntax error: always fatal, whatever `strict` says. */
export class ExpressionError extends Error {}

/** A failure while evaluating (an undefined variable, a Python TypeError): fatal only with `strict`. */
export class EvaluationError extends Error {}

/** A Python float written as a literal (`2.0`), to render as Python does. Numbers read from YAML are ints when whole. */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Jinja2's undefined: carries the name for the message. */
class Undefined {
  constructor(readonly name: string) {}
}

type Cmp = '==' | '!=' | '<' | '>' | '<=' | '>=' | 'in' | 'not in';

export type Expr =
  | {readonly k: 'lit'; readonly v: unknown}
  | {readonly k: 'var'; readonly name: string}
  | {readonly k: 'list'; readonly items: readonly Expr[]}
  | {readonly k: 'attr'; readonly obj: Expr; readonly name: string}
  | {readonly k: 'item'; readonly obj: Expr; readonly index: Expr}
  | {readonly k: 'filter'; readonly name: string; readonly arg: Expr; readonly args: readonly Expr[]}
  | {readonly k: 'not'; readonly e: Expr}
  | {readonly k: 'and' | 'or'; readonly a: Expr; readonly b: Expr}
  | {readonly k: 'cmp'; readonly first: Expr; readonly rest: ReadonlyArray<readonly [Cmp, Expr]>}
  | {readonly k: 'concat'; readonly parts: readonly Expr[]};

// ---------------------------------------------------------------------------------------------------
// Tokens and parser

type Tok = {t: 'name'; v: string} | {t: 'str'; v: string} | {t: 'num'; v: number | PyFloat} | {t: 'op'; v: string} | {t: 'end'};

const OPS = ['==', '!=', '<=', '>=', '<', '>', '(', ')', '[', ']', '.', ',', '|', '~'];
const UNSUPPORTED_OPS: Record<string, string> = {
  '+': 'arithmetic', '-': 'arithmetic', '*': 'arithmetic', '/': 'arithmetic', '%': 'arithmetic',
  '{': 'dict literals and {{ }}', '}': 'dict literals and {{ }}', ':': 'slices', '=': 'keyword arguments',
};
const STRING_ESCAPES: Record<string, string> = {'\\': '\\', "'": "'", '"': '"', n: '\n', t: '\t', r: '\r'};

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (name) {
      toks.push({t: 'name', v: name[0]});
      i += name[0].length;
      continue;
    }
    const num = /^\d[\d_]*(\.\d[\d_]*)?([eE][+-]?\d+)?/.exec(src.slice(i));
    if (num) {
      const text = num[0].replace(/_/g, '');
      const v = Number(text);
      toks.push({t: 'num', v: num[1] || num[2] ? new PyFloat(v) : v});
      i += num[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let out = '';
      let j = i + 1;
      for (; j < src.length && src[j] !== c; j++) {
        if (src[j] === '\\') {
          const e = src[j + 1] ?? '';
          const hex = /^(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4})/.exec(src.slice(j + 1));
          if (hex) {
            out += String.fromCharCode(parseInt(hex[0].slice(1), 16));
            j += hex[0].length;
          } else if (e in STRING_ESCAPES) {
            out += STRING_ESCAPES[e];
            j++;
          } else throw new ExpressionError(`the escape \\${e} in a string is not supported`);
        } else out += src[j];
      }
      if (j >= src.length) throw new ExpressionError('a string is not closed');
      toks.push({t: 'str', v: out});
      i = j + 1;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op) {
      toks.push({t: 'op', v: op});
      i += op.length;
      continue;
    }
    const what = UNSUPPORTED_OPS[c];
    throw new ExpressionError(what ? `'${c}' (${what}) is not supported` : `unexpected character '${c}'`);
  }
  toks.push({t: 'end'});
  return toks;
}

const FILTERS: Record<string, {min: number; max: number}> = {
  default: {min: 0, max: 2}, d: {min: 0, max: 2}, lower: {min: 0, max: 0}, upper: {min: 0, max: 0},
  string: {min: 0, max: 0}, int: {min: 0, max: 1}, length: {min: 0, max: 0}, count: {min: 0, max: 0},
};
const CONSTANTS: Record<string, unknown> = {true: true, True: true, false: false, False: false, none: null, None: null};

class Parser {
  private i = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.i]!;
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }
  private isName(v: string): boolean {
    const t = this.peek();
    return t.t === 'name' && t.v === v;
  }
  private expectOp(v: string): void {
    if (!this.isOp(v)) throw new ExpressionError(`expected '${v}', found ${describe(this.peek())}`);
    this.i++;
  }

  whole(): Expr {
    const e = this.or();
    if (this.peek().t !== 'end') {
      const t = this.peek();
      if (t.t === 'name' && t.v === 'is') throw new ExpressionError("tests ('is …') are not supported");
      if (t.t === 'name' && t.v === 'if') throw new ExpressionError("conditional expressions ('a if b else c') are not supported");
      throw new ExpressionError(`unexpected ${describe(t)}`);
    }
    return e;
  }

  private or(): Expr {
    let a = this.and();
    while (this.isName('or')) {
      this.i++;
      a = {k: 'or', a, b: this.and()};
    }
    return a;
  }
  private and(): Expr {
    let a = this.not();
    while (this.isName('and')) {
      this.i++;
      a = {k: 'and', a, b: this.not()};
    }
    return a;
  }
  private not(): Expr {
    if (this.isName('not')) {
      this.i++;
      return {k: 'not', e: this.not()};
    }
    return this.compare();
  }
  private compare(): Expr {
    const first = this.concat();
    const rest: Array<[Cmp, Expr]> = [];
    for (;;) {
      const t = this.peek();
      if (t.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(t.v)) {
        this.i++;
        rest.push([t.v as Cmp, this.concat()]);
      } else if (this.isName('in')) {
        this.i++;
        rest.push(['in', this.concat()]);
      } else if (this.isName('not') && this.toks[this.i + 1]?.t === 'name' && (this.toks[this.i + 1] as {v: string}).v === 'in') {
        this.i += 2;
        rest.push(['not in', this.concat()]);
      } else break;
    }
    return rest.length === 0 ? first : {k: 'cmp', first, rest};
  }
  private concat(): Expr {
    const parts = [this.unary()];
    while (this.isOp('~')) {
      this.i++;
      parts.push(this.unary());
    }
    return parts.length === 1 ? parts[0]! : {k: 'concat', parts};
  }
  private unary(): Expr {
    let e = this.postfix(this.primary());
    while (this.isOp('|')) {
      this.i++;
      const t = this.peek();
      if (t.t !== 'name') throw new ExpressionError(`expected a filter name after '|', found ${describe(t)}`);
      this.i++;
      const spec = FILTERS[t.v];
      if (!spec) throw new ExpressionError(`the filter '${t.v}' is not supported (supported: default, lower, upper, string, int, length)`);
      const args: Expr[] = [];
      if (this.isOp('(')) {
        this.i++;
        while (!this.isOp(')')) {
          args.push(this.or());
          if (!this.isOp(',')) break;
          this.i++;
        }
        this.expectOp(')');
      }
      if (args.length < spec.min || args.length > spec.max) throw new ExpressionError(`the filter '${t.v}' takes at most ${spec.max} argument(s) here`);
      e = {k: 'filter', name: t.v === 'd' ? 'default' : t.v === 'count' ? 'length' : t.v, arg: e, args};
    }
    return e;
  }
  private postfix(e: Expr): Expr {
    for (;;) {
      if (this.isOp('.')) {
        this.i++;
        const t = this.peek();
        if (t.t === 'name') e = {k: 'attr', obj: e, name: t.v};
        else if (t.t === 'num' && typeof t.v === 'number') e = {k: 'item', obj: e, index: {k: 'lit', v: t.v}};
        else throw new ExpressionError(`expected a name after '.', found ${describe(t)}`);
        this.i++;
      } else if (this.isOp('[')) {
        this.i++;
        const index = this.or();
        this.expectOp(']');
        e = {k: 'item', obj: e, index};
      } else if (this.isOp('(')) {
        throw new ExpressionError('calls are not supported');
      } else return e;
    }
  }
  private primary(): Expr {
    const t = this.peek();
    this.i++;
    if (t.t === 'str') {
      // adjacent strings are one, as in Python and Jinja2
      let v = t.v;
      while (this.peek().t === 'str') v += (this.toks[this.i++] as {v: string}).v;
      return {k: 'lit', v};
    }
    if (t.t === 'num') return {k: 'lit', v: t.v};
    if (t.t === 'name') {
      if (t.v in CONSTANTS) return {k: 'lit', v: CONSTANTS[t.v]};
      if (['and', 'or', 'not', 'in', 'is', 'if', 'else'].includes(t.v)) throw new ExpressionError(`unexpected '${t.v}'`);
      return {k: 'var', name: t.v};
    }
    if (t.t === 'op' && t.v === '(') {
      const e = this.or();
      if (this.isOp(',')) throw new ExpressionError('tuples are not supported');
      this.expectOp(')');
      return e;
    }
    if (t.t === 'op' && t.v === '[') {
      const items: Expr[] = [];
      while (!this.isOp(']')) {
        items.push(this.or());
        if (!this.isOp(',')) break;
        this.i++;
      }
      this.expectOp(']');
      return {k: 'list', items};
    }
    throw new ExpressionError(`unexpected ${describe(t)}`);
  }
}

function describe(t: Tok): string {
  if (t.t === 'end') return 'the end of the expression';
  if (t.t === 'str') return 'a string';
  if (t.t === 'num') return 'a number';
  return `'${t.v}'`;
}

/** Parses an expression of the subset; an `ExpressionError` for anything outside it. */
export function parseExpression(src: string): Expr {
  if (/\{\{|\{%|\}\}|%\}/.test(src)) throw new ExpressionError('write the bare expression, without {{ }} or {% %}');
  if (src.trim() === '') throw new ExpressionError('the expression is empty');
  return new Parser(tokenize(src)).whole();
}

// ---------------------------------------------------------------------------------------------------
// Python values

function isDict(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof PyFloat) && !(v instanceof Undefined);
}

function numeric(v: unknown): number | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (v instanceof PyFloat) return v.value;
  return undefined;
}

function typeName(v: unknown): string {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (v instanceof PyFloat) return 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

function fail(v: Undefined): never {
  throw new EvaluationError(`'${v.name}' is undefined`);
}

/** Python's repr() of a float. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e') as [string, string];
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace(/^-/, '').replace('.', '');
  let out: string;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const intPart = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
      const frac = digits.slice(exp + 1);
      out = `${intPart}.${frac || '0'}`;
    } else out = `0.${'0'.repeat(-exp - 1)}${digits}`;
  } else {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    out = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  return neg ? `-${out}` : out;
}

const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Cs}]|(?! )\p{Zs}/u;

/** Python's repr() of a str. */
export function pyStrRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += `\\${q}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (NON_PRINTABLE.test(ch)) {
      out += cp <= 0xff ? `\\x${cp.toString(16).padStart(2, '0')}` : cp <= 0xffff ? `\\u${cp.toString(16).padStart(4, '0')}` : `\\U${cp.toString(16).padStart(8, '0')}`;
    } else out += ch;
  }
  return out + q;
}

function pyRepr(v: unknown): string {
  return typeof v === 'string' ? pyStrRepr(v) : pyStr(v);
}

/** Python's str() of a value (lists and dicts as their repr). */
export function pyStr(v: unknown): string {
  if (v instanceof Undefined) fail(v);
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? (Math.abs(v) < 1e21 ? v.toFixed(0) : BigInt(v).toString()) : pyFloatRepr(v);
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
}

/** Python truthiness; an undefined value fails, as Ansible's StrictUndefined. */
export function truthy(v: unknown): boolean {
  if (v instanceof Undefined) fail(v);
  if (v === null || v === undefined) return false;
  const n = numeric(v);
  if (n !== undefined) return n !== 0;
  if (typeof v === 'string') return v.length > 0;
  if (Array.isArray(v)) return v.length > 0;
  return Object.keys(v as object).length > 0;
}

function pyEq(a: unknown, b: unknown): boolean {
  if (a instanceof Undefined) fail(a);
  if (b instanceof Undefined) fail(b);
  const na = numeric(a);
  const nb = numeric(b);
  if (na !== undefined || nb !== undefined) return na === nb;
  if (a === null || b === null) return a === b;
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => pyEq(x, b[i]));
  }
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as object, k) && pyEq((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

function codePointCompare(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

/** Python's ordering (`<`): numbers, strings, lists; anything else is a TypeError. */
function pyOrder(a: unknown, b: unknown, op: string): number {
  if (a instanceof Undefined) fail(a);
  if (b instanceof Undefined) fail(b);
  const na = numeric(a);
  const nb = numeric(b);
  if (na !== undefined && nb !== undefined) return na < nb ? -1 : na > nb ? 1 : 0;
  if (typeof a === 'string' && typeof b === 'string') return codePointCompare(a, b);
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) if (!pyEq(a[i], b[i])) return pyOrder(a[i], b[i], op);
    return a.length - b.length;
  }
  throw new EvaluationError(`'${op}' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

function pyIn(needle: unknown, hay: unknown): boolean {
  if (needle instanceof Undefined) fail(needle);
  if (hay instanceof Undefined) fail(hay);
  if (typeof hay === 'string') {
    if (typeof needle !== 'string') throw new EvaluationError(`'in <string>' requires string as left operand, not ${typeName(needle)}`);
    return hay.includes(needle);
  }
  if (Array.isArray(hay)) return hay.some((x) => pyEq(x, needle));
  if (isDict(hay)) {
    if (Array.isArray(needle) || isDict(needle)) throw new EvaluationError(`unhashable type: '${typeName(needle)}'`);
    return typeof needle === 'string' && Object.hasOwn(hay, needle);
  }
  throw new EvaluationError(`argument of type '${typeName(hay)}' is not iterable`);
}

const STR_METHODS = 'capitalize casefold center count encode endswith expandtabs find format format_map index isalnum isalpha isascii isdecimal isdigit isidentifier islower isnumeric isprintable isspace istitle isupper join ljust lower lstrip maketrans partition removeprefix removesuffix replace rfind rindex rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title translate upper zfill';
const METHODS: Record<string, Set<string>> = {
  str: new Set(STR_METHODS.split(' ')),
  list: new Set('append clear copy count extend index insert pop remove reverse sort'.split(' ')),
  dict: new Set('clear copy fromkeys get items keys pop popitem setdefault update values'.split(' ')),
  int: new Set('as_integer_ratio bit_count bit_length conjugate denominator from_bytes imag numerator real to_bytes'.split(' ')),
};

function methodOf(obj: unknown, name: string): void {
  const type = typeName(obj);
  const methods = METHODS[type === 'bool' || type === 'float' ? 'int' : type];
  if (methods?.has(name)) throw new ExpressionError(`'.${name}' names a Python method of a ${type}, which is not supported`);
}

function getItem(obj: unknown, key: unknown, what: string): unknown {
  if (obj instanceof Undefined) return new Undefined(what);
  if (key instanceof Undefined) fail(key);
  const n = typeof key === 'boolean' ? (key ? 1 : 0) : typeof key === 'number' && Number.isInteger(key) ? key : undefined;
  if (isDict(obj)) {
    const k = typeof key === 'string' ? key : n !== undefined ? String(n) : undefined;
    if (k !== undefined && Object.hasOwn(obj, k)) return obj[k];
    if (typeof key === 'string') methodOf(obj, key);
    return new Undefined(what);
  }
  if (Array.isArray(obj) || typeof obj === 'string') {
    if (n !== undefined) {
      const seq = Array.isArray(obj) ? obj : [...obj];
      const i = n < 0 ? seq.length + n : n;
      return i >= 0 && i < seq.length ? seq[i] : new Undefined(what);
    }
    if (typeof key === 'string') methodOf(obj, key);
    return new Undefined(what);
  }
  if (typeof key === 'string') methodOf(obj, key);
  return new Undefined(what);
}

function hasTemplate(v: unknown): boolean {
  if (typeof v === 'string') return /\{\{|\{%|\{#/.test(v);
  if (Array.isArray(v)) return v.some(hasTemplate);
  if (isDict(v)) return Object.values(v).some(hasTemplate);
  return false;
}

/** Python's float() of a string, or undefined when it is not one. */
function pyFloatOf(s: string): number | undefined {
  const t = s.trim().replace(/(\d)_(?=\d)/g, '$1');
  if (/^[+-]?(inf|infinity)$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/i.test(t)) return NaN;
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  return undefined;
}

/** Jinja2's `int` filter: int(value), else int(float(value)), else the default. */
function pyInt(v: unknown, dflt: unknown): unknown {
  if (v instanceof Undefined) fail(v);
  const fromFloat = (x: number): number => {
    if (!Number.isFinite(x)) {
      if (Number.isNaN(x)) throw new ValueErr();
      throw new EvaluationError('cannot convert float infinity to integer');
    }
    return Math.trunc(x) + 0;
  };
  try {
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'number') return fromFloat(v);
    if (v instanceof PyFloat) return fromFloat(v.value);
    if (typeof v === 'string') {
      const t = v.trim();
      if (/^[+-]?\d+(_\d+)*$/.test(t)) return Number(t.replace(/_/g, ''));
      const f = pyFloatOf(v);
      if (f === undefined) throw new ValueErr();
      return fromFloat(f);
    }
    throw new ValueErr();
  } catch (e) {
    if (e instanceof ValueErr) return dflt;
    throw e;
  }
}
class ValueErr extends Error {}

/** The variables an expression reads. */
export type Scope = Readonly<Record<string, unknown>>;

function evaluate(e: Expr, vars: Scope): unknown {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'var': {
      if (!Object.hasOwn(vars, e.name)) return new Undefined(e.name);
      const v = vars[e.name];
      if (hasTemplate(v)) throw new ExpressionError(`the variable '${e.name}' holds a Jinja2 template, which provision does not evaluate`);
      return v;
    }
    case 'list':
      return e.items.map((x) => {
        const v = evaluate(x, vars);
        // Ansible renders it as "AnsibleUndefined(…)" inside the list's text: not imitated
        if (v instanceof Undefined) throw new ExpressionError(`'${v.name}' is undefined inside a list literal, which is not supported`);
        return v;
      });
    case 'attr': {
      const obj = evaluate(e.obj, vars);
      if (obj === null) return new Undefined(e.name);
      return getItem(obj, e.name, e.name);
    }
    case 'item':
      return getItem(evaluate(e.obj, vars), evaluate(e.index, vars), 'item');
    case 'not':
      return !truthy(evaluate(e.e, vars));
    case 'and': {
      const a = evaluate(e.a, vars);
      return truthy(a) ? evaluate(e.b, vars) : a;
    }
    case 'or': {
      const a = evaluate(e.a, vars);
      return truthy(a) ? a : evaluate(e.b, vars);
    }
    case 'cmp': {
      let left = evaluate(e.first, vars);
      for (const [op, rightExpr] of e.rest) {
        const right = evaluate(rightExpr, vars);
        let ok: boolean;
        if (op === '==') ok = pyEq(left, right);
        else if (op === '!=') ok = !pyEq(left, right);
        else if (op === 'in') ok = pyIn(left, right);
        else if (op === 'not in') ok = !pyIn(left, right);
        else {
          const c = pyOrder(left, right, op);
          ok = op === '<' ? c < 0 : op === '>' ? c > 0 : op === '<=' ? c <= 0 : c >= 0;
        }
        if (!ok) return false;
        left = right;
      }
      return true;
    }
    case 'concat':
      return e.parts.map((p) => pyStr(evaluate(p, vars))).join('');
    case 'filter': {
      const v = evaluate(e.arg, vars);
      const args = e.args.map((a) => evaluate(a, vars));
      switch (e.name) {
        case 'default': {
          const useDefault = v instanceof Undefined || (args[1] !== undefined && truthy(args[1]) && !truthy(v));
          return useDefault ? (args[0] ?? '') : v;
        }
        case 'lower':
          return pyStr(v).toLowerCase();
        case 'upper':
          return pyStr(v).toUpperCase();
        case 'string':
          return pyStr(v);
        case 'int':
          return pyInt(v, args[0] ?? 0);
        case 'length': {
          if (v instanceof Undefined) fail(v);
          if (typeof v === 'string') return [...v].length;
          if (Array.isArray(v)) return v.length;
          if (isDict(v)) return Object.keys(v).length;
          throw new EvaluationError(`object of type '${typeName(v)}' has no len()`);
        }
      }
      throw new ExpressionError(`the filter '${e.name}' is not supported`);
    }
  }
}

/** Is the value of `e` the text of a `string` filter (directly, or through `default`, `and`, `or`, which return an operand)? */
function nativeText(e: Expr, vars: Scope): boolean {
  if (e.k === 'filter' && e.name === 'string') return true;
  if (e.k === 'filter' && e.name === 'default') {
    const v = evaluate(e.arg, vars);
    const args = e.args.map((a) => evaluate(a, vars));
    const useDefault = v instanceof Undefined || (args[1] !== undefined && truthy(args[1]) && !truthy(v));
    return useDefault ? e.args[0] !== undefined && nativeText(e.args[0], vars) : nativeText(e.arg, vars);
  }
  if (e.k === 'and' || e.k === 'or') {
    const a = truthy(evaluate(e.a, vars));
    return (e.k === 'and') === a ? nativeText(e.b, vars) : nativeText(e.a, vars);
  }
  return false;
}

/** The truth of a condition (`groups:`), as `{% if … %}`. */
export function evaluateCondition(e: Expr, vars: Scope): boolean {
  return truthy(evaluate(e, vars));
}

function plain(v: unknown): unknown {
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  if (isDict(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/**
 * The value of `{{ expr }}` as Ansible's templar gives it: a bare defined variable as it is (None as
 * null); otherwise the text, made a list, dict or boolean again when it reads as one.
 */
export function evaluateTemplate(e: Expr, vars: Scope): unknown {
  if (e.k === 'var' && Object.hasOwn(vars, e.name)) {
    const v = vars[e.name];
    if (v === null || typeof v === 'boolean' || typeof v === 'number') return v;
  }
  const v = evaluate(e, vars);
  if (v instanceof Undefined) fail(v);
  // the `string` filter's text is kept as text (Ansible's STRING_TYPE_FILTERS give NativeJinjaText)
  if (typeof v === 'string' && nativeText(e, vars)) return v;
  if (Array.isArray(v) || isDict(v)) return plain(v);
  const text = v === null ? '' : pyStr(v);
  if (text.startsWith('{') || text.startsWith('[') || text === 'True' || text === 'False') {
    const lit = literalEval(text);
    if (lit.ok) return lit.value;
  }
  return text;
}

// ---------------------------------------------------------------------------------------------------
// ast.literal_eval (after Ansible's Json2Python: true/false/null are names for True/False/None)

type Lit = {ok: true; value: unknown} | {ok: false};

/** Python's `ast.literal_eval` for str, int, float, bool, None, list, tuple, dict; anything else fails. */
export function literalEval(text: string): Lit {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && /[ \t\f\r\n]/.test(text[i]!)) i++;
  };
  const bad = (): never => {
    throw new ValueErr();
  };
  const str = (): string => {
    const q = text[i]!;
    if (text.startsWith(q.repeat(3), i)) bad();
    i++;
    let out = '';
    while (i < text.length && text[i] !== q) {
      const c = text[i]!;
      if (c === '\n') bad();
      if (c !== '\\') {
        out += c;
        i++;
        continue;
      }
      const e = text[i + 1];
      if (e === undefined) bad();
      const simple: Record<string, string> = {'\\': '\\', "'": "'", '"': '"', a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\n': ''};
      if (e! in simple) {
        out += simple[e!];
        i += 2;
        continue;
      }
      const hex = /^(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})/.exec(text.slice(i + 1));
      if (hex) {
        const cp = parseInt(hex[0].slice(1), 16);
        if (cp > 0x10ffff) bad();
        out += String.fromCodePoint(cp);
        i += 1 + hex[0].length;
        continue;
      }
      const oct = /^[0-7]{1,3}/.exec(text.slice(i + 1));
      if (oct) {
        out += String.fromCodePoint(parseInt(oct[0], 8));
        i += 1 + oct[0].length;
        continue;
      }
      if (e === 'N' || e === 'x' || e === 'u' || e === 'U') bad();
      out += '\\';
      i++;
    }
    if (i >= text.length) bad();
    i++;
    return out;
  };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === undefined) bad();
    if (c === "'" || c === '"') {
      let s = str();
      for (;;) {
        ws();
        if (text[i] === "'" || text[i] === '"') s += str();
        else return s;
      }
    }
    if (c === '[' || c === '(') {
      const close = c === '[' ? ']' : ')';
      i++;
      const items: unknown[] = [];
      for (;;) {
        ws();
        if (text[i] === close) break;
        items.push(value());
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== close) bad();
        else if (c === '(' && items.length === 1) bad(); // (x) is not a tuple; keep it simple
      }
      i++;
      return items;
    }
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      for (;;) {
        ws();
        if (text[i] === '}') break;
        const k = value();
        if (Array.isArray(k) || isDict(k)) bad();
        ws();
        if (text[i] !== ':') bad();
        i++;
        const v = value();
        // json.dumps's keys: True → "true", None → "null", numbers as Python writes them
        const key = typeof k === 'string' ? k : k === null ? 'null' : typeof k === 'boolean' ? String(k) : pyStr(k);
        Object.defineProperty(out, key, {value: v, enumerable: true, writable: true, configurable: true});
        ws();
        if (text[i] === ',') i++;
        else if (text[i] !== '}') bad();
      }
      i++;
      return out;
    }
    const m = /^[+-]?\s*(0[xX][0-9a-fA-F_]+|0[oO][0-7_]+|0[bB][01_]+|(\d[\d_]*)?(\.[\d_]*)?([eE][+-]?\d+)?)/.exec(text.slice(i));
    const name = /^[A-Za-z_]\w*/.exec(text.slice(i));
    if (name) {
      const consts: Record<string, unknown> = {True: true, False: false, None: null, true: true, false: false, null: null};
      if (!(name[0] in consts)) bad();
      i += name[0].length;
      return consts[name[0]];
    }
    if (m && m[0].replace(/^[+-]?\s*/, '') !== '' && m[0].replace(/^[+-]?\s*/, '') !== '.') {
      const raw = m[0];
      i += raw.length;
      if (/^[jJ]/.test(text.slice(i))) bad();
      const neg = raw.trimStart().startsWith('-');
      const body = raw.replace(/^[+-]?\s*/, '').replace(/_/g, '');
      let n: number | PyFloat;
      if (/^0[xXoObB]/.test(body)) n = Number(body);
      else if (/[.eE]/.test(body)) n = new PyFloat(Number(body));
      else {
        if (/^0\d/.test(body) && /[1-9]/.test(body)) bad();
        n = Number(body);
      }
      if (n instanceof PyFloat) return new PyFloat(neg ? -n.value : n.value);
      return neg ? -n : n;
    }
    return bad();
  };
  try {
    const v = value();
    ws();
    if (i !== text.length) return {ok: false};
    return {ok: true, value: plain(v)};
  } catch (e) {
    if (e instanceof ValueErr) return {ok: false};
    throw e;
  }
}

/** Python 3's `\w`, as in Ansible's INVALID_VARIABLE_NAMES (`^[\d\W]|[^\w]`). */
const WORD = /[\p{L}\p{N}_]/u;
const DIGIT = /\p{Nd}/u;

/** Ansible's `to_safe_group_name` (force): each invalid character, and a leading digit, becomes `_`. */
export function toSafeGroupName(name: string): string {
  let out = '';
  let first = true;
  for (const ch of name) {
    out += !WORD.test(ch) || (first && DIGIT.test(ch)) ? '_' : ch;
    first = false;
  }
  return out;
}
