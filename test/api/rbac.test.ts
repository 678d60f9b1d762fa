/**
 * Access control over the whole API, read from the live route table so that every route added
 * later is covered without touching this file:
 * - routes declare their access (a permission, or self-service, or public) and nothing else is public;
 * - every non-public route answers 401 to anonymous callers;
 * - for every route × role, the answer is 403 exactly when the role's grants lack the route's
 *   permission (and the caller is otherwise served: never 401, never a 5xx).
 */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ACTIONS,
  type Action,
  BUILTIN_ROLES,
  checkPermission,
  type Grant,
  RESOURCES,
  type Resource,
} from '../../src/domain/permissions.ts';
import type { RouteInfo } from '../../src/services/api/server.ts';
import { auditLog } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

/** Routes that must answer without credentials (everything else must answer 401). */
const PUBLIC: [method: string, url: RegExp][] = [
  ['GET', /^\/health$/],
  ['POST', /^\/auth\/login$/],
  ['POST', /^\/auth\/refresh$/],
  ['GET', /^\/docs(\/.*)?$/],
  ['GET', /^\/api-spec\/.+$/],
  // webhook receivers check their own signatures; managing webhooks is not public
  ['POST', /^\/api\/v1\/webhooks\/.+$/],
  // the web UI's static files (it signs in through the API)
  ['GET', /^\/\*?$/],
];
const isPublicByDesign = (r: RouteInfo) => PUBLIC.some(([m, re]) => m === r.method && re.test(r.url));
/** Routes outside /api/v1 that only need an authenticated caller (the caller's own session). */
const SELF_SERVICE_PREFIX = '/auth/';

const CUSTOM_GRANTS: Grant[] = [
  { resource: 'packs', actions: ['read', 'update'] },
  { resource: 'executions', actions: ['read', 'cancel'] },
  { resource: 'keys', actions: ['*'] },
  { resource: 'identities', actions: ['read'] },
  { resource: 'audit', actions: ['read'] },
];

interface Caller {
  name: string;
  grants: Grant[];
  headers: Record<string, string>;
}

const PW = 'rbac test password';

/** A plausible concrete path for a route pattern; writes target things that do not exist. */
function concretePath(url: string, method: string): string {
  const read = method === 'GET';
  const value = (param: string): string => {
    if (param === 'ref') return read ? 'core.noop' : 'rbacmissing.thing';
    if (param === 'id') return read ? '1' : '999999999';
    if (param === 'name') return 'x';
    if (param === 'pack') return read ? 'core' : 'rbacmissing';
    return 'x';
  };
  return url
    .replace(/:([A-Za-z_][A-Za-z0-9_]*)(\([^)]*\))?/g, (_m, p: string) => encodeURIComponent(value(p)))
    .replace(/\*/g, 'x');
}

