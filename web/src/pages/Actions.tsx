/** Actions by pack, and an action's page: what it takes, and a form generated from that to run it. */
import { useMemo, useState } from 'react';
import { actions, executions } from '../api/resources.ts';
import type { Action, JsonObject } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import { JsonView } from '../components/JsonView.tsx';
import { SchemaForm } from '../components/SchemaForm.tsx';
import { Empty, ErrorBox, Loading, Props, Tags } from '../components/ui.tsx';
import { useDebounced, useLoad } from '../lib/hooks.ts';
import { Link, navigate, seg, setSearch, useLocation } from '../lib/router.tsx';
import { type FieldErrors, fieldsOf, problemsToErrors } from '../lib/schema.ts';
import { ExecutionTable } from './Executions.tsx';

export function ActionsPage() {
  const { search } = useLocation();
  const pack = search.get('pack') ?? '';
  const [text, setText] = useState(search.get('q') ?? '');
  const q = useDebounced(text.trim(), 250);
  const list = useLoad(
    () => actions.list({ page_size: 1000, search: q || undefined, pack: pack || undefined }),
    [q, pack],
  );
  const byPack = useMemo(() => {
    const m = new Map<string, Action[]>();
    for (const a of list.data?.data ?? []) m.set(a.pack_ref, [...(m.get(a.pack_ref) ?? []), a]);
    return [...m.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [list.data]);
  return (
    <div>
      <div className="page-head">
        <h1>Actions</h1>
        <span className="sub">the units of work: run one from its page</span>
      </div>
      <div className="toolbar">
        <input
          type="search"
          aria-label="Search actions"
          placeholder="Search by name, label or description"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        {pack && (
          <span className="tag">
            pack {pack}{' '}
            <button
              type="button"
              className="link small"
              aria-label="Show every pack"
              onClick={() => setSearch({ pack: undefined })}
            >
              ✕
            </button>
          </span>
        )}
      </div>
      <ErrorBox error={list.error} title="Could not list actions" />
      {list.loading && !list.data && <Loading />}
      {list.data && byPack.length === 0 && (
        <div className="card">
          {q || pack ? (
            <Empty title="No action matches">Try another word, or clear the pack filter.</Empty>
          ) : (
            <Empty
              title="No actions yet"
              action={
                <Link className="button primary" to="/packs">
                  Install a pack
                </Link>
              }
            >
              Actions come with packs. Install one, or create actions through the API.
            </Empty>
          )}
        </div>
      )}
      <div className="stack">
        {byPack.map(([p, items]) => (
          <section key={p} aria-labelledby={`pack-${p}`}>
            <h2 id={`pack-${p}`}>
              <Link to={`/packs/${seg(p)}`}>{p}</Link> <span className="muted small">{items.length}</span>
            </h2>
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th>Action</th>
                    <th>Description</th>
                    <th>Runner</th>
                    <th />
                  </tr>
                </thead>
                <tbody>
                  {items.map((a) => (
                    <tr key={a.ref}>
                      <td className="nowrap">
                        <Link to={`/actions/${seg(a.ref)}`}>{a.ref}</Link>
                        {!a.enabled && <span className="tag">disabled</span>}
                      </td>
                      <td className="muted">{a.description || a.label}</td>
                      <td>
                        <code>{a.runner}</code>
                      </td>
                      <td className="num">
                        <Link className="button small" to={`/actions/${seg(a.ref)}#run`}>
                          Run…
                        </Link>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
        ))}
      </div>
    </div>
  );
}

function ParamTable({ schema }: { schema: unknown }) {
  const fields = fieldsOf(schema);
  if (!fields.length) return <p className="muted">This action takes no parameters.</p>;
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th>Parameter</th>
            <th>Type</th>
            <th>Default</th>
            <th>Description</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((f) => (
            <tr key={f.name}>
              <td className="nowrap">
                <code>{f.name}</code>
                {f.required && <span className="tag">required</span>}
                {f.secret && <span className="tag">secret</span>}
              </td>
              <td className="small">
                {f.kind === 'enum'
                  ? `one of ${f.options.map((o) => JSON.stringify(o)).join(', ')}`
                  : String(f.schema.type ?? 'any')}
              </td>
              <td className="small mono">
                {f.hasDefault ? (f.secret ? '••••' : JSON.stringify(f.defaultValue)) : ''}
              </td>
              <td className="small muted">{f.description}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The run form of an action; on success, opens the new execution. */
export function RunForm({ action, initial }: { action: Action; initial?: JsonObject }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors | undefined>();
  const fields = useMemo(() => fieldsOf(action.param_schema), [action.param_schema]);
  const submit = async (parameters: JsonObject) => {
    setBusy(true);
    setError(null);
    setServerErrors(undefined);
    try {
      const e = await executions.create(action.ref, parameters);
      navigate(`/executions/${e.id}`);
    } catch (e) {
      setError(e);
      const p = problemsToErrors(
        fields,
        (e as { problems?: { path: string; message: string }[] }).problems ?? [],
      );
      setServerErrors(p.errors);
    } finally {
      setBusy(false);
    }
  };
  return (
    <SchemaForm
      schema={action.param_schema}
      initial={initial}
      serverErrors={serverErrors}
      submitLabel={`Run ${action.ref}`}
      busy={busy}
      onSubmit={submit}
      emptyText="This action takes no parameters."
    >
      <ErrorBox error={error} title="The run was refused" />
    </SchemaForm>
  );
}

export function ActionPage({ params }: { params: Record<string, string> }) {
  const ref = params.ref!;
  const { can } = useSession();
  const action = useLoad(() => actions.get(ref), [ref]);
  const recent = useLoad(() => executions.list({ action: ref, page_size: 10 }), [ref]);
  if (action.loading && !action.data) return <Loading />;
  const a = action.data;
  if (!a) return <ErrorBox error={action.error} title={`Could not load action ${ref}`} />;
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/actions">Actions</Link> ›{' '}
          <Link to={`/actions?pack=${seg(a.pack_ref)}`}>{a.pack_ref}</Link>
        </div>
        <div className="page-head">
          <h1 className="mono">{a.ref}</h1>
          {!a.enabled && <span className="tag">disabled</span>}
          <Tags tags={a.tags} />
        </div>
        {(a.description || a.label) && <p className="muted">{a.description || a.label}</p>}
      </div>
      <div className="grid two">
        <section className="card" id="run" aria-labelledby="run-title">
          <h2 id="run-title">Run</h2>
          {!a.enabled ? (
            <p className="muted">This action is disabled: enable it before running it.</p>
          ) : can('executions', 'execute') ? (
            <RunForm action={a} />
          ) : (
            <p className="muted">
              You may look at this action, but not run it (you lack executions:execute).
            </p>
          )}
        </section>
        <section className="card">
          <h2>Details</h2>
          <Props
            items={[
              ['Runner', <code key="r">{a.runner}</code>],
              ['Entry point', a.entry_point ? <code key="e">{a.entry_point}</code> : null],
              ['Timeout', a.timeout_seconds ? `${a.timeout_seconds} s` : 'platform default'],
              ['Retry', a.retry_policy ? JSON.stringify(a.retry_policy) : 'none'],
              ['Concurrency', a.concurrency_policy ? JSON.stringify(a.concurrency_policy) : 'unlimited'],
              [
                'Pack',
                <Link key="p" to={`/packs/${seg(a.pack_ref)}`}>
                  {a.pack_ref}
                </Link>,
              ],
            ]}
          />
          {a.runner === 'workflow' && (
            <p>
              <Link to={`/workflows/${seg(a.ref)}`}>Open the workflow →</Link>
            </p>
          )}
        </section>
      </div>
      <section className="card">
        <h2>Parameters</h2>
        <ParamTable schema={a.param_schema} />
      </section>
      {a.out_schema && (
        <section className="card">
          <JsonView value={a.out_schema} label="Output schema" />
        </section>
      )}
      <section>
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2>Recent executions</h2>
          <Link to={`/executions?action=${seg(a.ref)}`}>All executions of this action →</Link>
        </div>
        <ErrorBox error={recent.error} title="Could not list executions" />
        <ExecutionTable rows={recent.data?.data ?? []} empty={<p className="muted">It has not run yet.</p>} />
      </section>
    </div>
  );
}
