import { describe, expect, it } from 'vitest';
import {
  findOperator,
  matchCriteria,
  OPERATOR_NAMES,
  OPERATORS,
  parseTimestamp,
  wildcardMatch,
} from '../../src/rules/index.ts';

const NOW = new Date('2024-06-01T12:00:00Z');
const nowS = NOW.getTime() / 1000;
const MISSING = Symbol('missing');

/** [operator, value (MISSING = the field is absent), pattern, expected: true | false | 'error'] */
type Row = [string, unknown, unknown, boolean | 'error'];

const ROWS: Row[] = [
  // equals / eq
  ['equals', 'a', 'a', true],
  ['equals', 'a', 'b', false],
  ['equals', 'A', 'a', false],
  ['equals', 5, 5, true],
  ['equals', 5, 6, false],
  ['equals', 5, '5', true],
  ['equals', '5.0', 5, true],
  ['equals', '5', '5.0', false],
  ['equals', 'abc', 0, false],
  ['equals', '', 0, false],
  ['equals', true, 'true', true],
  ['equals', true, 1, false],
  ['equals', null, null, true],
  ['equals', MISSING, null, true],
  ['equals', MISSING, 'x', false],
  ['equals', [1, 2], [1, 2], true],
  ['equals', [1, 2], [2, 1], false],
  ['equals', { a: 1, b: 2 }, { b: 2, a: 1 }, true],
  ['equals', { a: 1 }, { a: 1, b: 2 }, false],
  ['equals', { a: ['1'] }, { a: [1] }, true],
  ['eq', 'x', 'x', true],
  ['eq', 'x', 'y', false],
  // nequals / neq
  ['nequals', 'a', 'b', true],
  ['nequals', 'a', 'a', false],
  ['nequals', 5, '5', false],
  ['nequals', MISSING, 'x', true],
  ['nequals', MISSING, null, false],
  ['neq', 1, 2, true],
  // iequals / ieq
  ['iequals', 'ABC', 'abc', true],
  ['iequals', 'abc', 'abd', false],
  ['iequals', 5, '5', true],
  ['iequals', MISSING, 'x', false],
  ['ieq', 'Prod', 'PROD', true],
  // lessthan / lt
  ['lessthan', 3, 5, true],
  ['lessthan', 5, 3, false],
  ['lessthan', 5, 5, false],
  ['lessthan', '3', 5, true],
  ['lessthan', '10', 9, false],
  ['lessthan', 3, '10', true],
  ['lessthan', -1.5, 0, true],
  ['lessthan', 'abc', 'abd', true],
  ['lessthan', '2024-01-01', '2024-02-01', true],
  ['lessthan', MISSING, 5, false],
  ['lessthan', null, 5, false],
  ['lessthan', 'abc', 5, false],
  ['lessthan', true, 5, false],
  ['lessthan', [1], 5, false],
  ['lessthan', 5, { a: 1 }, 'error'],
  ['lt', 1, 2, true],
  // greaterthan / gt
  ['greaterthan', 10, '9', true],
  ['greaterthan', 1.5, 1, true],
  ['greaterthan', '1e3', 999, true],
  ['greaterthan', 1, 1, false],
  ['greaterthan', 'b', 'a', true],
  ['greaterthan', MISSING, 0, false],
  ['greaterthan', 1, null, 'error'],
  ['gt', 3, 2, true],
  // matchwildcard
  ['matchwildcard', 'foo.txt', '*.txt', true],
  ['matchwildcard', 'foo.txt', 'f?o.*', true],
  ['matchwildcard', 'foo', '[a-f]oo', true],
  ['matchwildcard', 'goo', '[!a-f]oo', true],
  ['matchwildcard', 'foo', '[!a-f]oo', false],
  ['matchwildcard', 'foo', 'fo', false],
  ['matchwildcard', 'a/b/c', 'a*c', true],
  ['matchwildcard', 'FOO', 'foo', false],
  ['matchwildcard', 'a[b', 'a[b', true],
  ['matchwildcard', '', '*', true],
  ['matchwildcard', 42, '4*', true],
  ['matchwildcard', MISSING, '*', false],
  ['matchwildcard', null, '*', false],
  ['matchwildcard', 'x', { a: 1 }, 'error'],
  // regex (search anywhere), iregex, matchregex (anchored at start, dot matches newline)
  ['regex', 'hello world', 'wor', true],
  ['regex', 'hello', '^h', true],
  ['regex', 'hello', '^e', false],
  ['regex', 'HELLO', 'hello', false],
  ['regex', 123, '^\\d+$', true],
  ['regex', 'abc', '(?P<first>a)', true],
  ['regex', 'x', '(', 'error'],
  ['regex', 'x', 5, 'error'],
  ['regex', MISSING, '.*', false],
  ['regex', ['a'], 'a', false],
  ['iregex', 'HELLO', 'hello', true],
  ['iregex', 'HELLO', '^[a-z]+$', true],
  ['iregex', 'HELLO', 'bye', false],
  ['matchregex', 'hello', 'ell', false],
  ['matchregex', 'hello', 'h.l', true],
  ['matchregex', 'a\nb', 'a.b', true],
  ['matchregex', 'x', '[', 'error'],
  // contains / ncontains / icontains / incontains
  ['contains', ['a', 'b'], 'a', true],
  ['contains', ['a', 'b'], 'c', false],
  ['contains', 'hello', 'ell', true],
  ['contains', 'hello', 'xyz', false],
  ['contains', { k: 1 }, 'k', true],
  ['contains', { k: 1 }, 'v', false],
  ['contains', ['1'], 1, true],
  ['contains', [{ a: 1 }], { a: 1 }, true],
  ['contains', 12345, '234', true],
  ['contains', MISSING, 'x', false],
  ['contains', null, 'x', false],
  ['contains', 'abc', ['a'], 'error'],
  ['ncontains', ['a'], 'b', true],
  ['ncontains', ['a'], 'a', false],
  ['ncontains', 'hello', 'ell', false],
  ['ncontains', MISSING, 'x', true],
  ['icontains', ['A', 'b'], 'a', true],
  ['icontains', 'HeLLo', 'ell', true],
  ['icontains', { Key: 1 }, 'key', true],
  ['icontains', 'abc', 'x', false],
  ['incontains', 'HeLLo', 'ELL', false],
  ['incontains', 'abc', 'x', true],
  ['incontains', ['A'], 'a', false],
  ['incontains', MISSING, 'x', true],
  // startswith / istartswith / endswith / iendswith
  ['startswith', 'hello', 'he', true],
  ['startswith', 'hello', 'He', false],
  ['startswith', 123, '12', true],
  ['startswith', MISSING, 'x', false],
  ['startswith', ['he'], 'he', false],
  ['startswith', 'x', null, 'error'],
  ['istartswith', 'Hello', 'he', true],
  ['istartswith', 'Hello', 'lo', false],
  ['endswith', 'file.txt', '.txt', true],
  ['endswith', 'file.txt', '.TXT', false],
  ['endswith', null, 'x', false],
  ['iendswith', 'FILE.TXT', '.txt', true],
  ['iendswith', 'file.txt', '.md', false],
  // timediff_lt / td_lt / timediff_gt / td_gt (now = 2024-06-01T12:00:00Z)
  ['timediff_lt', '2024-06-01T11:59:30Z', 60, true],
  ['timediff_lt', '2024-06-01T11:58:00Z', 60, false],
  ['timediff_lt', '2024-06-01T11:59:30', 60, true],
  ['timediff_lt', '2024-06-01 11:59:30.123456', 60, true],
  ['timediff_lt', '2024-06-01T13:59:30+02:00', 60, true],
  ['timediff_lt', '2024-06-01T10:59:30-01:00', 60, true],
  ['timediff_lt', '2024-06-01T12:59:30+02:00', 60, false],
  ['timediff_lt', nowS - 30, 60, true],
  ['timediff_lt', String(nowS - 30), '60', true],
  ['timediff_lt', (nowS - 30) * 1000, 60, true],
  ['timediff_lt', '2024-06-01T12:00:30Z', 60, true],
  ['timediff_lt', 'not a date', 60, false],
  ['timediff_lt', '2024-02-30T00:00:00Z', 60, false],
  ['timediff_lt', MISSING, 60, false],
  ['timediff_lt', '2024-06-01T11:59:30Z', -1, 'error'],
  ['timediff_lt', '2024-06-01T11:59:30Z', 'soon', 'error'],
  ['td_lt', '2024-06-01T11:59:59Z', 5, true],
  ['timediff_gt', '2024-06-01T11:00:00Z', 60, true],
  ['timediff_gt', '2024-06-01T11:59:30Z', 60, false],
  ['timediff_gt', nowS - 3600, 60, true],
  ['td_gt', '2024-05-31', 3600, true],
  // exists / nexists
  ['exists', 'x', undefined, true],
  ['exists', 0, undefined, true],
  ['exists', false, undefined, true],
  ['exists', '', undefined, true],
  ['exists', [], undefined, true],
  ['exists', null, undefined, false],
  ['exists', MISSING, undefined, false],
  ['nexists', MISSING, undefined, true],
  ['nexists', null, undefined, true],
  ['nexists', 0, undefined, false],
  // inside / in / ninside / nin
  ['inside', 'a', ['a', 'b'], true],
  ['inside', 'c', ['a', 'b'], false],
  ['inside', 5, ['5'], true],
  ['inside', { a: 1 }, [{ a: 1 }], true],
  ['inside', 'ell', 'hello', true],
  ['inside', 'k', { k: 1 }, true],
  ['inside', MISSING, [null], true],
  ['inside', MISSING, ['x'], false],
  ['inside', 'x', 5, 'error'],
  ['in', 'b', ['a', 'b'], true],
  ['ninside', 'c', ['a'], true],
  ['ninside', 'a', ['a'], false],
  ['ninside', MISSING, ['x'], true],
  ['ninside', 'x', null, 'error'],
  ['nin', 2, [1], true],
];

