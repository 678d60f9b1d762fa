/**
 * The template sandbox at the rule level: known escape vectors (constructor chains, `__proto__` /
 * `prototype` access, prototype pollution through payloads, runaway loops) thrown through criteria
 * patterns, expression criteria and action parameter templates — by the API (rule writes and the dry
 * run) and by real events reaching the rules engine. Each must fail with a clear error and leave the
 * host untouched: Object.prototype clean, the process alive, the engine still working.
 */
import { eq, like } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonValue } from '../../src/bus/bus.ts';
import { createEvents } from '../../src/services/events/create-event.ts';
import { enforcements, executions, packs, rules } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Vectors with where they go and what the error must say. */
const VECTORS: { name: string; template: string; error: RegExp }[] = [
  {
    name: 'string constructor chain',
    template: "{{ ''.constructor.constructor('return process')() }}",
    error: /constructor/,
  },
  {
    name: 'range.constructor',
    template: "{{ range.constructor('return process')() }}",
    error: /constructor/,
  },
  { name: 'cycler constructor', template: "{{ cycler.constructor('return this')() }}", error: /constructor/ },
  { name: 'function constructor of a method', template: '{{ [].concat.constructor }}', error: /constructor/ },
  { name: '__proto__ by attribute', template: '{{ trigger.__proto__ }}', error: /__proto__/ },
  { name: '__proto__ by subscript', template: "{{ trigger['__proto__'] }}", error: /__proto__/ },
  { name: '__proto__ computed', template: "{{ trigger['__pro' + 'to__'] }}", error: /__proto__/ },
  { name: 'prototype', template: '{{ trigger.constructor.prototype }}', error: /constructor|prototype/ },
  { name: 'attr filter', template: "{{ trigger | attr('constructor') }}", error: /constructor/ },
  {
    name: 'nested huge loops',
    template: '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}',
    error: /too much work|limit/,
  },
  { name: 'huge range', template: '{{ range(1000000000) | length }}', error: /limit/ },
  { name: 'huge string', template: "{{ 'x' * 100000000 }}", error: /limit/ },
  {
    name: 'runaway recursion',
    template: '{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}',
    error: /deep|recursion/,
  },
];

const hostIsClean = () => {
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted).toBeUndefined();
  expect(probe.x).toBeUndefined();
  expect(Object.prototype).not.toHaveProperty('polluted');
  expect(Object.keys(Object.prototype)).toEqual([]);
  expect(typeof process.pid).toBe('number');
};

