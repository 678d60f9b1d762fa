/**
 * A workflow execution seen from the API: `/api/v1/executions/{id}/…`
 *
 * - `tasks`: its task runs (each attempt and each with-items item), with status, timing, input,
 *   result and the child execution that carried it out;
 * - `graph`: the nodes and edges of the definition it runs (the snapshot taken when it started), each
 *   node with its live state, each edge with how often it was taken — what a UI draws;
 * - `pause`, `resume`: the operations of the workflow engine.
 *
 * These routes are for workflow executions: any other execution is a 409 (it has no tasks and no
 * graph), an unknown one a 404. Rerunning chosen tasks is `POST /api/v1/executions/{id}/rerun` with
 * `tasks` (see `rerunWorkflowTasks`).
 */
import { and, asc, count, desc, eq, inArray, isNotNull, type SQL } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { conflict, notFound, validationError } from '../../../domain/errors.ts';
import type { ExecutionRow } from '../../../store/repositories/executions.ts';
import { executions, workflowRuns, workflows, workflowTaskRuns } from '../../../store/schema.ts';
import { buildGraph, type LiveGraph, liveGraph, parseWorkflowResource } from '../../../workflow/index.ts';
import type { WorkflowState } from '../../../workflow/state.ts';
import {
  openState,
  pauseWorkflow,
  rerunWorkflow,
  resumeWorkflow,
  type WorkflowDeps,
} from '../../workflows/index.ts';
import { asSnapshot } from '../../workflows/run-store.ts';
import { Data, IdParams, iso, List, listBody, PageQuery, pageOf, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';
import { Execution, executionToApi, parseStatuses } from './executions.ts';

/** What the workflow operations need, from the API's context. */
export function workflowDeps(app: ApiApp): WorkflowDeps {
  const ctx = app.ctx;
  return {
    store: ctx.store,
    cipher: ctx.cipher,
    bus: ctx.bus,
    kickOutbox: () => ctx.outbox?.kick(),
    log: ctx.log,
  };
}

/** Statuses a task run can have. */
export const TASK_RUN_STATUSES = [
  'running',
  'asking',
  'paused',
  'waiting',
  'queued',
  'succeeded',
  'failed',
  'timeout',
  'canceled',
] as const;

const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const NullableTime = Type.Union([Timestamp, Type.Null()]);

const TaskRun = Type.Object({
  id: Type.Integer(),
  task_name: Type.String(),
  run_key: Type.String({
    description: '`task#entry`, `task#entry.item` for an item, `…@attempt` for a retry',
  }),
  item_index: Type.Union([Type.Integer(), Type.Null()], { description: 'The item of a with-items task' }),
  attempt: Type.Integer(),
  status: Type.String({ description: TASK_RUN_STATUSES.join(', ') }),
  execution_id: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The child execution that carried the run out (an action, an inquiry, a sub-workflow)',
  }),
  input: Type.Unknown({ description: 'The rendered input (secret values shown as {"$secret": true})' }),
  result: Type.Unknown(),
  started_at: NullableTime,
  finished_at: NullableTime,
  duration_ms: NullableInt,
});

const TaskRunQuery = Type.Object(
  {
    ...PageQuery,
    task: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Runs of this task only' })),
    status: Type.Optional(
      Type.String({ maxLength: 200, description: `Comma-separated; any of ${TASK_RUN_STATUSES.join(', ')}` }),
    ),
  },
  { additionalProperties: false },
);

const ItemsProgress = Type.Object({
  total: Type.Integer(),
  done: Type.Integer({ description: 'Items finished, whatever their outcome' }),
  succeeded: Type.Integer(),
  failed: Type.Integer({ description: 'Failed, timed out or canceled' }),
  running: Type.Integer(),
  pending: Type.Integer(),
});

