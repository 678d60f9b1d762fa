import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compile, ExprError, evaluate, FILTERS, TESTS } from '../../src/expr/index.ts';

const ctx = {
  users: [
    { name: 'bob', age: 30, city: 'Paris', admin: true },
    { name: 'alice', age: 25, city: 'Lyon', admin: false },
    { name: 'carol', age: 35, city: 'Paris', admin: true },
  ],
  nums: [3, 1, 2, 3],
  d: { b: 2, a: 1 },
  text: 'Hello World',
  nested: [1, [2, [3, [4]]], null],
};

// [expression, expected value]
const FILTER_CASES: [string, unknown][] = [
  ['-3 | abs', 3],
  ['users | first | attr("name")', 'bob'],
  ['[1,2,3,4,5] | batch(2)', [[1, 2], [3, 4], [5]]],
  [
    '[1,2,3] | batch(2, 0)',
    [
      [1, 2],
      [3, 0],
    ],
  ],
  ['"hELLO" | capitalize', 'Hello'],
  ['"ab" | center(6)', '  ab  '],
  ['missing | default("x")', 'x'],
  ['none | default("x")', null],
  ['"" | default("x", true)', 'x'],
  ['missing | d(3)', 3],
  [
    'd | dictsort',
    [
      ['a', 1],
      ['b', 2],
    ],
  ],
  [
    'd | dictsort(by="value", reverse=true)',
    [
      ['b', 2],
      ['a', 1],
    ],
  ],
  ['"<a href=\'x\'>&</a>" | escape', '&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;'],
  ['nums | first', 3],
  ['"abc" | first', 'a'],
  ['nums | last', 3],
  ['"3.5" | float', 3.5],
  ['"x" | float(1.5)', 1.5],
  ['"42" | int', 42],
  ['"3.9" | int', 3],
  ['"0x1A" | int(base=16)', 26],
  ['"ff" | int(0, 16)', 255],
  ['"nope" | int', 0],
  ['"nope" | int(-1)', -1],
  ['true | int', 1],
  ['"%05.2f|%-4s|%x" | format(3.14159, "ab", 255)', '03.14|ab  |ff'],
  ['"%(a)s-%(b)d" | format(a="x", b=2)', 'x-2'],
  ['users | groupby("city") | map(attribute="grouper")', ['Lyon', 'Paris']],
  ['(users | groupby("city"))[1].list | map(attribute="name")', ['bob', 'carol']],
  ['"a\\nb" | indent(2)', 'a\n  b'],
  ['"a\\nb" | indent(2, true)', '  a\n  b'],
  ['nums | join("-")', '3-1-2-3'],
  ['users | join(", ", attribute="name")', 'bob, alice, carol'],
  ['nums | length', 4],
  ['d | length', 2],
  ['"abc" | count', 3],
  ['missing | length', 0],
  ['"ab" | list', ['a', 'b']],
  ['d | list', ['b', 'a']],
  ['"ABC" | lower', 'abc'],
  ['"abc" | upper', 'ABC'],
  ['"hello big world" | title', 'Hello Big World'],
  ['"  x  " | trim', 'x'],
  ['"--x--" | trim("-")', 'x'],
  ['"<b>bold</b>  text" | striptags', 'bold text'],
  ['"the quick brown fox jumps" | truncate(13, leeway=0)', 'the quick...'],
  ['"the quick brown fox jumps" | truncate(12, leeway=0)', 'the...'],
  ['"the quick brown fox jumps" | truncate(12, true, "…", 0)', 'the quick b…'],
  ['"short" | truncate(12)', 'short'],
  ['"one two three" | wordcount', 3],
  ['users | map(attribute="name")', ['bob', 'alice', 'carol']],
  ['users | map(attribute="missing", default="-")', ['-', '-', '-']],
  ['["a", "b"] | map("upper")', ['A', 'B']],
  ['["1", "2"] | map("int") | sum', 3],
  ['nums | max', 3],
  ['nums | min', 1],
  ['users | max(attribute="age") | attr("name")', 'carol'],
  ['["b", "A", "c"] | min', 'A'],
  ['[] | max', null],
  ['nums | select("odd")', [3, 1, 3]],
  ['nums | reject("odd")', [2]],
  ['nums | select("equalto", 3)', [3, 3]],
  ['nums | select("gt", 1)', [3, 2, 3]],
  ['[0, 1, "", "x", none] | select', [1, 'x']],
  ['users | selectattr("admin") | map(attribute="name")', ['bob', 'carol']],
  ['users | rejectattr("admin") | map(attribute="name")', ['alice']],
  ['users | selectattr("city", "equalto", "Lyon") | map(attribute="name")', ['alice']],
  ['users | selectattr("age", "ge", 30) | length', 2],
  ['"aaa" | replace("a", "b", 2)', 'bba'],
  ['"abc" | replace("", "-")', '-a-b-c-'],
  ['nums | reverse', [3, 2, 1, 3]],
  ['"abc" | reverse', 'cba'],
  ['2.5 | round', 3],
  ['-2.5 | round', -3],
  ['3.14159 | round(2)', 3.14],
  ['3.11 | round(1, "ceil")', 3.2],
  ['3.19 | round(1, "floor")', 3.1],
  [
    '[1,2,3,4,5] | slice(2)',
    [
      [1, 2, 3],
      [4, 5],
    ],
  ],
  ['nums | sort', [1, 2, 3, 3]],
  ['nums | sort(reverse=true)', [3, 3, 2, 1]],
  ['["b", "A", "c"] | sort', ['A', 'b', 'c']],
  ['["b", "A", "c"] | sort(case_sensitive=true)', ['A', 'b', 'c']],
  ['users | sort(attribute="age") | map(attribute="name")', ['alice', 'bob', 'carol']],
  ['[3, "a", none, 1] | sort', [null, 1, 3, 'a']],
  ['12 | string', '12'],
  ['nums | sum', 9],
  ['users | sum(attribute="age")', 90],
  ['nums | sum(start=10)', 19],
  ['nums | unique', [3, 1, 2]],
  ['["a", "A", "b"] | unique', ['a', 'b']],
  ['["a", "A", "b"] | unique(case_sensitive=true)', ['a', 'A', 'b']],
  ['users | unique(attribute="city") | map(attribute="name")', ['bob', 'alice']],
  ['"a b/c&d" | urlencode', 'a%20b/c%26d'],
  ['{"q": "a b", "n": 1} | urlencode', 'q=a%20b&n=1'],
  ['"a%20b+c" | urldecode', 'a b c'],
  [
    'd | items',
    [
      ['b', 2],
      ['a', 1],
    ],
  ],
  ['d | keys', ['b', 'a']],
  ['d | values', [2, 1]],
  ['d | tojson', '{"b":2,"a":1}'],
  ['[1] | tojson(2)', '[\n  1\n]'],
  ['d | to_json', '{"b":2,"a":1}'],
  ['d | to_json_string(sort_keys=true, indent=2)', '{\n  "a": 1,\n  "b": 2\n}'],
  ['d | to_json_string', '{\n    "b": 2,\n    "a": 1\n}'],
  ['d | to_nice_json', '{\n    "a": 1,\n    "b": 2\n}'],
  ['d | to_complex', '{"b":2,"a":1}'],
  ['\'{"a": [1, 2]}\' | from_json', { a: [1, 2] }],
  ['\'{"a": 1}\' | from_json_string', { a: 1 }],
  ['"say \\"hi\\"\\n" | json_escape', 'say \\"hi\\"\\n'],
  ['d | to_yaml', 'b: 2\na: 1\n'],
  ['{"a": {"b": 1}} | to_nice_yaml', 'a:\n    b: 1\n'],
  ['"a: 1\\nb: [x, y]" | from_yaml', { a: 1, b: ['x', 'y'] }],
  ['"abc" | regex_match("a.c")', true],
  ['"xabc" | regex_match("a.c")', false],
  ['"xabc" | regex_search("a.c")', true],
  ['"ABC" | regex_search("b", ignorecase=true)', true],
  ['"2024-01-15" | regex_replace("(\\\\d+)-(\\\\d+)-(\\\\d+)", "\\\\3/\\\\2/\\\\1")', '15/01/2024'],
  ['"a1b22" | regex_replace("\\\\d+", "#")', 'a#b#'],
  ['"a1b22" | regex_replace("\\\\d", "#", count=1)', 'a#b22'],
  ['"v1.2.3" | regex_substring("\\\\d+")', '1'],
  ['"v1.2.3" | regex_substring("\\\\d+", 2)', '3'],
  ['"v1.2.3" | regex_substring("x")', null],
  [
    '"k1=v1 k2=v2" | regex_findall("(\\\\w+)=(\\\\w+)")',
    [
      ['k1', 'v1'],
      ['k2', 'v2'],
    ],
  ],
  ['"a.b" | regex_escape', 'a\\.b'],
  ['"aXbXc" | regex_count("X")', 2],
  ['"héllo" | b64encode', 'aMOpbGxv'],
  ['"aMOpbGxv" | b64decode', 'héllo'],
  ['"abc" | hash("sha256")', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
  ['"abc" | hash("md5")', '900150983cd24fb0d6963f7d28e17f72'],
  ['"it\'s" | quote', "'it'\"'\"'s'"],
  ['"safe-name.txt" | quote', 'safe-name.txt'],
  ['"" | quote', "''"],
  ['nested | flatten', [1, 2, 3, 4]],
  ['nested | flatten(1)', [1, 2, [3, [4]]]],
  ['[1, 2] | union([2, 3])', [1, 2, 3]],
  ['[1, 2, 3] | intersect([2, 3, 4])', [2, 3]],
  ['[1, 2, 3] | difference([2])', [1, 3]],
  ['[1, 2] | symmetric_difference([2, 3])', [1, 3]],
  [
    '[1, 2, 3] | zip(["a", "b"])',
    [
      [1, 'a'],
      [2, 'b'],
    ],
  ],
  ['{"a": 1, "n": {"x": 1}} | combine({"b": 2, "n": {"y": 2}})', { a: 1, n: { y: 2 }, b: 2 }],
  ['{"n": {"x": 1}} | combine({"n": {"y": 2}}, recursive=true)', { n: { x: 1, y: 2 } }],
  [
    'd | dict2items',
    [
      { key: 'b', value: 2 },
      { key: 'a', value: 1 },
    ],
  ],
  ['[{"key": "a", "value": 1}] | items2dict', { a: 1 }],
  ['[{"k": "a", "v": 1}] | items2dict("k", "v")', { a: 1 }],
  ['true | ternary("yes", "no")', 'yes'],
  ['[] | ternary("yes", "no")', 'no'],
  ['none | ternary("yes", "no", "null")', 'null'],
  ['1 | mandatory', 1],
  ['missing | use_none', null],
  ['[] | type_debug', 'list'],
  ['"/a/b/c.txt" | basename', 'c.txt'],
  ['"/a/b/c.txt" | dirname', '/a/b'],
  ['"a,b,c" | split(",")', ['a', 'b', 'c']],
  ['"a b  c" | split', ['a', 'b', 'c']],
  ['3725 | to_human_time_from_seconds', '1h2m5s'],
  ['90061 | to_human_time_from_seconds', '1d1h1m1s'],
  ['0 | to_human_time_from_seconds', '0s'],
  ['"1.2.3" | version_compare("1.10.0")', -1],
  ['"2.0.0" | version_more_than("1.9.9")', true],
  ['"1.0.0" | version_less_than("1.0.1")', true],
  ['"1.0.0" | version_equal("1.0.0")', true],
  ['"1.4.2" | version_match(">=1.4 <2")', true],
  ['"1.4.2" | version_bump_major', '2.0.0'],
  ['"1.4.2" | version_bump_minor', '1.5.0'],
  ['"1.4.2" | version_bump_patch', '1.4.3'],
  ['"1.4.2" | version_strip_patch', '1.4'],
  ['"yes" | bool', true],
  ['"off" | bool', false],
  ['1 | bool', true],
  ['"a\\nb" | nl2br', 'a<br />\nb'],
  ['d | pprint', '{\n  "a": 1,\n  "b": 2\n}'],
  ['"abc" | safe', 'abc'],
  ['d | safe', { b: 2, a: 1 }],
];

describe('filters', () => {
  for (const [expr, want] of FILTER_CASES) {
    it(expr, () => {
      expect(evaluate(expr, ctx)).toEqual(want);
    });
  }

  it('covers every filter in the table', () => {
    const used = new Set<string>();
    for (const [expr] of FILTER_CASES) for (const m of expr.matchAll(/\|\s*(\w+)/g)) used.add(m[1]!);
    for (const m of FILTER_CASES.flatMap(([e]) => [...e.matchAll(/map\("(\w+)"/g)])) used.add(m[1]!);
    const aliases = ['e', 'forceescape', 'dump', 'from_yaml_string', 'to_yaml_string'];
    const missing = Object.keys(FILTERS).filter((f) => !used.has(f) && !aliases.includes(f));
    expect(missing).toEqual([]);
  });

  it('fail clearly on bad input', () => {
    const bad: [string, RegExp][] = [
      ['5 | length', /length: a number has no length/],
      ['"x" | dictsort', /dictsort: expected a dict/],
      ['"{bad" | from_json', /from_json/],
      ['"a: [" | from_yaml', /from_yaml/],
      ['"%d" | format("x")', /expected a number/],
      ['"%s %s" | format(1)', /not enough arguments/],
      ['[1] | batch(0)', /at least 1/],
      ['"x" | regex_search("(")', /invalid regular expression/],
      ['"!!" | b64decode', /not base64/],
      ['"x" | hash("nope")', /unknown algorithm/],
      ['missing | mandatory("need x")', /need x/],
      ['"x" | version_compare("1.0")', /not a version/],
      ['[1] | map("nope")', /no filter named 'nope'/],
      ['[1] | select("nope")', /no test named 'nope'/],
      ['[1] | map()', /filter name or attribute/],
      ['[{"x": 1}] | items2dict', /needs a 'key' key/],
      ['"a" | sum', /expected a number/],
      ['[1] | sort(bogus=1)', /unexpected keyword argument 'bogus'/],
    ];
    for (const [expr, re] of bad) {
      let err: unknown;
      try {
        evaluate(expr, ctx);
      } catch (e) {
        err = e;
      }
      expect(err, expr).toBeInstanceOf(ExprError);
      expect((err as Error).message, expr).toMatch(re);
    }
  });

  it('never mutate their input', () => {
    const data = { list: [3, 1, 2], users: structuredClone(ctx.users), d: { b: 1, a: 2 } };
    const before = structuredClone(data);
    for (const expr of [
      'list | sort',
      'list | reverse',
      'users | sort(attribute="age")',
      'users | groupby("city")',
      'd | dictsort',
      'd | combine({"c": 3})',
      'list | unique',
      'list + [4]',
    ])
      evaluate(expr, data);
    expect(data).toEqual(before);
  });
});

// [expression, expected]
const TEST_CASES: [string, boolean][] = [
  ['x is defined', false],
  ['1 is defined', true],
  ['x is undefined', true],
  ['none is none', true],
  ['none is null', true],
  ['true is boolean', true],
  ['true is true', true],
  ['false is false', true],
  ['1 is number', true],
  ['1 is integer', true],
  ['1.5 is float', true],
  ['"a" is string', true],
  ['{} is mapping', true],
  ['{} is dict', true],
  ['[] is list', true],
  ['"a" is sequence', true],
  ['[] is iterable', true],
  ['range is callable', true],
  ['3 is odd', true],
  ['4 is even', true],
  ['9 is divisibleby(3)', true],
  ['3 is eq(3)', true],
  ['3 is equalto("3")', true],
  ['3 is sameas(3)', true],
  ['3 is ne(4)', true],
  ['3 is lt(4)', true],
  ['3 is lessthan(4)', true],
  ['3 is le(3)', true],
  ['4 is gt(3)', true],
  ['4 is greaterthan(3)', true],
  ['3 is ge(3)', true],
  ['"10" is gt(9)', true],
  ['2 is in([1, 2])', true],
  ['[1, 2] is contains(2)', true],
  ['"abc" is lower', true],
  ['"ABC" is upper', true],
  ['"x" is truthy', true],
  ['[] is falsy', true],
  ['{} is empty', true],
  ['"abc" is match("a")', true],
  ['"abc" is match("b")', false],
  ['"abc" is search("b")', true],
  ['"abc" is regex("^a")', true],
  ['"1.2.3" is version(">=1.0.0")', true],
];

describe('tests', () => {
  for (const [expr, want] of TEST_CASES) {
    it(expr, () => {
      expect(evaluate(expr, {})).toBe(want);
    });
  }

  it('covers every test in the table', () => {
    const used = new Set(TEST_CASES.map(([e]) => /is (\w+)/.exec(e)![1]!));
    expect(Object.keys(TESTS).filter((t) => !used.has(t))).toEqual([]);
  });

  it('are usable in select/reject and in conditions', () => {
    expect(compile('{% if 3 is odd %}odd{% endif %}').render({})).toBe('odd');
    expect(evaluate('[1, 2, 3, 4] | reject("divisibleby", 2)', {})).toEqual([1, 3]);
  });
});

describe('documentation', () => {
  it('lists every filter and test', () => {
    const doc = readFileSync(new URL('../../docs/expressions.md', import.meta.url), 'utf8');
    const mentioned = new Set([...doc.matchAll(/`([a-z_0-9]+)/g)].map((m) => m[1]));
    expect(Object.keys(FILTERS).filter((f) => !mentioned.has(f))).toEqual([]);
    expect(Object.keys(TESTS).filter((t) => !mentioned.has(t))).toEqual([]);
  });
});
