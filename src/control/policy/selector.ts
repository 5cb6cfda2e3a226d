// Calico label selectors: tokenizer, parser, evaluator and canonical form, with Calico's grammar and
// semantics (projectcalico/calico libcalico-go/lib/selector: tokenizer.go, parser.go, ast.go; read to
// learn the behaviour, not copied). What flows through here: selector text from config resources in,
// an immutable AST out; label maps in, booleans out. Control (main) thread only; never on packets.
//
// Grammar (lowest precedence first):
//   or   := and ('||' and)*
//   and  := op ('&&' op)*
//   op   := '!'* ( has(label) | all() | global() | '(' or ')'
//                | label ('==' | '!=' | contains | starts with | ends with) string
//                | label ('in' | 'not in') '{' [string (',' string)* [',']] '}' )
// Semantics worth knowing: `a != 'x'` and `a not in {...}` match an endpoint WITHOUT label `a`; the
// other operators need the label present. `all()`, `global()` and the empty selector match
// everything (global() only means something in a namespaceSelector). Whitespace is space and tab
// only. Strings are single- or double-quoted without escapes. Labels: [A-Za-z0-9_./-]{1,512}.
import { ConfigError } from '../../common/errors.js';

export type Selector =
  | { readonly op: 'all' }
  | { readonly op: 'global' }
  | { readonly op: 'has'; readonly label: string }
  | {
      readonly op: 'eq' | 'ne' | 'contains' | 'starts' | 'ends';
      readonly label: string;
      readonly value: string;
    }
  | { readonly op: 'in' | 'notin'; readonly label: string; readonly values: readonly string[] }
  | { readonly op: 'not'; readonly arg: Selector }
  | { readonly op: 'and' | 'or'; readonly args: readonly Selector[] };

/** Labels as the evaluator reads them: a Map or anything with the same get(). */
export interface Labels {
  get(key: string): string | undefined;
}

/** Calico's tokenizer limit on a label name (tokenizer.MaxLabelLength). */
export const MAX_LABEL_LENGTH = 512;
/** Our limit on parenthesis nesting (Calico has none; it bounds the recursion here). */
export const MAX_SELECTOR_DEPTH = 100;

const enum T {
  Label,
  Str,
  LBrace,
  RBrace,
  Comma,
  Eq,
  Ne,
  In,
  Not,
  NotIn,
  Contains,
  Starts,
  Ends,
  All,
  Has,
  LParen,
  RParen,
  And,
  Or,
  Global,
  EOF,
}

interface Tok {
  k: T;
  v: string;
}

function bad(reason: string): never {
  throw new ConfigError(reason);
}

function identChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || // a-z
    (c >= 65 && c <= 90) || // A-Z
    (c >= 48 && c <= 57) || // 0-9
    c === 95 || // _
    c === 46 || // .
    c === 47 || // /
    c === 45 // -
  );
}

/** Is `s` a valid label name for a selector (Calico's tokenizer.ValidLabel)? */
export function validLabel(s: string): boolean {
  if (s.length === 0 || s.length > MAX_LABEL_LENGTH) return false;
  for (let k = 0; k < s.length; k++) if (!identChar(s.charCodeAt(k))) return false;
  return true;
}

class Lexer {
  pos = 0;
  constructor(readonly s: string) {}

  skipWs(): void {
    const s = this.s;
    while (this.pos < s.length && (s[this.pos] === ' ' || s[this.pos] === '\t')) this.pos++;
  }

  startsWith(word: string): boolean {
    return this.s.startsWith(word, this.pos);
  }

  /** At a word boundary after `end` (end of input or a non-identifier character)? */
  boundary(end: number): boolean {
    return end >= this.s.length || !identChar(this.s.charCodeAt(end));
  }

  /** Consumes `words` separated by optional whitespace ("not in", "notin"), ending at a boundary. */
  cutWords(...words: string[]): boolean {
    let p = this.pos;
    const s = this.s;
    for (const w of words) {
      if (!s.startsWith(w, p)) return false;
      p += w.length;
      while (p < s.length && (s[p] === ' ' || s[p] === '\t')) p++;
    }
    // Calico checks the boundary after the last word (and its trailing whitespace)
    if (!this.boundary(p)) return false;
    this.pos = p;
    return true;
  }

