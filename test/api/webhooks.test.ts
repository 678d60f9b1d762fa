/**
 * Webhooks over real HTTP, on both backends: a call becomes a core.webhook event (body, headers,
 * query, method, client address, trigger parameters {name}); HMAC signatures (sha256/sha512, bare or
 * prefixed; missing and wrong ones refused); size and rate limits; unknown and disabled webhooks;
 * every call logged; and the management API, which never returns a secret.
 */
import { createHmac } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, outbox, packs, rules, triggers, webhookCalls, webhooks } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const SECRET = 'It is a truth universally acknowledged';

describeBackend('webhooks', () => {
  let s: TestServer;
  let packId: number;
  let ruleSeq = 0;

  const call = (name: string, opts: Parameters<TestServer['request']>[2] = {}, query = '') =>
    s.request<AnyBody>('POST', `/api/v1/webhooks/${name}${query}`, opts);
  const admin = <T = AnyBody>(method: string, path: string, body?: unknown) =>
    s.request<T>(method, path, { token: s.adminToken, ...(body !== undefined && { body }) });
  const eventRow = async (id: number) => {
    const [e] = await s.platform.store.db.select().from(events).where(eq(events.id, id));
    return e!;
  };
  const callsOf = async (name: string) =>
    (await admin('GET', `/api/v1/webhooks/${name}/calls?page_size=1000`)).body.data as AnyBody[];

  /** An enabled rule on core.webhook for `name`: makes the webhook exist implicitly. */
  async function ruleFor(name: string, enabled = true): Promise<string> {
    const ref = `hooks.on_${name.replace(/-/g, '_')}_${++ruleSeq}`;
    await s.platform.store.db.insert(rules).values({
      ref,
      packId,
      packRef: 'hooks',
      name: ref.slice(6),
      label: ref,
      triggerRef: 'core.webhook',
      triggerParams: { name },
      actionRef: 'core.noop',
      enabled,
    });
    return ref;
  }

  beforeAll(async () => {
    s = await startTestServer();
    const [p] = await s.platform.store.db
      .insert(packs)
      .values({ ref: 'hooks', label: 'Hooks', version: '1.0.0' })
      .returning();
    packId = p!.id;
  });
  afterAll(async () => s?.stop());

  describe('receiving', () => {
    it('turns a JSON call into a core.webhook event with body, headers, query, method and address', async () => {
      await ruleFor('deploy');
      const r = await call(
        'deploy',
        {
          body: { service: 'api', version: 42, tags: ['a', 'b'] },
          headers: {
            'X-Request-Source': 'ci',
            Authorization: 'Bearer very-secret',
            Cookie: 'session=abc',
            'X-API-Key': 'k-123',
            'X-Hub-Signature-256': 'sha256=00',
            'X-Gitlab-Token': 'gl-secret',
          },
        },
        '?env=prod&tag=a&tag=b&token=hidden',
      );
      expect(r.status).toBe(202);
      const id = r.body.data.event_id;
      expect(Number.isInteger(id)).toBe(true);
      const e = await eventRow(id);
      expect(e.triggerRef).toBe('core.webhook');
      expect(e.triggerParams).toEqual({ name: 'deploy' });
      expect(e.source).toBe('webhook:deploy');
      const p = e.payload as AnyBody;
      expect(p.body).toEqual({ service: 'api', version: 42, tags: ['a', 'b'] });
      expect(p.method).toBe('POST');
      expect(p.remote_ip).toBe('127.0.0.1');
      expect(p.query).toEqual({ env: 'prod', tag: ['a', 'b'] });
      expect(p.headers['x-request-source']).toBe('ci');
      expect(p.headers['content-type']).toBe('application/json');
      for (const h of ['authorization', 'cookie', 'x-api-key', 'x-hub-signature-256', 'x-gitlab-token'])
        expect(p.headers).not.toHaveProperty(h);
      expect(JSON.stringify(p)).not.toMatch(/very-secret|session=abc|k-123|gl-secret|hidden/);
      // its event.created message was written with it
      const msgs = await s.platform.store.db.select().from(outbox).where(eq(outbox.topic, 'event.created'));
      expect(msgs.some((m) => (m.payload as AnyBody).event_id === id)).toBe(true);
      const ev = await admin('GET', `/api/v1/events/${id}`);
      expect(ev.status).toBe(200);
      expect(ev.body.data.trigger_ref).toBe('core.webhook');
    });

    it('keeps text as text, makes a form an object, base64-encodes binary, and accepts an empty body', async () => {
      await ruleFor('formats');
      const text = await call('formats', { raw: 'plain words', headers: { 'content-type': 'text/plain' } });
      expect(text.status).toBe(202);
      expect(((await eventRow(text.body.data.event_id)).payload as AnyBody).body).toBe('plain words');

      const form = await call('formats', {
        raw: 'a=1&b=two&a=3',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
      });
      expect(form.status).toBe(202);
      expect(((await eventRow(form.body.data.event_id)).payload as AnyBody).body).toEqual({
        a: ['1', '3'],
        b: 'two',
      });

      const bytes = Buffer.from([0xff, 0x00, 0xfe, 0x01]);
      const bin = await call('formats', {
        raw: bytes,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(bin.status).toBe(202);
      const bp = (await eventRow(bin.body.data.event_id)).payload as AnyBody;
      expect(bp.body_encoding).toBe('base64');
      expect(Buffer.from(bp.body, 'base64')).toEqual(bytes);

      const none = await call('formats');
      expect(none.status).toBe(202);
      expect(((await eventRow(none.body.data.event_id)).payload as AnyBody).body).toBeNull();

      const xml = await call('formats', {
        raw: '<a>1</a>',
        headers: { 'content-type': 'application/xml; charset=utf-8' },
      });
      expect(xml.status).toBe(202);
      expect(((await eventRow(xml.body.data.event_id)).payload as AnyBody).body).toBe('<a>1</a>');
    });

    it('refuses invalid JSON and NUL characters with 400, and logs it', async () => {
      await ruleFor('strict');
      const bad = await call('strict', { raw: '{"a":', headers: { 'content-type': 'application/json' } });
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('BAD_REQUEST');
      expect(bad.body.error.message).toMatch(/not valid JSON/);
      const nul = await call('strict', {
        raw: '{"a":"x\\u0000y"}',
        headers: { 'content-type': 'application/json' },
      });
      expect(nul.status).toBe(400);
      expect(nul.body.error.message).toMatch(/NUL/);
      const log = await callsOf('strict');
      expect(log.map((c) => c.status_code)).toEqual([400, 400]);
      expect(log[1].error).toMatch(/not valid JSON/);
    });

    it('answers 404 for an unknown webhook, a disabled one (even when rules use it) and a rule that is disabled', async () => {
      const unknown = await call('nobody-home', { body: {} });
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.code).toBe('NOT_FOUND');

      await ruleFor('switched-off');
      expect((await admin('POST', '/api/v1/webhooks', { name: 'switched-off', enabled: false })).status).toBe(
        201,
      );
      const off = await call('switched-off', { body: {} });
      expect(off.status).toBe(404);
      expect(off.body.error.message).toBe("webhook 'switched-off' not found");

      await ruleFor('sleeping', false);
      expect((await call('sleeping', { body: {} })).status).toBe(404);

      const log = await callsOf('nobody-home');
      expect(log).toHaveLength(1);
      expect(log[0]).toMatchObject({ status_code: 404, event_id: null, remote_ip: '127.0.0.1' });
      expect((await callsOf('switched-off'))[0]).toMatchObject({
        status_code: 404,
        error: 'the webhook is disabled',
      });
    });

    it('checks HMAC signatures: sha256 prefixed or bare, sha512; missing and wrong ones get 401', async () => {
      const created = await admin('POST', '/api/v1/webhooks', {
        name: 'signed',
        hmac: { secret: SECRET, algorithm: 'sha256', header: 'X-Hub-Signature-256' },
      });
      expect(created.status).toBe(201);
      const body = JSON.stringify({ ref: 'refs/heads/main' });
      const sig = createHmac('sha256', SECRET).update(body).digest('hex');
      const send = (headers: Record<string, string>) =>
        call('signed', { raw: body, headers: { 'content-type': 'application/json', ...headers } });

      const good = await send({ 'x-hub-signature-256': `sha256=${sig}` });
      expect(good.status).toBe(202);
      const e = await eventRow(good.body.data.event_id);
      expect((e.payload as AnyBody).headers).not.toHaveProperty('x-hub-signature-256');
      expect((await send({ 'x-hub-signature-256': sig.toUpperCase() })).status).toBe(202);

      const wrong = await send({
        'x-hub-signature-256': `sha256=${createHmac('sha256', 'other').update(body).digest('hex')}`,
      });
      expect(wrong.status).toBe(401);
      expect(wrong.body.error.code).toBe('UNAUTHORIZED');
      expect(wrong.body.error.message).toMatch(/does not match/);
      expect((await send({ 'x-hub-signature-256': `sha512=${sig}` })).status).toBe(401);
      expect((await send({ 'x-hub-signature-256': 'sha256=zz' })).status).toBe(401);
      // a signature of another body
      const other = createHmac('sha256', SECRET).update(`${body} `).digest('hex');
      expect((await send({ 'x-hub-signature-256': other })).status).toBe(401);
      const missing = await send({});
      expect(missing.status).toBe(401);
      expect(missing.body.error.message).toMatch(/missing/);

      const log = await callsOf('signed');
      expect(log.map((c) => [c.status_code, c.signature_valid])).toEqual([
        [401, false],
        [401, false],
        [401, false],
        [401, false],
        [401, false],
        [202, true],
        [202, true],
      ]);

      expect(
        (
          await admin('POST', '/api/v1/webhooks', {
            name: 'signed512',
            hmac: { secret: SECRET, algorithm: 'sha512' },
          })
        ).status,
      ).toBe(201);
      const s512 = createHmac('sha512', SECRET).update('hello').digest('hex');
      expect(
        (await call('signed512', { raw: 'hello', headers: { 'x-attune-signature': `sha512=${s512}` } }))
          .status,
      ).toBe(202);
      expect(
        (await call('signed512', { raw: 'hello', headers: { 'x-attune-signature': `sha256=${sig}` } }))
          .status,
      ).toBe(401);
    });

    it('refuses bodies over the webhook’s limit with 413, declared or streamed', async () => {
      expect(
        (await admin('POST', '/api/v1/webhooks', { name: 'small', max_payload_bytes: 100 })).status,
      ).toBe(201);
      const ok = await call('small', { raw: 'x'.repeat(100), headers: { 'content-type': 'text/plain' } });
      expect(ok.status).toBe(202);
      const big = await call('small', { raw: 'x'.repeat(101), headers: { 'content-type': 'text/plain' } });
      expect(big.status).toBe(413);
      expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
      expect(big.body.error.message).toMatch(/limit of 100 bytes/);

      // chunked: no content-length, the limit applies while reading
      const chunks = [Buffer.alloc(60, 97), Buffer.alloc(60, 98)];
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          for (const ch of chunks) c.enqueue(ch);
          c.close();
        },
      });
      const res = await fetch(`${s.url}/api/v1/webhooks/small`, {
        method: 'POST',
        body: stream,
        headers: { 'content-type': 'text/plain' },
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(413);
      expect(((await res.json()) as AnyBody).error.code).toBe('PAYLOAD_TOO_LARGE');

      // a body far over the limit is refused before it is read
      const huge = await call('small', {
        raw: Buffer.alloc(3 * 1024 * 1024, 120),
        headers: { 'content-type': 'text/plain' },
      });
      expect(huge.status).toBe(413);

      const log = await callsOf('small');
      expect(log.map((c) => c.status_code)).toEqual([413, 413, 413, 202]);
      expect(log[0].body_bytes).toBe(3 * 1024 * 1024);
      log.shift();
      expect(log[1].body_bytes).toBe(101);
      expect(log[0].body_bytes).toBeGreaterThan(100);

      // a larger body elsewhere is fine (implicit webhooks have the default 1 MiB limit)
      await ruleFor('roomy');
      expect(
        (await call('roomy', { raw: 'y'.repeat(200_000), headers: { 'content-type': 'text/plain' } })).status,
      ).toBe(202);
    });

    it('applies the rate limit with 429 and Retry-After', async () => {
      expect(
        (await admin('POST', '/api/v1/webhooks', { name: 'throttled', rate_limit_per_minute: 2 })).status,
      ).toBe(201);
      expect((await call('throttled', { body: {} })).status).toBe(202);
      expect((await call('throttled', { body: {} })).status).toBe(202);
      const third = await call('throttled', { body: {} });
      expect(third.status).toBe(429);
      expect(third.body.error.code).toBe('TOO_MANY_REQUESTS');
      expect(Number(third.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(Number(third.headers.get('retry-after'))).toBeLessThanOrEqual(30);
      expect((await callsOf('throttled')).map((c) => c.status_code)).toEqual([429, 202, 202]);
    });

    it('refuses an event its trigger refuses (trigger disabled: 422) and logs it', async () => {
      const [t] = await s.platform.store.db
        .insert(triggers)
        .values({ ref: 'hooks.push', packId, packRef: 'hooks', name: 'push', label: 'push' })
        .returning();
      expect(
        (await admin('POST', '/api/v1/webhooks', { name: 'custom', trigger: 'hooks.push' })).status,
      ).toBe(201);
      const ok = await call('custom', { body: { x: 1 } });
      expect(ok.status).toBe(202);
      const e = await eventRow(ok.body.data.event_id);
      expect(e.triggerRef).toBe('hooks.push');
      expect(e.triggerParams).toEqual({ name: 'custom' });
      await s.platform.store.db.update(triggers).set({ enabled: false }).where(eq(triggers.id, t!.id));
      const refused = await call('custom', { body: { x: 1 } });
      expect(refused.status).toBe(422);
      const [last] = await callsOf('custom');
      expect(last).toMatchObject({ status_code: 422, event_id: null });
      expect(last.error).toMatch(/disabled/);
    });

    it('logs every call with its status, signature validity, address, duration and event', async () => {
      await ruleFor('audited');
      const before = (await s.platform.store.db.select().from(webhookCalls)).length;
      const statuses: number[] = [];
      for (const body of [{ a: 1 }, { a: 2 }]) statuses.push((await call('audited', { body })).status);
      statuses.push(
        (await call('audited', { raw: '{', headers: { 'content-type': 'application/json' } })).status,
      );
      statuses.push((await call('no-such-hook', { body: {} })).status);
      const after = await s.platform.store.db.select().from(webhookCalls);
      expect(after.length - before).toBe(statuses.length);
      const log = await callsOf('audited');
      expect(log.map((c) => c.status_code)).toEqual([400, 202, 202]);
      for (const c of log) {
        expect(c.remote_ip).toBe('127.0.0.1');
        expect(c.duration_ms).toBeGreaterThanOrEqual(0);
        expect(c.signature_valid).toBeNull();
        expect(Date.parse(c.received_at)).not.toBeNaN();
      }
      expect(log[1].event_id).toBeGreaterThan(0);
      expect(log[0].event_id).toBeNull();
      const filtered = await admin('GET', '/api/v1/webhooks/audited/calls?status=202');
      expect(filtered.body.data).toHaveLength(2);
      expect(filtered.body.pagination.total_items).toBe(2);
    });
  });

  describe('management', () => {
    it('defines webhooks, refuses duplicates, bad names and unknown triggers, and never returns a secret', async () => {
      const r = await admin('POST', '/api/v1/webhooks', {
        name: 'managed',
        description: 'from the CI',
        hmac: { secret: SECRET, header: 'X-Signature' },
        max_payload_bytes: 2048,
        rate_limit_per_minute: 60,
      });
      expect(r.status).toBe(201);
      expect(r.body.data).toMatchObject({
        name: 'managed',
        url: '/api/v1/webhooks/managed',
        trigger_ref: 'core.webhook',
        description: 'from the CI',
        enabled: true,
        implicit: false,
        hmac: { algorithm: 'sha256', header: 'x-signature' },
        max_payload_bytes: 2048,
        rate_limit_per_minute: 60,
        rule_refs: [],
      });
      expect((await admin('POST', '/api/v1/webhooks', { name: 'managed' })).status).toBe(409);
      const badName = await admin('POST', '/api/v1/webhooks', { name: 'Bad Name!' });
      expect(badName.status).toBe(400);
      expect(badName.body.error.code).toBe('VALIDATION_ERROR');
      const badTrigger = await admin('POST', '/api/v1/webhooks', { name: 'ghost', trigger: 'nope.missing' });
      expect(badTrigger.status).toBe(422);
      expect(
        (await admin('POST', '/api/v1/webhooks', { name: 'weak', hmac: { secret: 'short' } })).status,
      ).toBe(400);
      expect((await admin('POST', '/api/v1/webhooks', { name: 'extra', unknown: 1 })).status).toBe(400);
      expect((await admin('POST', '/api/v1/webhooks', { name: 'huge', max_payload_bytes: 1e9 })).status).toBe(
        400,
      );

      const [row] = await s.platform.store.db.select().from(webhooks).where(eq(webhooks.name, 'managed'));
      expect(row!.hmacSecret).not.toContain(SECRET);
      expect(row!.hmacSecret).not.toBe('');

      const texts = [
        JSON.stringify(r.body),
        JSON.stringify((await admin('GET', '/api/v1/webhooks/managed')).body),
        JSON.stringify((await admin('GET', '/api/v1/webhooks?page_size=1000')).body),
        JSON.stringify((await admin('PUT', '/api/v1/webhooks/managed', { description: 'x' })).body),
      ];
      for (const t of texts) {
        expect(t).not.toContain(SECRET);
        expect(t).not.toContain(row!.hmacSecret!);
        expect(t).not.toMatch(/"secret"/);
      }
    });

    it('lists defined and implicit webhooks with the rules that use them', async () => {
      const ruleRef = await ruleFor('listed-implicit');
      const list = await admin('GET', '/api/v1/webhooks?page_size=1000');
      expect(list.status).toBe(200);
      const byName = new Map((list.body.data as AnyBody[]).map((w) => [w.name, w]));
      expect(byName.get('listed-implicit')).toMatchObject({
        implicit: true,
        hmac: null,
        max_payload_bytes: 1048576,
        rate_limit_per_minute: null,
        rule_refs: [ruleRef],
        created_at: null,
      });
      expect(byName.get('managed')).toMatchObject({ implicit: false });
      const names = (list.body.data as AnyBody[]).map((w) => w.name);
      expect(names).toEqual([...names].sort());
      const onlyImplicit = await admin('GET', '/api/v1/webhooks?implicit=true&page_size=1000');
      expect((onlyImplicit.body.data as AnyBody[]).every((w) => w.implicit)).toBe(true);
      const paged = await admin('GET', '/api/v1/webhooks?page=1&page_size=2');
      expect(paged.body.data).toHaveLength(2);
      expect(paged.body.pagination.total_items).toBe(list.body.pagination.total_items);
      expect((await admin('GET', '/api/v1/webhooks/listed-implicit')).body.data.implicit).toBe(true);
      expect((await admin('GET', '/api/v1/webhooks/not-there')).status).toBe(404);
    });

    it('updates partially: the secret stays unless replaced or removed; implicit webhooks are defined first', async () => {
      await admin('POST', '/api/v1/webhooks', { name: 'rotating', hmac: { secret: SECRET } });
      const upd = await admin('PUT', '/api/v1/webhooks/rotating', { hmac: { algorithm: 'sha512' } });
      expect(upd.status).toBe(200);
      expect(upd.body.data.hmac).toEqual({ algorithm: 'sha512', header: 'x-attune-signature' });
      const s512 = createHmac('sha512', SECRET).update('ping').digest('hex');
      expect((await call('rotating', { raw: 'ping', headers: { 'x-attune-signature': s512 } })).status).toBe(
        202,
      );

      await admin('PUT', '/api/v1/webhooks/rotating', { hmac: { secret: 'a brand new secret' } });
      expect((await call('rotating', { raw: 'ping', headers: { 'x-attune-signature': s512 } })).status).toBe(
        401,
      );

      const off = await admin('PUT', '/api/v1/webhooks/rotating', { hmac: null });
      expect(off.body.data.hmac).toBeNull();
      expect((await call('rotating', { raw: 'ping' })).status).toBe(202);
      const noSecret = await admin('PUT', '/api/v1/webhooks/rotating', { hmac: { algorithm: 'sha256' } });
      expect(noSecret.status).toBe(400);
      expect(noSecret.body.error.message).toMatch(/hmac.secret is required/);

      expect((await admin('PUT', '/api/v1/webhooks/rotating', {})).status).toBe(400);
      expect((await admin('PUT', '/api/v1/webhooks/rotating', { trigger: 'nope.missing' })).status).toBe(422);
      const disabled = await admin('PUT', '/api/v1/webhooks/rotating', { enabled: false });
      expect(disabled.body.data.enabled).toBe(false);
      expect((await call('rotating', { raw: 'ping' })).status).toBe(404);

      await ruleFor('only-implicit');
      const imp = await admin('PUT', '/api/v1/webhooks/only-implicit', { description: 'x' });
      expect(imp.status).toBe(404);
      expect(imp.body.error.message).toMatch(/define it with POST/);
      expect((await admin('PUT', '/api/v1/webhooks/not-there', { description: 'x' })).status).toBe(404);
    });

    it('deletes a definition; a name rules still use stays reachable implicitly, without signature', async () => {
      await ruleFor('kept-by-rule');
      await admin('POST', '/api/v1/webhooks', { name: 'kept-by-rule', hmac: { secret: SECRET } });
      expect((await call('kept-by-rule', { body: {} })).status).toBe(401);
      expect((await admin('DELETE', '/api/v1/webhooks/kept-by-rule')).status).toBe(204);
      const after = await admin('GET', '/api/v1/webhooks/kept-by-rule');
      expect(after.body.data).toMatchObject({ implicit: true, hmac: null });
      expect((await call('kept-by-rule', { body: {} })).status).toBe(202);
      const again = await admin('DELETE', '/api/v1/webhooks/kept-by-rule');
      expect(again.status).toBe(404);
      expect(again.body.error.message).toMatch(/rules use it implicitly/);

      await admin('POST', '/api/v1/webhooks', { name: 'short-lived' });
      expect((await admin('DELETE', '/api/v1/webhooks/short-lived')).status).toBe(204);
      expect((await call('short-lived', { body: {} })).status).toBe(404);
      // its calls stay readable
      expect((await callsOf('short-lived')).map((c) => c.status_code)).toEqual([404]);
      expect((await admin('GET', '/api/v1/webhooks/never-called/calls')).status).toBe(404);
    });

    it('needs authentication and the webhooks permissions to manage; calling needs none', async () => {
      expect((await s.request('GET', '/api/v1/webhooks')).status).toBe(401);
      expect((await s.request('POST', '/api/v1/webhooks', { body: { name: 'anon' } })).status).toBe(401);
      expect((await s.request('GET', '/api/v1/webhooks/managed/calls')).status).toBe(401);
      const route = s.platform.api.routeTable.find(
        (r) => r.method === 'POST' && r.url === '/api/v1/webhooks/:name',
      );
      expect(route?.public).toBe(true);
      const perms = s.platform.api.routeTable
        .filter((r) => r.url.startsWith('/api/v1/webhooks') && !r.public)
        .map((r) => `${r.method} ${r.permission?.join(':')}`);
      expect(perms.sort()).toEqual([
        'DELETE webhooks:delete',
        'GET webhooks:read',
        'GET webhooks:read',
        'GET webhooks:read',
        'POST webhooks:create',
        'PUT webhooks:update',
      ]);
    });
  });
  it('documents its routes in the OpenAPI document', async () => {
    const spec = (await s.request<AnyBody>('GET', '/api-spec/openapi.json')).body;
    for (const [path, method, codes] of [
      ['/api/v1/webhooks', 'get', ['200', '400', '401']],
      ['/api/v1/webhooks', 'post', ['201', '400', '409', '422']],
      ['/api/v1/webhooks/{name}', 'get', ['200', '404']],
      ['/api/v1/webhooks/{name}', 'put', ['200', '400', '404']],
      ['/api/v1/webhooks/{name}', 'delete', ['204', '404']],
      ['/api/v1/webhooks/{name}', 'post', ['202', '401', '404', '413', '429']],
      ['/api/v1/webhooks/{name}/calls', 'get', ['200', '404']],
      ['/api/v1/sensors/{ref}/logs', 'get', ['200', '404']],
      ['/api/v1/sensors/{ref}/status', 'get', ['200', '404']],
    ] as const) {
      const op = spec.paths?.[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op.summary).toBeTruthy();
      expect(op.tags?.length).toBeGreaterThan(0);
      for (const c of codes) expect(op.responses, `${method} ${path} ${c}`).toHaveProperty(c);
    }
  });

  describe('internal trigger core.key_changed', () => {
    it('fires on key creation, update and deletion through the API, never carrying the value', async () => {
      await s.platform.store.db.insert(rules).values({
        ref: 'hooks.on_key',
        packId,
        packRef: 'hooks',
        name: 'on_key',
        label: 'on key',
        triggerRef: 'core.key_changed',
        actionRef: 'core.noop',
      });
      const keyEvents = () =>
        s.platform.store.db
          .select()
          .from(events)
          .where(eq(events.triggerRef, 'core.key_changed'))
          .orderBy(events.id);
      expect(
        (
          await admin('POST', '/api/v1/keys', {
            name: 'db.password',
            value: 'hunter2-secret',
            encrypted: true,
          })
        ).status,
      ).toBe(201);
      expect((await admin('PUT', '/api/v1/keys/db.password', { value: 'hunter3-secret' })).status).toBe(200);
      expect((await admin('POST', '/api/v1/keys', { name: 'mine', value: 42, scope: 'user' })).status).toBe(
        201,
      );
      expect((await admin('DELETE', '/api/v1/keys/db.password')).status).toBe(204);
      expect((await admin('DELETE', '/api/v1/keys/db.password')).status).toBe(404);
      const evs = await keyEvents();
      expect(evs.map((e) => e.payload)).toEqual([
        { name: 'db.password', scope: 'system', action: 'created', operation: 'set', encrypted: true },
        { name: 'db.password', scope: 'system', action: 'updated', operation: 'set', encrypted: true },
        {
          name: 'mine',
          scope: 'user',
          owner: 'admin',
          action: 'created',
          operation: 'set',
          encrypted: false,
        },
        { name: 'db.password', scope: 'system', action: 'deleted', operation: 'deleted', encrypted: true },
      ]);
      for (const e of evs) {
        expect(e.source).toBe('internal');
        expect(e.createdBy).toBe('admin');
        expect(JSON.stringify(e.payload)).not.toMatch(/hunter|42/);
      }
    });
  });
});
