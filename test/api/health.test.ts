import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

describeBackend('health and API basics', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => s?.stop());

  it('answers 200 with the state of its parts once ready', async () => {
    const r = await s.request<AnyBody>('GET', '/health');
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('ok');
    expect(r.body.parts.database.state).toBe('ok');
  });

  it('answers 503 while not ready', async () => {
    s.platform.ctx.health.ready = false;
    try {
      const h = await s.request<AnyBody>('GET', '/health');
      expect(h.status).toBe(503);
      const other = await s.request<AnyBody>('GET', '/api/v1/packs');
      expect(other.status).toBe(503);
      expect(other.body.error.code).toBe('SERVICE_UNAVAILABLE');
    } finally {
      s.platform.ctx.health.ready = true;
    }
  });

  it('unknown routes get the uniform 404 body', async () => {
    const r = await s.request<AnyBody>('GET', '/api/v1/nope', { token: s.adminToken });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('NOT_FOUND');
  });

  it('serves the OpenAPI document and Swagger UI offline without auth', async () => {
    const spec = await s.request<AnyBody>('GET', '/api-spec/openapi.json');
    expect(spec.status).toBe(200);
    expect(spec.body.openapi).toMatch(/^3\./);
    const ui = await s.request('GET', '/docs/');
    expect(ui.status).toBe(200);
    expect(String(ui.body)).toContain('swagger-ui');
    expect(String(ui.body)).not.toMatch(/https?:\/\/(?!localhost|127\.0\.0\.1)[a-z]/i);
  });
});
