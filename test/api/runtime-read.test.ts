/** The read-only runtime APIs: events, enforcements and executions, over rows written to the store. */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/services/api/auth.ts';
import {
  enforcements,
  events,
  executions,
  identities,
  identityRoles,
  roles,
} from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const t = (s: string) => new Date(s);
const BAD_IDS = ['0', '-1', 'abc', '1e30', '1.5', '99999999999999999999', '%20'];

describeBackend('events, enforcements and executions (read)', () => {
  let s: TestServer;
  let admin: string;
  let viewer: string;
  let eventsOnly: string;
  const ev: Record<string, number> = {};
  const enf: Record<string, number> = {};
  const ex: Record<string, number> = {};

  const get = (url: string, token = admin) => s.request<AnyBody>('GET', url, { token });
  const ids = (r: { body: AnyBody }) => r.body.data.map((x: AnyBody) => x.id);

  async function userWithRole(
    login: string,
    role: string,
    grants?: { resource: string; actions: string[] }[],
  ) {
    const db = s.platform.store.db;
    if (grants) await db.insert(roles).values({ name: role, grants });
    const [r] = await db.select({ id: roles.id }).from(roles).where(eq(roles.name, role));
    const [i] = await db
      .insert(identities)
      .values({ login, passwordHash: await hashPassword('a-long-test-password') })
      .returning({ id: identities.id });
    await db.insert(identityRoles).values({ identityId: i!.id, roleId: r!.id });
    return s.login(login, 'a-long-test-password');
  }

  beforeAll(async () => {
    s = await startTestServer();
    admin = s.adminToken;
    viewer = await userWithRole('vic', 'viewer');
    eventsOnly = await userWithRole('evo', 'events-reader', [{ resource: 'events', actions: ['read'] }]);
    const db = s.platform.store.db;

    const addEvent = async (key: string, v: typeof events.$inferInsert) => {
      const [r] = await db.insert(events).values(v).returning({ id: events.id });
      ev[key] = r!.id;
    };
    await addEvent('e1', {
      triggerRef: 'core.webhook',
      payload: { n: 1 },
      source: 'webhook:gh',
      createdAt: t('2024-01-01T00:00:00Z'),
    });
    await addEvent('e2', {
      triggerRef: 'core.intervaltimer',
      payload: { tick: 2 },
      source: 'timer:examples.tick',
      createdAt: t('2024-01-02T00:00:00Z'),
    });
    await addEvent('e3', {
      triggerRef: 'core.webhook',
      payload: ['list', 3],
      source: 'api',
      createdBy: 'admin',
      createdAt: t('2024-01-03T12:00:00Z'),
    });
    await addEvent('e4', {
      triggerRef: 'core.webhook',
      payload: 'text',
      source: 'webhook:gh',
      createdAt: t('2024-01-04T00:00:00Z'),
    });

    const addEnf = async (key: string, v: typeof enforcements.$inferInsert) => {
      const [r] = await db.insert(enforcements).values(v).returning({ id: enforcements.id });
      enf[key] = r!.id;
    };
    await addEnf('f1', {
      ruleRef: 'examples.on_push',
      triggerRef: 'core.webhook',
      eventId: ev.e1!,
      status: 'scheduled',
      resolvedParams: { branch: 'main' },
      createdAt: t('2024-01-01T00:00:01Z'),
    });
    await addEnf('f2', {
      ruleRef: 'examples.on_tick',
      triggerRef: 'core.intervaltimer',
      eventId: ev.e2!,
      status: 'failed',
      failureReason: 'parameter "x" could not be rendered',
      createdAt: t('2024-01-02T00:00:01Z'),
    });
    await addEnf('f3', {
      ruleRef: 'examples.on_push',
      triggerRef: 'core.webhook',
      eventId: ev.e4!,
      status: 'created',
      createdAt: t('2024-01-04T00:00:01Z'),
    });

    // Rows are written as the runtime would leave them: a finished one was already followed up, so
    // the sweeper of the running test server has nothing to do with it.
    const addEx = async (key: string, v: typeof executions.$inferInsert) => {
      const finished = ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'].includes(v.status ?? '');
      const [r] = await db
        .insert(executions)
        .values({ ...(finished && { completionHandledAt: v.finishedAt ?? new Date() }), ...v })
        .returning({ id: executions.id });
      ex[key] = r!.id;
    };
    await addEx('x1', {
      actionRef: 'examples.deploy',
      runner: 'workflow',
      status: 'succeeded',
      parameters: { env: 'prod' },
      result: { deployed: true },
      enforcementId: enf.f1!,
      ruleRef: 'examples.on_push',
      triggerRef: 'core.webhook',
      eventId: ev.e1!,
      createdBy: 'admin',
      workerId: 'w-1',
      timeoutSeconds: 600,
      createdAt: t('2024-01-01T00:00:02Z'),
      scheduledAt: t('2024-01-01T00:00:02.500Z'),
      startedAt: t('2024-01-01T00:00:03Z'),
      finishedAt: t('2024-01-01T00:00:05.500Z'),
      updatedAt: t('2024-01-01T00:00:05.500Z'),
    });
    await addEx('x2', {
      actionRef: 'core.local',
      runner: 'local-shell-cmd',
      status: 'succeeded',
      parameters: { cmd: 'make' },
      parentId: ex.x1!,
      rootId: ex.x1!,
      taskName: 'build',
      createdAt: t('2024-01-01T00:00:03.100Z'),
      startedAt: t('2024-01-01T00:00:03.200Z'),
      finishedAt: t('2024-01-01T00:00:04Z'),
    });
    await addEx('x3', {
      actionRef: 'core.http',
      runner: 'http-request',
      status: 'failed',
      parentId: ex.x1!,
      rootId: ex.x1!,
      taskName: 'notify',
      attempt: 2,
      error: { message: 'connection refused', type: 'http' },
      createdAt: t('2024-01-01T00:00:04.100Z'),
      startedAt: t('2024-01-01T00:00:04.200Z'),
      finishedAt: t('2024-01-01T00:00:05Z'),
    });
    await addEx('x4', {
      actionRef: 'core.noop',
      runner: 'noop',
      status: 'running',
      createdAt: t('2024-01-03T00:00:00Z'),
      startedAt: t('2024-01-03T00:00:01Z'),
    });
    await addEx('x5', {
      actionRef: 'core.echo',
      runner: 'echo',
      status: 'requested',
      rerunOf: ex.x4!,
      createdAt: t('2024-01-05T00:00:00Z'),
    });
    await addEx('x6', {
      actionRef: 'core.sleep',
      runner: 'sleep',
      status: 'canceled',
      createdAt: t('2024-01-04T00:00:00Z'),
      finishedAt: t('2024-01-04T00:00:10Z'),
    });
  });
  afterAll(async () => s?.stop());

  it('rejects anonymous calls and callers without the read right', async () => {
    for (const u of ['/api/v1/events', '/api/v1/enforcements', '/api/v1/executions']) {
      const anon = await s.request<AnyBody>('GET', u);
      expect(anon.status, u).toBe(401);
      expect((await s.request<AnyBody>('GET', `${u}/1`)).status).toBe(401);
      expect((await get(u, viewer)).status, `viewer ${u}`).toBe(200);
    }
    expect((await get('/api/v1/events', eventsOnly)).status).toBe(200);
    for (const u of ['/api/v1/enforcements', '/api/v1/executions', `/api/v1/executions/${ex.x1}`]) {
      const r = await get(u, eventsOnly);
      expect(r.status, u).toBe(403);
      expect(r.body.error.code).toBe('FORBIDDEN');
    }
  });

  describe('events', () => {
    it('lists newest first with pagination', async () => {
      const all = await get('/api/v1/events');
      expect(all.status).toBe(200);
      expect(ids(all)).toEqual([ev.e4, ev.e3, ev.e2, ev.e1]);
      expect(all.body.pagination).toEqual({ page: 1, page_size: 50, total_items: 4, total_pages: 1 });
      const p2 = await get('/api/v1/events?page_size=3&page=2');
      expect(ids(p2)).toEqual([ev.e1]);
      expect(p2.body.pagination).toEqual({ page: 2, page_size: 3, total_items: 4, total_pages: 2 });
    });

    it('filters by trigger, source and time', async () => {
      expect(ids(await get('/api/v1/events?trigger=core.webhook'))).toEqual([ev.e4, ev.e3, ev.e1]);
      expect(ids(await get('/api/v1/events?source=webhook:gh'))).toEqual([ev.e4, ev.e1]);
      expect(ids(await get('/api/v1/events?trigger=core.webhook&source=api'))).toEqual([ev.e3]);
      expect(ids(await get('/api/v1/events?trigger=nope.none'))).toEqual([]);
      // since is inclusive, until exclusive; a date alone is midnight UTC
      expect(ids(await get('/api/v1/events?since=2024-01-02'))).toEqual([ev.e4, ev.e3, ev.e2]);
      expect(ids(await get('/api/v1/events?until=2024-01-03'))).toEqual([ev.e2, ev.e1]);
      expect(ids(await get('/api/v1/events?since=2024-01-02T00:00:00Z&until=2024-01-04T00:00:00Z'))).toEqual([
        ev.e3,
        ev.e2,
      ]);
      const offset = encodeURIComponent('2024-01-03T13:00:00+02:00');
      expect(ids(await get(`/api/v1/events?since=${offset}`))).toEqual([ev.e4, ev.e3]);
      // an unencoded '+' arrives as a space and still means '+'
      expect(ids(await get('/api/v1/events?since=2024-01-03T13:00:00+02:00'))).toEqual([ev.e4, ev.e3]);
    });

    it('returns one event by id with all its fields', async () => {
      const r = await get(`/api/v1/events/${ev.e3}`);
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({
        id: ev.e3,
        trigger_ref: 'core.webhook',
        trigger_params: {},
        payload: ['list', 3],
        source: 'api',
        created_by: 'admin',
        created_at: '2024-01-03T12:00:00.000Z',
      });
      expect((await get(`/api/v1/events/${ev.e4}`)).body.data.payload).toBe('text');
    });
  });

  describe('enforcements', () => {
    it('lists newest first with the execution each one led to', async () => {
      const r = await get('/api/v1/enforcements');
      expect(ids(r)).toEqual([enf.f3, enf.f2, enf.f1]);
      expect(r.body.data.map((e: AnyBody) => e.execution_id)).toEqual([null, null, ex.x1]);
      expect(r.body.pagination.total_items).toBe(3);
      const g = await get(`/api/v1/enforcements/${enf.f2}`);
      expect(g.body.data).toEqual({
        id: enf.f2,
        rule_id: null,
        rule_ref: 'examples.on_tick',
        trigger_ref: 'core.intervaltimer',
        event_id: ev.e2,
        status: 'failed',
        resolved_params: null,
        failure_reason: 'parameter "x" could not be rendered',
        execution_id: null,
        created_at: '2024-01-02T00:00:01.000Z',
      });
      expect((await get(`/api/v1/enforcements/${enf.f1}`)).body.data).toMatchObject({
        execution_id: ex.x1,
        resolved_params: { branch: 'main' },
      });
    });

    it('filters by rule, trigger, event, status and time', async () => {
      expect(ids(await get('/api/v1/enforcements?rule=examples.on_push'))).toEqual([enf.f3, enf.f1]);
      expect(ids(await get('/api/v1/enforcements?trigger=core.intervaltimer'))).toEqual([enf.f2]);
      expect(ids(await get(`/api/v1/enforcements?event=${ev.e4}`))).toEqual([enf.f3]);
      expect(ids(await get('/api/v1/enforcements?status=failed'))).toEqual([enf.f2]);
      expect(ids(await get('/api/v1/enforcements?status=created,scheduled'))).toEqual([enf.f3, enf.f1]);
      expect(ids(await get('/api/v1/enforcements?since=2024-01-02&until=2024-01-04'))).toEqual([enf.f2]);
      expect(ids(await get('/api/v1/enforcements?rule=examples.on_push&status=scheduled'))).toEqual([enf.f1]);
      const bad = await get('/api/v1/enforcements?status=done');
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/'done'/);
    });
  });

  describe('executions', () => {
    it('returns every field, with the duration once finished', async () => {
      const r = await get(`/api/v1/executions/${ex.x1}`);
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({
        id: ex.x1,
        action_ref: 'examples.deploy',
        runner: 'workflow',
        status: 'succeeded',
        parameters: { env: 'prod' },
        result: { deployed: true },
        error: null,
        parent_id: null,
        root_id: null,
        task_name: null,
        enforcement_id: enf.f1,
        rule_ref: 'examples.on_push',
        trigger_ref: 'core.webhook',
        event_id: ev.e1,
        created_by: 'admin',
        rerun_of: null,
        worker_id: 'w-1',
        attempt: 1,
        timeout_seconds: 600,
        created_at: '2024-01-01T00:00:02.000Z',
        scheduled_at: '2024-01-01T00:00:02.500Z',
        started_at: '2024-01-01T00:00:03.000Z',
        finished_at: '2024-01-01T00:00:05.500Z',
        updated_at: '2024-01-01T00:00:05.500Z',
        duration_ms: 2500,
      });
      const failed = (await get(`/api/v1/executions/${ex.x3}`)).body.data;
      expect(failed).toMatchObject({
        status: 'failed',
        error: { message: 'connection refused', type: 'http' },
        result: null,
        parameters: {},
        parent_id: ex.x1,
        root_id: ex.x1,
        task_name: 'notify',
        attempt: 2,
        duration_ms: 800,
      });
      const running = (await get(`/api/v1/executions/${ex.x4}`)).body.data;
      expect(running).toMatchObject({ status: 'running', finished_at: null, duration_ms: null });
      // canceled before it started: measured from creation
      expect((await get(`/api/v1/executions/${ex.x6}`)).body.data.duration_ms).toBe(10_000);
      expect((await get(`/api/v1/executions/${ex.x5}`)).body.data.rerun_of).toBe(ex.x4);
    });

    it('lists newest first with pagination', async () => {
      const all = await get('/api/v1/executions');
      expect(ids(all)).toEqual([ex.x5, ex.x6, ex.x4, ex.x3, ex.x2, ex.x1]);
      expect(all.body.pagination.total_items).toBe(6);
      const p = await get('/api/v1/executions?page_size=4&page=2');
      expect(ids(p)).toEqual([ex.x2, ex.x1]);
      expect(p.body.pagination).toEqual({ page: 2, page_size: 4, total_items: 6, total_pages: 2 });
      const beyond = await get('/api/v1/executions?page_size=4&page=50');
      expect(beyond.body.data).toEqual([]);
      expect(beyond.body.pagination.total_items).toBe(6);
    });

    it('filters by status list, action, rule, trigger, parent, root, enforcement, event and time', async () => {
      const cases: [string, number[]][] = [
        ['status=succeeded', [ex.x2!, ex.x1!]],
        ['status=succeeded,failed', [ex.x3!, ex.x2!, ex.x1!]],
        ['status=%20running%20,requested', [ex.x5!, ex.x4!]],
        ['status=abandoned', []],
        ['action=core.http', [ex.x3!]],
        ['rule=examples.on_push', [ex.x1!]],
        ['trigger=core.webhook', [ex.x1!]],
        [`parent=${ex.x1}`, [ex.x3!, ex.x2!]],
        [`root=${ex.x1}`, [ex.x3!, ex.x2!]],
        [`parent=${ex.x1}&status=failed`, [ex.x3!]],
        [`enforcement=${enf.f1}`, [ex.x1!]],
        [`event=${ev.e1}`, [ex.x1!]],
        ['since=2024-01-03', [ex.x5!, ex.x6!, ex.x4!]],
        ['until=2024-01-01T00:00:04.100Z', [ex.x2!, ex.x1!]],
        ['since=2024-01-03&until=2024-01-05&status=canceled', [ex.x6!]],
      ];
      for (const [q, want] of cases) {
        const r = await get(`/api/v1/executions?${q}`);
        expect(r.status, q).toBe(200);
        expect(ids(r), q).toEqual(want);
        expect(r.body.pagination.total_items, q).toBe(want.length);
      }
    });
  });

  it('refuses malformed ids with 400 and unknown ids with 404', async () => {
    for (const base of ['/api/v1/events', '/api/v1/enforcements', '/api/v1/executions']) {
      for (const id of BAD_IDS) {
        const r = await get(`${base}/${id}`);
        expect(r.status, `${base}/${id}`).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
      const missing = await get(`${base}/987654321`);
      expect(missing.status, base).toBe(404);
      expect(missing.body.error).toMatchObject({ code: 'NOT_FOUND' });
      expect(missing.body.error.message).toMatch(/987654321/);
    }
  });

  it('refuses bad filters with 400 and the error body', async () => {
    const bad = [
      '/api/v1/events?since=yesterday',
      '/api/v1/events?since=2024-02-30',
      '/api/v1/events?until=2024-01-01T25:00:00Z',
      '/api/v1/events?since=2024-01-05&until=2024-01-01',
      '/api/v1/events?trigger=',
      '/api/v1/events?status=running',
      '/api/v1/events?page=0',
      '/api/v1/events?page_size=1001',
      '/api/v1/enforcements?event=abc',
      '/api/v1/enforcements?event=0',
      '/api/v1/enforcements?until=not-a-date',
      '/api/v1/executions?status=bogus',
      '/api/v1/executions?status=running,bogus',
      '/api/v1/executions?status=,',
      '/api/v1/executions?parent=-1',
      '/api/v1/executions?root=1e30',
      '/api/v1/executions?enforcement=x',
      '/api/v1/executions?since=1700000000',
      '/api/v1/executions?unknown=1',
    ];
    for (const u of bad) {
      const r = await get(u);
      expect(r.status, u).toBe(400);
      expect(typeof r.body.error.code, u).toBe('string');
      expect(typeof r.body.error.message, u).toBe('string');
    }
    const unknown = await get('/api/v1/executions?status=running,bogus');
    expect(unknown.body.error.message).toMatch(/'bogus'/);
    expect(unknown.body.error.details.allowed).toContain('succeeded');
    const range = await get('/api/v1/events?since=2024-01-05&until=2024-01-01');
    expect(range.body.error.message).toMatch(/since/);
  });
});
