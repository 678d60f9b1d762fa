import { describe, expect, it } from 'vitest';
import {
  compileRegex,
  ExprError,
  evaluate,
  LIMITS,
  LINEAR_REGEX_ENGINE,
  regexMatchStart,
  regexProblem,
  regexSearch,
} from '../../src/expr/index.ts';

const search = (pattern: string, text: string, ignoreCase = false) =>
  regexSearch(compileRegex(pattern, { ignoreCase }), text);

describe('regular expressions (Python syntax)', () => {
  it('runs on the linear-time engine on this Node.js', () => {
    expect(LINEAR_REGEX_ENGINE).toBe(true);
    expect(compileRegex('a+b').linear).toBe(true);
  });

  it('understands Python-only syntax', () => {
    expect(search('(?P<year>\\d{4})-(?P<m>\\d\\d)', 'on 2024-05')?.groups).toEqual({ year: '2024', m: '05' });
    expect(search('(?P<q>[\'"]).*?(?P=q)', `say "hi" now`)?.[0]).toBe('"hi"');
    expect(search('\\Aabc\\Z', 'abc')).not.toBeNull();
    expect(search('\\Aabc', 'xabc')).toBeNull();
    expect(search('^a{,2}$', 'aa')).not.toBeNull();
    expect(search('^a{,2}$', 'aaa')).toBeNull();
    expect(search('a(?# a comment)b', 'ab')).not.toBeNull();
    expect(search('(?i)hello', 'HeLLo')).not.toBeNull();
    expect(search('(?s)a.b', 'a\nb')).not.toBeNull();
    expect(search('a.b', 'a\nb')).toBeNull();
    expect(search('(?m)^b$', 'a\nb\nc')).not.toBeNull();
    expect(search('[]a]+', 'x]a]')?.[0]).toBe(']a]');
    expect(search('a{x', 'a{x')).not.toBeNull();
  });

  it('ignores case correctly on the linear engine (letters, classes, ranges, negation)', () => {
    expect(search('abc', 'xABCx', true)?.[0]).toBe('ABC');
    expect(search('^[a-c]+$', 'AbC', true)).not.toBeNull();
    expect(search('^[A-C]+$', 'abc', true)).not.toBeNull();
    expect(search('^[^a]$', 'A', true)).toBeNull();
    expect(search('^[^a]$', 'b', true)).not.toBeNull();
    expect(search('^\\w+\\d$', 'ABC1', true)).not.toBeNull();
    expect(search('é', 'É', true)).not.toBeNull();
    expect(search('^[!-~]+$', 'aZ!', true)).not.toBeNull();
  });

  it('matches at the start for re.match semantics', () => {
    const re = compileRegex('b');
    expect(regexMatchStart(re, 'ab')).toBeNull();
    expect(regexMatchStart(re, 'ba')).not.toBeNull();
  });

  it('reports invalid patterns clearly', () => {
    const bad: [string, RegExp][] = [
      ['(', /missing '\)'/],
      [')', /unbalanced/],
      ['[a', /unterminated character set/],
      ['*a', /nothing to repeat/],
      ['a**', /multiple repeat/],
      ['a*+', /possessive/],
      ['\\q', /bad escape/],
      ['a(?i)b', /inline flags/],
      ['(?x)a b', /verbose/],
      ['[z-a]', /bad character range/],
      ['a{3,1}', /out of order/],
      ['a{1,5000}', /above 1000/],
      ['(?P<1x>a)', /inline flags|invalid|group/],
    ];
    for (const [p, re] of bad) {
      const problem = regexProblem(p);
      expect(problem, p).not.toBeNull();
      expect(problem, p).toMatch(re);
    }
    expect(regexProblem('x'.repeat(LIMITS.regexPattern + 1))).toMatch(/longer than/);
    expect(() => compileRegex('(')).toThrow(ExprError);
  });

  it('caches compiled patterns (errors included)', () => {
    expect(compileRegex('abc')).toBe(compileRegex('abc'));
    expect(compileRegex('abc', { ignoreCase: true })).not.toBe(compileRegex('abc'));
    expect(() => compileRegex('(')).toThrow(/missing/);
    expect(() => compileRegex('(')).toThrow(/missing/);
  });
});

describe('regular expressions cannot stall the host', () => {
  const time = (fn: () => unknown) => {
    const t0 = performance.now();
    fn();
    return performance.now() - t0;
  };

  it('exponential patterns finish in linear time (or are refused up front)', () => {
    const subject = `${'a'.repeat(50_000)}!`;
    for (const p of ['^(a+)+$', '^(a|aa)+$', '^(a|a?)+$', '^(\\w+\\s?)*$', '(.*a){20}$', '^((a+)+)+b']) {
      const ms = time(() => {
        const problem = regexProblem(p);
        if (problem === null) expect(search(p, subject)).toBeNull();
        else expect(problem).toMatch(/nested repetition/);
      });
      expect(ms, p).toBeLessThan(2000);
    }
    expect(regexProblem('(.*a){20}$')).toMatch(/nested repetition/);
  });

  it('polynomial patterns finish in linear time', () => {
    const subject = 'a'.repeat(20_000);
    for (const p of ['.*.*.*x', 'a*a*a*b', '\\s*\\s*$x']) {
      const ms = time(() => expect(search(p, subject)).toBeNull());
      expect(ms, p).toBeLessThan(2000);
    }
  });

  it('backreferences use the backtracking engine, with nested repetition refused and shorter subjects', () => {
    const re = compileRegex('(\\w)\\1');
    expect(re.linear).toBe(false);
    expect(regexSearch(re, 'abccd')?.[0]).toBe('cc');
    expect(regexProblem('^(a+)+\\1$')).toMatch(/nested repetition/);
    expect(regexProblem('(?=(a*)*)x')).toMatch(/nested repetition/);
    expect(() => regexSearch(re, 'a'.repeat(LIMITS.regexSubjectBacktracking + 1))).toThrow(
      /exceeds the limit/,
    );
  });

  it('caps the subject length on the linear engine too', () => {
    const re = compileRegex('a');
    expect(() => regexSearch(re, 'b'.repeat(LIMITS.regexSubject + 1))).toThrow(/exceeds the limit/);
    expect(regexSearch(re, `${'b'.repeat(LIMITS.regexSubject - 1)}a`)).not.toBeNull();
  });
});

describe('regex filters', () => {
  it('replace with Python group references, $ literal', () => {
    expect(evaluate('"a1b2" | regex_replace("(?P<d>\\\\d)", "<\\\\g<d>>")', {})).toBe('a<1>b<2>');
    expect(evaluate('"a1" | regex_replace("(\\\\d)", "\\\\g<1>\\\\1")', {})).toBe('a11');
    expect(evaluate('"a1" | regex_replace("(\\\\d)", "$1")', {})).toBe('a$1');
    expect(evaluate('"baa" | regex_replace("a*", "-")', {})).toBe('-b--');
    expect(() => evaluate('"a" | regex_replace("a", "\\\\2")', {})).toThrow(/group 2/);
  });

  it('findall follows Python: full matches, one group, or tuples', () => {
    expect(evaluate('"baa" | regex_findall("a*")', {})).toEqual(['', 'aa', '']);
    expect(evaluate('"x=1,y=2" | regex_findall("\\\\w=(\\\\d)")', {})).toEqual(['1', '2']);
    expect(evaluate('"x=1,y=2" | regex_findall("(\\\\w)=(\\\\d)")', {})).toEqual([
      ['x', '1'],
      ['y', '2'],
    ]);
  });
});
