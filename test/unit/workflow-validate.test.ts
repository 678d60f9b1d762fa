import { describe, expect, it } from 'vitest';
import {
  type ActionLookup,
  validateWorkflow,
  validateWorkflowResource,
} from '../../src/workflow/validate.ts';

const t = (name: string, extra: Record<string, unknown> = {}) => ({ name, action: 'core.noop', ...extra });
const problems = (raw: unknown, lookupAction?: ActionLookup) =>
  validateWorkflow(raw, lookupAction ? { lookupAction } : {}).problems.map(
    (p) => `${p.severity} ${p.task ?? '-'} ${p.path}: ${p.message}`,
  );

describe('workflow validation', () => {
  it('accepts a sound workflow without problems', () => {
    const r = validateWorkflow({
      parameters: { n: { type: 'integer' } },
      vars: { count: 0 },
      tasks: [
        t('a', {
          input: { x: '{{ parameters.n }}' },
          next: [{ when: '{{ succeeded() }}', publish: [{ count: 1 }], do: 'b' }],
        }),
        t('b', { input: { y: '{{ vars.count }} {{ task.a.result }}' } }),
      ],
      output_map: { c: '{{ vars.count }}' },
    });
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.definition?.tasks).toHaveLength(2);
  });

  it('reports unknown targets with a suggestion', () => {
    expect(problems({ tasks: [t('build', { next: [{ do: ['deplyo', 'fal'] }] }), t('deploy')] })).toEqual(
      expect.arrayContaining([
        "error build tasks[0].next[0].do[0]: unknown task 'deplyo' (did you mean 'deploy'?); a target is a task name or fail, noop, retry",
        "error build tasks[0].next[0].do[1]: unknown task 'fal' (did you mean 'fail'?); a target is a task name or fail, noop, retry",
      ]),
    );
  });

  it('reports invalid expressions in every place they can appear', () => {
    const ps = problems({
      vars: { v: '{{ 1 + }}' },
      tasks: [
        t('a', {
          input: { deep: [{ x: '{{ (( }}' }] },
          with_items: '{{ [1, }}',
          retry: { count: 1, when: '{{ failed( }}' },
          next: [{ when: 'succeeded() and', publish: [{ p: '{{ } }}' }], do: 'b' }],
        }),
        t('b'),
      ],
      output_map: { o: '{% if %}' },
    });
    const paths = ps.filter((p) => p.startsWith('error')).map((p) => p.split(': ')[0]);
    expect(paths).toEqual([
      'error - vars.v',
      'error - output_map.o',
      'error a tasks[0].input.deep[0].x',
      'error a tasks[0].with_items',
      'error a tasks[0].retry.when',
      'error a tasks[0].next[0].when',
      'error a tasks[0].next[0].publish.p',
    ]);
  });

  it('reports tasks no start task leads to', () => {
    expect(
      problems({
        tasks: [
          t('a', { next: [{ do: 'b' }] }),
          t('b', { next: [{ when: '{{ failed() }}', do: 'c' }] }),
          t('c', { next: [{ when: '{{ false }}', do: 'b' }] }),
          t('island1', { next: [{ when: '{{ x }}', do: 'island2' }] }),
          t('island2', { next: [{ when: '{{ y }}', do: 'island1' }] }),
        ],
      }),
    ).toEqual([
      "error island1 tasks[3]: task 'island1' can never run: no start task leads to it (start task: a)",
      "error island2 tasks[4]: task 'island2' can never run: no start task leads to it (start task: a)",
    ]);
  });

  it('reports loops where every edge is unconditional, but allows conditional loops and joins', () => {
    expect(
      problems({
        tasks: [
          t('init', { next: [{ do: 'a' }] }),
          t('a', { next: [{ do: 'b' }] }),
          t('b', { next: [{ do: 'a' }, { when: '{{ true }}', do: 'c' }] }),
          t('c', { next: [{ when: 'true', do: 'c' }] }),
        ],
      }),
    ).toEqual([
      "error c tasks[3].next: tasks c → c form a loop that never ends: every transition between them is unconditional; add a 'when' to leave it",
      "error a tasks[1].next: tasks a → b → a form a loop that never ends: every transition between them is unconditional; add a 'when' to leave it",
    ]);
    expect(
      problems({
        tasks: [
          t('a', { next: [{ do: 'b' }] }),
          t('b', { next: [{ when: '{{ result().again }}', do: 'a' }] }),
        ],
      }),
    ).toEqual([]);
  });

  it('reports joins that can never start and joins with no effect', () => {
    expect(
      problems({
        tasks: [
          t('a', { next: [{ do: ['b', 'c'] }] }),
          t('b', { next: [{ do: 'j' }] }),
          t('c', { next: [{ do: 'j' }, { do: 'k' }] }),
          t('j', { join: 3 }),
          t('k', { join: 'all' }),
        ],
      }),
    ).toEqual([
      'error j tasks[3].join: join waits for 3 inbound branches but only 2 tasks lead here (b, c), so it can never start',
      'warning k tasks[4].join: join has no effect: only 1 task leads here',
    ]);
  });

  it('warns about references to unknown tasks, variables, parameters and item outside with_items', () => {
    const ps = problems({
      parameters: { region: { type: 'string' } },
      vars: { counter: 0 },
      tasks: [
        t('a', {
          input: {
            x: '{{ task.buidl.result }}',
            y: '{{ vars.countr }}',
            z: '{{ parameters.regoin }}',
            w: '{{ item }}',
          },
          next: [{ publish: [{ later: 1 }], do: 'b' }],
        }),
        t('b', {
          with_items: '{{ [1] }}',
          input: { ok: '{{ item }} {{ index }} {{ vars.later }} {{ workflow.counter }}' },
        }),
      ],
    });
    expect(ps).toEqual([
      "warning a tasks[0].input.x: refers to task 'buidl', which this workflow does not have",
      "warning a tasks[0].input.y: refers to variable 'countr', which is neither in vars nor published by any task (did you mean 'counter'?)",
      "warning a tasks[0].input.z: refers to parameter 'regoin', which the parameters schema does not define (did you mean 'region'?)",
      "warning a tasks[0].input.w: uses 'item' or 'index', which only exist in a task with with_items",
    ]);
  });

  it('warns about conditions that mix text and expressions', () => {
    expect(
      problems({
        tasks: [t('a', { next: [{ when: '{{ succeeded() }} and {{ result().ok }}', do: 'noop' }] })],
      })[0],
    ).toContain('should be one expression');
  });

  it('checks actions and inputs against the target action parameters', () => {
    const lookup: ActionLookup = (ref) => {
      if (ref === 'core.echo')
        return {
          paramSchema: {
            type: 'object',
            properties: { message: { type: 'string' }, level: { type: 'integer', default: 1 } },
            required: ['message', 'level'],
            additionalProperties: false,
          },
        };
      if (ref === 'core.http')
        return { paramSchema: { type: 'object', properties: { url: { type: 'string' } } } };
      if (ref.startsWith('later.')) return 'unknown-pack';
      return undefined;
    };
    expect(
      problems(
        {
          tasks: [
            {
              name: 'a',
              action: 'core.echo',
              input: { messgae: 'hi' },
              next: [{ do: ['b', 'c', 'd', 'e'] }],
            },
            { name: 'b', action: 'core.echo', input: { message: 42 } },
            { name: 'c', action: 'core.http', input: { url: '{{ parameters.u }}', extra: 1 } },
            { name: 'd', action: 'core.missing' },
            { name: 'e', action: 'later.thing', input: { anything: 1 } },
          ],
        },
        lookup,
      ),
    ).toEqual([
      "error a tasks[0].input: action 'core.echo' needs parameter 'message', which the input does not give",
      "error a tasks[0].input.messgae: action 'core.echo' has no parameter 'messgae' (did you mean 'message'?)",
      'error b tasks[1].input.message: must be string',
      "warning c tasks[2].input.extra: action 'core.http' has no parameter 'extra'",
      "error d tasks[3].action: unknown action 'core.missing'",
      "warning e tasks[4].action: pack 'later' is not installed; 'later.thing' is checked when the pack arrives",
    ]);
  });

  it('checks inquiry response schemas', () => {
    expect(
      problems({
        tasks: [
          {
            name: 'ask',
            action: 'core.ask',
            input: { prompt: 'ok?', response_schema: { ok: { type: 'bool' } } },
          },
        ],
      })[0],
    ).toMatch(/^error ask tasks\[0\]\.input\.response_schema/);
    expect(problems({ tasks: [{ name: 'ask', action: 'core.ask', input: { prompt: 'ok?' } }] })).toEqual([
      'warning ask tasks[0].input: an inquiry without response_schema accepts any answer',
    ]);
  });

  it('returns the parser problems when the structure is wrong', () => {
    const r = validateWorkflow({ tasks: [{ name: 'a' }] });
    expect(r.ok).toBe(false);
    expect(r.definition).toBeUndefined();
    expect(r.problems[0]).toMatchObject({ task: 'a', path: 'tasks[0].action', severity: 'error' });
  });

  it('warns when a workflow runs itself', () => {
    expect(problems({ ref: 'ops.loop', tasks: [{ name: 'again', action: 'ops.loop' }] })).toEqual([
      'warning again tasks[0].action: the workflow runs itself; make sure the recursion ends',
    ]);
  });
});

describe('workflow resource validation', () => {
  it('names the API fields in problem paths', () => {
    const r = validateWorkflowResource({
      param_schema: { type: 'object', properties: { n: { type: 'nope' } } },
      definition: { tasks: [{ name: 'a', action: 'core.noop', next: [{ do: 'b' }] }] },
    });
    expect(r.ok).toBe(false);
    expect(r.problems.map((p) => p.path)).toEqual(expect.arrayContaining(['param_schema.properties.n.type']));
    const r2 = validateWorkflowResource({
      definition: { tasks: [{ name: 'a', action: 'core.noop', next: [{ do: 'b' }] }] },
    });
    expect(r2.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "definition.tasks[0].next[0].do[0]: unknown task 'b'; a target is a task name or fail, noop, retry",
    ]);
    expect(validateWorkflowResource({ definition: 'x' }).problems[0]!.path).toBe('definition');
  });
});
