import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileHostPatterns, isPatternError } from '../../src/services/worker/runners/hosts.ts';
import type { HttpResult } from '../../src/services/worker/runners/http.ts';
import { type RunnerConfig, runAction } from '../../src/services/worker/runners/runner.ts';
import { makeRequest } from './runners-helpers.ts';

const hits: string[] = [];
let other = ''; // origin of a second server (another origin for redirects)

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  hits.push(`${req.method} ${url.pathname}`);
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
    res.end(JSON.stringify(body));
  };
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const p = url.pathname;
    if (p === '/json') return json(200, { hello: 'world', n: [1, 2] }, { 'x-custom': 'yes' });
    if (p === '/echo') {
      return json(200, { method: req.method, headers: req.headers, body, query: url.search });
    }
    if (p === '/text') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('just text');
    }
    if (p === '/latin1') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=iso-8859-1' });
      return res.end(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    }
    if (p.startsWith('/status/')) return json(Number(p.slice(8)), { code: Number(p.slice(8)) });
    if (p.startsWith('/hops/')) {
      const n = Number(p.slice(6));
      res.writeHead(302, { location: n > 1 ? `/hops/${n - 1}` : '/json' });
      return res.end('moving');
    }
    if (p === '/see-other') {
      res.writeHead(303, { location: '/echo' });
      return res.end();
    }
    if (p === '/temporary') {
      res.writeHead(307, { location: '/echo?kept=1' });
      return res.end();
    }
    if (p === '/same-origin') {
      res.writeHead(302, { location: '/echo' });
      return res.end();
    }
    if (p === '/cross-origin') {
      res.writeHead(302, { location: `${other}/echo` });
      return res.end();
    }
    if (p === '/to-file') {
      res.writeHead(302, { location: 'file:///etc/passwd' });
      return res.end();
    }
    if (p === '/loop') {
      res.writeHead(301, { location: '/loop' });
      return res.end();
    }
    if (p === '/slow') return; // never answers
    if (p === '/big') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end('b'.repeat(3 * 1024 * 1024));
    }
    if (p === '/big-json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ data: 'j'.repeat(5000) }));
    }
    if (p === '/gzip') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      return res.end(zlib.gzipSync(JSON.stringify({ compressed: true })));
    }
    if (p === '/not-json') {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{oops');
    }
    if (p === '/problem') {
      res.writeHead(422, { 'content-type': 'application/problem+json' });
      return res.end(JSON.stringify({ title: 'invalid' }));
    }
    json(404, { error: 'no route' });
  });
}

const servers: (http.Server | https.Server)[] = [];
async function listen(s: http.Server | https.Server): Promise<number> {
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return (s.address() as AddressInfo).port;
}

let base = '';
let port = 0;
let tlsBase = '';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-http-'));
const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

