// Inquiries over real HTTP, asked by real workflow runs: list (filters, `can_respond`), get, and
// answers — accepted (the workflow goes on with the answer), refused for the schema (400), for who
// answers (403), and once closed (409).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packs } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const PW = 'inquiries test password';
const TERMINAL = ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'];

describeBackend('inquiries API', () => {
  let s: TestServer;
  let admin: string;
  let manager: string;
  let operator: string;
  let viewer: string;
  const api = (method: string, url: string, token: string, body?: unknown) =>
    s.request<AnyBody>(method, url, { token, ...(body === undefined ? {} : { body }) });

  async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
    const end = Date.now() + ms;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const finished = (id: number) =>
    until(`execution ${id} to finish`, async () => {
      const e = (await api('GET', `/api/v1/executions/${id}`, admin)).body.data;
      return TERMINAL.includes(e.status) ? e : undefined;
    });
  const inquiryOf = (workflowId: number, status = 'pending') =>
    until(`the inquiry of ${workflowId}`, async () => {
      const r = await api(
        'GET',
        `/api/v1/inquiries?workflow_execution=${workflowId}&status=${status}`,
        admin,
      );
      return r.body.data[0] as AnyBody | undefined;
    });
  async function run(action: string, parameters: Record<string, unknown> = {}): Promise<number> {
    const r = await api('POST', '/api/v1/executions', admin, { action, parameters });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data.id;
  }

  beforeAll(async () => {
    s = await startTestServer();
    admin = s.adminToken;
    await s.platform.store.db
      .insert(packs)
      .values({ ref: 'iq', label: 'iq', version: '1.0.0', source: { type: 'api' } });
    const role = await api('POST', '/api/v1/roles', admin, {
      name: 'release-managers',
      description: 'answer release questions',
      grants: [
        { resource: 'inquiries', actions: ['read', 'respond'] },
        { resource: 'executions', actions: ['read'] },
      ],
    });
    expect(role.status, JSON.stringify(role.body)).toBe(201);
    for (const [login, roles] of [
      ['manager', ['release-managers']],
      ['operator1', ['operator']],
      ['viewer1', ['viewer']],
    ] as const) {
      const r = await api('POST', '/api/v1/identities', admin, { login, password: PW, roles });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
    }
    manager = await s.login('manager', PW);
    operator = await s.login('operator1', PW);
    viewer = await s.login('viewer1', PW);
    const w = await api('POST', '/api/v1/workflows', admin, {
      ref: 'iq.release',
      label: 'Release with approval',
      param_schema: { type: 'object', properties: { app: { type: 'string' } } },
      definition: {
        tasks: [
          {
            name: 'approve',
            action: 'core.ask',
            input: {
              prompt: 'Deploy {{ parameters.app }} to production?',
              response_schema: {
                approved: { type: 'boolean', required: true },
                comment: { type: 'string', default: 'no comment' },
              },
              roles: ['release-managers'],
            },
            next: [
              { when: '{{ succeeded() and result().response.approved }}', do: 'deploy' },
              { when: '{{ timed_out() }}', do: 'noop' },
            ],
          },
          {
            name: 'deploy',
            action: 'core.echo',
            input: { message: '{{ result("approve").response.comment }}' },
          },
        ],
        output_map: { answer: '{{ task.approve.result.response }}' },
      },
    });
    expect(w.status, JSON.stringify(w.body)).toBe(201);
  });
  afterAll(async () => s?.stop());

  describe('an inquiry of a running workflow', () => {
    let wf: number;
    let q: AnyBody;
    beforeAll(async () => {
      wf = await run('iq.release', { app: 'web' });
      q = await inquiryOf(wf);
    });

    it('is listed and read with its prompt, schema, assignment and links', async () => {
      expect(q).toMatchObject({
        status: 'pending',
        prompt: 'Deploy web to production?',
        workflow_execution_id: wf,
        task_name: 'approve',
        assigned_users: [],
        assigned_roles: ['release-managers'],
        response: null,
        responded_by: null,
        responded_at: null,
        can_respond: false, // admin is not a release manager
      });
      expect(q.response_schema).toMatchObject({
        type: 'object',
        properties: { approved: { type: 'boolean' }, comment: { type: 'string', default: 'no comment' } },
        required: ['approved'],
      });
      expect(Date.parse(q.timeout_at)).toBeGreaterThan(Date.now());
      const ask = (await api('GET', `/api/v1/executions/${q.execution_id}`, admin)).body.data;
      expect(ask).toMatchObject({ action_ref: 'core.ask', parent_id: wf, status: 'running' });

      const one = await api('GET', `/api/v1/inquiries/${q.id}`, manager);
      expect(one.status).toBe(200);
      expect(one.body.data).toEqual({ ...q, can_respond: true });
      expect((await api('GET', `/api/v1/inquiries/${q.id}`, operator)).body.data.can_respond).toBe(false);
      expect((await api('GET', `/api/v1/inquiries/${q.id}`, viewer)).body.data.can_respond).toBe(false);
    });

    it('filters by assignment and status', async () => {
      const ids = async (token: string, query: string) =>
        (await api('GET', `/api/v1/inquiries?${query}`, token)).body.data.map((x: AnyBody) => x.id);
      expect(await ids(manager, 'assigned_to_me=true')).toContain(q.id);
      expect(await ids(operator, 'assigned_to_me=true')).not.toContain(q.id);
      expect(await ids(operator, 'assigned_to_me=false&status=pending')).toContain(q.id);
      expect(await ids(manager, 'status=responded,timeout')).not.toContain(q.id);
      for (const bad of [
        'status=answered',
        'assigned_to_me=maybe',
        'workflow_execution=0',
        'bogus=1',
        'page_size=0',
      ]) {
        const r = await api('GET', `/api/v1/inquiries?${bad}`, admin);
        expect(r.status, bad).toBe(400);
        expect(r.body.error.code, bad).toBe('VALIDATION_ERROR');
      }
    });

    it('refuses an answer that does not fit the schema, with the problems (400)', async () => {
      const r = await api('POST', `/api/v1/inquiries/${q.id}/respond`, manager, {
        response: { approved: 'yes' },
      });
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('VALIDATION_ERROR');
      expect(r.body.error.details.problems).toEqual([expect.objectContaining({ path: '/approved' })]);
      for (const body of [{}, { response: { approved: true }, extra: 1 }]) {
        const b = await api('POST', `/api/v1/inquiries/${q.id}/respond`, manager, body);
        expect(b.status, JSON.stringify(body)).toBe(400);
      }
      expect((await api('GET', `/api/v1/inquiries/${q.id}`, admin)).body.data.status).toBe('pending');
    });

    it('refuses someone outside its users and roles, or without the respond right (403)', async () => {
      const r = await api('POST', `/api/v1/inquiries/${q.id}/respond`, operator, {
        response: { approved: true },
      });
      expect(r.status).toBe(403);
      expect(r.body.error.code).toBe('FORBIDDEN');
      expect(r.body.error.message).toMatch(/operator1/);
      const v = await api('POST', `/api/v1/inquiries/${q.id}/respond`, viewer, {
        response: { approved: true },
      });
      expect(v.status).toBe(403);
      expect((await api('GET', `/api/v1/inquiries/${q.id}`, admin)).body.data.status).toBe('pending');
    });

    it('takes an allowed, valid answer: the workflow goes on with it', async () => {
      const r = await api('POST', `/api/v1/inquiries/${q.id}/respond`, manager, {
        response: { approved: true },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.data).toMatchObject({
        id: q.id,
        status: 'responded',
        response: { approved: true, comment: 'no comment' },
        responded_by: 'manager',
        can_respond: false,
      });
      expect(Date.parse(r.body.data.responded_at)).not.toBeNaN();
      const e = await finished(wf);
      expect(e.status).toBe('succeeded');
      expect(e.result).toEqual({ answer: { approved: true, comment: 'no comment' } });
      const tasks = (await api('GET', `/api/v1/executions/${wf}/tasks`, admin)).body.data;
      expect(tasks.map((t: AnyBody) => `${t.task_name}:${t.status}`)).toEqual([
        'approve:succeeded',
        'deploy:succeeded',
      ]);
      expect(tasks[1].input).toEqual({ message: 'no comment' });
    });

    it('answers 409 to a second answer', async () => {
      const r = await api('POST', `/api/v1/inquiries/${q.id}/respond`, manager, {
        response: { approved: false },
      });
      expect(r.status).toBe(409);
      expect(r.body.error.code).toBe('CONFLICT');
      expect(r.body.error.message).toMatch(/responded/);
      expect((await api('GET', `/api/v1/inquiries/${q.id}`, admin)).body.data.response).toEqual({
        approved: true,
        comment: 'no comment',
      });
    });
  });

  it('an inquiry that timed out cannot be answered (409), and its workflow took the timeout branch', async () => {
    const w = await api('POST', '/api/v1/workflows', admin, {
      ref: 'iq.quick',
      label: 'Quick question',
      definition: {
        tasks: [
          {
            name: 'ask',
            action: 'core.ask',
            input: { prompt: 'Anyone?', response_schema: { ok: { type: 'boolean' } }, timeout: 1 },
            next: [{ when: '{{ timed_out() }}', do: 'noop' }],
          },
        ],
      },
    });
    expect(w.status, JSON.stringify(w.body)).toBe(201);
    const wf = await run('iq.quick');
    const open = await inquiryOf(wf);
    expect(open.assigned_roles).toEqual([]);
    expect(open.can_respond).toBe(true);
    const done = await inquiryOf(wf, 'timeout');
    expect(done.id).toBe(open.id);
    expect(done.can_respond).toBe(false);
    const r = await api('POST', `/api/v1/inquiries/${open.id}/respond`, admin, { response: { ok: true } });
    expect(r.status).toBe(409);
    expect((await finished(wf)).status).toBe('succeeded');

    // newest first
    const list = await api('GET', '/api/v1/inquiries?page_size=1', admin);
    expect(list.body.data[0].id).toBe(open.id);
    expect(list.body.pagination.total_items).toBeGreaterThanOrEqual(2);
  });

  it('answers 404 for an unknown inquiry and 401 without credentials', async () => {
    expect((await api('GET', '/api/v1/inquiries/999999', admin)).status).toBe(404);
    const r = await api('POST', '/api/v1/inquiries/999999/respond', admin, { response: true });
    expect(r.status).toBe(404);
    expect((await s.request<AnyBody>('GET', '/api/v1/inquiries')).status).toBe(401);
  });
});