describeBackend('rule templates are a sandbox', () => {
  let s: TestServer;
  let token: string;
  const req = (method: string, path: string, body?: unknown) =>
    s.request<AnyBody>(method, path, { token, body });
  const db = () => s.platform.store.db;

  beforeAll(async () => {
    s = await startTestServer();
    token = s.adminToken;
    await db()
      .insert(packs)
      .values({ ref: 'sbx', label: 'sbx', version: '1.0.0', source: { type: 'api' } });
    for (const body of [{ ref: 'sbx.evt' }, { ref: 'sbx.canary' }])
      expect((await req('POST', '/api/v1/triggers', body)).status).toBe(201);
    expect((await req('POST', '/api/v1/actions', { ref: 'sbx.act', runner: 'noop' })).status).toBe(201);
    // A rule that must keep working while the others fail.
    expect(
      (
        await req('POST', '/api/v1/rules', {
          ref: 'sbx.canary_rule',
          trigger_ref: 'sbx.canary',
          action_ref: 'sbx.act',
          action_params: { n: '{{ trigger.n }}' },
        })
      ).status,
    ).toBe(201);
  });
  afterAll(async () => s?.stop());

  /** The dry run answers a 4xx, or a 200 whose errors name the problem: never a 500, never a value. */
  const dryRunFails = async (
    rule: Record<string, unknown>,
    payload: unknown,
    error: RegExp,
    stage: string,
  ) => {
    const r = await req('POST', '/api/v1/rules/test', { rule, payload });
    if (r.status === 200) {
      expect(r.body.data.would_execute, JSON.stringify(r.body)).toBe(false);
      const e = r.body.data.errors.find((x: AnyBody) => x.stage === stage);
      expect(e, JSON.stringify(r.body)).toBeTruthy();
      expect(e.message).toMatch(error);
    } else {
      expect(r.status, JSON.stringify(r.body)).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_ERROR');
      expect(r.body.error.message).toMatch(error);
    }
  };

  describe('through the API', () => {
    for (const v of VECTORS) {
      it(`${v.name}: criteria pattern, expression criterion and parameter each fail clearly`, async () => {
        await dryRunFails(
          {
            trigger_ref: 'sbx.evt',
            criteria: { 'trigger.a': { type: 'equals', pattern: v.template } },
            action_ref: 'sbx.act',
          },
          { a: 1 },
          v.error,
          'criteria',
        );
        await dryRunFails(
          {
            trigger_ref: 'sbx.evt',
            criteria: { expression: `{{ (${v.template.replace(/^\{\{|\}\}$/g, '')}) }}` },
            action_ref: 'sbx.act',
          },
          { a: 1 },
          v.template.startsWith('{%') ? /syntax|expression|template/ : v.error,
          'criteria',
        );
        await dryRunFails(
          { trigger_ref: 'sbx.evt', action_ref: 'sbx.act', action_params: { p: v.template } },
          { a: 1 },
          v.error,
          'parameters',
        );
        // saving such a rule: refused up front when the compiler sees it, else accepted and failing at run time
        const save = await req('POST', '/api/v1/rules', {
          ref: 'sbx.saved',
          trigger_ref: 'sbx.evt',
          action_ref: 'sbx.act',
          action_params: { p: v.template },
        });
        expect([201, 400]).toContain(save.status);
        if (save.status === 400) expect(save.body.error.message).toMatch(v.error);
        else await req('DELETE', '/api/v1/rules/sbx.saved');
        hostIsClean();
      });
    }

    it('prototype-polluting payloads are refused at the door', async () => {
      for (const raw of [
        '{"rule":"sbx.canary_rule","payload":{"__proto__":{"polluted":1}}}',
        '{"rule":"sbx.canary_rule","payload":{"a":{"constructor":{"prototype":{"polluted":1}}}}}',
      ]) {
        const r = await s.request<AnyBody>('POST', '/api/v1/rules/test', {
          token,
          raw,
          headers: { 'content-type': 'application/json' },
        });
        expect(r.status).toBe(400);
        expect(r.body.error.message).toBeTruthy();
      }
      const ev = await s.request<AnyBody>('POST', '/api/v1/events', {
        token,
        raw: '{"trigger":"sbx.evt","payload":{"__proto__":{"polluted":1}}}',
        headers: { 'content-type': 'application/json' },
      });
      expect(ev.status).toBe(400);
      hostIsClean();
    });
  });

  describe('through real events (rules stored without the API checks, as a pack could)', () => {
    it('every vector fails its enforcement with the reason, creates no execution, and the engine keeps going', async () => {
      const [pack] = await db().select().from(packs).where(eq(packs.ref, 'sbx'));
      const stored: { ref: string; error: RegExp }[] = [];
      let i = 0;
      for (const v of VECTORS) {
        const where: [string, Record<string, unknown>, Record<string, unknown>][] = [
          ['pattern', { 'trigger.a': { type: 'equals', pattern: v.template } }, {}],
          ['param', {}, { p: v.template }],
        ];
        for (const [kind, criteria, actionParams] of where) {
          const ref = `sbx.v${i++}_${kind}`;
          stored.push({ ref, error: v.error });
          await db()
            .insert(rules)
            .values({
              ref,
              packId: pack!.id,
              packRef: 'sbx',
              name: ref.slice(4),
              label: ref,
              triggerRef: 'sbx.evt',
              criteria,
              actionRef: 'sbx.act',
              actionParams,
            });
        }
      }
      await req('POST', '/api/v1/rules/sbx.canary_rule/disable');
      await req('POST', '/api/v1/rules/sbx.canary_rule/enable'); // announces a change: caches reload
      // A payload carrying pollution attempts as data, stored the way any transport would store it.
      const payload = JSON.parse(
        '{"a": 1, "__proto__": {"polluted": 1}, "b": {"constructor": {"prototype": {"polluted": 1}}}}',
      ) as JsonValue;
      const [ev] = await s.platform.store.transaction((tx) =>
        createEvents(tx, [{ triggerRef: 'sbx.evt', payload, source: 'test' }]),
      );
      s.platform.relay.kick();
      const deadline = Date.now() + 20_000;
      let rows: (typeof enforcements.$inferSelect)[] = [];
      while (Date.now() < deadline) {
        rows = await db().select().from(enforcements).where(eq(enforcements.eventId, ev!.id));
        if (rows.length >= stored.length) break;
        await sleep(50);
      }
      expect(rows).toHaveLength(stored.length);
      for (const { ref, error } of stored) {
        const row = rows.find((r) => r.ruleRef === ref);
        expect(row, ref).toBeTruthy();
        expect(row!.status, ref).toBe('failed');
        expect(row!.failureReason, ref).toMatch(error);
      }
      expect(await db().select().from(executions).where(eq(executions.eventId, ev!.id))).toEqual([]);
      hostIsClean();

      // the payload itself, copied whole into parameters, stays data
      await db().delete(rules).where(like(rules.ref, 'sbx.v%'));
      await req('POST', '/api/v1/rules', {
        ref: 'sbx.copy',
        trigger_ref: 'sbx.evt',
        action_ref: 'sbx.act',
        action_params: { whole: '{{ trigger }}', b: '{{ trigger.b }}', polluted: '{{ trigger.polluted }}' },
      });
      const [ev2] = await s.platform.store.transaction((tx) =>
        createEvents(tx, [{ triggerRef: 'sbx.evt', payload, source: 'test' }]),
      );
      s.platform.relay.kick();
      let ex: (typeof executions.$inferSelect)[] = [];
      while (Date.now() < deadline + 10_000) {
        ex = await db().select().from(executions).where(eq(executions.eventId, ev2!.id));
        if (ex.length) break;
        await sleep(50);
      }
      expect(ex).toHaveLength(1);
      const params = ex[0]!.parameters;
      expect(params.polluted).toBeNull();
      expect(Object.hasOwn(params.whole as object, '__proto__')).toBe(true);
      expect(Object.getPrototypeOf(params.whole)).toBe(Object.prototype);
      expect(params.b).toEqual({ constructor: { prototype: { polluted: 1 } } });
      hostIsClean();

      // and the engine still works for everyone else
      const canary = await req('POST', '/api/v1/events', { trigger: 'sbx.canary', payload: { n: 5 } });
      expect(canary.status).toBe(201);
      const end = Date.now() + 10_000;
      let done: (typeof executions.$inferSelect)[] = [];
      while (Date.now() < end) {
        done = await db().select().from(executions).where(eq(executions.eventId, canary.body.data.id));
        if (done.length) break;
        await sleep(50);
      }
      expect(done[0]?.parameters).toEqual({ n: 5 });
    });
  });
});