beforeAll(async () => {
  port = await listen(http.createServer(handler));
  base = `http://127.0.0.1:${port}`;
  other = `http://localhost:${await listen(http.createServer(handler))}`;
  if (hasOpenssl) {
    const key = path.join(tmp, 'key.pem');
    const cert = path.join(tmp, 'cert.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'ignore' },
    );
    const s = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, handler);
    tlsBase = `https://127.0.0.1:${await listen(s)}`;
  } else {
    console.warn('openssl is not installed: the TLS tests are skipped');
  }
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const call = (parameters: Record<string, unknown>, over = {}, config: RunnerConfig = {}) =>
  runAction(makeRequest({ runner: 'http-request', parameters, ...over }).req, config);
const resultOf = (o: { result: unknown }) => o.result as HttpResult;
const echoed = (o: { result: unknown }) =>
  resultOf(o).body as { method: string; headers: Record<string, string>; body: string; query: string };

describe('http-request: requests and responses', () => {
  it('GET parses a JSON response', async () => {
    const out = await call({ url: `${base}/json` });
    expect(out.status).toBe('succeeded');
    const r = resultOf(out);
    expect(r).toMatchObject({
      status: 200,
      body: { hello: 'world', n: [1, 2] },
      url: `${base}/json`,
      redirects: 0,
    });
    expect(r.headers['x-custom']).toBe('yes');
    expect(r.headers['content-type']).toMatch(/application\/json/);
    expect(r.elapsed_ms).toBeGreaterThanOrEqual(0);
    expect(r.truncated).toBe(false);
  });

  it('POST sends a JSON body with its content type, headers and query', async () => {
    const out = await call({
      url: `${base}/echo?a=1`,
      method: 'post',
      body: { name: 'x', list: [1] },
      headers: { 'X-Trace': 'abc', 'X-Num': 5 },
      query: { b: 'two words', c: [1, 2], skip: null },
    });
    expect(out.status).toBe('succeeded');
    const e = echoed(out);
    expect(e.method).toBe('POST');
    expect(JSON.parse(e.body)).toEqual({ name: 'x', list: [1] });
    expect(e.headers['content-type']).toBe('application/json');
    expect(e.headers['x-trace']).toBe('abc');
    expect(e.headers['x-num']).toBe('5');
    expect(e.query).toBe('?a=1&b=two+words&c=1&c=2');
  });

  it('json sends any JSON value as the body', async () => {
    const out = await call({ url: `${base}/echo`, method: 'POST', json: ['a', 1, null] });
    expect(echoed(out)).toMatchObject({
      body: '["a",1,null]',
      headers: { 'content-type': 'application/json' },
    });
    const both = await call({ url: `${base}/echo`, method: 'POST', json: {}, body: 'x' });
    expect(both.error).toMatchObject({
      type: 'invalid_parameters',
      message: expect.stringMatching(/either 'body' or 'json'/),
    });
  });

  it('a string body is sent as it is, with the caller’s content type', async () => {
    const out = await call({
      url: `${base}/echo`,
      method: 'PUT',
      body: 'a=1&b=2',
      headers: { 'content-type': 'text/plain' },
    });
    expect(echoed(out)).toMatchObject({
      method: 'PUT',
      body: 'a=1&b=2',
      headers: { 'content-type': 'text/plain' },
    });
  });

  it('non-JSON bodies are text, decoded with their charset; content-encoding is undone', async () => {
    expect(resultOf(await call({ url: `${base}/text` })).body).toBe('just text');
    expect(resultOf(await call({ url: `${base}/latin1` })).body).toBe('café');
    expect(
      resultOf(await call({ url: `${base}/gzip`, headers: { 'accept-encoding': 'gzip' } })).body,
    ).toEqual({
      compressed: true,
    });
    expect(resultOf(await call({ url: `${base}/not-json` })).body).toBe('{oops');
  });

  it('basic and bearer authentication', async () => {
    const basic = await call({
      url: `${base}/echo`,
      auth: { type: 'basic', username: 'u', password: 'p:w' },
    });
    expect(echoed(basic).headers.authorization).toBe(`Basic ${Buffer.from('u:p:w').toString('base64')}`);
    const bearer = await call({ url: `${base}/echo`, auth: { type: 'bearer', token: 'tkn' } });
    expect(echoed(bearer).headers.authorization).toBe('Bearer tkn');
    const pair = await call({ url: `${base}/echo`, username: 'bob', password: 'pw' });
    expect(echoed(pair).headers.authorization).toBe(`Basic ${Buffer.from('bob:pw').toString('base64')}`);
    const inUrl = await call({ url: `http://al%40ice:pw@127.0.0.1:${port}/echo` });
    expect(echoed(inUrl).headers.authorization).toBe(`Basic ${Buffer.from('al@ice:pw').toString('base64')}`);
    expect(resultOf(inUrl).url).toBe(`${base}/echo`);
  });

  it('a status ≥ 400 fails, keeping the response; fail_on_status: false accepts it', async () => {
    const out = await call({ url: `${base}/status/503` });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'http_status' } });
    expect(out.error?.message).toBe(`GET ${base}/status/503 answered 503`);
    expect(resultOf(out)).toMatchObject({ status: 503, body: { code: 503 } });
    const problem = await call({ url: `${base}/problem` });
    expect(resultOf(problem).body).toEqual({ title: 'invalid' });

    const accepted = await call({ url: `${base}/status/404`, fail_on_status: false });
    expect(accepted).toMatchObject({ status: 'succeeded', result: { status: 404 } });
    const byMeta = await call({ url: `${base}/status/404` }, { meta: { fail_on_status: false } });
    expect(byMeta.status).toBe('succeeded');
  });

  it('caps the body: truncated and not parsed', async () => {
    const out = await call({ url: `${base}/big` }, { limits: { maxOutputBytes: 1024 * 1024 } });
    expect(out.status).toBe('succeeded');
    expect(out.truncated.stdout).toBe(true);
    const r = resultOf(out);
    expect(r.truncated).toBe(true);
    expect(r.body).toBe('b'.repeat(1024 * 1024));
    const own = resultOf(await call({ url: `${base}/big`, max_response_bytes: 10 }));
    expect(own).toMatchObject({ truncated: true, body: 'b'.repeat(10) });
    const j = resultOf(await call({ url: `${base}/big-json` }, {}, { http: { maxResponseBytes: 100 } }));
    expect(j.truncated).toBe(true);
    expect(typeof j.body).toBe('string');
    expect((j.body as string).length).toBe(100);
  });

  it('refuses bad parameters clearly', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{}, /'url' must be a non-empty string/],
      [{ url: 'not a url' }, /not a valid URL/],
      [{ url: 'ftp://example.com/x' }, /only http and https/],
      [{ url: `${base}/json`, method: 'GET POST' }, /'method'/],
      [{ url: `${base}/json`, method: 'CONNECT' }, /CONNECT/],
      [{ url: `${base}/json`, headers: { 'bad name': 'x' } }, /not a valid header name/],
      [{ url: `${base}/json`, headers: { x: 'a\r\nInjected: 1' } }, /line break/],
      [{ url: `${base}/json`, headers: { x: { y: 1 } } }, /must be a string/],
      [{ url: `${base}/json`, query: 'a=1' }, /'query' must be an object/],
      [{ url: `${base}/json`, timeout: 0 }, /'timeout'/],
      [{ url: `${base}/json`, max_redirects: -1 }, /'max_redirects'/],
      [{ url: `${base}/json`, verify_tls: 'no' }, /'verify_tls' must be a boolean/],
      [{ url: `${base}/json`, auth: { type: 'digest' } }, /'basic' or 'bearer'/],
      [
        { url: `${base}/json`, auth: { type: 'bearer', token: 't' }, headers: { Authorization: 'x' } },
        /credentials once/,
      ],
      [{ url: `${base}/json`, denied_hosts: ['10.0.0.0/99'] }, /not a valid CIDR/],
      [{ url: `${base}/json`, allowed_hosts: 'example.com' }, /list of host patterns/],
      [{ url: `${base}/json`, password: 'pw' }, /'password' needs a 'username'/],
      [{ url: `${base}/json`, username: 'u', auth: { type: 'bearer', token: 't' } }, /credentials once/],
      [{ url: `${base}/json`, max_response_bytes: -5 }, /'max_response_bytes'/],
    ];
    for (const [parameters, message] of cases) {
      const out = await call(parameters);
      expect(out, JSON.stringify(parameters)).toMatchObject({
        status: 'failed',
        error: { type: 'invalid_parameters' },
      });
      expect(out.error?.message, JSON.stringify(parameters)).toMatch(message);
    }
  });

  it('a connection failure is an http_error, not a crash', async () => {
    const out = await call({ url: 'http://127.0.0.1:1/' });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'http_error' } });
    expect(out.error?.message).toMatch(/ECONNREFUSED/);
  });
});

