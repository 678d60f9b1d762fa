/** Inquiries: questions workflows ask people; answer one with a form generated from its schema. */
import { useMemo, useState } from 'react';
import { inquiries } from '../api/resources.ts';
import type { Inquiry, JsonObject } from '../api/types.ts';
import { JsonView } from '../components/JsonView.tsx';
import { SchemaForm } from '../components/SchemaForm.tsx';
import { Empty, ErrorBox, Loading, Pager, Props, StatusBadge, Time } from '../components/ui.tsx';
import { useLoad } from '../lib/hooks.ts';
import { Link, setSearch, useLocation } from '../lib/router.tsx';
import { type FieldErrors, fieldsOf, problemsToErrors } from '../lib/schema.ts';

const who = (i: Inquiry): string =>
  [...i.assigned_users, ...i.assigned_roles.map((r) => `role ${r}`)].join(', ') || 'anyone who may answer';

export function InquiriesPage() {
  const { search } = useLocation();
  const status = search.get('status') ?? 'pending';
  const page = Number(search.get('page') ?? '1') || 1;
  const list = useLoad(
    () => inquiries.list({ status: status === 'all' ? undefined : status, page, page_size: 50 }),
    [status, page],
  );
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Inquiries</h1>
        <span className="sub">questions workflows are waiting on</span>
        <span className="grow" />
        <button type="button" className="small" onClick={list.reload}>
          Refresh
        </button>
      </div>
      <div className="toolbar">
        <label className="row">
          <span className="muted small">Status</span>
          <select
            value={status}
            onChange={(e) =>
              setSearch({
                status: e.target.value === 'pending' ? undefined : e.target.value,
                page: undefined,
              })
            }
          >
            <option value="pending">pending</option>
            <option value="responded">responded</option>
            <option value="timeout">timed out</option>
            <option value="canceled">canceled</option>
            <option value="all">all</option>
          </select>
        </label>
      </div>
      <ErrorBox error={list.error} title="Could not list inquiries" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty title={status === 'pending' ? 'Nothing is waiting for an answer' : 'No inquiries'}>
            A workflow asks people with a <code>core.ask</code> task; its question appears here until someone
            answers.
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th className="num">ID</th>
                <th>Question</th>
                <th>Status</th>
                <th>For</th>
                <th>Asked</th>
                <th>Expires</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((i) => (
                <tr key={i.id}>
                  <td className="num">
                    <Link to={`/inquiries/${i.id}`}>#{i.id}</Link>
                  </td>
                  <td>{i.prompt || <span className="muted">(no prompt)</span>}</td>
                  <td>
                    <StatusBadge status={i.status} />
                  </td>
                  <td className="small">{who(i)}</td>
                  <td>
                    <Time iso={i.created_at} />
                  </td>
                  <td>
                    <Time iso={i.timeout_at} relative />
                  </td>
                  <td className="num">
                    {i.status === 'pending' && i.can_respond !== false && (
                      <Link className="button small primary" to={`/inquiries/${i.id}`}>
                        Answer…
                      </Link>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager pagination={list.data?.pagination} onPage={(p) => setSearch({ page: String(p) })} />
    </div>
  );
}

export function InquiryPage({ params }: { params: Record<string, string> }) {
  const id = Number(params.id);
  const inq = useLoad(() => inquiries.get(id), [id]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors | undefined>();
  const fields = useMemo(() => fieldsOf(inq.data?.response_schema), [inq.data]);
  if (inq.loading && !inq.data) return <Loading />;
  const i = inq.data;
  if (!i) return <ErrorBox error={inq.error} title={`Could not load inquiry #${params.id}`} />;
  const answer = async (response: JsonObject) => {
    setBusy(true);
    setError(null);
    setServerErrors(undefined);
    try {
      const r = await inquiries.respond(i.id, response);
      inq.set(() => r);
      window.dispatchEvent(new Event('attune:inquiries-changed'));
    } catch (e) {
      setError(e);
      setServerErrors(
        problemsToErrors(fields, (e as { problems?: { path: string; message: string }[] }).problems ?? [])
          .errors,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/inquiries">Inquiries</Link>
        </div>
        <div className="page-head">
          <h1>Inquiry #{i.id}</h1>
          <StatusBadge status={i.status} />
        </div>
        <p style={{ fontSize: 16 }}>{i.prompt}</p>
      </div>
      <div className="grid two" style={{ alignItems: 'start' }}>
        <section className="card" aria-labelledby="answer-title">
          <h2 id="answer-title">{i.status === 'pending' ? 'Answer' : 'Answer given'}</h2>
          {i.status === 'pending' ? (
            i.can_respond === false ? (
              <p className="muted">You may not answer this inquiry: it is for {who(i)}.</p>
            ) : (
              <SchemaForm
                schema={i.response_schema}
                serverErrors={serverErrors}
                submitLabel="Send answer"
                busy={busy}
                onSubmit={answer}
                emptyText="Any answer is accepted; send an empty one to go on."
              >
                <ErrorBox error={error} title="The answer was refused" />
              </SchemaForm>
            )
          ) : (
            <>
              {i.status === 'responded' && (
                <div className="alert ok" role="status">
                  Answered by {i.responded_by ?? 'someone'} <Time iso={i.responded_at} relative />.
                  {i.workflow_execution_id && (
                    <>
                      {' '}
                      <Link to={`/executions/${i.workflow_execution_id}`}>Follow the workflow →</Link>
                    </>
                  )}
                </div>
              )}
              <JsonView value={i.response} label="Response" />
            </>
          )}
        </section>
        <section className="card">
          <Props
            items={[
              ['For', who(i)],
              ['Asked', <Time key="a" iso={i.created_at} />],
              ['Expires', <Time key="e" iso={i.timeout_at} />],
              [
                'Workflow',
                i.workflow_execution_id ? (
                  <Link key="w" to={`/executions/${i.workflow_execution_id}`}>
                    #{i.workflow_execution_id}
                    {i.task_name ? ` (task ${i.task_name})` : ''}
                  </Link>
                ) : null,
              ],
              [
                'Asking execution',
                <Link key="x" to={`/executions/${i.execution_id}`}>
                  #{i.execution_id}
                </Link>,
              ],
            ]}
          />
          <div style={{ marginTop: 10 }}>
            <JsonView value={i.response_schema} label="Response schema" />
          </div>
        </section>
      </div>
    </div>
  );
}
