import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { pointer, resourceToWorkflowFile, workflowFileToResource } from '../../src/workflow/file-format.ts';

const problemsOf = (doc: unknown) =>
  workflowFileToResource(doc).problems.map((p) => [pointer(p.path), p.message]);

describe('workflow file → workflow resource fields', () => {
  it('maps parameters, output, vars, tasks and output_map onto the resource', () => {
    const doc = parse(`
ref: ops.deploy
label: Deploy
description: Deploys a service
version: 1.2.3
tags: [ops]
enabled: false
parameters:
  service: {type: string, required: true}
output:
  ok: {type: boolean}
vars:
  attempts: 0
tasks:
  - name: build
    action: ops.build
    next:
      - when: "{{ succeeded() }}"
        do: [ship]
  - name: ship
    action: ops.ship
output_map:
  ok: "{{ vars.attempts < 3 }}"
`);
    const { fields, problems } = workflowFileToResource(doc);
    expect(problems).toEqual([]);
    expect(fields).toEqual({
      ref: 'ops.deploy',
      label: 'Deploy',
      description: 'Deploys a service',
      version: '1.2.3',
      tags: ['ops'],
      enabled: false,
      param_schema: {
        type: 'object',
        properties: { service: { type: 'string' } },
        required: ['service'],
        additionalProperties: false,
      },
      out_schema: { type: 'object', properties: { ok: { type: 'boolean' } } },
      definition: {
        vars: { attempts: 0 },
        tasks: [
          { name: 'build', action: 'ops.build', next: [{ when: '{{ succeeded() }}', do: ['ship'] }] },
          { name: 'ship', action: 'ops.ship' },
        ],
        output_map: { ok: '{{ vars.attempts < 3 }}' },
      },
    });
  });

  it('accepts a JSON Schema for parameters and keeps it as is', () => {
    const schema = { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] };
    const { fields } = workflowFileToResource({
      parameters: schema,
      tasks: [{ name: 'a', action: 'core.noop' }],
    });
    expect(fields.param_schema).toEqual(schema);
  });

  it('reads `output` written as expressions as the output_map', () => {
    const { fields, problems } = workflowFileToResource({
      tasks: [{ name: 'a', action: 'core.noop' }],
      output: { result: '{{ vars.x }}', count: 3 },
    });
    expect(problems).toEqual([]);
    expect(fields.out_schema).toBeNull();
    expect(fields.definition.output_map).toEqual({ result: '{{ vars.x }}', count: 3 });
  });

  it('normalises tasks given as a mapping and vars given as a list', () => {
    const { fields, problems } = workflowFileToResource({
      vars: [{ a: 1 }, { b: 'two' }],
      tasks: {
        first: { action: 'core.noop', next: [{ do: 'second, third' }] },
        second: null,
        third: { action: 'core.noop' },
      },
    });
    expect(problems).toEqual([]);
    expect(fields.definition.vars).toEqual({ a: 1, b: 'two' });
    expect(fields.definition.tasks.map((t) => t.name)).toEqual(['first', 'second', 'third']);
  });

  it('reports every problem with its path', () => {
    expect(
      problemsOf({
        ref: 'not a ref',
        version: 2,
        enabled: 'yes',
        tags: ['ok', ''],
        vars: [{ a: 1 }, { a: 2 }],
        taks: [],
        tasks: [
          { name: 'a', action: 'core.noop', next: [{ do: ['b', 'nowhere', 'fail'] }] },
          { name: 'b', action: '' },
          { name: 'a', action: 'core.noop' },
          { action: 'core.noop' },
          'scalar',
        ],
      }),
    ).toEqual([
      ['/taks', "unknown field 'taks' (did you mean 'tasks'?)"],
      ['/ref', "'not a ref' is not a valid ref (expected 'pack.name')"],
      ['/version', 'version must be a string (quote it: "2")'],
      ['/tags/1', 'a tag must be a non-empty string of at most 100 characters'],
      ['/enabled', 'enabled must be true or false'],
      ['/vars/1/a', "variable 'a' is declared twice"],
      ['/tasks/1/action', "action must be an action ref such as 'core.echo'"],
      ['/tasks/2/name', "there is more than one task named 'a'"],
      ['/tasks/3/name', 'a task needs a name'],
      ['/tasks/4', 'a task must be a mapping {name, action, input, next, …}'],
      ['/tasks/0/next/0/do', "'nowhere' is not a task of this workflow"],
    ]);
  });

  it('checks the version as a semantic version and requires tasks', () => {
    expect(problemsOf({ version: '1.0', tasks: [{ name: 'a' }] })).toEqual([
      ['/version', "version '1.0' is not a semantic version (e.g. 1.0.0)"],
    ]);
    expect(problemsOf({ label: 'x' })).toEqual([['/tasks', 'a workflow needs tasks']]);
    expect(problemsOf({ tasks: [] })).toEqual([['/tasks', 'a workflow needs at least one task']]);
    expect(problemsOf('just text')).toEqual([['/', expect.stringMatching(/must be a mapping/)]]);
  });

  it('suggests the task meant by a misspelt do target', () => {
    const msgs = problemsOf({ tasks: [{ name: 'notify', next: [{ do: 'notfy' }] }] });
    expect(msgs).toEqual([
      ['/tasks/0/next/0/do', "'notfy' is not a task of this workflow (did you mean 'notify'?)"],
    ]);
  });

  it('writes a resource back as a file that reads the same', () => {
    const resource = {
      ref: 'ops.deploy',
      label: 'Deploy',
      version: '1.0.0',
      param_schema: { type: 'object', properties: { a: { type: 'string' } } },
      out_schema: null,
      definition: {
        vars: { x: 1 },
        tasks: [{ name: 't', action: 'core.noop' }],
        output_map: { x: '{{ vars.x }}' },
      },
    };
    const file = resourceToWorkflowFile(resource);
    const back = workflowFileToResource(file);
    expect(back.problems).toEqual([]);
    expect(back.fields.param_schema).toEqual(resource.param_schema);
    expect(back.fields.definition).toEqual(resource.definition);
  });
});
