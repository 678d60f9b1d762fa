/**
 * Throws a corpus of bad input at every route of the API (read from the live route table, so new
 * routes are covered automatically) and asserts: a 4xx with the uniform error body — never a 5xx —
 * and a database that is exactly as it was (the audit log aside, which records refusals).
 */
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RouteInfo } from '../../src/services/api/server.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

/** Routes that legitimately accept anything (webhook receivers take any body). */
const ACCEPTS_ANY_BODY = [/^\/api\/v1\/webhooks\/:/];

const fill = (url: string, ref = 'core.noop'): string =>
  url
    .replace(/:ref\b/g, ref)
    .replace(/:pack\b/g, 'core')
    .replace(/:id\b/g, '1')
    .replace(/:name\b/g, 'x')
    .replace(/:[a-z_]+/gi, 'x');

interface Probe {
  label: string;
  body?: string;
  contentType?: string;
}

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

const BODY_PROBES: Probe[] = [
  { label: 'malformed JSON', body: '{"a": ', contentType: 'application/json' },
  { label: 'trailing garbage', body: '{"a": 1} xyz', contentType: 'application/json' },
  { label: 'JSON array', body: '[1,2,3]', contentType: 'application/json' },
  { label: 'JSON null', body: 'null', contentType: 'application/json' },
  { label: 'JSON string', body: '"hello"', contentType: 'application/json' },
  { label: 'JSON number', body: '42', contentType: 'application/json' },
  { label: 'unknown fields only', body: '{"zz_unknown_field": 1}', contentType: 'application/json' },
  {
    label: 'wrong types',
    body: JSON.stringify({
      ref: 12,
      name: [],
      login: {},
      label: 7,
      password: false,
      enabled: 'yes',
      tags: 'x',
      value: undefined,
      source: 3,
      parameters: 'nope',
      definition: 'nope',
    }),
    contentType: 'application/json',
  },
  {
    label: 'invalid refs',
    body: JSON.stringify({ ref: '../../etc/passwd', pack_ref: 'Bad Pack', name: 'a b', label: 'x' }),
    contentType: 'application/json',
  },
  {
    label: 'prototype pollution',
    body: '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}}',
    contentType: 'application/json',
  },
  { label: 'deep nesting', body: deep(5000), contentType: 'application/json' },
  { label: 'text body', body: 'just text', contentType: 'text/plain' },
  { label: 'unknown media type', body: '<x/>', contentType: 'application/xml' },
];

const QUERY_PROBES = [
  'page=0',
  'page=-1',
  'page=abc',
  'page=1e400',
  'page_size=0',
  'page_size=100000',
  'page_size=-5',
  'enabled=maybe',
  `search=${'x'.repeat(5000)}`,
];

async function snapshot(s: TestServer): Promise<string> {
  const db = s.platform.store.db;
  const tables = (await db.execute(
    // Excluded: the audit log (refusals are recorded) and the tables the background services keep
    // writing whatever the requests do (leases, worker heartbeats, sensor and timer bookkeeping).
    sql`select tablename from pg_tables where schemaname = 'public' and tablename not in ('audit_log', '__drizzle_migrations', 'leases', 'workers', 'sensor_processes', 'sensor_logs', 'timers') order by 1`,
  )) as unknown as { rows: { tablename: string }[] };
  const parts: string[] = [];
  for (const { tablename } of tables.rows) {
    const r = (await db.execute(
      sql.raw(
        `select md5(coalesce(string_agg(t::text, '|' order by t::text), '')) as h, count(*) as n from "${tablename}" t`,
      ),
    )) as unknown as { rows: { h: string; n: number | string }[] };
    parts.push(`${tablename}:${r.rows[0]!.n}:${r.rows[0]!.h}`);
  }
  return parts.join('\n');
}

function expectClientError(where: string, r: { status: number; body: AnyBody }): void {
  const ok =
    r.status >= 400 &&
    r.status < 500 &&
    typeof r.body?.error?.code === 'string' &&
    typeof r.body.error.message === 'string';
  if (!ok)
    throw new Error(
      `${where}: expected a 4xx with the error body, got ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`,
    );
}

