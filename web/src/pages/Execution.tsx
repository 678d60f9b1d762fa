/**
 * One execution: status, timing, parameters, result, live output (server-sent events), the parent
 * chain and children; for a workflow, its live graph, the timeline of task runs and the runs of a
 * chosen task. Cancel, rerun, pause and resume from here.
 */
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { isMissingEndpoint } from '../api/client.ts';
import { ENDPOINTS } from '../api/endpoints.ts';
import { actions as actionsApi, executions, inquiries, workflows } from '../api/resources.ts';
import type {
  Execution,
  GraphEdge,
  GraphNode,
  LiveGraph,
  LiveNodeState,
  OutputChunk,
  TaskRun,
} from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import { JsonView } from '../components/JsonView.tsx';
import { SchemaForm } from '../components/SchemaForm.tsx';
import {
  Dialog,
  Empty,
  ErrorBox,
  GraphLegend,
  LiveIndicator,
  Loading,
  Props,
  StatusBadge,
  Tabs,
  Time,
} from '../components/ui.tsx';
import { graphOfDefinition } from '../graph/definition.ts';
import { nodeLook } from '../graph/look.ts';
import { elapsed, formatDuration, isTerminal } from '../lib/format.ts';
import { useLoad, useNow, useThrottled } from '../lib/hooks.ts';
import { Link, navigate, seg } from '../lib/router.tsx';
import { type FieldErrors, fieldsOf, problemsToErrors } from '../lib/schema.ts';
import { openStream, type StreamState } from '../lib/sse.ts';
import { ExecutionTable } from './Executions.tsx';

const WorkflowGraph = lazy(() => import('../graph/WorkflowGraph.tsx'));

const MAX_OUTPUT_CHARS = 2_000_000;

/** The execution and its output, followed live until it ends. */
function useLiveExecution(id: number) {
  const initial = useLoad(() => executions.get(id), [id]);
  const [exec, setExec] = useState<Execution | undefined>();
  const [chunks, setChunks] = useState<OutputChunk[]>([]);
  const [live, setLive] = useState<{ state: StreamState; error?: unknown }>({ state: 'connecting' });
  const lastSeq = useRef(0);
  useEffect(() => {
    if (initial.data) setExec(initial.data);
  }, [initial.data]);
  useEffect(() => {
    lastSeq.current = 0;
    setChunks([]);
    return openStream(ENDPOINTS.executionStream, {
      params: { id },
      resumeParam: 'after',
      endEvent: 'end',
      on: {
        status: (d) => setExec(d as Execution),
        output: (d) => {
          const c = d as OutputChunk;
          if (c.seq <= lastSeq.current) return;
          lastSeq.current = c.seq;
          setChunks((prev) => [...prev, c]);
        },
        end: () => {
          // The server closes the stream after `end`; the last status came just before.
          void executions.get(id).then(setExec, () => undefined);
        },
      },
      onState: (state, error) => setLive({ state, error }),
    });
  }, [id]);
  return { exec, error: initial.error, loading: initial.loading && !exec, chunks, live };
}