describe('criteria operators (table-driven)', () => {
  for (const [name, value, pattern, want] of ROWS) {
    const label = `${name}: ${value === MISSING ? '(missing)' : JSON.stringify(value)} vs ${JSON.stringify(pattern)} → ${want}`;
    it(label, () => {
      const op = findOperator(name);
      expect(op, name).toBeDefined();
      const out = op!.test(value === MISSING ? undefined : value, pattern, { now: NOW });
      if (want === 'error') {
        expect(out.matched).toBe(false);
        expect(out.error).toEqual(expect.any(String));
      } else {
        expect(out.matched).toBe(want);
        expect(out.error).toBeUndefined();
      }
    });
  }

  it('every operator name and alias has rows (search is covered by the matcher tests)', () => {
    const covered = new Set(ROWS.map((r) => r[0]));
    const missing = OPERATOR_NAMES.filter((n) => n !== 'search' && !covered.has(n));
    expect(missing).toEqual([]);
  });

  it('the name list and the table agree', () => {
    const fromTable = OPERATORS.flatMap((o) => [o.name, ...o.aliases]).sort();
    expect([...OPERATOR_NAMES].sort()).toEqual(fromTable);
    expect(findOperator('EQUALS')).toBeUndefined();
    expect(findOperator(42)).toBeUndefined();
  });

  it('gives a reason for non-matches that are about types', () => {
    const op = findOperator('lt')!;
    expect(op.test('abc', 5, { now: NOW }).reason).toMatch(/cannot compare string "abc" with number 5/);
    expect(findOperator('startswith')!.test(undefined, 'x', { now: NOW }).reason).toMatch(/missing/);
  });

  it('behave the same through matchCriteria on payload paths', () => {
    for (const [name, value, pattern, want] of ROWS) {
      const payload = value === MISSING ? {} : { f: value };
      const spec = findOperator(name)!.pattern === 'none' ? { type: name } : { type: name, pattern };
      const res = matchCriteria({ 'trigger.f': spec }, { trigger: payload }, { now: NOW });
      expect(res.matched, `${name} ${String(value === MISSING ? '(missing)' : JSON.stringify(value))}`).toBe(
        want === true,
      );
      if (want === 'error') expect(res.details[0]!.error).toEqual(expect.any(String));
    }
  });
});

