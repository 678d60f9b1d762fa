import { describe, expect, it } from 'vitest';
import {
  check,
  compile,
  compileExpression,
  ExprError,
  evaluate,
  isTemplate,
  isTruthy,
  LIMITS,
  render,
} from '../../src/expr/index.ts';

const ctx = {
  name: 'world',
  result: { count: 5, meta: { ok: true, tags: ['a', 'b'] }, empty: [], nothing: null, text: '42' },
  items: [
    { n: 'b', v: 2 },
    { n: 'a', v: 1 },
  ],
  s: 'Hello World',
};

function fails(fn: () => unknown): ExprError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ExprError);
    return e as ExprError;
  }
  throw new Error('expected an ExprError');
}

describe('compile and render', () => {
  it('returns plain strings unchanged without compiling them', () => {
    for (const s of ['', 'plain text', 'a { b } c', '{# not a comment trigger #}', 'x }} y', '100%']) {
      const t = compile(s);
      expect(t.kind).toBe('literal');
      expect(t.render(ctx)).toBe(s);
    }
    expect(isTemplate('a {{ b }}')).toBe(true);
    expect(isTemplate('{% if x %}{% endif %}')).toBe(true);
    expect(isTemplate('{ {x} }')).toBe(false);
  });

  it('keeps the JSON type of a template that is exactly one expression', () => {
    const cases: [string, unknown][] = [
      ['{{ result.count > 3 }}', true],
      ['{{ result.count * 2 + 1 }}', 11],
      ['  {{ result.meta }}\n', { ok: true, tags: ['a', 'b'] }],
      ['{{ result.meta.tags }}', ['a', 'b']],
      ['{{ result.nothing }}', null],
      ['{{ missing }}', null],
      ['{{ missing.deeper.still }}', null],
      ['{{ "text" }}', 'text'],
      ['{{ 1.5 }}', 1.5],
      ['{{ result.count if result.meta.ok else "no" }}', 5],
      ['{{- name -}}', 'world'],
      ['{{ [1, "a", none, true] }}', [1, 'a', null, true]],
      ['{{ {"k": result.count} }}', { k: 5 }],
      ['{{ 1 / 0 if false else 7 }}', 7],
    ];
    for (const [tpl, want] of cases) expect(compile(tpl).render(ctx), tpl).toEqual(want);
    expect(compile('{{ result.count > 3 }}').kind).toBe('expression');
  });

  it('renders mixed text to a string: undefined and null as empty, lists and dicts as JSON', () => {
    expect(compile('Hello {{ name }}!').render(ctx)).toBe('Hello world!');
    expect(compile('[{{ missing }}][{{ result.nothing }}]').render(ctx)).toBe('[][]');
    expect(compile('tags={{ result.meta.tags }} meta={{ result.meta }}').render(ctx)).toBe(
      'tags=["a","b"] meta={"ok":true,"tags":["a","b"]}',
    );
    expect(compile('{{ a }} {{ b }}').kind).toBe('text');
    expect(compile('{{ true }}/{{ 2.5 }}').render(ctx)).toBe('true/2.5');
    expect(compile('{% for i in items %}{{ loop.index }}:{{ i.n }} {% endfor %}').render(ctx)).toBe(
      '1:b 2:a ',
    );
  });

  it('returns data detached from the context', () => {
    const out = compile('{{ result.meta }}').render(ctx) as { tags: string[] };
    out.tags.push('mutated');
    expect(ctx.result.meta.tags).toEqual(['a', 'b']);
  });

  it('caches compiled templates by source', () => {
    expect(compile('{{ result.count }}')).toBe(compile('{{ result.count }}'));
    expect(compileExpression('result.count')).toBe(compileExpression('result.count'));
  });

  it('refuses templates over the size limit', () => {
    const big = `{{ x }}${'a'.repeat(LIMITS.templateLength)}`;
    expect(fails(() => compile(big)).kind).toBe('limit');
  });
});