function Output({ chunks, live }: { chunks: OutputChunk[]; live: { state: StreamState; error?: unknown } }) {
  const [filter, setFilter] = useState<'all' | 'stdout' | 'stderr'>('all');
  const [follow, setFollow] = useState(true);
  const ref = useRef<HTMLPreElement>(null);
  const shown = chunks.filter((c) => filter === 'all' || c.stream === filter);
  let total = 0;
  const visible: OutputChunk[] = [];
  for (let i = shown.length - 1; i >= 0 && total < MAX_OUTPUT_CHARS; i--) {
    visible.unshift(shown[i]!);
    total += shown[i]!.data.length;
  }
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll on new output
  useEffect(() => {
    if (follow && ref.current) ref.current.scrollTop = ref.current.scrollHeight;
  }, [visible.length, follow]);
  return (
    <div>
      <div className="row" style={{ justifyContent: 'space-between', marginBottom: 6 }}>
        <h3 style={{ margin: 0 }}>Output</h3>
        <span className="row">
          <select
            value={filter}
            onChange={(e) => setFilter(e.target.value as typeof filter)}
            aria-label="Which output"
          >
            <option value="all">stdout + stderr</option>
            <option value="stdout">stdout</option>
            <option value="stderr">stderr</option>
          </select>
          <label className="row small">
            <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> follow
          </label>
        </span>
      </div>
      {live.state === 'closed' && !!live.error && (
        <ErrorBox error={live.error} title="Live output is unavailable" />
      )}
      {visible.length === 0 ? (
        <p className="muted small">No output{live.state === 'live' ? ' yet' : ''}.</p>
      ) : (
        <pre className="output" ref={ref} aria-live="off" data-testid="output">
          {shown.length > visible.length && <span className="muted">… earlier output not shown …{'\n'}</span>}
          {visible.map((c) => (
            <span key={c.seq} className={c.stream === 'stderr' ? 'stderr' : undefined}>
              {c.truncated ? '[output truncated at the size limit]\n' : c.data}
            </span>
          ))}
        </pre>
      )}
    </div>
  );
}

function ParentChain({ exec }: { exec: Execution }) {
  const chain = useLoad(async () => {
    const out: Execution[] = [];
    let next = exec.parent_id;
    while (next && out.length < 12) {
      const p = await executions.get(next);
      out.unshift(p);
      next = p.parent_id;
    }
    return out;
  }, [exec.parent_id]);
  if (!exec.parent_id) return null;
  return (
    <nav className="crumbs" aria-label="Parent executions">
      {chain.error ? <ErrorBox error={chain.error} title="Could not load the parents" /> : null}
      {(chain.data ?? []).map((p) => (
        <span key={p.id}>
          <Link to={`/executions/${p.id}`}>
            #{p.id} {p.action_ref}
          </Link>{' '}
          ›
        </span>
      ))}
      <span>
        #{exec.id}
        {exec.task_name ? ` (task ${exec.task_name})` : ''}
      </span>
    </nav>
  );
}

/** The runs of a workflow's tasks: from the tasks endpoint, or from the child executions. */
function runsFromChildren(children: Execution[]): TaskRun[] {
  return children
    .filter((c) => c.task_name)
    .map((c) => ({
      task_name: c.task_name!,
      item_index: null,
      attempt: c.attempt,
      status: c.status,
      execution_id: c.id,
      started_at: c.started_at ?? c.created_at,
      finished_at: c.finished_at,
      result: c.result,
    }))
    .sort((a, b) => (a.started_at ?? '').localeCompare(b.started_at ?? ''));
}

/** A live graph built from the definition and the child executions (when the graph endpoint is absent). */
function graphFromRuns(
  def: { nodes: GraphNode[]; edges: GraphEdge[] },
  runs: TaskRun[],
  status: string,
): LiveGraph {
  const byTask = new Map<string, TaskRun[]>();
  for (const r of runs) byTask.set(r.task_name, [...(byTask.get(r.task_name) ?? []), r]);
  return {
    status,
    nodes: def.nodes.map((n) => {
      const rs = byTask.get(n.id) ?? [];
      const latest = rs[rs.length - 1];
      const items =
        n.with_items && rs.length
          ? {
              total: rs.length,
              succeeded: rs.filter((r) => r.status === 'succeeded').length,
              failed: rs.filter((r) => ['failed', 'timeout', 'canceled', 'abandoned'].includes(r.status))
                .length,
              running: rs.filter((r) => !isTerminal(r.status)).length,
              pending: 0,
            }
          : null;
      const state: LiveNodeState = {
        status: latest ? (items?.running ? 'running' : items?.failed ? 'failed' : latest.status) : 'not_run',
        entries: rs.length ? 1 : 0,
        latest: null,
        run_key: null,
        attempt: latest?.attempt ?? null,
        started_at: rs[0]?.started_at ?? null,
        finished_at: latest?.finished_at ?? null,
        items,
        join_arrived: [],
      };
      return { ...n, state };
    }),
    edges: def.edges.map((e) => ({ ...e, taken: 0 })),
  };
}

