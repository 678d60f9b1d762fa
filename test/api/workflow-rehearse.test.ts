// Rehearsal over real HTTP: `POST /api/v1/workflows/rehearse` runs the real engine with mocked task
// results on a simulated clock — retries with their back-off, with-items fan-out, operations, test
// specs in YAML — and changes nothing in the store.
import { count } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { executions, inquiries, packs, workflowRuns } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const PW = 'rehearse test password';

/** Build (retried with exponential back-off), patch every host (two at a time), report failures. */
const release = {
  vars: { patched: [] },
  tasks: [
    {
      name: 'build',
      action: 'core.noop',
      retry: { count: 2, delay: 10, backoff: 'exponential' },
      next: [
        { when: '{{ succeeded() }}', publish: [{ artifact: '{{ result().artifact }}' }], do: 'patch' },
        { when: '{{ failed() }}', do: 'fail' },
      ],
    },
    {
      name: 'patch',
      action: 'core.echo',
      with_items: '{{ parameters.hosts }}',
      concurrency: 2,
      input: { message: '{{ item }} gets {{ vars.artifact }}' },
      next: [
        { when: '{{ succeeded() }}', publish: [{ patched: '{{ result() }}' }] },
        { when: '{{ failed() }}', do: 'report' },
      ],
    },
    {
      name: 'report',
      action: 'core.echo',
      input: { message: "{{ result('patch') | select('none') | list | length }} host(s) failed" },
    },
  ],
  output_map: { artifact: '{{ vars.artifact }}', patched: '{{ vars.patched }}' },
};
const releaseParams = {
  type: 'object',
  properties: { hosts: { type: 'array', items: { type: 'string' } } },
  required: ['hosts'],
};

