// Semantic validation of workflows over real HTTP: create/update answer 422 with every error (task,
// path, message), `POST /api/v1/workflows/validate` answers the same question with a 200, and a pack
// whose workflow is broken does not install.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packs, workflows } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const PW = 'validation test password';

type Task = Record<string, unknown>;
const body = (ref: string, tasks: Task[], extra: Record<string, unknown> = {}) => ({
  ref,
  label: `Workflow ${ref}`,
  definition: { tasks },
  ...extra,
});

describeBackend('workflow validation', () => {
  let s: TestServer;
  let token: string;
  let tmp: string;
  const api = (method: string, url: string, b?: unknown, t = token) =>
    s.request<AnyBody>(method, url, { token: t, ...(b === undefined ? {} : { body: b }) });
  const create = (b: unknown) => api('POST', '/api/v1/workflows', b);
  const validate = (b: unknown, t = token) => api('POST', '/api/v1/workflows/validate', b, t);

  /** Creating the workflow fails with 422 and these problems among the details. */
  async function refused(b: unknown, ...problems: Record<string, unknown>[]): Promise<AnyBody[]> {
    const r = await create(b);
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    expect(r.body.error.code).toBe('UNPROCESSABLE_ENTITY');
    const details = r.body.error.details as AnyBody[];
    for (const p of problems) expect(details).toContainEqual(expect.objectContaining(p));
    for (const d of details) {
      expect(d.severity).toBe('error');
      expect(Object.keys(d).sort()).toEqual(['message', 'path', 'severity', 'task']);
    }
    const ref = (b as { ref: string }).ref;
    expect((await api('GET', `/api/v1/workflows/${ref}`)).status).toBe(404);
    expect((await api('GET', `/api/v1/actions/${ref}`)).status).toBe(404);
    return details;
  }

  beforeAll(async () => {
    s = await startTestServer();
    token = s.adminToken;
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-wf-validation-'));
    await s.platform.store.db
      .insert(packs)
      .values({ ref: 'wv', label: 'wv', version: '1.0.0', source: { type: 'api' } });
    const a = await api('POST', '/api/v1/actions', {
      ref: 'wv.deploy',
      runner: 'noop',
      param_schema: {
        type: 'object',
        properties: { env: { type: 'string', enum: ['staging', 'production'] }, count: { type: 'integer' } },
        required: ['env'],
        additionalProperties: false,
      },
    });
    expect(a.status, JSON.stringify(a.body)).toBe(201);
  });
  afterAll(async () => {
    await s?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  describe('create answers 422 for each kind of semantic problem, naming the task', () => {
    it('an unknown transition target', async () => {
      await refused(
        body('wv.t1', [
          { name: 'build', action: 'core.noop', next: [{ do: ['deploy', 'nowhere'] }] },
          { name: 'deploy', action: 'core.noop' },
        ]),
        {
          task: 'build',
          path: 'definition.tasks[0].next[0].do[1]',
          message: expect.stringMatching(/unknown task 'nowhere'/),
        },
      );
    });

    it('an unknown action of an installed pack', async () => {
      await refused(body('wv.t2', [{ name: 'go', action: 'wv.dploy' }]), {
        task: 'go',
        path: 'definition.tasks[0].action',
        message: "unknown action 'wv.dploy'",
      });
      await refused(body('wv.t2', [{ name: 'go', action: 'core.nothing_like_this' }]), {
        task: 'go',
        message: "unknown action 'core.nothing_like_this'",
      });
    });

    it('invalid expressions, wherever they are', async () => {
      await refused(
        body(
          'wv.t3',
          [
            {
              name: 'calc',
              action: 'core.echo',
              input: { message: '{{ vars.n + }}' },
              next: [{ when: '{{ succeeded( }}', publish: [{ n: '{{ ) }}' }], do: 'noop' }],
            },
          ],
          { definition: { vars: { n: '{{ 1 * }}' }, tasks: [{ name: 'calc', action: 'core.noop' }] } },
        ),
        { task: null, path: 'definition.vars.n', message: expect.stringMatching(/invalid expression/) },
      );
      await refused(
        body('wv.t3', [
          {
            name: 'calc',
            action: 'core.echo',
            input: { message: '{{ 1 + }}' },
            next: [{ when: '{{ succeeded( }}', publish: [{ n: '{{ ) }}' }], do: 'noop' }],
          },
        ]),
        {
          task: 'calc',
          path: 'definition.tasks[0].input.message',
          message: expect.stringMatching(/invalid expression/),
        },
        { task: 'calc', path: 'definition.tasks[0].next[0].when', message: expect.stringMatching(/invalid/) },
        { task: 'calc', path: 'definition.tasks[0].next[0].publish.n' },
      );
    });

    it("an input that does not fit the action's parameters", async () => {
      const details = await refused(
        body('wv.t4', [{ name: 'ship', action: 'wv.deploy', input: { count: 'three', region: 'eu' } }]),
        {
          task: 'ship',
          path: 'definition.tasks[0].input',
          message: expect.stringMatching(/needs parameter 'env'/),
        },
        { task: 'ship', path: 'definition.tasks[0].input.count', message: expect.stringMatching(/integer/) },
        {
          task: 'ship',
          path: 'definition.tasks[0].input.region',
          message: expect.stringMatching(/no parameter 'region'/),
        },
      );
      expect(details).toHaveLength(3);
      // a value computed by an expression is checked when the task runs, not now
      const ok = await create(
        body('wv.t4', [
          { name: 'ship', action: 'wv.deploy', input: { env: '{{ parameters.env }}', count: 2 } },
        ]),
      );
      expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    });

    it('a task no start task leads to', async () => {
      await refused(
        body('wv.t5', [
          { name: 'start', action: 'core.noop' },
          { name: 'ping', action: 'core.noop', next: [{ when: '{{ failed() }}', do: 'pong' }] },
          { name: 'pong', action: 'core.noop', next: [{ when: '{{ failed() }}', do: 'ping' }] },
        ]),
        { task: 'ping', path: 'definition.tasks[1]', message: expect.stringMatching(/can never run/) },
        { task: 'pong', path: 'definition.tasks[2]', message: expect.stringMatching(/can never run/) },
      );
    });

    it('a loop that never ends', async () => {
      const details = await refused(
        body('wv.t6', [
          { name: 'start', action: 'core.noop', next: [{ do: 'poll' }] },
          { name: 'poll', action: 'core.noop', next: [{ do: 'wait' }] },
          { name: 'wait', action: 'core.noop', next: [{ do: 'poll' }] },
        ]),
        { task: 'poll', message: expect.stringMatching(/poll → wait → poll form a loop that never ends/) },
      );
      expect(details).toHaveLength(1);
      // the same loop with a way out is fine
      const ok = await create(
        body('wv.t6', [
          { name: 'start', action: 'core.noop', next: [{ do: 'poll' }] },
          {
            name: 'poll',
            action: 'core.noop',
            next: [
              { when: "{{ result() != 'done' }}", do: 'wait' },
              { when: "{{ result() == 'done' }}", do: 'noop' },
            ],
          },
          { name: 'wait', action: 'core.noop', next: [{ do: 'poll' }] },
        ]),
      );
      expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    });

    it('a join that waits for more branches than lead to it', async () => {
      await refused(
        body('wv.t7', [
          { name: 'split', action: 'core.noop', next: [{ do: ['a', 'b'] }] },
          { name: 'a', action: 'core.noop', next: [{ do: 'merge' }] },
          { name: 'b', action: 'core.noop', next: [{ do: 'merge' }] },
          { name: 'merge', action: 'core.noop', join: 3 },
        ]),
        {
          task: 'merge',
          path: 'definition.tasks[3].join',
          message: expect.stringMatching(
            /join waits for 3 inbound branches but only 2 tasks lead here \(a, b\)/,
          ),
        },
      );
    });

    it('structure the body schema cannot see: unknown keys, reserved names, bad retry', async () => {
      await refused(
        body('wv.t8', [
          { name: 'fail', action: 'core.noop' },
          { name: 'x', action: 'core.noop', retyr: { count: 2 } },
          { name: 'y', action: 'core.noop', retry: { count: 0 } },
        ]),
        { task: 'fail', message: expect.stringMatching(/reserved/) },
        {
          task: 'x',
          path: 'definition.tasks[1].retyr',
          message: expect.stringMatching(/unknown key 'retyr'/),
        },
        { task: 'y', path: 'definition.tasks[2].retry.count' },
      );
    });

    it('every error at once, counted in the message', async () => {
      const r = await create(
        body('wv.t9', [
          { name: 'a', action: 'wv.nope', next: [{ do: 'ghost' }] },
          { name: 'b', action: 'core.echo', input: { message: '{{ }' }, next: [{ do: 'c' }] },
          { name: 'c', action: 'core.noop', next: [{ do: 'b' }] },
        ]),
      );
      expect(r.status).toBe(422);
      const details = r.body.error.details as AnyBody[];
      // a: unknown action, unknown target; b: invalid expression, unreachable, endless loop; c: unreachable
      expect(details.map((d) => d.task).sort()).toEqual(['a', 'a', 'b', 'b', 'b', 'c']);
      expect(r.body.error.message).toMatch(/^workflow 'wv.t9' has 6 problems: task 'a': /);
      expect(r.body.error.message).toMatch(/\(and 5 more\)$/);
    });
  });

  describe('create and update', () => {
    it('saves with warnings: an action of a pack not installed yet, a variable nobody sets', async () => {
      const r = await create(
        body('wv.w1', [{ name: 'later', action: 'notyet.thing', input: { text: '{{ vars.missing }}' } }]),
      );
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.data.ref).toBe('wv.w1');
      expect(r.body.warnings).toEqual(
        expect.arrayContaining([
          {
            task: 'later',
            path: 'definition.tasks[0].action',
            message: expect.stringMatching(/pack 'notyet' is not installed/),
            severity: 'warning',
          },
          expect.objectContaining({ task: 'later', message: expect.stringMatching(/variable 'missing'/) }),
        ]),
      );
      const clean = await create(body('wv.w2', [{ name: 'a', action: 'core.noop' }]));
      expect(clean.status).toBe(201);
      expect(clean.body.warnings).toEqual([]);
    });

    it('accepts the inquiry of the documentation (flat response schema, roles at the top)', async () => {
      const r = await create(
        body('wv.approval', [
          {
            name: 'approve',
            action: 'core.ask',
            timeout: 86400,
            input: {
              prompt: 'Deploy to production?',
              response_schema: { approved: { type: 'boolean', required: true }, comment: { type: 'string' } },
              roles: ['release-managers'],
            },
            next: [
              { when: '{{ succeeded() and result().response.approved }}', do: 'deploy' },
              { when: '{{ timed_out() }}', do: 'noop' },
            ],
          },
          { name: 'deploy', action: 'core.noop' },
        ]),
      );
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.warnings).toEqual([]);
      const bad = await create(
        body('wv.approval2', [
          {
            name: 'approve',
            action: 'core.ask',
            input: { prompt: 'ok?', response_schema: { approved: { type: 'bool' } }, roles: 'ops' },
          },
        ]),
      );
      expect(bad.status).toBe(422);
      expect(bad.body.error.details.map((d: AnyBody) => d.path).sort()).toEqual([
        'definition.tasks[0].input.response_schema.approved.type',
        'definition.tasks[0].input.roles',
      ]);
    });

    it('a workflow may run itself (its action does not exist before it)', async () => {
      const r = await create(
        body(
          'wv.recursive',
          [
            {
              name: 'again',
              action: 'wv.recursive',
              input: { depth: '{{ parameters.depth - 1 }}' },
            },
          ],
          { param_schema: { type: 'object', properties: { depth: { type: 'integer' } } } },
        ),
      );
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(r.body.warnings).toContainEqual(
        expect.objectContaining({ task: 'again', message: expect.stringMatching(/runs itself/) }),
      );
    });

    it('keeps the 400 of bodies the schema refuses', async () => {
      for (const definition of [{ tasks: [] }, { tasks: [{ name: 'a' }, { name: 'a' }] }, { tasks: 'x' }]) {
        const r = await create({ ref: 'wv.s1', label: 'x', definition });
        expect(r.status, JSON.stringify(definition)).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
    });

    it('update validates a new definition or param_schema against the rest, and changes nothing on 422', async () => {
      expect(
        (await create(body('wv.u1', [{ name: 'ship', action: 'wv.deploy', input: { env: 'staging' } }])))
          .status,
      ).toBe(201);
      const bad = await api('PUT', '/api/v1/workflows/wv.u1', {
        definition: {
          tasks: [{ name: 'ship', action: 'wv.deploy', input: { env: 'moon' }, next: [{ do: 'x' }] }],
        },
      });
      expect(bad.status, JSON.stringify(bad.body)).toBe(422);
      expect(bad.body.error.details).toHaveLength(2);
      expect(bad.body.error.details).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ task: 'ship', path: 'definition.tasks[0].input.env' }),
          expect.objectContaining({ task: 'ship', path: 'definition.tasks[0].next[0].do[0]' }),
        ]),
      );
      const [stored] = await s.platform.store.db.select().from(workflows).where(eq(workflows.ref, 'wv.u1'));
      expect(stored!.definition).toEqual({
        tasks: [{ name: 'ship', action: 'wv.deploy', input: { env: 'staging' } }],
      });

      // a param_schema alone is checked with the stored definition
      const wf = await api('PUT', '/api/v1/workflows/wv.u1', {
        definition: {
          tasks: [{ name: 'ship', action: 'wv.deploy', input: { env: '{{ parameters.target }}' } }],
        },
        param_schema: { type: 'object', properties: { target: { type: 'string' } } },
      });
      expect(wf.status, JSON.stringify(wf.body)).toBe(200);
      expect(wf.body.warnings).toEqual([]);
      const renamed = await api('PUT', '/api/v1/workflows/wv.u1', {
        param_schema: { type: 'object', properties: { where: { type: 'string' } } },
      });
      expect(renamed.status).toBe(200);
      expect(renamed.body.warnings).toContainEqual(
        expect.objectContaining({ task: 'ship', message: expect.stringMatching(/parameter 'target'/) }),
      );
      const label = await api('PUT', '/api/v1/workflows/wv.u1', { label: 'Renamed' });
      expect(label.status).toBe(200);
      expect(label.body).toMatchObject({ data: { label: 'Renamed' }, warnings: [] });
      const missing = await api('PUT', '/api/v1/workflows/wv.none', {
        definition: { tasks: [{ name: 'a', action: 'core.noop' }] },
      });
      expect(missing.status).toBe(404);
    });
  });

  describe('POST /api/v1/workflows/validate', () => {
    it('answers valid with the warnings, and saves nothing', async () => {
      const r = await validate(body('wv.v1', [{ name: 'a', action: 'ghostpack.x' }]));
      expect(r.status).toBe(200);
      expect(r.body.data).toEqual({
        valid: true,
        errors: [],
        warnings: [expect.objectContaining({ task: 'a', severity: 'warning' })],
      });
      expect((await api('GET', '/api/v1/workflows/wv.v1')).status).toBe(404);
      // ref and label are optional here
      const bare = await validate({ definition: { tasks: [{ name: 'a', action: 'core.noop' }] } });
      expect(bare.body.data).toEqual({ valid: true, errors: [], warnings: [] });
    });

    it('answers invalid with 200 and every error, including what create refuses with 400', async () => {
      const r = await validate({
        ref: 'nopack.v2',
        label: ' ',
        version: '1',
        definition: { tasks: [{ name: 'a', action: 'wv.deploy', next: [{ do: 'b' }] }] },
      });
      expect(r.status).toBe(200);
      expect(r.body.data.valid).toBe(false);
      const paths = r.body.data.errors.map((e: AnyBody) => e.path);
      expect(paths).toEqual(
        expect.arrayContaining([
          'ref',
          'label',
          'version',
          'definition.tasks[0].input',
          'definition.tasks[0].next[0].do[0]',
        ]),
      );
      const empty = await validate({ definition: { tasks: [] } });
      expect(empty.status).toBe(200);
      expect(empty.body.data.errors).toEqual([
        expect.objectContaining({
          path: 'definition.tasks',
          message: expect.stringMatching(/at least one task/),
        }),
      ]);
    });

    it('validates a workflow file given as YAML, with lines', async () => {
      const yaml = [
        'ref: wv.from_yaml', //      1
        'parameters:', //             2
        '  env: {type: string}', //   3
        'tasks:', //                  4
        '  ship:', //                 5
        '    action: wv.deploy', //   6
        '    input:', //              7
        '      env: "{{ parameters.env }}"', // 8
        '    next:', //               9
        '      - do: [annouce]', //  10
        '  announce:', //            11
        '    action: core.echo', //  12
        '    input: {message: "{{ parameters.evn }}"}', // 13
      ].join('\n');
      const r = await validate({ yaml });
      expect(r.status).toBe(200);
      expect(r.body.data.valid).toBe(false);
      expect(r.body.data.errors).toContainEqual({
        task: 'ship',
        path: 'tasks[0].next[0].do[0]',
        message: expect.stringMatching(/unknown task 'annouce' \(did you mean 'announce'\?\)/),
        severity: 'error',
        line: 10,
      });
      expect(r.body.data.warnings).toContainEqual(
        expect.objectContaining({
          task: 'announce',
          line: 13,
          message: expect.stringMatching(/parameter 'evn'/),
        }),
      );
      const fixed = await validate({ yaml: yaml.replace('annouce', 'announce').replace('evn', 'env') });
      expect(fixed.body.data).toEqual({ valid: true, errors: [], warnings: [] });
      const broken = await validate({ yaml: 'tasks: [a, b' });
      expect(broken.status).toBe(200);
      expect(broken.body.data.valid).toBe(false);
      expect(broken.body.data.errors[0].message).toMatch(/not valid YAML/);
      const scalar = await validate({ yaml: 'just text' });
      expect(scalar.body.data.errors[0].message).toMatch(/must be a mapping/);
    });

    it('refuses requests that are not a workflow with a 400', async () => {
      for (const b of [
        {},
        { yaml: 'tasks: []', ref: 'wv.x' },
        { yaml: 42 },
        { definition: 'x' },
        { bogus: 1 },
      ]) {
        const r = await validate(b);
        expect(r.status, JSON.stringify(b)).toBe(400);
        expect(r.body.error.code).toBe('VALIDATION_ERROR');
      }
    });

    it('needs workflows:read (a viewer may ask; nobody anonymous)', async () => {
      const u = await api('POST', '/api/v1/identities', {
        login: 'wv-viewer',
        password: PW,
        roles: ['viewer'],
      });
      expect(u.status).toBe(201);
      const viewer = await s.login('wv-viewer', PW);
      const def = { definition: { tasks: [{ name: 'a', action: 'core.noop' }] } };
      expect((await validate(def, viewer)).status).toBe(200);
      expect((await s.request<AnyBody>('POST', '/api/v1/workflows/validate', { body: def })).status).toBe(
        401,
      );
      const wr = await api(
        'POST',
        '/api/v1/workflows',
        body('wv.byviewer', [{ name: 'a', action: 'core.noop' }]),
        viewer,
      );
      expect(wr.status).toBe(403);
    });
  });

  describe('pack install', () => {
    it('refuses a pack with a broken workflow, listing file, line, task and message', async () => {
      const dir = path.join(tmp, 'wfbroken');
      fs.mkdirSync(path.join(dir, 'workflows'), { recursive: true });
      fs.writeFileSync(
        path.join(dir, 'pack.yaml'),
        'ref: wfbroken\nlabel: Broken workflows\nversion: 1.0.0\n',
      );
      fs.writeFileSync(
        path.join(dir, 'workflows', 'loop.yaml'),
        [
          'tasks:', //                                  1
          '  start:', //                                2
          '    action: core.noop', //                   3
          '    next: [{do: [poll, merge]}]', //         4
          '  poll:', //                                 5
          '    action: core.echo', //                   6
          '    input: {message: "{{ vars.x + }}"}', //  7
          '    next: [{do: wait}]', //                  8
          '  wait:', //                                 9
          '    action: core.noop', //                  10
          '    next: [{do: poll}]', //                 11
          '  merge:', //                               12
          '    action: core.noop', //                  13
          '    join: 2', //                            14
          '  orphan:', //                              15
          '    action: core.noop', //                  16
          '    next: [{when: "{{ failed() }}", do: orphan}]', // 17
        ].join('\n'),
      );
      const r = await api('POST', '/api/v1/packs/install', { source: 'path', path: dir });
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(r.body.error.message).toMatch(/^pack 'wfbroken' has 4 problems; nothing was installed/);
      const file = 'workflows/loop.yaml';
      expect(r.body.error.details).toEqual(
        expect.arrayContaining([
          {
            file,
            line: 7,
            path: '/tasks/poll/input/message',
            message: expect.stringMatching(/^task 'poll': invalid expression/),
          },
          {
            file,
            line: 8,
            path: '/tasks/poll/next',
            message: expect.stringMatching(/poll → wait → poll form a loop that never ends/),
          },
          {
            file,
            line: 15,
            path: '/tasks/orphan',
            message: expect.stringMatching(/task 'orphan' can never run/),
          },
          {
            file,
            line: 14,
            path: '/tasks/merge/join',
            message: expect.stringMatching(
              /^task 'merge': join waits for 2 inbound branches but only 1 task leads/,
            ),
          },
        ]),
      );
      expect((await api('GET', '/api/v1/packs/wfbroken')).status).toBe(404);

      // fixed, it installs and its workflow runs through the same checks as the API's
      fs.writeFileSync(
        path.join(dir, 'workflows', 'loop.yaml'),
        'tasks:\n  start:\n    action: core.noop\n    next: [{when: "{{ succeeded() }}", do: poll}]\n  poll:\n    action: core.noop\n',
      );
      const ok = await api('POST', '/api/v1/packs/install', { source: 'path', path: dir });
      expect(ok.status, JSON.stringify(ok.body)).toBe(201);
      expect((await api('GET', '/api/v1/workflows/wfbroken.loop')).status).toBe(200);
    });
  });
});