function Timeline({ runs, now }: { runs: TaskRun[]; now: number }) {
  const started = runs
    .map((r) => (r.started_at ? new Date(r.started_at).getTime() : Number.NaN))
    .filter((t) => !Number.isNaN(t));
  if (!runs.length || !started.length) return <p className="muted">No task has started yet.</p>;
  const t0 = Math.min(...started);
  const t1 = Math.max(
    t0 + 1,
    ...runs.map((r) => (r.finished_at ? new Date(r.finished_at).getTime() : r.started_at ? now : t0)),
  );
  const span = t1 - t0;
  return (
    <div>
      <div className="timeline">
        {runs.map((r, i) => {
          const s = r.started_at ? new Date(r.started_at).getTime() : t0;
          const f = r.finished_at ? new Date(r.finished_at).getTime() : now;
          const label = `${r.task_name}${r.item_index !== null ? `[${r.item_index}]` : ''}${r.attempt > 1 ? ` (attempt ${r.attempt})` : ''}`;
          return (
            // biome-ignore lint/suspicious/noArrayIndexKey: runs are positional
            <div key={i} style={{ display: 'contents' }}>
              <div className="ellipsis" title={label}>
                {r.execution_id ? <Link to={`/executions/${r.execution_id}`}>{label}</Link> : label}
              </div>
              <div className="track" title={`${label}: ${r.status}, ${formatDuration(f - s)}`}>
                <div
                  className="bar"
                  style={{
                    ['--c' as string]: nodeLook(r.status).color,
                    left: `${((s - t0) / span) * 100}%`,
                    width: `${Math.max(0.4, ((f - s) / span) * 100)}%`,
                  }}
                />
              </div>
            </div>
          );
        })}
      </div>
      <p className="muted small">Total span {formatDuration(span)}.</p>
    </div>
  );
}

