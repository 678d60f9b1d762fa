/**
 * Rules: the list with enabled switches, a rule's page with its recent enforcements, the editor
 * (trigger, criteria, action and parameter templates) and the dry-run tester.
 */
import { type FormEvent, useEffect, useMemo, useState } from 'react';
import { actions, events, rules, triggers } from '../api/resources.ts';
import type { JsonObject, Rule, RuleTestResult, RuleWrite } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import { JsonView } from '../components/JsonView.tsx';
import { ConfirmButton, Empty, ErrorBox, Field, Loading, Props, Tags, Time } from '../components/ui.tsx';
import { pretty } from '../lib/format.ts';
import { useDebounced, useLoad } from '../lib/hooks.ts';
import { Link, navigate, seg } from '../lib/router.tsx';
import { fieldsOf } from '../lib/schema.ts';

function EnabledSwitch({ rule, onChange }: { rule: Rule; onChange: (r: Rule) => void }) {
  const { can } = useSession();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const toggle = async () => {
    setBusy(true);
    setError(null);
    try {
      onChange(await rules.setEnabled(rule.ref, !rule.enabled));
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span className="row">
      <label className="row small">
        <input
          type="checkbox"
          role="switch"
          aria-checked={rule.enabled}
          checked={rule.enabled}
          disabled={busy || !can('rules', 'update')}
          onChange={toggle}
          aria-label={`${rule.ref} enabled`}
        />
        {rule.enabled ? 'on' : 'off'}
      </label>
      {error && (
        <span className="small" style={{ color: 'var(--danger)' }} role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

export function RulesPage() {
  const { can } = useSession();
  const [text, setText] = useState('');
  const q = useDebounced(text.trim(), 250);
  const list = useLoad(() => rules.list({ page_size: 1000, search: q || undefined }), [q]);
  const rows = list.data?.data ?? [];
  const replace = (r: Rule) =>
    list.set((prev) => (prev ? { ...prev, data: prev.data.map((x) => (x.ref === r.ref ? r : x)) } : prev));
  return (
    <div>
      <div className="page-head">
        <h1>Rules</h1>
        <span className="sub">when an event matches, run an action</span>
        <span className="grow" />
        {can('rules', 'create') && (
          <Link className="button primary" to="/rules/new">
            New rule
          </Link>
        )}
      </div>
      <div className="toolbar">
        <input
          type="search"
          aria-label="Search rules"
          placeholder="Search rules"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
      </div>
      <ErrorBox error={list.error} title="Could not list rules" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty
            title={q ? 'No rule matches' : 'No rules yet'}
            action={
              !q && can('rules', 'create') ? (
                <Link className="button primary" to="/rules/new">
                  Create a rule
                </Link>
              ) : undefined
            }
          >
            {q
              ? 'Try another word.'
              : 'A rule links a trigger (a webhook, a timer, a sensor) to an action: when an event of the trigger matches its criteria, the action runs.'}
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Rule</th>
                <th>When</th>
                <th>Then</th>
                <th>Enabled</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.ref}>
                  <td>
                    <Link to={`/rules/${seg(r.ref)}`}>{r.ref}</Link>
                    <div className="muted small">{r.description || r.label}</div>
                  </td>
                  <td>
                    <Link to={`/triggers/${seg(r.trigger_ref)}`}>{r.trigger_ref}</Link>
                    {Object.keys(r.criteria).length > 0 && (
                      <span className="muted small"> · {Object.keys(r.criteria).length} criteria</span>
                    )}
                  </td>
                  <td>
                    <Link to={`/actions/${seg(r.action_ref)}`}>{r.action_ref}</Link>
                  </td>
                  <td>
                    <EnabledSwitch rule={r} onChange={replace} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

function TestResult({ r }: { r: RuleTestResult }) {
  return (
    <div className="stack" aria-live="polite">
      <div className={`alert ${r.matched ? 'ok' : 'warn'}`} role="status">
        <strong>{r.matched ? 'Matched' : 'No match'}</strong>
        {r.matched &&
          (r.would_execute ? ' — the action would run.' : ' — but the action would not run (see below).')}
      </div>
      {r.errors.length > 0 && (
        <div className="alert error">
          <strong>Errors</strong>
          <ul>
            {r.errors.map((e, i) => (
              // biome-ignore lint/suspicious/noArrayIndexKey: positional
              <li key={i}>
                <code>{e.stage}</code>: {e.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {r.criteria.length > 0 && <JsonView value={r.criteria} label="Criteria, one by one" />}
      {r.parameters && <JsonView value={r.parameters} label="Parameters the action would get" />}
      {r.secret_parameters.length > 0 && (
        <p className="muted small">Secret parameters (not shown): {r.secret_parameters.join(', ')}</p>
      )}
      {r.notes.length > 0 && (
        <ul className="muted small">
          {r.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Try a rule (stored by ref, or the unsaved one being edited) on a payload or a stored event. */
export function RuleTester({ rule, triggerRef }: { rule: string | JsonObject; triggerRef?: string }) {
  const [source, setSource] = useState<'payload' | 'event'>('payload');
  const [payload, setPayload] = useState('{\n  \n}');
  const [eventId, setEventId] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<RuleTestResult | null>(null);
  const recent = useLoad(
    () => (triggerRef ? events.list({ trigger: triggerRef, page_size: 5 }) : Promise.resolve(undefined)),
    [triggerRef],
  );
  const run = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    const body: JsonObject = { rule };
    if (source === 'payload') {
      try {
        body.payload = JSON.parse(payload);
      } catch (err) {
        setError(new Error(`The payload is not valid JSON: ${(err as Error).message}`));
        return;
      }
    } else {
      const id = Number(eventId);
      if (!Number.isSafeInteger(id) || id < 1) {
        setError(new Error('Give the id of a stored event'));
        return;
      }
      body.event_id = id;
    }
    setBusy(true);
    try {
      setResult(await rules.test(body));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={run} aria-label="Rule tester">
      <div className="row" role="radiogroup" aria-label="What to test with" style={{ marginBottom: 10 }}>
        <label className="row">
          <input type="radio" checked={source === 'payload'} onChange={() => setSource('payload')} /> a
          payload
        </label>
        <label className="row">
          <input type="radio" checked={source === 'event'} onChange={() => setSource('event')} /> a stored
          event
        </label>
      </div>
      {source === 'payload' ? (
        <Field
          label="Event payload (JSON)"
          help="As the trigger would deliver it; criteria read it as trigger.x or payload.x."
        >
          {(ids) => (
            <textarea
              id={ids.id}
              aria-describedby={ids.describedBy}
              rows={8}
              value={payload}
              onChange={(e) => setPayload(e.target.value)}
              spellCheck={false}
            />
          )}
        </Field>
      ) : (
        <Field
          label="Event id"
          help={
            recent.data?.data.length
              ? `Recent events of ${triggerRef}: ${recent.data.data.map((e) => `#${e.id}`).join(', ')}`
              : undefined
          }
        >
          {(ids) => (
            <input
              id={ids.id}
              aria-describedby={ids.describedBy}
              inputMode="numeric"
              value={eventId}
              onChange={(e) => setEventId(e.target.value)}
            />
          )}
        </Field>
      )}
      <ErrorBox error={error} title="The test could not run" />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Testing…' : 'Test'}
      </button>
      {result && (
        <div style={{ marginTop: 14 }}>
          <TestResult r={result} />
        </div>
      )}
    </form>
  );
}

export function RulePage({ params }: { params: Record<string, string> }) {
  const ref = params.ref!;
  const { can } = useSession();
  const rule = useLoad(() => rules.get(ref), [ref]);
  const enf = useLoad(() => events.enforcements({ rule: ref, page_size: 20 }), [ref]);
  if (rule.loading && !rule.data) return <Loading />;
  const r = rule.data;
  if (!r) return <ErrorBox error={rule.error} title={`Could not load rule ${ref}`} />;
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/rules">Rules</Link> › <Link to={`/packs/${seg(r.pack_ref)}`}>{r.pack_ref}</Link>
        </div>
        <div className="page-head">
          <h1 className="mono">{r.ref}</h1>
          <EnabledSwitch rule={r} onChange={(x) => rule.set(() => x)} />
          <Tags tags={r.tags} />
          <span className="grow" />
          {can('rules', 'update') && (
            <Link className="button" to={`/rules/${seg(r.ref)}/edit`}>
              Edit
            </Link>
          )}
          {can('rules', 'delete') && (
            <ConfirmButton
              label="Delete"
              question={
                <>
                  Delete the rule <code>{r.ref}</code>? Events of <code>{r.trigger_ref}</code> will no longer
                  run <code>{r.action_ref}</code>.
                </>
              }
              onConfirm={async () => {
                await rules.remove(r.ref);
                navigate('/rules');
              }}
            />
          )}
        </div>
        {(r.description || r.label) && <p className="muted">{r.description || r.label}</p>}
      </div>
      <div className="grid two">
        <section className="card">
          <h2>When</h2>
          <Props
            items={[
              [
                'Trigger',
                <Link key="t" to={`/triggers/${seg(r.trigger_ref)}`}>
                  {r.trigger_ref}
                </Link>,
              ],
              ['Owner', r.owner_login],
              ['Updated', <Time key="u" iso={r.updated_at} />],
            ]}
          />
          <div style={{ marginTop: 10 }}>
            <JsonView value={r.criteria} label="Criteria" />
          </div>
          {Object.keys(r.trigger_params).length > 0 && (
            <div style={{ marginTop: 10 }}>
              <JsonView value={r.trigger_params} label="Trigger parameters" />
            </div>
          )}
        </section>
        <section className="card">
          <h2>Then</h2>
          <Props
            items={[
              [
                'Action',
                <Link key="a" to={`/actions/${seg(r.action_ref)}`}>
                  {r.action_ref}
                </Link>,
              ],
            ]}
          />
          <div style={{ marginTop: 10 }}>
            <JsonView value={r.action_params} label="Parameters (templates)" />
          </div>
        </section>
      </div>
      <section className="card">
        <h2>Try it</h2>
        <p className="muted small">A dry run: nothing is stored and nothing runs.</p>
        <RuleTester rule={r.ref} triggerRef={r.trigger_ref} />
      </section>
      <section>
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2>Recent enforcements</h2>
          <Link to={`/executions?rule=${seg(r.ref)}`}>Executions of this rule →</Link>
        </div>
        <ErrorBox error={enf.error} title="Could not list enforcements" />
        {enf.data && enf.data.data.length === 0 && <p className="muted">This rule has not fired yet.</p>}
        {enf.data && enf.data.data.length > 0 && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>When</th>
                  <th>Event</th>
                  <th>Status</th>
                  <th>Execution</th>
                </tr>
              </thead>
              <tbody>
                {enf.data.data.map((x) => (
                  <tr key={x.id}>
                    <td>
                      <Time iso={x.created_at} />
                    </td>
                    <td>
                      <Link to={`/events/${x.event_id}`}>#{x.event_id}</Link>
                    </td>
                    <td>
                      {x.status}
                      {x.failure_reason && (
                        <div className="small" style={{ color: 'var(--danger)' }}>
                          {x.failure_reason}
                        </div>
                      )}
                    </td>
                    <td>
                      {x.execution_id ? (
                        <Link to={`/executions/${x.execution_id}`}>#{x.execution_id}</Link>
                      ) : (
                        '—'
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}

const parseJson = (label: string, text: string): { value?: JsonObject; error?: string } => {
  if (!text.trim()) return { value: {} };
  try {
    const v = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      return { error: `${label} must be a JSON object` };
    return { value: v };
  } catch (e) {
    return { error: `Not valid JSON: ${(e as Error).message}` };
  }
};

export function RuleEditPage({ params }: { params: Record<string, string> }) {
  const editing = params.ref;
  const existing = useLoad(() => (editing ? rules.get(editing) : Promise.resolve(undefined)), [editing]);
  const trigs = useLoad(() => triggers.list({ page_size: 1000 }), []);
  const acts = useLoad(() => actions.list({ page_size: 1000 }), []);
  const [ref, setRef] = useState('');
  const [label, setLabel] = useState('');
  const [description, setDescription] = useState('');
  const [trigger, setTrigger] = useState('');
  const [action, setAction] = useState('');
  const [criteria, setCriteria] = useState('{}');
  const [params_, setParams] = useState('{}');
  const [triggerParams, setTriggerParams] = useState('{}');
  const [enabled, setEnabled] = useState(true);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [saveError, setSaveError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    const r = existing.data;
    if (!r) return;
    setRef(r.ref);
    setLabel(r.label);
    setDescription(r.description);
    setTrigger(r.trigger_ref);
    setAction(r.action_ref);
    setCriteria(pretty(r.criteria));
    setParams(pretty(r.action_params));
    setTriggerParams(pretty(r.trigger_params));
    setEnabled(r.enabled);
  }, [existing.data]);
  const chosenAction = useMemo(() => acts.data?.data.find((a) => a.ref === action), [acts.data, action]);
  const chosenTrigger = useMemo(() => trigs.data?.data.find((t) => t.ref === trigger), [trigs.data, trigger]);

  const build = (): RuleWrite | null => {
    const e: Record<string, string> = {};
    if (!editing && !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_.-]+$/.test(ref))
      e.ref = 'Give pack.name (the pack must exist)';
    if (!trigger) e.trigger = 'Choose a trigger';
    if (!action) e.action = 'Choose an action';
    const c = parseJson('Criteria', criteria);
    const p = parseJson('Parameters', params_);
    const tp = parseJson('Trigger parameters', triggerParams);
    if (c.error) e.criteria = c.error;
    if (p.error) e.params = p.error;
    if (tp.error) e.triggerParams = tp.error;
    setErrors(e);
    if (Object.keys(e).length) return null;
    const body: RuleWrite = {
      label: label || undefined,
      description,
      trigger_ref: trigger,
      trigger_params: tp.value,
      criteria: c.value,
      action_ref: action,
      action_params: p.value,
      enabled,
    };
    if (!editing) body.ref = ref;
    return body;
  };
  const save = async (ev: FormEvent) => {
    ev.preventDefault();
    const body = build();
    if (!body) return;
    setBusy(true);
    setSaveError(null);
    try {
      const r = editing ? await rules.update(editing, body) : await rules.create(body);
      navigate(`/rules/${seg(r.ref)}`);
    } catch (e) {
      setSaveError(e);
    } finally {
      setBusy(false);
    }
  };
  const inline = useMemo((): JsonObject | null => {
    const c = parseJson('', criteria);
    const p = parseJson('', params_);
    if (!trigger || !action || c.error || p.error) return null;
    return {
      trigger_ref: trigger,
      criteria: c.value,
      action_ref: action,
      action_params: p.value,
      ...(ref ? { ref } : {}),
    };
  }, [trigger, action, criteria, params_, ref]);

  if (editing && existing.loading && !existing.data) return <Loading />;
  if (editing && !existing.data)
    return <ErrorBox error={existing.error} title={`Could not load rule ${editing}`} />;
  const actionFields = fieldsOf(chosenAction?.param_schema);
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/rules">Rules</Link> ›{' '}
          {editing ? <Link to={`/rules/${seg(editing)}`}>{editing}</Link> : 'new'}
        </div>
        <h1>{editing ? `Edit ${editing}` : 'New rule'}</h1>
      </div>
      <div className="grid two" style={{ alignItems: 'start' }}>
        <form className="card" onSubmit={save} noValidate>
          {!editing && (
            <Field label="Ref" required error={errors.ref} help="pack.name — the rule belongs to that pack">
              {(ids) => (
                <input
                  id={ids.id}
                  aria-describedby={ids.describedBy}
                  aria-invalid={ids.invalid}
                  value={ref}
                  onChange={(e) => setRef(e.target.value)}
                  placeholder="examples.on_push"
                />
              )}
            </Field>
          )}
          <Field label="Label">
            {(ids) => <input id={ids.id} value={label} onChange={(e) => setLabel(e.target.value)} />}
          </Field>
          <Field label="Description">
            {(ids) => (
              <input id={ids.id} value={description} onChange={(e) => setDescription(e.target.value)} />
            )}
          </Field>
          <Field label="Trigger" required error={errors.trigger} help={chosenTrigger?.description}>
            {(ids) => (
              <select
                id={ids.id}
                aria-describedby={ids.describedBy}
                aria-invalid={ids.invalid}
                value={trigger}
                onChange={(e) => setTrigger(e.target.value)}
              >
                <option value="">Choose a trigger…</option>
                {(trigs.data?.data ?? []).map((t) => (
                  <option key={t.ref} value={t.ref}>
                    {t.ref}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field
            label="Trigger parameters (JSON)"
            error={errors.triggerParams}
            help="For triggers that take parameters, e.g. a timer's interval."
          >
            {(ids) => (
              <textarea
                id={ids.id}
                aria-describedby={ids.describedBy}
                aria-invalid={ids.invalid}
                rows={3}
                value={triggerParams}
                onChange={(e) => setTriggerParams(e.target.value)}
                spellCheck={false}
              />
            )}
          </Field>
          <Field
            label="Criteria (JSON)"
            error={errors.criteria}
            help={
              <>
                All must hold. Keys are paths into the event, e.g.{' '}
                <code>{'{"trigger.severity": {"type": "equals", "pattern": "high"}}'}</code>;{' '}
                <code>expression</code> takes a <code>{'{{ … }}'}</code> template.
              </>
            }
          >
            {(ids) => (
              <textarea
                id={ids.id}
                aria-describedby={ids.describedBy}
                aria-invalid={ids.invalid}
                rows={6}
                value={criteria}
                onChange={(e) => setCriteria(e.target.value)}
                spellCheck={false}
              />
            )}
          </Field>
          <Field label="Action" required error={errors.action} help={chosenAction?.description}>
            {(ids) => (
              <select
                id={ids.id}
                aria-describedby={ids.describedBy}
                aria-invalid={ids.invalid}
                value={action}
                onChange={(e) => setAction(e.target.value)}
              >
                <option value="">Choose an action…</option>
                {(acts.data?.data ?? []).map((a) => (
                  <option key={a.ref} value={a.ref}>
                    {a.ref}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field
            label="Action parameters (JSON, values may be templates)"
            error={errors.params}
            help={
              actionFields.length ? (
                <>
                  {chosenAction?.ref} takes:{' '}
                  {actionFields.map((f, i) => (
                    <span key={f.name}>
                      {i > 0 && ', '}
                      <code>{f.name}</code>
                      {f.required ? '*' : ''}
                    </span>
                  ))}
                  . Templates read the event: <code>{'"{{ trigger.body.x }}"'}</code>.
                </>
              ) : (
                'Templates read the event: "{{ trigger.x }}".'
              )
            }
          >
            {(ids) => (
              <textarea
                id={ids.id}
                aria-describedby={ids.describedBy}
                aria-invalid={ids.invalid}
                rows={6}
                value={params_}
                onChange={(e) => setParams(e.target.value)}
                spellCheck={false}
              />
            )}
          </Field>
          <label className="row" style={{ marginBottom: 14 }}>
            <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
          </label>
          <ErrorBox error={saveError} title="Not saved" />
          <div className="row">
            <button type="submit" className="primary" disabled={busy}>
              {busy ? 'Saving…' : editing ? 'Save' : 'Create rule'}
            </button>
            <Link className="button" to={editing ? `/rules/${seg(editing)}` : '/rules'}>
              Cancel
            </Link>
          </div>
        </form>
        <section className="card">
          <h2>Try it before saving</h2>
          {inline ? (
            <RuleTester rule={inline} triggerRef={trigger} />
          ) : (
            <p className="muted">
              Choose a trigger and an action (and fix the JSON) to test the rule as it stands.
            </p>
          )}
        </section>
      </div>
    </div>
  );
}
