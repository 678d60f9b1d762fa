// The actions API over real HTTP: create/read/update/delete, every validation rule, filters,
// pagination, and the refusal to write workflow actions here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actions, packs } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

async function createPack(s: TestServer, ref: string): Promise<void> {
  await s.platform.store.db
    .insert(packs)
    .values({ ref, label: ref, version: '1.0.0', source: { type: 'api' } })
    .onConflictDoNothing();
}

describeBackend('actions API', () => {
  let s: TestServer;
  let token: string;
  const post = (body: unknown) => s.request<AnyBody>('POST', '/api/v1/actions', { token, body });
  const put = (ref: string, body: unknown) =>
    s.request<AnyBody>('PUT', `/api/v1/actions/${ref}`, { token, body });
  const get = (path: string) => s.request<AnyBody>('GET', path, { token });
  const countActions = async () =>
    (await s.platform.store.db.select({ id: actions.id }).from(actions)).length;

  beforeAll(async () => {
    s = await startTestServer();
    token = s.adminToken;
    await createPack(s, 'acts');
    await createPack(s, 'tools');
  });
  afterAll(async () => s?.stop());

  describe('CRUD', () => {
    it('creates an action with every field and reads it back', async () => {
      const body = {
        ref: 'acts.deploy',
        pack_ref: 'acts',
        label: 'Deploy',
        description: 'Deploys a service',
        runner: 'python-script',
        entry_point: 'scripts/deploy.py',
        param_schema: {
          type: 'object',
          properties: { service: { type: 'string' }, env: { type: 'string', enum: ['dev', 'prod'] } },
          required: ['service'],
        },
        out_schema: { type: 'object', properties: { ok: { type: 'boolean' } } },
        tags: ['deploy', 'ops'],
        enabled: true,
        timeout_seconds: 600,
        retry_policy: {
          count: 3,
          delay: 5,
          backoff: 'exponential',
          max_delay: 60,
          on: ['failed', 'timeout'],
        },
        concurrency_policy: { limit: 1, action: 'delay', group_by: ['service'] },
        meta: { env_params: ['env'] },
      };
      const r = await post(body);
      expect(r.status).toBe(201);
      const { pack_ref: _p, ...rest } = body;
      expect(r.body.data).toMatchObject({ ...rest, pack_ref: 'acts', name: 'deploy' });
      expect(typeof r.body.data.id).toBe('number');
      const g = await get('/api/v1/actions/acts.deploy');
      expect(g.status).toBe(200);
      expect(g.body.data).toEqual(r.body.data);
    });

    it('fills defaults for a minimal action', async () => {
      const r = await post({ ref: 'acts.minimal', runner: 'noop' });
      expect(r.status).toBe(201);
      expect(r.body.data).toMatchObject({
        ref: 'acts.minimal',
        pack_ref: 'acts',
        name: 'minimal',
        label: 'minimal',
        description: '',
        entry_point: '',
        param_schema: {},
        out_schema: null,
        tags: [],
        enabled: true,
        timeout_seconds: null,
        retry_policy: null,
        concurrency_policy: null,
        meta: {},
      });
    });

    it('updates partially and clears nullable fields with null', async () => {
      const r = await put('acts.deploy', { label: 'Deploy v2', timeout_seconds: null, retry_policy: null });
      expect(r.status).toBe(200);
      expect(r.body.data).toMatchObject({
        label: 'Deploy v2',
        description: 'Deploys a service',
        timeout_seconds: null,
        retry_policy: null,
        concurrency_policy: { limit: 1, action: 'delay', group_by: ['service'] },
        runner: 'python-script',
      });
      const swap = await put('acts.deploy', { runner: 'local-shell-cmd', entry_point: '' });
      expect(swap.status).toBe(200);
      expect(swap.body.data.runner).toBe('local-shell-cmd');
    });

    it('404s unknown actions on get, update and delete', async () => {
      for (const [m, body] of [
        ['GET', undefined],
        ['PUT', { label: 'x' }],
        ['DELETE', undefined],
      ] as const) {
        const r = await s.request<AnyBody>(m, '/api/v1/actions/acts.ghost', { token, body });
        expect(r.status, m).toBe(404);
        expect(r.body.error.code).toBe('NOT_FOUND');
      }
    });

    it('409s a duplicate ref and 404s an unknown pack', async () => {
      const dup = await post({ ref: 'acts.minimal', runner: 'echo' });
      expect(dup.status).toBe(409);
      expect(dup.body.error.code).toBe('CONFLICT');
      const nopack = await post({ ref: 'nopack.x', runner: 'noop' });
      expect(nopack.status).toBe(404);
      expect(nopack.body.error.message).toContain('nopack');
    });

    it('deletes an action', async () => {
      await post({ ref: 'acts.temp', runner: 'noop' });
      const r = await s.request<AnyBody>('DELETE', '/api/v1/actions/acts.temp', { token });
      expect(r.status).toBe(204);
      expect((await get('/api/v1/actions/acts.temp')).status).toBe(404);
    });

    it('refuses to delete an action used by a rule', async () => {
      await post({ ref: 'acts.target', runner: 'noop' });
      await s.request('POST', '/api/v1/triggers', { token, body: { ref: 'acts.tick' } });
      const rule = await s.request<AnyBody>('POST', '/api/v1/rules', {
        token,
        body: { ref: 'acts.on_tick', trigger_ref: 'acts.tick', action_ref: 'acts.target' },
      });
      expect(rule.status).toBe(201);
      const r = await s.request<AnyBody>('DELETE', '/api/v1/actions/acts.target', { token });
      expect(r.status).toBe(409);
      expect(r.body.error.details.rules).toEqual(['acts.on_tick']);
      expect((await get('/api/v1/actions/acts.target')).status).toBe(200);
    });

    it('refuses runner workflow with a pointer to /api/v1/workflows', async () => {
      const r = await post({ ref: 'acts.wf', runner: 'workflow' });
      expect(r.status).toBe(409);
      expect(r.body.error.message).toContain('/api/v1/workflows');
      const change = await put('acts.minimal', { runner: 'workflow' });
      expect(change.status).toBe(409);
      expect((await get('/api/v1/actions/acts.minimal')).body.data.runner).toBe('noop');
    });
  });

  describe('validation', () => {
    it('rejects bad bodies with 400 and changes nothing', async () => {
      const before = await countActions();
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ['missing runner', { ref: 'acts.v' }, /runner/],
        ['unknown runner', { ref: 'acts.v', runner: 'perl' }, /unknown runner 'perl'/],
        ['bad ref', { ref: 'Acts.v', runner: 'noop' }, /ref/],
        ['ref too long', { ref: `acts.${'x'.repeat(300)}`, runner: 'noop' }, /ref/],
        ['unknown field', { ref: 'acts.v', runner: 'noop', command: 'ls' }, /command/],
        ['empty label', { ref: 'acts.v', runner: 'noop', label: '' }, /label/],
        ['script without entry point', { ref: 'acts.v', runner: 'local-shell-script' }, /entry_point/],
        [
          'absolute entry point',
          { ref: 'acts.v', runner: 'node-script', entry_point: '/etc/x.js' },
          /relative/,
        ],
        [
          'escaping entry point',
          { ref: 'acts.v', runner: 'python-script', entry_point: 'a/../../x.py' },
          /\.\./,
        ],
        [
          'invalid param_schema',
          { ref: 'acts.v', runner: 'noop', param_schema: { type: 'nope' } },
          /param_schema/,
        ],
        [
          'scalar param_schema',
          { ref: 'acts.v', runner: 'noop', param_schema: { type: 'integer' } },
          /object/,
        ],
        [
          'invalid out_schema',
          { ref: 'acts.v', runner: 'noop', out_schema: { required: 'x' } },
          /out_schema/,
        ],
        ['timeout 0', { ref: 'acts.v', runner: 'noop', timeout_seconds: 0 }, /timeout_seconds/],
        ['timeout too big', { ref: 'acts.v', runner: 'noop', timeout_seconds: 604_801 }, /timeout_seconds/],
        ['timeout fractional', { ref: 'acts.v', runner: 'noop', timeout_seconds: 1.5 }, /timeout_seconds/],
        [
          'retry count too big',
          { ref: 'acts.v', runner: 'noop', retry_policy: { count: 101 } },
          /retry_policy/,
        ],
        ['retry without count', { ref: 'acts.v', runner: 'noop', retry_policy: { delay: 1 } }, /count/],
        [
          'retry bad backoff',
          { ref: 'acts.v', runner: 'noop', retry_policy: { count: 1, backoff: 'random' } },
          /backoff/,
        ],
        [
          'retry bad on',
          { ref: 'acts.v', runner: 'noop', retry_policy: { count: 1, on: ['succeeded'] } },
          /on/,
        ],
        [
          'retry max_delay < delay',
          { ref: 'acts.v', runner: 'noop', retry_policy: { count: 1, delay: 10, max_delay: 5 } },
          /max_delay/,
        ],
        ['concurrency limit 0', { ref: 'acts.v', runner: 'noop', concurrency_policy: { limit: 0 } }, /limit/],
        [
          'concurrency bad action',
          { ref: 'acts.v', runner: 'noop', concurrency_policy: { limit: 1, action: 'drop' } },
          /action/,
        ],
        [
          'group_by unknown parameter',
          {
            ref: 'acts.v',
            runner: 'noop',
            param_schema: { type: 'object', properties: { host: { type: 'string' } } },
            concurrency_policy: { limit: 2, group_by: ['hostname'] },
          },
          /hostname/,
        ],
        ['meta not an object', { ref: 'acts.v', runner: 'noop', meta: [1] }, /meta/],
        ['tags with empty string', { ref: 'acts.v', runner: 'noop', tags: [''] }, /tags/],
        ['pack_ref mismatch', { ref: 'acts.v', pack_ref: 'tools', runner: 'noop' }, /tools/],
      ];
      for (const [name, body, msg] of cases) {
        const r = await post(body);
        expect(r.status, name).toBe(400);
        expect(r.body.error.code, name).toBe('VALIDATION_ERROR');
        expect(r.body.error.message, name).toMatch(msg);
      }
      const raw = await s.request<AnyBody>('POST', '/api/v1/actions', {
        token,
        raw: '{"ref": "acts.v",',
        headers: { 'content-type': 'application/json' },
      });
      expect(raw.status).toBe(400);
      expect(raw.body.error.code).toBe('BAD_REQUEST');
      expect(await countActions()).toBe(before);
    });

    it('validates updates against the resulting action', async () => {
      await post({
        ref: 'acts.grouped',
        runner: 'noop',
        param_schema: { type: 'object', properties: { host: { type: 'string' } } },
        concurrency_policy: { limit: 1, group_by: ['host'] },
      });
      for (const [name, body] of [
        ['empty body', {}],
        ['ref change', { ref: 'acts.other' }],
        [
          'drop the grouped parameter',
          { param_schema: { type: 'object', properties: { x: { type: 'string' } } } },
        ],
        ['script runner without entry point', { runner: 'local-shell-script' }],
        ['unknown runner', { runner: 'cobol' }],
        ['bad timeout', { timeout_seconds: -1 }],
      ] as const) {
        const r = await put('acts.grouped', body);
        expect(r.status, name).toBe(400);
      }
      const g = await get('/api/v1/actions/acts.grouped');
      expect(g.body.data.param_schema.properties).toHaveProperty('host');
    });
  });

  describe('lists', () => {
    beforeAll(async () => {
      await createPack(s, 'lst');
      const mk = (name: string, extra: Record<string, unknown>) => post({ ref: `lst.${name}`, ...extra });
      await mk('ping', { runner: 'local-shell-cmd', label: 'Ping a host', tags: ['net'], enabled: true });
      await mk('fetch', {
        runner: 'http-request',
        label: 'Fetch URL',
        tags: ['net', 'http'],
        enabled: false,
      });
      await mk('report', {
        runner: 'python-script',
        entry_point: 'report.py',
        label: 'Weekly report',
        description: 'Mails the 100% summary',
        tags: ['mail'],
      });
    });
    const refs = async (q: string) => {
      const r = await get(`/api/v1/actions?pack=lst&${q}`);
      expect(r.status, q).toBe(200);
      return r.body.data.map((a: AnyBody) => a.ref).sort();
    };

    it('filters by tags (any of), enabled, search, runner and pack', async () => {
      expect(await refs('')).toEqual(['lst.fetch', 'lst.ping', 'lst.report']);
      expect(await refs('tags=http,mail')).toEqual(['lst.fetch', 'lst.report']);
      expect(await refs('tags=net')).toEqual(['lst.fetch', 'lst.ping']);
      expect(await refs('tags=%20,')).toEqual(['lst.fetch', 'lst.ping', 'lst.report']);
      expect(await refs('enabled=false')).toEqual(['lst.fetch']);
      expect(await refs('search=host')).toEqual(['lst.ping']);
      expect(await refs('search=100%25')).toEqual(['lst.report']);
      expect(await refs('search=_')).toEqual([]);
      expect(await refs('runner=http-request')).toEqual(['lst.fetch']);
      expect(await refs('runner=noop')).toEqual([]);
      expect(await refs('tags=net&enabled=true')).toEqual(['lst.ping']);
    });

    it('lists a pack and 404s an unknown one', async () => {
      const r = await get('/api/v1/packs/lst/actions?tags=net');
      expect(r.status).toBe(200);
      expect(r.body.data.map((a: AnyBody) => a.ref).sort()).toEqual(['lst.fetch', 'lst.ping']);
      expect(r.body.pagination).toEqual({ page: 1, page_size: 50, total_items: 2, total_pages: 1 });
      const none = await get('/api/v1/packs/nopack/actions');
      expect(none.status).toBe(404);
    });

    it('paginates and bounds page_size', async () => {
      const p = await get('/api/v1/actions?pack=lst&page_size=2&page=2');
      expect(p.body.data).toHaveLength(1);
      expect(p.body.pagination).toEqual({ page: 2, page_size: 2, total_items: 3, total_pages: 2 });
      for (const q of ['page_size=0', 'page_size=1001', 'page=0', 'runner=' + 'x'.repeat(101)]) {
        const r = await get(`/api/v1/actions?${q}`);
        expect(r.status, q).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
    });
  });

  describe('access', () => {
    it('needs authentication and the right permission', async () => {
      expect((await s.request('GET', '/api/v1/actions')).status).toBe(401);
      expect(
        (await s.request('POST', '/api/v1/actions', { body: { ref: 'acts.anon', runner: 'noop' } })).status,
      ).toBe(401);
      const spec = await s.request<AnyBody>('GET', '/api-spec/openapi.json');
      const paths = spec.body.paths;
      for (const p of ['/api/v1/actions', '/api/v1/actions/{ref}', '/api/v1/packs/{ref}/actions'])
        expect(paths, p).toHaveProperty([p]);
      expect(paths['/api/v1/actions'].post.requestBody).toBeDefined();
      expect(paths['/api/v1/actions/{ref}'].put.responses).toHaveProperty('409');
    });
  });
});
