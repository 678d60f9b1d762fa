/** Sensors: what watches the world; a sensor's page shows whether it runs, and its logs. */
import { useState } from 'react';
import { sensors } from '../api/resources.ts';
import type { Sensor } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import { JsonView } from '../components/JsonView.tsx';
import { Empty, ErrorBox, Loading, Props, StatusBadge, Time } from '../components/ui.tsx';
import { useLoad } from '../lib/hooks.ts';
import { Link, seg } from '../lib/router.tsx';

function SensorStatusCell({ sensorRef }: { sensorRef: string }) {
  const st = useLoad(() => sensors.status(sensorRef), [sensorRef]);
  if (st.error) return <span className="muted small">unknown</span>;
  if (!st.data) return <span className="muted small">…</span>;
  return <StatusBadge status={st.data.status} />;
}

export function SensorsPage() {
  const list = useLoad(() => sensors.list({ page_size: 1000 }), []);
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Sensors</h1>
        <span className="sub">processes that watch the world and emit events</span>
      </div>
      <ErrorBox error={list.error} title="Could not list sensors" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty
            title="No sensors"
            action={
              <Link className="button primary" to="/packs">
                Install a pack
              </Link>
            }
          >
            Sensors come with packs. Timers and webhooks need none: they are built in.
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Sensor</th>
                <th>Emits</th>
                <th>Status</th>
                <th>Enabled</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((s) => (
                <tr key={s.ref}>
                  <td>
                    <Link to={`/sensors/${seg(s.ref)}`}>{s.ref}</Link>
                    <div className="muted small">{s.description || s.label}</div>
                  </td>
                  <td className="small">
                    {s.trigger_refs.map((t) => (
                      <div key={t}>
                        <Link to={`/triggers/${seg(t)}`}>{t}</Link>
                      </div>
                    ))}
                  </td>
                  <td>
                    <SensorStatusCell sensorRef={s.ref} />
                  </td>
                  <td>{s.enabled ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

export function SensorPage({ params }: { params: Record<string, string> }) {
  const ref = params.ref!;
  const { can } = useSession();
  const sensor = useLoad(() => sensors.get(ref), [ref]);
  const status = useLoad(() => sensors.status(ref), [ref]);
  const [stream, setStream] = useState('');
  const logs = useLoad(() => sensors.logs(ref, { tail: 200, stream: stream || undefined }), [ref, stream]);
  const [toggleError, setToggleError] = useState<unknown>(null);
  if (sensor.loading && !sensor.data) return <Loading />;
  const s = sensor.data;
  if (!s) return <ErrorBox error={sensor.error} title={`Could not load sensor ${ref}`} />;
  const st = status.data;
  const toggle = async () => {
    setToggleError(null);
    try {
      const x: Sensor = await sensors.setEnabled(s.ref, !s.enabled);
      sensor.set(() => x);
      status.reload();
    } catch (e) {
      setToggleError(e);
    }
  };
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/sensors">Sensors</Link> › <Link to={`/packs/${seg(s.pack_ref)}`}>{s.pack_ref}</Link>
        </div>
        <div className="page-head">
          <h1 className="mono">{s.ref}</h1>
          {st && <StatusBadge status={st.status} />}
          <span className="grow" />
          {can('sensors', 'update') && (
            <button type="button" onClick={toggle}>
              {s.enabled ? 'Disable' : 'Enable'}
            </button>
          )}
          <button
            type="button"
            onClick={() => {
              status.reload();
              logs.reload();
            }}
          >
            Refresh
          </button>
        </div>
        {(s.description || s.label) && <p className="muted">{s.description || s.label}</p>}
        <ErrorBox error={toggleError} title="Could not change the sensor" />
      </div>
      <div className="grid two">
        <section className="card">
          <h2>Status</h2>
          <ErrorBox error={status.error} title="Could not read the status" />
          {st && (
            <Props
              items={[
                ['Status', <StatusBadge key="s" status={st.status} />],
                [
                  'Needed',
                  st.needed
                    ? 'yes (an enabled rule uses its trigger)'
                    : 'no (no enabled rule uses its trigger)',
                ],
                ['Process', st.pid ? `pid ${st.pid} on ${st.owner ?? '?'}` : null],
                ['Started', <Time key="t" iso={st.started_at} />],
                ['Restarts', String(st.restarts)],
                ['Last exit code', st.last_exit_code === null ? null : String(st.last_exit_code)],
                [
                  'Last error',
                  st.last_error ? (
                    <span key="e" style={{ color: 'var(--danger)' }}>
                      {st.last_error}
                    </span>
                  ) : null,
                ],
                ['Next restart', <Time key="n" iso={st.next_restart_at} />],
              ]}
            />
          )}
        </section>
        <section className="card">
          <h2>Definition</h2>
          <Props
            items={[
              ['Runner', <code key="r">{s.runner}</code>],
              ['Entry point', <code key="e">{s.entry_point}</code>],
              ['Emits', s.trigger_refs.join(', ')],
              ['Poll interval', s.poll_interval_seconds ? `${s.poll_interval_seconds} s` : null],
            ]}
          />
          {Object.keys(s.config).length > 0 && (
            <div style={{ marginTop: 10 }}>
              <JsonView value={s.config} label="Configuration" />
            </div>
          )}
        </section>
      </div>
      <section className="card">
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2>Logs</h2>
          <select value={stream} onChange={(e) => setStream(e.target.value)} aria-label="Which log lines">
            <option value="">all lines</option>
            <option value="stderr">stderr</option>
            <option value="invalid">invalid output</option>
            <option value="system">system</option>
          </select>
        </div>
        <ErrorBox error={logs.error} title="Could not read the logs" />
        {logs.data && logs.data.length === 0 && <p className="muted">No log lines.</p>}
        {logs.data && logs.data.length > 0 && (
          <pre className="output">
            {logs.data.map((l) => (
              <span
                key={l.id}
                className={l.stream === 'stderr' || l.stream === 'invalid' ? 'stderr' : undefined}
              >
                {new Date(l.created_at).toLocaleTimeString()} [{l.stream}] {l.line}
                {'\n'}
              </span>
            ))}
          </pre>
        )}
      </section>
    </div>
  );
}
