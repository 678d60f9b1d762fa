import { describe, expect, it } from 'vitest';
import { ExprError } from '../../src/expr/index.ts';
import {
  type MatchResult,
  matchCriteria,
  parsePath,
  renderParameters,
  resolveSegments,
  ruleContext,
} from '../../src/rules/index.ts';

const NOW = new Date('2024-06-01T12:00:00Z');
const opts = { now: NOW };

const payload = {
  severity: 'critical',
  count: 7,
  host: { name: 'web-1', tags: ['prod', 'eu'] },
  headers: { 'X-GitHub-Event': 'push', 'a.b': 'dotted' },
  items: [
    { name: 'disk', status: 'ok', value: 40 },
    { name: 'cpu', status: 'alarm', value: 97 },
  ],
  created: '2024-06-01T11:59:00Z',
};
const ctx = { trigger: payload, keys: { threshold: 5, envs: ['prod', 'staging'] }, event: { id: 9 } };

const match = (criteria: unknown, c: Record<string, unknown> = ctx): MatchResult =>
  matchCriteria(criteria, c, opts);

describe('paths', () => {
  it('parses dotted, indexed, bracketed and tagged keys', () => {
    expect(parsePath('trigger.a.b').segments).toEqual(['trigger', 'a', 'b']);
    expect(parsePath('trigger.items.0.name').segments).toEqual(['trigger', 'items', '0', 'name']);
    expect(parsePath("trigger.headers['X-GitHub-Event']").segments).toEqual([
      'trigger',
      'headers',
      'X-GitHub-Event',
    ]);
    expect(parsePath('trigger["a.b"][2]').segments).toEqual(['trigger', 'a.b', 2]);
    expect(parsePath('trigger.count#low').segments).toEqual(['trigger', 'count']);
    for (const bad of ['', 'a..b', 'a.', '.a', 'a[', "a['x", 'a[x]', 'a b', '#tag'])
      expect(() => parsePath(bad), bad).toThrow();
  });

  it('resolves own properties and list items only', () => {
    expect(resolveSegments(payload, ['items', '1', 'name'])).toBe('cpu');
    expect(resolveSegments(payload, ['items', -1, 'name'])).toBe('cpu');
    expect(resolveSegments(payload, ['items', 5])).toBeUndefined();
    expect(resolveSegments(payload, ['host', 'name', 'length'])).toBeUndefined();
    expect(resolveSegments(payload, ['constructor'])).toBeUndefined();
    expect(resolveSegments(payload, ['host', 'toString'])).toBeUndefined();
  });
});

