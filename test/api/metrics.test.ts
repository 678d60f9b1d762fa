/**
 * `GET /metrics` over real HTTP on both backends: access (401, 403, public opt-in), a valid
 * Prometheus exposition whose families reflect real work (a manual execution, an event matched by a
 * rule, unfinished executions in the database, HTTP requests by route template), and a scrape that
 * stays cheap — one SQL statement that never scans finished executions.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { eq, inArray, sql } from 'drizzle-orm';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { type Platform, startPlatform } from '../../src/platform.ts';
import { clusterQuery, REPORTED_QUEUES } from '../../src/services/metrics/cluster-metrics.ts';
import { EVENT_TIME_KEY } from '../../src/services/metrics/registry.ts';
import { QUEUES } from '../../src/services/runtime/messages.ts';
import { events, executions, packs } from '../../src/store/schema.ts';
import { amqpDown, amqpTestUrl, deleteAmqpObjects, runPrefix } from '../support/amqp.ts';
import { BACKEND, describeBackend } from '../support/backend.ts';
import { type Family, parsePrometheusText, sampleValue } from '../support/prometheus-text.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const PW = 'metrics test password';

async function until<T>(
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  what: string,
  ms = 15_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describeBackend('GET /metrics', () => {
  let s: TestServer;
  let admin: string;
  const db = () => s.platform.store.db;
  const req = (method: string, path: string, body?: unknown, token: string | null = admin) =>
    s.request<AnyBody>(method, path, { token, body });
  const created = async (path: string, body: unknown) => {
    const r = await req('POST', path, body);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data;
  };
  const scrape = async (token: string | null = admin): Promise<Map<string, Family>> => {
    const r = await s.request<string>('GET', '/metrics', { token });
    expect(r.status, String(r.body)).toBe(200);
    expect(r.headers.get('content-type')).toBe(CONTENT_TYPE);
    return parsePrometheusText(r.body);
  };
  const userWith = async (login: string, roles: string[]) => {
    await created('/api/v1/identities', { login, password: PW, roles });
    return s.login(login, PW);
  };

  beforeAll(async () => {
    s = await startTestServer();
    admin = s.adminToken;
    await db()
      .insert(packs)
      .values({ ref: 'mt', label: 'mt', version: '1.0.0', source: { type: 'api' } });
    await created('/api/v1/triggers', { ref: 'mt.tick' });
    await created('/api/v1/rules', {
      ref: 'mt.on_tick',
      trigger_ref: 'mt.tick',
      action_ref: 'core.noop',
    });
  });
  afterAll(async () => s?.stop());

  it('refuses anonymous callers and callers without workers:read; every built-in role may read it', async () => {
    const anon = await req('GET', '/metrics', undefined, null);
    expect(anon.status).toBe(401);
    expect(anon.body.error.code).toBe('UNAUTHORIZED');

    await created('/api/v1/roles', {
      name: 'mt-no-workers',
      description: 'reads executions only',
      grants: [{ resource: 'executions', actions: ['read'] }],
    });
    const denied = await req('GET', '/metrics', undefined, await userWith('mt-denied', ['mt-no-workers']));
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('FORBIDDEN');

    const viewer = await userWith('mt-viewer', ['viewer']);
    const f = await scrape(viewer);
    expect(f.get('attune_executions')?.type).toBe('gauge');
    const route = s.platform.api.routeTable.find((r) => r.url === '/metrics' && r.method === 'GET');
    expect(route).toMatchObject({ public: false, permission: ['workers', 'read'] });
  });

  it('after a real execution: completions, run time, HTTP by route template, workers, queues, outbox, process', async () => {
    const before = await scrape();
    const done0 = sampleValue(before, 'attune_executions_completed_total', {
      action: 'core.noop',
      status: 'succeeded',
    });
    const e = await created('/api/v1/executions', { action: 'core.noop' });
    await until(
      async () => (await req('GET', `/api/v1/executions/${e.id}`)).body.data.status,
      (st) => st === 'succeeded',
      'the execution to succeed',
    );
    // no route at all (GETs of unknown paths go to the web UI's `/*`)
    expect((await req('POST', '/no/such/route/4711', {})).status).toBe(404);
    // The completion follow-up runs right after the terminal status is committed.
    const f = await until(
      scrape,
      (m) =>
        (sampleValue(m, 'attune_executions_completed_total', { action: 'core.noop', status: 'succeeded' }) ??
          0) ===
        (done0 ?? 0) + 1,
      'the completion to be counted',
    );

    // every family of the issue is there, typed
    const types: Record<string, string> = {
      attune_executions: 'gauge',
      attune_executions_completed_total: 'counter',
      attune_execution_duration_seconds: 'histogram',
      attune_event_to_start_seconds: 'histogram',
      attune_events_created_total: 'counter',
      attune_enforcements_created_total: 'counter',
      attune_queue_depth: 'gauge',
      attune_outbox_backlog: 'gauge',
      attune_workers: 'gauge',
      attune_workers_capacity: 'gauge',
      attune_workers_running: 'gauge',
      attune_worker_running: 'gauge',
      attune_worker_capacity: 'gauge',
      attune_http_requests_total: 'counter',
      attune_http_request_duration_seconds: 'histogram',
      attune_process_resident_memory_bytes: 'gauge',
      attune_process_heap_used_bytes: 'gauge',
      attune_process_cpu_seconds_total: 'counter',
      attune_process_uptime_seconds: 'gauge',
      attune_process_event_loop_lag_seconds: 'histogram',
      attune_cluster_metrics_up: 'gauge',
    };
    for (const [name, type] of Object.entries(types)) expect(f.get(name)?.type, name).toBe(type);
    for (const fam of f.values()) {
      expect(fam.name.startsWith('attune_'), fam.name).toBe(true);
      expect(fam.help, fam.name).toBeTruthy();
    }

    // the run time of that execution
    const count = (m: Map<string, Family>) =>
      sampleValue(m, 'attune_execution_duration_seconds_count', { action: 'core.noop' }) ?? 0;
    expect(count(f)).toBe(count(before) + 1);
    const row = (await db().select().from(executions).where(eq(executions.id, e.id)))[0]!;
    const runSeconds = (row.finishedAt!.getTime() - row.startedAt!.getTime()) / 1000;
    const sum = (m: Map<string, Family>) =>
      sampleValue(m, 'attune_execution_duration_seconds_sum', { action: 'core.noop' }) ?? 0;
    expect(sum(f) - sum(before)).toBeCloseTo(runSeconds, 6);

    // HTTP: route templates, never raw URLs; unmatched requests under one label
    expect(
      sampleValue(f, 'attune_http_requests_total', {
        method: 'POST',
        route: '/api/v1/executions',
        status_code: '201',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleValue(f, 'attune_http_requests_total', {
        method: 'GET',
        route: '/api/v1/executions/:id',
        status_code: '200',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(
      sampleValue(f, 'attune_http_requests_total', {
        method: 'POST',
        route: 'unmatched',
        status_code: '404',
      }),
    ).toBeGreaterThanOrEqual(1);
    const routes = new Set(f.get('attune_http_requests_total')!.samples.map((x) => x.labels.route));
    const templates = new Set(['unmatched', ...s.platform.api.routeTable.map((r) => r.url)]);
    expect([...routes].filter((r) => !templates.has(r!))).toEqual([]);
    expect(routes.has(`/api/v1/executions/${e.id}`)).toBe(false);
    expect(
      sampleValue(f, 'attune_http_request_duration_seconds_count', {
        method: 'POST',
        route: '/api/v1/executions',
        status_code: '201',
      }),
    ).toBeGreaterThanOrEqual(1);

    // workers: from the database and this process's own
    const worker = s.platform.executionRuntime.worker!;
    const capacity = s.platform.config.workerCapacity;
    expect(sampleValue(f, 'attune_workers', { status: 'active' })).toBe(1);
    expect(sampleValue(f, 'attune_workers_capacity', { status: 'active' })).toBe(capacity);
    expect(sampleValue(f, 'attune_workers_running', { status: 'active' })).toBeGreaterThanOrEqual(0);
    expect(sampleValue(f, 'attune_worker_capacity', { worker: worker.id })).toBe(capacity);
    expect(sampleValue(f, 'attune_worker_running', { worker: worker.id })).toBe(worker.active);

    // queues (work queues and their dead-letter queues), outbox, the database was read
    for (const q of Object.values(QUEUES)) {
      expect(sampleValue(f, 'attune_queue_depth', { queue: q }), q).toBeGreaterThanOrEqual(0);
      expect(sampleValue(f, 'attune_queue_depth', { queue: `${q}.dead` }), q).toBe(0);
    }
    expect(f.get('attune_queue_depth')!.samples).toHaveLength(REPORTED_QUEUES.length);
    expect(sampleValue(f, 'attune_outbox_backlog')).toBeGreaterThanOrEqual(0);
    expect(sampleValue(f, 'attune_cluster_metrics_up')).toBe(1);

    // the process
    expect(sampleValue(f, 'attune_process_resident_memory_bytes')).toBeGreaterThan(10_000_000);
    expect(sampleValue(f, 'attune_process_uptime_seconds')).toBeGreaterThan(0);
  });

  it('counts unfinished executions by action and status from the database, never finished ones', async () => {
    const far = sql`now() + interval '1 hour'`;
    const now = new Date();
    const rows = await db()
      .insert(executions)
      .values([
        { actionRef: 'mt.slow', runner: 'noop', status: 'delayed', runAfter: far },
        { actionRef: 'mt.slow', runner: 'noop', status: 'delayed', runAfter: far },
        { actionRef: 'mt.slow', runner: 'noop', status: 'scheduled', leaseExpiresAt: far },
        { actionRef: 'mt.other', runner: 'noop', status: 'delayed', runAfter: far },
        {
          actionRef: 'mt.slow',
          runner: 'noop',
          status: 'succeeded',
          finishedAt: now,
          completionHandledAt: now,
        },
        { actionRef: 'mt.slow', runner: 'noop', status: 'failed', finishedAt: now, completionHandledAt: now },
      ])
      .returning({ id: executions.id });
    try {
      const f = await scrape();
      expect(sampleValue(f, 'attune_executions', { action: 'mt.slow', status: 'delayed' })).toBe(2);
      expect(sampleValue(f, 'attune_executions', { action: 'mt.slow', status: 'scheduled' })).toBe(1);
      expect(sampleValue(f, 'attune_executions', { action: 'mt.other', status: 'delayed' })).toBe(1);
      const statuses = new Set(f.get('attune_executions')!.samples.map((x) => x.labels.status));
      for (const terminal of ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'])
        expect(statuses.has(terminal), terminal).toBe(false);
    } finally {
      await db()
        .delete(executions)
        .where(
          inArray(
            executions.id,
            rows.map((r) => r.id),
          ),
        );
    }
    // gone from the database → gone from the next scrape
    const after = await scrape();
    expect(sampleValue(after, 'attune_executions', { action: 'mt.slow', status: 'delayed' })).toBeUndefined();
  });

  it('an event matched by a rule: counted by trigger, and its event → start latency observed', async () => {
    const before = await scrape();
    const n = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
      sampleValue(m, name, labels) ?? 0;
    const ev = await created('/api/v1/events', { trigger: 'mt.tick', payload: { n: 1 } });
    const exec = await until(
      async () => (await db().select().from(executions).where(eq(executions.eventId, ev.id)))[0],
      (x) => x?.status === 'succeeded',
      'the rule execution to succeed',
    );
    // the event's time travels on the execution: the claim needs no extra read
    const [event] = await db().select().from(events).where(eq(events.id, ev.id));
    expect(exec!.context[EVENT_TIME_KEY]).toBe(event!.createdAt.toISOString());
    const f = await until(
      scrape,
      (m) =>
        n(m, 'attune_executions_completed_total', { action: 'core.noop', status: 'succeeded' }) >
        n(before, 'attune_executions_completed_total', { action: 'core.noop', status: 'succeeded' }),
      'the completion to be counted',
    );
    expect(n(f, 'attune_events_created_total', { trigger: 'mt.tick' })).toBe(
      n(before, 'attune_events_created_total', { trigger: 'mt.tick' }) + 1,
    );
    expect(n(f, 'attune_enforcements_created_total', { status: 'scheduled' })).toBe(
      n(before, 'attune_enforcements_created_total', { status: 'scheduled' }) + 1,
    );
    expect(n(f, 'attune_event_to_start_seconds_count')).toBe(
      n(before, 'attune_event_to_start_seconds_count') + 1,
    );
    const latency =
      n(f, 'attune_event_to_start_seconds_sum') - n(before, 'attune_event_to_start_seconds_sum');
    const expected = (exec!.startedAt!.getTime() - event!.createdAt.getTime()) / 1000;
    expect(latency).toBeCloseTo(expected, 6);
    expect(latency).toBeGreaterThanOrEqual(0);
    expect(latency).toBeLessThan(15);
  });

  it('a scrape stays cheap: one SQL statement, indexed, whatever the number of finished executions', async () => {
    // Many finished executions over many actions: a scrape must not read them.
    await db().execute(sql`
      insert into ${executions} (action_ref, runner, status, finished_at, completion_handled_at)
      select 'mt.bulk_' || (g % 50), 'noop', (array['succeeded','failed','canceled'])[1 + g % 3], now(), now()
        from generate_series(1, 20000) g`);
    await db().execute(sql`analyze ${executions}`);
    try {
      // The plan never scans the executions table.
      const plan = await db().execute(sql`explain ${clusterQuery()}`);
      const text = (plan as unknown as { rows: Record<string, string>[] }).rows
        .map((r) => Object.values(r)[0])
        .join('\n');
      expect(text).not.toMatch(/Seq Scan on executions/);
      expect(text).toMatch(/Index[^\n]* on executions/);

      // Count the statements a scrape sends to the database (the fewest of three scrapes: the
      // background services of the platform may query at the same moment).
      type Client = { query: (...a: unknown[]) => Promise<unknown> };
      const client = (db() as unknown as { $client: Client }).$client;
      const original = client.query.bind(client);
      const seen: string[] = [];
      const spy = vi.spyOn(client, 'query').mockImplementation((...args: unknown[]) => {
        const q = args[0];
        seen.push(typeof q === 'string' ? q : String((q as { text?: unknown }).text ?? ''));
        return original(...args);
      });
      const perScrape: string[][] = [];
      try {
        for (let i = 0; i < 3; i++) {
          seen.length = 0;
          await scrape();
          perScrape.push([...seen]);
        }
      } finally {
        spy.mockRestore();
      }
      const reads = perScrape.map((stmts) => stmts.filter((q) => /from\s+"executions"/i.test(q)));
      const fewest = reads.reduce((a, b) => (b.length < a.length ? b : a));
      expect(fewest).toHaveLength(1);
      expect(fewest[0]).toMatch(/group by/i);
      expect(Math.min(...perScrape.map((x) => x.length))).toBeLessThanOrEqual(2);

      // and the finished ones are not in the gauge
      const f = await scrape();
      expect(f.get('attune_executions')!.samples.some((x) => x.labels.action?.startsWith('mt.bulk_'))).toBe(
        false,
      );
    } finally {
      await db().execute(sql`delete from ${executions} where action_ref like 'mt.bulk_%'`);
    }
  });
});

describeBackend('GET /metrics with ATTUNE_METRICS_PUBLIC=true', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ ATTUNE_METRICS_PUBLIC: 'true' });
  });
  afterAll(async () => s?.stop());

  it('answers anonymous scrapers; the rest of the API still needs credentials', async () => {
    const r = await s.request<string>('GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(CONTENT_TYPE);
    const f = parsePrometheusText(r.body);
    expect(sampleValue(f, 'attune_cluster_metrics_up')).toBe(1);
    expect(sampleValue(f, 'attune_workers', { status: 'active' })).toBe(1);
    const route = s.platform.api.routeTable.find((x) => x.url === '/metrics' && x.method === 'GET');
    expect(route?.public).toBe(true);
    expect((await s.request<AnyBody>('GET', '/api/v1/executions')).status).toBe(401);
    const spec = await s.request<AnyBody>('GET', '/api-spec/openapi.json');
    expect(spec.body.paths['/metrics'].get.security).toEqual([]);
  });
});

/** A port nobody listens on right now. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

const distributed = BACKEND === 'postgres' && !amqpDown ? describe : describe.skip;

distributed('metrics of a distributed deployment (PostgreSQL + RabbitMQ)', () => {
  const namespace = `${runPrefix}-metrics`;
  let s: TestServer;
  let worker: Platform | undefined;
  let workerDir: string;
  let port: number;

  beforeAll(async () => {
    s = await startTestServer({ ATTUNE_AMQP_URL: amqpTestUrl(), ATTUNE_AMQP_NAMESPACE: namespace });
    workerDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-metrics-worker-'));
    port = await freePort();
    const config = loadConfig(
      {
        ATTUNE_DATA_DIR: workerDir,
        ATTUNE_HOST: '127.0.0.1',
        ATTUNE_DATABASE_URL: s.platform.config.databaseUrl!,
        ATTUNE_AMQP_URL: amqpTestUrl(),
        ATTUNE_AMQP_NAMESPACE: namespace,
        ATTUNE_METRICS_PORT: String(port),
        ATTUNE_WORKER_CAPACITY: '3',
      },
      workerDir,
    );
    worker = await startPlatform(config, { roles: ['worker'], logger: pino({ level: 'silent' }) });
  });
  afterAll(async () => {
    await worker?.stop();
    await s?.stop();
    if (workerDir) fs.rmSync(workerDir, { recursive: true, force: true });
    const queues = Object.values(QUEUES).flatMap((q) =>
      ['', '.retry', '.dead'].map((x) => `${namespace}.${q}${x}`),
    );
    await deleteAmqpObjects({ queues, exchanges: [namespace, `${namespace}.dead`] });
  });

  it("a worker process serves its own metrics on ATTUNE_METRICS_PORT; the API sees every worker and RabbitMQ's queues", async () => {
    const id = worker!.executionRuntime.worker!.id;
    const r = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(CONTENT_TYPE);
    const own = parsePrometheusText(await r.text());
    expect(sampleValue(own, 'attune_worker_capacity', { worker: id })).toBe(3);
    expect(sampleValue(own, 'attune_worker_running', { worker: id })).toBe(0);
    expect(own.has('attune_executions')).toBe(false);

    const api = await s.request<string>('GET', '/metrics', { token: s.adminToken });
    expect(api.status).toBe(200);
    const f = parsePrometheusText(api.body);
    expect(sampleValue(f, 'attune_workers', { status: 'active' })).toBe(2);
    expect(sampleValue(f, 'attune_workers_capacity', { status: 'active' })).toBe(
      s.platform.config.workerCapacity + 3,
    );
    // depths come from the broker (the namespace is the bus's business, not the label's)
    for (const q of REPORTED_QUEUES)
      expect(sampleValue(f, 'attune_queue_depth', { queue: q }), q).toBeGreaterThanOrEqual(0);

    // the listener goes away with its process
    await worker!.stop();
    worker = undefined;
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
