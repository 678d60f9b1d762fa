/** The executions list: filters in the URL, status changes arriving live from the global stream. */
import { type ReactNode, useEffect, useMemo, useRef, useState } from 'react';
import { ENDPOINTS } from '../api/endpoints.ts';
import { actions as actionsApi, executions } from '../api/resources.ts';
import type { Execution, StatusNotice } from '../api/types.ts';
import { Empty, ErrorBox, LiveIndicator, Loading, Pager, StatusBadge, Time } from '../components/ui.tsx';
import { EXECUTION_STATUSES, elapsed, formatDuration, isTerminal } from '../lib/format.ts';
import { useLoad, useNow, useThrottled } from '../lib/hooks.ts';
import { Link, seg, setSearch, useLocation } from '../lib/router.tsx';
import { openStream, type StreamState } from '../lib/sse.ts';

const RANGES: Record<string, number> = {
  '1h': 3600e3,
  '24h': 86400e3,
  '7d': 7 * 86400e3,
  '30d': 30 * 86400e3,
};
const STATUS_GROUPS: Record<string, string> = {
  active: 'requested,delayed,scheduled,running,pausing,paused,canceling',
  problems: 'failed,timeout,abandoned',
};

export function ExecutionRow({ e, flash, now }: { e: Execution; flash?: boolean; now: number }) {
  const running = !isTerminal(e.status);
  return (
    <tr className={flash ? 'flash' : undefined} data-execution={e.id}>
      <td className="num">
        <Link to={`/executions/${e.id}`}>#{e.id}</Link>
      </td>
      <td>
        <Link to={`/actions/${seg(e.action_ref)}`}>{e.action_ref}</Link>
        {e.task_name && <span className="muted small"> · task {e.task_name}</span>}
      </td>
      <td>
        <StatusBadge status={e.status} />
      </td>
      <td>
        <Time iso={e.started_at ?? e.created_at} />
      </td>
      <td className="num nowrap">
        {running && e.started_at
          ? formatDuration(elapsed(e.started_at, null, now))
          : formatDuration(e.duration_ms ?? elapsed(e.started_at, e.finished_at))}
      </td>
      <td className="small">
        {e.rule_ref ? (
          <>
            rule <Link to={`/rules/${seg(e.rule_ref)}`}>{e.rule_ref}</Link>
          </>
        ) : e.parent_id ? (
          <>
            in <Link to={`/executions/${e.parent_id}`}>#{e.parent_id}</Link>
          </>
        ) : e.rerun_of ? (
          <>
            rerun of <Link to={`/executions/${e.rerun_of}`}>#{e.rerun_of}</Link>
          </>
        ) : (
          <span className="muted">{e.created_by ? `by ${e.created_by}` : 'manual'}</span>
        )}
      </td>
    </tr>
  );
}

