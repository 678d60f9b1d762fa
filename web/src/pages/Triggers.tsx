/** Triggers: the event types; a trigger's page shows its payload, the rules using it, its events. */
import { useState } from 'react';
import { events, rules, triggers } from '../api/resources.ts';
import { useSession } from '../app/session.tsx';
import { JsonView } from '../components/JsonView.tsx';
import { SchemaForm } from '../components/SchemaForm.tsx';
import { Empty, ErrorBox, Loading, Props, Tags, Time } from '../components/ui.tsx';
import { useLoad } from '../lib/hooks.ts';
import { Link, navigate, seg } from '../lib/router.tsx';

export function TriggersPage() {
  const list = useLoad(() => triggers.list({ page_size: 1000 }), []);
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Triggers</h1>
        <span className="sub">the kinds of events rules react to</span>
      </div>
      <ErrorBox error={list.error} title="Could not list triggers" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty
            title="No triggers"
            action={
              <Link className="button primary" to="/packs">
                Install a pack
              </Link>
            }
          >
            Triggers come with packs (the core pack has timers and webhooks).
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Trigger</th>
                <th>Description</th>
                <th>Tags</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((t) => (
                <tr key={t.ref}>
                  <td className="nowrap">
                    <Link to={`/triggers/${seg(t.ref)}`}>{t.ref}</Link>
                    {!t.enabled && <span className="tag">disabled</span>}
                  </td>
                  <td className="muted">{t.description || t.label}</td>
                  <td>
                    <Tags tags={t.tags} />
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

export function TriggerPage({ params }: { params: Record<string, string> }) {
  const ref = params.ref!;
  const { can } = useSession();
  const trig = useLoad(() => triggers.get(ref), [ref]);
  const using = useLoad(() => rules.list({ trigger: ref, page_size: 100 }), [ref]);
  const recent = useLoad(() => events.list({ trigger: ref, page_size: 10 }), [ref]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  if (trig.loading && !trig.data) return <Loading />;
  const t = trig.data;
  if (!t) return <ErrorBox error={trig.error} title={`Could not load trigger ${ref}`} />;
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/triggers">Triggers</Link> › <Link to={`/packs/${seg(t.pack_ref)}`}>{t.pack_ref}</Link>
        </div>
        <div className="page-head">
          <h1 className="mono">{t.ref}</h1>
          <Tags tags={t.tags} />
        </div>
        {(t.description || t.label) && <p className="muted">{t.description || t.label}</p>}
      </div>
      <div className="grid two">
        <section className="card">
          {t.payload_schema ? (
            <JsonView value={t.payload_schema} label="Payload schema" />
          ) : (
            <p className="muted">Any payload.</p>
          )}
          {t.param_schema && (
            <div style={{ marginTop: 10 }}>
              <JsonView value={t.param_schema} label="Parameters (set by rules)" />
            </div>
          )}
        </section>
        {can('events', 'create') && (
          <section className="card">
            <h2>Send a test event</h2>
            <p className="muted small">Creates a real event: enabled rules of this trigger react to it.</p>
            <SchemaForm
              schema={t.payload_schema ?? {}}
              submitLabel="Send event"
              busy={busy}
              emptyText="This trigger's payload has no declared fields; an empty payload is sent."
              onSubmit={async (payload) => {
                setBusy(true);
                setError(null);
                try {
                  const ev = await events.create(t.ref, payload);
                  navigate(`/events/${ev.id}`);
                } catch (e) {
                  setError(e);
                } finally {
                  setBusy(false);
                }
              }}
            >
              <ErrorBox error={error} title="The event was refused" />
            </SchemaForm>
          </section>
        )}
      </div>
      <section className="card">
        <h2>Rules using it</h2>
        <ErrorBox error={using.error} title="Could not list rules" />
        {using.data?.data.length === 0 && (
          <p className="muted">
            No rule reacts to this trigger. <Link to="/rules/new">Create one</Link>.
          </p>
        )}
        <ul>
          {(using.data?.data ?? []).map((r) => (
            <li key={r.ref}>
              <Link to={`/rules/${seg(r.ref)}`}>{r.ref}</Link> → {r.action_ref}
              {!r.enabled && <span className="tag">disabled</span>}
            </li>
          ))}
        </ul>
      </section>
      <section>
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2>Recent events</h2>
          <Link to={`/events?trigger=${seg(t.ref)}`}>All events →</Link>
        </div>
        <ErrorBox error={recent.error} title="Could not list events" />
        {recent.data?.data.length === 0 && <p className="muted">No events yet.</p>}
        {recent.data && recent.data.data.length > 0 && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>Event</th>
                  <th>When</th>
                  <th>Source</th>
                </tr>
              </thead>
              <tbody>
                {recent.data.data.map((e) => (
                  <tr key={e.id}>
                    <td>
                      <Link to={`/events/${e.id}`}>#{e.id}</Link>
                    </td>
                    <td>
                      <Time iso={e.created_at} />
                    </td>
                    <td className="muted">{e.source}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Props
        items={[
          [
            'Pack',
            <Link key="p" to={`/packs/${seg(t.pack_ref)}`}>
              {t.pack_ref}
            </Link>,
          ],
        ]}
      />
    </div>
  );
}
