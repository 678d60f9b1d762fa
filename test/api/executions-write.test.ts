/**
 * The write side of executions over real HTTP: running an action (validation, secrets, the
 * transaction with its outbox message), canceling and re-running — checked in the database.
 */
import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, BusMessage, Subscription } from '../../src/bus/bus.ts';
import { hashPassword } from '../../src/services/api/auth.ts';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import {
  actions,
  executionSecrets,
  executions,
  identities,
  identityRoles,
  outbox,
  packs,
  roles,
} from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const SECRET = 'hunter2-very-secret';

describeBackend('executions: run, cancel, re-run', () => {
  let s: TestServer;
  let admin: string;
  let viewer: string;
  let kicks = 0;

  const post = (url: string, body?: unknown, token = admin) =>
    s.request<AnyBody>('POST', url, { token, ...(body === undefined ? {} : { body }) });
  const run = (body: unknown, token = admin) => post('/api/v1/executions', body, token);
  const db = () => s.platform.store.db;

  const execRow = async (id: number) =>
    (await db().select().from(executions).where(eq(executions.id, id)))[0];
  const secretsOf = async (id: number) =>
    (await db().select().from(executionSecrets).where(eq(executionSecrets.executionId, id)))[0];
  const outboxFor = async (topic: string, id: number) =>
    db()
      .select()
      .from(outbox)
      .where(and(eq(outbox.topic, topic), sql`(${outbox.payload}->>'execution_id')::bigint = ${id}`));
  const counts = async () => {
    const [e] = await db().select({ n: sql<number>`count(*)::int` }).from(executions);
    const [o] = await db()
      .select({ n: sql<number>`count(*)::int` })
      .from(outbox)
      .where(eq(outbox.topic, TOPICS.executionRequested));
    const [x] = await db().select({ n: sql<number>`count(*)::int` }).from(executionSecrets);
    return { executions: e!.n, outbox: o!.n, secrets: x!.n };
  };
  /** An execution written directly in a given state (a far lease: no sweeper touches it meanwhile). */
  const insertExecution = async (status: string, extra: Partial<typeof executions.$inferInsert> = {}) => {
    const [r] = await db()
      .insert(executions)
      .values({
        actionRef: 'xt.plain',
        runner: 'noop',
        status,
        parameters: {},
        runAfter: status === 'delayed' ? sql`now() + interval '1 hour'` : null,
        leaseExpiresAt: ['scheduled', 'running', 'canceling'].includes(status)
          ? sql`now() + interval '1 hour'`
          : null,
        workerId: ['running', 'canceling'].includes(status) ? 'worker-far-away' : null,
        startedAt: ['running', 'canceling'].includes(status) ? new Date() : null,
        ...extra,
      })
      .returning();
    return r!;
  };
  const bus = (): Bus => s.platform.bus;

  async function userWithRole(login: string, role: string) {
    const [r] = await db().select({ id: roles.id }).from(roles).where(eq(roles.name, role));
    const [i] = await db()
      .insert(identities)
      .values({ login, passwordHash: await hashPassword('a-long-test-password') })
      .returning({ id: identities.id });
    await db().insert(identityRoles).values({ identityId: i!.id, roleId: r!.id });
    return s.login(login, 'a-long-test-password');
  }

  beforeAll(async () => {
    s = await startTestServer();
    admin = s.adminToken;
    viewer = await userWithRole('vera', 'viewer');
    const relay = s.platform.ctx.outbox;
    s.platform.ctx.outbox = {
      kick() {
        kicks++;
        relay?.kick();
      },
    };
    const [pack] = await db()
      .insert(packs)
      .values({ ref: 'xt', label: 'xt', version: '1.0.0', source: { type: 'api' } })
      .returning({ id: packs.id });
    const base = { packId: pack!.id, packRef: 'xt', runner: 'noop', label: 'x' };
    await db()
      .insert(actions)
      .values([
        {
          ...base,
          ref: 'xt.deploy',
          name: 'deploy',
          paramSchema: {
            type: 'object',
            properties: {
              service: { type: 'string', minLength: 1 },
              env: { type: 'string', enum: ['dev', 'prod'], default: 'dev' },
              replicas: { type: 'integer', minimum: 1, maximum: 10, default: 2 },
              token: { type: 'string', secret: true, minLength: 8 },
              password: { type: 'string', secret: true },
            },
            required: ['service'],
            additionalProperties: false,
          },
        },
        { ...base, ref: 'xt.plain', name: 'plain', paramSchema: {} },
        { ...base, ref: 'xt.off', name: 'off', paramSchema: {}, enabled: false },
      ]);
  });
  afterAll(async () => {
    await s?.stop();
  });

  describe('POST /api/v1/executions', () => {
    it('creates a requested execution with defaults applied, its outbox message, in one go', async () => {
      const kicksBefore = kicks;
      const r = await run({ action: 'xt.deploy', parameters: { service: 'web' }, timeout_seconds: 90 });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const e = r.body.data;
      expect(e).toMatchObject({
        action_ref: 'xt.deploy',
        runner: 'noop',
        status: 'requested',
        parameters: { service: 'web', env: 'dev', replicas: 2 },
        created_by: 'admin',
        timeout_seconds: 90,
        parent_id: null,
        rerun_of: null,
        result: null,
        error: null,
        duration_ms: null,
      });
      const row = await execRow(e.id);
      expect(row!.parameters).toEqual({ service: 'web', env: 'dev', replicas: 2 });
      expect(row!.createdBy).toBe('admin');
      expect(await secretsOf(e.id)).toBeUndefined();
      const msgs = await outboxFor(TOPICS.executionRequested, e.id);
      expect(msgs).toHaveLength(1);
      expect(msgs[0]!.payload).toEqual({ execution_id: e.id });
      expect(kicks).toBe(kicksBefore + 1);
      const read = await s.request<AnyBody>('GET', `/api/v1/executions/${e.id}`, { token: admin });
      expect(read.body.data.parameters).toEqual(e.parameters);
    });

    it('stores secret parameters encrypted and shows only the marker', async () => {
      const r = await run({
        action: 'xt.deploy',
        parameters: { service: 'api', token: SECRET, password: 'pw' },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const e = r.body.data;
      expect(e.parameters).toEqual({
        service: 'api',
        env: 'dev',
        replicas: 2,
        token: { $secret: true },
        password: { $secret: true },
      });
      expect(JSON.stringify(r.body)).not.toContain(SECRET);
      const sec = await secretsOf(e.id);
      expect(sec!.ciphertext).not.toContain(SECRET);
      expect(JSON.parse(s.platform.ctx.cipher.decrypt(sec!.ciphertext))).toEqual({
        token: SECRET,
        password: 'pw',
      });
      const row = await execRow(e.id);
      expect(JSON.stringify(row)).not.toContain(SECRET);
      const msgs = await outboxFor(TOPICS.executionRequested, e.id);
      expect(JSON.stringify(msgs)).not.toContain(SECRET);
      // the list shows the marker too
      const list = await s.request<AnyBody>('GET', '/api/v1/executions?action=xt.deploy', { token: admin });
      expect(JSON.stringify(list.body)).not.toContain(SECRET);
    });

    it('runs an action with no parameter schema and no parameters', async () => {
      const r = await run({ action: 'xt.plain' });
      expect(r.status).toBe(201);
      expect(r.body.data.parameters).toEqual({});
      expect(r.body.data.timeout_seconds).toBeNull();
    });

    it('refuses parameters that do not fit, listing every problem, and writes nothing', async () => {
      const before = await counts();
      const r = await run({
        action: 'xt.deploy',
        parameters: { env: 'staging', replicas: 50, token: 'short', extra: 1 },
      });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_ERROR');
      expect(r.body.error.message).toContain("action 'xt.deploy'");
      const paths = r.body.error.details.problems.map((p: AnyBody) => p.path).sort();
      expect(paths).toEqual(['/env', '/extra', '/replicas', '/service', '/token']);
      expect(r.body.error.details).toMatchObject({ field: 'parameters', action_ref: 'xt.deploy' });
      expect(JSON.stringify(r.body)).not.toContain('short"'); // the secret value is not echoed
      expect(await counts()).toEqual(before);
    });

    it('answers 404 for an unknown action and 409 for a disabled one', async () => {
      const before = await counts();
      const missing = await run({ action: 'xt.nothing' });
      expect(missing.status).toBe(404);
      expect(missing.body.error).toMatchObject({ code: 'NOT_FOUND' });
      expect(missing.body.error.message).toContain('xt.nothing');
      const off = await run({ action: 'xt.off' });
      expect(off.status).toBe(409);
      expect(off.body.error).toMatchObject({
        code: 'CONFLICT',
        details: { action_ref: 'xt.off', enabled: false },
      });
      expect(await counts()).toEqual(before);
    });

    it('refuses malformed bodies with 400', async () => {
      const before = await counts();
      for (const body of [
        {},
        { action: 'not a ref' },
        { action: 'xt.plain', parameters: [] },
        { action: 'xt.plain', parameters: 'x' },
        { action: 'xt.plain', timeout_seconds: 0 },
        { action: 'xt.plain', timeout_seconds: 604_801 },
        { action: 'xt.plain', timeout_seconds: 1.5 },
        { action: 'xt.plain', whatever: true },
      ]) {
        const r = await run(body);
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
      expect(await counts()).toEqual(before);
    });

    it('needs executions:execute', async () => {
      const r = await run({ action: 'xt.plain' }, viewer);
      expect(r.status).toBe(403);
      expect((await s.request('POST', '/api/v1/executions', { body: { action: 'xt.plain' } })).status).toBe(
        401,
      );
    });
  });

  describe('POST /api/v1/executions/{id}/cancel', () => {
    let received: BusMessage[];
    let sub: Subscription;
    beforeAll(async () => {
      received = [];
      sub = await bus().subscribe([TOPICS.executionCancel, TOPICS.notifyStatus], async (m) => {
        received.push(m);
      });
    });
    afterAll(async () => sub?.close());
    const waitFor = async (pred: (m: BusMessage) => boolean) => {
      for (let i = 0; i < 100 && !received.some(pred); i++) await new Promise((r) => setTimeout(r, 20));
      return received.filter(pred);
    };
    const forId = (topic: string, id: number) => (m: BusMessage) =>
      m.topic === topic && (m.payload as AnyBody).execution_id === id;

    it.each(['requested', 'delayed', 'scheduled'])('cancels a %s execution at once (200)', async (status) => {
      const e = await insertExecution(status);
      const r = await post(`/api/v1/executions/${e.id}/cancel`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.data).toMatchObject({ id: e.id, status: 'canceled' });
      expect(r.body.data.error).toMatchObject({ canceled_by: 'admin' });
      expect(r.body.data.finished_at).toEqual(expect.any(String));
      const row = await execRow(e.id);
      expect(row!.status).toBe('canceled');
      expect(await outboxFor(TOPICS.executionCompleted, e.id)).toHaveLength(1);
      const st = await waitFor(forId(TOPICS.notifyStatus, e.id));
      expect(st.map((m) => (m.payload as AnyBody).status)).toContain('canceled');
    });

    it('asks the worker of a running execution to stop it (202 canceling, broadcast)', async () => {
      const e = await insertExecution('running');
      const r = await post(`/api/v1/executions/${e.id}/cancel`, {});
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      expect(r.body.data.status).toBe('canceling');
      expect((await execRow(e.id))!.status).toBe('canceling');
      expect(await waitFor(forId(TOPICS.executionCancel, e.id))).toHaveLength(1);
      // asking again repeats the request and changes nothing
      const again = await post(`/api/v1/executions/${e.id}/cancel`);
      expect(again.status).toBe(202);
      expect(again.body.data.status).toBe('canceling');
      expect(again.body.data.updated_at).toBe(r.body.data.updated_at);
      const repeated = (m: BusMessage) =>
        forId(TOPICS.executionCancel, e.id)(m) &&
        received.filter(forId(TOPICS.executionCancel, e.id)).length > 1;
      expect((await waitFor(repeated)).length).toBe(2);
    });

    it.each(['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'])(
      'refuses to cancel a %s execution (409 with its status)',
      async (status) => {
        const e = await insertExecution(status, { finishedAt: new Date() });
        const r = await post(`/api/v1/executions/${e.id}/cancel`);
        expect(r.status).toBe(409);
        expect(r.body.error).toMatchObject({ code: 'CONFLICT', details: { id: e.id, status } });
        expect((await execRow(e.id))!.status).toBe(status);
      },
    );

    it('answers 404 for an unknown execution, 400 for a body, 403 without the right', async () => {
      expect((await post('/api/v1/executions/987654321/cancel')).status).toBe(404);
      const e = await insertExecution('delayed');
      expect((await post(`/api/v1/executions/${e.id}/cancel`, { reason: 'x' })).status).toBe(400);
      expect((await post(`/api/v1/executions/${e.id}/cancel`, undefined, viewer)).status).toBe(403);
      expect((await execRow(e.id))!.status).toBe('delayed');
    });

    it('lets exactly one of many concurrent cancels win', async () => {
      const e = await insertExecution('delayed');
      const rs = await Promise.all(
        Array.from({ length: 8 }, () => post(`/api/v1/executions/${e.id}/cancel`)),
      );
      const codes = rs.map((r) => r.status).sort();
      expect(codes.filter((c) => c === 200)).toHaveLength(1);
      expect(codes.filter((c) => c !== 200).every((c) => c === 409)).toBe(true);
      expect(await outboxFor(TOPICS.executionCompleted, e.id)).toHaveLength(1);
    });
  });

  describe('POST /api/v1/executions/{id}/rerun', () => {
    let original: AnyBody;
    beforeAll(async () => {
      const r = await run({
        action: 'xt.deploy',
        parameters: { service: 'db', env: 'prod', token: SECRET },
        timeout_seconds: 120,
      });
      expect(r.status).toBe(201);
      original = r.body.data;
    });

    it('re-runs with the original parameters, secrets re-encrypted', async () => {
      const r = await post(`/api/v1/executions/${original.id}/rerun`);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      const e = r.body.data;
      expect(e.id).not.toBe(original.id);
      expect(e).toMatchObject({
        action_ref: 'xt.deploy',
        status: 'requested',
        rerun_of: original.id,
        created_by: 'admin',
        timeout_seconds: 120,
        parameters: { service: 'db', env: 'prod', replicas: 2, token: { $secret: true } },
      });
      const a = await secretsOf(original.id);
      const b = await secretsOf(e.id);
      expect(b!.ciphertext).not.toBe(a!.ciphertext);
      expect(JSON.parse(s.platform.ctx.cipher.decrypt(b!.ciphertext))).toEqual({ token: SECRET });
      expect(await outboxFor(TOPICS.executionRequested, e.id)).toHaveLength(1);
    });

    it('overrides parameters (secret ones too) and validates the result', async () => {
      const r = await post(`/api/v1/executions/${original.id}/rerun`, {
        parameters: { env: 'dev', token: 'another-secret-value' },
        timeout_seconds: 30,
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.data.parameters).toMatchObject({ service: 'db', env: 'dev', token: { $secret: true } });
      expect(r.body.data.timeout_seconds).toBe(30);
      const sec = await secretsOf(r.body.data.id);
      expect(JSON.parse(s.platform.ctx.cipher.decrypt(sec!.ciphertext))).toEqual({
        token: 'another-secret-value',
      });

      const before = await counts();
      const bad = await post(`/api/v1/executions/${original.id}/rerun`, {
        parameters: { replicas: 0, token: 'x' },
      });
      expect(bad.status).toBe(400);
      expect(bad.body.error.details.problems.map((p: AnyBody) => p.path).sort()).toEqual([
        '/replicas',
        '/token',
      ]);
      expect(await counts()).toEqual(before);
    });

    it('keeps a value secret that was secret when first given, even if the schema changed', async () => {
      const [before] = await db().select().from(actions).where(eq(actions.ref, 'xt.deploy'));
      await db()
        .update(actions)
        .set({
          paramSchema: {
            type: 'object',
            properties: {
              service: { type: 'string' },
              env: { type: 'string' },
              replicas: { type: 'integer' },
              token: { type: 'string' },
            },
          },
        })
        .where(eq(actions.ref, 'xt.deploy'));
      try {
        const r = await post(`/api/v1/executions/${original.id}/rerun`, null);
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        expect(r.body.data.parameters.token).toEqual({ $secret: true });
        expect(JSON.stringify(await execRow(r.body.data.id))).not.toContain(SECRET);
      } finally {
        await db()
          .update(actions)
          .set({ paramSchema: before!.paramSchema })
          .where(eq(actions.ref, 'xt.deploy'));
      }
    });

    it('refuses when the secret values are gone and not given again (409)', async () => {
      const r0 = await run({ action: 'xt.plain', parameters: {} });
      // an execution whose parameters hold a marker but whose secrets row is missing
      await db()
        .update(executions)
        .set({ parameters: { key: { $secret: true } } })
        .where(eq(executions.id, r0.body.data.id));
      const r = await post(`/api/v1/executions/${r0.body.data.id}/rerun`);
      expect(r.status).toBe(409);
      expect(r.body.error.details).toMatchObject({ reason: 'secret_missing', parameters: ['key'] });
      const ok = await post(`/api/v1/executions/${r0.body.data.id}/rerun`, {
        parameters: { key: 'given again' },
      });
      expect(ok.status).toBe(201);
    });

    it('answers 404 for an unknown execution, 409 when the action is disabled, 400 for bad bodies', async () => {
      expect((await post('/api/v1/executions/987654321/rerun')).status).toBe(404);
      const e = await insertExecution('succeeded', { actionRef: 'xt.off', finishedAt: new Date() });
      const off = await post(`/api/v1/executions/${e.id}/rerun`);
      expect(off.status).toBe(409);
      const gone = await insertExecution('failed', { actionRef: 'xt.deleted', finishedAt: new Date() });
      expect((await post(`/api/v1/executions/${gone.id}/rerun`)).status).toBe(404);
      for (const body of [{ parameters: 3 }, { other: 1 }, { timeout_seconds: -1 }]) {
        const r = await post(`/api/v1/executions/${original.id}/rerun`, body);
        expect(r.status, JSON.stringify(body)).toBe(400);
      }
      expect((await post(`/api/v1/executions/${original.id}/rerun`, undefined, viewer)).status).toBe(403);
    });
  });
});