describe('matchCriteria', () => {
  it('addresses the payload through trigger.* and payload.*, with indexes and brackets', () => {
    const res = match({
      'trigger.severity': { type: 'equals', pattern: 'critical' },
      'payload.host.name': { type: 'startswith', pattern: 'web' },
      'trigger.items.1.status': { type: 'eq', pattern: 'alarm' },
      "trigger.headers['X-GitHub-Event']": { type: 'equals', pattern: 'push' },
      'trigger["headers"]["a.b"]': { type: 'equals', pattern: 'dotted' },
      'trigger.host.tags[-1]': { type: 'equals', pattern: 'eu' },
      'event.id': { type: 'equals', pattern: 9 },
      severity: { type: 'equals', pattern: 'critical' },
    });
    expect(res.details.filter((d) => !d.matched)).toEqual([]);
    expect(res.matched).toBe(true);
  });

  it('ANDs the criteria and reports each one', () => {
    const res = match({
      'trigger.severity': { type: 'equals', pattern: 'critical' },
      'trigger.count': { type: 'gt', pattern: 10 },
      'trigger.nothing': { type: 'exists' },
    });
    expect(res.matched).toBe(false);
    expect(res.details).toEqual([
      {
        key: 'trigger.severity',
        type: 'equals',
        matched: true,
        found: true,
        value: 'critical',
        pattern: 'critical',
      },
      { key: 'trigger.count', type: 'gt', matched: false, found: true, value: 7, pattern: 10 },
      {
        key: 'trigger.nothing',
        type: 'exists',
        matched: false,
        found: false,
        reason: 'the field is missing',
      },
    ]);
  });

  it('matches when there are no criteria', () => {
    expect(match({})).toEqual({ matched: true, details: [] });
    expect(match(null)).toEqual({ matched: true, details: [] });
    expect(match(undefined)).toEqual({ matched: true, details: [] });
  });

  it('reports malformed criteria as errors instead of throwing', () => {
    const res = match({
      'trigger.a': { type: 'nope', pattern: 1 },
      'trigger.b': { pattern: 1 },
      'trigger.c': { type: 'equals' },
      'trigger..d': { type: 'equals', pattern: 1 },
      'trigger.e': 'equals',
      'trigger.f': { type: 'search', pattern: { 'item.x': { type: 'exists' } } },
      'trigger.g': { type: 'search', condition: 'any', pattern: {} },
      expression: 42,
    });
    expect(res.matched).toBe(false);
    expect(res.details.map((d) => d.error)).toEqual([
      "unknown operator 'nope'",
      'the operator (type) is missing',
      "'equals' needs a pattern",
      "invalid path 'trigger..d': empty segment at position 8",
      'a criterion must be an object {type, pattern}',
      'search needs a condition: any, all, any2any, all2any',
      'a search pattern maps item paths to criteria',
      'the expression must be a non-empty string',
    ]);
    expect(match('criteria').details[0]!.error).toBe('criteria must be an object');
    expect(match([{ type: 'equals' }]).matched).toBe(false);
  });

  it('lets the same field be tested twice with #tags', () => {
    const c = {
      'trigger.count#low': { type: 'gt', pattern: 5 },
      'trigger.count#high': { type: 'lt', pattern: 10 },
    };
    expect(match(c).matched).toBe(true);
    expect(match(c, { trigger: { count: 12 } }).matched).toBe(false);
  });

  it('renders template patterns with their type, from keys and the payload', () => {
    const res = match({
      'trigger.count': { type: 'gt', pattern: '{{ keys.threshold }}' },
      'trigger.host.tags.0': { type: 'inside', pattern: '{{ keys.envs }}' },
      'trigger.severity': { type: 'inside', pattern: ['{{ "crit" ~ "ical" }}', 'major'] },
      'trigger.host.name': { type: 'equals', pattern: 'web-{{ trigger.count - 6 }}' },
    });
    expect(res.details.map((d) => [d.matched, d.pattern])).toEqual([
      [true, 5],
      [true, ['prod', 'staging']],
      [true, ['critical', 'major']],
      [true, 'web-1'],
    ]);
  });

  it('reports template errors in patterns', () => {
    const res = match({ 'trigger.count': { type: 'gt', pattern: '{{ keys.threshold | nope }}' } });
    expect(res.matched).toBe(false);
    expect(res.details[0]!.error).toMatch(/^pattern: unknown filter 'nope'/);
  });

  it('uses the caller-provided renderer when given', () => {
    const seen: string[] = [];
    const res = matchCriteria(
      { 'trigger.count': { type: 'equals', pattern: '{{ anything }}' }, expression: '{{ whatever }}' },
      ctx,
      {
        now: NOW,
        render: (t) => {
          seen.push(t);
          return 7;
        },
      },
    );
    expect(res.matched).toBe(true);
    expect(seen).toEqual(['{{ anything }}', '{{ whatever }}']);
  });

  it('evaluates the expression criterion for OR and anything else', () => {
    const expr = (e: string, c = ctx) => match({ expression: e }, c);
    expect(expr('{{ trigger.count > 10 or trigger.severity == "critical" }}').matched).toBe(true);
    expect(expr('{{ trigger.count > 10 or trigger.severity == "minor" }}').matched).toBe(false);
    expect(expr('trigger.items | selectattr("status", "equalto", "alarm") | list').matched).toBe(true);
    expect(expr('{{ [] }}').matched).toBe(false);
    expect(expr('{% if trigger.count > 3 %}true{% else %}false{% endif %}').matched).toBe(true);
    expect(expr('{% if trigger.count > 30 %}true{% else %}false{% endif %}').matched).toBe(false);
    const bad = expr('{{ trigger.count > }}');
    expect(bad.matched).toBe(false);
    expect(bad.details[0]!.error).toMatch(/syntax error/);
    const both = match({
      'trigger.severity': { type: 'equals', pattern: 'critical' },
      expression: '{{ false }}',
    });
    expect(both.matched).toBe(false);
    expect(both.details[1]).toMatchObject({
      key: 'expression',
      type: 'expression',
      matched: false,
      value: false,
    });
  });

  it('uses the caller clock for timediff', () => {
    const c = { 'trigger.created': { type: 'timediff_lt', pattern: 120 } };
    expect(matchCriteria(c, ctx, { now: NOW }).matched).toBe(true);
    expect(matchCriteria(c, ctx, { now: new Date('2024-06-01T13:00:00Z') }).matched).toBe(false);
  });

  it('re-evaluates a cached criteria object against new payloads', () => {
    const c = { 'trigger.v': { type: 'gt', pattern: 1 } };
    expect(match(c, { trigger: { v: 2 } }).matched).toBe(true);
    expect(match(c, { trigger: { v: 0 } }).matched).toBe(false);
    expect(match(c, { payload: { v: 2 } }).matched).toBe(true);
  });
});

