/**
 * A form generated from a parameter JSON Schema: one input per parameter by its type (text,
 * numbers, a checkbox, a list of options, one item per line, JSON for the rest), defaults filled
 * in, required fields marked, secrets masked with a show/hide toggle. `onSubmit` receives the typed
 * parameters once every field is valid.
 */
import { type FormEvent, type ReactNode, useEffect, useMemo, useState } from 'react';
import type { JsonObject } from '../api/types.ts';
import {
  collect,
  type FieldErrors,
  type FieldSpec,
  type FormValues,
  fieldsOf,
  initialValues,
} from '../lib/schema.ts';
import { Field } from './ui.tsx';

function SecretInput({
  id,
  name,
  value,
  onChange,
  describedBy,
  invalid,
  required,
}: {
  id: string;
  name: string;
  value: string;
  onChange: (v: string) => void;
  describedBy: string | undefined;
  invalid: boolean;
  required: boolean;
}) {
  const [shown, setShown] = useState(false);
  return (
    <div className="inline">
      <input
        id={id}
        name={name}
        type={shown ? 'text' : 'password'}
        autoComplete="off"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-describedby={describedBy}
        aria-invalid={invalid}
        aria-required={required}
        data-secret="true"
      />
      <button type="button" className="small" onClick={() => setShown(!shown)} aria-pressed={shown}>
        {shown ? 'Hide' : 'Show'}
      </button>
    </div>
  );
}

function Input({
  f,
  value,
  onChange,
  ids,
}: {
  f: FieldSpec;
  value: string;
  onChange: (v: string) => void;
  ids: { id: string; describedBy: string | undefined; invalid: boolean };
}) {
  const common = {
    id: ids.id,
    name: f.name,
    'aria-describedby': ids.describedBy,
    'aria-invalid': ids.invalid,
    'aria-required': f.required,
  };
  if (f.secret && (f.kind === 'string' || f.kind === 'text'))
    return (
      <SecretInput
        id={ids.id}
        name={f.name}
        value={value}
        onChange={onChange}
        describedBy={ids.describedBy}
        invalid={ids.invalid}
        required={f.required}
      />
    );
  switch (f.kind) {
    case 'boolean':
      if (!f.required && !f.hasDefault)
        return (
          <select {...common} value={value} onChange={(e) => onChange(e.target.value)}>
            <option value="">(not set)</option>
            <option value="true">true</option>
            <option value="false">false</option>
          </select>
        );
      return (
        <div className="inline">
          <input
            {...common}
            type="checkbox"
            checked={value === 'true'}
            onChange={(e) => onChange(e.target.checked ? 'true' : 'false')}
          />
          <span className="muted small">{value === 'true' ? 'yes' : 'no'}</span>
        </div>
      );
    case 'enum':
      return (
        <select {...common} value={value} onChange={(e) => onChange(e.target.value)}>
          {(!f.required || value === '') && <option value="">{f.required ? 'Choose…' : '(not set)'}</option>}
          {f.options.map((o, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: options are positional
            <option key={i} value={String(i)}>
              {typeof o === 'string' ? o : JSON.stringify(o)}
            </option>
          ))}
        </select>
      );
    case 'integer':
    case 'number':
      return (
        <input
          {...common}
          type="text"
          inputMode={f.kind === 'integer' ? 'numeric' : 'decimal'}
          value={value}
          onChange={(e) => onChange(e.target.value)}
        />
      );
    case 'text':
      return <textarea {...common} rows={3} value={value} onChange={(e) => onChange(e.target.value)} />;
    case 'list':
      return (
        <textarea
          {...common}
          rows={3}
          placeholder="one item per line"
          value={value}
          onChange={(e) => onChange(e.target.value)}
        />
      );
    case 'json':
      return (
        <textarea
          {...common}
          rows={4}
          placeholder={f.schema.type === 'array' ? '[ ]' : '{ }'}
          value={value}
          onChange={(e) => onChange(e.target.value)}
          spellCheck={false}
        />
      );
    default:
      return <input {...common} type="text" value={value} onChange={(e) => onChange(e.target.value)} />;
  }
}

const kindHint = (f: FieldSpec): string => {
  switch (f.kind) {
    case 'list':
      return `a list of ${f.itemType}s, one per line`;
    case 'json':
      return `JSON${typeof f.schema.type === 'string' ? ` (${f.schema.type})` : ''}`;
    case 'integer':
      return 'a whole number';
    case 'number':
      return 'a number';
    default:
      return '';
  }
};

export interface SchemaFormProps {
  schema: unknown;
  /** Values to start from instead of the defaults (e.g. a rerun's parameters). */
  initial?: JsonObject;
  /** Errors reported by the server for fields of this form. */
  serverErrors?: FieldErrors;
  submitLabel: string;
  busy?: boolean;
  onSubmit: (value: JsonObject) => void;
  /** Shown above the buttons (e.g. the server's error). */
  children?: ReactNode;
  emptyText?: string;
}

export function SchemaForm({
  schema,
  initial,
  serverErrors,
  submitLabel,
  busy,
  onSubmit,
  children,
  emptyText = 'No parameters.',
}: SchemaFormProps) {
  const fields = useMemo(() => fieldsOf(schema), [schema]);
  const [values, setValues] = useState<FormValues>(() => initialValues(fields, initial));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [touched, setTouched] = useState(false);
  useEffect(() => {
    setValues(initialValues(fields, initial));
    setErrors({});
    setTouched(false);
  }, [fields, initial]);
  useEffect(() => {
    if (serverErrors) setErrors((e) => ({ ...e, ...serverErrors }));
  }, [serverErrors]);

  const change = (name: string, v: string) => {
    const next = { ...values, [name]: v };
    setValues(next);
    if (touched) setErrors(collect(fields, next).errors);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setTouched(true);
    const r = collect(fields, values);
    setErrors(r.errors);
    const first = Object.keys(r.errors)[0];
    if (first) {
      (document.querySelector(`[name="${CSS.escape(first)}"]`) as HTMLElement | null)?.focus();
      return;
    }
    onSubmit(r.value);
  };
  return (
    <form onSubmit={submit} noValidate>
      {fields.length === 0 && <p className="muted">{emptyText}</p>}
      {fields.map((f) => {
        const hint = kindHint(f);
        const help = [f.description, hint && !f.description.includes(hint) ? `(${hint})` : '']
          .filter(Boolean)
          .join(' ');
        return (
          <Field
            key={f.name}
            label={
              <>
                {f.label} <code className="muted small">{f.name}</code>
                {f.secret && <span className="tag">secret</span>}
              </>
            }
            help={help || undefined}
            error={errors[f.name]}
            required={f.required}
          >
            {(ids) => (
              <Input f={f} value={values[f.name] ?? ''} onChange={(v) => change(f.name, v)} ids={ids} />
            )}
          </Field>
        );
      })}
      {children}
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Working…' : submitLabel}
        </button>
      </div>
    </form>
  );
}