const NodeState = Type.Object({
  status: Type.String({
    description:
      'Of the latest entry of the task: not_run, waiting_join, pending, delayed, running, succeeded, failed, timeout, canceled',
  }),
  entries: Type.Integer({ description: 'How many times the task was entered' }),
  runs: Type.Integer({ description: 'Task runs recorded: attempts and items included' }),
  latest: Type.Union([Type.String(), Type.Null()], { description: 'Key of the latest entry' }),
  run_key: Type.Union([Type.String(), Type.Null()]),
  attempt: NullableInt,
  started_at: NullableTime,
  finished_at: NullableTime,
  items: Type.Union([ItemsProgress, Type.Null()], { description: 'With-items progress of the latest entry' }),
  join_arrived: Type.Array(Type.String(), { description: 'Inbound tasks arrived at a join still waiting' }),
  last_execution_id: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The child execution of the latest run of the task',
  }),
});

const GraphNode = Type.Object({
  id: Type.String({ description: 'The task name' }),
  action: Type.String(),
  description: Type.Union([Type.String(), Type.Null()]),
  start: Type.Boolean(),
  join: Type.Union([Type.Literal('all'), Type.Integer(), Type.Null()]),
  with_items: Type.Boolean(),
  concurrency: NullableInt,
  retry: NullableInt,
  timeout: Type.Union([Type.Number(), Type.Null()]),
  delay: Type.Union([Type.Number(), Type.Null()]),
  state: NodeState,
});

const GraphEdge = Type.Object({
  id: Type.String(),
  from: Type.String(),
  to: Type.Union([Type.String(), Type.Null()], { description: 'Null for fail and noop' }),
  special: Type.Union([Type.Literal('fail'), Type.Literal('noop'), Type.Literal('retry'), Type.Null()]),
  transition: Type.Integer({ description: "Index of the transition in the task's next" }),
  condition: Type.Union([Type.String(), Type.Null()]),
  label: Type.String(),
  publish: Type.Array(Type.String()),
  taken: Type.Integer({ description: 'How many times the transition led to its target' }),
});

const Graph = Type.Object({
  execution_id: Type.Integer(),
  workflow_ref: Type.String(),
  workflow_version: Type.Union([Type.String(), Type.Null()]),
  status: Type.String({
    description:
      "The workflow's status in its engine (running, pausing, paused, failing, canceling, succeeded, failed, canceled), or the execution's before it starts",
  }),
  execution_status: Type.String(),
  nodes: Type.Array(GraphNode),
  edges: Type.Array(GraphEdge),
});

const NoBody = Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()], {
  description: 'No body (or `{}`)',
});

type TaskRunRow = typeof workflowTaskRuns.$inferSelect;
const taskRunToApi = (r: TaskRunRow): Static<typeof TaskRun> => ({
  id: r.id,
  task_name: r.taskName,
  run_key: r.runKey,
  item_index: r.itemIndex,
  attempt: r.attempt,
  status: r.status,
  execution_id: r.executionId,
  input: r.input ?? null,
  result: r.result ?? null,
  started_at: iso(r.startedAt),
  finished_at: iso(r.finishedAt),
  duration_ms:
    r.startedAt && r.finishedAt ? Math.max(0, r.finishedAt.getTime() - r.startedAt.getTime()) : null,
});

const tags = ['executions'];
const err = { $ref: 'ErrorBody#' };

/**
 * Reruns chosen tasks of a failed or canceled workflow execution: a new execution (`rerun_of` = `id`)
 * that reuses what succeeded (results, published variables, succeeded items) and runs the named tasks
 * again — or, with `tasks: []`, the ones that failed. For `POST /api/v1/executions/{id}/rerun`.
 */
export function rerunWorkflowTasks(
  app: ApiApp,
  id: number,
  b: { tasks?: string[] | undefined; reset_items?: string[] | undefined },
  by: string | null,
): Promise<ExecutionRow> {
  return rerunWorkflow(workflowDeps(app), id, { tasks: b.tasks, resetItems: b.reset_items, by });
}