describeBackend('bad input never yields a 500 and changes nothing', () => {
  let s: TestServer;
  let routes: RouteInfo[];
  beforeAll(async () => {
    s = await startTestServer({ ATTUNE_BODY_LIMIT: '65536' });
    routes = s.platform.api.routeTable.filter(
      (r) => !r.url.startsWith('/docs') && !r.url.startsWith('/api-spec'),
    );
  });
  afterAll(async () => s?.stop());

  it('write routes refuse malformed, mistyped, unknown and oversized bodies', async () => {
    const before = await snapshot(s);
    const writes = routes.filter(
      (r) => ['POST', 'PUT', 'PATCH'].includes(r.method) && !ACCEPTS_ANY_BODY.some((re) => re.test(r.url)),
    );
    expect(writes.length).toBeGreaterThan(5);
    const failures: string[] = [];
    for (const route of writes) {
      for (const probe of [
        ...BODY_PROBES,
        {
          label: 'oversized body',
          body: JSON.stringify({ label: 'x'.repeat(70_000) }),
          contentType: 'application/json',
        },
      ]) {
        for (const ref of ['core.noop', 'nope.missing', `core.${'x'.repeat(400)}`]) {
          if (ref !== 'core.noop' && !route.url.includes(':')) continue;
          const url = fill(route.url, ref);
          const headers: Record<string, string> = {};
          if (probe.contentType) headers['content-type'] = probe.contentType;
          const r = await s.request<AnyBody>(route.method, url, {
            token: s.adminToken,
            headers,
            raw: probe.body ?? '',
          });
          try {
            expectClientError(`${route.method} ${url} [${probe.label}]`, r);
          } catch (e) {
            failures.push((e as Error).message);
          }
        }
      }
    }
    expect(failures).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(await snapshot(s)).toBe(before);
  }, 300_000);

  it('read routes refuse absurd pagination and malformed ids', async () => {
    const before = await snapshot(s);
    const failures: string[] = [];
    const lists = routes.filter(
      (r) => r.method === 'GET' && !r.url.includes(':') && r.url.startsWith('/api/v1/'),
    );
    for (const route of lists) {
      for (const q of QUERY_PROBES) {
        const r = await s.request<AnyBody>('GET', `${route.url}?${q}`, { token: s.adminToken });
        if (r.status === 200 && (q.startsWith('search') || q.startsWith('enabled'))) continue; // lists may ignore filters they lack
        if (r.status === 200 && !r.body?.pagination) continue; // not a paginated list
        try {
          expectClientError(`GET ${route.url}?${q}`, r);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    }
    const byId = routes.filter((r) => r.url.includes(':id'));
    for (const route of byId) {
      for (const id of ['0', '-1', 'abc', '1e30', '99999999999999999999', '1.5', '%00']) {
        const url = route.url.replace(':id', id).replace(/:[a-z_]+/gi, 'x');
        const r = await s.request<AnyBody>(route.method, url, {
          token: s.adminToken,
          ...(route.method === 'GET' || route.method === 'DELETE' ? {} : { body: {} }),
        });
        try {
          expectClientError(`${route.method} ${url}`, r);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(await snapshot(s)).toBe(before);
  }, 300_000);

  it('unknown refs answer 404 on every read, update and delete by ref', async () => {
    const before = await snapshot(s);
    const failures: string[] = [];
    for (const route of routes.filter((r) => r.url.includes(':ref'))) {
      for (const ref of ['nope.missing', 'not-a-ref', `x.${'y'.repeat(600)}`, 'a.%2e%2e%2fb']) {
        const url = fill(route.url, ref);
        const r = await s.request<AnyBody>(route.method, url, {
          token: s.adminToken,
          ...(['POST', 'PUT', 'PATCH'].includes(route.method) ? { body: { label: 'x' } } : {}),
        });
        try {
          expectClientError(`${route.method} ${url}`, r);
        } catch (e) {
          failures.push((e as Error).message);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(await snapshot(s)).toBe(before);
  }, 300_000);
});
