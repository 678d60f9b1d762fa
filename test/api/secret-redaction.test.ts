/**
 * A secret parameter stays secret whatever the action does with it: printed to its output or
 * returned in its result, it is stored and served as `********`.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const SECRET = 'sup3r-s3cret-token-value';

describeBackend('secret redaction', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
    const t = s.adminToken;
    expect(
      (
        await s.request('POST', '/api/v1/packs', {
          token: t,
          body: { ref: 'sec', label: 'Sec', version: '1.0.0' },
        })
      ).status,
    ).toBe(201);
    const a = await s.request<AnyBody>('POST', '/api/v1/actions', {
      token: t,
      body: {
        ref: 'sec.leaky',
        label: 'Prints its input',
        runner: 'local-shell-cmd',
        param_schema: {
          type: 'object',
          properties: { cmd: { type: 'string' }, token: { type: 'string', secret: true } },
          required: ['cmd', 'token'],
        },
      },
    });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
  });
  afterAll(async () => s?.stop());

  it('redacts a secret printed to the output and returned in the result', async () => {
    const t = s.adminToken;
    // stdin carries the parameters as JSON: the command prints them to stdout (they become the result)
    // and to stderr. (Secrets split across output chunks are covered by the unit tests.)
    const cmd = 'x=$(cat); printf "%s" "$x"; printf "%s" "$x" >&2';
    const r = await s.request<AnyBody>('POST', '/api/v1/executions', {
      token: t,
      body: { action: 'sec.leaky', parameters: { cmd, token: SECRET } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const id = r.body.data.id;
    let ex: AnyBody;
    const end = Date.now() + 30_000;
    for (;;) {
      ex = (await s.request<AnyBody>('GET', `/api/v1/executions/${id}`, { token: t })).body.data;
      if (['succeeded', 'failed', 'timeout', 'abandoned'].includes(ex.status)) break;
      if (Date.now() > end) throw new Error(`still ${ex.status}`);
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(ex.status, JSON.stringify(ex)).toBe('succeeded');
    expect(ex.parameters.token).toEqual({ $secret: true });
    expect(ex.result.token).toBe('********');
    const out = await s.request<AnyBody>('GET', `/api/v1/executions/${id}/output`, { token: t });
    const text = (out.body.data as { data: string }[]).map((o) => o.data).join('');
    expect(text).toContain('********');
    expect(text).not.toContain('sup3r');
    expect(JSON.stringify(ex)).not.toContain('sup3r');
  }, 60_000);
});
