// The API of one workflow execution, on real runs over real HTTP: its task runs
// (`/executions/{id}/tasks`), its graph with the live state of every node (`/graph`), pause and
// resume, and the rerun of chosen tasks.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packs } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const TERMINAL = ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'];

describeBackend('workflow execution API: tasks, graph, pause, resume, rerun', () => {
  let s: TestServer;
  let token: string;
  let tmp: string;
  const api = (method: string, url: string, body?: unknown) =>
    s.request<AnyBody>(method, url, { token, ...(body === undefined ? {} : { body }) });

  async function createWorkflow(ref: string, definition: unknown, extra: Record<string, unknown> = {}) {
    const r = await api('POST', '/api/v1/workflows', { ref, label: ref, definition, ...extra });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  }
  async function run(action: string, parameters: Record<string, unknown> = {}): Promise<number> {
    const r = await api('POST', '/api/v1/executions', { action, parameters });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data.id as number;
  }
  async function waitFor(
    id: number,
    ok: (e: AnyBody) => boolean,
    what: string,
    ms = 20_000,
  ): Promise<AnyBody> {
    const until = Date.now() + ms;
    let last: AnyBody;
    for (;;) {
      last = (await api('GET', `/api/v1/executions/${id}`)).body.data;
      if (ok(last)) return last;
      if (Date.now() > until)
        throw new Error(`execution ${id} never became ${what}: ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const finished = (id: number) => waitFor(id, (e) => TERMINAL.includes(e.status), 'finished');

  beforeAll(async () => {
    s = await startTestServer();
    token = s.adminToken;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-wf-graph-'));
    await s.platform.store.db
      .insert(packs)
      .values({ ref: 'wg', label: 'wg', version: '1.0.0', source: { type: 'api' } });
  });
  afterAll(async () => {
    await s?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('a finished fan-out', () => {
    let id: number;
    beforeAll(async () => {
      await createWorkflow(
        'wg.fanout',
        {
          tasks: [
            {
              name: 'prep',
              action: 'core.echo',
              input: { message: 'go' },
              next: [
                { when: '{{ succeeded() }}', do: 'fan' },
                { when: '{{ failed() }}', do: 'never' },
              ],
            },
            {
              name: 'fan',
              action: 'core.echo',
              with_items: '{{ parameters.hosts }}',
              concurrency: 2,
              input: { message: 'patch {{ item }}' },
              next: [{ when: '{{ succeeded() }}', publish: [{ n: '{{ result() | length }}' }], do: 'done' }],
            },
            { name: 'done', action: 'core.noop' },
            { name: 'never', action: 'core.noop' },
          ],
          output_map: { n: '{{ vars.n }}' },
        },
        { param_schema: { type: 'object', properties: { hosts: { type: 'array' } } } },
      );
      id = await run('wg.fanout', { hosts: ['a', 'b', 'c'] });
      const e = await finished(id);
      expect(e.status, JSON.stringify(e)).toBe('succeeded');
      expect(e.result).toEqual({ n: 3 });
    });

    it('lists its task runs with status, timing, items and child executions', async () => {
      const r = await api('GET', `/api/v1/executions/${id}/tasks`);
      expect(r.status).toBe(200);
      const rows = r.body.data as AnyBody[];
      expect(rows.map((x) => x.run_key)).toEqual(['prep#1', 'fan#1.0', 'fan#1.1', 'fan#1.2', 'done#1']);
      expect(r.body.pagination).toEqual({ page: 1, page_size: 50, total_items: 5, total_pages: 1 });
      for (const x of rows) {
        expect(x.status).toBe('succeeded');
        expect(x.attempt).toBe(1);
        expect(typeof x.execution_id).toBe('number');
        expect(Date.parse(x.started_at)).not.toBeNaN();
        expect(Date.parse(x.finished_at)).toBeGreaterThanOrEqual(Date.parse(x.started_at));
        expect(x.duration_ms).toBeGreaterThanOrEqual(0);
      }
      const fan = rows.filter((x) => x.task_name === 'fan');
      expect(fan.map((x) => [x.item_index, x.input])).toEqual([
        [0, { message: 'patch a' }],
        [1, { message: 'patch b' }],
        [2, { message: 'patch c' }],
      ]);
      expect(fan[1].result).toEqual({ message: 'patch b' });
      // the child execution is a real execution of the task's action, linked to the workflow
      const child = await api('GET', `/api/v1/executions/${fan[1].execution_id}`);
      expect(child.body.data).toMatchObject({ action_ref: 'core.echo', parent_id: id, task_name: 'fan' });

      const filtered = await api(
        'GET',
        `/api/v1/executions/${id}/tasks?task=fan&status=succeeded,failed&page_size=2&page=2`,
      );
      expect(filtered.body.data.map((x: AnyBody) => x.run_key)).toEqual(['fan#1.2']);
      expect(filtered.body.pagination).toEqual({ page: 2, page_size: 2, total_items: 3, total_pages: 2 });
      const none = await api('GET', `/api/v1/executions/${id}/tasks?status=failed`);
      expect(none.body.data).toEqual([]);
      const bad = await api('GET', `/api/v1/executions/${id}/tasks?status=done`);
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toMatch(/'done'/);
    });

    it('draws its graph with the live state of every node', async () => {
      const r = await api('GET', `/api/v1/executions/${id}/graph`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      const g = r.body.data;
      expect(g).toMatchObject({
        execution_id: id,
        workflow_ref: 'wg.fanout',
        status: 'succeeded',
        execution_status: 'succeeded',
      });
      const node = (n: string) => g.nodes.find((x: AnyBody) => x.id === n);
      expect(g.nodes.map((x: AnyBody) => x.id)).toEqual(['prep', 'fan', 'done', 'never']);
      expect(node('prep')).toMatchObject({ action: 'core.echo', start: true, with_items: false });
      expect(node('prep').state).toMatchObject({ status: 'succeeded', entries: 1, runs: 1, items: null });
      expect(typeof node('prep').state.last_execution_id).toBe('number');
      expect(node('fan')).toMatchObject({ with_items: true, concurrency: 2, start: false });
      expect(node('fan').state).toMatchObject({
        status: 'succeeded',
        entries: 1,
        runs: 3,
        items: { total: 3, done: 3, succeeded: 3, failed: 0, running: 0, pending: 0 },
      });
      const tasks = (await api('GET', `/api/v1/executions/${id}/tasks?task=fan`)).body.data as AnyBody[];
      expect(node('fan').state.last_execution_id).toBe(tasks.at(-1).execution_id);
      expect(node('never').state).toMatchObject({
        status: 'not_run',
        entries: 0,
        runs: 0,
        last_execution_id: null,
      });
      const edge = (from: string, to: string) => g.edges.find((x: AnyBody) => x.from === from && x.to === to);
      expect(edge('prep', 'fan')).toMatchObject({
        condition: '{{ succeeded() }}',
        label: 'succeeded()',
        taken: 1,
      });
      expect(edge('prep', 'never').taken).toBe(0);
      expect(edge('fan', 'done')).toMatchObject({ publish: ['n'], taken: 1 });
    });

    it('shows the definition the run started with, not a later edit', async () => {
      const upd = await api('PUT', '/api/v1/workflows/wg.fanout', {
        definition: { tasks: [{ name: 'other', action: 'core.noop' }] },
      });
      expect(upd.status).toBe(200);
      const g = (await api('GET', `/api/v1/executions/${id}/graph`)).body.data;
      expect(g.nodes.map((x: AnyBody) => x.id)).toEqual(['prep', 'fan', 'done', 'never']);
    });
  });

  it('answers 404 for an unknown execution and 409 for one that is not a workflow', async () => {
    for (const p of ['tasks', 'graph'])
      expect((await api('GET', `/api/v1/executions/999999/${p}`)).status).toBe(404);
    for (const p of ['pause', 'resume'])
      expect((await api('POST', `/api/v1/executions/999999/${p}`)).status).toBe(404);
    const plain = await run('core.noop');
    await finished(plain);
    for (const p of ['tasks', 'graph']) {
      const r = await api('GET', `/api/v1/executions/${plain}/${p}`);
      expect(r.status, p).toBe(409);
      expect(r.body.error.message).toMatch(/not a workflow/);
    }
    for (const p of ['pause', 'resume']) {
      const r = await api('POST', `/api/v1/executions/${plain}/${p}`);
      expect(r.status, p).toBe(409);
    }
    const rerun = await api('POST', `/api/v1/executions/${plain}/rerun`, { tasks: [] });
    expect(rerun.status).toBe(409);
  });

  it('pauses a running workflow between tasks and resumes it', async () => {
    await createWorkflow('wg.slow', {
      tasks: [
        { name: 'first', action: 'core.sleep', input: { seconds: 0.6 }, next: [{ do: 'second' }] },
        { name: 'second', action: 'core.echo', input: { message: 'after' } },
      ],
    });
    const id = await run('wg.slow');
    await waitFor(id, (e) => e.status === 'running', 'running');
    const paused = await api('POST', `/api/v1/executions/${id}/pause`);
    expect(paused.status, JSON.stringify(paused.body)).toBe(200);
    expect(['pausing', 'paused']).toContain(paused.body.data.status);
    expect((await api('POST', `/api/v1/executions/${id}/pause`)).status).toBe(200);
    await waitFor(id, (e) => e.status === 'paused', 'paused');
    // the second task waits: the first ran, nothing else started
    const during = await api('GET', `/api/v1/executions/${id}/tasks`);
    expect(during.body.data.map((x: AnyBody) => `${x.task_name}:${x.status}`)).toEqual(['first:succeeded']);
    const g = (await api('GET', `/api/v1/executions/${id}/graph`)).body.data;
    expect(g.status).toBe('paused');
    const resumed = await api('POST', `/api/v1/executions/${id}/resume`);
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    const e = await finished(id);
    expect(e.status).toBe('succeeded');
    const after = await api('GET', `/api/v1/executions/${id}/tasks`);
    expect(after.body.data.map((x: AnyBody) => `${x.task_name}:${x.status}`)).toEqual([
      'first:succeeded',
      'second:succeeded',
    ]);
    const again = await api('POST', `/api/v1/executions/${id}/resume`);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toMatch(/finished/);
    expect((await api('POST', `/api/v1/executions/${id}/pause`, { now: true })).status).toBe(400);
  });

  it('reruns the failed task of a workflow, reusing what succeeded', async () => {
    const flag = path.join(tmp, 'ready');
    await createWorkflow('wg.flaky', {
      tasks: [
        {
          name: 'fetch',
          action: 'core.echo',
          input: { message: 'fetched' },
          next: [{ when: '{{ succeeded() }}', do: 'check' }],
        },
        { name: 'check', action: 'core.local', input: { cmd: `test -f '${flag}'` } },
      ],
    });
    const id = await run('wg.flaky');
    const e = await finished(id);
    expect(e.status).toBe('failed');
    const g = (await api('GET', `/api/v1/executions/${id}/graph`)).body.data;
    expect(g.nodes.map((n: AnyBody) => `${n.id}:${n.state.status}`)).toEqual([
      'fetch:succeeded',
      'check:failed',
    ]);

    for (const [body, status] of [
      [{ tasks: ['nope'] }, 400],
      [{ tasks: ['check'], parameters: { x: 1 } }, 400],
      [{ tasks: ['fetch'] }, 409],
    ] as [Record<string, unknown>, number][]) {
      const r = await api('POST', `/api/v1/executions/${id}/rerun`, body);
      expect(r.status, `${JSON.stringify(body)} → ${JSON.stringify(r.body)}`).toBe(status);
    }

    fs.writeFileSync(flag, '');
    const r = await api('POST', `/api/v1/executions/${id}/rerun`, { tasks: [] });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.data).toMatchObject({ action_ref: 'wg.flaky', rerun_of: id });
    const second = r.body.data.id as number;
    expect((await finished(second)).status).toBe('succeeded');
    const tasks = (await api('GET', `/api/v1/executions/${second}/tasks`)).body.data as AnyBody[];
    const fetches = tasks.filter((x) => x.task_name === 'fetch');
    expect(fetches).toHaveLength(1);
    const firstTasks = (await api('GET', `/api/v1/executions/${id}/tasks?task=fetch`)).body.data;
    expect(fetches[0].execution_id).toBe(firstTasks[0].execution_id);
    expect(tasks.filter((x) => x.task_name === 'check').map((x) => x.status)).toContain('succeeded');
    const g2 = (await api('GET', `/api/v1/executions/${second}/graph`)).body.data;
    expect(g2.nodes.map((n: AnyBody) => `${n.id}:${n.state.status}`)).toEqual([
      'fetch:succeeded',
      'check:succeeded',
    ]);
  });
});
