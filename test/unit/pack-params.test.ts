import { describe, expect, it } from 'vitest';
import { validateAgainst } from '../../src/domain/json-schema.ts';
import { isFlatForm, parametersToSchema, pointer, suggest } from '../../src/workflow/file-format.ts';

describe('flat parameter declarations → JSON Schema', () => {
  it('converts names, types, required, defaults, enums and secrets', () => {
    const r = parametersToSchema({
      cmd: { type: 'string', description: 'the command', required: true },
      retries: { type: 'integer', default: 3, minimum: 0 },
      mode: { type: 'string', enum: ['a', 'b'], default: 'a' },
      token: { type: 'string', secret: true },
      tags: { type: 'array', items: { type: 'string' } },
    });
    expect(r.problems).toEqual([]);
    expect(r.schema).toEqual({
      type: 'object',
      properties: {
        cmd: { type: 'string', description: 'the command' },
        retries: { type: 'integer', default: 3, minimum: 0 },
        mode: { type: 'string', enum: ['a', 'b'], default: 'a' },
        token: { type: 'string', secret: true },
        tags: { type: 'array', items: { type: 'string' } },
      },
      required: ['cmd'],
      additionalProperties: false,
    });
  });

  it('produces a schema that validates as declared (unknown names refused, defaults applied)', () => {
    const { schema } = parametersToSchema({
      who: { type: 'string', required: true },
      n: { type: 'integer', default: 1 },
    });
    expect(schema).not.toBeNull();
    const ok = { who: 'x' };
    expect(validateAgainst(schema!, ok)).toEqual([]);
    expect(ok).toEqual({ who: 'x', n: 1 });
    expect(validateAgainst(schema!, {})).toEqual([
      { path: '/who', message: "must have required property 'who'" },
    ]);
    expect(validateAgainst(schema!, { who: 'x', extra: 1 })[0]!.path).toBe('/extra');
  });

  it('leaves a payload or output schema open when asked', () => {
    const { schema } = parametersToSchema({ service: { type: 'string' } }, { closed: false });
    expect(schema).toEqual({ type: 'object', properties: { service: { type: 'string' } } });
  });

  it('pins an immutable parameter to its default', () => {
    const { schema, problems } = parametersToSchema({
      cmd: { type: 'string', default: 'uptime', immutable: true },
    });
    expect(problems).toEqual([]);
    expect(schema!.properties).toEqual({ cmd: { type: 'string', default: 'uptime', const: 'uptime' } });
    expect(parametersToSchema({ cmd: { type: 'string', immutable: true } }).problems).toEqual([
      { path: ['cmd', 'immutable'], message: 'an immutable parameter needs a default' },
    ]);
  });

  it('reports every problem with its path, with hints for misspellings', () => {
    const r = parametersToSchema(
      {
        count: { type: 'integr' },
        label: { type: 'string', requird: true },
        flag: { description: 'no type' },
        'bad name': { type: 'string' },
        req: { type: 'string', required: 'yes' },
        scalar: 'string',
      },
      { at: ['parameters'] },
    );
    expect(r.schema).toBeNull();
    expect(r.problems.map((p) => [pointer(p.path), p.message])).toEqual([
      [
        '/parameters/count/type',
        expect.stringMatching(/unknown type 'integr'; expected string, number, integer/),
      ],
      ['/parameters/label/requird', "unknown keyword 'requird' (did you mean 'required'?)"],
      ['/parameters/flag', expect.stringMatching(/parameter 'flag' needs a type/)],
      ['/parameters/bad name', expect.stringMatching(/must start with a letter/)],
      ['/parameters/req/required', expect.stringMatching(/^required must be true or false/)],
      ['/parameters/scalar', expect.stringMatching(/must be a mapping/)],
    ]);
  });

  it('checks every default against its own declaration', () => {
    const r = parametersToSchema({
      n: { type: 'integer', default: 'three' },
      mode: { type: 'string', enum: ['a', 'b'], default: 'c' },
      ok: { type: 'string', default: 'fine' },
    });
    expect(r.schema).toBeNull();
    expect(r.problems.map((p) => pointer(p.path))).toEqual(['/n/default', '/mode/default']);
    expect(r.problems[0]!.message).toMatch(/the default does not fit the declaration: .*integer/);
  });

  it('reports declarations that are not valid JSON Schema (a bad pattern)', () => {
    const r = parametersToSchema({ host: { type: 'string', pattern: '([a-z' } });
    expect(r.schema).toBeNull();
    expect(r.problems[0]!.message).toMatch(/not a valid declaration/);
  });

  it('passes a JSON Schema through, validating it', () => {
    const js = { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] };
    expect(parametersToSchema(js)).toEqual({ schema: js, problems: [] });
    const bad = parametersToSchema(
      { type: 'object', properties: { a: { type: 'strng' } } },
      { at: ['parameters'] },
    );
    expect(bad.schema).toBeNull();
    expect(pointer(bad.problems[0]!.path)).toMatch(/^\/parameters\/properties\/a\/type/);
    expect(bad.problems[0]!.message).toMatch(/not a valid JSON Schema/);
  });

  it('requires an object schema for parameters', () => {
    const r = parametersToSchema({ type: 'string' }, { object: true, at: ['parameters'] });
    expect(r.problems).toEqual([
      { path: ['parameters', 'type'], message: 'must describe an object (type: object)' },
    ]);
    expect(parametersToSchema({ type: 'string' }).problems).toEqual([]);
  });

  it('tells the two forms apart, even with a parameter named "type"', () => {
    expect(isFlatForm({ type: { type: 'string' } })).toBe(true);
    expect(isFlatForm({ type: 'object', properties: {} })).toBe(false);
    expect(isFlatForm({ $schema: 'http://json-schema.org/draft-07/schema#' })).toBe(false);
    const r = parametersToSchema({ type: { type: 'string', required: true } });
    expect(r.schema).toEqual({
      type: 'object',
      properties: { type: { type: 'string' } },
      required: ['type'],
      additionalProperties: false,
    });
  });

  it('maps absence to null and refuses scalars', () => {
    expect(parametersToSchema(undefined)).toEqual({ schema: null, problems: [] });
    expect(parametersToSchema(null)).toEqual({ schema: null, problems: [] });
    expect(parametersToSchema({})).toEqual({
      schema: { type: 'object', properties: {}, additionalProperties: false },
      problems: [],
    });
    expect(parametersToSchema('cmd', { at: ['parameters'] }).problems[0]!.path).toEqual(['parameters']);
  });

  it('suggests close words only', () => {
    expect(suggest('runer', ['runner', 'retry'])).toBe('runner');
    expect(suggest('zzzzzz', ['runner', 'retry'])).toBeUndefined();
  });
});
