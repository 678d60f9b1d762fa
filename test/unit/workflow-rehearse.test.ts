import { describe, expect, it } from 'vitest';
import { rehearse } from '../../src/workflow/rehearse.ts';
import { parseRehearsalSpec, runRehearsalSpec } from '../../src/workflow/rehearse-spec.ts';

const yaml = `
parameters:
  n: {type: integer, default: 2}
tasks:
  - name: count
    action: ops.count
    input: {n: "{{ parameters.n }}"}
    next:
      - when: "{{ succeeded() }}"
        publish: [{total: "{{ result().total }}"}]
        do: report
  - name: report
    action: core.echo
    input: {message: "total {{ vars.total }}"}
output_map: {total: "{{ vars.total }}"}
`;

describe('rehearse', () => {
  it('runs YAML text with mocks and reports the sequence, runs, status and output', () => {
    const r = rehearse(yaml, { mocks: { count: { result: { total: 9 }, duration: 2 } } });
    expect(r.problems).toEqual([]);
    expect(r.tasks).toEqual(['count', 'report']);
    expect(r.status).toBe('succeeded');
    expect(r.output).toEqual({ total: 9 });
    expect(r.passed).toBe(true);
    expect(r.duration_seconds).toBe(2);
    expect(r.runs).toEqual([
      {
        run_key: 'count#1',
        task: 'count',
        item: null,
        attempt: 1,
        action: 'ops.count',
        input: { n: 2 },
        status: 'succeeded',
        result: { total: 9 },
        started_at: 0,
        finished_at: 2,
        kind: 'action',
      },
      {
        run_key: 'report#1',
        task: 'report',
        item: null,
        attempt: 1,
        action: 'core.echo',
        input: { message: 'total 9' },
        status: 'succeeded',
        result: null,
        started_at: 2,
        finished_at: 2,
        kind: 'action',
      },
    ]);
  });

  it('lists every mismatch with the expectation', () => {
    const r = rehearse(yaml, {
      mocks: { count: { total: 1 } },
      expect: {
        tasks: ['count'],
        status: 'failed',
        output: { total: 2 },
        calls: { report: 2 },
        error: 'boom',
      },
    });
    expect(r.passed).toBe(false);
    expect(r.mismatches).toEqual([
      'tasks: expected ["count"], got ["count","report"]',
      'status: expected failed, got succeeded',
      'output: expected {"total":2}, got {"total":1}',
      'error: expected a message containing "boom", got null',
      'calls.report: expected 2, got 1',
    ]);
  });

  it('refuses an invalid workflow or invalid mocks with problems instead of running', () => {
    const bad = rehearse({ tasks: [{ name: 'a', action: 'core.noop', next: [{ do: 'nowhere' }] }] });
    expect(bad.status).toBe('invalid');
    expect(bad.passed).toBe(false);
    expect(bad.problems[0]).toMatchObject({ task: 'a', severity: 'error' });
    const mocks = rehearse(yaml, {
      mocks: { cuont: [], count: [{ status: 'exploded' }, { total: 1, duration: 3 }] },
    });
    expect(mocks.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "mocks.cuont: the workflow has no task 'cuont'",
      'mocks.cuont: an empty list of mocks; omit it instead',
      'mocks.count[0].status: must be one of succeeded, failed, timeout, canceled',
      "mocks.count[1]: mixes 'duration' with result fields (total); write {result: {...}, duration: …}",
    ]);
    expect(rehearse('tasks: [', {}).problems[0]!.message).toMatch(/^not valid YAML/);
  });

  it('reports what an unfinished workflow waits for', () => {
    const r = rehearse({
      tasks: [
        { name: 'ask', action: 'core.ask', input: { prompt: 'ok?', response_schema: { type: 'object' } } },
      ],
    });
    expect(r.status).toBe('running');
    expect(r.waiting).toEqual(['ask#1: an inquiry waits for an answer']);
  });

  it('stops an endless rehearsal at the event bound', () => {
    const r = rehearse(
      { tasks: [{ name: 'l', action: 'ops.l', next: [{ when: '{{ not failed() }}', do: 'l' }] }] },
      { max_events: 50, max_task_runs: 1000 },
    );
    expect(r.mismatches).toEqual(['the rehearsal stopped after 50 events (an endless workflow?)']);
  });
});

describe('rehearsal specs', () => {
  it('parses a spec, runs its cases and reports per case', () => {
    const parsed = parseRehearsalSpec(`
workflow: ./count.yaml
cases:
  - name: default
    mocks: {count: {total: 4}}
    expect: {tasks: [count, report], output: {total: 4}}
  - name: wrong on purpose
    parameters: {n: 5}
    expect: {inputs: {count: [{n: 4}]}}
`);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.spec.workflow).toBe('./count.yaml');
    const result = runRehearsalSpec(parsed.spec, { definition: yaml, round_trip: true });
    expect(result.cases.map((c) => [c.name, c.passed])).toEqual([
      ['default', true],
      ['wrong on purpose', false],
    ]);
    expect(result.passed).toBe(false);
    expect(result.cases[1]!.report.mismatches).toEqual(['inputs.count: expected [{"n":4}], got [{"n":5}]']);
  });

  it('reports spec problems with paths', () => {
    const parsed = parseRehearsalSpec({
      definition: { tasks: [] },
      workflow: 'x.yaml',
      cases: [{ name: 'a', expect: { taks: [] }, max_task_runs: 0 }, { name: 'a' }, { mocks: 3 }],
      extra: 1,
    });
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "extra: unknown key 'extra'; allowed: description, workflow, definition, workflows, cases",
      "definition: give either 'workflow' or 'definition', not both",
      "cases[0].expect.taks: unknown key 'taks' (did you mean 'tasks'?); allowed: tasks, status, output, error, vars, calls, inputs, rejections, started_at, duration_seconds",
      'cases[0].max_task_runs: must be a whole number of 1 or more',
      "cases[1].name: duplicate case name 'a'",
      'cases[2].name: every case needs a name',
      'cases[2].mocks: must be a mapping of task names to results',
    ]);
    expect(parseRehearsalSpec('cases: [').ok).toBe(false);
  });
});
