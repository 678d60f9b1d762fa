import { describe, expect, it } from 'vitest';
import {
  parseWorkflow,
  parseWorkflowOrThrow,
  parseWorkflowResource,
  WorkflowDefinitionError,
} from '../../src/workflow/definition.ts';

const errors = (raw: unknown) => {
  const r = parseWorkflow(raw);
  return r.problems.filter((p) => p.severity === 'error');
};

describe('workflow parser', () => {
  it('parses a full workflow into the language types', () => {
    const def = parseWorkflowOrThrow({
      ref: 'ops.deploy',
      label: 'Deploy',
      version: '1.0.0',
      parameters: { app: { type: 'string', required: true }, env: { type: 'string', default: 'dev' } },
      vars: [{ a: 1 }, { b: '{{ vars.a }}' }],
      tasks: [
        {
          name: 'build',
          action: 'ci.build',
          input: { app: '{{ parameters.app }}' },
          retry: { count: 2, delay: 5, backoff: 'exponential', max_delay: 60, when: '{{ failed() }}' },
          timeout: 300,
          delay: 0,
          next: [
            { when: '{{ succeeded() }}', publish: { artifact: '{{ result().path }}' }, do: 'ship, notify' },
            { when: 'failed()', do: ['fail'] },
          ],
        },
        { name: 'ship', action: 'ci.ship', with_items: '{{ parameters.hosts }}', concurrency: 5 },
        { name: 'notify', action: 'core.echo', join: 'all', 'x-ui': { x: 1 }, __chart_meta__: {} },
      ],
      output_map: [{ artifact: '{{ vars.artifact }}' }],
    });
    expect(def.ref).toBe('ops.deploy');
    expect(def.version).toBe('1.0.0');
    expect(def.vars).toEqual({ a: 1, b: '{{ vars.a }}' });
    expect(def.parameters).toEqual({
      type: 'object',
      properties: { app: { type: 'string' }, env: { type: 'string', default: 'dev' } },
      required: ['app'],
      additionalProperties: false,
    });
    const [build, ship, notify] = def.tasks;
    expect(build!.retry).toEqual({
      count: 2,
      delay: 5,
      backoff: 'exponential',
      maxDelay: 60,
      when: '{{ failed() }}',
    });
    expect(build!.timeout).toBe(300);
    expect(build!.delay).toBeUndefined();
    expect(build!.next[0]).toEqual({
      when: '{{ succeeded() }}',
      publish: [{ name: 'artifact', value: '{{ result().path }}' }],
      do: ['ship', 'notify'],
    });
    expect(build!.next[1]!.do).toEqual(['fail']);
    expect(ship!.withItems).toEqual({ items: '{{ parameters.hosts }}', concurrency: 5, failFast: false });
    expect(notify!.join).toBe('all');
    expect(def.outputMap).toEqual({ artifact: '{{ vars.artifact }}' });
  });

  it('accepts the API definition field alone (vars, tasks, output_map)', () => {
    const r = parseWorkflow({
      vars: { x: 1 },
      tasks: [{ name: 'a', action: 'core.noop' }],
      output_map: { x: 1 },
    });
    expect(r.ok).toBe(true);
  });

  it('takes output as output_map unless it is a JSON Schema of the output', () => {
    const a = parseWorkflowOrThrow({ tasks: [{ name: 'a', action: 'core.noop' }], output: { x: '{{ 1 }}' } });
    expect(a.outputMap).toEqual({ x: '{{ 1 }}' });
    const b = parseWorkflowOrThrow({
      tasks: [{ name: 'a', action: 'core.noop' }],
      output: { type: 'object', properties: { x: { type: 'integer' } } },
      output_map: { x: 1 },
    });
    expect(b.outputMap).toEqual({ x: 1 });
  });

  it('reports every structural problem with the task name and path', () => {
    const probs = errors({
      tasks: [
        { name: 'a', action: 'nodot', next: [{ whem: '{{ x }}', do: 'b' }] },
        { name: 'b', action: 'core.noop', retry: { count: 0, backoff: 'fibonacci' }, timeout: -1 },
        { name: 'a', action: 'core.noop' },
        { action: 'core.noop' },
        { name: 'fail', action: 'core.noop' },
        { name: 'c', action: 'core.noop', join: 0, with_items: 5, input: 'x' },
        'just a string',
      ],
    });
    const byPath = Object.fromEntries(probs.map((p) => [p.path, p]));
    expect(byPath['tasks[0].action']).toMatchObject({
      task: 'a',
      message: expect.stringContaining('"nodot"'),
    });
    expect(byPath['tasks[0].next[0].whem']!.message).toContain("did you mean 'when'");
    expect(byPath['tasks[1].retry.count']!.message).toContain('from 1 to 100');
    expect(byPath['tasks[1].retry.backoff']!.message).toContain('constant, linear, exponential');
    expect(byPath['tasks[1].timeout']!.message).toContain('more than zero');
    expect(byPath['tasks[2].name']!.message).toContain("duplicate task name 'a' (first defined at tasks[0])");
    expect(byPath['tasks[3].name']!.message).toContain("'name' is required");
    expect(byPath['tasks[4].name']!.message).toContain('reserved');
    expect(byPath['tasks[5].join']!.message).toContain("'all' or a whole number");
    expect(byPath['tasks[5].with_items']!.message).toContain('expression giving a list');
    expect(byPath['tasks[5].input']!.message).toContain('mapping');
    expect(byPath['tasks[6]']!.message).toContain('a task must be a mapping');
  });

  it('rejects an empty task list, a missing one and non-objects clearly', () => {
    expect(errors({ tasks: 'a, b' })[0]!.message).toContain('must be a list of tasks');
    expect(errors({ tasks: [] })[0]!.message).toContain('at least one task');
    expect(errors({})[0]!.message).toContain("'tasks' is required");
    expect(errors('text')[0]!.message).toContain('a workflow must be a mapping');
    expect(errors({ tasks: [{ name: 'a', action: 'core.noop' }], bogus: 1 })[0]!.message).toContain(
      "unknown field 'bogus'",
    );
  });

  it('checks publish names, transition shapes, with_items forms and concurrency', () => {
    const probs = errors({
      tasks: [
        {
          name: 'a',
          action: 'core.noop',
          next: ['b', { publish: [{ '1bad': 1 }, { a: 1, b: 2 }], do: [3] }],
          concurrency: 2,
        },
        {
          name: 'b',
          action: 'core.noop',
          with_items: { items: '{{ x }}', concurrency: 2, fail_fast: 'yes' },
          concurrency: 3,
        },
        { name: 'c', action: 'core.noop', retry: { count: 1, delay: 10, max_delay: 5 } },
      ],
    });
    const msgs = probs.map((p) => `${p.path}: ${p.message}`);
    expect(msgs).toEqual(
      expect.arrayContaining([
        expect.stringContaining('tasks[0].next[0]: a transition must be a mapping'),
        expect.stringContaining("tasks[0].next[1].publish[0].1bad: '1bad' is not a valid variable name"),
        expect.stringContaining('tasks[0].next[1].publish[1]: each entry must be a one-key mapping'),
        expect.stringContaining('tasks[0].next[1].do[0]: must be a task name'),
        expect.stringContaining("tasks[0].concurrency: 'concurrency' needs 'with_items'"),
        expect.stringContaining('tasks[1].with_items.fail_fast: must be true or false'),
        expect.stringContaining('tasks[1].concurrency: concurrency is given twice'),
        expect.stringContaining('tasks[2].retry.max_delay: max_delay (5) is smaller than delay (10)'),
      ]),
    );
  });

  it('throws a WorkflowDefinitionError that lists the problems', () => {
    try {
      parseWorkflowOrThrow({ tasks: [{ name: 'a' }, { name: 'b' }] });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(WorkflowDefinitionError);
      const err = e as WorkflowDefinitionError;
      expect(err.message).toBe(
        "invalid workflow: task 'a': tasks[0].action: 'action' is required (an action ref such as core.echo) (and 1 more)",
      );
      expect(err.problems).toHaveLength(2);
    }
  });

  it('warns about harmless oddities without failing', () => {
    const r = parseWorkflow({
      tasks: [
        {
          name: 'a',
          action: 'core.noop',
          next: [{ publish: [{ x: 1 }, { x: 2 }], do: ['b', 'b'] }],
          retry: { count: 1, max_delay: 3 },
        },
        { name: 'b', action: 'core.noop' },
      ],
    });
    expect(r.ok).toBe(true);
    expect(r.problems.map((p) => p.message)).toEqual([
      "'x' is set twice; the last value wins",
      "'b' is listed twice",
      'max_delay has no effect with constant backoff',
    ]);
  });
});