describe('http-request: redirects', () => {
  it('follows redirects (up to max_redirects)', async () => {
    const out = await call({ url: `${base}/hops/3` });
    expect(resultOf(out)).toMatchObject({
      status: 200,
      body: { hello: 'world' },
      url: `${base}/json`,
      redirects: 3,
    });
    const tooMany = await call({ url: `${base}/hops/3`, max_redirects: 2 });
    expect(tooMany).toMatchObject({ status: 'failed', error: { type: 'too_many_redirects' } });
    const loop = await call({ url: `${base}/loop` });
    expect(loop.error?.message).toMatch(/more than 5 redirects/);
  });

  it('does not follow when follow_redirects is false', async () => {
    const out = await call({ url: `${base}/hops/1`, follow_redirects: false });
    expect(out.status).toBe('succeeded');
    expect(resultOf(out)).toMatchObject({ status: 302, body: 'moving', redirects: 0 });
    expect(resultOf(out).headers.location).toBe('/json');
  });

  it('303 turns into GET without body; 307 keeps the method and body', async () => {
    const seeOther = echoed(await call({ url: `${base}/see-other`, method: 'POST', body: { a: 1 } }));
    expect(seeOther).toMatchObject({ method: 'GET', body: '' });
    expect(seeOther.headers['content-type']).toBeUndefined();
    const temp = echoed(await call({ url: `${base}/temporary`, method: 'POST', body: { a: 1 } }));
    expect(temp).toMatchObject({ method: 'POST', body: '{"a":1}', query: '?kept=1' });
  });

  it('credentials follow a redirect within the origin, not to another origin', async () => {
    const auth = { type: 'bearer', token: 'tkn' };
    const same = await call({ url: `${base}/same-origin`, auth });
    expect(echoed(same).headers.authorization).toBe('Bearer tkn');
    const cross = await call({
      url: `${base}/cross-origin`,
      auth,
      headers: { cookie: 'c=1', 'x-keep': 'k' },
    });
    expect(resultOf(cross).url).toBe(`${other}/echo`);
    expect(echoed(cross).headers.authorization).toBeUndefined();
    expect(echoed(cross).headers.cookie).toBeUndefined();
    expect(echoed(cross).headers['x-keep']).toBe('k');
  });

  it('refuses a redirect to another scheme', async () => {
    const out = await call({ url: `${base}/to-file` });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'http_error' } });
    expect(out.error?.message).toMatch(/unsupported scheme: file/);
  });
});

