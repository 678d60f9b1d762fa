// Sensors and rules over real HTTP: CRUD, reference checks (trigger and action must exist),
// trigger_params against the trigger's schema, criteria structure, enable/disable, filters.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packs, rules, sensors } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

async function createPack(s: TestServer, ref: string): Promise<void> {
  await s.platform.store.db
    .insert(packs)
    .values({ ref, label: ref, version: '1.0.0', source: { type: 'api' } })
    .onConflictDoNothing();
}

describeBackend('sensors and rules API', () => {
  let s: TestServer;
  let token: string;
  const req = (method: string, path: string, body?: unknown) =>
    s.request<AnyBody>(method, path, { token, body });
  const created = async (path: string, body: unknown) => {
    const r = await req('POST', path, body);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    return r.body.data;
  };

  beforeAll(async () => {
    s = await startTestServer();
    token = s.adminToken;
    await createPack(s, 'mon');
    await createPack(s, 'ops');
    await created('/api/v1/triggers', {
      ref: 'mon.alert',
      param_schema: {
        type: 'object',
        properties: { channel: { type: 'string' }, min_level: { type: 'integer', minimum: 0 } },
        required: ['channel'],
        additionalProperties: false,
      },
    });
    await created('/api/v1/triggers', { ref: 'mon.heartbeat' });
    await created('/api/v1/actions', { ref: 'ops.page', runner: 'echo' });
    await created('/api/v1/actions', { ref: 'ops.log', runner: 'noop' });
  });
  afterAll(async () => s?.stop());

  describe('sensors', () => {
    it('creates, reads, updates and deletes a sensor', async () => {
      const d = await created('/api/v1/sensors', {
        ref: 'mon.watcher',
        label: 'Watcher',
        description: 'Polls the monitoring API',
        runner: 'python-script',
        entry_point: 'sensors/watch.py',
        trigger_refs: ['mon.alert', 'mon.heartbeat'],
        config: { url: 'https://mon.example' },
        poll_interval_seconds: 30,
        tags: ['mon'],
      });
      expect(d).toMatchObject({
        ref: 'mon.watcher',
        pack_ref: 'mon',
        name: 'watcher',
        runner: 'python-script',
        entry_point: 'sensors/watch.py',
        trigger_refs: ['mon.alert', 'mon.heartbeat'],
        config: { url: 'https://mon.example' },
        poll_interval_seconds: 30,
        tags: ['mon'],
        enabled: true,
      });
      expect((await req('GET', '/api/v1/sensors/mon.watcher')).body.data).toEqual(d);
      const u = await req('PUT', '/api/v1/sensors/mon.watcher', {
        poll_interval_seconds: null,
        trigger_refs: ['mon.heartbeat'],
        enabled: false,
      });
      expect(u.status).toBe(200);
      expect(u.body.data).toMatchObject({
        poll_interval_seconds: null,
        trigger_refs: ['mon.heartbeat'],
        enabled: false,
        label: 'Watcher',
      });
      expect((await req('DELETE', '/api/v1/sensors/mon.watcher')).status).toBe(204);
      expect((await req('GET', '/api/v1/sensors/mon.watcher')).status).toBe(404);
      expect((await req('DELETE', '/api/v1/sensors/mon.watcher')).status).toBe(404);
      expect((await req('PUT', '/api/v1/sensors/mon.watcher', { label: 'x' })).status).toBe(404);
    });

    it('422s unknown trigger types, naming each', async () => {
      const r = await req('POST', '/api/v1/sensors', {
        ref: 'mon.bad',
        entry_point: 'x.sh',
        trigger_refs: ['mon.alert', 'mon.nope', 'other.gone'],
      });
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe('UNPROCESSABLE_ENTITY');
      expect(r.body.error.message).toContain("'mon.nope'");
      expect(r.body.error.message).toContain("'other.gone'");
      expect(r.body.error.details.missing).toEqual(['mon.nope', 'other.gone']);
      await created('/api/v1/sensors', { ref: 'mon.ok', entry_point: 'x.sh', trigger_refs: ['mon.alert'] });
      const u = await req('PUT', '/api/v1/sensors/mon.ok', { trigger_refs: ['mon.vanished'] });
      expect(u.status).toBe(422);
      expect((await req('GET', '/api/v1/sensors/mon.ok')).body.data.trigger_refs).toEqual(['mon.alert']);
    });

    it('validates bodies (400) and refuses duplicates (409)', async () => {
      const before = (await s.platform.store.db.select().from(sensors)).length;
      const base = { ref: 'mon.v', entry_point: 'v.sh', trigger_refs: ['mon.alert'] };
      for (const [name, body] of [
        ['no trigger_refs', { ref: 'mon.v', entry_point: 'v.sh' }],
        ['empty trigger_refs', { ...base, trigger_refs: [] }],
        ['repeated trigger ref', { ...base, trigger_refs: ['mon.alert', 'mon.alert'] }],
        ['malformed trigger ref', { ...base, trigger_refs: ['nodot'] }],
        ['unknown runner', { ...base, runner: 'http-request' }],
        ['script without entry point', { ...base, entry_point: '' }],
        ['escaping entry point', { ...base, entry_point: '../../bin/sh' }],
        ['poll interval 0', { ...base, poll_interval_seconds: 0 }],
        ['config not an object', { ...base, config: 'x' }],
        ['unknown field', { ...base, interval: 5 }],
      ] as const) {
        const r = await req('POST', '/api/v1/sensors', body);
        expect(r.status, name).toBe(400);
        expect(r.body.error.code, name).toBe('VALIDATION_ERROR');
      }
      expect((await s.platform.store.db.select().from(sensors)).length).toBe(before);
      const dup = await req('POST', '/api/v1/sensors', {
        ref: 'mon.ok',
        entry_point: 'x.sh',
        trigger_refs: ['mon.alert'],
      });
      expect(dup.status).toBe(409);
      expect(
        (await req('PUT', '/api/v1/sensors/mon.ok', { runner: 'node-script', entry_point: '/abs.js' }))
          .status,
      ).toBe(400);
    });

    it('filters by trigger, tags, enabled, search and pack; 404s an unknown pack', async () => {
      await created('/api/v1/sensors', {
        ref: 'ops.beat',
        runner: 'local-shell-cmd',
        entry_point: 'echo beat',
        trigger_refs: ['mon.heartbeat'],
        tags: ['beat'],
        enabled: false,
      });
      const refs = async (q: string) =>
        (await req('GET', `/api/v1/sensors?${q}`)).body.data.map((x: AnyBody) => x.ref).sort();
      expect(await refs('trigger=mon.heartbeat')).toEqual(['ops.beat']);
      expect(await refs('trigger=mon.alert')).toEqual(['mon.ok']);
      expect(await refs('tags=beat,zzz')).toEqual(['ops.beat']);
      expect(await refs('enabled=false')).toEqual(['ops.beat']);
      expect(await refs('search=BEAT')).toEqual(['ops.beat']);
      expect(await refs('pack=mon')).toEqual(['mon.ok']);
      const byPack = await req('GET', '/api/v1/packs/ops/sensors');
      expect(byPack.body.data.map((x: AnyBody) => x.ref)).toEqual(['ops.beat']);
      expect(byPack.body.pagination.total_items).toBe(1);
      expect((await req('GET', '/api/v1/packs/nopack/sensors')).status).toBe(404);
      expect((await req('GET', '/api/v1/sensors?page_size=1001')).status).toBe(400);
      expect((await req('GET', '/api/v1/sensors?page_size=0')).status).toBe(400);
    });
  });

  describe('rules', () => {
    const rule = (ref: string, extra: Record<string, unknown> = {}) => ({
      ref,
      trigger_ref: 'mon.alert',
      trigger_params: { channel: 'ops' },
      action_ref: 'ops.page',
      ...extra,
    });

    it('creates a rule with criteria and templated parameters, and reads it back', async () => {
      const criteria = {
        'trigger.severity': { type: 'inside', pattern: ['critical', 'error'] },
        'trigger.host': { type: 'regex', pattern: '^db-[0-9]+$' },
        'trigger.maintenance': { type: 'nexists' },
        'trigger.checks': {
          type: 'search',
          condition: 'any',
          pattern: { 'item.status': { type: 'equals', pattern: 'failed' } },
        },
        'trigger.count': { type: 'gt', pattern: '{{ keys.threshold }}' },
        expression: '{{ trigger.count > 3 or trigger.force }}',
      };
      const d = await created('/api/v1/rules', {
        ...rule('ops.page_on_alert'),
        label: 'Page on alert',
        description: 'Pages the on-call',
        criteria,
        action_params: { message: 'Alert on {{ trigger.host }}', count: '{{ trigger.count }}' },
        tags: ['paging'],
      });
      expect(d).toMatchObject({
        ref: 'ops.page_on_alert',
        pack_ref: 'ops',
        name: 'page_on_alert',
        label: 'Page on alert',
        trigger_ref: 'mon.alert',
        trigger_params: { channel: 'ops' },
        criteria,
        action_ref: 'ops.page',
        action_params: { message: 'Alert on {{ trigger.host }}', count: '{{ trigger.count }}' },
        tags: ['paging'],
        enabled: true,
        owner_login: 'admin',
      });
      expect((await req('GET', '/api/v1/rules/ops.page_on_alert')).body.data).toEqual(d);
    });

    it('422s a missing trigger or action, naming them', async () => {
      const both = await req(
        'POST',
        '/api/v1/rules',
        rule('ops.r1', { trigger_ref: 'mon.gone', action_ref: 'ops.gone' }),
      );
      expect(both.status).toBe(422);
      expect(both.body.error.code).toBe('UNPROCESSABLE_ENTITY');
      expect(both.body.error.message).toContain("'mon.gone'");
      expect(both.body.error.message).toContain("'ops.gone'");
      const act = await req('POST', '/api/v1/rules', rule('ops.r1', { action_ref: 'ops.gone' }));
      expect(act.status).toBe(422);
      expect(act.body.error.details).toMatchObject({ action_ref: 'ops.gone' });
      expect(act.body.error.details).not.toHaveProperty('trigger_ref');
      expect((await req('GET', '/api/v1/rules/ops.r1')).status).toBe(404);
    });

    it("checks trigger_params against the trigger's param_schema", async () => {
      for (const [name, params] of [
        ['missing required', {}],
        ['wrong type', { channel: 5 }],
        ['unknown param', { channel: 'ops', extra: 1 }],
        ['below minimum', { channel: 'ops', min_level: -1 }],
      ] as const) {
        const r = await req('POST', '/api/v1/rules', rule('ops.r2', { trigger_params: params }));
        expect(r.status, name).toBe(400);
        expect(r.body.error.message, name).toContain('trigger_params');
        expect(r.body.error.details.problems.length, name).toBeGreaterThan(0);
      }
      // a trigger without a param_schema takes any object
      await created(
        '/api/v1/rules',
        rule('ops.r2', { trigger_ref: 'mon.heartbeat', trigger_params: { any: 1 } }),
      );
      // stored parameters are what was given (no defaults injected)
      await created('/api/v1/rules', rule('ops.r3', { trigger_params: { channel: 'c' } }));
      expect((await req('GET', '/api/v1/rules/ops.r3')).body.data.trigger_params).toEqual({ channel: 'c' });
      // an update that moves the rule to a trigger its params do not fit is refused
      const move = await req('PUT', '/api/v1/rules/ops.r2', { trigger_ref: 'mon.alert' });
      expect(move.status).toBe(400);
      const fixed = await req('PUT', '/api/v1/rules/ops.r2', {
        trigger_ref: 'mon.alert',
        trigger_params: { channel: 'x', min_level: 2 },
      });
      expect(fixed.status).toBe(200);
      expect(fixed.body.data).toMatchObject({
        trigger_ref: 'mon.alert',
        trigger_params: { channel: 'x', min_level: 2 },
      });
      expect((await req('PUT', '/api/v1/rules/ops.r2', { action_ref: 'ops.nothing' })).status).toBe(422);
      expect((await req('PUT', '/api/v1/rules/ops.r2', { trigger_ref: 'mon.nothing' })).status).toBe(422);
      const moved = await req('PUT', '/api/v1/rules/ops.r2', { action_ref: 'ops.log' });
      expect(moved.body.data.action_ref).toBe('ops.log');
    });

    it('validates the structure of criteria', async () => {
      const cases: [string, unknown, RegExp][] = [
        ['not an object', ['x'], /criteria/],
        ['criterion not an object', { 'trigger.a': 'equals' }, /object/],
        ['missing type', { 'trigger.a': { pattern: 1 } }, /type is required/],
        ['unknown operator', { 'trigger.a': { type: 'eqals', pattern: 1 } }, /unknown operator 'eqals'/],
        ['missing pattern', { 'trigger.a': { type: 'equals' } }, /pattern is required/],
        ['pattern on exists', { 'trigger.a': { type: 'exists', pattern: 1 } }, /takes no pattern/],
        ['unknown key', { 'trigger.a': { type: 'equals', pattern: 1, value: 2 } }, /unknown field 'value'/],
        ['bad path', { 'trigger..a': { type: 'equals', pattern: 1 } }, /dotted path/],
        ['path with spaces', { 'trigger.a b': { type: 'equals', pattern: 1 } }, /dotted path/],
        ['invalid regex', { 'trigger.a': { type: 'regex', pattern: '([a-z' } }, /regular expression/],
        ['regex pattern not a string', { 'trigger.a': { type: 'iregex', pattern: 5 } }, /string pattern/],
        ['inside with a number', { 'trigger.a': { type: 'inside', pattern: 5 } }, /list/],
        ['timediff with an object', { 'trigger.t': { type: 'timediff_lt', pattern: {} } }, /number/],
        [
          'search without condition',
          { 'trigger.l': { type: 'search', pattern: { 'item.a': { type: 'exists' } } } },
          /condition/,
        ],
        [
          'search with a bad condition',
          { 'trigger.l': { type: 'search', condition: 'some', pattern: { 'item.a': { type: 'exists' } } } },
          /condition/,
        ],
        [
          'search with an empty pattern',
          { 'trigger.l': { type: 'search', condition: 'any', pattern: {} } },
          /search pattern/,
        ],
        [
          'search with a bad item criterion',
          { 'trigger.l': { type: 'search', condition: 'all', pattern: { 'item.a': { type: 'nope' } } } },
          /unknown operator 'nope'/,
        ],
        [
          'condition outside search',
          { 'trigger.a': { type: 'equals', pattern: 1, condition: 'any' } },
          /condition/,
        ],
        ['expression not a template', { expression: 'trigger.a > 1' }, /expression/],
        ['expression not a string', { expression: true }, /expression/],
      ];
      for (const [name, criteria, msg] of cases) {
        const r = await req('POST', '/api/v1/rules', rule('ops.bad_criteria', { criteria }));
        expect(r.status, name).toBe(400);
        expect(r.body.error.code, name).toBe('VALIDATION_ERROR');
        expect(r.body.error.message, name).toMatch(msg);
      }
      expect((await req('GET', '/api/v1/rules/ops.bad_criteria')).status).toBe(404);
      const u = await req('PUT', '/api/v1/rules/ops.page_on_alert', {
        criteria: { 'trigger.a': { type: 'like' } },
      });
      expect(u.status).toBe(400);
    });

    it('rejects bad bodies, duplicates and unknown packs', async () => {
      const before = (await s.platform.store.db.select().from(rules)).length;
      for (const [name, body] of [
        ['no trigger', { ref: 'ops.x', action_ref: 'ops.page' }],
        ['no action', { ref: 'ops.x', trigger_ref: 'mon.alert' }],
        ['malformed action ref', rule('ops.x', { action_ref: 'page' })],
        ['trigger_params not an object', rule('ops.x', { trigger_params: [1] })],
        ['action_params not an object', rule('ops.x', { action_params: 'a=1' })],
        ['enabled not a boolean', rule('ops.x', { enabled: 1 })],
        ['unknown field', rule('ops.x', { conditions: {} })],
        ['pack_ref mismatch', rule('ops.x', { pack_ref: 'mon' })],
      ] as const) {
        const r = await req('POST', '/api/v1/rules', body);
        expect(r.status, name).toBe(400);
      }
      expect((await req('POST', '/api/v1/rules', rule('ops.page_on_alert'))).status).toBe(409);
      const nopack = await req('POST', '/api/v1/rules', rule('ghost.rule'));
      expect(nopack.status).toBe(404);
      expect((await s.platform.store.db.select().from(rules)).length).toBe(before);
      expect((await req('PUT', '/api/v1/rules/ops.page_on_alert', {})).status).toBe(400);
      expect((await req('PUT', '/api/v1/rules/ops.nothing', { label: 'x' })).status).toBe(404);
    });

    it('enables and disables a rule, idempotently', async () => {
      const off = await req('POST', '/api/v1/rules/ops.page_on_alert/disable');
      expect(off.status).toBe(200);
      expect(off.body.data.enabled).toBe(false);
      expect((await req('POST', '/api/v1/rules/ops.page_on_alert/disable')).body.data.enabled).toBe(false);
      expect((await req('GET', '/api/v1/rules/ops.page_on_alert')).body.data.enabled).toBe(false);
      const on = await req('POST', '/api/v1/rules/ops.page_on_alert/enable');
      expect(on.status).toBe(200);
      expect(on.body.data.enabled).toBe(true);
      expect((await req('POST', '/api/v1/rules/ops.none/enable')).status).toBe(404);
      expect((await s.request('POST', '/api/v1/rules/ops.page_on_alert/disable')).status).toBe(401);
    });

    it('filters by trigger, action, tags, enabled, search and pack, with pagination', async () => {
      await createPack(s, 'rl');
      await created('/api/v1/rules', rule('rl.a', { tags: ['x'], label: 'Alpha rule' }));
      await created('/api/v1/rules', rule('rl.b', { tags: ['y'], action_ref: 'ops.log', enabled: false }));
      await created('/api/v1/rules', {
        ref: 'rl.c',
        trigger_ref: 'mon.heartbeat',
        action_ref: 'ops.log',
        tags: ['x', 'y'],
      });
      const refs = async (q: string) => {
        const r = await req('GET', `/api/v1/rules?pack=rl&${q}`);
        expect(r.status, q).toBe(200);
        return r.body.data.map((x: AnyBody) => x.ref).sort();
      };
      expect(await refs('')).toEqual(['rl.a', 'rl.b', 'rl.c']);
      expect(await refs('trigger=mon.heartbeat')).toEqual(['rl.c']);
      expect(await refs('action=ops.log')).toEqual(['rl.b', 'rl.c']);
      expect(await refs('tags=x')).toEqual(['rl.a', 'rl.c']);
      expect(await refs('tags=y,x&enabled=true')).toEqual(['rl.a', 'rl.c']);
      expect(await refs('enabled=false')).toEqual(['rl.b']);
      expect(await refs('search=alpha')).toEqual(['rl.a']);
      const p = await req('GET', '/api/v1/packs/rl/rules?page_size=2');
      expect(p.body.data.map((x: AnyBody) => x.ref)).toEqual(['rl.c', 'rl.b']);
      expect(p.body.pagination).toEqual({ page: 1, page_size: 2, total_items: 3, total_pages: 2 });
      expect((await req('GET', '/api/v1/packs/nopack/rules')).status).toBe(404);
      for (const q of ['page_size=0', 'page_size=1001', 'enabled=yes'])
        expect((await req('GET', `/api/v1/rules?${q}`)).status, q).toBe(400);
    });

    it('deletes a rule', async () => {
      expect((await req('DELETE', '/api/v1/rules/rl.a')).status).toBe(204);
      expect((await req('GET', '/api/v1/rules/rl.a')).status).toBe(404);
      expect((await req('DELETE', '/api/v1/rules/rl.a')).status).toBe(404);
    });
  });

  describe('access', () => {
    it('every sensor and rule route needs authentication', async () => {
      for (const [m, p] of [
        ['GET', '/api/v1/sensors'],
        ['GET', '/api/v1/sensors/mon.ok'],
        ['GET', '/api/v1/packs/mon/sensors'],
        ['POST', '/api/v1/sensors'],
        ['PUT', '/api/v1/sensors/mon.ok'],
        ['DELETE', '/api/v1/sensors/mon.ok'],
        ['GET', '/api/v1/rules'],
        ['GET', '/api/v1/rules/ops.r3'],
        ['GET', '/api/v1/packs/ops/rules'],
        ['POST', '/api/v1/rules'],
        ['PUT', '/api/v1/rules/ops.r3'],
        ['DELETE', '/api/v1/rules/ops.r3'],
        ['POST', '/api/v1/rules/ops.r3/enable'],
      ] as const) {
        const r = await s.request<AnyBody>(m, p, m === 'POST' || m === 'PUT' ? { body: { label: 'x' } } : {});
        expect(r.status, `${m} ${p}`).toBe(401);
      }
      const mine = s.platform.api.routeTable.filter((x) =>
        /^\/api\/v1\/(packs\/:ref\/)?(sensors|rules)/.test(x.url),
      );
      expect(mine.length).toBeGreaterThanOrEqual(14); // the CRUD set; logs, status and the dry run add more
      for (const r of mine) expect(r.permission?.[0], `${r.method} ${r.url}`).toMatch(/^(sensors|rules)$/);
    });
  });
});
