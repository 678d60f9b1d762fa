/**
 * The dashboard: executions per status over time, success rate, what runs and waits now, the busiest
 * actions and rules, the latest failures. Kept live by the global execution stream.
 */
import { useEffect, useMemo, useState } from 'react';
import { isMissingEndpoint } from '../api/client.ts';
import { ENDPOINTS } from '../api/endpoints.ts';
import { executions, inquiries } from '../api/resources.ts';
import type { Execution, ExecutionStats } from '../api/types.ts';
import { Empty, ErrorBox, LiveIndicator, Loading, StatusBadge, Time } from '../components/ui.tsx';
import { nodeLook } from '../graph/look.ts';
import { useLoad, useThrottled } from '../lib/hooks.ts';
import { Link, seg } from '../lib/router.tsx';
import { openStream, type StreamState } from '../lib/sse.ts';

const WINDOWS = { '1h': 3600e3, '24h': 86400e3, '7d': 7 * 86400e3 } as const;
type Window = keyof typeof WINDOWS;
const FAILED = ['failed', 'timeout', 'abandoned'];
const ACTIVE = ['requested', 'delayed', 'scheduled', 'running', 'pausing', 'paused', 'canceling'];
const SERIES: { key: string; statuses: string[]; color: string; label: string }[] = [
  { key: 'ok', statuses: ['succeeded'], color: nodeLook('succeeded').color, label: 'succeeded' },
  { key: 'bad', statuses: FAILED, color: nodeLook('failed').color, label: 'failed, timed out, abandoned' },
  { key: 'cancel', statuses: ['canceled'], color: nodeLook('canceled').color, label: 'canceled' },
  { key: 'active', statuses: ACTIVE, color: nodeLook('running').color, label: 'still running or waiting' },
];

/** The same figures from the executions list (for a server without the stats endpoint): approximate. */
async function statsFromList(since: Date, until: Date, buckets: number): Promise<ExecutionStats> {
  const list = await executions.list({ since: since.toISOString(), page_size: 1000 });
  const bucketSeconds = Math.max(1, Math.ceil((until.getTime() - since.getTime()) / 1000 / buckets));
  const series = Array.from({ length: buckets }, (_, i) => ({
    start: new Date(since.getTime() + i * bucketSeconds * 1000).toISOString(),
    counts: {} as Record<string, number>,
  }));
  const totals: Record<string, number> = {};
  const actions = new Map<string, { count: number; failed: number }>();
  const rules = new Map<string, number>();
  for (const e of list.data) {
    const b = Math.min(
      buckets - 1,
      Math.floor((new Date(e.created_at).getTime() - since.getTime()) / 1000 / bucketSeconds),
    );
    if (b < 0) continue;
    series[b]!.counts[e.status] = (series[b]!.counts[e.status] ?? 0) + 1;
    totals[e.status] = (totals[e.status] ?? 0) + 1;
    const a = actions.get(e.action_ref) ?? { count: 0, failed: 0 };
    a.count++;
    if (FAILED.includes(e.status)) a.failed++;
    actions.set(e.action_ref, a);
    if (e.rule_ref) rules.set(e.rule_ref, (rules.get(e.rule_ref) ?? 0) + 1);
  }
  const ok = totals.succeeded ?? 0;
  const bad = FAILED.reduce((s, k) => s + (totals[k] ?? 0), 0);
  const active: Record<string, number> = {};
  for (const s of ACTIVE) if (totals[s]) active[s] = totals[s]!;
  let waiting = 0;
  try {
    waiting = (await inquiries.list({ status: 'pending', page_size: 1 })).pagination.total_items;
  } catch {
    /* no inquiries endpoint */
  }
  return {
    since: since.toISOString(),
    until: until.toISOString(),
    bucket_seconds: bucketSeconds,
    series,
    totals,
    success_rate: ok + bad ? ok / (ok + bad) : null,
    active,
    waiting_for_input: waiting,
    busiest_actions: [...actions.entries()]
      .map(([action_ref, v]) => ({ action_ref, ...v }))
      .sort((a, b) => b.count - a.count)
      .slice(0, 8),
    busiest_rules: [...rules.entries()]
      .map(([rule_ref, count]) => ({ rule_ref, count }))
      .sort((a, b) => b.count - a.count)
      .slice(0, 8),
    recent_failures: list.data.filter((e: Execution) => FAILED.includes(e.status)).slice(0, 8),
  };
}