describe('http-request: timeouts and cancel', () => {
  it('the timeout parameter ends a request that does not answer', async () => {
    const t = performance.now();
    const out = await call({ url: `${base}/slow`, timeout: 0.3 });
    expect(out).toMatchObject({ status: 'timeout', error: { type: 'timeout' } });
    expect(out.error?.message).toMatch(/timed out after 0.3 s \(parameter 'timeout'\)/);
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('the action timeout applies as well', async () => {
    const out = await call({ url: `${base}/slow` }, { timeoutSeconds: 0.3 });
    expect(out.status).toBe('timeout');
    expect(out.error?.message).toMatch(/action timeout/);
  });

  it('a cancel aborts the request', async () => {
    const r = makeRequest({ runner: 'http-request', parameters: { url: `${base}/slow` } });
    setTimeout(() => r.controller.abort(), 150);
    const out = await runAction(r.req);
    expect(out).toMatchObject({ status: 'canceled', error: { type: 'canceled' } });
  });
});

describe.skipIf(!hasOpenssl)('http-request: TLS', () => {
  it('a self-signed certificate fails verification by default', async () => {
    const out = await call({ url: `${tlsBase}/json` });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'tls_error' } });
    expect(out.error?.message).toMatch(/self[- ]signed/i);
    expect(out.error?.message).toMatch(/verify_tls: false/);
  });

  it('verify_tls: false accepts it', async () => {
    const out = await call({ url: `${tlsBase}/json`, verify_tls: false });
    expect(out).toMatchObject({ status: 'succeeded', result: { status: 200, body: { hello: 'world' } } });
  });
});

