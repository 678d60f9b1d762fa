/**
 * The template sandbox against a corpus of known escape vectors. Each vector is thrown at the
 * engine the way rules (criteria patterns and expressions), action parameters and workflows use
 * it; each must fail with an ExprError (or produce harmless output), quickly, and leave the host
 * untouched: no code run, no prototype changed, no environment touched.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compile, ExprError, evaluate, render } from '../../src/expr/index.ts';
import { matchCriteria, renderParameters } from '../../src/rules/index.ts';

type Expect = 'error' | 'harmless';
interface Vector {
  name: string;
  template: string;
  expect: Expect;
  /** For errors: what the message must say. */
  message?: RegExp;
}

const FORBIDDEN = /not allowed|attribute '.*' of a function|not supported/;
const LIMIT = /limit|too much work|too large|too deep|exceeds|nested more/;

const VECTORS: Vector[] = [
  // Constructor chains through the globals
  {
    name: 'range.constructor',
    template: '{{ range.constructor("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'cycler.constructor',
    template: '{{ cycler.constructor("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'joiner.constructor',
    template: '{{ joiner.constructor("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'dict.constructor',
    template: '{{ dict.constructor("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'subscript constructor',
    template: '{{ range["constructor"]("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'computed subscript',
    template: '{% set c = "constr" ~ "uctor" %}{{ range[c]("return process.pid")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'computed subscript via filter',
    template: '{{ range[["con", "structor"] | join]("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'attr filter',
    template: '{{ (range | attr("constructor"))("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  // Constructor chains through values
  {
    name: 'array constructor chain',
    template: '{{ [].constructor.constructor("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'string constructor chain',
    template: '{{ "".constructor.constructor("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'dict literal constructor',
    template: '{{ {"a": 1}.constructor }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  { name: 'number constructor', template: '{{ (1).constructor }}', expect: 'error', message: FORBIDDEN },
  {
    name: 'payload constructor',
    template: '{{ trigger.constructor.constructor("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'loop object',
    template: '{% for x in [1] %}{{ loop.constructor.constructor("return process")() }}{% endfor %}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'method constructor',
    template: '{{ "".upper.constructor("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'list method constructor',
    template: '{{ [].concat.constructor("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'joiner result',
    template: '{{ joiner().constructor("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'cycler method',
    template: '{{ cycler(1, 2).next.constructor("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'context function',
    template: '{{ result.constructor("return process")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  // Function attributes
  {
    name: 'Function.prototype.call',
    template: '{{ range.call(none, 3) }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'Function.prototype.apply',
    template: '{{ range.apply(none, [3]) }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'Function.prototype.bind',
    template: '{{ range.bind(none)(3) }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  { name: 'function name', template: '{{ result.name }}', expect: 'error', message: FORBIDDEN },
  { name: 'function caller', template: '{{ range.caller }}', expect: 'error', message: FORBIDDEN },
  { name: 'function arguments', template: '{{ range.arguments }}', expect: 'error', message: FORBIDDEN },
  // Prototype access
  { name: '__proto__ read', template: '{{ trigger.__proto__ }}', expect: 'error', message: FORBIDDEN },
  {
    name: '__proto__ subscript',
    template: '{{ trigger["__proto__"]["polluted"] }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'own __proto__ from JSON payload',
    template: '{{ evil.__proto__.polluted }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  { name: 'prototype', template: '{{ range.prototype }}', expect: 'error', message: FORBIDDEN },
  {
    name: '__defineGetter__',
    template: '{{ trigger.__defineGetter__("x", range) }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: '__lookupGetter__',
    template: '{{ trigger.__lookupGetter__("__proto__") }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  { name: '__defineSetter__', template: '{{ {}.__defineSetter__ }}', expect: 'error', message: FORBIDDEN },
  { name: '__lookupSetter__', template: '{{ "".__lookupSetter__ }}', expect: 'error', message: FORBIDDEN },
  { name: 'top-level __proto__', template: '{{ __proto__ }}', expect: 'error', message: FORBIDDEN },
  {
    name: 'top-level constructor',
    template: '{{ constructor("return 1") }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'inherited methods are not reachable',
    template: '{{ trigger.toString() }}',
    expect: 'error',
    message: /undefined and cannot be called/,
  },
  {
    name: 'hasOwnProperty',
    template: '{{ trigger.hasOwnProperty("a") }}',
    expect: 'error',
    message: /undefined and cannot be called/,
  },
  {
    name: 'valueOf',
    template: '{{ "x".valueOf() }}',
    expect: 'error',
    message: /undefined and cannot be called/,
  },
  {
    name: 'Python-style SSTI',
    template: '{{ "".__class__.__mro__[1].__subclasses__() }}',
    expect: 'error',
    message: /undefined/,
  },
  // Set, macro and caller tricks
  {
    name: 'set constructor',
    template: '{% set constructor = 1 %}{{ constructor }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'set alias of a global',
    template: '{% set f = range %}{{ f.constructor("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'macro object',
    template: '{% macro m() %}x{% endmacro %}{{ m.constructor("return 1")() }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'caller',
    template:
      '{% macro m() %}{{ caller.constructor("return process")() }}{% endmacro %}{% call m() %}x{% endcall %}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'macro argument named __proto__',
    template: '{% macro m(__proto__) %}{% endmacro %}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'dict literal with __proto__ key',
    template: '{{ {"__proto__": {"polluted": true}} }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'keyword argument __proto__',
    template: '{{ dict(__proto__={"polluted": true}) }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'filter named constructor',
    template: '{{ 1 | constructor }}',
    expect: 'error',
    message: /unknown filter/,
  },
  {
    name: 'test named constructor',
    template: '{{ 1 is constructor }}',
    expect: 'error',
    message: /unknown test/,
  },
  {
    name: 'map by filter name constructor',
    template: '{{ [1] | map("constructor") }}',
    expect: 'error',
    message: /no filter named/,
  },
  {
    name: 'map attribute constructor',
    template: '{{ [range] | map(attribute="constructor") | first }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'sort attribute __proto__',
    template: '{{ [{}, {}] | sort(attribute="__proto__") }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  {
    name: 'dict.get __proto__',
    template: '{{ trigger.get("__proto__") }}',
    expect: 'error',
    message: FORBIDDEN,
  },
  // Host objects and loading
  {
    name: 'host globals are absent',
    template: '{{ process }}{{ global }}{{ globalThis }}{{ require }}{{ module }}{{ this }}',
    expect: 'harmless',
  },
  { name: 'include', template: '{% include "/etc/passwd" %}', expect: 'error', message: FORBIDDEN },
  { name: 'import', template: '{% import "x" as y %}', expect: 'error', message: FORBIDDEN },
  { name: 'extends', template: '{% extends "x" %}', expect: 'error', message: FORBIDDEN },
  {
    name: 'regex literal',
    template: '{{ "a" | replace(r/a/g, "b") }}',
    expect: 'error',
    message: /regular expression literals/,
  },
  // Mutation of data
  {
    name: 'list mutation',
    template: '{{ trigger.items.append(1) }}',
    expect: 'error',
    message: /would modify data/,
  },
  {
    name: 'dict mutation',
    template: '{{ trigger.update({"a": 2}) }}',
    expect: 'error',
    message: /would modify data/,
  },
  { name: 'dict pop', template: '{{ trigger.pop("a") }}', expect: 'error', message: /would modify data/ },
  // Bounded work
  {
    name: 'huge range',
    template: '{% for i in range(100000000) %}{% endfor %}',
    expect: 'error',
    message: LIMIT,
  },
  {
    name: 'nested loops',
    template: '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}',
    expect: 'error',
    message: LIMIT,
  },
  { name: 'string repeat', template: '{{ "x" * 1000000000 }}', expect: 'error', message: LIMIT },
  { name: 'list repeat', template: '{{ [1] * 1000000000 }}', expect: 'error', message: LIMIT },
  {
    name: 'string doubling',
    template: '{% set s = "x" %}{% for i in range(64) %}{% set s = s ~ s %}{% endfor %}{{ s | length }}',
    expect: 'error',
    message: LIMIT,
  },
  {
    name: 'structure doubling',
    template: '{% set l = [1] %}{% for i in range(64) %}{% set l = [l, l] %}{% endfor %}{{ l }}',
    expect: 'error',
    message: LIMIT,
  },
  {
    name: 'join of a huge range',
    template: '{{ (range(100000) | join(",")) * 1000 }}',
    expect: 'error',
    message: LIMIT,
  },
  {
    name: 'output flood',
    template: '{% for i in range(100000) %}{% for j in range(50) %}{{ "x" * 10000 }}{% endfor %}{% endfor %}',
    expect: 'error',
    message: LIMIT,
  },
  { name: 'center width', template: '{{ "x" | center(1000000000) }}', expect: 'error', message: LIMIT },
  { name: 'str.center width', template: '{{ "x".center(1000000000) }}', expect: 'error', message: LIMIT },
  { name: 'slice count', template: '{{ [1] | slice(1000000000) }}', expect: 'error', message: LIMIT },
  { name: 'format width', template: '{{ "%1000000000s" | format("x") }}', expect: 'error', message: LIMIT },
  {
    name: 'replace blow-up',
    template: '{{ ("x" * 100000) | replace("", "y" * 1000) }}',
    expect: 'error',
    message: LIMIT,
  },
  {
    name: 'macro recursion',
    template: '{% macro m(n) %}{{ m(n + 1) }}{% endmacro %}{{ m(0) }}',
    expect: 'error',
    message: LIMIT,
  },
  {
    name: 'macro fan-out',
    template:
      '{% macro m(n) %}{% if n < 40 %}{{ m(n + 1) }}{{ m(n + 1) }}{% endif %}{% endmacro %}{{ m(0) }}',
    expect: 'error',
    message: LIMIT,
  },
  { name: 'deep nesting', template: `{{ ${'('.repeat(5000)}1${')'.repeat(5000)} }}`, expect: 'error' },
  // Regex denial of service
  {
    name: 'regex exponential',
    template: '{{ ("a" * 50000 + "!") | regex_search("^(a+)+$") }}',
    expect: 'harmless',
  },
  { name: 'regex polynomial', template: '{{ ("a" * 20000) | regex_search(".*.*.*x") }}', expect: 'harmless' },
  {
    name: 'regex nested repetition with backreference',
    template: '{{ ("a" * 30 + "!") | regex_search("^(a+)+\\\\1$") }}',
    expect: 'error',
    message: /nested repetition/,
  },
  {
    name: 'regex huge subject',
    template: '{{ ("a" * 200000) | regex_search("a") }}',
    expect: 'error',
    message: LIMIT,
  },
];

const evilPayload = JSON.parse(
  '{"a": 1, "items": [1, 2], "__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}',
);
const context = () => ({
  trigger: evilPayload,
  evil: JSON.parse('{"__proto__": {"polluted": true}}'),
  result: () => ({ ok: true }),
});

interface HostSnapshot {
  env: string;
  protos: Record<string, string[]>;
  globals: string[];
}
const PROTOS: Record<string, object> = {
  Object: Object.prototype,
  Array: Array.prototype,
  Function: Function.prototype,
  String: String.prototype,
  Number: Number.prototype,
  Boolean: Boolean.prototype,
};
const snapshot = (): HostSnapshot => ({
  env: JSON.stringify(process.env),
  protos: Object.fromEntries(
    Object.entries(PROTOS).map(([k, p]) => [k, Reflect.ownKeys(p).map(String).sort()]),
  ),
  globals: Reflect.ownKeys(globalThis).map(String).sort(),
});

function hostIsClean(): void {
  expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  expect(([] as unknown as { polluted?: unknown }).polluted).toBeUndefined();
  expect(Object.getPrototypeOf(evilPayload)).toBe(Object.prototype);
}

function runs(fn: () => unknown): { error?: ExprError; value?: unknown; ms: number } {
  const t0 = performance.now();
  try {
    const value = fn();
    return { value, ms: performance.now() - t0 };
  } catch (e) {
    if (!(e instanceof ExprError)) throw e;
    return { error: e, ms: performance.now() - t0 };
  }
}

const isSingleExpression = (t: string) => /^\{\{[\s\S]*\}\}$/.test(t) && t.indexOf('{{', 2) < 0;

describe('sandbox: escape vectors', () => {
  let before: HostSnapshot;
  beforeAll(() => {
    before = snapshot();
  });
  afterAll(() => {
    expect(snapshot()).toEqual(before);
    hostIsClean();
  });

  it('has a substantial corpus', () => {
    expect(VECTORS.length).toBeGreaterThanOrEqual(30);
    expect(new Set(VECTORS.map((v) => v.name)).size).toBe(VECTORS.length);
  });

  for (const v of VECTORS) {
    describe(v.name, () => {
      const check = (r: { error?: ExprError; value?: unknown; ms: number }) => {
        expect(r.ms, 'bounded time').toBeLessThan(5000);
        if (v.expect === 'error') {
          expect(r.error, `expected an ExprError, got ${JSON.stringify(r.value)}`).toBeInstanceOf(ExprError);
          if (v.message) expect(r.error!.message).toMatch(v.message);
        } else if (r.error === undefined) {
          expect(typeof r.value).not.toBe('function');
          expect(JSON.stringify(r.value ?? null)).not.toMatch(/process|native code|function/);
        }
        hostIsClean();
      };

      it('as a template', () => check(runs(() => compile(v.template).render(context()))));

      it('as an action parameter', () =>
        check(runs(() => renderParameters({ cmd: 'run', arg: v.template }, context()))));

      it('as a workflow expression', () => {
        if (isSingleExpression(v.template)) check(runs(() => evaluate(v.template, context())));
        else check(runs(() => render({ publish: { x: v.template } }, context())));
      });

      it('in rule criteria (pattern and expression)', () => {
        const t0 = performance.now();
        const res = matchCriteria(
          { 'trigger.a': { type: 'equals', pattern: v.template }, expression: v.template },
          context(),
          { now: new Date('2024-01-01T00:00:00Z') },
        );
        expect(performance.now() - t0).toBeLessThan(10000);
        if (v.expect === 'error') {
          expect(res.matched).toBe(false);
          expect(res.details.every((d) => typeof d.error === 'string')).toBe(true);
        }
        hostIsClean();
      });
    });
  }
});

describe('sandbox: prototype pollution through data', () => {
  it('payload keys named __proto__ stay data everywhere', () => {
    const payload = JSON.parse('{"__proto__": {"polluted": true}, "list": [{"__proto__": {"polluted": 1}}]}');
    const ctx = { trigger: payload };
    const outputs = [
      evaluate('trigger', ctx),
      evaluate('trigger | combine({"x": 1})', ctx),
      evaluate('{} | combine(trigger, recursive=true)', ctx),
      evaluate('trigger.list | first', ctx),
      evaluate('trigger | dict2items | items2dict', ctx),
      evaluate('trigger | tojson | from_json', ctx),
      evaluate('trigger | to_yaml | from_yaml', ctx),
      evaluate('trigger.items()', ctx),
      evaluate('trigger | dictsort', ctx),
      render({ p: '{{ trigger }}', q: ['{{ trigger.list }}'] }, ctx),
      renderParameters(payload, ctx),
      renderParameters({ __proto__: '{{ trigger }}' }, ctx),
    ];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        expect([Object.prototype, null]).toContain(Object.getPrototypeOf(v));
        if (!Object.hasOwn(v, 'polluted')) expect((v as { polluted?: unknown }).polluted).toBeUndefined();
        for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k]);
      }
    };
    outputs.forEach(walk);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    // The key survives as plain data.
    const copy = evaluate('trigger', ctx) as Record<string, unknown>;
    expect(Object.hasOwn(copy, '__proto__')).toBe(true);
  });

  it('rule matching over a polluting payload leaves prototypes alone', () => {
    const payload = JSON.parse('{"__proto__": {"polluted": true}, "a": {"__proto__": {"x": 1}}}');
    const res = matchCriteria(
      {
        'trigger.__proto__.polluted': { type: 'equals', pattern: true },
        'trigger.a': { type: 'contains', pattern: '__proto__' },
      },
      { trigger: payload },
      { now: new Date() },
    );
    expect(res.details.map((d) => d.matched)).toEqual([true, true]);
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  it('templates cannot modify the context they read', () => {
    const ctx = { trigger: { list: [3, 1, 2], d: { a: 1 } } };
    const before = structuredClone(ctx);
    for (const t of [
      '{{ trigger.list | sort }}',
      '{{ trigger.list | reverse }}',
      '{% set x = trigger.list %}{{ x + [4] }}',
      '{{ trigger.d | combine({"b": 2}) }}',
      '{% for i in trigger.list %}{% set i = 0 %}{% endfor %}',
    ])
      compile(t).render(ctx);
    expect(ctx).toEqual(before);
  });
});
