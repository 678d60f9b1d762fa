/**
 * Events in, rules matched, executions requested — over real HTTP, the real outbox relay, bus and
 * rules engine of the platform, on both backends. No webhooks: events are posted to the API.
 */
import { and, count, eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/services/api/auth.ts';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import {
  enforcements,
  events,
  executionSecrets,
  executions,
  identities,
  identityRoles,
  packs,
  roles,
} from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a value that satisfies `ok`, or fails after `ms`. */
async function until<T>(
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  ms = 10_000,
  what = 'condition',
): Promise<T> {
  const end = Date.now() + ms;
  let last: T = await fn();
  while (!ok(last)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await sleep(25);
    last = await fn();
  }
  return last;
}

describeBackend('events and rules: POST /events → enforcement → execution(requested)', () => {
  let s: TestServer;
  let admin: string;
  let viewer: string;
  const req = (method: string, path: string, body?: unknown, token = admin) =>
    s.request<AnyBody>(method, path, { token, body });
  const created = async (path: string, body: unknown) => {
    const r = await req('POST', path, body);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data;
  };
  const db = () => s.platform.store.db;

  const postEvent = async (trigger: string, payload: unknown) => {
    const r = await req('POST', '/api/v1/events', { trigger, payload });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data as AnyBody;
  };
  const enforcementsOf = (eventId: number) =>
    db().select().from(enforcements).where(eq(enforcements.eventId, eventId));
  const executionsOf = (eventId: number) =>
    db().select().from(executions).where(eq(executions.eventId, eventId));
  /** Waits until the engine has looked at the event (the outbox message is gone and the queue idle). */
  const settled = async () => {
    await s.platform.relay.flush();
    await until(
      async () => ({
        depth: await s.platform.bus.queueDepth('attune.rules-engine'),
        stats: { ...s.platform.rulesEngine!.stats },
      }),
      (v) => v.depth === 0,
      10_000,
      'the rules engine queue to drain',
    );
    // let the batch in flight commit
    await sleep(50);
    await s.platform.relay.flush();
  };

  beforeAll(async () => {
    s = await startTestServer();
    admin = s.adminToken;
    await db()
      .insert(packs)
      .values({ ref: 'ev', label: 'ev', version: '1.0.0', source: { type: 'api' } });
    const [vr] = await db().select({ id: roles.id }).from(roles).where(eq(roles.name, 'viewer'));
    const [vi] = await db()
      .insert(identities)
      .values({ login: 'vera', passwordHash: await hashPassword('a-long-test-password') })
      .returning({ id: identities.id });
    await db().insert(identityRoles).values({ identityId: vi!.id, roleId: vr!.id });
    viewer = await s.login('vera', 'a-long-test-password');

    await created('/api/v1/triggers', {
      ref: 'ev.alert',
      payload_schema: {
        type: 'object',
        properties: {
          severity: { type: 'string', enum: ['info', 'warning', 'critical'] },
          host: { type: 'string' },
          count: { type: 'integer' },
          tags: { type: 'array', items: { type: 'string' } },
        },
        required: ['severity'],
      },
    });
    await created('/api/v1/triggers', { ref: 'ev.free' });
    await created('/api/v1/triggers', { ref: 'ev.bulk' });
    await created('/api/v1/triggers', { ref: 'ev.off', enabled: false });
    await created('/api/v1/actions', {
      ref: 'ev.notify',
      runner: 'noop',
      param_schema: {
        type: 'object',
        properties: {
          message: { type: 'string' },
          count: { type: 'integer' },
          tags: { type: 'array' },
          urgent: { type: 'boolean' },
          meta: { type: 'object' },
          channel: { type: 'string', default: '#ops' },
        },
        additionalProperties: false,
      },
    });
    await created('/api/v1/actions', { ref: 'ev.noop', runner: 'noop' });
  });
  afterAll(async () => s?.stop());

  describe('POST /api/v1/events', () => {
    it('stores one event and answers it', async () => {
      const e = await postEvent('ev.free', { hello: 'world', n: [1, 2] });
      expect(e).toMatchObject({
        trigger_ref: 'ev.free',
        payload: { hello: 'world', n: [1, 2] },
        source: 'api',
        created_by: 'admin',
      });
      expect(Number.isInteger(e.id)).toBe(true);
      const got = await req('GET', `/api/v1/events/${e.id}`);
      expect(got.body.data).toEqual(e);
    });

    it('accepts any JSON payload when the trigger has no payload schema; default {}', async () => {
      for (const payload of [[1, 'two'], 'text', 42, null, true]) {
        const e = await postEvent('ev.free', payload);
        expect(e.payload).toEqual(payload);
      }
      const r = await req('POST', '/api/v1/events', { trigger: 'ev.free' });
      expect(r.status).toBe(201);
      expect(r.body.data.payload).toEqual({});
    });

    it('refuses an unknown trigger (404), a disabled one (422), a payload that breaks the schema (400)', async () => {
      const before = (await db().select({ n: count() }).from(events))[0]!.n;
      const missing = await req('POST', '/api/v1/events', { trigger: 'ev.nope', payload: {} });
      expect(missing.status).toBe(404);
      expect(missing.body.error).toMatchObject({ code: 'NOT_FOUND', details: { trigger_ref: 'ev.nope' } });
      expect(missing.body.error.message).toContain("'ev.nope'");

      const off = await req('POST', '/api/v1/events', { trigger: 'ev.off', payload: {} });
      expect(off.status).toBe(422);
      expect(off.body.error).toMatchObject({
        code: 'UNPROCESSABLE_ENTITY',
        details: { trigger_ref: 'ev.off' },
      });
      expect(off.body.error.message).toContain('disabled');

      const bad = await req('POST', '/api/v1/events', { trigger: 'ev.alert', payload: { severity: 'meh' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('VALIDATION_ERROR');
      expect(bad.body.error.details).toMatchObject({ field: 'payload', trigger_ref: 'ev.alert' });
      expect(bad.body.error.details.problems[0].path).toBe('/severity');

      const noSeverity = await req('POST', '/api/v1/events', { trigger: 'ev.alert', payload: { count: 1 } });
      expect(noSeverity.status).toBe(400);
      expect(noSeverity.body.error.details.problems[0].path).toBe('/severity');

      const after = (await db().select({ n: count() }).from(events))[0]!.n;
      expect(after).toBe(before);
    });

    it('single events posted together share a transaction, and each gets its own answer', async () => {
      const before = (await db().select({ n: count() }).from(events))[0]!.n;
      const bodies = Array.from({ length: 60 }, (_, i) =>
        i % 10 === 3
          ? { trigger: 'ev.nope', payload: { i } }
          : i % 10 === 7
            ? { trigger: 'ev.alert', payload: { severity: 'meh', i } }
            : { trigger: 'ev.free', payload: { i } },
      );
      // Requests arrive one by one on an idle server; hold inserts back for a moment so that they pile
      // up, as they do under load.
      let release!: () => void;
      const held = new Promise<void>((r) => {
        release = r;
      });
      const hold = s.platform.store.transaction(async (tx) => {
        await tx.execute(sql`lock table ${events} in share row exclusive mode`);
        await held;
      });
      const posted = Promise.all(bodies.map((b) => req('POST', '/api/v1/events', b)));
      await sleep(500);
      release();
      await hold;
      const answers = await posted;
      const ids: number[] = [];
      answers.forEach((r, i) => {
        if (i % 10 === 3)
          expect(r.body.error).toMatchObject({ code: 'NOT_FOUND', details: { trigger_ref: 'ev.nope' } });
        else if (i % 10 === 7)
          expect(r.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { field: 'payload' } });
        else {
          expect(r.status, JSON.stringify(r.body)).toBe(201);
          expect(r.body.data.payload).toEqual({ i });
          ids.push(r.body.data.id);
        }
      });
      expect(answers.filter((r) => r.status === 404)).toHaveLength(6);
      expect(answers.filter((r) => r.status === 400)).toHaveLength(6);
      expect(new Set(ids).size).toBe(48);
      // exactly the good ones were stored, each once
      const after = (await db().select({ n: count() }).from(events))[0]!.n;
      expect(after - before).toBe(48);
      // …and fewer transactions than events stored them (xmin: the transaction that inserted a row)
      const txs = await db().execute<{ n: string | number }>(
        sql`select count(distinct xmin::text) as n from ${events} where id = any(${sql.param(ids)}::bigint[])`,
      );
      const rows = (
        Array.isArray(txs) ? txs : (txs as unknown as { rows: { n: string | number }[] }).rows
      ) as {
        n: string | number;
      }[];
      expect(Number(rows[0]!.n)).toBeLessThan(48);
    });

    it('refuses malformed bodies with a clear 400', async () => {
      const cases: [unknown, string][] = [
        [{}, 'trigger'],
        [{ trigger: 'ev.free', events: [{ trigger: 'ev.free' }] }, 'not both'],
        [{ events: [{ trigger: 'ev.free' }], payload: {} }, 'inside each item'],
        [{ events: [] }, 'events'],
        [{ trigger: 'not a ref' }, 'trigger'],
        [{ trigger: 'ev.free', extra: 1 }, 'extra'],
        [{ events: [{ trigger: 'ev.free', junk: 1 }] }, 'junk'],
      ];
      for (const [body, hint] of cases) {
        const r = await req('POST', '/api/v1/events', body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.body.error.message + JSON.stringify(r.body.error.details ?? '')).toContain(hint);
      }
      const tooMany = await req('POST', '/api/v1/events', {
        events: Array.from({ length: 1001 }, () => ({ trigger: 'ev.free' })),
      });
      expect(tooMany.status).toBe(400);
      const poisoned = await s.request<AnyBody>('POST', '/api/v1/events', {
        token: admin,
        raw: '{"trigger":"ev.free","payload":{"__proto__":{"polluted":1}}}',
        headers: { 'content-type': 'application/json' },
      });
      expect(poisoned.status).toBe(400);
      expect(poisoned.body.error.code).toBe('BAD_REQUEST');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('needs the create permission on events', async () => {
      const r = await req('POST', '/api/v1/events', { trigger: 'ev.free', payload: {} }, viewer);
      expect(r.status).toBe(403);
      const anon = await s.request<AnyBody>('POST', '/api/v1/events', { body: { trigger: 'ev.free' } });
      expect(anon.status).toBe(401);
    });

    it('bulk: all or nothing, the culprit named by its index', async () => {
      const before = (await db().select({ n: count() }).from(events))[0]!.n;
      const r = await req('POST', '/api/v1/events', {
        events: [
          { trigger: 'ev.alert', payload: { severity: 'info' } },
          { trigger: 'ev.free', payload: 1 },
          { trigger: 'ev.alert', payload: { severity: 'info' } },
          { trigger: 'ev.alert', payload: { severity: 'loud' } },
        ],
      });
      expect(r.status).toBe(400);
      expect(r.body.error.details.index).toBe(3);
      expect(r.body.error.message).toContain('events[3]');
      const missing = await req('POST', '/api/v1/events', {
        events: [{ trigger: 'ev.free' }, { trigger: 'ev.gone' }],
      });
      expect(missing.status).toBe(404);
      expect(missing.body.error.details).toMatchObject({ index: 1, trigger_ref: 'ev.gone' });
      expect((await db().select({ n: count() }).from(events))[0]!.n).toBe(before);

      const ok = await req('POST', '/api/v1/events', {
        events: [
          { trigger: 'ev.alert', payload: { severity: 'info' } },
          { trigger: 'ev.free', payload: [1] },
        ],
      });
      expect(ok.status).toBe(201);
      expect(ok.body.data.map((e: AnyBody) => e.trigger_ref)).toEqual(['ev.alert', 'ev.free']);
      expect(ok.body.data[1].id).toBeGreaterThan(ok.body.data[0].id);
    });
  });

  describe('rules → enforcements → executions', () => {
    beforeAll(async () => {
      await created('/api/v1/rules', {
        ref: 'ev.page_on_critical',
        trigger_ref: 'ev.alert',
        criteria: {
          'trigger.severity': { type: 'equals', pattern: 'critical' },
          'trigger.count': { type: 'gt', pattern: 2 },
          'trigger.host': { type: 'regex', pattern: '^web-\\d+$' },
          'trigger.tags': { type: 'contains', pattern: 'prod' },
        },
        action_ref: 'ev.notify',
        action_params: {
          message: '{{ trigger.host }} is {{ trigger.severity }} ({{ trigger.count }}x)',
          count: '{{ trigger.count * 10 }}',
          tags: '{{ trigger.tags }}',
          urgent: '{{ trigger.count > 5 }}',
          meta: { rule: '{{ rule.ref }}', event: '{{ event.id }}', source: '{{ event.source }}', literal: 7 },
        },
      });
    });

    it('a matching event yields one enforcement and one requested execution with typed parameters', async () => {
      const e = await postEvent('ev.alert', {
        severity: 'critical',
        host: 'web-12',
        count: 7,
        tags: ['prod', 'eu'],
      });
      const [enf] = await until(
        () => enforcementsOf(e.id),
        (r) => r.length > 0,
        10_000,
        'an enforcement',
      );
      expect(enf).toMatchObject({
        ruleRef: 'ev.page_on_critical',
        triggerRef: 'ev.alert',
        eventId: e.id,
        status: 'scheduled',
        failureReason: null,
      });
      const [ex] = await until(
        () => executionsOf(e.id),
        (r) => r.length > 0,
      );
      expect(ex).toMatchObject({
        actionRef: 'ev.notify',
        runner: 'noop',
        enforcementId: enf!.id,
        ruleRef: 'ev.page_on_critical',
        triggerRef: 'ev.alert',
        eventId: e.id,
        createdBy: 'rule:ev.page_on_critical',
        rootId: ex!.id,
      });
      expect(ex!.parameters).toEqual({
        message: 'web-12 is critical (7x)',
        count: 70,
        tags: ['prod', 'eu'],
        urgent: true,
        meta: { rule: 'ev.page_on_critical', event: e.id, source: 'api', literal: 7 },
        channel: '#ops',
      });
      expect(enf!.resolvedParams).toEqual(ex!.parameters);
      // visible through the API too
      const api = await req('GET', `/api/v1/enforcements?event=${e.id}`);
      expect(api.body.data).toHaveLength(1);
      expect(api.body.data[0].execution_id).toBe(ex!.id);
    });

    it('criteria that do not all hold create nothing', async () => {
      const misses = [
        { severity: 'warning', host: 'web-1', count: 9, tags: ['prod'] },
        { severity: 'critical', host: 'web-1', count: 2, tags: ['prod'] },
        { severity: 'critical', host: 'db-1', count: 9, tags: ['prod'] },
        { severity: 'critical', host: 'web-1', count: 9, tags: ['staging'] },
        { severity: 'critical', host: 'web-1', count: 9 },
      ];
      const ids: number[] = [];
      for (const p of misses) ids.push((await postEvent('ev.alert', p)).id);
      await settled();
      const rows = await db().select().from(enforcements).where(inArray(enforcements.eventId, ids));
      expect(rows).toEqual([]);
    });

    it('more operators and an expression criterion (OR), with a templated pattern', async () => {
      await created('/api/v1/rules', {
        ref: 'ev.ops_mix',
        trigger_ref: 'ev.free',
        criteria: {
          'trigger.kind': { type: 'inside', pattern: ['deploy', 'rollback'] },
          'trigger.user': { type: 'istartswith', pattern: 'ADM' },
          'trigger.ticket': { type: 'exists' },
          'trigger.skip': { type: 'nexists' },
          'trigger.env': { type: 'equals', pattern: '{{ trigger.expected_env }}' },
          'trigger.items': {
            type: 'search',
            condition: 'any',
            pattern: { 'item.name': { type: 'startswith', pattern: 'api' } },
          },
          expression: '{{ trigger.priority >= 3 or trigger.force }}',
        },
        action_ref: 'ev.noop',
        action_params: { kind: '{{ trigger.kind }}' },
      });
      const base = {
        kind: 'deploy',
        user: 'admin-joe',
        ticket: 'T-1',
        env: 'prod',
        expected_env: 'prod',
        items: [{ name: 'web' }, { name: 'api-gw' }],
        priority: 1,
        force: true,
      };
      const cases: [Record<string, unknown>, boolean][] = [
        [base, true],
        [{ ...base, force: false, priority: 3 }, true],
        [{ ...base, force: false, priority: 2 }, false],
        [{ ...base, kind: 'build' }, false],
        [{ ...base, user: 'joe' }, false],
        [{ ...base, ticket: undefined }, false],
        [{ ...base, skip: true }, false],
        [{ ...base, env: 'dev' }, false],
        [{ ...base, items: [{ name: 'web' }] }, false],
      ];
      const ids: number[] = [];
      for (const [p] of cases) ids.push((await postEvent('ev.free', JSON.parse(JSON.stringify(p)))).id);
      await settled();
      const rows = await db()
        .select({ eventId: enforcements.eventId, status: enforcements.status })
        .from(enforcements)
        .where(and(inArray(enforcements.eventId, ids), eq(enforcements.ruleRef, 'ev.ops_mix')));
      const matched = new Set(rows.map((r) => r.eventId));
      expect(cases.map((_, i) => matched.has(ids[i]!))).toEqual(cases.map(([, m]) => m));
      expect(rows.every((r) => r.status === 'scheduled')).toBe(true);
      await req('DELETE', '/api/v1/rules/ev.ops_mix');
    });

    it('a redelivered event.created creates nothing twice', async () => {
      const e = await postEvent('ev.alert', {
        severity: 'critical',
        host: 'web-3',
        count: 3,
        tags: ['prod'],
      });
      await until(
        () => executionsOf(e.id),
        (r) => r.length === 1,
      );
      // the same message again, twice, concurrently — and the handler called directly
      await Promise.all([
        s.platform.bus.publish(TOPICS.eventCreated, { event_id: e.id }),
        s.platform.bus.publish(TOPICS.eventCreated, { event_id: e.id }),
      ]);
      const direct = await Promise.all([
        s.platform.rulesEngine!.processEvents([e.id, e.id]),
        s.platform.rulesEngine!.processEvents([e.id]),
      ]);
      for (const r of direct) expect(r).toMatchObject({ enforcements: 0, executions: 0 });
      await settled();
      expect(await enforcementsOf(e.id)).toHaveLength(1);
      expect(await executionsOf(e.id)).toHaveLength(1);
    });

    it('a rule whose parameters cannot be made fails its enforcement and requests nothing', async () => {
      await created('/api/v1/rules', {
        ref: 'ev.broken_template',
        trigger_ref: 'ev.free',
        criteria: { 'trigger.case': { type: 'equals', pattern: 'broken' } },
        action_ref: 'ev.noop',
        action_params: { x: '{{ range(trigger.case) }}' },
      });
      await created('/api/v1/rules', {
        ref: 'ev.bad_params',
        trigger_ref: 'ev.free',
        criteria: { 'trigger.case': { type: 'equals', pattern: 'broken' } },
        action_ref: 'ev.notify',
        action_params: { count: '{{ trigger.case }}', unknown_param: 1 },
      });
      const e = await postEvent('ev.free', { case: 'broken' });
      const rows = await until(
        () => enforcementsOf(e.id),
        (r) => r.length === 2,
      );
      const by = Object.fromEntries(rows.map((r) => [r.ruleRef, r]));
      expect(by['ev.broken_template']).toMatchObject({ status: 'failed' });
      expect(by['ev.broken_template']!.failureReason).toMatch(/parameter 'x'/);
      expect(by['ev.broken_template']!.failureReason).toMatch(/range\(\) arguments must be integers/);
      expect(by['ev.bad_params']).toMatchObject({ status: 'failed' });
      expect(by['ev.bad_params']!.failureReason).toMatch(/ev\.notify/);
      expect(by['ev.bad_params']!.failureReason).toMatch(/\/count/);
      await settled();
      expect(await executionsOf(e.id)).toHaveLength(0);
      const api = await req('GET', `/api/v1/enforcements?event=${e.id}&status=failed`);
      expect(api.body.data).toHaveLength(2);
      expect(api.body.data.every((x: AnyBody) => x.execution_id === null && x.failure_reason)).toBe(true);
      await req('DELETE', '/api/v1/rules/ev.broken_template');
      await req('DELETE', '/api/v1/rules/ev.bad_params');
    });

    it('refuses to save a rule whose templates do not compile, naming the place', async () => {
      const bad = await req('POST', '/api/v1/rules', {
        ref: 'ev.nope_filter',
        trigger_ref: 'ev.free',
        action_ref: 'ev.noop',
        action_params: { deep: { list: ['ok', '{{ trigger.x | no_such_filter }}'] } },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toContain('/action_params/deep/list/1');
      expect(bad.body.error.message).toContain('no_such_filter');
      const badPattern = await req('POST', '/api/v1/rules', {
        ref: 'ev.nope_pattern',
        trigger_ref: 'ev.free',
        action_ref: 'ev.noop',
        criteria: { 'trigger.a': { type: 'equals', pattern: '{{ trigger.b +  }}' } },
      });
      expect(badPattern.status).toBe(400);
      expect(badPattern.body.error.details.field).toBe('criteria');
      const badExpr = await req('PUT', '/api/v1/rules/ev.page_on_critical', {
        criteria: { expression: '{{ trigger.constructor }}' },
      });
      expect(badExpr.status).toBe(400);
      expect(badExpr.body.error.message).toContain('constructor');
    });

    it('a parameterised trigger reaches only the rules with equal trigger_params', async () => {
      await created('/api/v1/triggers', {
        ref: 'ev.hook',
        param_schema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] },
      });
      await created('/api/v1/rules', {
        ref: 'ev.hook_a',
        trigger_ref: 'ev.hook',
        trigger_params: { name: 'a' },
        action_ref: 'ev.noop',
        action_params: { via: '{{ event.trigger_params.name }}' },
      });
      const post = async (trigger_params?: Record<string, unknown>) => {
        const r = await req('POST', '/api/v1/events', { trigger: 'ev.hook', payload: {}, trigger_params });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        return r.body.data;
      };
      const a = await post({ name: 'a' });
      expect(a.trigger_params).toEqual({ name: 'a' });
      const b = await post({ name: 'b' });
      const none = await post();
      const [ex] = await until(
        () => executionsOf(a.id),
        (r) => r.length === 1,
      );
      expect(ex!.parameters).toEqual({ via: 'a' });
      await settled();
      expect(await enforcementsOf(b.id)).toHaveLength(0);
      expect(await enforcementsOf(none.id)).toHaveLength(0);
      const bad = await req('POST', '/api/v1/events', {
        events: [
          { trigger: 'ev.hook', trigger_params: { name: 'a' } },
          { trigger: 'ev.hook', trigger_params: { name: 5 } },
        ],
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details).toMatchObject({ field: 'trigger_params', index: 1 });
      // the dry run says so when a stored event belongs to another instance
      const dry = await req('POST', '/api/v1/rules/test', { rule: 'ev.hook_a', event_id: b.id });
      expect(dry.body.data.would_execute).toBe(false);
      expect(dry.body.data.notes.join(' ')).toContain('would never see it');
    });

    it('a disabled action fails the enforcement', async () => {
      await created('/api/v1/actions', { ref: 'ev.sleepy', runner: 'noop' });
      await created('/api/v1/rules', {
        ref: 'ev.to_disabled',
        trigger_ref: 'ev.free',
        criteria: { 'trigger.case': { type: 'equals', pattern: 'disabled-action' } },
        action_ref: 'ev.sleepy',
      });
      expect((await req('PUT', '/api/v1/actions/ev.sleepy', { enabled: false })).status).toBe(200);
      const e = await postEvent('ev.free', { case: 'disabled-action' });
      const [enf] = await until(
        () => enforcementsOf(e.id),
        (r) => r.length === 1,
      );
      expect(enf).toMatchObject({ status: 'failed', failureReason: "action 'ev.sleepy' is disabled" });
      expect(await executionsOf(e.id)).toHaveLength(0);
      await req('DELETE', '/api/v1/rules/ev.to_disabled');
    });

    it('the rule index reloads when a rule is disabled and enabled through the API', async () => {
      const idx = s.platform.rulesEngine!.ruleIndex;
      const payload = { severity: 'critical', host: 'web-9', count: 4, tags: ['prod'] };
      const a = await postEvent('ev.alert', payload);
      await until(
        () => executionsOf(a.id),
        (r) => r.length === 1,
      );
      // cached: more events of the trigger do not reload the rules
      const loads = idx.loads;
      for (let i = 0; i < 5; i++) await postEvent('ev.alert', payload);
      await settled();
      expect(idx.loads - loads).toBeLessThanOrEqual(1);

      expect((await req('POST', '/api/v1/rules/ev.page_on_critical/disable')).status).toBe(200);
      const b = await postEvent('ev.alert', payload);
      await settled();
      expect(await enforcementsOf(b.id)).toHaveLength(0);

      expect((await req('POST', '/api/v1/rules/ev.page_on_critical/enable')).status).toBe(200);
      const c = await postEvent('ev.alert', payload);
      await until(
        () => executionsOf(c.id),
        (r) => r.length === 1,
      );

      // a criteria change through PUT applies to the next event
      expect(
        (
          await req('PUT', '/api/v1/rules/ev.page_on_critical', {
            criteria: { 'trigger.severity': { type: 'equals', pattern: 'info' } },
          })
        ).status,
      ).toBe(200);
      const d = await postEvent('ev.alert', payload);
      const i = await postEvent('ev.alert', { ...payload, severity: 'info' });
      await until(
        () => executionsOf(i.id),
        (r) => r.length === 1,
      );
      await settled();
      expect(await executionsOf(d.id)).toHaveLength(0);
    });
  });

  describe('bulk ingestion', () => {
    it('500 events in one request create exactly the expected executions', async () => {
      await created('/api/v1/rules', {
        ref: 'ev.bulk_even',
        trigger_ref: 'ev.bulk',
        criteria: { expression: '{{ trigger.n % 2 == 0 }}' },
        action_ref: 'ev.noop',
        action_params: { n: '{{ trigger.n }}' },
      });
      await created('/api/v1/rules', {
        ref: 'ev.bulk_big',
        trigger_ref: 'ev.bulk',
        criteria: { 'trigger.n': { type: 'gt', pattern: 449 } },
        action_ref: 'ev.noop',
        action_params: { n: '{{ trigger.n }}' },
      });
      const r = await req('POST', '/api/v1/events', {
        events: Array.from({ length: 500 }, (_, n) => ({ trigger: 'ev.bulk', payload: { n } })),
      });
      expect(r.status).toBe(201);
      expect(r.body.data).toHaveLength(500);
      const ids = r.body.data.map((e: AnyBody) => e.id as number);
      const expected = 250 + 50;
      const countRows = async () =>
        (await db().select({ n: count() }).from(executions).where(inArray(executions.eventId, ids)))[0]!.n;
      await until(countRows, (n) => n >= expected, 30_000, `${expected} executions`);
      await settled();
      expect(await countRows()).toBe(expected);
      const rows = await db()
        .select({
          ruleRef: executions.ruleRef,
          parameters: executions.parameters,
          eventId: executions.eventId,
        })
        .from(executions)
        .where(inArray(executions.eventId, ids));
      const even = rows.filter((x) => x.ruleRef === 'ev.bulk_even');
      const big = rows.filter((x) => x.ruleRef === 'ev.bulk_big');
      expect(even).toHaveLength(250);
      expect(big).toHaveLength(50);
      expect(new Set(even.map((x) => x.eventId)).size).toBe(250);
      expect(even.every((x) => (x.parameters.n as number) % 2 === 0)).toBe(true);
      expect(big.map((x) => x.parameters.n as number).sort((a, b) => a - b)).toEqual(
        Array.from({ length: 50 }, (_, i) => 450 + i),
      );
      const enfCount = (
        await db().select({ n: count() }).from(enforcements).where(inArray(enforcements.eventId, ids))
      )[0]!.n;
      expect(enfCount).toBe(expected);
    });
  });

  describe('secrets', () => {
    const TOKEN = 'tok-Very-Secret-31337';
    const PASSWORD = 'pw-literal-in-rule-777';
    beforeAll(async () => {
      await created('/api/v1/keys', { name: 'api_token', value: TOKEN, encrypted: true, scope: 'system' });
      await created('/api/v1/keys', {
        name: 'db_creds',
        value: { user: 'svc', pass: 'dbpass-Hidden-42' },
        encrypted: true,
        scope: 'system',
      });
      await created('/api/v1/keys', { name: 'region', value: 'eu-west-1', scope: 'system' });
      await created('/api/v1/actions', {
        ref: 'ev.call_api',
        runner: 'noop',
        param_schema: {
          type: 'object',
          properties: {
            token: { type: 'string' },
            auth: { type: 'string' },
            region: { type: 'string' },
            password: { type: 'string', secret: true },
            db_user: { type: 'string' },
            db_pass: { type: 'string' },
            host: { type: 'string' },
          },
        },
      });
      await created('/api/v1/rules', {
        ref: 'ev.with_secrets',
        trigger_ref: 'ev.free',
        criteria: { 'trigger.case': { type: 'equals', pattern: 'secrets' } },
        action_ref: 'ev.call_api',
        action_params: {
          token: '{{ keys.api_token }}',
          auth: 'Bearer {{ keys["api_token"] }}',
          region: '{{ keys.region }}',
          password: PASSWORD,
          db_user: '{{ keys.db_creds.user }}',
          db_pass: '{% set c = keys.db_creds %}{{ c.pass }}',
          host: '{{ trigger.host }}',
        },
      });
    });

    it('parameters derived from encrypted keys are stored only encrypted', async () => {
      const e = await postEvent('ev.free', { case: 'secrets', host: 'h1' });
      const [ex] = await until(
        () => executionsOf(e.id),
        (r) => r.length === 1,
      );
      const marker = { $secret: true };
      expect(ex!.parameters).toEqual({
        token: marker,
        auth: marker,
        region: 'eu-west-1',
        password: marker,
        db_user: marker,
        db_pass: marker,
        host: 'h1',
      });
      const [sec] = await db()
        .select()
        .from(executionSecrets)
        .where(eq(executionSecrets.executionId, ex!.id));
      expect(sec!.ciphertext.startsWith('v1:')).toBe(true);
      expect(JSON.parse(s.platform.ctx.cipher.decrypt(sec!.ciphertext))).toEqual({
        token: TOKEN,
        auth: `Bearer ${TOKEN}`,
        password: PASSWORD,
        db_user: 'svc',
        db_pass: 'dbpass-Hidden-42',
      });
      // nowhere in the clear: execution, enforcement, outbox, API answers
      const [enf] = await enforcementsOf(e.id);
      const dumps = [
        JSON.stringify(ex),
        JSON.stringify(enf),
        JSON.stringify(sec),
        JSON.stringify((await req('GET', `/api/v1/executions/${ex!.id}`)).body),
        JSON.stringify((await req('GET', `/api/v1/enforcements/${enf!.id}`)).body),
      ];
      for (const d of dumps)
        for (const secret of [TOKEN, PASSWORD, 'dbpass-Hidden-42'])
          expect(d.includes(secret), `${secret} in ${d.slice(0, 200)}`).toBe(false);
    });
  });

  describe('POST /api/v1/rules/test (dry run)', () => {
    const countAll = async () => ({
      events: (await db().select({ n: count() }).from(events))[0]!.n,
      enforcements: (await db().select({ n: count() }).from(enforcements))[0]!.n,
      executions: (await db().select({ n: count() }).from(executions))[0]!.n,
    });
    beforeAll(async () => {
      await created('/api/v1/rules', {
        ref: 'ev.dry',
        trigger_ref: 'ev.alert',
        criteria: {
          'trigger.severity': { type: 'iequals', pattern: 'CRITICAL' },
          'trigger.count': { type: 'lt', pattern: 100 },
        },
        action_ref: 'ev.notify',
        action_params: { message: 'n={{ trigger.count }}', count: '{{ trigger.count + 1 }}' },
        enabled: false,
      });
    });

    it('answers match, per-criterion results and typed parameters for a stored rule, with no side effects', async () => {
      const before = await countAll();
      const r = await req('POST', '/api/v1/rules/test', {
        rule: 'ev.dry',
        payload: { severity: 'critical', count: 4 },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.data).toMatchObject({
        matched: true,
        would_execute: true,
        parameters: { message: 'n=4', count: 5, channel: '#ops' },
        secret_parameters: [],
        errors: [],
      });
      expect(r.body.data.criteria).toHaveLength(2);
      const miss = await req('POST', '/api/v1/rules/test', {
        rule: 'ev.dry',
        payload: { severity: 'critical', count: 400 },
      });
      expect(miss.body.data).toMatchObject({ matched: false, would_execute: false, parameters: null });
      expect(miss.body.data.criteria).toHaveLength(2);
      expect(await countAll()).toEqual(before);
    });

    it('tries an inline rule on a stored event', async () => {
      const e = await postEvent('ev.alert', { severity: 'warning', host: 'x', count: 1 });
      await settled();
      const before = await countAll();
      const r = await req('POST', '/api/v1/rules/test', {
        rule: {
          ref: 'ev.inline',
          trigger_ref: 'ev.alert',
          criteria: { expression: "{{ trigger.severity in ['warning', 'critical'] }}" },
          action_ref: 'ev.noop',
          action_params: { id: '{{ event.id }}', who: '{{ rule.ref }}', whole: '{{ trigger }}' },
        },
        event_id: e.id,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.data).toMatchObject({
        matched: true,
        would_execute: true,
        parameters: { id: e.id, who: 'ev.inline', whole: { severity: 'warning', host: 'x', count: 1 } },
      });
      expect(await countAll()).toEqual(before);
    });

    it('reports rendering, action and validation problems as errors, not failures of the request', async () => {
      const r = await req('POST', '/api/v1/rules/test', {
        rule: {
          trigger_ref: 'ev.free',
          action_ref: 'ev.notify',
          action_params: { count: 'not a number' },
        },
        payload: {},
      });
      expect(r.status).toBe(200);
      expect(r.body.data.matched).toBe(true);
      expect(r.body.data.would_execute).toBe(false);
      expect(r.body.data.errors[0]).toMatchObject({ stage: 'validation' });
      const missing = await req('POST', '/api/v1/rules/test', {
        rule: { trigger_ref: 'ev.nothere', action_ref: 'ev.nothere' },
        payload: {},
      });
      expect(missing.status).toBe(200);
      expect(missing.body.data.errors.map((x: AnyBody) => x.stage).sort()).toEqual(['action', 'trigger']);
      const badPayload = await req('POST', '/api/v1/rules/test', {
        rule: 'ev.dry',
        payload: { severity: 'nope' },
      });
      expect(badPayload.body.data.errors.some((x: AnyBody) => x.stage === 'payload')).toBe(true);
      expect(badPayload.body.data.would_execute).toBe(false);
    });

    it('refuses bad requests with 4xx', async () => {
      const cases: [unknown, number][] = [
        [{ rule: 'ev.dry' }, 400],
        [{ rule: 'ev.dry', payload: {}, event_id: 1 }, 400],
        [{ rule: 'ev.unknown', payload: {} }, 404],
        [{ rule: 'ev.dry', event_id: 999_999_999 }, 404],
        [
          {
            rule: {
              trigger_ref: 'ev.free',
              action_ref: 'ev.noop',
              criteria: { 'trigger.x': { type: 'bogus' } },
            },
            payload: {},
          },
          400,
        ],
        [{ rule: { trigger_ref: 'ev.free' }, payload: {} }, 400],
        [{ rule: 'ev.dry', payload: {}, extra: 1 }, 400],
      ];
      for (const [body, status] of cases) {
        const r = await req('POST', '/api/v1/rules/test', body);
        expect(r.status, JSON.stringify(body)).toBe(status);
        expect(r.body.error.message).toBeTruthy();
      }
    });

    it('redacts secret parameters; encrypted keys stay masked without the decrypt permission', async () => {
      const rule = {
        trigger_ref: 'ev.free',
        criteria: { 'trigger.x': { type: 'equals', pattern: '{{ keys.api_token }}' } },
        action_ref: 'ev.call_api',
        action_params: { token: '{{ keys.api_token }}', region: '{{ keys.region }}' },
      };
      const asAdmin = await req('POST', '/api/v1/rules/test', {
        rule,
        payload: { x: 'tok-Very-Secret-31337' },
      });
      expect(asAdmin.body.data).toMatchObject({
        matched: true,
        parameters: { token: { $secret: true }, region: 'eu-west-1' },
        secret_parameters: ['token'],
      });
      expect(JSON.stringify(asAdmin.body.data.parameters)).not.toContain('Secret-31337');
      // without the decrypt permission, the criteria see a mask: no oracle for guessing the key
      const asViewer = await req(
        'POST',
        '/api/v1/rules/test',
        { rule, payload: { x: 'tok-Very-Secret-31337' } },
        viewer,
      );
      expect(asViewer.status).toBe(200);
      expect(asViewer.body.data.matched).toBe(false);
      expect(asViewer.body.data.criteria[0].pattern).toBe('********');
      expect(asViewer.body.data.notes.join(' ')).toContain('decrypt');
      const probe = await req('POST', '/api/v1/rules/test', { rule, payload: { x: 'guess' } }, viewer);
      expect(JSON.stringify(probe.body)).not.toContain('Secret-31337');
    });
  });
});