describe('http-request: host allow and deny lists', () => {
  it('the worker deny list refuses a host before any request is made', async () => {
    hits.length = 0;
    const out = await call({ url: `${base}/json` }, {}, { http: { deniedHosts: ['127.0.0.1'] } });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'host_denied' } });
    expect(out.error?.message).toBe(
      "host '127.0.0.1' is denied by the worker configuration (pattern '127.0.0.1')",
    );
    expect(hits).toEqual([]);
  });

  it('deny patterns: globs and CIDR blocks, also matched against resolved addresses', async () => {
    hits.length = 0;
    const glob = await call({ url: `${base}/json`, denied_hosts: ['127.*'] });
    expect(glob.error?.message).toMatch(/denied by the action's denied_hosts \(pattern '127\.\*'\)/);
    const cidr = await call({ url: `${base}/json` }, {}, { http: { deniedHosts: ['127.0.0.0/8'] } });
    expect(cidr.error?.type).toBe('host_denied');
    // a name is checked against the addresses it resolves to
    const byName = await call({ url: `${other}/json` }, {}, { http: { deniedHosts: ['127.0.0.0/8'] } });
    expect(byName).toMatchObject({ status: 'failed', error: { type: 'host_denied' } });
    expect(byName.error?.message).toMatch(/host 'localhost' resolves to 127\.0\.0\.1, which is denied/);
    expect(hits).toEqual([]);
  });

  it('every redirect hop is checked', async () => {
    hits.length = 0;
    const out = await call({ url: `${base}/cross-origin`, denied_hosts: ['localhost'] });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'host_denied' } });
    expect(hits).toEqual(['GET /cross-origin']);
  });

  it('allow lists: the worker’s and the action’s both apply, and a deny always wins', async () => {
    const ok = await call(
      { url: `${base}/json`, allowed_hosts: ['127.0.0.1'] },
      {},
      { http: { allowedHosts: ['127.*'] } },
    );
    expect(ok.status).toBe('succeeded');
    const notAllowed = await call({ url: `${other}/json` }, {}, { http: { allowedHosts: ['127.*'] } });
    expect(notAllowed.error?.message).toBe("host 'localhost' is not allowed by the worker configuration");
    const actionList = await call({ url: `${base}/json`, allowed_hosts: ['*.example.com'] });
    expect(actionList.error?.message).toBe("host '127.0.0.1' is not allowed by the action's allowed_hosts");
    const denyWins = await call(
      { url: `${base}/json`, allowed_hosts: ['127.0.0.1'] },
      {},
      { http: { deniedHosts: ['127.0.0.1/32'] } },
    );
    expect(denyWins.error?.type).toBe('host_denied');
  });

  it('host pattern matching', () => {
    const m = compileHostPatterns(['*.example.com', 'db-?.internal', '10.0.0.0/8', 'fd00::/8', 'LocalHost']);
    if (isPatternError(m)) throw new Error(m.message);
    expect(m.match('api.example.com')).toBe('*.example.com');
    expect(m.match('a.b.EXAMPLE.com.')).toBe('*.example.com');
    expect(m.match('example.com')).toBeUndefined();
    expect(m.match('db-1.internal')).toBe('db-?.internal');
    expect(m.match('db-12.internal')).toBeUndefined();
    expect(m.match('10.20.30.40')).toBe('10.0.0.0/8');
    expect(m.match('[::ffff:a00:1]')).toBe('10.0.0.0/8');
    expect(m.match('[fd12::1]')).toBe('fd00::/8');
    expect(m.match('11.0.0.1')).toBeUndefined();
    expect(m.match('localhost')).toBe('LocalHost');
    expect(isPatternError(compileHostPatterns(['exa mple.com']))).toBe(true);
    expect(isPatternError(compileHostPatterns(['10.0.0.0/33']))).toBe(true);
  });
});