describe('render (deep)', () => {
  it('renders every string in objects and arrays, keeps keys, and does not mutate the input', () => {
    const input = {
      cmd: 'echo {{ name }}',
      count: '{{ result.count }}',
      flags: ['{{ result.meta.ok }}', 'literal', 3, null, false],
      nested: { '{{ name }}': '{{ result.meta.tags }}', deep: [{ x: '{{ result.count + 1 }}' }] },
    };
    const before = structuredClone(input);
    const out = render(input, ctx);
    expect(out).toEqual({
      cmd: 'echo world',
      count: 5,
      flags: [true, 'literal', 3, null, false],
      nested: { '{{ name }}': ['a', 'b'], deep: [{ x: 6 }] },
    });
    expect(input).toEqual(before);
    expect(out).not.toBe(input);
    expect((out as typeof input).flags).not.toBe(input.flags);
  });

  it('passes non-string scalars through and renders a top-level string', () => {
    expect(render(42, ctx)).toBe(42);
    expect(render(null, ctx)).toBe(null);
    expect(render('{{ name }}', ctx)).toBe('world');
  });

  it('names the failing location in the error', () => {
    const e = fails(() => render({ a: { b: ['ok', '{{ x | nope }}'] } }, ctx));
    expect(e.path).toBe('a.b[1]');
    expect(e.message).toMatch(/^a\.b\[1\]: unknown filter 'nope'/);
  });

  it('keeps a "__proto__" key as data instead of changing prototypes', () => {
    const input = JSON.parse('{"__proto__": {"polluted": "{{ name }}"}, "a": "{{ name }}"}');
    const out = render(input, ctx) as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.hasOwn(out, '__proto__')).toBe(true);
    expect(Object.getOwnPropertyDescriptor(out, '__proto__')?.value).toEqual({ polluted: 'world' });
    expect((out as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });
});

describe('evaluate', () => {
  it('evaluates bare expressions to typed values', () => {
    expect(evaluate('result.count > 3', ctx)).toBe(true);
    expect(evaluate('result.count * 2', ctx)).toBe(10);
    expect(evaluate('items | map(attribute="n") | sort', ctx)).toEqual(['a', 'b']);
    expect(evaluate('result.meta.tags[-1]', ctx)).toBe('b');
    expect(evaluate('"x" ~ name', ctx)).toBe('xworld');
    expect(evaluate('{{ result.count }}', ctx)).toBe(5);
    expect(evaluate('x == "}}"', { x: '}}' })).toBe(true);
  });

  it('calls functions the caller puts in the context', () => {
    const calls: unknown[] = [];
    const fnCtx = {
      result: (task?: unknown) => {
        calls.push(task);
        return { stdout: 'ok', code: 0 };
      },
      succeeded: () => true,
    };
    expect(evaluate('succeeded() and result("build").code == 0', fnCtx)).toBe(true);
    expect(evaluate('result().stdout | upper', fnCtx)).toBe('OK');
    expect(calls).toEqual(['build', undefined]);
  });

  it('rejects non-expressions with a clear error', () => {
    expect(fails(() => evaluate('', ctx)).message).toMatch(/empty/);
    expect(fails(() => evaluate('a }} text {{ b', ctx)).message).toMatch(/expected '}}'|single expression/);
    expect(fails(() => evaluate('Hello {{ name }}', ctx)).message).toMatch(/single expression/);
    const e = fails(() => evaluate('result.count >', ctx));
    expect(e.kind).toBe('syntax');
    expect(e.template).toBe('result.count >');
  });

  it('wraps errors raised by context functions', () => {
    const e = fails(() =>
      evaluate('boom()', {
        boom: () => {
          throw new Error('kaput');
        },
      }),
    );
    expect(e.message).toMatch(/kaput/);
    expect(e.cause).toBeInstanceOf(Error);
  });
});

describe('check', () => {
  it('accepts valid templates and reports problems with position', () => {
    expect(check('Hello {{ name | upper }}')).toEqual({ ok: true });
    expect(check('plain')).toEqual({ ok: true });
    expect(check('result.count > 3', { expression: true })).toEqual({ ok: true });

    const syntax = check('line one\n{{ a + }}');
    expect(syntax.ok).toBe(false);
    if (!syntax.ok) {
      expect(syntax.kind).toBe('syntax');
      expect(syntax.line).toBe(2);
      expect(syntax.column).toBeGreaterThan(0);
      expect(syntax.message).toMatch(/syntax error/);
    }
    const filter = check('{{ x | no_such_filter }}');
    expect(filter).toMatchObject({ ok: false, kind: 'unknown_filter' });
    expect(check('{{ x is no_such_test }}')).toMatchObject({ ok: false, kind: 'unknown_filter' });
    expect(check('{{ x.constructor }}')).toMatchObject({ ok: false, kind: 'forbidden' });
    expect(check('{% if x %}unterminated')).toMatchObject({ ok: false, kind: 'syntax' });
    expect(check('{{ x ')).toMatchObject({ ok: false, kind: 'syntax' });
    expect(check('a +', { expression: true })).toMatchObject({ ok: false, kind: 'syntax' });
  });

  it('does not evaluate (a template that would run out of fuel checks fine, at once)', () => {
    const t0 = performance.now();
    const r = check(
      '{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}',
    );
    expect(r).toEqual({ ok: true });
    expect(performance.now() - t0).toBeLessThan(500);
  });
});

describe('Jinja semantics', () => {
  const cases: [string, unknown, Record<string, unknown>?][] = [
    // truthiness: empty containers are false
    ['{{ "y" if [] else "n" }}', 'n'],
    ['{{ "y" if {} else "n" }}', 'n'],
    ['{{ "y" if "" else "n" }}', 'n'],
    ['{{ "y" if 0 else "n" }}', 'n'],
    ['{{ "y" if [0] else "n" }}', 'y'],
    ['{{ not [] }}', true],
    ['{{ [] or "fallback" }}', 'fallback'],
    ['{{ "first" or "second" }}', 'first'],
    ['{{ 0 and 1 }}', 0],
    ['{{ 2 and 3 }}', 3],
    // constants
    ['{{ True }}', true],
    ['{{ False }}', false],
    ['{{ None }}', null],
    ['{{ x is none }}', true, { x: null }],
    ['{{ x is defined }}', false],
    // comparisons chain and compare deeply
    ['{{ 1 < 2 < 3 }}', true],
    ['{{ 3 > 2 > 1 }}', true],
    ['{{ 1 < 3 < 2 }}', false],
    ['{{ [1, {"a": 2}] == [1, {"a": 2}] }}', true],
    ['{{ {"a": 1, "b": 2} == {"b": 2, "a": 1} }}', true],
    ['{{ 5 == "5" }}', true],
    ['{{ 0 == "" }}', false],
    ['{{ none == missing }}', true],
    ['{{ 1 != 2 }}', true],
    // arithmetic
    ['{{ [1] + [2, 3] }}', [1, 2, 3]],
    ['{{ "ab" * 3 }}', 'ababab'],
    ['{{ [0] * 3 }}', [0, 0, 0]],
    ['{{ 7 // 2 }}', 3],
    ['{{ -7 // 2 }}', -4],
    ['{{ -7 % 3 }}', 2],
    ['{{ 2 ** 10 }}', 1024],
    ['{{ "%s has %d items" % ["x", 3] }}', 'x has 3 items'],
    ['{{ "a" ~ 1 ~ none }}', 'a1'],
    ['{{ "n=" + 3 }}', 'n=3'],
    // membership
    ['{{ "a" in ["a", "b"] }}', true],
    ['{{ 2 in ["1", "2"] }}', true],
    ['{{ "ell" in "hello" }}', true],
    ['{{ "k" in {"k": 1} }}', true],
    ['{{ "x" not in {"k": 1} }}', true],
    ['{{ "constructor" in {} }}', false],
    // indexing and slicing
    ['{{ s[0] }}{{ s[-1] }}', 'Hd', { s: 'Hello World' }],
    ['{{ s[:5] }}', 'Hello', { s: 'Hello World' }],
    ['{{ s[::-1] }}', 'dlroW olleH', { s: 'Hello World' }],
    ['{{ l[1:] }}', [2, 3], { l: [1, 2, 3] }],
    ['{{ l[-2:] }}', [2, 3], { l: [1, 2, 3] }],
    ['{{ l[::2] }}', [1, 3], { l: [1, 2, 3] }],
    ['{{ l[10] }}', null, { l: [1] }],
    ['{{ d["a-b"] }}', 1, { d: { 'a-b': 1 } }],
    ['{{ d.items }}', [1], { d: { items: [1] } }],
    // methods
    ['{{ s.upper() }}', 'HELLO WORLD', { s: 'Hello World' }],
    ['{{ s.split() }}', ['a', 'b'], { s: ' a  b ' }],
    ['{{ s.split(",", 1) }}', ['a', 'b,c'], { s: 'a,b,c' }],
    ['{{ s.replace("l", "L") }}', 'heLLo', { s: 'hello' }],
    ['{{ s.startswith(("x", "he")) }}', true, { s: 'hello' }],
    ['{{ ", ".join(l) }}', '1, 2', { l: [1, 2] }],
    ['{{ d.get("missing", "dflt") }}', 'dflt', { d: {} }],
    ['{{ d.keys() | list }}', ['a', 'b'], { d: { a: 1, b: 2 } }],
    ['{{ d.items() }}', [['a', 1]], { d: { a: 1 } }],
    ['{{ l.index(2) }}', 1, { l: [1, 2] }],
    ['{{ s.zfill(5) }}', '-0042', { s: '-42' }],
    // statements
    ['{% set x = 2 %}{{ x * 3 }}', '6'],
    ['{% set t %}in {{ name }}{% endset %}{{ t | upper }}', 'IN W', { name: 'w' }],
    ['{% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %}', 'a=1;b=2;', { d: { b: 2, a: 1 } }],
    ['{% for x in [] %}x{% else %}empty{% endfor %}', 'empty'],
    ['{% for c in "ab" %}[{{ c }}]{% endfor %}', '[a][b]'],
    ['{% macro greet(who, punct="!") %}Hi {{ who }}{{ punct }}{% endmacro %}{{ greet("x") }}', 'Hi x!'],
    ['{% macro box() %}<{{ caller() }}>{% endmacro %}{% call box() %}in{% endcall %}', '<in>'],
    ['{% raw %}{{ not rendered }}{% endraw %}', '{{ not rendered }}'],
    ['{# comment #}{{ 1 }}', 1],
    ['{% if a %}A{% elif b %}B{% else %}C{% endif %}', 'B', { a: false, b: true }],
    ['{% filter upper %}shout{% endfilter %}', 'SHOUT'],
    ['{{ range(3) | list }}', [0, 1, 2]],
    ['{{ {"a": {"b": {"c": 1}}} }}', { a: { b: { c: 1 } } }],
    ['{% set x = {"a": {"b": 1}} %}{{ x.a.b }}', '1'],
    ['{% raw %}{{ {"a": {"b": 1}} }}{% endraw %}', '{{ {"a": {"b": 1}} }}'],
    ['{{ range(5, 0, -2) | list }}', [5, 3, 1]],
    ['{{ dict(a=1, b="x") }}', { a: 1, b: 'x' }],
    ['{% set c = cycler("odd", "even") %}{{ c.next() }}{{ c.next() }}{{ c.next() }}', 'oddevenodd'],
    ['{% set j = joiner("|") %}{% for i in [1,2,3] %}{{ j() }}{{ i }}{% endfor %}', '1|2|3'],
  ];
  for (const [tpl, want, extra] of cases) {
    it(tpl, () => {
      expect(compile(tpl).render({ ...ctx, ...extra })).toEqual(want);
    });
  }

  it('reports operator misuse clearly', () => {
    expect(fails(() => evaluate('1 / 0', {})).message).toMatch(/division by zero/);
    expect(fails(() => evaluate('"a" - 1', {})).message).toMatch(/unsupported operand types for -/);
    expect(fails(() => evaluate('{"a": 1} + {"b": 2}', {})).message).toMatch(/cannot add dict and dict/);
    expect(fails(() => evaluate('missing()', {})).message).toMatch(/undefined and cannot be called/);
    expect(fails(() => evaluate('l[::0]', { l: [1] })).message).toMatch(/step cannot be zero/);
    expect(fails(() => evaluate('1 in 5', {})).message).toMatch(/membership in a number/);
    expect(fails(() => evaluate('range', {})).message).toMatch(/function, which is not data/);
    expect(fails(() => compile('{{ range }} text').render({})).message).toMatch(/cannot print a function/);
  });
});

describe('isTruthy', () => {
  it('follows Python', () => {
    for (const v of [false, 0, '', null, undefined, [], {}, Number.NaN])
      expect(isTruthy(v), String(v)).toBe(false);
    for (const v of [true, 1, -1, 'x', [0], { a: 0 }, new Date()]) expect(isTruthy(v), String(v)).toBe(true);
  });
});
