// Selector parser and evaluator against Calico's own vectors (libcalico-go/lib/selector/parser
// parser_test.go and tokenizer/tokenizer_test.go: the same inputs and expected outcomes), plus a
// property test: the parser only returns a selector or throws ConfigError, and canonical forms
// re-parse to the same canonical form and the same verdicts.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { ConfigError } from '../../src/common/errors.js';
import {
  canonical,
  matches,
  parseSelector,
  prefixSelector,
  MAX_SELECTOR_DEPTH,
} from '../../src/control/policy/selector.js';

type L = Record<string, string>;
const lab = (o: L) => new Map(Object.entries(o));

// [selector, labels that match, labels that do not] — parser_test.go selectorTests
const VECTORS: [string, L[], L[]][] = [
  [`a == "b"`, [{ a: 'b' }, { a: 'b', c: 'd' }], [{}, { a: 'c' }, { c: 'd' }]],
  [
    `a == "b" && c == "d"`,
    [{ a: 'b', c: 'd' }],
    [{}, { a: 'b', c: 'e' }, { a: 'c', c: 'd' }, { c: 'd' }, { a: 'b' }],
  ],
  [
    `a == "b" || c == "d"`,
    [{ a: 'b', c: 'd' }, { a: 'b' }, { c: 'd' }],
    [{}, { a: 'e', c: 'e' }, { c: 'e' }, { a: 'e' }],
  ],
  [`a in {"'", '"', "c"}`, [{ a: 'c' }, { a: '"' }, { a: "'" }], [{}, { a: 'e' }]],
  [`a not in {"'", '"', "c"}`, [{}, { a: 'e' }], [{ a: 'c' }, { a: '"' }, { a: "'" }]],
  [`a == 'a'`, [{ a: 'a' }], []],
  [`a == "a"`, [{ a: 'a' }], []],
  [`a != "b"`, [{ a: 'a' }], []],
  [`a != "a"`, [{}], []],
  [`a contains "a"`, [{ a: 'a' }, { a: 'bab' }, { a: 'aaa', b: 'c' }], [{}, { a: 'b' }, { b: 'aaa' }]],
  [
    `a starts with "a"`,
    [{ a: 'a' }, { a: 'abb' }, { a: 'aaa', b: 'c' }],
    [{}, { a: 'b' }, { a: 'baa' }, { b: 'aaa' }],
  ],
  [
    `a ends with "a"`,
    [{ a: 'a' }, { a: 'bba' }, { a: 'aaa', b: 'c' }],
    [{}, { a: 'b' }, { a: 'aab' }, { b: 'aaa' }],
  ],
  [`a in {"a"}`, [{ a: 'a' }], []],
  [`!a in {"a"}`, [{ a: 'b' }], []],
  [`a in {"a", "b"}`, [{ a: 'a' }], []],
  [`a in {"a", "b"}`, [{ a: 'b' }], []],
  [`a not in {"d", "e"}`, [{ a: 'a' }], []],
  [`has(a)`, [{ a: 'b' }], []],
  [`!has(a)`, [{ b: 'b' }], []],
  [``, [{}], []],
  [` `, [{}], []],
  [``, [{ a: 'b' }], []],
  [`all()`, [{}], []],
  [` all()`, [{}], []],
  [` all()`, [{ a: 'b' }], []],
  [`global()`, [{}], []],
  [` global()`, [{}], []],
  [` global()`, [{ a: 'b' }], []],
  [`a == 'a'`, [], [{ a: 'b' }]],
  [`a == 'a'`, [], [{}]],
  [`a != "a"`, [], [{ a: 'a' }]],
  [`a != 'a'`, [], [{ a: 'a' }]],
  [`a in {"a"}`, [], [{ a: 'b' }]],
  [`a not in {"a"}`, [], [{ a: 'a' }]],
  [`a in {"a", "b"}`, [], [{ a: 'c' }]],
  [`has(b)`, [], [{ a: 'b' }]],
  [`!!has(b)`, [], [{ a: 'b' }]],
  [`! has(a)`, [], [{ a: 'b' }]],
  [`!has(a)`, [], [{ a: 'b' }]],
  [`!!! has(a)`, [], [{ a: 'b' }]],
  [`!!!has(a)`, [], [{ a: 'b' }]],
  [`!! ! has(a)`, [], [{ a: 'b' }]],
  [`! !!has(a)`, [], [{ a: 'b' }]],
  [`a == 'a1' && b == 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a == 'a1' && b != 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`a != 'a1' && b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`a != 'a1' && b != 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`a != 'a1' && !b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`!a == 'a1' && b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`has(a) && !has(b)`, [{ a: 'a' }], []],
  [`!has(b) && has(a)`, [{ a: 'a' }], []],
  [`!(!has(a) || has(b))`, [{ a: 'a' }], []],
  [`!(has(b) || !has(a))`, [{ a: 'a' }], []],
  [`a == 'a1' || b == 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a == 'a1' || b != 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a != 'a1' || b == 'b1'`, [{ a: 'a1', b: 'b1' }], []],
  [`a != 'a1' || b != 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  [`! a == 'a1' || ! b == 'b1'`, [], [{ a: 'a1', b: 'b1' }]],
  // tokenizer_test.go inputs that parse
  [
    `calico/k8s_ns == "kube-system" && k8s-app == "kube-dns"`,
    [{ 'calico/k8s_ns': 'kube-system', 'k8s-app': 'kube-dns' }],
    [{ 'k8s-app': 'kube-dns' }],
  ],
  [`has(calico/k8s_NS-.1/role)`, [{ 'calico/k8s_NS-.1/role': '' }], [{}]],
  [`contains contains 'contains'`, [{ contains: 'xcontainsx' }], [{ contains: 'x' }]],
  [`startswith starts with "value"`, [{ startswith: 'values' }], [{ startswith: 'x' }]],
  [`label starts  with "value"`, [{ label: 'value1' }], []],
  [`a not in {}`, [{ a: 'x' }, {}], []],
  [`a in {}`, [], [{ a: '' }, {}]],
  [`a notin{"a"}&&has( b )`, [{ a: 'x', b: '' }], [{ a: 'a', b: '' }]],
  // precedence: && binds tighter than ||
  [`a == "1" || b == "1" && c == "1"`, [{ a: '1' }, { b: '1', c: '1' }], [{ b: '1' }]],
  [`(a == "1" || b == "1") && c == "1"`, [{ a: '1', c: '1' }], [{ a: '1' }]],
];

// parser_test.go badSelectors and tokenizer_test.go inputs that must fail
const BAD = [
  'b == b',
  'b contains b',
  'b starts with b',
  'b ends with b',
  "'b1' == b",
  'b',
  'a b',
  '!',
  `foo == "bar" &`,
  `foo == "bar" |`,
  `foo != ||`,
  `foo in {"", ||`,
  `foo in ""`,
  `"FOO`,
  `"FOO'`,
  `'FOO`,
  `(`,
  `(a == "foo"`,
  `)`,
  `()`,
  `%`,
  `a == "b" && %`,
  `a == "b" || %`,
  `a `,
  `has(foo) &&`,
  'a'.repeat(513) + ` == "value"`,
  `label == "value`,
  `label = "value"`,
  `all(`,
  `global(`,
  `has()`,
  `has(foo`,
  `has( foo `,
  `a == "b" & has(foo)`,
  `a == "b" | has(foo)`,
  `label starts foo "value"`,
  `label inf "value"`,
  `label ends foo "value"`,
  `label ends withs "value"`,
  `label squiggles "value"`,
  'a == "b"\n', // newline is not whitespace to Calico's tokenizer
];

// parser_test.go canonicalisationTests
const CANON: [string, string][] = [
  ['', 'all()'],
  [' all() ', 'all()'],
  [' (all() )', 'all()'],
  ['! (has( b)||! has(a ))', '!(has(b) || !has(a))'],
  ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'],
  [`a == "'"`, `a == "'"`],
  [`a == '"'`, `a == '"'`],
  [`a contains '"'`, `a contains '"'`],
  [`a contains "'"`, `a contains "'"`],
  [`a startswith '"'`, `a starts with '"'`],
  [`a endswith "'"`, `a ends with "'"`],
  [`a!='"'`, `a != '"'`],
  [`a in {"d"}`, `a in {"d"}`],
  [`a in {"a", "b"}`, `a in {"a", "b"}`],
  [`a in {"d", "a", "b"}`, `a in {"a", "b", "d"}`],
  [`a in {"z", "x", "y", "a"}`, `a in {"a", "x", "y", "z"}`],
  [`a in {"z", "z", "x", "y", "x", "a"}`, `a in {"a", "x", "y", "z"}`],
  // Visitor tests (prefix rewriting) use this canonical form for a negated leaf
  [`!(k == 'v')`, `!k == "v"`],
];

describe('selector: Calico vectors', () => {
  for (const [sel, yes, no] of VECTORS) {
    it(`${JSON.stringify(sel)}`, () => {
      const s = parseSelector(sel);
      const again = parseSelector(canonical(s));
      for (const l of yes) {
        expect(matches(s, lab(l)), `${sel} should match ${JSON.stringify(l)}`).toBe(true);
        expect(matches(again, lab(l))).toBe(true);
      }
      for (const l of no) {
        expect(matches(s, lab(l)), `${sel} should not match ${JSON.stringify(l)}`).toBe(false);
        expect(matches(again, lab(l))).toBe(false);
      }
    });
  }
  it('rejects what Calico rejects, with ConfigError', () => {
    for (const s of BAD) expect(() => parseSelector(s), JSON.stringify(s)).toThrow(ConfigError);
  });
  it('canonicalises as Calico does, and the canonical form round-trips', () => {
    for (const [input, want] of CANON) {
      const c = canonical(parseSelector(input));
      expect(c, input).toBe(want);
      expect(canonical(parseSelector(c))).toBe(c);
    }
  });
  it('accepts a 512-character label name', () => {
    expect(matches(parseSelector('a'.repeat(512) + ` == "v"`), lab({ ['a'.repeat(512)]: 'v' }))).toBe(true);
  });
  it('prefixes label names like Calico (PrefixVisitor)', () => {
    const cases: [string, string][] = [
      ["k == 'v'", 'visited/k == "v"'],
      ["k == 'v' && x == 'y'", '(visited/k == "v" && visited/x == "y")'],
      ["k == 'v' || has(x)", '(visited/k == "v" || has(visited/x))'],
      ["!(k == 'v')", '!visited/k == "v"'],
      ["k not in {'v'}", 'visited/k not in {"v"}'],
      [
        "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
        '!(!((visited/k == "v" && has(visited/t)) || all()) && visited/a in {"b", "c"})',
      ],
    ];
    for (const [a, b] of cases) expect(canonical(prefixSelector(parseSelector(a), 'visited/'))).toBe(b);
  });
  it('turns all() and global() of a namespaceSelector into namespace tests', () => {
    const ns = 'projectcalico.org/namespace';
    expect(canonical(prefixSelector(parseSelector('all()'), 'pcns.', ns))).toBe(`has(${ns})`);
    expect(canonical(prefixSelector(parseSelector('global()'), 'pcns.', ns))).toBe(`!has(${ns})`);
  });
  it('bounds nesting with a ConfigError instead of a stack overflow', () => {
    const deep = '('.repeat(MAX_SELECTOR_DEPTH + 1) + 'all()' + ')'.repeat(MAX_SELECTOR_DEPTH + 1);
    expect(() => parseSelector(deep)).toThrow(ConfigError);
    const ok = '('.repeat(MAX_SELECTOR_DEPTH) + 'all()' + ')'.repeat(MAX_SELECTOR_DEPTH);
    expect(canonical(parseSelector(ok))).toBe('all()');
    expect(() => parseSelector('('.repeat(100000))).toThrow(ConfigError);
    expect(matches(parseSelector('!'.repeat(100001) + 'has(a)'), lab({ a: '' }))).toBe(false);
  });
});

describe('selector: properties', () => {
  const alphabet = [
    'a',
    'b',
    ' ',
    '=',
    '!',
    '&',
    '|',
    '(',
    ')',
    '{',
    '}',
    ',',
    '"',
    "'",
    'in',
    'not',
    'has(',
    'all()',
    'global()',
    'contains',
    'starts',
    'with',
    'ends',
    '\t',
    '/',
    '.',
    '-',
    '%',
    '\n',
  ];
  const fragment = fc.array(fc.constantFrom(...alphabet), { maxLength: 30 }).map((xs) => xs.join(''));

  it('only returns a selector or throws ConfigError (token soup)', () => {
    fc.assert(
      fc.property(fc.oneof(fragment, fc.string({ maxLength: 40 })), (s) => {
        try {
          const sel = parseSelector(s);
          expect(typeof canonical(sel)).toBe('string');
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
        }
      }),
      { seed: 1101, numRuns: 5000 },
    );
  });

  // A generator of valid selectors (as text) with the labels they talk about.
  const label = fc.constantFrom('a', 'b', 'app', 'k8s/role', 'x.y-z');
  const value = fc.constantFrom('', 'v', 'web', "it's", 'say "hi"', 'a b');
  const q = (v: string) => (v.includes('"') ? `'${v}'` : `"${v}"`);
  const leaf = fc.oneof(
    fc
      .tuple(label, fc.constantFrom('==', '!=', 'contains', 'starts with', 'ends with'), value)
      .map(([l, o, v]) => `${l} ${o} ${q(v)}`),
    fc
      .tuple(label, fc.constantFrom('in', 'not in'), fc.array(value, { maxLength: 3 }))
      .map(([l, o, vs]) => `${l} ${o} {${vs.map(q).join(', ')}}`),
    label.map((l) => `has(${l})`),
    fc.constant('all()'),
  );
  const expr: fc.Arbitrary<string> = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      leaf,
      tie('e').map((x) => `!${x.startsWith('!') || /^[a-z(]/.test(x) ? x : `(${x})`}`),
      fc.tuple(tie('e'), tie('e')).map(([x, y]) => `(${x}) && (${y})`),
      fc.tuple(tie('e'), tie('e')).map(([x, y]) => `(${x}) || (${y})`),
    ),
  })).e;
  const labels = fc.dictionary(label, value, { maxKeys: 4 });

  it('canonical form re-parses to itself and gives the same verdicts', () => {
    fc.assert(
      fc.property(expr, fc.array(labels, { minLength: 1, maxLength: 4 }), (text, ls) => {
        const s = parseSelector(text);
        const c = canonical(s);
        const again = parseSelector(c);
        expect(canonical(again)).toBe(c);
        for (const l of ls) expect(matches(again, lab(l))).toBe(matches(s, lab(l)));
      }),
      { seed: 1102, numRuns: 2000 },
    );
  });

  it('absent labels: != and not in match, the other operators do not', () => {
    fc.assert(
      fc.property(value, (v) => {
        const none = lab({});
        expect(matches(parseSelector(`a != ${q(v)}`), none)).toBe(true);
        expect(matches(parseSelector(`a not in {${q(v)}}`), none)).toBe(true);
        for (const op of ['==', 'contains', 'starts with', 'ends with'])
          expect(matches(parseSelector(`a ${op} ${q(v)}`), none)).toBe(false);
        expect(matches(parseSelector(`a in {${q(v)}}`), none)).toBe(false);
      }),
      { seed: 1103, numRuns: 50 },
    );
  });
});
