/**
 * The live side of executions over real HTTP: stored output (`/output`), the server-sent-event
 * stream of one execution (backfill, live events from the bus, resume without duplicates, end,
 * clean-up) and the global status stream with its filters. Rows are written to the store and
 * notifications published on the platform's bus, as workers do.
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.ts';
import type { ExecutionStatus } from '../../src/domain/status.ts';
import { hashPassword } from '../../src/services/api/auth.ts';
import { TOPICS } from '../../src/services/runtime/messages.ts';
import { notifyStatuses } from '../../src/services/scheduler/runtime.ts';
import { transitionExecution } from '../../src/store/repositories/executions.ts';
import {
  auditLog,
  executionOutput,
  executions,
  identities,
  identityRoles,
  roles,
} from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

interface SseEvent {
  event: string;
  id: string | undefined;
  data: AnyBody;
}

/** A real SSE client: fetch + the body stream, parsed as the EventSource spec says. */
class SseClient {
  readonly events: SseEvent[] = [];
  readonly comments: string[] = [];
  status = 0;
  contentType = '';
  ended = false;
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];
  private done: Promise<void> = Promise.resolve();

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const c = new SseClient();
    const res = await fetch(url, { headers, signal: c.abort.signal });
    c.status = res.status;
    c.contentType = res.headers.get('content-type') ?? '';
    if (res.status !== 200) {
      c.ended = true;
      c.events.push({ event: 'http-error', id: undefined, data: await res.json() });
      return c;
    }
    c.done = c.read(res.body!);
    return c;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const dec = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of body) {
        buf += dec.decode(chunk, { stream: true });
        let i = buf.indexOf('\n\n');
        while (i >= 0) {
          this.frame(buf.slice(0, i));
          buf = buf.slice(i + 2);
          i = buf.indexOf('\n\n');
        }
        this.wake();
      }
    } catch {
      /* aborted */
    }
    this.ended = true;
    this.wake();
  }

  private frame(text: string): void {
    let event = 'message';
    let id: string | undefined;
    const data: string[] = [];
    for (const line of text.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim());
      else if (line.startsWith('event: ')) event = line.slice(7);
      else if (line.startsWith('id: ')) id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length) this.events.push({ event, id, data: JSON.parse(data.join('\n')) });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits until `pred` holds (or the stream ends, or the time is up). */
  async until(pred: () => boolean, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pred()) {
      if (this.ended) throw new Error(`stream ended; events: ${JSON.stringify(this.events).slice(0, 600)}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; events: ${JSON.stringify(this.events).slice(0, 600)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits until the server ends the stream. */
  async finished(ms = 5000): Promise<void> {
    await Promise.race([
      this.done,
      new Promise((_, reject) => setTimeout(() => reject(new Error('the stream did not end')), ms)),
    ]);
  }

  of(event: string): SseEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  close(): void {
    this.abort.abort();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeBackend('execution output and live streams', () => {
  let s: TestServer;
  let admin: string;
  let stopped = false;
  const clients: SseClient[] = [];

  const db = () => s.platform.store.db;
  const bus = (): Bus => s.platform.bus;
  const hub = () => s.platform.api.notifier;
  const get = (url: string, token = admin) => s.request<AnyBody>('GET', url, { token });
  const open = async (
    url: string,
    headers: Record<string, string> = { authorization: `Bearer ${admin}` },
  ) => {
    const c = await SseClient.open(s.url + url, headers);
    clients.push(c);
    return c;
  };

  const newExecution = async (
    status: ExecutionStatus = 'running',
    actionRef = 'core.local',
    parentId?: number,
  ) => {
    const [r] = await db()
      .insert(executions)
      .values({
        actionRef,
        runner: 'local-shell-cmd',
        status,
        parameters: { cmd: 'echo' },
        parentId: parentId ?? null,
        // a far lease and a far run_after: no sweeper touches these meanwhile
        leaseExpiresAt: ['running', 'scheduled', 'canceling'].includes(status)
          ? new Date(Date.now() + 3_600_000)
          : null,
        runAfter: status === 'delayed' ? new Date(Date.now() + 3_600_000) : null,
        workerId: status === 'running' ? 'worker-far-away' : null,
        startedAt: status === 'running' ? new Date() : null,
      })
      .returning();
    return r!;
  };
  /** Stores output rows (as the worker's output writer does); returns their seqs. */
  const store = async (id: number, chunks: ['stdout' | 'stderr', string][], truncated = false) => {
    const rows = await db()
      .insert(executionOutput)
      .values(chunks.map(([stream, data]) => ({ executionId: id, stream, data, truncated })))
      .returning({ id: executionOutput.id });
    return rows.map((r) => r.id);
  };
  const publishOutput = async (id: number, seq: number, stream: 'stdout' | 'stderr', data: string) =>
    bus().publish(TOPICS.notifyOutput, { execution_id: id, seq, stream, data });
  /** Stores and broadcasts, like the worker. */
  const emit = async (id: number, stream: 'stdout' | 'stderr', data: string) => {
    const [seq] = await store(id, [[stream, data]]);
    await publishOutput(id, seq!, stream, data);
    return seq!;
  };
  const move = async (id: number, from: ExecutionStatus, to: ExecutionStatus, broadcast = true) => {
    const row = await transitionExecution(db(), id, [from], to);
    expect(row).not.toBeNull();
    if (broadcast) notifyStatuses(bus(), [row!]);
    return row!;
  };
  const outputs = (c: SseClient) =>
    c
      .of('output')
      .map((e) => e.data.data)
      .join('');
  const seqs = (c: SseClient) => c.of('output').map((e) => e.data.seq as number);

  async function userWithRole(
    login: string,
    role: string,
    grants?: { resource: string; actions: string[] }[],
  ) {
    if (grants) await db().insert(roles).values({ name: role, grants });
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
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    if (!stopped) await s?.stop();
  });

  describe('GET /api/v1/executions/{id}/output', () => {
    let id: number;
    let all: number[];
    beforeAll(async () => {
      const e = await newExecution('succeeded');
      id = e.id;
      const other = await newExecution('succeeded');
      all = [];
      for (let i = 0; i < 5; i++) {
        all.push(...(await store(id, [['stdout', `out ${i}\n`]])));
        all.push(...(await store(id, [['stderr', `err ${i}\n`]])));
        await store(other.id, [['stdout', 'not mine\n']]);
      }
      all.push(...(await store(id, [['stdout', '']], true)));
    });

    it('pages through the output by seq', async () => {
      const p1 = await get(`/api/v1/executions/${id}/output?limit=4`);
      expect(p1.status).toBe(200);
      expect(p1.body.data.map((c: AnyBody) => c.seq)).toEqual(all.slice(0, 4));
      expect(p1.body.data[0]).toMatchObject({ stream: 'stdout', data: 'out 0\n', truncated: false });
      expect(p1.body.data[0].created_at).toEqual(expect.any(String));
      expect(p1.body).toMatchObject({ next_after: all[3], has_more: true });
      const p2 = await get(`/api/v1/executions/${id}/output?limit=4&after=${p1.body.next_after}`);
      expect(p2.body.data.map((c: AnyBody) => c.seq)).toEqual(all.slice(4, 8));
      const p3 = await get(`/api/v1/executions/${id}/output?limit=4&after=${p2.body.next_after}`);
      expect(p3.body.data.map((c: AnyBody) => c.seq)).toEqual(all.slice(8));
      expect(p3.body.has_more).toBe(false);
      expect(p3.body.data.at(-1)).toMatchObject({ data: '', truncated: true });
      const p4 = await get(`/api/v1/executions/${id}/output?after=${p3.body.next_after}`);
      expect(p4.body).toEqual({ data: [], next_after: p3.body.next_after, has_more: false });
    });

    it('keeps one stream and answers plain text', async () => {
      const err = await get(`/api/v1/executions/${id}/output?stream=stderr`);
      expect(err.body.data.map((c: AnyBody) => c.data).join('')).toBe('err 0\nerr 1\nerr 2\nerr 3\nerr 4\n');
      const text = await get(`/api/v1/executions/${id}/output?format=text&stream=stdout`);
      expect(text.status).toBe(200);
      expect(text.headers.get('content-type')).toContain('text/plain');
      expect(text.body).toBe('out 0\nout 1\nout 2\nout 3\nout 4\n');
      const both = await get(`/api/v1/executions/${id}/output?format=text&after=${all[1]}&limit=3`);
      expect(both.body).toBe('out 1\nerr 1\nout 2\n');
    });

    it('refuses bad queries and unknown executions', async () => {
      for (const q of [
        'stream=stdin',
        'after=-1',
        'after=x',
        'limit=0',
        'limit=1001',
        'format=xml',
        'page=2',
      ]) {
        const r = await get(`/api/v1/executions/${id}/output?${q}`);
        expect(r.status, q).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
      const r = await get('/api/v1/executions/987654321/output');
      expect(r.status).toBe(404);
      expect((await get('/api/v1/executions/987654321/output?format=text')).status).toBe(404);
    });
  });

  describe('GET /api/v1/executions/{id}/stream', () => {
    it('sends the status, the stored output, live events and the end, then closes', async () => {
      const e = await newExecution('running');
      const stored = await store(e.id, [
        ['stdout', 'line 1\n'],
        ['stderr', 'warn 1\n'],
      ]);
      const c = await open(`/api/v1/executions/${e.id}/stream`);
      expect(c.status).toBe(200);
      expect(c.contentType).toContain('text/event-stream');
      await c.until(() => c.of('output').length === 2);
      expect(c.events[0]!.event).toBe('status');
      expect(c.events[0]!.data).toMatchObject({ id: e.id, status: 'running', action_ref: 'core.local' });
      expect(c.of('output').map((x) => x.id)).toEqual(stored.map(String));
      expect(c.of('output')[1]!.data).toEqual({
        seq: stored[1],
        stream: 'stderr',
        data: 'warn 1\n',
        truncated: false,
      });

      const s3 = await emit(e.id, 'stdout', 'line 2\n');
      await c.until(() => seqs(c).includes(s3));
      // a repeated broadcast of something already sent is not sent again
      await publishOutput(e.id, stored[0]!, 'stdout', 'line 1\n');
      await publishOutput(e.id, s3, 'stdout', 'line 2\n');
      // output of another execution never shows up here
      const other = await newExecution('running');
      await emit(other.id, 'stdout', 'foreign\n');
      const s4 = await emit(e.id, 'stdout', 'line 3\n');
      await c.until(() => seqs(c).includes(s4));
      expect(outputs(c)).toBe('line 1\nwarn 1\nline 2\nline 3\n');

      await move(e.id, 'running', 'succeeded');
      await c.until(() => c.of('end').length === 1);
      await c.finished();
      expect(c.of('end')[0]!.data).toEqual({ execution_id: e.id, status: 'succeeded' });
      const statuses = c.of('status').map((x) => x.data.status);
      expect(statuses).toEqual(['running', 'succeeded']);
      expect(c.events.at(-1)!.event).toBe('end');
      expect(c.of('status').at(-1)!.data.finished_at).toEqual(expect.any(String));
    });

    it('sends every status change once, read from the database', async () => {
      const e = await newExecution('running');
      const c = await open(`/api/v1/executions/${e.id}/stream`);
      await c.until(() => c.of('status').length === 1);
      await move(e.id, 'running', 'canceling');
      await c.until(() => c.of('status').length === 2);
      // the same notification again (at-least-once delivery elsewhere) sends nothing new
      notifyStatuses(bus(), [(await db().select().from(executions).where(eq(executions.id, e.id)))[0]!]);
      await sleep(150);
      expect(c.of('status')).toHaveLength(2);
      await move(e.id, 'canceling', 'canceled');
      await c.finished();
      expect(c.of('status').map((x) => x.data.status)).toEqual(['running', 'canceling', 'canceled']);
      expect(c.of('end')[0]!.data.status).toBe('canceled');
    });

    it('for a finished execution, sends everything and ends at once', async () => {
      const e = await newExecution('running');
      await store(e.id, [
        ['stdout', 'a'],
        ['stdout', 'b'],
      ]);
      await store(e.id, [['stdout', '']], true);
      await move(e.id, 'running', 'failed', false);
      const c = await open(`/api/v1/executions/${e.id}/stream`);
      await c.finished();
      expect(c.events.map((x) => x.event)).toEqual(['status', 'output', 'output', 'output', 'end']);
      expect(c.of('output')[2]!.data).toMatchObject({ data: '', truncated: true });
      expect(c.of('end')[0]!.data).toEqual({ execution_id: e.id, status: 'failed' });
    });

    it('resumes after Last-Event-ID or ?after= without duplicates', async () => {
      const e = await newExecution('running');
      const seq = await store(e.id, [
        ['stdout', '1'],
        ['stdout', '2'],
        ['stdout', '3'],
      ]);
      await move(e.id, 'running', 'succeeded', false);
      const h = await open(`/api/v1/executions/${e.id}/stream`, {
        authorization: `Bearer ${admin}`,
        'last-event-id': String(seq[0]),
      });
      await h.finished();
      expect(outputs(h)).toBe('23');
      const q = await open(`/api/v1/executions/${e.id}/stream?after=${seq[1]}`);
      await q.finished();
      expect(outputs(q)).toBe('3');
      // the header wins over the query (a browser reconnects to the same URL)
      const both = await open(`/api/v1/executions/${e.id}/stream?after=${seq[0]}`, {
        authorization: `Bearer ${admin}`,
        'last-event-id': String(seq[2]),
      });
      await both.finished();
      expect(outputs(both)).toBe('');
      expect(both.of('end')).toHaveLength(1);
    });

    it('never duplicates or reorders output racing between the database and the bus', async () => {
      const e = await newExecution('running');
      const first = await store(
        e.id,
        Array.from({ length: 1200 }, (_, i) => ['stdout', `${i},`] as ['stdout', string]),
      );
      const c = await open(`/api/v1/executions/${e.id}/stream`);
      // while the stored output is being sent: repeat broadcasts of stored rows, and new output
      const live: number[] = [];
      for (let i = 0; i < 60; i++) {
        const old = first[i * 20]!;
        await publishOutput(e.id, old, 'stdout', `${i * 20},`);
        live.push(await emit(e.id, 'stderr', `L${i},`));
      }
      await c.until(() => seqs(c).includes(live.at(-1)!), 15_000);
      const got = seqs(c);
      expect(got).toEqual([...first, ...live]);
      expect(new Set(got).size).toBe(got.length);
      await move(e.id, 'running', 'succeeded');
      await c.finished();
    });

    it('sends megabytes of stored output at the pace of the client, without dropping it', async () => {
      const before = hub().settings.maxBufferedBytes;
      hub().settings.maxBufferedBytes = 256 * 1024;
      try {
        const e = await newExecution('running');
        const chunk = 'x'.repeat(64 * 1024 - 1);
        const seq: number[] = [];
        for (let i = 0; i < 8; i++)
          seq.push(
            ...(await store(
              e.id,
              Array.from({ length: 10 }, () => ['stdout', `${chunk}\n`] as ['stdout', string]),
            )),
          );
        await move(e.id, 'running', 'succeeded', false);
        const c = await open(`/api/v1/executions/${e.id}/stream`);
        await c.finished(20_000);
        expect(seqs(c)).toEqual(seq);
        expect(outputs(c).length).toBe(80 * 64 * 1024);
        expect(c.of('end')).toHaveLength(1);
      } finally {
        hub().settings.maxBufferedBytes = before;
      }
    });

    it('catches up from the database when broadcasts are lost', async () => {
      const before = { ...hub().settings };
      hub().settings.catchUpMs = 150;
      try {
        const e = await newExecution('running');
        const c = await open(`/api/v1/executions/${e.id}/stream`);
        await c.until(() => c.of('status').length === 1);
        // output stored and the execution finished, with no broadcast at all
        await store(e.id, [['stdout', 'quiet\n']]);
        await move(e.id, 'running', 'succeeded', false);
        await c.finished(3000);
        expect(outputs(c)).toBe('quiet\n');
        expect(c.of('end')[0]!.data.status).toBe('succeeded');
      } finally {
        Object.assign(hub().settings, before);
      }
    });

    it('sends heartbeat comments', async () => {
      const before = hub().settings.heartbeatMs;
      hub().settings.heartbeatMs = 100;
      try {
        const e = await newExecution('running');
        const c = await open(`/api/v1/executions/${e.id}/stream`);
        await c.until(() => c.comments.filter((x) => x === 'ping').length >= 2, 3000);
        c.close();
      } finally {
        hub().settings.heartbeatMs = before;
      }
    });

    it('lets go of the subscription and timers when clients leave', async () => {
      const before = { ...hub().settings };
      hub().settings.idleCloseMs = 100;
      try {
        await waitUntil(() => hub().size === 0);
        const e = await newExecution('running');
        const a = await open(`/api/v1/executions/${e.id}/stream`);
        const b = await open(`/api/v1/executions/${e.id}/stream`);
        const g = await open('/api/v1/executions/stream');
        await a.until(() => a.of('status').length === 1);
        await b.until(() => b.of('status').length === 1);
        await g.until(() => g.comments.includes('connected'));
        expect(hub().size).toBe(3);
        expect(hub().subscribed).toBe(true);
        a.close();
        b.close();
        g.close();
        await waitUntil(() => hub().size === 0);
        await waitUntil(() => !hub().subscribed);
        // and it comes back for the next client
        const again = await open(`/api/v1/executions/${e.id}/stream`);
        await again.until(() => again.of('status').length === 1);
        const seq = await emit(e.id, 'stdout', 'back\n');
        await again.until(() => seqs(again).includes(seq));
        again.close();
        await waitUntil(() => hub().size === 0);
      } finally {
        Object.assign(hub().settings, before);
      }
    });

    it('answers errors as JSON before any stream starts', async () => {
      const missing = await open('/api/v1/executions/987654321/stream');
      expect(missing.status).toBe(404);
      expect(missing.events[0]!.data.error.code).toBe('NOT_FOUND');
      const e = await newExecution('running');
      for (const id of ['abc', '-1', '1.5']) {
        const r = await get(`/api/v1/executions/${e.id}/stream`.replace(String(e.id), id));
        expect(r.status).toBe(400);
      }
      const badHeader = await open(`/api/v1/executions/${e.id}/stream`, {
        authorization: `Bearer ${admin}`,
        'last-event-id': 'yesterday',
      });
      expect(badHeader.status).toBe(400);
      expect((await get(`/api/v1/executions/${e.id}/stream?after=-3`)).status).toBe(400);
      expect((await get(`/api/v1/executions/${e.id}/stream?other=1`)).status).toBe(400);
    });
  });

  describe('authentication of streams', () => {
    it('accepts the token as ?access_token= (JWT or API key) on stream routes only', async () => {
      const e = await newExecution('succeeded');
      const anon = await open(`/api/v1/executions/${e.id}/stream`, {});
      expect(anon.status).toBe(401);
      const viaQuery = await open(
        `/api/v1/executions/${e.id}/stream?access_token=${encodeURIComponent(admin)}`,
        {},
      );
      expect(viaQuery.status).toBe(200);
      await viaQuery.finished();
      expect(viaQuery.of('end')).toHaveLength(1);
      const bogus = await open(`/api/v1/executions/${e.id}/stream?access_token=not-a-token`, {});
      expect(bogus.status).toBe(401);
      const g = await open(`/api/v1/executions/stream?access_token=${encodeURIComponent(admin)}`, {});
      expect(g.status).toBe(200);
      g.close();

      const key = await s.request<AnyBody>('POST', '/api/v1/api-keys', {
        token: admin,
        body: { name: 'sse' },
      });
      expect(key.status, JSON.stringify(key.body)).toBe(201);
      const viaKey = await open(`/api/v1/executions/${e.id}/stream?access_token=${key.body.data.key}`, {});
      expect(viaKey.status).toBe(200);
      await viaKey.finished();

      // other routes ignore it
      for (const url of [
        `/api/v1/executions/${e.id}`,
        '/api/v1/executions',
        `/api/v1/executions/${e.id}/output`,
      ]) {
        const r = await s.request<AnyBody>('GET', `${url}?access_token=${encodeURIComponent(admin)}`);
        expect(r.status, url).toBe(401);
      }
    });

    it('applies permissions, and keeps the token out of the audit trail', async () => {
      const viewer = await userWithRole('sse-viewer', 'viewer');
      const e = await newExecution('succeeded');
      const ok = await open(`/api/v1/executions/${e.id}/stream?access_token=${viewer}`, {});
      expect(ok.status).toBe(200);
      await ok.finished();
      const outsider = await userWithRole('sse-outsider', 'sse-none', [
        { resource: 'events', actions: ['read'] },
      ]);
      const denied = await open(`/api/v1/executions/${e.id}/stream?access_token=${outsider}`, {});
      expect(denied.status).toBe(403);
      const deniedGlobal = await open(`/api/v1/executions/stream?access_token=${outsider}`, {});
      expect(deniedGlobal.status).toBe(403);
      // Denials are audited after the response has gone (the write does not hold the request up).
      let entries = await db().select().from(auditLog).where(eq(auditLog.actor, 'sse-outsider'));
      for (let i = 0; i < 100 && entries.length < 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
        entries = await db().select().from(auditLog).where(eq(auditLog.actor, 'sse-outsider'));
      }
      expect(entries.length).toBeGreaterThanOrEqual(2);
      expect(JSON.stringify(entries)).not.toContain(outsider);
      expect(JSON.stringify(entries)).toContain('[redacted]');
    });
  });

  describe('GET /api/v1/executions/stream', () => {
    it('sends the status changes that match the filters', async () => {
      const parent = await newExecution('running', 'core.noop');
      const all = await open('/api/v1/executions/stream');
      const done = await open('/api/v1/executions/stream?status=succeeded,failed');
      const byAction = await open('/api/v1/executions/stream?action=core.echo');
      const byParent = await open(`/api/v1/executions/stream?parent=${parent.id}`);
      for (const c of [all, done, byAction, byParent]) await c.until(() => c.comments.includes('connected'));

      const a = await newExecution('running', 'core.echo');
      const b = await newExecution('running', 'core.local', parent.id);
      await move(a.id, 'running', 'succeeded');
      await move(b.id, 'running', 'failed');
      const c2 = await newExecution('requested', 'core.local');
      await move(c2.id, 'requested', 'canceled');

      await all.until(() => all.of('status').length === 3);
      await done.until(() => done.of('status').length === 2);
      await byAction.until(() => byAction.of('status').length === 1);
      await byParent.until(() => byParent.of('status').length === 1);
      await sleep(100);
      const pick = (c: SseClient) => c.of('status').map((x) => [x.data.execution_id, x.data.status]);
      expect(pick(all)).toEqual([
        [a.id, 'succeeded'],
        [b.id, 'failed'],
        [c2.id, 'canceled'],
      ]);
      expect(pick(done)).toEqual([
        [a.id, 'succeeded'],
        [b.id, 'failed'],
      ]);
      expect(pick(byAction)).toEqual([[a.id, 'succeeded']]);
      expect(pick(byParent)).toEqual([[b.id, 'failed']]);
      expect(all.of('status')[1]!.data).toMatchObject({ action_ref: 'core.local', parent_id: parent.id });
      expect(all.of('status')[1]!.data.at).toEqual(expect.any(String));
      for (const c of [all, done, byAction, byParent]) c.close();
    });

    it('refuses unknown filters and statuses', async () => {
      for (const q of ['status=bogus', 'status=', 'parent=0', 'parent=x', 'action=%20', 'page=1']) {
        const r = await get(`/api/v1/executions/stream?${q}`);
        expect(r.status, q).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
    });

    it('falls back to polling the database when no bus runs', async () => {
      const saved = s.platform.ctx.bus;
      const before = hub().settings.pollMs;
      hub().settings.pollMs = 100;
      s.platform.ctx.bus = undefined;
      try {
        const c = await open('/api/v1/executions/stream?action=core.sleep');
        await c.until(() => c.comments.includes('connected'));
        const e = await newExecution('running', 'core.sleep');
        await transitionExecution(db(), e.id, ['running'], 'timeout');
        await c.until(() =>
          c.of('status').some((x) => x.data.execution_id === e.id && x.data.status === 'timeout'),
        );
        await sleep(300);
        expect(c.of('status').filter((x) => x.data.status === 'timeout')).toHaveLength(1);
        c.close();
      } finally {
        s.platform.ctx.bus = saved;
        hub().settings.pollMs = before;
      }
    });
  });

  describe('end to end, with the scheduler and a worker of the platform', () => {
    const runAndFollow = async (parameters: Record<string, unknown>) => {
      const r = await s.request<AnyBody>('POST', '/api/v1/executions', {
        token: admin,
        body: { action: 'core.local', parameters },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return { id: r.body.data.id as number, c: await open(`/api/v1/executions/${r.body.data.id}/stream`) };
    };

    it('runs core.local `echo hello`: the stream shows its output and ends succeeded', async () => {
      const { id, c } = await runAndFollow({ cmd: 'echo hello; echo oops >&2' });
      await c.finished(20_000);
      expect(
        c
          .of('output')
          .filter((x) => x.data.stream === 'stdout')
          .map((x) => x.data.data)
          .join(''),
      ).toBe('hello\n');
      expect(
        c
          .of('output')
          .filter((x) => x.data.stream === 'stderr')
          .map((x) => x.data.data)
          .join(''),
      ).toBe('oops\n');
      expect(c.of('end')[0]!.data).toEqual({ execution_id: id, status: 'succeeded' });
      const last = c.of('status').at(-1)!.data;
      expect(last).toMatchObject({ id, status: 'succeeded', result: { exit_code: 0 } });
      // every status is one the machine allows, in order, and no output event came twice
      const statuses = c.of('status').map((x) => x.data.status);
      expect(statuses.at(-1)).toBe('succeeded');
      expect(new Set(seqs(c)).size).toBe(seqs(c).length);
      const text = await get(`/api/v1/executions/${id}/output?format=text&stream=stdout`);
      expect(text.body).toBe('hello\n');
    });

    it('cancels a running command: the stream ends canceled', async () => {
      const { id, c } = await runAndFollow({ cmd: 'echo started; sleep 30' });
      await c.until(() => outputs(c).includes('started'), 20_000);
      const r = await s.request<AnyBody>('POST', `/api/v1/executions/${id}/cancel`, { token: admin });
      expect([200, 202]).toContain(r.status);
      await c.finished(20_000);
      expect(c.of('end')[0]!.data).toEqual({ execution_id: id, status: 'canceled' });
      const again = await s.request<AnyBody>('POST', `/api/v1/executions/${id}/cancel`, { token: admin });
      expect(again.status).toBe(409);
      expect(again.body.error.details.status).toBe('canceled');
    });
  });

  it('ends open streams when the server stops', async () => {
    const e = await newExecution('running');
    const c = await open(`/api/v1/executions/${e.id}/stream`);
    const g = await open('/api/v1/executions/stream');
    await c.until(() => c.of('status').length === 1);
    await g.until(() => g.comments.includes('connected'));
    stopped = true;
    const stopping = s.stop();
    await c.finished(2000);
    await g.finished(2000);
    expect(hub().size).toBe(0);
    await stopping;
  });
});

async function waitUntil(pred: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(20);
  }
}
