import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

describeBackend('triggers API', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => s?.stop());

  it('rejects anonymous calls', async () => {
    const r = await s.request<AnyBody>('GET', '/api/v1/triggers');
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('UNAUTHORIZED');
  });

  it('404s a trigger of an unknown pack and refuses unknown fields', async () => {
    const r = await s.request<AnyBody>('POST', '/api/v1/triggers', {
      token: s.adminToken,
      body: { ref: 'nopack.thing' },
    });
    expect(r.status).toBe(404);
    const bad = await s.request<AnyBody>('POST', '/api/v1/triggers', {
      token: s.adminToken,
      body: { ref: 'core.thing', bogus: 1 },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/bogus/);
  });
});
