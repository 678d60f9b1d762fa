/**
 * How `execution tail` copes with the network: a stream that drops is resumed after the last output
 * seen (nothing repeated, nothing lost), and a server without the stream is polled instead. A small
 * HTTP server plays the API here, because cutting a real server's connections at a chosen byte is
 * what is being tested.
 */
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome, runCli } from './support.ts';

interface Exchange {
  method: string;
  url: string;
}

const execution = (status: string) => ({
  id: 1,
  action_ref: 'core.local',
  runner: 'local-shell-cmd',
  status,
  parameters: {},
  result: status === 'succeeded' ? { exit_code: 0 } : null,
  error: null,
  parent_id: null,
  root_id: null,
  task_name: null,
  enforcement_id: null,
  rule_ref: null,
  trigger_ref: null,
  event_id: null,
  created_by: 'admin',
  rerun_of: null,
  worker_id: null,
  attempt: 1,
  timeout_seconds: null,
  created_at: '2025-01-01T00:00:00.000Z',
  scheduled_at: null,
  started_at: '2025-01-01T00:00:00.000Z',
  finished_at: status === 'succeeded' ? '2025-01-01T00:00:02.000Z' : null,
  updated_at: status === 'succeeded' ? '2025-01-01T00:00:02.000Z' : '2025-01-01T00:00:00.000Z',
  duration_ms: status === 'succeeded' ? 2000 : null,
});

const sse = (event: string, data: unknown, id?: number) =>
  `event: ${event}\n${id !== undefined ? `id: ${id}\n` : ''}data: ${JSON.stringify(data)}\n\n`;
const chunk = (seq: number, data: string) => ({ seq, stream: 'stdout', data, truncated: false });

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

describe('following through network trouble', () => {
  const home = new CliHome();
  let server: http.Server;
  let url = '';
  let mode: 'drop' | 'no-stream' = 'drop';
  let streams = 0;
  let polls = 0;
  const seen: Exchange[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      seen.push({ method: req.method ?? '', url: req.url ?? '' });
      const u = new URL(req.url ?? '/', 'http://x');
      if (req.headers['x-api-key'] !== 'test-key')
        return json(res, 401, { error: { code: 'UNAUTHORIZED', message: 'Authentication required' } });
      if (u.pathname === '/api/v1/executions/1') {
        polls++;
        const done = mode === 'drop' ? streams >= 2 : polls >= 3;
        return json(res, 200, { data: execution(done ? 'succeeded' : 'running') });
      }
      if (u.pathname === '/api/v1/executions/1/stream') {
        if (mode === 'no-stream')
          return json(res, 404, { error: { code: 'NOT_FOUND', message: 'Route not found' } });
        streams++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        if (streams === 1) {
          // status, two chunks, then the connection breaks in the middle of an event
          res.write(sse('status', execution('running')));
          res.write(sse('output', chunk(1, 'one\n'), 1));
          res.write(sse('output', chunk(2, 'two\n'), 2));
          res.write('event: output\nid: 3\ndata: {"seq": 3, "stre');
          setTimeout(() => res.socket?.destroy(), 50);
          return;
        }
        // the reconnection: only what follows seq 2, as `after` asks
        const after = Number(u.searchParams.get('after') ?? 0);
        const rest = [chunk(3, 'three\n'), chunk(4, 'four\n')].filter((c) => c.seq > after);
        res.write(sse('status', execution('running')));
        for (const c of rest) res.write(sse('output', c, c.seq));
        res.write(sse('status', execution('succeeded')));
        res.end(sse('end', { execution_id: 1, status: 'succeeded' }));
        return;
      }
      if (u.pathname === '/api/v1/executions/1/output') {
        const after = Number(u.searchParams.get('after') ?? 0);
        const all = [chunk(1, 'polled one\n'), chunk(2, 'polled two\n')].slice(0, Math.min(polls, 2));
        const data = all.filter((c) => c.seq > after);
        return json(res, 200, { data, next_after: data.at(-1)?.seq ?? after, has_more: false });
      }
      json(res, 404, { error: { code: 'NOT_FOUND', message: `no ${u.pathname}` } });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => {
    server.close();
    home.remove();
  });

  it('resumes a dropped stream after the last output seen', async () => {
    mode = 'drop';
    const r = await runCli(home, ['execution', 'tail', '1'], {
      env: { ATTUNE_URL: url, ATTUNE_API_KEY: 'test-key' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'one\ntwo\nthree\nfour\n✔ core.local #1 succeeded in 2.0s\nresult:\n  exit_code: 0\n',
    );
    const reconnect = seen.filter((x) => x.url.startsWith('/api/v1/executions/1/stream'));
    expect(reconnect.map((x) => x.url)).toEqual([
      '/api/v1/executions/1/stream',
      '/api/v1/executions/1/stream?after=2',
    ]);
  });

  it('polls the execution and its output when the server has no stream', async () => {
    mode = 'no-stream';
    polls = 0;
    const r = await runCli(home, ['execution', 'tail', '1'], {
      env: { ATTUNE_URL: url, ATTUNE_API_KEY: 'test-key' },
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(
      'polled one\npolled two\n✔ core.local #1 succeeded in 2.0s\nresult:\n  exit_code: 0\n',
    );
  });
});
