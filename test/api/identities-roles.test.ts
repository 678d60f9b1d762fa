import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const PW = 'long enough password';

describeBackend('identities, roles and API-key management', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => s?.stop());

  const as = (token: string) => ({
    get: (p: string) => s.request<AnyBody>('GET', p, { token }),
    post: (p: string, body?: unknown) => s.request<AnyBody>('POST', p, { token, body }),
    put: (p: string, body: unknown) => s.request<AnyBody>('PUT', p, { token, body }),
    del: (p: string) => s.request<AnyBody>('DELETE', p, { token }),
  });
  const admin = () => as(s.adminToken);
  const createUser = async (login: string, roles: string[] = [], extra: Record<string, unknown> = {}) => {
    const r = await admin().post('/api/v1/identities', { login, password: PW, roles, ...extra });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data;
  };
  const tokenOf = (login: string, password = PW) => s.login(login, password);

  describe('identities', () => {
    it("deletes a user's own keys with the user, so a new user of the same login does not inherit them", async () => {
      await createUser('kayla', ['editor']);
      const t = await tokenOf('kayla');
      const k = await as(t).post('/api/v1/keys', {
        name: 'mine',
        value: 's3cret',
        scope: 'user',
        encrypted: true,
      });
      expect(k.status, JSON.stringify(k.body)).toBe(201);
      expect((await admin().del('/api/v1/identities/kayla')).status).toBe(204);
      await createUser('kayla', ['editor']);
      const again = await as(await tokenOf('kayla')).get('/api/v1/keys?scope=user');
      expect(again.status).toBe(200);
      expect(again.body.data).toEqual([]);
    });

    it('creates users and service accounts and never shows password hashes', async () => {
      const u = await createUser('ivy', ['viewer', 'operator'], {
        display_name: 'Ivy Example',
        email: 'ivy@example.com',
      });
      expect(u).toMatchObject({
        login: 'ivy',
        display_name: 'Ivy Example',
        email: 'ivy@example.com',
        kind: 'user',
        roles: ['operator', 'viewer'],
        disabled: false,
        has_password: true,
        last_login_at: null,
      });
      const svc = await admin().post('/api/v1/identities', { login: 'deployer', kind: 'service' });
      expect(svc.status).toBe(201);
      expect(svc.body.data).toMatchObject({
        kind: 'service',
        has_password: false,
        roles: [],
        display_name: 'deployer',
      });
      for (const p of ['/api/v1/identities', `/api/v1/identities/${u.id}`, '/api/v1/identities/ivy']) {
        const r = await admin().get(p);
        expect(r.status).toBe(200);
        expect(JSON.stringify(r.body)).not.toMatch(/argon2|password_hash|passwordHash/);
      }
      expect((await admin().get(`/api/v1/identities/${u.id}`)).body.data.login).toBe('ivy');
      expect((await admin().get('/api/v1/identities/ivy')).body.data.id).toBe(u.id);
      expect((await admin().get('/api/v1/identities/nobody')).status).toBe(404);
      expect((await admin().get('/api/v1/identities/987654')).status).toBe(404);
      expect((await admin().get('/api/v1/identities/99999999999999999999')).status).toBe(404);
      for (const bad of ['has%20space', 'a%00b', `${'x'.repeat(101)}`]) {
        const r = await admin().get(`/api/v1/identities/${bad}`);
        expect(r.status, bad).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
      const audit = await s.platform.store.db
        .select()
        .from(auditLog)
        .where(eq(auditLog.action, 'identity.create'));
      expect(audit.map((a) => a.resourceRef)).toEqual(expect.arrayContaining(['ivy', 'deployer']));
    });

    it('refuses invalid identities with precise 4xx', async () => {
      const cases: [unknown, number, RegExp][] = [
        [{ login: 'nopw' }, 400, /password/],
        [{ login: 'shortpw', password: 'short' }, 400, /password/],
        [{ login: 'svcpw', kind: 'service', password: PW }, 400, /service account/],
        [{ login: '12345', password: PW }, 400, /login/],
        [{ login: 'has space', password: PW }, 400, /login/],
        [{ login: '', password: PW }, 400, /login/],
        [{ login: 'bademail', password: PW, email: 'not-an-email' }, 400, /email/],
        [{ login: 'badkind', password: PW, kind: 'robot' }, 400, /kind/],
        [{ login: 'extra', password: PW, password_hash: 'x' }, 400, /password_hash/],
        [{ login: 'dupe-roles', password: PW, roles: ['viewer', 'viewer'] }, 400, /roles/],
        [{ login: 'ghostrole', password: PW, roles: ['viewer', 'ghost', 'phantom'] }, 404, /ghost/],
        [{ login: 'admin', password: PW }, 409, /already exists/],
        [{ login: 'ADMIN', password: PW }, 409, /similar/],
      ];
      for (const [body, status, msg] of cases) {
        const r = await admin().post('/api/v1/identities', body);
        expect(r.status, JSON.stringify(body)).toBe(status);
        expect(r.body.error.message, JSON.stringify(body)).toMatch(msg);
      }
      // nothing of the above was created
      for (const login of ['nopw', 'shortpw', 'svcpw', 'ghostrole', 'dupe-roles'])
        expect((await admin().get(`/api/v1/identities/${login}`)).status).toBe(404);
      const ghost = await admin().post('/api/v1/identities', { login: 'g2', password: PW, roles: ['ghost'] });
      expect(ghost.body.error.details).toMatchObject({ missing: ['ghost'] });
    });

    it('lists with pagination, search and filters', async () => {
      for (const n of ['list-a', 'list-b', 'list-c'])
        await createUser(n, ['viewer'], { email: `${n}@corp.test` });
      const page1 = await admin().get('/api/v1/identities?search=list-&page_size=2');
      expect(page1.status).toBe(200);
      expect(page1.body.data.map((i: AnyBody) => i.login)).toEqual(['list-a', 'list-b']);
      expect(page1.body.pagination).toEqual({ page: 1, page_size: 2, total_items: 3, total_pages: 2 });
      const page2 = await admin().get('/api/v1/identities?search=list-&page_size=2&page=2');
      expect(page2.body.data.map((i: AnyBody) => i.login)).toEqual(['list-c']);
      const byMail = await admin().get('/api/v1/identities?search=CORP.TEST');
      expect(byMail.body.pagination.total_items).toBe(3);
      const svc = await admin().get('/api/v1/identities?kind=service');
      expect(svc.body.data.every((i: AnyBody) => i.kind === 'service')).toBe(true);
      const admins = await admin().get('/api/v1/identities?role=admin');
      expect(admins.body.data.map((i: AnyBody) => i.login)).toEqual(['admin']);
      const pct = await admin().get('/api/v1/identities?search=%25');
      expect(pct.body.data).toEqual([]);
      for (const q of ['page=0', 'page_size=1001', 'kind=robot', 'disabled=maybe', 'bogus=1']) {
        const r = await admin().get(`/api/v1/identities?${q}`);
        expect(r.status, q).toBe(400);
      }
    });

    it('updates identities: profile, roles (effective at once), password reset, disable', async () => {
      const u = await createUser('jack', ['viewer']);
      const jack = await s.request<AnyBody>('POST', '/auth/login', { body: { login: 'jack', password: PW } });
      const jackToken = jack.body.data.access_token;
      expect((await as(jackToken).get('/api/v1/roles')).status).toBe(403);

      const up = await admin().put(`/api/v1/identities/${u.id}`, {
        display_name: 'Jack J',
        email: null,
        roles: ['editor'],
      });
      expect(up.status).toBe(200);
      expect(up.body.data).toMatchObject({ display_name: 'Jack J', email: null, roles: ['editor'] });
      // the new role is effective on the old token right away
      const m = await as(jackToken).get('/auth/me');
      expect(m.body.data.roles).toEqual(['editor']);
      expect(m.body.data.permissions.packs).toEqual(['read', 'create', 'update', 'delete']);

      // a reset password ends jack's sessions
      const reset = await admin().put('/api/v1/identities/jack', { password: 'reset by admin' });
      expect(reset.status).toBe(200);
      expect(
        (await s.request('POST', '/auth/refresh', { body: { refresh_token: jack.body.data.refresh_token } }))
          .status,
      ).toBe(401);
      expect((await s.request('POST', '/auth/login', { body: { login: 'jack', password: PW } })).status).toBe(
        401,
      );
      await tokenOf('jack', 'reset by admin');

      for (const [body, status] of [
        [{}, 400],
        [{ login: 'renamed' }, 400],
        [{ password: 'short' }, 400],
        [{ roles: ['nope'] }, 404],
        [{ disabled: 'yes' }, 400],
      ] as const) {
        const r = await admin().put('/api/v1/identities/jack', body);
        expect(r.status, JSON.stringify(body)).toBe(status);
      }
      expect((await admin().put('/api/v1/identities/ghost', { display_name: 'x' })).status).toBe(404);
      const svcPw = await admin().put('/api/v1/identities/deployer', { password: PW });
      expect(svcPw.status).toBe(400);
    });

    it('protects the caller and the last admin', async () => {
      const meId = (await admin().get('/auth/me')).body.data.id;
      const self = await admin().del(`/api/v1/identities/${meId}`);
      expect(self.status).toBe(409);
      expect(self.body.error.message).toMatch(/yourself/);
      expect((await admin().put('/api/v1/identities/admin', { disabled: true })).status).toBe(409);

      // a superuser that is not an admin (a custom role with every permission)
      expect(
        (await admin().post('/api/v1/roles', { name: 'root', grants: [{ resource: '*', actions: ['*'] }] }))
          .status,
      ).toBe(201);
      await createUser('superuser', ['root']);
      const su = as(await tokenOf('superuser'));
      for (const [status, r] of [
        [409, await su.del('/api/v1/identities/admin')],
        [409, await su.put('/api/v1/identities/admin', { disabled: true })],
        [409, await su.put('/api/v1/identities/admin', { roles: ['viewer'] })],
      ] as const) {
        expect(r.status).toBe(status);
        expect(r.body.error.message).toMatch(/last enabled admin/);
      }
      // with a second admin, the first may step down
      await createUser('admin2', ['admin']);
      const demote = await admin().put('/api/v1/identities/admin', { roles: ['admin', 'viewer'] });
      expect(demote.status).toBe(200);
      const a2 = as(await tokenOf('admin2'));
      const drop = await admin().put('/api/v1/identities/admin2', { roles: ['viewer'] });
      expect(drop.status).toBe(200);
      // admin2 is no longer an admin: its old token lost the rights at once
      expect((await a2.get('/api/v1/identities')).status).toBe(403);
      await admin().put('/api/v1/identities/admin2', { roles: ['admin'] });
      expect((await a2.del('/api/v1/identities/superuser')).status).toBe(204);
      expect((await a2.get('/api/v1/identities/superuser')).status).toBe(404);
      expect((await a2.del('/api/v1/identities/superuser')).status).toBe(404);
      expect((await a2.del('/api/v1/identities/admin2')).status).toBe(409);
      expect((await admin().del('/api/v1/identities/admin2')).status).toBe(204);
      expect((await a2.get('/auth/me')).status).toBe(401);
    });

    it('nobody hands out or takes over more rights than they hold', async () => {
      expect(
        (
          await admin().post('/api/v1/roles', {
            name: 'user-manager',
            description: 'manages users',
            grants: [
              { resource: 'identities', actions: ['*'] },
              { resource: 'roles', actions: ['read', 'create'] },
              { resource: 'api_keys', actions: ['create'] },
              { resource: 'packs', actions: ['read'] },
            ],
          })
        ).status,
      ).toBe(201);
      await createUser('manager', ['user-manager']);
      const m = as(await tokenOf('manager'));
      // cannot give roles with more than it holds, nor create such roles
      const escalate = await m.post('/api/v1/identities', { login: 'evil', password: PW, roles: ['admin'] });
      expect(escalate.status).toBe(403);
      expect(escalate.body.error.details.missing).toContain('keys:decrypt');
      expect(
        (await m.post('/api/v1/identities', { login: 'evil', password: PW, roles: ['viewer'] })).status,
      ).toBe(403);
      const role = await m.post('/api/v1/roles', {
        name: 'sneaky',
        grants: [{ resource: 'keys', actions: ['decrypt'] }],
      });
      expect(role.status).toBe(403);
      // cannot reset the admin's password, disable it or mint it a key
      expect((await m.put('/api/v1/identities/admin', { password: 'taken over!' })).status).toBe(403);
      expect((await m.put('/api/v1/identities/admin', { display_name: 'x' })).status).toBe(403);
      expect((await m.del('/api/v1/identities/admin')).status).toBe(403);
      expect((await m.post('/api/v1/api-keys', { name: 'backdoor', identity: 'admin' })).status).toBe(403);
      // within its own rights it works
      const ok = await m.post('/api/v1/roles', {
        name: 'pack-reader',
        grants: [{ resource: 'packs', actions: ['read'] }],
      });
      expect(ok.status).toBe(201);
      const u = await m.post('/api/v1/identities', {
        login: 'packreader',
        password: PW,
        roles: ['pack-reader'],
      });
      expect(u.status).toBe(201);
      expect((await m.put('/api/v1/identities/packreader', { display_name: 'PR' })).status).toBe(200);
      const k = await m.post('/api/v1/api-keys', { name: 'for pr', identity: 'packreader' });
      expect(k.status).toBe(201);
      expect(k.body.data.created_by).toBe('manager');
      expect((await m.del('/api/v1/identities/packreader')).status).toBe(204);
    });
  });

  describe('roles', () => {
    it('lists and shows the built-in roles', async () => {
      const r = await admin().get('/api/v1/roles?builtin=true');
      expect(r.status).toBe(200);
      expect(r.body.data.map((x: AnyBody) => x.name)).toEqual(['admin', 'editor', 'operator', 'viewer']);
      const op = await admin().get('/api/v1/roles/operator');
      expect(op.body.data).toMatchObject({ name: 'operator', builtin: true });
      expect(op.body.data.grants).toContainEqual({
        resource: 'executions',
        actions: ['read', 'execute', 'cancel'],
      });
      expect((await admin().get('/api/v1/roles/admin')).body.data.member_count).toBeGreaterThanOrEqual(1);
      expect((await admin().get('/api/v1/roles/nope')).status).toBe(404);
      expect((await admin().get('/api/v1/roles/Not%20A%20Name')).status).toBe(400);
      expect((await admin().get('/api/v1/roles?search=%00')).status).toBe(400);
      const search = await admin().get('/api/v1/roles?search=CANCELS&page_size=1');
      expect(search.body.data.map((x: AnyBody) => x.name)).toEqual(['operator']);
    });

    it('creates, normalises, updates and deletes custom roles', async () => {
      const c = await admin().post('/api/v1/roles', {
        name: 'runner',
        description: 'runs things',
        grants: [
          { resource: 'executions', actions: ['execute', 'read'] },
          { resource: 'executions', actions: ['read', 'cancel'] },
          { resource: 'actions', actions: ['read', '*'] },
        ],
      });
      expect(c.status).toBe(201);
      expect(c.body.data).toMatchObject({ name: 'runner', builtin: false, member_count: 0 });
      expect(c.body.data.grants).toEqual([
        { resource: 'executions', actions: ['read', 'execute', 'cancel'] },
        { resource: 'actions', actions: ['*'] },
      ]);
      await createUser('kate', ['runner']);
      const kate = as(await tokenOf('kate'));
      expect((await kate.get('/api/v1/triggers')).status).toBe(403);
      const up = await admin().put('/api/v1/roles/runner', {
        grants: [{ resource: 'triggers', actions: ['read'] }],
      });
      expect(up.status).toBe(200);
      expect(up.body.data.member_count).toBe(1);
      // effective for kate's existing token at once
      expect((await kate.get('/api/v1/triggers')).status).toBe(200);
      expect(
        (await admin().put('/api/v1/roles/runner', { description: 'reads triggers' })).body.data.grants,
      ).toEqual([{ resource: 'triggers', actions: ['read'] }]);

      const inUse = await admin().del('/api/v1/roles/runner');
      expect(inUse.status).toBe(409);
      expect(inUse.body.error.details).toMatchObject({ members: ['kate'], member_count: 1 });
      expect((await admin().del('/api/v1/roles/runner?force=true')).status).toBe(204);
      expect((await kate.get('/api/v1/triggers')).status).toBe(403);
      expect((await admin().get('/api/v1/identities/kate')).body.data.roles).toEqual([]);
      expect((await admin().del('/api/v1/roles/runner')).status).toBe(404);
      const unused = await admin().post('/api/v1/roles', { name: 'unused', grants: [] });
      expect(unused.status).toBe(201);
      expect((await admin().del('/api/v1/roles/unused')).status).toBe(204);
    });

    it('refuses invalid roles and changes to built-in ones', async () => {
      const cases: [string, string, unknown, number][] = [
        ['POST', '/api/v1/roles', { name: 'r1', grants: [{ resource: 'planets', actions: ['read'] }] }, 400],
        ['POST', '/api/v1/roles', { name: 'r1', grants: [{ resource: 'packs', actions: ['fly'] }] }, 400],
        ['POST', '/api/v1/roles', { name: 'r1', grants: [{ resource: 'packs', actions: [] }] }, 400],
        [
          'POST',
          '/api/v1/roles',
          { name: 'r1', grants: [{ resource: 'packs', actions: ['read'], x: 1 }] },
          400,
        ],
        ['POST', '/api/v1/roles', { name: 'r1' }, 400],
        ['POST', '/api/v1/roles', { name: 'Bad Name', grants: [] }, 400],
        ['POST', '/api/v1/roles', { name: 'viewer', grants: [] }, 409],
        ['PUT', '/api/v1/roles/viewer', { description: 'mine now' }, 409],
        ['PUT', '/api/v1/roles/admin', { grants: [] }, 409],
        ['DELETE', '/api/v1/roles/editor', undefined, 409],
        ['DELETE', '/api/v1/roles/editor?force=true', undefined, 409],
        ['PUT', '/api/v1/roles/ghost', { description: 'x' }, 404],
        ['PUT', '/api/v1/roles/viewer', {}, 400],
        ['DELETE', '/api/v1/roles/x?force=maybe', undefined, 400],
      ];
      for (const [method, p, body, status] of cases) {
        const r = await s.request<AnyBody>(method, p, { token: s.adminToken, body });
        expect(r.status, `${method} ${p} ${JSON.stringify(body)}`).toBe(status);
        expect(r.body.error.code).toBeTruthy();
      }
      expect((await admin().get('/api/v1/roles/viewer')).body.data.description).not.toBe('mine now');
      expect((await admin().get('/api/v1/roles/r1')).status).toBe(404);
    });
  });

  describe('API-key management', () => {
    it('is self-service for own keys; others need api_keys rights', async () => {
      await createUser('liam', ['viewer']);
      await createUser('mia', ['viewer']);
      const liam = as(await tokenOf('liam'));
      const mia = as(await tokenOf('mia'));
      const k = await liam.post('/api/v1/api-keys', { name: 'laptop' });
      expect(k.status).toBe(201);
      expect(k.body.data).toMatchObject({
        name: 'laptop',
        identity: 'liam',
        status: 'active',
        expires_at: null,
      });
      expect(k.body.data.key).toMatch(/^atk_/);
      expect((await liam.post('/api/v1/api-keys', { name: 'laptop' })).status).toBe(409);
      const exp = await liam.post('/api/v1/api-keys', { name: 'temp', expires_in_days: 2 });
      expect(new Date(exp.body.data.expires_at).getTime() - Date.now()).toBeGreaterThan(47 * 3600_000);
      // a viewer cannot create keys for others
      expect((await liam.post('/api/v1/api-keys', { name: 'x', identity: 'mia' })).status).toBe(403);
      expect((await liam.post('/api/v1/api-keys', { name: 'x', identity: 'nobody' })).status).toBe(404);
      for (const body of [
        {},
        { name: '' },
        { name: 'x', expires_in_days: 0 },
        { name: 'x', expires_in_days: 1.5 },
        { name: 'x', key: 'mine' },
      ])
        expect((await liam.post('/api/v1/api-keys', body)).status, JSON.stringify(body)).toBe(400);

      // mia sees only her own (none), and liam's keys are invisible to her
      const miaList = await mia.get('/api/v1/api-keys');
      expect(miaList.status).toBe(200);
      expect(miaList.body.data).toEqual([]);
      expect((await mia.get('/api/v1/api-keys?identity=liam')).status).toBe(403);
      expect((await mia.get(`/api/v1/api-keys/${k.body.data.id}`)).status).toBe(404);
      expect((await mia.del(`/api/v1/api-keys/${k.body.data.id}`)).status).toBe(404);
      expect((await mia.post(`/api/v1/api-keys/${k.body.data.id}/revoke`)).status).toBe(404);

      const liamList = await liam.get('/api/v1/api-keys');
      expect(liamList.body.data.map((x: AnyBody) => x.name)).toEqual(['temp', 'laptop']);
      expect(liamList.body.data.every((x: AnyBody) => x.key === undefined)).toBe(true);
      expect(
        (await liam.get('/api/v1/api-keys?identity=liam&status=active')).body.pagination.total_items,
      ).toBe(2);
      // admins see everybody's
      const all = await admin().get('/api/v1/api-keys?identity=liam');
      expect(all.body.pagination.total_items).toBe(2);
      const liamId = (await admin().get('/api/v1/identities/liam')).body.data.id;
      expect((await admin().get(`/api/v1/api-keys?identity=${liamId}`)).body.pagination.total_items).toBe(2);
      expect((await liam.get(`/api/v1/api-keys?identity=${liamId}`)).body.pagination.total_items).toBe(2);
      expect((await admin().get('/api/v1/api-keys?status=bogus')).status).toBe(400);

      // revoke is idempotent and the key stays listed; delete removes it
      const rv = await liam.post(`/api/v1/api-keys/${k.body.data.id}/revoke`);
      expect(rv.status).toBe(200);
      expect(rv.body.data.status).toBe('revoked');
      const again = await liam.post(`/api/v1/api-keys/${k.body.data.id}/revoke`);
      expect(again.body.data.revoked_at).toBe(rv.body.data.revoked_at);
      expect(
        (await liam.get('/api/v1/api-keys?status=revoked')).body.data.map((x: AnyBody) => x.name),
      ).toEqual(['laptop']);
      // the name is free again once the old key is revoked
      expect((await liam.post('/api/v1/api-keys', { name: 'laptop' })).status).toBe(201);
      expect((await admin().del(`/api/v1/api-keys/${exp.body.data.id}`)).status).toBe(204);
      expect((await liam.get(`/api/v1/api-keys/${exp.body.data.id}`)).status).toBe(404);
      expect((await liam.get('/api/v1/api-keys/0')).status).toBe(400);
      expect((await liam.get('/api/v1/api-keys/abc')).status).toBe(400);

      // a reader of all keys may look but not revoke others'
      await admin().post('/api/v1/roles', {
        name: 'key-auditor',
        grants: [{ resource: 'api_keys', actions: ['read'] }],
      });
      await createUser('nina', ['key-auditor']);
      const nina = as(await tokenOf('nina'));
      expect((await nina.get(`/api/v1/api-keys/${k.body.data.id}`)).status).toBe(200);
      expect((await nina.post(`/api/v1/api-keys/${k.body.data.id}/revoke`)).status).toBe(403);
      expect((await nina.del(`/api/v1/api-keys/${k.body.data.id}`)).status).toBe(403);

      // a disabled identity gets no new keys; a deleted one takes its keys with it
      await admin().put('/api/v1/identities/mia', { disabled: true });
      expect((await admin().post('/api/v1/api-keys', { name: 'x', identity: 'mia' })).status).toBe(409);
      const liamKey = (await liam.post('/api/v1/api-keys', { name: 'ci' })).body.data.key;
      expect((await s.request('GET', '/auth/me', { token: liamKey })).status).toBe(200);
      expect((await admin().del('/api/v1/identities/liam')).status).toBe(204);
      expect((await s.request('GET', '/auth/me', { token: liamKey })).status).toBe(401);
      expect((await admin().get('/api/v1/api-keys?identity=liam')).body.data).toEqual([]);
    });
  });
});