export function registerWorkflowRunRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  /** The workflow execution `id`: 404 unknown, 409 not a workflow. */
  const workflowExecution = async (id: number): Promise<ExecutionRow> => {
    const [e] = await db().select().from(executions).where(eq(executions.id, id));
    if (!e) throw notFound('execution', id);
    if (e.runner !== 'workflow')
      throw conflict(
        `execution ${id} runs action '${e.actionRef}' (runner '${e.runner}'), not a workflow: it has no tasks and no graph`,
        { id, runner: e.runner },
      );
    return e;
  };

  app.get(
    '/api/v1/executions/:id/tasks',
    {
      config: { permission: ['executions', 'read'] },
      schema: {
        tags,
        summary: 'List the task runs of a workflow execution',
        description:
          'Every run of every task — each retry attempt and each with-items item is a run — in the order ' +
          'they were created, with status, timing, input, result and the child execution that carried ' +
          'it out. Filters: `task`, `status` (comma-separated). A workflow that has not started has none ' +
          'yet (an empty list). 404 for an unknown execution; 409 for an execution that is not a workflow.',
        params: IdParams,
        querystring: TaskRunQuery,
        response: { 200: List(TaskRun), 400: err, 404: err, 409: err },
      },
    },
    async (req) => {
      const id = req.params.id;
      const q = req.query;
      const statuses = q.status === undefined ? undefined : parseStatuses(q.status, TASK_RUN_STATUSES);
      await workflowExecution(id);
      const page = pageOf(q);
      const where: SQL[] = [eq(workflowTaskRuns.workflowExecutionId, id)];
      if (q.task !== undefined) where.push(eq(workflowTaskRuns.taskName, q.task));
      if (statuses) where.push(inArray(workflowTaskRuns.status, statuses));
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        db()
          .select()
          .from(workflowTaskRuns)
          .where(cond)
          .orderBy(asc(workflowTaskRuns.id))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(workflowTaskRuns).where(cond),
      ]);
      return listBody(rows.map(taskRunToApi), page, total?.n ?? 0);
    },
  );

  app.get(
    '/api/v1/executions/:id/graph',
    {
      config: { permission: ['executions', 'read'] },
      schema: {
        tags,
        summary: 'Get the task graph of a workflow execution, with its live state',
        description:
          'The nodes (tasks) and edges (transitions, labelled with their conditions) of the definition the ' +
          'execution runs — the snapshot taken when it started, so later edits of the workflow do not ' +
          'show — each node with its live state (status, entries, runs, with-items progress, the child ' +
          'execution of its latest run) and each edge with how often it was taken. Before the workflow ' +
          'starts, its current definition with every node `not_run`. 404 for an unknown execution; 409 ' +
          'for an execution that is not a workflow (or whose workflow was deleted before it started).',
        params: IdParams,
        response: { 200: Data(Graph), 400: err, 404: err, 409: err },
      },
    },
    async (req) => {
      const id = req.params.id;
      const e = await workflowExecution(id);
      const [run] = await db().select().from(workflowRuns).where(eq(workflowRuns.executionId, id));
      if (!run) {
        const [w] = await db().select().from(workflows).where(eq(workflows.ref, e.actionRef));
        if (!w)
          throw conflict(
            `workflow execution ${id} never started and its workflow '${e.actionRef}' no longer exists: there is no graph to show`,
            { id, status: e.status },
          );
        const parsed = parseWorkflowResource({
          definition: w.definition,
          param_schema: w.paramSchema ?? null,
        });
        if (!parsed.ok)
          throw conflict(`workflow '${w.ref}' is not valid: its graph cannot be drawn`, {
            id,
            problems: parsed.problems,
          });
        const g = buildGraph(parsed.definition);
        return {
          data: {
            execution_id: id,
            workflow_ref: w.ref,
            workflow_version: w.version,
            status: e.status,
            execution_status: e.status,
            nodes: g.nodes.map((n) => ({ ...n, state: notRun() })),
            edges: g.edges.map((x) => ({ ...x, taken: 0 })),
          },
        };
      }
      const snapshot = asSnapshot(run.definition);
      const parsed = parseWorkflowResource({
        definition: snapshot.definition,
        param_schema: snapshot.param_schema,
      });
      if (!parsed.ok)
        throw conflict(`the definition workflow execution ${id} started with cannot be read`, {
          id,
          problems: parsed.problems,
        });
      const state: WorkflowState = openState(app.ctx.cipher, run.state).state;
      const live: LiveGraph = liveGraph(parsed.definition, state);
      const [runs, last] = await Promise.all([
        db()
          .select({ task: workflowTaskRuns.taskName, n: count() })
          .from(workflowTaskRuns)
          .where(eq(workflowTaskRuns.workflowExecutionId, id))
          .groupBy(workflowTaskRuns.taskName),
        db()
          .selectDistinctOn([workflowTaskRuns.taskName], {
            task: workflowTaskRuns.taskName,
            executionId: workflowTaskRuns.executionId,
          })
          .from(workflowTaskRuns)
          .where(and(eq(workflowTaskRuns.workflowExecutionId, id), isNotNull(workflowTaskRuns.executionId)))
          .orderBy(workflowTaskRuns.taskName, desc(workflowTaskRuns.id)),
      ]);
      const runCount = new Map(runs.map((r) => [r.task, r.n]));
      const lastChild = new Map(last.map((r) => [r.task, r.executionId]));
      return {
        data: {
          execution_id: id,
          workflow_ref: run.workflowRef,
          workflow_version: snapshot.version || null,
          status: live.status,
          execution_status: e.status,
          nodes: live.nodes.map((n) => {
            const { items, ...rest } = n.state;
            return {
              ...n,
              state: {
                ...rest,
                runs: runCount.get(n.id) ?? 0,
                items: items && {
                  total: items.total,
                  done: items.succeeded + items.failed,
                  succeeded: items.succeeded,
                  failed: items.failed,
                  running: items.running,
                  pending: items.pending,
                },
                last_execution_id: lastChild.get(n.id) ?? null,
              },
            };
          }),
          edges: live.edges,
        },
      };
    },
  );

  for (const op of ['pause', 'resume'] as const) {
    app.post(
      `/api/v1/executions/:id/${op}`,
      {
        config: { permission: ['executions', 'execute'] },
        schema: {
          tags,
          summary: op === 'pause' ? 'Pause a workflow execution' : 'Resume a paused workflow execution',
          description:
            op === 'pause'
              ? 'No new task starts; the running ones finish (running sub-workflows pause too) and open ' +
                'inquiries stay open. The workflow is `pausing`, then `paused` once nothing runs. Pausing a ' +
                'workflow that is already pausing or paused changes nothing (200). 409 for a finished ' +
                'workflow, one that is failing or canceling, one not started yet, or an execution that is ' +
                'not a workflow.'
              : 'The tasks whose turn came meanwhile start; paused sub-workflows resume. Resuming a workflow ' +
                'that runs changes nothing (200). 409 for a finished workflow, one not started yet, or an ' +
                'execution that is not a workflow.',
          params: IdParams,
          body: NoBody,
          response: { 200: Data(Execution), 400: err, 404: err, 409: err },
        },
      },
      async (req) => {
        const by = req.principal?.login ?? 'unknown';
        const deps = workflowDeps(app);
        const r =
          op === 'pause'
            ? await pauseWorkflow(deps, req.params.id, by)
            : await resumeWorkflow(deps, req.params.id, by);
        return { data: executionToApi(r.execution) };
      },
    );
  }
}

function notRun(): Static<typeof NodeState> {
  return {
    status: 'not_run',
    entries: 0,
    runs: 0,
    latest: null,
    run_key: null,
    attempt: null,
    started_at: null,
    finished_at: null,
    items: null,
    join_arrived: [],
    last_execution_id: null,
  };
}

/** 400 when a rerun body mixes the task rerun of a workflow with new parameters. */
export function checkRerunBody(b: {
  tasks?: unknown;
  reset_items?: unknown;
  parameters?: unknown;
  timeout_seconds?: unknown;
}): void {
  if (b.tasks === undefined && b.reset_items === undefined) return;
  const mixed = (['parameters', 'timeout_seconds'] as const).filter((k) => b[k] !== undefined);
  if (mixed.length)
    throw validationError(
      `'tasks' and 'reset_items' rerun a workflow with its own parameters; ${mixed.map((k) => `'${k}'`).join(' and ')} cannot be given with them`,
      { fields: mixed },
    );
}
