/**
 * The run form generated from a parameter schema: which input each type gets, defaults, required
 * fields, secrets masked, enum values keeping their types, and the messages for what does not fit.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SchemaForm } from '../src/components/SchemaForm.tsx';
import { collect, fieldsOf, initialValues, normalizeSchema, problemsToErrors } from '../src/lib/schema.ts';
import { click, control, errorOf, type Rendered, render, type } from './render.tsx';

const SCHEMA = {
  type: 'object',
  properties: {
    host: { type: 'string', description: 'Where to connect', minLength: 3, pattern: '^[a-z0-9.-]+$' },
    port: { type: 'integer', default: 22, minimum: 1, maximum: 65535 },
    ratio: { type: 'number' },
    verbose: { type: 'boolean', default: false },
    level: { enum: ['low', 'high', 2], default: 'high' },
    tags: { type: 'array', items: { type: 'string' }, default: ['a', 'b'] },
    counts: { type: 'array', items: { type: 'integer' } },
    extra: { type: 'object' },
    token: { type: 'string', secret: true },
    script: { type: 'string', maxLength: 100_000 },
  },
  required: ['host', 'token'],
};

describe('fields of a schema', () => {
  const fields = fieldsOf(SCHEMA);
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));

  it('gives each type its input, required fields first', () => {
    expect(fields.map((f) => f.name).slice(0, 2)).toEqual(['host', 'token']);
    expect(byName.host!.kind).toBe('string');
    expect(byName.port!.kind).toBe('integer');
    expect(byName.ratio!.kind).toBe('number');
    expect(byName.verbose!.kind).toBe('boolean');
    expect(byName.level!.kind).toBe('enum');
    expect(byName.tags!.kind).toBe('list');
    expect(byName.counts!.itemType).toBe('integer');
    expect(byName.extra!.kind).toBe('json');
    expect(byName.script!.kind).toBe('text');
    expect(byName.token!.secret).toBe(true);
    expect(byName.host!.label).toBe('Host');
  });

  it('reads the flat form of pack files', () => {
    const s = normalizeSchema({ name: { type: 'string', required: true }, n: { type: 'integer' } });
    expect(s).toEqual({
      type: 'object',
      properties: { name: { type: 'string' }, n: { type: 'integer' } },
      required: ['name'],
    });
    expect(fieldsOf({ name: { type: 'string', required: true } })[0]!.required).toBe(true);
    expect(fieldsOf(null)).toEqual([]);
  });

  it('starts from the defaults', () => {
    const v = initialValues(fields);
    expect(v).toMatchObject({ host: '', port: '22', verbose: 'false', level: '1', tags: 'a\nb', token: '' });
  });

  it('types the values and leaves empty optional fields out', () => {
    const v = initialValues(fields);
    const r = collect(fields, {
      ...v,
      host: 'db.example',
      token: 's3cret',
      counts: '1\n 2 \n\n3',
      extra: '{"a": 1}',
    });
    expect(r.errors).toEqual({});
    expect(r.value).toEqual({
      host: 'db.example',
      token: 's3cret',
      port: 22,
      verbose: false,
      level: 'high',
      tags: ['a', 'b'],
      counts: [1, 2, 3],
      extra: { a: 1 },
    });
    expect('ratio' in r.value).toBe(false);
    // an enum keeps the type of its value
    expect(collect(fields, { ...v, host: 'abc', token: 'x', level: '2' }).value.level).toBe(2);
  });

  it('says what is wrong with each field', () => {
    const v = initialValues(fields);
    const r = collect(fields, {
      ...v,
      host: 'a',
      port: '70000',
      ratio: 'abc',
      counts: '1\nx',
      extra: '[1]',
    });
    expect(r.errors).toEqual({
      host: 'Must be at least 3 characters',
      token: 'Required',
      port: 'Must be at most 65535',
      ratio: 'Must be a number',
      counts: 'Line 2: must be a whole number',
      extra: 'Must be an object (got array)',
    });
    expect(collect(fields, { ...v, host: 'UPPER', token: 'x' }).errors.host).toBe(
      'Must match the pattern ^[a-z0-9.-]+$',
    );
    expect(collect(fields, { ...v, host: 'abc', token: 'x', port: '2.5' }).errors.port).toBe(
      'Must be a whole number',
    );
    expect(collect(fields, { ...v, host: 'abc', token: 'x', extra: '{oops' }).errors.extra).toMatch(
      /^Not valid JSON/,
    );
  });

  it("maps the server's problems onto fields", () => {
    const r = problemsToErrors(fields, [
      { path: '/port', message: 'must be <= 1000' },
      { path: '/parameters/host', message: 'bad host' },
      { path: '/', message: 'must NOT have additional properties' },
    ]);
    expect(r.errors).toEqual({ port: 'must be <= 1000', host: 'bad host' });
    expect(r.other).toEqual(['must NOT have additional properties']);
  });
});

describe('SchemaForm', () => {
  let view: Rendered | undefined;
  afterEach(() => view?.unmount());

  it('renders an input per parameter, with defaults, required marks and masked secrets', () => {
    view = render(<SchemaForm schema={SCHEMA} submitLabel="Run" onSubmit={() => {}} />);
    const c = view.container;
    expect(control(c, 'port').value).toBe('22');
    expect(control(c, 'verbose').type).toBe('checkbox');
    expect(control(c, 'verbose').checked).toBe(false);
    const level = control(c, 'level');
    expect(level.tagName).toBe('SELECT');
    expect([...level.options].map((o) => o.textContent)).toEqual(['(not set)', 'low', 'high', '2']);
    expect(level.value).toBe('1');
    expect(control(c, 'tags').tagName).toBe('TEXTAREA');
    expect(control(c, 'tags').value).toBe('a\nb');
    expect(control(c, 'host').getAttribute('aria-required')).toBe('true');
    expect(c.querySelectorAll('.req')).toHaveLength(2);

    const token = control(c, 'token');
    expect(token.type).toBe('password');
    const show = token.parentElement!.querySelector('button')!;
    expect(show.textContent).toBe('Show');
    click(show);
    expect(control(c, 'token').type).toBe('text');
    click(control(c, 'token').parentElement!.querySelector('button'));
    expect(control(c, 'token').type).toBe('password');
  });

  it('refuses to submit until every field fits, showing each message at its field', () => {
    const onSubmit = vi.fn();
    view = render(<SchemaForm schema={SCHEMA} submitLabel="Run" onSubmit={onSubmit} />);
    const c = view.container;
    click(c.querySelector('button[type=submit]'));
    expect(onSubmit).not.toHaveBeenCalled();
    expect(errorOf(control(c, 'host'))).toBe('Required');
    expect(control(c, 'host').getAttribute('aria-invalid')).toBe('true');
    expect(errorOf(control(c, 'token'))).toBe('Required');
    expect(document.activeElement).toBe(control(c, 'host'));

    type(control(c, 'host'), 'x');
    expect(errorOf(control(c, 'host'))).toBe('Must be at least 3 characters');
    type(control(c, 'host'), 'db.example');
    type(control(c, 'token'), 'hunter2');
    type(control(c, 'port'), '2222');
    click(control(c, 'verbose'));
    type(control(c, 'level'), '2');
    type(control(c, 'counts'), '5\n6');
    expect(errorOf(control(c, 'host'))).toBeNull();
    click(c.querySelector('button[type=submit]'));
    expect(onSubmit).toHaveBeenCalledWith({
      host: 'db.example',
      token: 'hunter2',
      port: 2222,
      verbose: true,
      level: 2,
      tags: ['a', 'b'],
      counts: [5, 6],
    });
  });

  it("shows the server's verdict on a field", () => {
    view = render(
      <SchemaForm
        schema={SCHEMA}
        submitLabel="Run"
        onSubmit={() => {}}
        serverErrors={{ port: 'port 2222 is closed' }}
      />,
    );
    expect(errorOf(control(view.container, 'port'))).toBe('port 2222 is closed');
  });

  it('starts from given values (a rerun) and says when there is nothing to fill in', () => {
    view = render(
      <SchemaForm
        schema={SCHEMA}
        initial={{ host: 'from.before', port: 1 }}
        submitLabel="Run"
        onSubmit={() => {}}
      />,
    );
    expect(control(view.container, 'host').value).toBe('from.before');
    expect(control(view.container, 'port').value).toBe('1');
    view.unmount();
    view = render(
      <SchemaForm schema={{}} submitLabel="Run" onSubmit={() => {}} emptyText="Nothing to set." />,
    );
    expect(view.container.textContent).toContain('Nothing to set.');
  });
});