export function ExecutionTable({
  rows,
  flashes,
  empty,
}: {
  rows: Execution[];
  flashes?: Set<number>;
  empty?: ReactNode;
}) {
  const anyRunning = rows.some((r) => !isTerminal(r.status));
  const now = useNow(1000, anyRunning);
  if (!rows.length) return <>{empty}</>;
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th className="num">ID</th>
            <th>Action</th>
            <th>Status</th>
            <th>Started</th>
            <th className="num">Duration</th>
            <th>Source</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((e) => (
            <ExecutionRow key={e.id} e={e} flash={flashes?.has(e.id)} now={now} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function ExecutionsPage() {
  const { search } = useLocation();
  const status = search.get('status') ?? '';
  const action = search.get('action') ?? '';
  const rule = search.get('rule') ?? '';
  const range = search.get('range') ?? '';
  const page = Number(search.get('page') ?? '1') || 1;
  const [actionText, setActionText] = useState(action);
  useEffect(() => setActionText(action), [action]);

  const statusFilter = STATUS_GROUPS[status] ?? status;
  const query = useMemo(
    () => ({
      status: statusFilter || undefined,
      action: action || undefined,
      rule: rule || undefined,
      since: RANGES[range] ? new Date(Date.now() - RANGES[range]!).toISOString() : undefined,
      page,
      page_size: 50,
    }),
    [statusFilter, action, rule, range, page],
  );
  const list = useLoad((signal) => executions.list(query, signal), [query]);
  const actionRefs = useLoad(
    async () => (await actionsApi.list({ page_size: 1000 })).data.map((a) => a.ref),
    [],
  );

  const [flashes, setFlashes] = useState<Set<number>>(new Set());
  const [live, setLive] = useState<{ state: StreamState; error?: unknown }>({ state: 'connecting' });
  const reload = useThrottled(list.reload, 1000);
  const known = useRef(new Set<number>());
  known.current = new Set(list.data?.data.map((e) => e.id) ?? []);

  useEffect(() => {
    return openStream(ENDPOINTS.executionsStream, {
      query: { status: statusFilter || undefined, action: action || undefined },
      on: {
        status: (d) => {
          const n = d as StatusNotice;
          if (known.current.has(n.execution_id)) {
            list.set((prev) =>
              prev
                ? {
                    ...prev,
                    data: prev.data.map((e) => (e.id === n.execution_id ? { ...e, status: n.status } : e)),
                  }
                : prev,
            );
            setFlashes(new Set([n.execution_id]));
          }
          // Timing, results and new rows come from the list itself.
          reload();
        },
      },
      onReconnect: reload,
      onState: (state, error) => setLive({ state, error }),
    });
  }, [statusFilter, action, list.set, reload]);

  const filtered = list.data?.data ?? [];
  const anyFilter = status || action || rule || range;
  return (
    <div>
      <div className="page-head">
        <h1>Executions</h1>
        <span className="grow" />
        <LiveIndicator state={live.state} error={live.error} />
      </div>
      <form
        className="toolbar"
        onSubmit={(e) => {
          e.preventDefault();
          setSearch({ action: actionText.trim() || undefined, page: undefined });
        }}
      >
        <label className="row">
          <span className="muted small">Status</span>
          <select
            value={status}
            onChange={(e) => setSearch({ status: e.target.value || undefined, page: undefined })}
          >
            <option value="">any</option>
            <option value="active">active (not finished)</option>
            <option value="problems">failed, timed out, abandoned</option>
            {EXECUTION_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label className="row">
          <span className="muted small">Action</span>
          <input
            type="search"
            list="action-refs"
            placeholder="pack.action"
            value={actionText}
            onChange={(e) => setActionText(e.target.value)}
            onBlur={() => setSearch({ action: actionText.trim() || undefined, page: undefined })}
          />
          <datalist id="action-refs">
            {(actionRefs.data ?? []).map((r) => (
              <option key={r} value={r} />
            ))}
          </datalist>
        </label>
        <label className="row">
          <span className="muted small">Created</span>
          <select
            value={range}
            onChange={(e) => setSearch({ range: e.target.value || undefined, page: undefined })}
          >
            <option value="">any time</option>
            <option value="1h">last hour</option>
            <option value="24h">last 24 hours</option>
            <option value="7d">last 7 days</option>
            <option value="30d">last 30 days</option>
          </select>
        </label>
        {rule && (
          <span className="tag">
            rule {rule}{' '}
            <button
              type="button"
              className="link small"
              onClick={() => setSearch({ rule: undefined })}
              aria-label="Clear rule filter"
            >
              ✕
            </button>
          </span>
        )}
        {anyFilter && (
          <button
            type="button"
            className="small"
            onClick={() =>
              setSearch({
                status: undefined,
                action: undefined,
                rule: undefined,
                range: undefined,
                page: undefined,
              })
            }
          >
            Clear filters
          </button>
        )}
      </form>
      <ErrorBox error={list.error} title="Could not list executions" />
      {list.loading && !list.data ? (
        <Loading />
      ) : (
        <>
          <ExecutionTable
            rows={filtered}
            flashes={flashes}
            empty={
              <div className="card">
                {anyFilter ? (
                  <Empty title="No executions match these filters">
                    Try another status or a longer time range.
                  </Empty>
                ) : (
                  <Empty
                    title="Nothing has run yet"
                    action={
                      <Link className="button primary" to="/actions">
                        Browse actions
                      </Link>
                    }
                  >
                    Executions appear here as soon as something runs: run an action from its page, or let a
                    rule react to an event.
                  </Empty>
                )}
              </div>
            }
          />
          <Pager pagination={list.data?.pagination} onPage={(p) => setSearch({ page: String(p) })} />
        </>
      )}
    </div>
  );
}
