/** Events: what happened, and on an event's page, the rules it fired and what they ran. */
import { events } from '../api/resources.ts';
import { JsonView } from '../components/JsonView.tsx';
import { Empty, ErrorBox, Loading, Pager, Props, Time } from '../components/ui.tsx';
import { useLoad } from '../lib/hooks.ts';
import { Link, seg, setSearch, useLocation } from '../lib/router.tsx';

export function EventsPage() {
  const { search } = useLocation();
  const trigger = search.get('trigger') ?? '';
  const page = Number(search.get('page') ?? '1') || 1;
  const list = useLoad(
    () => events.list({ trigger: trigger || undefined, page, page_size: 50 }),
    [trigger, page],
  );
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Events</h1>
        <span className="sub">occurrences of triggers, newest first</span>
        <span className="grow" />
        <button type="button" className="small" onClick={list.reload}>
          Refresh
        </button>
      </div>
      {trigger && (
        <div className="toolbar">
          <span className="tag">
            trigger {trigger}{' '}
            <button
              type="button"
              className="link small"
              aria-label="Clear trigger filter"
              onClick={() => setSearch({ trigger: undefined, page: undefined })}
            >
              ✕
            </button>
          </span>
        </div>
      )}
      <ErrorBox error={list.error} title="Could not list events" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty
            title="No events yet"
            action={
              <Link className="button" to="/triggers">
                See the triggers
              </Link>
            }
          >
            Events arrive from webhooks, timers and sensors, or can be sent from a trigger's page.
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th className="num">Event</th>
                <th>Trigger</th>
                <th>When</th>
                <th>Source</th>
                <th>Payload</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.id}>
                  <td className="num">
                    <Link to={`/events/${e.id}`}>#{e.id}</Link>
                  </td>
                  <td>
                    <Link to={`/triggers/${seg(e.trigger_ref)}`}>{e.trigger_ref}</Link>
                  </td>
                  <td>
                    <Time iso={e.created_at} />
                  </td>
                  <td className="muted">{e.source}</td>
                  <td className="mono small ellipsis" style={{ maxWidth: 420 }}>
                    {JSON.stringify(e.payload)}
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

export function EventPage({ params }: { params: Record<string, string> }) {
  const id = Number(params.id);
  const ev = useLoad(() => events.get(id), [id]);
  const enf = useLoad(() => events.enforcements({ event: id, page_size: 200 }), [id]);
  if (ev.loading && !ev.data) return <Loading />;
  const e = ev.data;
  if (!e) return <ErrorBox error={ev.error} title={`Could not load event #${params.id}`} />;
  const fired = enf.data?.data ?? [];
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/events">Events</Link>
        </div>
        <h1>Event #{e.id}</h1>
      </div>
      <div className="grid two">
        <section className="card">
          <Props
            items={[
              [
                'Trigger',
                <Link key="t" to={`/triggers/${seg(e.trigger_ref)}`}>
                  {e.trigger_ref}
                </Link>,
              ],
              ['When', <Time key="w" iso={e.created_at} />],
              ['Source', e.source],
              ['Sent by', e.created_by],
            ]}
          />
        </section>
        <section className="card">
          <JsonView value={e.payload} label="Payload" />
        </section>
      </div>
      <section>
        <h2>Rules it fired</h2>
        <ErrorBox error={enf.error} title="Could not list the enforcements" />
        {enf.data && fired.length === 0 && (
          <p className="muted">
            No rule fired: no enabled rule of <code>{e.trigger_ref}</code> matched this event.
          </p>
        )}
        {fired.length > 0 && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Rule</th>
                  <th>Status</th>
                  <th>Execution</th>
                  <th>Parameters</th>
                </tr>
              </thead>
              <tbody>
                {fired.map((x) => (
                  <tr key={x.id}>
                    <td>
                      <Link to={`/rules/${seg(x.rule_ref)}`}>{x.rule_ref}</Link>
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
                    <td className="mono small ellipsis" style={{ maxWidth: 380 }}>
                      {x.resolved_params ? JSON.stringify(x.resolved_params) : '—'}
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