function Chart({ stats }: { stats: ExecutionStats }) {
  const W = 720;
  const H = 160;
  const n = stats.series.length;
  const stacks = stats.series.map((b) =>
    SERIES.map((s) => s.statuses.reduce((sum, st) => sum + (b.counts[st] ?? 0), 0)),
  );
  const max = Math.max(1, ...stacks.map((s) => s.reduce((a, b) => a + b, 0)));
  const bw = W / n;
  const fmt = (iso: string) => {
    const d = new Date(iso);
    return stats.bucket_seconds >= 3 * 3600
      ? d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
      : d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  };
  const total = stacks.reduce((s, x) => s + x.reduce((a, b) => a + b, 0), 0);
  return (
    <figure style={{ margin: 0 }}>
      <div className="row small muted" style={{ justifyContent: 'space-between' }}>
        <span>{max} per bucket at most</span>
        <span>
          one bar ={' '}
          {stats.bucket_seconds >= 3600
            ? `${Math.round(stats.bucket_seconds / 3600)} h`
            : `${Math.round(stats.bucket_seconds / 60)} min`}
        </span>
      </div>
      <svg
        className="chart"
        viewBox={`0 0 ${W} ${H}`}
        role="img"
        aria-label={`Executions over time: ${total} in the window`}
        preserveAspectRatio="none"
      >
        <line x1={0} x2={W} y1={H - 0.5} y2={H - 0.5} stroke="var(--border)" />
        {stacks.map((stack, i) => {
          let y = H;
          const b = stats.series[i]!;
          return (
            <g key={b.start}>
              <title>
                {fmt(b.start)}: {SERIES.map((s, k) => `${stack[k]} ${s.label}`).join(', ')}
              </title>
              <rect x={i * bw} y={0} width={bw} height={H} fill="transparent" />
              {stack.map((v, k) => {
                const h = (v / max) * (H - 4);
                y -= h;
                return v ? (
                  <rect
                    key={SERIES[k]!.key}
                    x={i * bw + 1}
                    y={y}
                    width={Math.max(1, bw - 2)}
                    height={h}
                    fill={SERIES[k]!.color}
                  />
                ) : null;
              })}
            </g>
          );
        })}
      </svg>
      <div className="row small muted" style={{ justifyContent: 'space-between' }} aria-hidden="true">
        <span>{stats.series[0] ? fmt(stats.series[0].start) : ''}</span>
        <span>{stats.series[Math.floor(n / 2)] ? fmt(stats.series[Math.floor(n / 2)]!.start) : ''}</span>
        <span>now</span>
      </div>
      <figcaption className="legend">
        {SERIES.map((s) => (
          <span key={s.key} style={{ ['--c' as string]: s.color }}>
            {s.label}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

function Bars({
  rows,
  link,
}: {
  rows: { label: string; count: number; extra?: string }[];
  link: (l: string) => string;
}) {
  const max = Math.max(1, ...rows.map((r) => r.count));
  return (
    <div className="bars">
      {rows.map((r) => (
        <div className="bar-row" key={r.label}>
          <div>
            <Link to={link(r.label)} className="ellipsis" style={{ display: 'block' }}>
              {r.label}
            </Link>
            <div className="meter" aria-hidden="true">
              <div style={{ width: `${(r.count / max) * 100}%` }} />
            </div>
          </div>
          <div className="num small" title={r.extra}>
            {r.count}
            {r.extra && <div className="muted">{r.extra}</div>}
          </div>
        </div>
      ))}
    </div>
  );
}

export function DashboardPage() {
  const [win, setWin] = useState<Window>('24h');
  const [approx, setApprox] = useState(false);
  const stats = useLoad(async () => {
    const until = new Date();
    const since = new Date(until.getTime() - WINDOWS[win]);
    const buckets = win === '1h' ? 30 : win === '24h' ? 48 : 56;
    try {
      const s = await executions.stats({ since: since.toISOString(), until: until.toISOString(), buckets });
      setApprox(false);
      return s;
    } catch (e) {
      if (!isMissingEndpoint(e)) throw e;
      setApprox(true);
      return statsFromList(since, until, buckets);
    }
  }, [win]);
  const [live, setLive] = useState<{ state: StreamState; error?: unknown }>({ state: 'connecting' });
  const reload = useThrottled(stats.reload, 3000);
  useEffect(
    () =>
      openStream(ENDPOINTS.executionsStream, {
        on: { status: () => reload() },
        onReconnect: reload,
        onState: (state, error) => setLive({ state, error }),
      }),
    [reload],
  );
  const s = stats.data;
  const total = useMemo(() => (s ? Object.values(s.totals).reduce((a, b) => a + b, 0) : 0), [s]);
  const running = s ? (s.active.running ?? 0) + (s.active.pausing ?? 0) + (s.active.canceling ?? 0) : 0;
  const queued = s ? (s.active.requested ?? 0) + (s.active.scheduled ?? 0) + (s.active.delayed ?? 0) : 0;
  return (
    <div className="stack">
      <div className="page-head">
        <h1>Dashboard</h1>
        <span className="grow" />
        <LiveIndicator state={live.state} error={live.error} />
        <select value={win} onChange={(e) => setWin(e.target.value as Window)} aria-label="Time window">
          <option value="1h">last hour</option>
          <option value="24h">last 24 hours</option>
          <option value="7d">last 7 days</option>
        </select>
      </div>
      <ErrorBox error={stats.error} title="Could not load the figures" />
      {approx && (
        <p className="muted small">
          Computed from the latest 1000 executions (this server has no statistics endpoint).
        </p>
      )}
      {!s && !stats.error && <Loading />}
      {s && (
        <>
          <div className="grid stats">
            <Link to="/executions?status=running" className="card" style={{ color: 'inherit' }}>
              <div className="muted small">Running now</div>
              <div className="stat" data-testid="running-count">
                {running}
              </div>
              <div className="muted small">{queued} queued</div>
            </Link>
            <Link to="/inquiries" className="card" style={{ color: 'inherit' }}>
              <div className="muted small">Waiting for input</div>
              <div className="stat" style={{ color: s.waiting_for_input ? 'var(--st-ask)' : undefined }}>
                {s.waiting_for_input}
              </div>
              <div className="muted small">
                {(s.active.paused ?? 0) > 0 ? `${s.active.paused} paused` : 'inquiries'}
              </div>
            </Link>
            <div className="card">
              <div className="muted small">Success rate</div>
              <div
                className="stat"
                style={{
                  color: s.success_rate !== null && s.success_rate < 0.9 ? 'var(--danger)' : undefined,
                }}
              >
                {s.success_rate === null
                  ? '—'
                  : `${(s.success_rate * 100).toFixed(s.success_rate > 0.999 || s.success_rate < 0.001 ? 0 : 1)}%`}
              </div>
              <div className="muted small">of finished executions</div>
            </div>
            <Link to="/executions" className="card" style={{ color: 'inherit' }}>
              <div className="muted small">Executions</div>
              <div className="stat">{total}</div>
              <div className="muted small">in the window</div>
            </Link>
          </div>
          <section className="card">
            <h2>Executions over time</h2>
            {total === 0 ? (
              <Empty
                title="Nothing ran in this window"
                action={
                  <Link className="button primary" to="/actions">
                    Run an action
                  </Link>
                }
              >
                Run an action from its page, or create a rule so that events start actions on their own.
              </Empty>
            ) : (
              <Chart stats={s} />
            )}
          </section>
          <div className="grid three">
            <section className="card" style={{ marginTop: 0 }}>
              <h2>Busiest actions</h2>
              {s.busiest_actions.length === 0 ? (
                <p className="muted">None in this window.</p>
              ) : (
                <Bars
                  rows={s.busiest_actions.map((a) => ({
                    label: a.action_ref,
                    count: a.count,
                    extra: a.failed ? `${a.failed} failed` : undefined,
                  }))}
                  link={(l) => `/executions?action=${seg(l)}`}
                />
              )}
            </section>
            <section className="card" style={{ marginTop: 0 }}>
              <h2>Busiest rules</h2>
              {s.busiest_rules.length === 0 ? (
                <p className="muted">
                  No rule fired in this window. <Link to="/rules">Rules</Link> run actions when events arrive.
                </p>
              ) : (
                <Bars
                  rows={s.busiest_rules.map((r) => ({ label: r.rule_ref, count: r.count }))}
                  link={(l) => `/rules/${seg(l)}`}
                />
              )}
            </section>
            <section className="card" style={{ marginTop: 0 }}>
              <h2>Recent failures</h2>
              {s.recent_failures.length === 0 ? (
                <p className="muted">No failures in this window.</p>
              ) : (
                <ul style={{ listStyle: 'none', padding: 0, margin: 0 }}>
                  {s.recent_failures.map((f) => (
                    <li key={f.id} style={{ marginBottom: 8 }}>
                      <Link to={`/executions/${f.id}`}>#{f.id}</Link>{' '}
                      <span className="mono small">{f.action_ref}</span> <StatusBadge status={f.status} />{' '}
                      <span className="muted small">
                        <Time iso={f.finished_at} relative />
                      </span>
                      {typeof f.error?.message === 'string' && (
                        <div
                          className="small ellipsis"
                          style={{ color: 'var(--danger)' }}
                          title={f.error.message}
                        >
                          {f.error.message}
                        </div>
                      )}
                    </li>
                  ))}
                </ul>
              )}
            </section>
          </div>
        </>
      )}
    </div>
  );
}
