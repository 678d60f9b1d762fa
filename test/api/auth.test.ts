import { and, desc, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/security/crypto.ts';
import { apiKeys, auditLog, refreshTokens } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { ADMIN_PASSWORD, type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const PW = 'correct horse battery';

describeBackend('auth: login, tokens, sessions, API keys', () => {
  let s: TestServer;
  let limited: TestServer;
  beforeAll(async () => {
    [s, limited] = await Promise.all([startTestServer(), startTestServer({ ATTUNE_LOGIN_RATE_LIMIT: '3' })]);
    for (const [login, roles] of [
      ['alice', ['viewer']],
      ['bob', ['operator']],
      ['carol', ['viewer']],
      ['dave', ['viewer']],
      ['erin', ['viewer']],
      ['frank', ['viewer']],
    ] as const) {
      const r = await s.request<AnyBody>('POST', '/api/v1/identities', {
        token: s.adminToken,
        body: { login, password: PW, roles, email: `${login}@example.com` },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
  });
  afterAll(async () => {
    await Promise.all([s?.stop(), limited?.stop()]);
  });

  const loginRaw = (srv: TestServer, login: string, password: string) =>
    srv.request<AnyBody>('POST', '/auth/login', { body: { login, password } });
  const pair = async (login: string, password = PW) => {
    const r = await loginRaw(s, login, password);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body.data as { access_token: string; refresh_token: string };
  };
  const me = (token: string) => s.request<AnyBody>('GET', '/auth/me', { token });
  const refresh = (refresh_token: string) =>
    s.request<AnyBody>('POST', '/auth/refresh', { body: { refresh_token } });
  const audits = (srv: TestServer, action: string) =>
    srv.platform.store.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, action))
      .orderBy(desc(auditLog.id));

  describe('login', () => {
    it('answers an access token of 1 h and a refresh token of 7 d', async () => {
      const r = await loginRaw(s, 'alice', PW);
      expect(r.status).toBe(200);
      const d = r.body.data;
      expect(d.token_type).toBe('Bearer');
      expect(d.expires_in).toBe(3600);
      expect(d.refresh_expires_in).toBe(7 * 24 * 3600);
      expect(d.refresh_token).toMatch(/^rt_[A-Za-z0-9_-]{40,}$/);
      const claims = JSON.parse(Buffer.from(d.access_token.split('.')[1], 'base64url').toString());
      expect(claims.exp - claims.iat).toBe(3600);
      expect(claims).toMatchObject({ sub: expect.any(String), login: 'alice', typ: 'access' });
      const [row] = await s.platform.store.db
        .select()
        .from(refreshTokens)
        .orderBy(desc(refreshTokens.id))
        .limit(1);
      // only the hash is stored, and it expires in 7 days
      expect(row!.hash).not.toContain(d.refresh_token);
      expect(Math.abs(row!.expiresAt.getTime() - Date.now() - 7 * 86_400_000)).toBeLessThan(60_000);
      const m = await me(d.access_token);
      expect(m.status).toBe(200);
      expect(m.body.data.login).toBe('alice');
      expect(m.body.data.last_login_at).not.toBeNull();
      const ok = await audits(s, 'auth.login');
      expect(ok.some((a) => a.actor === 'alice' && a.outcome === 'success')).toBe(true);
    });

    it('answers one uniform 401 for a bad password, an unknown login and a disabled identity', async () => {
      const bad = await loginRaw(s, 'alice', 'wrong password');
      const unknown = await loginRaw(s, 'nobody-here', 'wrong password');
      const svc = await s.request<AnyBody>('POST', '/api/v1/identities', {
        token: s.adminToken,
        body: { login: 'svc-login', kind: 'service' },
      });
      expect(svc.status).toBe(201);
      const service = await loginRaw(s, 'svc-login', 'anything at all');
      await s.request('PUT', '/api/v1/identities/erin', { token: s.adminToken, body: { disabled: true } });
      const disabled = await loginRaw(s, 'erin', PW);
      for (const r of [bad, unknown, service, disabled]) {
        expect(r.status).toBe(401);
        expect(r.body).toEqual({ error: { code: 'UNAUTHORIZED', message: 'invalid login or password' } });
      }
      // the audit trail says why, for the administrator
      const failed = await audits(s, 'auth.login_failed');
      const reasons = Object.fromEntries(
        failed.map((a) => [a.actor, (a.details as { reason: string }).reason]),
      );
      expect(reasons).toMatchObject({
        alice: 'bad_password',
        'nobody-here': 'unknown_login',
        'svc-login': 'no_password',
        erin: 'disabled',
      });
      expect(failed.every((a) => a.outcome === 'failure' && a.ip)).toBe(true);
    });

    it('spends comparable time on unknown logins as on wrong passwords', async () => {
      const time = async (login: string) => {
        const t = performance.now();
        expect((await loginRaw(s, login, 'not the password')).status).toBe(401);
        return performance.now() - t;
      };
      const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 5; i++) {
        known.push(await time('alice'));
        unknown.push(await time(`ghost-${i}`));
      }
      // without a dummy verification an unknown login answers in ~1 ms, a known one in tens of ms
      expect(median(unknown)).toBeGreaterThan(median(known) * 0.3);
    });

    it('validates the body', async () => {
      for (const body of [
        {},
        { login: 'alice' },
        { login: 'alice', password: PW, extra: 1 },
        { login: 1, password: PW },
        { login: 'ali\u0000ce', password: PW },
        { login: 'alice', password: '' },
      ]) {
        const r = await s.request<AnyBody>('POST', '/auth/login', { body });
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(['VALIDATION_ERROR', 'BAD_REQUEST']).toContain(r.body.error.code);
      }
      const noBody = await s.request<AnyBody>('POST', '/auth/login');
      expect(noBody.status).toBe(400);
    });

    it('limits attempts per client address with 429 and Retry-After, and audits it', async () => {
      // startTestServer's own admin login used the first of the 3 attempts
      expect((await loginRaw(limited, 'admin', 'wrong')).status).toBe(401);
      expect((await loginRaw(limited, 'admin', 'wrong')).status).toBe(401);
      const r = await loginRaw(limited, 'admin', ADMIN_PASSWORD);
      expect(r.status).toBe(429);
      expect(r.body.error.code).toBe('TOO_MANY_REQUESTS');
      const ra = Number(r.headers.get('retry-after'));
      expect(Number.isInteger(ra) && ra >= 1 && ra <= 60).toBe(true);
      expect((await loginRaw(limited, 'nobody', 'x')).status).toBe(429);
      // only the login is limited: the admin's token still works
      expect((await limited.request('GET', '/auth/me', { token: limited.adminToken })).status).toBe(200);
      const rows = await audits(limited, 'auth.login_failed');
      const rl = rows.filter((a) => (a.details as { reason?: string }).reason === 'rate_limited');
      expect(rl).toHaveLength(1); // logged once per burst, not once per refused attempt
      expect(rl[0]!.outcome).toBe('denied');
    });
  });

  describe('refresh and logout', () => {
    it('rotates refresh tokens; a reused one ends every session of the identity', async () => {
      const first = await pair('bob');
      const other = await pair('bob'); // a second session (another device)
      const r1 = await refresh(first.refresh_token);
      expect(r1.status).toBe(200);
      const second = r1.body.data;
      expect(second.refresh_token).not.toBe(first.refresh_token);
      expect((await me(second.access_token)).body.data.login).toBe('bob');
      // the rotated token is spent
      const reuse = await refresh(first.refresh_token);
      expect(reuse.status).toBe(401);
      expect(reuse.body.error.code).toBe('UNAUTHORIZED');
      // …and its reuse ended the new session and the other device's session too
      expect((await refresh(second.refresh_token)).status).toBe(401);
      expect((await refresh(other.refresh_token)).status).toBe(401);
      const rows = await audits(s, 'auth.refresh_reused');
      expect(rows[0]).toMatchObject({ actor: 'bob', outcome: 'denied' });
      // logging in again works
      expect((await refresh((await pair('bob')).refresh_token)).status).toBe(200);
    });

    it('refuses garbage, expired and malformed refresh tokens', async () => {
      expect((await refresh('rt_garbage')).status).toBe(401);
      expect((await refresh((await pair('alice')).access_token)).status).toBe(401);
      const p = await pair('alice');
      await s.platform.store.db
        .update(refreshTokens)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(eq(refreshTokens.hash, sha256Hex(p.refresh_token)));
      expect((await refresh(p.refresh_token)).status).toBe(401);
      const bad = await s.request<AnyBody>('POST', '/auth/refresh', { body: { refresh_token: '' } });
      expect(bad.status).toBe(400);
      expect((await s.request('POST', '/auth/refresh', { body: { token: 'x' } })).status).toBe(400);
    });

    it('logs out one session, or all of them', async () => {
      const a = await pair('carol');
      const b = await pair('carol');
      const c = await pair('carol');
      const out = await s.request('POST', '/auth/logout', {
        token: a.access_token,
        body: { refresh_token: a.refresh_token },
      });
      expect(out.status).toBe(204);
      const gone = await refresh(a.refresh_token);
      expect(gone.status).toBe(401);
      // a logged-out token is merely unknown: the other sessions live on
      const b2 = await refresh(b.refresh_token);
      expect(b2.status).toBe(200);
      // someone else's refresh token cannot be revoked
      const alice = await pair('alice');
      expect(
        (
          await s.request('POST', '/auth/logout', {
            token: b2.body.data.access_token,
            body: { refresh_token: alice.refresh_token },
          })
        ).status,
      ).toBe(204);
      expect((await refresh(alice.refresh_token)).status).toBe(200);
      // everything
      expect(
        (await s.request('POST', '/auth/logout', { token: c.access_token, body: { all: true } })).status,
      ).toBe(204);
      expect((await refresh(c.refresh_token)).status).toBe(401);
      expect((await refresh(b2.body.data.refresh_token)).status).toBe(401);
      // nothing to do is a 400; anonymous is a 401
      const empty = await s.request<AnyBody>('POST', '/auth/logout', { token: c.access_token, body: {} });
      expect(empty.status).toBe(400);
      expect(empty.body.error.code).toBe('VALIDATION_ERROR');
      expect((await s.request('POST', '/auth/logout', { body: { all: true } })).status).toBe(401);
    });
  });

  describe('/auth/me and access tokens', () => {
    it('describes the caller: identity, roles, grants and effective permissions', async () => {
      const { access_token } = await pair('alice');
      const r = await me(access_token);
      expect(r.status).toBe(200);
      const d = r.body.data;
      expect(d).toMatchObject({
        login: 'alice',
        display_name: 'alice',
        email: 'alice@example.com',
        kind: 'user',
        roles: ['viewer'],
        disabled: false,
        has_password: true,
        via: 'jwt',
      });
      expect(d.permissions.packs).toEqual(['read']);
      expect(d.permissions.identities).toBeUndefined();
      expect(d.grants.length).toBeGreaterThan(0);
      expect(JSON.stringify(r.body)).not.toMatch(/argon2|password_hash/);
      const admin = await me(s.adminToken);
      expect(admin.body.data.permissions.identities).toContain('delete');
      expect(admin.body.data.permissions.keys).toContain('decrypt');
    });

    it('refuses missing, garbage, forged, expired and non-access tokens with 401', async () => {
      const claims = { sub: '1', login: 'admin', typ: 'access' };
      const jwt = s.platform.api.jwt;
      const expired = jwt.sign(claims, { expiresIn: 60, clockTimestamp: Date.now() - 3_600_000 });
      const notAccess = jwt.sign({ ...claims, typ: 'refresh' });
      const unknownId = jwt.sign({ ...claims, sub: '987654' });
      const badSub = jwt.sign({ ...claims, sub: 'admin' });
      const forged = `${s.adminToken.split('.').slice(0, 2).join('.')}.${'A'.repeat(43)}`;
      for (const token of [undefined, 'garbage', 'a.b.c', expired, notAccess, unknownId, badSub, forged]) {
        const r = await s.request<AnyBody>('GET', '/auth/me', token ? { token } : {});
        expect(r.status, String(token)).toBe(401);
        expect(r.body.error.code).toBe('UNAUTHORIZED');
      }
      for (const authorization of ['Basic YWRtaW46eA==', 'Bearer', `Token ${s.adminToken}`]) {
        const r = await s.request<AnyBody>('GET', '/auth/me', { headers: { authorization } });
        expect(r.status, authorization).toBe(401);
      }
      // the same secret and claims, within its lifetime, is accepted
      expect((await s.request('GET', '/auth/me', { token: jwt.sign(claims) })).status).toBe(200);
    });

    it('a disabled identity can neither log in nor use its tokens or keys; re-enabled, it can', async () => {
      const p = await pair('dave');
      const key = await s.request<AnyBody>('POST', '/api/v1/api-keys', {
        token: p.access_token,
        body: { name: 'dave laptop' },
      });
      expect(key.status).toBe(201);
      const disable = await s.request<AnyBody>('PUT', '/api/v1/identities/dave', {
        token: s.adminToken,
        body: { disabled: true },
      });
      expect(disable.status).toBe(200);
      expect(disable.body.data.disabled).toBe(true);
      expect((await me(p.access_token)).status).toBe(401);
      expect((await refresh(p.refresh_token)).status).toBe(401);
      expect((await loginRaw(s, 'dave', PW)).status).toBe(401);
      expect(
        (await s.request('GET', '/auth/me', { headers: { 'x-api-key': key.body.data.key } })).status,
      ).toBe(401);
      await s.request('PUT', '/api/v1/identities/dave', { token: s.adminToken, body: { disabled: false } });
      expect((await loginRaw(s, 'dave', PW)).status).toBe(200);
      // the key was never revoked, only its identity disabled
      expect(
        (await s.request('GET', '/auth/me', { headers: { 'x-api-key': key.body.data.key } })).status,
      ).toBe(200);
      // but the sessions from before the disable are gone for good
      expect((await refresh(p.refresh_token)).status).toBe(401);
    });
  });

  describe('passwords', () => {
    it('changes the own password with the current one, ending other sessions', async () => {
      const p = await pair('frank');
      const wrong = await s.request<AnyBody>('PUT', '/auth/me/password', {
        token: p.access_token,
        body: { current_password: 'nope nope', new_password: 'another password' },
      });
      expect(wrong.status).toBe(400);
      expect(wrong.body.error.message).toMatch(/current_password/);
      const short = await s.request<AnyBody>('PUT', '/auth/me/password', {
        token: p.access_token,
        body: { current_password: PW, new_password: 'short' },
      });
      expect(short.status).toBe(400);
      const same = await s.request<AnyBody>('PUT', '/auth/me/password', {
        token: p.access_token,
        body: { current_password: PW, new_password: PW },
      });
      expect(same.status).toBe(400);
      const ok = await s.request<AnyBody>('PUT', '/auth/me/password', {
        token: p.access_token,
        body: { current_password: PW, new_password: 'a much better password' },
      });
      expect(ok.status).toBe(200);
      expect((await me(ok.body.data.access_token)).status).toBe(200);
      expect((await refresh(ok.body.data.refresh_token)).status).toBe(200);
      expect((await refresh(p.refresh_token)).status).toBe(401);
      expect((await loginRaw(s, 'frank', PW)).status).toBe(401);
      expect((await loginRaw(s, 'frank', 'a much better password')).status).toBe(200);
      expect((await audits(s, 'auth.password_changed'))[0]?.actor).toBe('frank');
    });

    it('refuses a password change for service accounts', async () => {
      const svc = await s.request<AnyBody>('POST', '/api/v1/identities', {
        token: s.adminToken,
        body: { login: 'svc-pw', kind: 'service', roles: ['viewer'] },
      });
      expect(svc.status).toBe(201);
      const key = await s.request<AnyBody>('POST', '/api/v1/api-keys', {
        token: s.adminToken,
        body: { name: 'k', identity: 'svc-pw' },
      });
      const r = await s.request<AnyBody>('PUT', '/auth/me/password', {
        headers: { 'x-api-key': key.body.data.key },
        body: { current_password: 'whatever1', new_password: 'whatever2' },
      });
      expect(r.status).toBe(409);
    });
  });

  describe('API keys as credentials', () => {
    it('authenticates with X-API-Key and with Bearer; revoked, deleted and expired keys get 401', async () => {
      const svc = await s.request<AnyBody>('POST', '/api/v1/identities', {
        token: s.adminToken,
        body: { login: 'ci-bot', kind: 'service', roles: ['operator'], display_name: 'CI' },
      });
      expect(svc.status).toBe(201);
      expect(svc.body.data).toMatchObject({ kind: 'service', has_password: false });
      const created = await s.request<AnyBody>('POST', '/api/v1/api-keys', {
        token: s.adminToken,
        body: { name: 'pipeline', identity: 'ci-bot', expires_in_days: 30 },
      });
      expect(created.status).toBe(201);
      const key: string = created.body.data.key;
      expect(key.startsWith(created.body.data.prefix)).toBe(true);
      // stored hashed, never in clear
      const [row] = await s.platform.store.db
        .select()
        .from(apiKeys)
        .where(eq(apiKeys.id, created.body.data.id));
      expect(row!.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(row)).not.toContain(key);

      const viaHeader = await s.request<AnyBody>('GET', '/auth/me', { headers: { 'x-api-key': key } });
      expect(viaHeader.status).toBe(200);
      expect(viaHeader.body.data).toMatchObject({ login: 'ci-bot', kind: 'service', via: 'api_key' });
      const viaBearer = await s.request<AnyBody>('GET', '/auth/me', { token: key });
      expect(viaBearer.status).toBe(200);
      expect(viaBearer.body.data.login).toBe('ci-bot');
      // the key carries its identity's rights: operator reads triggers but cannot create them
      expect((await s.request('GET', '/api/v1/triggers', { token: key })).status).toBe(200);
      expect(
        (await s.request('POST', '/api/v1/triggers', { token: key, body: { ref: 'core.x' } })).status,
      ).toBe(403);
      // a key is never shown again
      const got = await s.request<AnyBody>('GET', `/api/v1/api-keys/${created.body.data.id}`, {
        token: s.adminToken,
      });
      expect(got.body.data.key).toBeUndefined();
      expect(got.body.data.last_used_at).not.toBeNull();
      expect(JSON.stringify(got.body)).not.toContain(key);

      for (const bad of [`${key}x`, 'atk_nothing_here', 'not-a-key']) {
        expect((await s.request('GET', '/auth/me', { headers: { 'x-api-key': bad } })).status, bad).toBe(401);
      }
      expect((await s.request('GET', '/auth/me', { token: 'atk_nothing_here' })).status).toBe(401);

      const revoke = await s.request<AnyBody>('POST', `/api/v1/api-keys/${created.body.data.id}/revoke`, {
        token: s.adminToken,
      });
      expect(revoke.status).toBe(200);
      expect(revoke.body.data.status).toBe('revoked');
      expect((await s.request('GET', '/auth/me', { headers: { 'x-api-key': key } })).status).toBe(401);
      expect((await s.request('GET', '/auth/me', { token: key })).status).toBe(401);

      const k2 = await s.request<AnyBody>('POST', '/api/v1/api-keys', {
        token: s.adminToken,
        body: { name: 'pipeline 2', identity: 'ci-bot' },
      });
      expect((await s.request('GET', '/auth/me', { token: k2.body.data.key })).status).toBe(200);
      expect(
        (await s.request('DELETE', `/api/v1/api-keys/${k2.body.data.id}`, { token: s.adminToken })).status,
      ).toBe(204);
      expect((await s.request('GET', '/auth/me', { token: k2.body.data.key })).status).toBe(401);

      const k3 = await s.request<AnyBody>('POST', '/api/v1/api-keys', {
        token: s.adminToken,
        body: { name: 'pipeline 3', identity: 'ci-bot', expires_in_days: 1 },
      });
      expect((await s.request('GET', '/auth/me', { token: k3.body.data.key })).status).toBe(200);
      await s.platform.store.db
        .update(apiKeys)
        .set({ expiresAt: new Date(Date.now() - 1000) })
        .where(and(eq(apiKeys.id, k3.body.data.id)));
      expect((await s.request('GET', '/auth/me', { token: k3.body.data.key })).status).toBe(401);
      const listed = await s.request<AnyBody>('GET', '/api/v1/api-keys?identity=ci-bot', {
        token: s.adminToken,
      });
      expect(listed.body.data.map((k: AnyBody) => [k.name, k.status])).toEqual([
        ['pipeline 3', 'expired'],
        ['pipeline', 'revoked'],
      ]);
    });
  });
});