  ident(): string {
    const s = this.s;
    const start = this.pos;
    while (this.pos < s.length && identChar(s.charCodeAt(this.pos))) this.pos++;
    const id = s.slice(start, this.pos);
    if (id.length === 0) bad('expected a label name');
    if (id.length > MAX_LABEL_LENGTH) bad(`label name longer than ${MAX_LABEL_LENGTH} characters`);
    return id;
  }
}

function tokenize(input: string): Tok[] {
  const lx = new Lexer(input);
  const s = input;
  const out: Tok[] = [];
  const push = (k: T, v = ''): void => {
    out.push({ k, v });
  };
  for (;;) {
    lx.skipWs();
    if (lx.pos >= s.length) {
      push(T.EOF);
      return out;
    }
    const last = out.length > 0 ? out[out.length - 1].k : null;
    const c = s[lx.pos];
    switch (c) {
      case '(':
        push(T.LParen);
        lx.pos++;
        continue;
      case ')':
        push(T.RParen);
        lx.pos++;
        continue;
      case '{':
        push(T.LBrace);
        lx.pos++;
        continue;
      case '}':
        push(T.RBrace);
        lx.pos++;
        continue;
      case ',':
        push(T.Comma);
        lx.pos++;
        continue;
      case '"':
      case "'": {
        const end = s.indexOf(c, lx.pos + 1);
        if (end < 0) bad('unterminated string');
        push(T.Str, s.slice(lx.pos + 1, end));
        lx.pos = end + 1;
        continue;
      }
      case '=':
        if (!lx.startsWith('==')) bad('expected ==');
        push(T.Eq);
        lx.pos += 2;
        continue;
      case '!':
        if (lx.startsWith('!=')) {
          push(T.Ne);
          lx.pos += 2;
        } else {
          push(T.Not);
          lx.pos++;
        }
        continue;
      case '&':
        if (!lx.startsWith('&&')) bad('expected &&');
        push(T.And);
        lx.pos += 2;
        continue;
      case '|':
        if (!lx.startsWith('||')) bad('expected ||');
        push(T.Or);
        lx.pos += 2;
        continue;
    }
    if (last === T.Label) {
      // after a label only an operator may follow
      if (lx.cutWords('contains')) push(T.Contains);
      else if (lx.cutWords('starts', 'with')) push(T.Starts);
      else if (lx.cutWords('ends', 'with')) push(T.Ends);
      else if (lx.cutWords('not', 'in')) push(T.NotIn);
      else if (lx.cutWords('in')) push(T.In);
      else bad(`expected an operator after label ${out[out.length - 1].v}`);
      continue;
    }
    if (lx.startsWith('has(')) {
      lx.pos += 4;
      lx.skipWs();
      const id = lx.ident();
      lx.skipWs();
      if (s[lx.pos] !== ')') bad("no closing ')' after has(");
      lx.pos++;
      push(T.Has, id);
      continue;
    }
    if (lx.startsWith('all(') || lx.startsWith('global(')) {
      const global = s[lx.pos] === 'g';
      lx.pos += global ? 7 : 4;
      lx.skipWs();
      if (s[lx.pos] !== ')') bad(`no closing ')' after ${global ? 'global' : 'all'}(`);
      lx.pos++;
      push(global ? T.Global : T.All);
      continue;
    }
    push(T.Label, lx.ident());
  }
}

class Parser {
  private i = 0;
  private depth = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok {
    return this.toks[this.i];
  }

  parseRoot(): Selector {
    if (this.peek().k === T.EOF) return ALL;
    const sel = this.parseOr();
    if (this.peek().k !== T.EOF) bad('unexpected content at the end of the selector');
    return sel;
  }

  private parseOr(): Selector {
    const args = [this.parseAnd()];
    while (this.peek().k === T.Or) {
      this.i++;
      args.push(this.parseAnd());
    }
    return args.length === 1 ? args[0] : { op: 'or', args };
  }

  private parseAnd(): Selector {
    const args = [this.parseOp()];
    while (this.peek().k === T.And) {
      this.i++;
      args.push(this.parseOp());
    }
    return args.length === 1 ? args[0] : { op: 'and', args };
  }