describe('search', () => {
  const items = {
    'item.status': { type: 'equals', pattern: 'alarm' },
    'item.value': { type: 'gt', pattern: 90 },
  };
  // Items: disk ok 40 (matches none), cpu alarm 97 (matches both)
  const cases: [string, unknown[], boolean][] = [
    ['any', payload.items, true],
    ['all', payload.items, false],
    ['any2any', payload.items, true],
    ['all2any', payload.items, false],
    ['all', [{ status: 'alarm', value: 99 }], true],
    [
      'all2any',
      [
        { status: 'alarm', value: 1 },
        { status: 'ok', value: 95 },
      ],
      true,
    ],
    [
      'any',
      [
        { status: 'alarm', value: 1 },
        { status: 'ok', value: 95 },
      ],
      false,
    ],
    ['any2any', [{ status: 'ok', value: 1 }], false],
    ['any', [], false],
    ['all', [], true],
    ['any2any', [], false],
    ['all2any', [], true],
  ];
  for (const [condition, list, want] of cases) {
    it(`${condition} over ${JSON.stringify(list).slice(0, 70)} → ${want}`, () => {
      const res = match(
        { 'trigger.items': { type: 'search', condition, pattern: items } },
        { trigger: { items: list } },
      );
      expect(res.matched).toBe(want);
      expect(res.details[0]!.condition).toBe(condition);
    });
  }

  it('reports per-item details', () => {
    const res = match({ 'trigger.items': { type: 'search', condition: 'all', pattern: items } });
    expect(res.details[0]!.items).toEqual([
      {
        index: 0,
        matched: false,
        details: [
          expect.objectContaining({ key: 'item.status', matched: false, value: 'ok' }),
          expect.objectContaining({ key: 'item.value', matched: false, value: 40 }),
        ],
      },
    ]);
  });

  it('does not match a missing field or a non-list', () => {
    for (const trigger of [{}, { items: 'x' }, { items: { a: 1 } }]) {
      const res = match(
        { 'trigger.items': { type: 'search', condition: 'any', pattern: items } },
        { trigger },
      );
      expect(res.matched).toBe(false);
      expect(res.details[0]!.reason).toMatch(/missing|not a list/);
    }
  });

  it('nests, reads the outer payload, and renders item templates', () => {
    const data = {
      trigger: {
        wanted: 'b',
        groups: [
          { name: 'g1', members: [{ id: 'a' }] },
          { name: 'g2', members: [{ id: 'b' }, { id: 'c' }] },
        ],
      },
    };
    const res = match(
      {
        'trigger.groups': {
          type: 'search',
          condition: 'any',
          pattern: {
            'item.members': {
              type: 'search',
              condition: 'any',
              pattern: { 'item.id': { type: 'equals', pattern: '{{ trigger.wanted }}' } },
            },
            'item.name': { type: 'matchwildcard', pattern: 'g*' },
          },
        },
      },
      data,
    );
    expect(res.matched).toBe(true);
  });

  it('surfaces errors of item criteria', () => {
    const res = match({
      'trigger.items': {
        type: 'search',
        condition: 'any',
        pattern: { 'item.name': { type: 'regex', pattern: '(' } },
      },
    });
    expect(res.matched).toBe(false);
    expect(res.details[0]!.error).toMatch(/item criterion item.name: invalid regular expression/);
  });
});

describe('renderParameters', () => {
  const rctx = ruleContext({
    payload: { count: 3, host: 'web-1', tags: ['a', 'b'], flag: false },
    event: { id: 12 },
    rule: { ref: 'ops.restart' },
    keys: { token: 's3cret' },
  });

  it('renders deeply and keeps the type of whole-expression values', () => {
    const params = {
      cmd: 'restart {{ trigger.host }} (event {{ event.id }})',
      count: '{{ trigger.count }}',
      tags: '{{ payload.tags }}',
      flag: '{{ trigger.flag }}',
      token: '{{ keys.token }}',
      nested: { list: ['{{ trigger.count + 1 }}', 'x'], rule: '{{ rule.ref }}' },
      literal: 5,
      none: null,
    };
    const before = structuredClone(params);
    expect(renderParameters(params, rctx)).toEqual({
      cmd: 'restart web-1 (event 12)',
      count: 3,
      tags: ['a', 'b'],
      flag: false,
      token: 's3cret',
      nested: { list: [4, 'x'], rule: 'ops.restart' },
      literal: 5,
      none: null,
    });
    expect(params).toEqual(before);
  });

  it('handles empty parameters and refuses non-objects', () => {
    expect(renderParameters(undefined, rctx)).toEqual({});
    expect(renderParameters(null, rctx)).toEqual({});
    expect(() => renderParameters(['x'], rctx)).toThrow(ExprError);
    expect(() => renderParameters('x', rctx)).toThrow(/must be an object/);
  });

  it('names the failing parameter', () => {
    expect(() => renderParameters({ a: { b: '{{ trigger.count | nope }}' } }, rctx)).toThrow(
      /^a\.b: unknown filter/,
    );
  });

  it('builds the rule context: trigger and payload are the event payload', () => {
    expect(rctx.trigger).toBe(rctx.payload);
    expect(ruleContext({ payload: 1, extra: { x: 1, trigger: 'ignored' } })).toEqual({
      x: 1,
      trigger: 1,
      payload: 1,
      event: null,
      rule: null,
      keys: {},
    });
  });
});