describeBackend('workflow rehearsal API', () => {
  let s: TestServer;
  let token: string;
  const rehearse = (body: unknown, t = token) =>
    s.request<AnyBody>('POST', '/api/v1/workflows/rehearse', { token: t, body });

  async function storeCounts() {
    const db = s.platform.store.db;
    const [[e], [w], [i]] = await Promise.all([
      db.select({ n: count() }).from(executions),
      db.select({ n: count() }).from(workflowRuns),
      db.select({ n: count() }).from(inquiries),
    ]);
    return { executions: e!.n, workflow_runs: w!.n, inquiries: i!.n };
  }

  beforeAll(async () => {
    s = await startTestServer();
    token = s.adminToken;
    await s.platform.store.db.insert(packs).values({
      ref: 'rh',
      label: 'rh',
      version: '1.0.0',
      source: { type: 'api' },
      config: { channel: '#ops' },
    });
    const w = await s.request<AnyBody>('POST', '/api/v1/workflows', {
      token,
      body: { ref: 'rh.release', label: 'Release', param_schema: releaseParams, definition: release },
    });
    expect(w.status, JSON.stringify(w.body)).toBe(201);
  });
  afterAll(async () => s?.stop());

  it('rehearses retries with their back-off and a with-items fan-out, against expectations', async () => {
    const before = await storeCounts();
    const r = await rehearse({
      definition: release,
      param_schema: releaseParams,
      parameters: { hosts: ['web1', 'web2', 'web3'] },
      mocks: {
        build: [{ status: 'failed' }, { status: 'failed' }, { artifact: 'app-1.4.tgz' }],
        patch: [{ result: 'ok web1', duration: 5 }, { result: 'ok web2', duration: 1 }, 'ok web3'],
      },
      expect: {
        tasks: ['build', 'patch'],
        status: 'succeeded',
        calls: { build: 3, patch: 3 },
        started_at: { build: [0, 10, 30], patch: [30, 30, 31] },
        output: { artifact: 'app-1.4.tgz', patched: ['ok web1', 'ok web2', 'ok web3'] },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const rep = r.body.data;
    expect(rep).toMatchObject({
      passed: true,
      mismatches: [],
      status: 'succeeded',
      tasks: ['build', 'patch'],
      duration_seconds: 35,
      error: null,
      problems: [],
    });
    expect(rep.runs.filter((x: AnyBody) => x.task === 'patch').map((x: AnyBody) => x.input)).toEqual([
      { message: 'web1 gets app-1.4.tgz' },
      { message: 'web2 gets app-1.4.tgz' },
      { message: 'web3 gets app-1.4.tgz' },
    ]);
    expect(rep.runs.map((x: AnyBody) => `${x.run_key}:${x.status}`)).toEqual([
      'build#1:failed',
      'build#1@2:failed',
      'build#1@3:succeeded',
      'patch#1.0:succeeded',
      'patch#1.1:succeeded',
      'patch#1.2:succeeded',
    ]);
    expect(await storeCounts()).toEqual(before);
  });

  it('reports every mismatch and a failed item handled by a transition', async () => {
    const r = await rehearse({
      ref: 'rh.release',
      parameters: { hosts: ['a', 'b', 'c'] },
      mocks: { build: { artifact: 'x' }, patch: ['ok', { status: 'failed', result: null }, 'ok'] },
      expect: { tasks: ['build', 'patch'], status: 'failed', calls: { build: 3 } },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const rep = r.body.data;
    expect(rep.tasks).toEqual(['build', 'patch', 'report']);
    expect(rep.status).toBe('succeeded');
    expect(rep.passed).toBe(false);
    expect(rep.mismatches).toEqual([
      'tasks: expected ["build","patch"], got ["build","patch","report"]',
      'status: expected failed, got succeeded',
      'calls.build: expected 3, got 1',
    ]);
    expect(rep.runs.at(-1)).toMatchObject({ task: 'report', input: { message: '1 host(s) failed' } });
  });

  it('retries exhausted go to the failure branch; a workflow given as YAML', async () => {
    const yaml = `
parameters:
  n: {type: integer, default: 2}
tasks:
  - name: flaky
    action: core.noop
    retry: {count: "{{ 2 }}", delay: 5}
    next:
      - when: "{{ failed() }}"
        do: give_up
  - name: give_up
    action: core.echo
    input: {message: "gave up after {{ parameters.n }}"}
`;
    const bad = await rehearse({ yaml, mocks: { flaky: { status: 'failed' } } });
    expect(bad.status).toBe(422);
    expect(bad.body.error.details).toContainEqual(
      expect.objectContaining({ task: 'flaky', path: 'tasks[0].retry.count', line: 7 }),
    );
    const r = await rehearse({
      yaml: yaml.replace('"{{ 2 }}"', '2'),
      mocks: { flaky: { status: 'failed', result: { stderr: 'boom' } } },
      expect: {
        tasks: ['flaky', 'give_up'],
        calls: { flaky: 3 },
        inputs: { give_up: [{ message: 'gave up after 2' }] },
      },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data).toMatchObject({ passed: true, status: 'succeeded', duration_seconds: 10 });
  });

  it('simulates operations: a pause holds the next task until the resume', async () => {
    const r = await rehearse({
      definition: {
        tasks: [
          { name: 'one', action: 'core.noop', next: [{ do: 'two' }] },
          { name: 'two', action: 'core.noop' },
        ],
      },
      mocks: { one: { result: 1, duration: 10 } },
      operations: [
        { op: 'pause', at: 5 },
        { op: 'resume', at: 60 },
      ],
      expect: { tasks: ['one', 'two'], started_at: { two: [60] }, status: 'succeeded' },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.passed).toBe(true);
  });

  it('runs a YAML test spec: every case with its own verdict', async () => {
    const spec = `
definition:
  tasks:
    - name: check
      action: core.noop
      next:
        - when: "{{ succeeded() and result().healthy }}"
          do: done
        - when: "{{ succeeded() and not result().healthy }}"
          do: restart
    - name: restart
      action: core.noop
      retry: {count: 3, delay: 2, backoff: linear}
    - name: done
      action: core.noop
cases:
  - name: healthy
    mocks: {check: {healthy: true}}
    expect: {tasks: [check, done], status: succeeded}
  - name: restart needs two tries
    mocks:
      check: {healthy: false}
      restart: [{status: failed}, {status: succeeded}]
    expect: {tasks: [check, restart], calls: {restart: 2}, started_at: {restart: [0, 2]}}
  - name: a wrong expectation
    mocks: {check: {healthy: true}}
    expect: {tasks: [check, restart]}
`;
    const r = await rehearse({ spec });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const d = r.body.data;
    expect(d.passed).toBe(false);
    expect(d.cases.map((c: AnyBody) => [c.name, c.passed])).toEqual([
      ['healthy', true],
      ['restart needs two tries', true],
      ['a wrong expectation', false],
    ]);
    expect(d.cases[2].report.mismatches).toEqual([
      'tasks: expected ["check","restart"], got ["check","done"]',
    ]);
  });

  it("a spec's workflow path is supplied by the request, or names a stored workflow", async () => {
    const spec = (workflow: string) => `
workflow: ${workflow}
cases:
  - name: one host
    parameters: {hosts: [h1]}
    mocks: {build: {artifact: a.tgz}}
    expect: {tasks: [build, patch], output: {artifact: a.tgz, patched: [null]}}
`;
    const stored = await rehearse({ spec: spec('rh.release') });
    expect(stored.status, JSON.stringify(stored.body)).toBe(200);
    expect(stored.body.data.passed).toBe(true);
    const supplied = await rehearse({ spec: spec('../workflows/release.yaml'), ref: 'rh.release' });
    expect(supplied.status, JSON.stringify(supplied.body)).toBe(200);
    expect(supplied.body.data.passed).toBe(true);
    const unreadable = await rehearse({ spec: spec('../workflows/release.yaml') });
    expect(unreadable.status).toBe(400);
    expect(unreadable.body.error.message).toMatch(/cannot read/);
    const unknown = await rehearse({ spec: spec('rh.nothing') });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toMatch(/'rh.nothing'/);
  });

  it('answers 400 with details for a broken spec or options that do not fit the workflow', async () => {
    const spec = await rehearse({
      spec: `
definition: {tasks: [{name: a, action: core.noop}]}
cases:
  - name: same
    mocks: {a: 1}
    expcet: {tasks: [a]}
  - name: same
    max_task_runs: 0
`,
    });
    expect(spec.status).toBe(400);
    expect(spec.body.error.code).toBe('VALIDATION_ERROR');
    expect(spec.body.error.details).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          path: 'cases[0].expcet',
          message: expect.stringMatching(/did you mean 'expect'/),
        }),
        expect.objectContaining({
          path: 'cases[1].name',
          message: expect.stringMatching(/duplicate case name/),
        }),
        expect.objectContaining({ path: 'cases[1].max_task_runs' }),
      ]),
    );
    const notYaml = await rehearse({ spec: 'cases: [' });
    expect(notYaml.status).toBe(400);
    expect(notYaml.body.error.message).toMatch(/not valid YAML/);

    const mocks = await rehearse({
      definition: { tasks: [{ name: 'a', action: 'core.noop' }] },
      mocks: { b: 1, a: [] },
      operations: [{ op: 'pause' }],
    });
    expect(mocks.status).toBe(400);
    expect(mocks.body.error.details.map((d: AnyBody) => d.path).sort()).toEqual([
      'mocks.a',
      'mocks.b',
      'operations[0].at',
    ]);
    const specCase = await rehearse({
      spec: 'definition: {tasks: [{name: a, action: core.noop}]}\ncases: [{name: x, mocks: {zz: 1}}]',
    });
    expect(specCase.status).toBe(400);
    expect(specCase.body.error.details).toEqual([expect.objectContaining({ path: 'cases[0].mocks.zz' })]);
  });

  it('refuses what is not a rehearsal: 400, 404, 422', async () => {
    const def = { tasks: [{ name: 'a', action: 'core.noop' }] };
    for (const [b, msg] of [
      [{}, /give the workflow to rehearse/],
      [{ definition: def, ref: 'rh.release' }, /once/],
      [{ param_schema: {}, ref: 'rh.release' }, /param_schema/],
      [{ spec: 'cases: []', mocks: {} }, /'mocks'/],
      [{ definition: def, start_time: 'yesterday' }, /start_time/],
      [{ definition: def, operations: [{ op: 'jump', at: 1 }] }, /op/],
      [{ definition: def, expect: { taks: [] } }, /taks/],
    ] as [Record<string, unknown>, RegExp][]) {
      const r = await rehearse(b);
      expect(r.status, JSON.stringify(b)).toBe(400);
      expect(r.body.error.message, JSON.stringify(b)).toMatch(msg);
    }
    expect((await rehearse({ ref: 'rh.none' })).status).toBe(404);
    const invalid = await rehearse({
      definition: { tasks: [{ name: 'a', action: 'core.noop', next: [{ do: 'b' }] }] },
    });
    expect(invalid.status).toBe(422);
    expect(invalid.body.error.details).toEqual([
      expect.objectContaining({ task: 'a', path: 'definition.tasks[0].next[0].do[0]', severity: 'error' }),
    ]);
  });

  it('gives the pack configuration of a stored workflow to config.x; a viewer may rehearse', async () => {
    const w = await s.request<AnyBody>('POST', '/api/v1/workflows', {
      token,
      body: {
        ref: 'rh.announce',
        label: 'Announce',
        definition: {
          tasks: [
            { name: 'first', action: 'core.noop', next: [{ do: 'say' }] },
            { name: 'say', action: 'core.echo', input: { message: 'to {{ config.channel }}' } },
          ],
        },
      },
    });
    expect(w.status).toBe(201);
    const u = await s.request<AnyBody>('POST', '/api/v1/identities', {
      token,
      body: { login: 'rh-viewer', password: PW, roles: ['viewer'] },
    });
    expect(u.status).toBe(201);
    const viewer = await s.login('rh-viewer', PW);
    const r = await rehearse(
      { ref: 'rh.announce', expect: { inputs: { say: [{ message: 'to #ops' }] } } },
      viewer,
    );
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data.passed, JSON.stringify(r.body.data)).toBe(true);
    const own = await rehearse({ ref: 'rh.announce', config: { channel: '#dev' } });
    expect(own.body.data.runs[1].input).toEqual({ message: 'to #dev' });
    const anon = await s.request<AnyBody>('POST', '/api/v1/workflows/rehearse', {
      body: { ref: 'rh.announce' },
    });
    expect(anon.status).toBe(401);
  });
});