describeBackend('RBAC: every route × every role', () => {
  let s: TestServer;
  let routes: RouteInfo[];
  const callers: Caller[] = [];

  /** Status only: the body is dropped unread, so streaming routes cannot hang the test. */
  async function statusOf(
    method: string,
    path: string,
    headers: Record<string, string>,
  ): Promise<{ status: number; body: AnyBody }> {
    const write = method !== 'GET' && method !== 'DELETE' && method !== 'HEAD' && method !== 'OPTIONS';
    const res = await fetch(s.url + path, {
      method,
      headers: write ? { ...headers, 'content-type': 'application/json' } : headers,
      ...(write ? { body: '{}' } : {}),
      signal: AbortSignal.timeout(15_000),
    });
    let body: AnyBody = null;
    if ((res.headers.get('content-type') ?? '').includes('application/json') && res.status >= 400) {
      body = await res.json().catch(() => null);
    } else await res.body?.cancel().catch(() => {});
    return { status: res.status, body };
  }

  /** Runs `fn` over `items`, `n` at a time. */
  async function pool<T>(items: T[], n: number, fn: (x: T) => Promise<void>): Promise<void> {
    let i = 0;
    await Promise.all(
      Array.from({ length: n }, async () => {
        while (i < items.length) await fn(items[i++]!);
      }),
    );
  }

  beforeAll(async () => {
    s = await startTestServer();
    routes = s.platform.api.routeTable.filter((r) => r.method !== 'HEAD' && r.method !== 'OPTIONS');
    const admin = { token: s.adminToken };
    const role = await s.request<AnyBody>('POST', '/api/v1/roles', {
      ...admin,
      body: { name: 'rbac-custom', description: 'a mix of rights', grants: CUSTOM_GRANTS },
    });
    expect(role.status, JSON.stringify(role.body)).toBe(201);
    const users: [string, string, Grant[]][] = [
      ...(Object.entries(BUILTIN_ROLES) as [string, { grants: Grant[] }][]).map(
        ([name, r]) => [name, name, r.grants] as [string, string, Grant[]],
      ),
      ['custom', 'rbac-custom', CUSTOM_GRANTS],
    ];
    for (const [name, roleName, grants] of users) {
      const login = `rbac-${name}`;
      const r = await s.request<AnyBody>('POST', '/api/v1/identities', {
        ...admin,
        body: { login, password: PW, roles: [roleName] },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      callers.push({ name, grants, headers: { authorization: `Bearer ${await s.login(login, PW)}` } });
    }
    // the same decisions hold for an API key (here: a service account with the operator role)
    const svc = await s.request<AnyBody>('POST', '/api/v1/identities', {
      ...admin,
      body: { login: 'rbac-bot', kind: 'service', roles: ['operator'] },
    });
    expect(svc.status).toBe(201);
    const key = await s.request<AnyBody>('POST', '/api/v1/api-keys', {
      ...admin,
      body: { name: 'rbac', identity: 'rbac-bot' },
    });
    expect(key.status).toBe(201);
    callers.push({
      name: 'operator via X-API-Key',
      grants: BUILTIN_ROLES.operator.grants,
      headers: { 'x-api-key': key.body.data.key },
    });
  });
  afterAll(async () => s?.stop());

  it('reads a route table that holds the API', () => {
    const urls = new Set(routes.map((r) => `${r.method} ${r.url}`));
    for (const must of [
      'POST /auth/login',
      'GET /auth/me',
      'GET /api/v1/identities',
      'GET /api/v1/roles',
      'POST /api/v1/api-keys',
      'GET /health',
    ])
      expect(urls.has(must), must).toBe(true);
  });

  it('every non-public /api/v1 route declares a permission (or is explicitly self-service)', () => {
    const undeclared = routes
      .filter((r) => !r.public && r.url.startsWith('/api/v1/') && !r.permission && !r.selfService)
      .map((r) => `${r.method} ${r.url}`);
    expect(undeclared, `routes without a permission:\n${undeclared.join('\n')}`).toEqual([]);
    const strayNoPermission = routes
      .filter(
        (r) =>
          !r.public &&
          !r.permission &&
          !r.selfService &&
          !r.url.startsWith(SELF_SERVICE_PREFIX) &&
          !r.url.startsWith('/api/v1/'),
      )
      .map((r) => `${r.method} ${r.url}`);
    expect(
      strayNoPermission,
      `routes outside /api/v1 with no access rule:\n${strayNoPermission.join('\n')}`,
    ).toEqual([]);
    const badPermission = routes
      .filter(
        (r) =>
          r.permission &&
          (!RESOURCES.includes(r.permission[0] as Resource) || !ACTIONS.includes(r.permission[1] as Action)),
      )
      .map((r) => `${r.method} ${r.url} → ${r.permission!.join(':')}`);
    expect(badPermission, `unknown resource or action:\n${badPermission.join('\n')}`).toEqual([]);
  });

  it('only the health, login, refresh, docs, spec and webhook routes are public', () => {
    const wronglyPublic = routes
      .filter((r) => r.public && !isPublicByDesign(r))
      .map((r) => `${r.method} ${r.url}`);
    expect(wronglyPublic, `public routes that should not be:\n${wronglyPublic.join('\n')}`).toEqual([]);
  });

  it('every other route answers 401 without credentials', async () => {
    const failures: string[] = [];
    const checked = routes.filter((r) => !isPublicByDesign(r));
    expect(checked.length).toBeGreaterThan(10);
    await pool(checked, 4, async (r) => {
      const path = concretePath(r.url, r.method);
      const { status, body } = await statusOf(r.method, path, {});
      if (status !== 401 || body?.error?.code !== 'UNAUTHORIZED')
        failures.push(`${r.method} ${r.url} (${path}) → ${status}`);
    });
    expect(failures.sort(), `answered anonymous callers:\n${failures.join('\n')}`).toEqual([]);
  });

  it.each(['admin', 'editor', 'operator', 'viewer', 'custom', 'operator via X-API-Key'])(
    '%s gets exactly the rights of its grants on every route',
    async (name) => {
      const caller = callers.find((c) => c.name === name)!;
      const wrong: string[] = [];
      const broken: string[] = [];
      const targets = routes.filter((r) => !r.public);
      await pool(targets, 4, async (r) => {
        const path = concretePath(r.url, r.method);
        const allowed = r.permission
          ? checkPermission(caller.grants, r.permission[0] as Resource, r.permission[1] as Action)
          : true;
        const { status, body } = await statusOf(r.method, path, caller.headers);
        const need = r.permission ? r.permission.join(':') : 'authenticated';
        if ((status === 403) !== !allowed)
          wrong.push(`${r.method} ${r.url} [${need}] → ${status}, expected ${allowed ? 'not 403' : '403'}`);
        else if (status === 403 && body?.error?.code !== 'FORBIDDEN')
          wrong.push(`${r.method} ${r.url} → 403 without the FORBIDDEN error body`);
        if (status === 401 || status >= 500) broken.push(`${r.method} ${r.url} (${path}) → ${status}`);
      });
      expect.soft(wrong.sort(), `wrong access decisions for ${name}:\n${wrong.join('\n')}`).toEqual([]);
      expect.soft(broken.sort(), `unexpected 401/5xx for ${name}:\n${broken.join('\n')}`).toEqual([]);
    },
  );

  it('the seeded built-in roles mean what they say', async () => {
    const DEFS = ['packs', 'actions', 'workflows', 'triggers', 'sensors', 'rules', 'webhooks'];
    const RUNTIME = ['events', 'enforcements', 'executions', 'inquiries', 'workers'];
    const shared: Record<string, Action[]> = {
      events: ['read', 'create'],
      enforcements: ['read'],
      executions: ['read', 'execute', 'cancel'],
      inquiries: ['read', 'respond'],
      workers: ['read'],
    };
    const spec: Record<string, (r: string) => Action[]> = {
      admin: () => [...ACTIONS],
      // manages definitions and keys; runs and responds; no identities, roles, API keys or audit
      editor: (r) =>
        DEFS.includes(r)
          ? ['read', 'create', 'update', 'delete']
          : r === 'keys'
            ? ['read', 'create', 'update', 'delete', 'decrypt']
            : (shared[r] ?? []),
      // reads, runs, cancels and responds; changes no definition; cannot decrypt
      operator: (r) => (DEFS.includes(r) || r === 'keys' ? ['read'] : (shared[r] ?? [])),
      viewer: (r) => (DEFS.includes(r) || RUNTIME.includes(r) || r === 'keys' ? ['read'] : []),
    };
    const diffs: string[] = [];
    for (const [role, allowed] of Object.entries(spec)) {
      const r = await s.request<AnyBody>('GET', `/api/v1/roles/${role}`, { token: s.adminToken });
      expect(r.status).toBe(200);
      const grants = r.body.data.grants as Grant[];
      for (const res of RESOURCES)
        for (const a of ACTIONS) {
          const want = allowed(res).includes(a);
          if (checkPermission(grants, res, a) !== want) diffs.push(`${role} ${res}:${a} should be ${want}`);
        }
    }
    expect(diffs).toEqual([]);
  });

  it('refusals are audited', async () => {
    const viewer = callers.find((c) => c.name === 'viewer')!;
    expect((await statusOf('GET', '/api/v1/identities', viewer.headers)).status).toBe(403);
    await new Promise((r) => setTimeout(r, 50)); // the audit write is not awaited by the request
    const rows = await s.platform.store.db.select().from(auditLog).where(eq(auditLog.action, 'rbac.denied'));
    expect(rows.some((a) => a.actor === 'rbac-viewer' && a.outcome === 'denied')).toBe(true);
  });
});