  private parseOp(): Selector {
    let negated = false;
    while (this.peek().k === T.Not) {
      negated = !negated;
      this.i++;
    }
    const t = this.peek();
    let sel: Selector;
    switch (t.k) {
      case T.Has:
        this.i++;
        sel = { op: 'has', label: t.v };
        break;
      case T.All:
        this.i++;
        sel = ALL;
        break;
      case T.Global:
        this.i++;
        sel = GLOBAL;
        break;
      case T.Label:
        sel = this.parseLabelOp(t.v);
        break;
      case T.LParen:
        this.i++;
        if (++this.depth > MAX_SELECTOR_DEPTH) bad(`parentheses nested deeper than ${MAX_SELECTOR_DEPTH}`);
        sel = this.parseOr();
        this.depth--;
        if (this.peek().k !== T.RParen) bad('expected )');
        this.i++;
        break;
      case T.EOF:
        bad('unexpected end of the selector');
        break;
      default:
        bad(`unexpected ${describe(t)}`);
    }
    // !(!x) is x (Calico keeps both negations; dropping them keeps the canonical form idempotent)
    if (!negated) return sel;
    return sel.op === 'not' ? sel.arg : { op: 'not', arg: sel };
  }

  private parseLabelOp(label: string): Selector {
    this.i++;
    const op = this.peek();
    if (op.k === T.EOF) bad(`expected an operator after label ${label}`);
    this.i++;
    const val = this.peek();
    const simple: Partial<Record<T, 'eq' | 'ne' | 'contains' | 'starts' | 'ends'>> = {
      [T.Eq]: 'eq',
      [T.Ne]: 'ne',
      [T.Contains]: 'contains',
      [T.Starts]: 'starts',
      [T.Ends]: 'ends',
    };
    const s = simple[op.k];
    if (s !== undefined) {
      if (val.k !== T.Str) bad(`expected a quoted string after ${label} ${describe(op)}`);
      this.i++;
      return { op: s, label, value: val.v };
    }
    if (op.k === T.In || op.k === T.NotIn) {
      if (val.k !== T.LBrace) bad(`expected a set literal {...} after ${label} ${describe(op)}`);
      this.i++;
      const values: string[] = [];
      while (this.peek().k === T.Str) {
        values.push(this.peek().v);
        this.i++;
        if (this.peek().k !== T.Comma) break;
        this.i++;
      }
      if (this.peek().k !== T.RBrace) bad('expected }');
      this.i++;
      // Calico keeps set literals sorted and de-duplicated (its canonical form shows them so)
      const set = [...new Set(values)].sort(cmpStr);
      return { op: op.k === T.In ? 'in' : 'notin', label, values: set };
    }
    bad(`expected an operator after label ${label}, got ${describe(op)}`);
  }
}

function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function describe(t: Tok): string {
  const names: Record<number, string> = {
    [T.Label]: `label ${t.v}`,
    [T.Str]: `string "${t.v}"`,
    [T.LBrace]: '{',
    [T.RBrace]: '}',
    [T.Comma]: ',',
    [T.Eq]: '==',
    [T.Ne]: '!=',
    [T.In]: 'in',
    [T.Not]: '!',
    [T.NotIn]: 'not in',
    [T.Contains]: 'contains',
    [T.Starts]: 'starts with',
    [T.Ends]: 'ends with',
    [T.All]: 'all()',
    [T.Has]: `has(${t.v})`,
    [T.LParen]: '(',
    [T.RParen]: ')',
    [T.And]: '&&',
    [T.Or]: '||',
    [T.Global]: 'global()',
    [T.EOF]: 'end of selector',
  };
  return names[t.k];
}

const ALL: Selector = Object.freeze({ op: 'all' });
const GLOBAL: Selector = Object.freeze({ op: 'global' });

/**
 * Parses a selector. Throws ConfigError (message: the reason only; callers add resource, field and
 * value) on any malformed input; never anything else.
 */
export function parseSelector(text: string): Selector {
  if (typeof text !== 'string') bad('a selector must be a string');
  return new Parser(tokenize(text)).parseRoot();
}

