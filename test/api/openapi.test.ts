/** The OpenAPI document is complete: every route is in it, with a summary, tags and responses. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

describeBackend('OpenAPI document', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => s?.stop());

  it('documents every route with a summary, a tag, and its success and error responses', async () => {
    const spec = (await s.request<AnyBody>('GET', '/api-spec/openapi.json')).body;
    const missing: string[] = [];
    for (const r of s.platform.api.routeTable) {
      // Swagger UI, the document itself, and the web UI's static files are not API operations.
      if (r.url.startsWith('/docs') || r.url === '/api-spec/openapi.json' || r.url === '/' || r.url === '/*')
        continue;
      const p = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
      const op = spec.paths?.[p]?.[r.method.toLowerCase()];
      if (!op) {
        missing.push(`${r.method} ${p}: not in the document`);
        continue;
      }
      if (!op.summary) missing.push(`${r.method} ${p}: no summary`);
      if (!op.tags?.length) missing.push(`${r.method} ${p}: no tag`);
      const codes = Object.keys(op.responses ?? {});
      if (!codes.some((c) => c.startsWith('2'))) missing.push(`${r.method} ${p}: no success response`);
      if (!r.public && r.url.startsWith('/api/') && !codes.some((c) => c.startsWith('4')))
        missing.push(`${r.method} ${p}: no error response`);
    }
    expect(missing).toEqual([]);
  });
});
