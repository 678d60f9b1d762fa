import { and, eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/services/api/auth.ts';
import { KeyStore } from '../../src/services/keys/key-store.ts';
import { auditLog, identities, identityRoles, keys, roles } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const PASSWORD = 'a-long-test-password';

/** Creates an identity holding `roleName` (created with `grants` when given) and logs it in. */
async function userWithRole(
  s: TestServer,
  login: string,
  roleName: string,
  grants?: { resource: string; actions: string[] }[],
): Promise<string> {
  const db = s.platform.store.db;
  if (grants) await db.insert(roles).values({ name: roleName, grants }).onConflictDoNothing();
  const [role] = await db.select({ id: roles.id }).from(roles).where(eq(roles.name, roleName));
  const [ident] = await db
    .insert(identities)
    .values({ login, passwordHash: await hashPassword(PASSWORD) })
    .returning({ id: identities.id });
  await db.insert(identityRoles).values({ identityId: ident!.id, roleId: role!.id });
  return s.login(login, PASSWORD);
}

describeBackend('keys API', () => {
  let s: TestServer;
  let admin: string;
  let viewer: string;
  let editor: string;
  let alice: string;
  let bob: string;
  /** keys read/create/update/delete, but not decrypt */
  let keyClerk: string;

  const req = (method: string, url: string, token: string, body?: unknown) =>
    s.request<AnyBody>(method, url, { token, ...(body !== undefined && { body }) });
  const rowOf = async (name: string, scope = 'system', owner = '') => {
    const [r] = await s.platform.store.db
      .select()
      .from(keys)
      .where(and(eq(keys.name, name), eq(keys.scope, scope), eq(keys.owner, owner)));
    return r;
  };
  const auditsOf = (action: string) =>
    s.platform.store.db.select().from(auditLog).where(eq(auditLog.action, action));

  beforeAll(async () => {
    s = await startTestServer();
    admin = s.adminToken;
    viewer = await userWithRole(s, 'vera', 'viewer');
    editor = await userWithRole(s, 'eddie', 'editor');
    alice = await userWithRole(s, 'alice', 'editor');
    bob = await userWithRole(s, 'bob', 'editor');
    keyClerk = await userWithRole(s, 'clerk', 'key-clerk', [
      { resource: 'keys', actions: ['read', 'create', 'update', 'delete'] },
    ]);
  });
  afterAll(async () => s?.stop());

  it('rejects anonymous calls on every key route', async () => {
    for (const [m, u] of [
      ['GET', '/api/v1/keys'],
      ['GET', '/api/v1/keys/a'],
      ['POST', '/api/v1/keys'],
      ['PUT', '/api/v1/keys/a'],
      ['DELETE', '/api/v1/keys/a'],
    ] as const) {
      const r = await s.request<AnyBody>(m, u, m === 'POST' || m === 'PUT' ? { body: { value: 1 } } : {});
      expect(r.status, `${m} ${u}`).toBe(401);
      expect(r.body.error.code).toBe('UNAUTHORIZED');
    }
  });

  it('stores any JSON value and returns it with the key', async () => {
    const values: [string, unknown][] = [
      ['plain.string', 'hello'],
      ['plain.number', 42.5],
      ['plain.bool', false],
      ['plain.null', null],
      ['plain.array', [1, 'two', { three: 3 }]],
      ['plain.object', { host: 'db.local', port: 5432, tls: { on: true } }],
      ['plain:unicode', 'grüße ✓'],
    ];
    for (const [name, value] of values) {
      const c = await req('POST', '/api/v1/keys', admin, { name, value, description: `the ${name}` });
      expect(c.status, name).toBe(201);
      expect(c.body.data).toMatchObject({
        name,
        value,
        scope: 'system',
        owner: null,
        encrypted: false,
        masked: false,
        description: `the ${name}`,
        expires_at: null,
      });
      const g = await req('GET', `/api/v1/keys/${encodeURIComponent(name)}`, admin);
      expect(g.status).toBe(200);
      expect(g.body.data.value).toEqual(value);
    }
    const row = await rowOf('plain.object');
    expect(JSON.parse(row!.value)).toEqual({ host: 'db.local', port: 5432, tls: { on: true } });
  });

  it('refuses a duplicate name in the same scope with 409', async () => {
    await req('POST', '/api/v1/keys', admin, { name: 'dup.one', value: 1 });
    const r = await req('POST', '/api/v1/keys', admin, { name: 'dup.one', value: 2 });
    expect(r.status).toBe(409);
    expect(r.body.error.code).toBe('CONFLICT');
    expect((await req('GET', '/api/v1/keys/dup.one', admin)).body.data.value).toBe(1);
  });

  it('keeps encrypted values encrypted at rest and masked in every response', async () => {
    const secret = 'hunter2-very-secret-token';
    const c = await req('POST', '/api/v1/keys', editor, {
      name: 'db.password',
      value: { user: 'app', password: secret },
      encrypted: true,
    });
    expect(c.status).toBe(201);
    expect(c.body.data).toMatchObject({ value: null, encrypted: true, masked: true });
    expect(JSON.stringify(c.body)).not.toContain(secret);

    const row = await rowOf('db.password');
    expect(row!.encrypted).toBe(true);
    expect(row!.value.startsWith('v1:')).toBe(true);
    expect(row!.value).not.toContain(secret);
    expect(row!.value).not.toContain('password');
    // the whole row, as PostgreSQL prints it, never holds the plaintext
    const printed = (await s.platform.store.db.execute(
      sql`select k::text as t from keys k where name = 'db.password'`,
    )) as unknown as { rows: { t: string }[] };
    expect(printed.rows[0]!.t).not.toContain(secret);

    const list = await req('GET', '/api/v1/keys?page_size=1000', editor);
    expect(list.status).toBe(200);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    const listed = list.body.data.find((k: AnyBody) => k.name === 'db.password');
    expect(listed).toMatchObject({ value: null, encrypted: true, masked: true });

    const plain = await req('GET', '/api/v1/keys/db.password', editor);
    expect(plain.body.data).toMatchObject({ value: null, masked: true });
    expect(JSON.stringify(plain.body)).not.toContain(secret);
  });

  it('decrypts only for keys:decrypt, and audits each decryption without the value', async () => {
    const secret = 'decrypt-me-please-42';
    await req('POST', '/api/v1/keys', admin, { name: 'api.token', value: secret, encrypted: true });
    const before = (await auditsOf('key.decrypt')).length;

    const d = await req('GET', '/api/v1/keys/api.token?decrypt=true', editor);
    expect(d.status).toBe(200);
    expect(d.body.data).toMatchObject({ value: secret, encrypted: true, masked: false });
    const d2 = await req('GET', '/api/v1/keys/api.token?decrypt=true', admin);
    expect(d2.body.data.value).toBe(secret);

    const audits = await auditsOf('key.decrypt');
    expect(audits.length).toBe(before + 2);
    const mine = audits.filter((a) => a.resourceRef === 'api.token');
    expect(mine.map((a) => a.actor).sort()).toEqual(['admin', 'eddie']);
    expect(mine[0]).toMatchObject({ resourceType: 'keys', outcome: 'success', details: { scope: 'system' } });
    const allAudit = await s.platform.store.db.select().from(auditLog);
    expect(JSON.stringify(allAudit)).not.toContain(secret);

    // the viewer reads keys but may not decrypt: 403 whether or not the key exists, and no audit entry
    const v = await req('GET', '/api/v1/keys/api.token', viewer);
    expect(v.status).toBe(200);
    expect(v.body.data).toMatchObject({ value: null, masked: true });
    for (const name of ['api.token', 'no.such.key']) {
      const vd = await req('GET', `/api/v1/keys/${name}?decrypt=true`, viewer);
      expect(vd.status).toBe(403);
      expect(vd.body.error.code).toBe('FORBIDDEN');
      expect(JSON.stringify(vd.body)).not.toContain(secret);
    }
    expect((await auditsOf('key.decrypt')).length).toBe(before + 2);

    // decrypt=true on a plain key shows the value without an audit entry
    const p = await req('GET', '/api/v1/keys/plain.string?decrypt=true', editor);
    expect(p.body.data).toMatchObject({ value: 'hello', masked: false });
    expect((await auditsOf('key.decrypt')).length).toBe(before + 2);

    // listings have no decrypt switch at all
    const l = await req('GET', '/api/v1/keys?decrypt=true', admin);
    expect(l.status).toBe(400);
  });

  it('the viewer role reads keys but cannot change them', async () => {
    expect((await req('GET', '/api/v1/keys', viewer)).status).toBe(200);
    expect((await req('GET', '/api/v1/keys/plain.string', viewer)).body.data.value).toBe('hello');
    expect((await req('POST', '/api/v1/keys', viewer, { name: 'v.k', value: 1 })).status).toBe(403);
    expect((await req('PUT', '/api/v1/keys/plain.string', viewer, { value: 'x' })).status).toBe(403);
    expect((await req('DELETE', '/api/v1/keys/plain.string', viewer)).status).toBe(403);
    // nor keep keys of its own: user-scope keys follow the same keys grants
    expect(
      (await req('POST', '/api/v1/keys', viewer, { name: 'mine', value: 1, scope: 'user' })).status,
    ).toBe(403);
    expect((await req('GET', '/api/v1/keys/plain.string', viewer)).body.data.value).toBe('hello');
  });

  it('updates partially, re-encodes when encryption changes, and creates on PUT with a value', async () => {
    await req('POST', '/api/v1/keys', admin, { name: 'cfg.region', value: 'eu-west-1', description: 'd1' });

    const d = await req('PUT', '/api/v1/keys/cfg.region', admin, { description: 'd2' });
    expect(d.status).toBe(200);
    expect(d.body.data).toMatchObject({ value: 'eu-west-1', description: 'd2', encrypted: false });

    const v = await req('PUT', '/api/v1/keys/cfg.region', admin, { value: { r: 'us-east-2' } });
    expect(v.body.data).toMatchObject({ value: { r: 'us-east-2' }, description: 'd2' });

    // turning encryption on re-encodes the current value
    const on = await req('PUT', '/api/v1/keys/cfg.region', admin, { encrypted: true });
    expect(on.status).toBe(200);
    expect(on.body.data).toMatchObject({ value: null, encrypted: true, masked: true });
    const row = await rowOf('cfg.region');
    expect(row!.value.startsWith('v1:')).toBe(true);
    expect(row!.value).not.toContain('us-east-2');
    expect((await req('GET', '/api/v1/keys/cfg.region?decrypt=true', admin)).body.data.value).toEqual({
      r: 'us-east-2',
    });

    // turning it off would disclose the value to every reader: needs keys:decrypt, and is audited
    const denied = await req('PUT', '/api/v1/keys/cfg.region', keyClerk, { encrypted: false });
    expect(denied.status).toBe(403);
    expect((await rowOf('cfg.region'))!.encrypted).toBe(true);
    // replacing the value while turning encryption off discloses nothing old
    const replaced = await req('PUT', '/api/v1/keys/cfg.region', keyClerk, {
      encrypted: false,
      value: 'public',
    });
    expect(replaced.status).toBe(200);
    expect(replaced.body.data).toMatchObject({ value: 'public', encrypted: false });
    await req('PUT', '/api/v1/keys/cfg.region', admin, { encrypted: true });
    const before = (await auditsOf('key.decrypt')).length;
    const off = await req('PUT', '/api/v1/keys/cfg.region', admin, { encrypted: false });
    expect(off.body.data).toMatchObject({ value: 'public', encrypted: false, masked: false });
    expect((await rowOf('cfg.region'))!.value).toBe('"public"');
    const after = await auditsOf('key.decrypt');
    expect(after.length).toBe(before + 1);
    expect(after.at(-1)!.details).toMatchObject({ reason: 'encryption turned off' });

    // PUT on a missing key: 404 without a value, created (201) with one
    const missing = await req('PUT', '/api/v1/keys/cfg.nothing', admin, { description: 'x' });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('NOT_FOUND');
    const created = await req('PUT', '/api/v1/keys/cfg.created', admin, { value: 'v', encrypted: true });
    expect(created.status).toBe(201);
    expect(created.body.data).toMatchObject({ name: 'cfg.created', encrypted: true, masked: true });
    expect((await req('GET', '/api/v1/keys/cfg.created?decrypt=true', admin)).body.data.value).toBe('v');

    // an empty change is refused
    expect((await req('PUT', '/api/v1/keys/cfg.region', admin, {})).status).toBe(400);
  });

  it('deletes keys: 204, then 404', async () => {
    await req('POST', '/api/v1/keys', admin, { name: 'tmp.del', value: 1 });
    expect((await req('DELETE', '/api/v1/keys/tmp.del', admin)).status).toBe(204);
    expect((await req('GET', '/api/v1/keys/tmp.del', admin)).status).toBe(404);
    const again = await req('DELETE', '/api/v1/keys/tmp.del', admin);
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('NOT_FOUND');
    expect(await rowOf('tmp.del')).toBeUndefined();
  });

  it('refuses bad input with a 400 (or 413) and the error body', async () => {
    const bad: [string, string, unknown, number][] = [
      ['POST', '/api/v1/keys', { name: 'has space', value: 1 }, 400],
      ['POST', '/api/v1/keys', { name: 'a/b', value: 1 }, 400],
      ['POST', '/api/v1/keys', { name: '', value: 1 }, 400],
      ['POST', '/api/v1/keys', { name: 'x'.repeat(256), value: 1 }, 400],
      ['POST', '/api/v1/keys', { name: 'no.value' }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 1, bogus: true }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 1, ttl: 0 }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 1, ttl: 1.5 }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 1, ttl: '60' }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 1, encrypted: 'yes' }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 1, scope: 'global' }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 1, scope: 'system', owner: 'alice' }, 400],
      ['POST', '/api/v1/keys', { name: 'k', value: 'x'.repeat(300_000) }, 413],
      ['PUT', '/api/v1/keys/k%20k', { value: 1 }, 400],
      ['PUT', '/api/v1/keys/plain.string', { ttl: -3 }, 400],
      ['PUT', '/api/v1/keys/plain.string', { name: 'renamed' }, 400],
      ['GET', '/api/v1/keys/plain.string?decrypt=maybe', undefined, 400],
      ['GET', '/api/v1/keys/plain.string?scope=team', undefined, 400],
      ['GET', '/api/v1/keys?page_size=5000', undefined, 400],
      ['GET', '/api/v1/keys?unknown=1', undefined, 400],
      ['DELETE', `/api/v1/keys/${'y'.repeat(300)}`, undefined, 400],
    ];
    const before = await s.platform.store.db.select().from(keys).orderBy(keys.id);
    for (const [m, u, body, status] of bad) {
      const r = await req(m, u, admin, body);
      expect(r.status, `${m} ${u} ${JSON.stringify(body)?.slice(0, 80)}`).toBe(status);
      expect(typeof r.body.error.code).toBe('string');
      expect(typeof r.body.error.message).toBe('string');
    }
    expect(await s.platform.store.db.select().from(keys).orderBy(keys.id)).toEqual(before);
    const big = await req('POST', '/api/v1/keys', admin, { name: 'k', value: 'x'.repeat(300_000) });
    expect(big.body.error.code).toBe('PAYLOAD_TOO_LARGE');
  });

  describe('TTL', () => {
    it('returns a key until it expires, then never again', async () => {
      const c = await req('POST', '/api/v1/keys', admin, { name: 'ttl.short', value: 'soon gone', ttl: 1 });
      expect(c.status).toBe(201);
      const exp = Date.parse(c.body.data.expires_at);
      expect(exp).toBeGreaterThan(Date.now() - 2000);
      expect(exp).toBeLessThan(Date.now() + 5000);
      expect((await req('GET', '/api/v1/keys/ttl.short', admin)).body.data.value).toBe('soon gone');
      await new Promise((r) => setTimeout(r, 1300));
      expect((await req('GET', '/api/v1/keys/ttl.short', admin)).status).toBe(404);
      const list = await req('GET', '/api/v1/keys?prefix=ttl.', admin);
      expect(list.body.data.map((k: AnyBody) => k.name)).not.toContain('ttl.short');
    });

    it('treats an expired row as absent for every read and write, and deletes expired rows', async () => {
      await req('POST', '/api/v1/keys', admin, { name: 'ttl.past', value: 'old', encrypted: true });
      await req('POST', '/api/v1/keys', admin, { name: 'ttl.other', value: 'old too' });
      await s.platform.store.db
        .update(keys)
        .set({ expiresAt: new Date(Date.now() - 60_000) })
        .where(sql`${keys.name} in ('ttl.past', 'ttl.other')`);

      expect((await req('GET', '/api/v1/keys/ttl.past', admin)).status).toBe(404);
      expect((await req('GET', '/api/v1/keys/ttl.past?decrypt=true', admin)).status).toBe(404);
      const listed = await req('GET', '/api/v1/keys?prefix=ttl.', admin);
      expect(listed.body.data).toEqual([]);
      expect(listed.body.pagination.total_items).toBe(0);
      expect((await req('PUT', '/api/v1/keys/ttl.past', admin, { description: 'x' })).status).toBe(404);
      expect((await req('DELETE', '/api/v1/keys/ttl.past', admin)).status).toBe(404);

      // the name is free again; the write sweeps the other expired row away too
      const again = await req('POST', '/api/v1/keys', admin, { name: 'ttl.past', value: 'new' });
      expect(again.status).toBe(201);
      expect(again.body.data).toMatchObject({ value: 'new', encrypted: false, expires_at: null });
      expect(await rowOf('ttl.other')).toBeUndefined();
      const remaining = await s.platform.store.db
        .select({ n: sql<number>`count(*)::int` })
        .from(keys)
        .where(sql`${keys.expiresAt} <= now()`);
      expect(remaining[0]!.n).toBe(0);
    });

    it('sets, moves and removes an expiry with PUT', async () => {
      await req('POST', '/api/v1/keys', admin, { name: 'ttl.edit', value: 1, ttl: 3600 });
      const longer = await req('PUT', '/api/v1/keys/ttl.edit', admin, { ttl: 7200 });
      const exp = Date.parse(longer.body.data.expires_at);
      expect(exp).toBeGreaterThan(Date.now() + 7000_000);
      const never = await req('PUT', '/api/v1/keys/ttl.edit', admin, { ttl: null });
      expect(never.body.data.expires_at).toBeNull();
      expect(never.body.data.value).toBe(1);
    });
  });

  describe('scopes', () => {
    it('keeps user-scope keys private to their owner', async () => {
      const a = await req('POST', '/api/v1/keys', alice, {
        name: 'token',
        value: 'alice-tok',
        scope: 'user',
      });
      expect(a.status).toBe(201);
      expect(a.body.data).toMatchObject({ scope: 'user', owner: 'alice' });
      const b = await req('POST', '/api/v1/keys', bob, {
        name: 'token',
        value: 'bob-tok',
        scope: 'user',
        encrypted: true,
      });
      expect(b.status).toBe(201);
      // the same name in the system scope is a different key
      expect((await req('POST', '/api/v1/keys', admin, { name: 'token', value: 'sys-tok' })).status).toBe(
        201,
      );

      expect((await req('GET', '/api/v1/keys/token?scope=user', alice)).body.data.value).toBe('alice-tok');
      expect((await req('GET', '/api/v1/keys/token?scope=user&decrypt=true', bob)).body.data.value).toBe(
        'bob-tok',
      );
      expect((await req('GET', '/api/v1/keys/token', alice)).body.data.value).toBe('sys-tok');
      expect((await req('GET', '/api/v1/keys/token?owner=alice', alice)).body.data.value).toBe('alice-tok');

      // listing: the system keys plus one's own, never another user's
      const la = await req('GET', '/api/v1/keys?page_size=1000', alice);
      const tokens = la.body.data.filter((k: AnyBody) => k.name === 'token');
      expect(tokens.map((k: AnyBody) => [k.scope, k.owner, k.value])).toEqual([
        ['system', null, 'sys-tok'],
        ['user', 'alice', 'alice-tok'],
      ]);
      const lu = await req('GET', '/api/v1/keys?scope=user', bob);
      expect(lu.body.data.map((k: AnyBody) => [k.name, k.owner, k.masked])).toEqual([['token', 'bob', true]]);
      const ls = await req('GET', '/api/v1/keys?scope=system&prefix=token', bob);
      expect(ls.body.data.map((k: AnyBody) => k.scope)).toEqual(['system']);

      // another identity's keys: 403 for a non-admin, whatever the method
      for (const [m, u, body] of [
        ['GET', '/api/v1/keys?owner=bob', undefined],
        ['GET', '/api/v1/keys/token?owner=bob', undefined],
        ['GET', '/api/v1/keys/token?owner=bob&decrypt=true', undefined],
        ['PUT', '/api/v1/keys/token?owner=bob', { value: 'hijack' }],
        ['DELETE', '/api/v1/keys/token?owner=bob', undefined],
        ['POST', '/api/v1/keys', { name: 'planted', value: 1, owner: 'bob' }],
      ] as const) {
        const r = await req(m, u, alice, body);
        expect(r.status, `${m} ${u}`).toBe(403);
      }
      expect((await req('GET', '/api/v1/keys/token?scope=user&decrypt=true', bob)).body.data.value).toBe(
        'bob-tok',
      );

      // admins (identities:update) may address any owner
      const adm = await req('GET', '/api/v1/keys?owner=alice', admin);
      expect(adm.body.data.map((k: AnyBody) => [k.name, k.owner])).toEqual([['token', 'alice']]);
      expect((await req('GET', '/api/v1/keys/token?owner=bob&decrypt=true', admin)).body.data.value).toBe(
        'bob-tok',
      );
      const forAlice = await req('POST', '/api/v1/keys', admin, { name: 'given', value: 2, owner: 'alice' });
      expect(forAlice.status).toBe(201);
      expect(forAlice.body.data).toMatchObject({ scope: 'user', owner: 'alice' });
      expect((await req('GET', '/api/v1/keys/given?scope=user', alice)).body.data.value).toBe(2);
      const ghost = await req('POST', '/api/v1/keys', admin, { name: 'x', value: 1, owner: 'nobody' });
      expect(ghost.status).toBe(404);
      expect(ghost.body.error.message).toMatch(/nobody/);

      // a user deletes only its own key
      expect((await req('DELETE', '/api/v1/keys/token?scope=user', alice)).status).toBe(204);
      expect((await req('GET', '/api/v1/keys/token?scope=user', alice)).status).toBe(404);
      expect((await req('GET', '/api/v1/keys/token?scope=user', bob)).status).toBe(200);
      expect((await req('GET', '/api/v1/keys/token', bob)).body.data.value).toBe('sys-tok');
    });

    it('gives actions the decrypted values of one scope through KeyStore.getKeyValues', async () => {
      await req('POST', '/api/v1/keys', bob, { name: 'gh.pat', value: 'ghp_bob', scope: 'user' });
      await req('POST', '/api/v1/keys', admin, {
        name: 'gone',
        value: 1,
        scope: 'user',
        owner: 'bob',
        ttl: 60,
      });
      await s.platform.store.db
        .update(keys)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(and(eq(keys.name, 'gone'), eq(keys.owner, 'bob')));
      const store = new KeyStore(s.platform.store, s.platform.ctx.cipher);
      const bobs = await store.getKeyValues('user', 'bob');
      expect(bobs).toEqual({ 'gh.pat': 'ghp_bob', token: 'bob-tok' });
      const system = await store.getKeyValues('system');
      expect(system['api.token']).toBe('decrypt-me-please-42');
      expect(system['plain.object']).toEqual({ host: 'db.local', port: 5432, tls: { on: true } });
      expect(system.token).toBe('sys-tok');
      expect(Object.keys(system)).not.toContain('gh.pat');
      expect(await store.getValue({ scope: 'user', owner: 'bob', name: 'gone' })).toBeUndefined();
    });
  });

  it('lists with prefix, search and pagination', async () => {
    for (let i = 1; i <= 5; i++)
      await req('POST', '/api/v1/keys', admin, {
        name: `page.k${i}`,
        value: i,
        description: i % 2 ? 'odd one' : 'even one',
      });
    await req('POST', '/api/v1/keys', admin, { name: 'pageXk9', value: 9 });

    const p1 = await req('GET', '/api/v1/keys?prefix=page.&page_size=2', admin);
    expect(p1.body.data.map((k: AnyBody) => k.name)).toEqual(['page.k1', 'page.k2']);
    expect(p1.body.pagination).toEqual({ page: 1, page_size: 2, total_items: 5, total_pages: 3 });
    const p3 = await req('GET', '/api/v1/keys?prefix=page.&page_size=2&page=3', admin);
    expect(p3.body.data.map((k: AnyBody) => k.name)).toEqual(['page.k5']);
    const p9 = await req('GET', '/api/v1/keys?prefix=page.&page_size=2&page=9', admin);
    expect(p9.body.data).toEqual([]);
    expect(p9.body.pagination.total_items).toBe(5);

    // `_` and `%` are literal in a prefix
    expect((await req('GET', '/api/v1/keys?prefix=page_', admin)).body.data).toEqual([]);
    expect((await req('GET', '/api/v1/keys?prefix=%25', admin)).body.data).toEqual([]);

    const odd = await req('GET', '/api/v1/keys?search=ODD%20ONE', admin);
    expect(odd.body.data.map((k: AnyBody) => k.name)).toEqual(['page.k1', 'page.k3', 'page.k5']);
    const byName = await req('GET', '/api/v1/keys?search=xk9', admin);
    expect(byName.body.data.map((k: AnyBody) => k.name)).toEqual(['pageXk9']);
  });
});