describe('wildcards and timestamps', () => {
  it('wildcard matching has no pathological cases', () => {
    const t0 = performance.now();
    expect(wildcardMatch('a'.repeat(5000), `${'*a'.repeat(50)}*b`)).toBe(false);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(wildcardMatch('abc', '***')).toBe(true);
    expect(wildcardMatch('abc', 'a**c')).toBe(true);
    expect(wildcardMatch('ab', 'a?c')).toBe(false);
    expect(wildcardMatch('a-b', 'a[-]b')).toBe(true);
    expect(wildcardMatch('a]b', 'a[]]b')).toBe(true);
    expect(wildcardMatch('ünï', '?n?')).toBe(true);
  });

  it('parses ISO 8601 and epoch timestamps, rejecting nonsense', () => {
    expect(parseTimestamp('2024-06-01T12:00:00Z')).toBe(NOW.getTime());
    expect(parseTimestamp('2024-06-01T12:00:00')).toBe(NOW.getTime());
    expect(parseTimestamp('2024-06-01T14:00:00+02:00')).toBe(NOW.getTime());
    expect(parseTimestamp('2024-06-01T14:00:00+0200')).toBe(NOW.getTime());
    expect(parseTimestamp('2024-06-01t12:00:00z')).toBe(NOW.getTime());
    expect(parseTimestamp(nowS)).toBe(NOW.getTime());
    expect(parseTimestamp(NOW.getTime())).toBe(NOW.getTime());
    expect(parseTimestamp(NOW)).toBe(NOW.getTime());
    for (const bad of [
      '2024-13-01',
      '2024-06-31T00:00:00Z',
      '2024-06-01T25:00:00Z',
      'yesterday',
      '',
      true,
      null,
      {},
    ])
      expect(parseTimestamp(bad), String(bad)).toBeUndefined();
  });
});
