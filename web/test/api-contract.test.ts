// @vitest-environment node
/**
 * The UI against a real server: every endpoint its client calls exists in the OpenAPI document with
 * that method, the fields the UI reads are in the documented responses, and the server serves the
 * built UI at `/` (index.html for the UI's paths, long-cached assets, JSON 404s for API paths).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AnyBody, startTestServer, type TestServer } from '../../test/support/server.ts';
import { ENDPOINTS } from '../src/api/endpoints.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const dist = path.join(root, 'web', 'dist');

type Schema = { $ref?: string; properties?: Record<string, Schema>; items?: Schema; anyOf?: Schema[] };

describe('the UI and the API', () => {
  let s: TestServer;
  let spec: AnyBody;
  beforeAll(async () => {
    if (!fs.existsSync(path.join(dist, 'index.html'))) {
      const r = spawnSync(process.execPath, ['scripts/build-web.mjs'], { cwd: root, stdio: 'inherit' });
      expect(r.status).toBe(0);
    }
    s = await startTestServer();
    spec = (await s.request<AnyBody>('GET', '/api-spec/openapi.json')).body;
  }, 120_000);
  afterAll(async () => s?.stop());

  it('calls only endpoints the OpenAPI document has, with their methods', () => {
    const missing = Object.entries(ENDPOINTS)
      .filter(([, e]) => !spec.paths?.[e.path]?.[e.method.toLowerCase()])
      .map(([name, e]) => `${name}: ${e.method} ${e.path}`);
    expect(missing).toEqual([]);
  });

  /** The properties of the `data` (item) of an endpoint's success response. */
  const dataProps = (name: keyof typeof ENDPOINTS): Set<string> => {
    const e = ENDPOINTS[name];
    const op = spec.paths[e.path][e.method.toLowerCase()];
    const ok = Object.keys(op.responses).find((c) => c.startsWith('2'))!;
    let d: Schema = op.responses[ok].content['application/json'].schema.properties.data;
    if (d.items) d = d.items;
    return new Set(Object.keys(d.properties ?? {}));
  };

  it('reads only documented fields of executions, graphs, task runs and inquiries', () => {
    const need = (name: keyof typeof ENDPOINTS, fields: string[]) =>
      expect(
        fields.filter((f) => !dataProps(name).has(f)),
        name,
      ).toEqual([]);
    need('getExecution', [
      'id',
      'action_ref',
      'runner',
      'status',
      'parameters',
      'result',
      'error',
      'parent_id',
      'task_name',
      'rule_ref',
      'trigger_ref',
      'event_id',
      'created_by',
      'rerun_of',
      'worker_id',
      'attempt',
      'timeout_seconds',
      'created_at',
      'started_at',
      'finished_at',
      'updated_at',
      'duration_ms',
    ]);
    need('executionGraph', ['status', 'nodes', 'edges']);
    need('executionTasks', [
      'task_name',
      'item_index',
      'attempt',
      'status',
      'execution_id',
      'started_at',
      'finished_at',
    ]);
    need('getInquiry', [
      'id',
      'status',
      'prompt',
      'response_schema',
      'response',
      'responded_by',
      'responded_at',
      'timeout_at',
      'execution_id',
      'workflow_execution_id',
      'task_name',
      'assigned_users',
      'assigned_roles',
      'can_respond',
    ]);
    need('executionStats', [
      'series',
      'totals',
      'success_rate',
      'active',
      'waiting_for_input',
      'busiest_actions',
      'busiest_rules',
      'recent_failures',
    ]);
    need('getAction', ['ref', 'pack_ref', 'runner', 'param_schema', 'out_schema', 'enabled']);
    need('getRule', ['ref', 'trigger_ref', 'criteria', 'action_ref', 'action_params', 'enabled']);
  });

  it('serves the UI at / and at its own paths, with no credentials', async () => {
    for (const p of ['/', '/executions/12', '/actions/core.echo', '/workflows/new']) {
      const r = await fetch(s.url + p);
      expect(r.status, p).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
      expect(r.headers.get('cache-control')).toBe('no-cache');
      expect(await r.text()).toContain('<div id="root">');
    }
  });

  it('caches hashed assets for a year, sends them compressed, and answers 304 to a known ETag', async () => {
    const html = await (await fetch(s.url)).text();
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const r = await fetch(s.url + js, { headers: { 'accept-encoding': 'gzip' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(r.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(r.headers.get('content-encoding')).toBe('gzip');
    expect((await r.text()).length).toBeGreaterThan(1000);
    const again = await fetch(s.url + js, { headers: { 'if-none-match': r.headers.get('etag')! } });
    expect(again.status).toBe(304);
  });

  it('keeps API paths JSON, refuses missing assets, and never serves outside the build', async () => {
    const api = await s.request<AnyBody>('GET', '/api/v1/no-such-thing');
    expect(api.status).toBe(404);
    expect(api.body.error).toMatchObject({
      code: 'NOT_FOUND',
      message: 'no route GET /api/v1/no-such-thing',
    });
    const asset = await fetch(`${s.url}/assets/gone-1234.js`);
    expect(asset.status).toBe(404);
    expect(asset.headers.get('content-type')).toMatch(/^text\/plain/);
    for (const p of [
      '/..%2f..%2fpackage.json',
      '/assets/..%2f..%2f..%2fpackage.json',
      '/%2e%2e/%2e%2e/package.json',
    ]) {
      const r = await fetch(s.url + p);
      const body = await r.text();
      expect(body, p).not.toContain('"devDependencies"');
    }
    const bad = await s.request<AnyBody>('GET', '/%E0%A4%A');
    expect(bad.status).toBe(400);
  });
});