function TaskRuns({ task, runs }: { task: string; runs: TaskRun[] }) {
  const mine = runs.filter((r) => r.task_name === task);
  return (
    <div className="card" aria-live="polite">
      <h2>
        Runs of <code>{task}</code>
      </h2>
      {mine.length === 0 ? (
        <p className="muted">This task has not run in this execution.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Run</th>
                <th>Status</th>
                <th>Started</th>
                <th className="num">Duration</th>
                <th>Execution</th>
              </tr>
            </thead>
            <tbody>
              {mine.map((r, i) => (
                // biome-ignore lint/suspicious/noArrayIndexKey: runs are positional
                <tr key={i}>
                  <td>
                    {r.item_index !== null ? `item ${r.item_index}` : `run ${i + 1}`}
                    {r.attempt > 1 ? `, attempt ${r.attempt}` : ''}
                  </td>
                  <td>
                    <StatusBadge status={r.status} />
                  </td>
                  <td>
                    <Time iso={r.started_at} />
                  </td>
                  <td className="num">{formatDuration(elapsed(r.started_at, r.finished_at))}</td>
                  <td>
                    {r.execution_id ? (
                      <Link to={`/executions/${r.execution_id}`}>#{r.execution_id}</Link>
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
    </div>
  );
}

function WorkflowRun({ exec, kids: children }: { exec: Execution; kids: Execution[] }) {
  const [tab, setTab] = useState<'graph' | 'timeline'>('graph');
  const [selected, setSelected] = useState<string | null>(null);
  const terminal = isTerminal(exec.status);
  const now = useNow(1000, !terminal);

  const graph = useLoad(async () => {
    try {
      return { live: await executions.graph(exec.id), fallback: false };
    } catch (e) {
      if (!isMissingEndpoint(e)) throw e;
      const wf = await workflows.get(exec.action_ref);
      return {
        live: graphFromRuns(graphOfDefinition(wf.definition), runsFromChildren(children), exec.status),
        fallback: true,
      };
    }
  }, [exec.id, exec.status, children]);
  const tasks = useLoad(async () => {
    try {
      return { runs: (await executions.tasks(exec.id)).data, fallback: false };
    } catch (e) {
      if (!isMissingEndpoint(e)) throw e;
      return { runs: runsFromChildren(children), fallback: true };
    }
  }, [exec.id, exec.status, children]);
  const runs = tasks.data?.runs ?? [];
  const live = graph.data?.live;

  return (
    <section className="card" aria-labelledby="wf-title">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <h2 id="wf-title">Workflow</h2>
        {live && (
          <span className="muted small">
            workflow status <StatusBadge status={live.status} />
          </span>
        )}
      </div>
      <Tabs
        label="Workflow views"
        value={tab}
        onChange={setTab}
        tabs={[
          { id: 'graph', label: 'Graph' },
          { id: 'timeline', label: `Timeline (${runs.length})` },
        ]}
      />
      {tab === 'graph' && (
        <>
          <ErrorBox error={graph.error} title="Could not load the graph" />
          {graph.data?.fallback && (
            <p className="muted small">
              Drawn from the workflow's definition and its task executions (this server has no graph
              endpoint).
            </p>
          )}
          {live ? (
            <Suspense fallback={<Loading what="Loading the graph view" />}>
              <WorkflowGraph
                nodes={live.nodes}
                edges={live.edges}
                selected={selected}
                onSelect={setSelected}
              />
              <GraphLegend />
              <p className="muted small">Select a task to see its runs.</p>
            </Suspense>
          ) : (
            !graph.error && <Loading what="Loading the graph" />
          )}
          {selected && <TaskRuns task={selected} runs={runs} />}
        </>
      )}
      {tab === 'timeline' && (
        <>
          <ErrorBox error={tasks.error} title="Could not load the task runs" />
          <Timeline runs={runs} now={now} />
        </>
      )}
    </section>
  );
}

function RerunDialog({ exec, open, onClose }: { exec: Execution; open: boolean; onClose: () => void }) {
  const action = useLoad(
    () => (open ? actionsApi.get(exec.action_ref) : Promise.resolve(undefined)),
    [open, exec.action_ref],
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [serverErrors, setServerErrors] = useState<FieldErrors | undefined>();
  const fields = useMemo(() => fieldsOf(action.data?.param_schema), [action.data]);
  const submit = async (parameters: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      const n = await executions.rerun(exec.id, { parameters });
      onClose();
      navigate(`/executions/${n.id}`);
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
    <Dialog open={open} title={`Rerun #${exec.id} with changes`} onClose={onClose}>
      <ErrorBox error={action.error} title="Could not load the action" />
      {action.data && (
        <SchemaForm
          schema={action.data.param_schema}
          initial={exec.parameters}
          serverErrors={serverErrors}
          submitLabel="Rerun"
          busy={busy}
          onSubmit={submit}
        >
          <ErrorBox error={error} title="The rerun was refused" />
        </SchemaForm>
      )}
    </Dialog>
  );
}

/** The questions this execution (or its workflow) waits on, with a way to answer them. */
function PendingInquiries({ exec, tick }: { exec: Execution; tick: number }) {
  const workflow = exec.runner === 'workflow';
  const list = useLoad(
    () =>
      isTerminal(exec.status) || (!workflow && exec.runner !== 'inquiry')
        ? Promise.resolve(undefined)
        : inquiries.list({
            status: 'pending',
            ...(workflow ? { workflow_execution: exec.id } : { execution: exec.id }),
          }),
    [exec.id, exec.status, tick],
  );
  const rows = list.data?.data ?? [];
  const pending = rows.map((i) => i.id).join(',');
  // The header's count of pending inquiries follows at once.
  useEffect(() => {
    if (pending) window.dispatchEvent(new Event('attune:inquiries-changed'));
  }, [pending]);
  if (!rows.length) return null;
  return (
    <div className="alert warn" role="status">
      <strong>Waiting for an answer.</strong>
      <ul>
        {rows.map((i) => (
          <li key={i.id}>
            {i.task_name ? (
              <>
                Task <code>{i.task_name}</code> asks:{' '}
              </>
            ) : null}
            “{i.prompt}” — <Link to={`/inquiries/${i.id}`}>answer inquiry #{i.id}</Link>
          </li>
        ))}
      </ul>
    </div>
  );
}

function Controls({ exec, onChanged }: { exec: Execution; onChanged: (e: Execution) => void }) {
  const { can } = useSession();
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [rerunOpen, setRerunOpen] = useState(false);
  const terminal = isTerminal(exec.status);
  const workflow = exec.runner === 'workflow';
  const act = async (what: string, fn: () => Promise<Execution>, go = false) => {
    setBusy(what);
    setError(null);
    try {
      const r = await fn();
      if (go) navigate(`/executions/${r.id}`);
      else onChanged(r);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  return (
    <div>
      <div className="row">
        {!terminal && can('executions', 'cancel') && (
          <button
            type="button"
            className="danger"
            disabled={!!busy || exec.status === 'canceling'}
            onClick={() => act('cancel', () => executions.cancel(exec.id))}
          >
            {busy === 'cancel' ? 'Canceling…' : 'Cancel'}
          </button>
        )}
        {workflow && ['running', 'scheduled'].includes(exec.status) && (
          <button
            type="button"
            disabled={!!busy}
            onClick={() => act('pause', () => executions.pause(exec.id))}
          >
            {busy === 'pause' ? 'Pausing…' : 'Pause'}
          </button>
        )}
        {workflow && ['paused', 'pausing'].includes(exec.status) && (
          <button
            type="button"
            disabled={!!busy}
            onClick={() => act('resume', () => executions.resume(exec.id))}
          >
            {busy === 'resume' ? 'Resuming…' : 'Resume'}
          </button>
        )}
        {terminal && can('executions', 'execute') && (
          <>
            <button
              type="button"
              className="primary"
              disabled={!!busy}
              onClick={() => act('rerun', () => executions.rerun(exec.id), true)}
            >
              {busy === 'rerun' ? 'Starting…' : 'Rerun'}
            </button>
            {workflow && ['failed', 'canceled'].includes(exec.status) && (
              <button
                type="button"
                disabled={!!busy}
                title="Run the failed tasks again, reusing what succeeded"
                onClick={() =>
                  act('rerun the failed tasks', () => executions.rerun(exec.id, { tasks: [] }), true)
                }
              >
                {busy === 'rerun the failed tasks' ? 'Starting…' : 'Rerun failed tasks'}
              </button>
            )}
            <button type="button" disabled={!!busy} onClick={() => setRerunOpen(true)}>
              Rerun with changes…
            </button>
          </>
        )}
      </div>
      <div style={{ marginTop: 8 }}>
        <ErrorBox error={error} title={`Could not ${busy ?? 'do that'}`} />
      </div>
      {rerunOpen && <RerunDialog exec={exec} open={rerunOpen} onClose={() => setRerunOpen(false)} />}
    </div>
  );
}

export function ExecutionPage({ params }: { params: Record<string, string> }) {
  const id = Number(params.id);
  const valid = Number.isSafeInteger(id) && id > 0;
  const { exec, error, loading, chunks, live } = useLiveExecution(valid ? id : 0);
  const [override, setOverride] = useState<Execution | undefined>();
  const e = override && exec && override.updated_at > exec.updated_at ? override : exec;
  const terminal = e ? isTerminal(e.status) : true;
  const now = useNow(1000, !terminal);

  const [childTick, setChildTick] = useState(0);
  const children = useLoad(() => executions.list({ parent: id, page_size: 500 }), [id, childTick]);
  const bump = useCallback(() => setChildTick((t) => t + 1), []);
  const bumpThrottled = useThrottled(bump, 700);
  // Children (task runs) change while a workflow runs: follow their status changes.
  const followChildren = valid && e?.runner === 'workflow' && !isTerminal(e.status);
  useEffect(() => {
    if (!followChildren) return;
    return openStream(ENDPOINTS.executionsStream, {
      query: { parent: id },
      on: { status: () => bumpThrottled() },
      onReconnect: bumpThrottled,
    });
  }, [id, followChildren, bumpThrottled]);
  // The workflow's own status changes also move the graph.
  const status = e?.status;
  // biome-ignore lint/correctness/useExhaustiveDependencies: follow the status
  useEffect(() => {
    if (status) bumpThrottled();
  }, [status]);

  if (!valid)
    return <ErrorBox error={new Error(`'${params.id}' is not an execution id`)} title="Not found" />;
  if (loading) return <Loading />;
  if (!e) return <ErrorBox error={error} title={`Could not load execution #${id}`} />;
  const kids = children.data?.data ?? [];
  const duration = e.duration_ms ?? elapsed(e.started_at, e.finished_at, now);
  return (
    <div className="stack">
      <div>
        <ParentChain exec={e} />
        <div className="page-head">
          <h1>
            Execution #{e.id}{' '}
            <Link to={`/actions/${seg(e.action_ref)}`} className="mono" style={{ fontSize: 16 }}>
              {e.action_ref}
            </Link>
          </h1>
          <StatusBadge status={e.status} />
          <span className="grow" />
          <LiveIndicator state={live.state} error={live.error} />
        </div>
        <Controls exec={e} onChanged={setOverride} />
      </div>
      <PendingInquiries exec={e} tick={childTick} />

      <div className="grid two">
        <section className="card" aria-label="Details">
          <Props
            items={[
              ['Status', <StatusBadge key="s" status={e.status} />],
              ['Runner', <code key="r">{e.runner}</code>],
              ['Created', <Time key="c" iso={e.created_at} />],
              ['Started', <Time key="st" iso={e.started_at} />],
              ['Finished', <Time key="f" iso={e.finished_at} />],
              [
                'Duration',
                e.started_at ? `${formatDuration(duration)}${terminal ? '' : ' so far'}` : 'not started',
              ],
              ['Started by', e.created_by ?? (e.rule_ref ? 'a rule' : e.parent_id ? 'its workflow' : '—')],
              e.rule_ref
                ? [
                    'Rule',
                    <Link key="rule" to={`/rules/${seg(e.rule_ref)}`}>
                      {e.rule_ref}
                    </Link>,
                  ]
                : ['Rule', null],
              e.event_id
                ? [
                    'Event',
                    <Link key="ev" to={`/events/${e.event_id}`}>
                      #{e.event_id} ({e.trigger_ref})
                    </Link>,
                  ]
                : ['Event', null],
              e.rerun_of
                ? [
                    'Rerun of',
                    <Link key="rr" to={`/executions/${e.rerun_of}`}>
                      #{e.rerun_of}
                    </Link>,
                  ]
                : ['Rerun of', null],
              ['Attempt', String(e.attempt)],
              ['Timeout', e.timeout_seconds ? `${e.timeout_seconds} s` : 'default'],
              ['Worker', e.worker_id ? <code key="w">{e.worker_id}</code> : null],
            ]}
          />
        </section>
        <section className="card">
          <JsonView value={e.parameters} label="Parameters" />
        </section>
      </div>

      {e.runner === 'workflow' && <WorkflowRun exec={e} kids={kids} />}

      {e.error && (
        <section className="card">
          <h2 style={{ color: 'var(--danger)' }}>Error</h2>
          <JsonView value={e.error} />
        </section>
      )}
      <section className="card">
        {e.result === null || e.result === undefined ? (
          <>
            <h3>Result</h3>
            <p className="muted small">
              {terminal ? 'No result.' : 'The result appears when the execution ends.'}
            </p>
          </>
        ) : (
          <JsonView value={e.result} label="Result" />
        )}
      </section>
      <section className="card">
        <Output chunks={chunks} live={live} />
      </section>
      {(kids.length > 0 || !!children.error) && (
        <section>
          <h2>Children ({children.data?.pagination.total_items ?? kids.length})</h2>
          <ErrorBox error={children.error} title="Could not list the children" />
          <ExecutionTable rows={kids} empty={<Empty title="No children" />} />
        </section>
      )}
    </div>
  );
}
