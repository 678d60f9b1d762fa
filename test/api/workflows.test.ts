// The workflow API over real HTTP: the 14 scenarios of the seed specification (named as there), then
// validation, filters, pagination and the workflow ↔ action pairing.
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actions, packs, workflows } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

async function createPack(s: TestServer, ref: string): Promise<void> {
  await s.platform.store.db
    .insert(packs)
    .values({ ref, label: ref, version: '1.0.0', source: { type: 'api' } })
    .onConflictDoNothing();
}

const definition = {
  tasks: [{ name: 'notify_team', action: 'core.echo', input: { message: 'incident' } }],
};

const workflowBody = (ref: string, extra: Record<string, unknown> = {}) => ({
  ref,
  pack_ref: ref.split('.')[0],
  label: `Workflow ${ref}`,
  description: 'A test workflow',
  version: '1.0.0',
  definition,
  ...extra,
});

describeBackend('workflows API', () => {
  let s: TestServer;
  let token: string;
  const post = (body: unknown) => s.request<AnyBody>('POST', '/api/v1/workflows', { token, body });
  const get = (path: string) => s.request<AnyBody>('GET', path, { token });

  beforeAll(async () => {
    s = await startTestServer();
    token = s.adminToken;
    await createPack(s, 'wfpack');
    await createPack(s, 'otherpack');
  });
  afterAll(async () => s?.stop());

  describe('seed scenarios', () => {
    it('test_create_workflow_success', async () => {
      const r = await post(
        workflowBody('wfpack.incident', {
          param_schema: { type: 'object', properties: { severity: { type: 'string' } } },
          out_schema: { type: 'object' },
          tags: ['incident', 'automation'],
          enabled: true,
        }),
      );
      expect(r.status).toBe(201);
      const d = r.body.data;
      expect(d).toMatchObject({
        ref: 'wfpack.incident',
        pack_ref: 'wfpack',
        label: 'Workflow wfpack.incident',
        description: 'A test workflow',
        version: '1.0.0',
        param_schema: { type: 'object', properties: { severity: { type: 'string' } } },
        out_schema: { type: 'object' },
        definition,
        tags: ['incident', 'automation'],
        enabled: true,
      });
      expect(typeof d.id).toBe('number');
      expect(Date.parse(d.created_at)).not.toBeNaN();
      expect(Date.parse(d.updated_at)).not.toBeNaN();
    });

    it('test_create_workflow_duplicate_ref', async () => {
      expect((await post(workflowBody('wfpack.dup'))).status).toBe(201);
      const r = await post(workflowBody('wfpack.dup', { label: 'Again' }));
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('CONFLICT');
      expect(r.body.error.message).toContain('wfpack.dup');
      const stored = await get('/api/v1/workflows/wfpack.dup');
      expect(stored.body.data.label).toBe('Workflow wfpack.dup');
    });

    it('test_create_workflow_pack_not_found', async () => {
      const r = await post(workflowBody('nosuchpack.flow'));
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('NOT_FOUND');
      expect(r.body.error.message).toContain('nosuchpack');
    });

    it('test_get_workflow_by_ref', async () => {
      await post(workflowBody('wfpack.getme', { tags: ['x'] }));
      const r = await get('/api/v1/workflows/wfpack.getme');
      expect(r.status).toBe(200);
      expect(r.body.data).toMatchObject({ ref: 'wfpack.getme', pack_ref: 'wfpack', definition, tags: ['x'] });
    });

    it('test_get_workflow_not_found', async () => {
      const r = await get('/api/v1/workflows/wfpack.missing');
      expect(r.status).toBe(404);
      expect(r.body.error).toMatchObject({ code: 'NOT_FOUND' });
      expect(r.body.error.message).toContain('wfpack.missing');
    });

    it('test_list_workflows', async () => {
      for (const n of ['l1', 'l2', 'l3']) await post(workflowBody(`otherpack.${n}`));
      const r = await get('/api/v1/workflows?page_size=100');
      expect(r.status).toBe(200);
      const refs = r.body.data.map((w: AnyBody) => w.ref);
      expect(refs).toEqual(expect.arrayContaining(['otherpack.l1', 'otherpack.l2', 'otherpack.l3']));
      expect(r.body.pagination).toMatchObject({ page: 1, page_size: 100, total_items: refs.length });
      expect(r.body.pagination.total_pages).toBe(1);
      // same shape as a single workflow
      expect(r.body.data[0]).toHaveProperty('definition');
      expect(r.body.data[0]).toHaveProperty('param_schema');
    });

    it('test_list_workflows_by_pack', async () => {
      const r = await get('/api/v1/packs/otherpack/workflows');
      expect(r.status).toBe(200);
      expect(r.body.data.map((w: AnyBody) => w.ref).sort()).toEqual([
        'otherpack.l1',
        'otherpack.l2',
        'otherpack.l3',
      ]);
      expect(r.body.data.every((w: AnyBody) => w.pack_ref === 'otherpack')).toBe(true);
      expect(r.body.pagination.total_items).toBe(3);
      const none = await get('/api/v1/packs/ghostpack/workflows');
      expect(none.status).toBe(404);
      expect(none.body.error.code).toBe('NOT_FOUND');
    });

    it('test_list_workflows_with_filters', async () => {
      await createPack(s, 'filt');
      await post(
        workflowBody('filt.incident_response', {
          label: 'Incident response',
          tags: ['incident', 'ops'],
          enabled: true,
        }),
      );
      await post(workflowBody('filt.approval', { label: 'Approval', tags: ['approval'], enabled: true }));
      await post(workflowBody('filt.nightly', { label: 'Nightly backup', tags: ['ops'], enabled: false }));
      const refs = async (q: string) => {
        const r = await get(`/api/v1/workflows?pack=filt&${q}`);
        expect(r.status).toBe(200);
        return r.body.data.map((w: AnyBody) => w.ref).sort();
      };
      expect(await refs('tags=incident,approval')).toEqual(['filt.approval', 'filt.incident_response']);
      expect(await refs('tags=ops')).toEqual(['filt.incident_response', 'filt.nightly']);
      expect(await refs('enabled=true')).toEqual(['filt.approval', 'filt.incident_response']);
      expect(await refs('enabled=false')).toEqual(['filt.nightly']);
      expect(await refs('search=RESPONSE')).toEqual(['filt.incident_response']);
      expect(await refs('enabled=true&tags=incident&search=response')).toEqual(['filt.incident_response']);
      expect(await refs('enabled=false&tags=incident')).toEqual([]);
    });

    it('test_update_workflow', async () => {
      await post(workflowBody('wfpack.upd', { tags: ['a'], enabled: true }));
      const before = (await get('/api/v1/workflows/wfpack.upd')).body.data;
      const r = await s.request<AnyBody>('PUT', '/api/v1/workflows/wfpack.upd', {
        token,
        body: { label: 'Updated Incident Response', version: '1.1.0', enabled: false },
      });
      expect(r.status).toBe(200);
      expect(r.body.data).toMatchObject({
        ref: 'wfpack.upd',
        label: 'Updated Incident Response',
        version: '1.1.0',
        enabled: false,
        // untouched fields stay
        description: 'A test workflow',
        tags: ['a'],
        definition,
      });
      expect(Date.parse(r.body.data.updated_at)).toBeGreaterThanOrEqual(Date.parse(before.updated_at));
      expect((await get('/api/v1/workflows/wfpack.upd')).body.data.label).toBe('Updated Incident Response');
    });

    it('test_update_workflow_not_found', async () => {
      const r = await s.request<AnyBody>('PUT', '/api/v1/workflows/wfpack.nothere', {
        token,
        body: { label: 'x' },
      });
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('NOT_FOUND');
    });

    it('test_delete_workflow', async () => {
      await post(workflowBody('wfpack.del'));
      const r = await s.request<AnyBody>('DELETE', '/api/v1/workflows/wfpack.del', { token });
      expect(r.status).toBe(204);
      expect(r.body).toBeNull();
      expect((await get('/api/v1/workflows/wfpack.del')).status).toBe(404);
    });

    it('test_delete_workflow_not_found', async () => {
      const r = await s.request<AnyBody>('DELETE', '/api/v1/workflows/wfpack.del_missing', { token });
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('NOT_FOUND');
    });

    it('test_create_workflow_requires_auth', async () => {
      const r = await s.request<AnyBody>('POST', '/api/v1/workflows', { body: workflowBody('wfpack.anon') });
      expect(r.status).toBe(401);
      expect(r.body.error.code).toBe('UNAUTHORIZED');
      expect((await get('/api/v1/workflows/wfpack.anon')).status).toBe(404);
      for (const [m, p] of [
        ['GET', '/api/v1/workflows'],
        ['GET', '/api/v1/workflows/wfpack.incident'],
        ['GET', '/api/v1/packs/wfpack/workflows'],
        ['PUT', '/api/v1/workflows/wfpack.incident'],
        ['DELETE', '/api/v1/workflows/wfpack.incident'],
      ] as const) {
        const a = await s.request<AnyBody>(m, p, m === 'PUT' ? { body: { label: 'x' } } : {});
        expect(a.status, `${m} ${p}`).toBe(401);
      }
    });

    it('test_workflow_validation', async () => {
      const cases: [string, Record<string, unknown>, RegExp][] = [
        ['empty label', workflowBody('wfpack.v1', { label: '' }), /label/],
        ['blank label', workflowBody('wfpack.v1', { label: '   ' }), /label/],
        ['missing label', { ref: 'wfpack.v1', definition }, /label/],
        ['empty ref', workflowBody('', {}), /ref/],
        ['ref without pack', { ...workflowBody('wfpack.v1'), ref: 'noDot' }, /ref/],
        ['missing definition', { ref: 'wfpack.v1', label: 'x' }, /definition/],
        ['definition not an object', workflowBody('wfpack.v1', { definition: 'tasks: []' }), /definition/],
        ['definition without tasks', workflowBody('wfpack.v1', { definition: { vars: {} } }), /tasks/],
        ['tasks not a list', workflowBody('wfpack.v1', { definition: { tasks: {} } }), /tasks/],
        [
          'task without name',
          workflowBody('wfpack.v1', { definition: { tasks: [{ action: 'core.noop' }] } }),
          /name/,
        ],
        [
          'task name not a string',
          workflowBody('wfpack.v1', { definition: { tasks: [{ name: 5 }] } }),
          /name/,
        ],
        ['task not an object', workflowBody('wfpack.v1', { definition: { tasks: ['a'] } }), /tasks/],
        [
          'duplicate task names',
          workflowBody('wfpack.v1', { definition: { tasks: [{ name: 'a' }, { name: 'a' }] } }),
          /'a'/,
        ],
        ['bad version', workflowBody('wfpack.v1', { version: '1.0' }), /version/],
        ['version with v', workflowBody('wfpack.v1', { version: 'v1.0.0' }), /version/],
        [
          'invalid param_schema',
          workflowBody('wfpack.v1', { param_schema: { type: 'strnig' } }),
          /param_schema/,
        ],
        [
          'non-object param_schema',
          workflowBody('wfpack.v1', { param_schema: { type: 'string' } }),
          /param_schema/,
        ],
        ['param_schema as list', workflowBody('wfpack.v1', { param_schema: [] }), /param_schema/],
        ['invalid out_schema', workflowBody('wfpack.v1', { out_schema: { properties: 3 } }), /out_schema/],
        ['tags not a list', workflowBody('wfpack.v1', { tags: 'a,b' }), /tags/],
        ['enabled as string', workflowBody('wfpack.v1', { enabled: 'true' }), /enabled/],
        ['unknown field', workflowBody('wfpack.v1', { runner: 'workflow' }), /runner/],
        ['pack_ref mismatch', workflowBody('wfpack.v1', { pack_ref: 'otherpack' }), /otherpack/],
      ];
      for (const [name, body, msg] of cases) {
        const r = await post(body);
        expect(r.status, name).toBe(400);
        expect(r.body.error.code, name).toBe('VALIDATION_ERROR');
        expect(r.body.error.message, name).toMatch(msg);
      }
      expect((await get('/api/v1/workflows/wfpack.v1')).status).toBe(404);
      expect((await get('/api/v1/actions/wfpack.v1')).status).toBe(404);
      // the same checks apply to updates
      await post(workflowBody('wfpack.v2'));
      for (const body of [
        {},
        { label: '' },
        { version: 'latest' },
        { definition: { tasks: [] } },
        { param_schema: { type: 7 } },
        { ref: 'wfpack.renamed' },
        { pack_ref: 'otherpack' },
      ]) {
        const r = await s.request<AnyBody>('PUT', '/api/v1/workflows/wfpack.v2', { token, body });
        expect(r.status, JSON.stringify(body)).toBe(400);
      }
      expect((await get('/api/v1/workflows/wfpack.v2')).body.data.label).toBe('Workflow wfpack.v2');
    });
  });

  describe('workflow ↔ action pairing', () => {
    it('creating a workflow creates its action with runner workflow', async () => {
      await post(
        workflowBody('wfpack.paired', {
          param_schema: { type: 'object', properties: { n: { type: 'integer' } } },
          tags: ['pair'],
        }),
      );
      const a = await get('/api/v1/actions/wfpack.paired');
      expect(a.status).toBe(200);
      expect(a.body.data).toMatchObject({
        ref: 'wfpack.paired',
        pack_ref: 'wfpack',
        runner: 'workflow',
        label: 'Workflow wfpack.paired',
        description: 'A test workflow',
        param_schema: { type: 'object', properties: { n: { type: 'integer' } } },
        tags: ['pair'],
        enabled: true,
      });
      const [w] = await s.platform.store.db
        .select()
        .from(workflows)
        .where(eq(workflows.ref, 'wfpack.paired'));
      expect(w!.actionId).toBe(a.body.data.id);
    });

    it('updating a workflow keeps its action in step', async () => {
      const r = await s.request<AnyBody>('PUT', '/api/v1/workflows/wfpack.paired', {
        token,
        body: {
          label: 'Renamed',
          description: 'new words',
          param_schema: { type: 'object', properties: { m: { type: 'string' } } },
          tags: ['changed'],
          enabled: false,
        },
      });
      expect(r.status).toBe(200);
      const a = (await get('/api/v1/actions/wfpack.paired')).body.data;
      expect(a).toMatchObject({
        runner: 'workflow',
        label: 'Renamed',
        description: 'new words',
        param_schema: { type: 'object', properties: { m: { type: 'string' } } },
        tags: ['changed'],
        enabled: false,
      });
      // clearing the workflow's param_schema leaves the action accepting an empty object schema
      await s.request<AnyBody>('PUT', '/api/v1/workflows/wfpack.paired', {
        token,
        body: { param_schema: null },
      });
      expect((await get('/api/v1/actions/wfpack.paired')).body.data.param_schema).toEqual({});
      expect((await get('/api/v1/workflows/wfpack.paired')).body.data.param_schema).toBeNull();
    });

    it('the workflow action cannot be written through /api/v1/actions', async () => {
      const put = await s.request<AnyBody>('PUT', '/api/v1/actions/wfpack.paired', {
        token,
        body: { label: 'sneaky' },
      });
      expect(put.status).toBe(409);
      expect(put.body.error.message).toContain('/api/v1/workflows');
      const del = await s.request<AnyBody>('DELETE', '/api/v1/actions/wfpack.paired', { token });
      expect(del.status).toBe(409);
      const create = await s.request<AnyBody>('POST', '/api/v1/actions', {
        token,
        body: { ref: 'wfpack.fake_wf', runner: 'workflow' },
      });
      expect(create.status).toBe(409);
      expect(create.body.error.message).toContain('/api/v1/workflows');
      expect((await get('/api/v1/actions/wfpack.paired')).body.data.label).toBe('Renamed');
    });

    it('deleting a workflow deletes its action', async () => {
      expect((await s.request('DELETE', '/api/v1/workflows/wfpack.paired', { token })).status).toBe(204);
      expect((await get('/api/v1/actions/wfpack.paired')).status).toBe(404);
      const left = await s.platform.store.db.select().from(actions).where(eq(actions.ref, 'wfpack.paired'));
      expect(left).toHaveLength(0);
    });

    it('a workflow cannot take the ref of an ordinary action, and nothing is left behind', async () => {
      const a = await s.request<AnyBody>('POST', '/api/v1/actions', {
        token,
        body: { ref: 'wfpack.plain', runner: 'noop' },
      });
      expect(a.status).toBe(201);
      const r = await post(workflowBody('wfpack.plain'));
      expect(r.status).toBe(409);
      expect(r.body.error.message).toContain('wfpack.plain');
      expect((await get('/api/v1/workflows/wfpack.plain')).status).toBe(404);
      expect((await get('/api/v1/actions/wfpack.plain')).body.data.runner).toBe('noop');
    });

    it('a workflow used by a rule cannot be deleted', async () => {
      const db = s.platform.store.db;
      await post(workflowBody('wfpack.ruled'));
      await s.request('POST', '/api/v1/triggers', { token, body: { ref: 'wfpack.tick' } });
      const rule = await s.request<AnyBody>('POST', '/api/v1/rules', {
        token,
        body: { ref: 'wfpack.run_ruled', trigger_ref: 'wfpack.tick', action_ref: 'wfpack.ruled' },
      });
      expect(rule.status).toBe(201);
      const r = await s.request<AnyBody>('DELETE', '/api/v1/workflows/wfpack.ruled', { token });
      expect(r.status).toBe(409);
      expect(r.body.error.message).toContain('wfpack.run_ruled');
      expect(await db.select().from(actions).where(eq(actions.ref, 'wfpack.ruled'))).toHaveLength(1);
      await s.request('DELETE', '/api/v1/rules/wfpack.run_ruled', { token });
      expect((await s.request('DELETE', '/api/v1/workflows/wfpack.ruled', { token })).status).toBe(204);
    });
  });

  describe('lists', () => {
    it('paginates, newest first, and refuses absurd page sizes', async () => {
      await createPack(s, 'pages');
      for (let i = 1; i <= 5; i++) await post(workflowBody(`pages.w${i}`));
      const p1 = await get('/api/v1/workflows?pack=pages&page_size=2');
      expect(p1.body.data.map((w: AnyBody) => w.ref)).toEqual(['pages.w5', 'pages.w4']);
      expect(p1.body.pagination).toEqual({ page: 1, page_size: 2, total_items: 5, total_pages: 3 });
      const p3 = await get('/api/v1/workflows?pack=pages&page_size=2&page=3');
      expect(p3.body.data.map((w: AnyBody) => w.ref)).toEqual(['pages.w1']);
      const past = await get('/api/v1/workflows?pack=pages&page_size=2&page=9');
      expect(past.status).toBe(200);
      expect(past.body.data).toEqual([]);
      expect(past.body.pagination.total_items).toBe(5);
      const byPack = await get('/api/v1/packs/pages/workflows?page_size=1&page=2');
      expect(byPack.body.data.map((w: AnyBody) => w.ref)).toEqual(['pages.w4']);
      expect(byPack.body.pagination.total_pages).toBe(5);
      for (const q of [
        'page_size=0',
        'page_size=1001',
        'page=0',
        'page=-1',
        'page_size=abc',
        'enabled=maybe',
        'bogus=1',
      ]) {
        const r = await get(`/api/v1/workflows?${q}`);
        expect(r.status, q).toBe(400);
        expect(r.body.error.code, q).toBe('VALIDATION_ERROR');
      }
      expect((await get('/api/v1/workflows?page_size=1000')).status).toBe(200);
    });

    it('search treats LIKE wildcards literally', async () => {
      const r = await get('/api/v1/workflows?search=%25');
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual([]);
    });
  });
});