/** Evaluates a selector against a label set (Calico's semantics for absent labels). */
export function matches(sel: Selector, labels: Labels): boolean {
  switch (sel.op) {
    case 'all':
    case 'global':
      return true;
    case 'has':
      return labels.get(sel.label) !== undefined;
    case 'eq':
      return labels.get(sel.label) === sel.value;
    case 'ne':
      return labels.get(sel.label) !== sel.value;
    case 'contains': {
      const v = labels.get(sel.label);
      return v !== undefined && v.includes(sel.value);
    }
    case 'starts': {
      const v = labels.get(sel.label);
      return v !== undefined && v.startsWith(sel.value);
    }
    case 'ends': {
      const v = labels.get(sel.label);
      return v !== undefined && v.endsWith(sel.value);
    }
    case 'in': {
      const v = labels.get(sel.label);
      return v !== undefined && sel.values.includes(v);
    }
    case 'notin': {
      const v = labels.get(sel.label);
      return v === undefined || !sel.values.includes(v);
    }
    case 'not':
      return !matches(sel.arg, labels);
    case 'and':
      for (const a of sel.args) if (!matches(a, labels)) return false;
      return true;
    case 'or':
      for (const a of sel.args) if (matches(a, labels)) return true;
      return false;
  }
}

function quote(s: string): string {
  return s.includes('"') ? `'${s}'` : `"${s}"`;
}

/**
 * Calico's canonical form (ast.go collectFragments): `a == "b"`, `(x && y)`, `!has(a)`, sorted
 * sets. Two selectors with the same canonical form select the same endpoints; it is the identity of
 * an IP set.
 */
export function canonical(sel: Selector): string {
  switch (sel.op) {
    case 'all':
      return 'all()';
    case 'global':
      return 'global()';
    case 'has':
      return `has(${sel.label})`;
    case 'eq':
      return `${sel.label} == ${quote(sel.value)}`;
    case 'ne':
      return `${sel.label} != ${quote(sel.value)}`;
    case 'contains':
      return `${sel.label} contains ${quote(sel.value)}`;
    case 'starts':
      return `${sel.label} starts with ${quote(sel.value)}`;
    case 'ends':
      return `${sel.label} ends with ${quote(sel.value)}`;
    case 'in':
    case 'notin':
      return `${sel.label} ${sel.op === 'in' ? 'in' : 'not in'} {${sel.values.map(quote).join(', ')}}`;
    case 'not':
      return `!${canonical(sel.arg)}`;
    case 'and':
    case 'or':
      return `(${sel.args.map(canonical).join(sel.op === 'and' ? ' && ' : ' || ')})`;
  }
}

/** True when the selector uses global() anywhere. */
export function usesGlobal(sel: Selector): boolean {
  switch (sel.op) {
    case 'global':
      return true;
    case 'not':
      return usesGlobal(sel.arg);
    case 'and':
    case 'or':
      return sel.args.some(usesGlobal);
    default:
      return false;
  }
}

/**
 * Rewrites every label name with `prefix` (Calico's PrefixVisitor) and, for namespace selectors,
 * all() into has(nsLabel) and global() into !has(nsLabel): how Calico turns a namespaceSelector into
 * a selector over the `pcns.` labels that endpoints inherit from their namespace.
 */
export function prefixSelector(sel: Selector, prefix: string, nsLabel?: string): Selector {
  const rec = (s: Selector): Selector => {
    switch (s.op) {
      case 'all':
        return nsLabel === undefined ? s : { op: 'has', label: nsLabel };
      case 'global':
        return nsLabel === undefined ? s : { op: 'not', arg: { op: 'has', label: nsLabel } };
      case 'has':
        return { op: 'has', label: prefix + s.label };
      case 'eq':
      case 'ne':
      case 'contains':
      case 'starts':
      case 'ends':
        return { op: s.op, label: prefix + s.label, value: s.value };
      case 'in':
      case 'notin':
        return { op: s.op, label: prefix + s.label, values: s.values };
      case 'not':
        return { op: 'not', arg: rec(s.arg) };
      case 'and':
      case 'or':
        return { op: s.op, args: s.args.map(rec) };
    }
  };
  return rec(sel);
}

/** `a && b`, flattening nested ands and dropping all() operands. */
export function andSelectors(...sels: Selector[]): Selector {
  const args: Selector[] = [];
  for (const s of sels) {
    if (s.op === 'all') continue;
    if (s.op === 'and') args.push(...s.args);
    else args.push(s);
  }
  if (args.length === 0) return ALL;
  return args.length === 1 ? args[0] : { op: 'and', args };
}

export const SELECT_ALL: Selector = ALL;