describe('workflow top level (shared with the workflow file format)', () => {
  it('reads a workflow file: flat parameters, an output schema, tasks as a mapping', () => {
    const def = parseWorkflowOrThrow({
      ref: 'ops.x',
      version: '1.2.0',
      tags: ['a'],
      parameters: { n: { type: 'integer', required: true } },
      output: { total: { type: 'integer' } },
      tasks: { first: { action: 'core.noop', next: [{ do: 'second' }] }, second: { action: 'core.noop' } },
      output_map: { total: '{{ 1 }}' },
    });
    expect(def.parameters).toEqual({
      type: 'object',
      properties: { n: { type: 'integer' } },
      required: ['n'],
      additionalProperties: false,
    });
    expect(def.outputSchema).toEqual({ type: 'object', properties: { total: { type: 'integer' } } });
    expect(def.tasks.map((t) => t.name)).toEqual(['first', 'second']);
    expect(def.outputMap).toEqual({ total: '{{ 1 }}' });
  });

  it('reports top-level problems with their paths', () => {
    const r = parseWorkflow({
      ref: 'bad',
      version: 'one',
      parameters: { n: { type: 'strnig' } },
      tasks: [{ name: 'a', action: 'core.noop' }],
    });
    expect(r.ok).toBe(false);
    const paths = r.problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['ref', 'version', 'parameters.n.type']));
  });

  it('parses a stored resource: definition plus param_schema', () => {
    const r = parseWorkflowResource({
      param_schema: { type: 'object', properties: { x: { type: 'string', default: 'd' } } },
      definition: { vars: { v: 1 }, tasks: [{ name: 'a', action: 'core.noop' }] },
    });
    expect(r.ok && r.definition.parameters).toEqual({
      type: 'object',
      properties: { x: { type: 'string', default: 'd' } },
    });
    expect(parseWorkflowResource({ definition: null }).ok).toBe(false);
  });
});
