/**
 * A running execution runtime with the workflow host hooked in (scheduler, completion handler,
 * sweeper, workers, host), the core pack registered, and helpers to define and run workflows.
 */
import path from 'node:path';
import { and, asc, eq } from 'drizzle-orm';
import { loadPack } from '../../src/packs/loader.ts';
import { registerPack } from '../../src/packs/register.ts';
import { requestExecution } from '../../src/services/executions/request-execution.ts';
import { WorkflowHost } from '../../src/services/workflows/index.ts';
import type { ExecutionRow } from '../../src/store/repositories/executions.ts';
import {
  actions,
  executions,
  packs,
  workflowRuns,
  workflows,
  workflowTaskRuns,
} from '../../src/store/schema.ts';
import { parseWorkflow } from '../../src/workflow/definition.ts';
import { cipher, Runtime, type RuntimeOptions, TERMINAL } from './runtime-fixture.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

export class WorkflowRuntime {
  /** While true, the completion handler's hook drops completions (as if the process died right after). */
  static dropCompletions = false;

  private constructor(
    readonly rt: Runtime,
    readonly host: WorkflowHost,
  ) {}

  static async start(
    opts: RuntimeOptions = {},
    hostOpts: { pollIntervalMs?: number; recoveryIntervalMs?: number } = {},
  ): Promise<WorkflowRuntime> {
    let host: WorkflowHost | undefined;
    const rt = await Runtime.start({
      sweeper: true,
      capacity: 16,
      ...opts,
      schedulerHooks: {
        onWorkflow: async (e) => host?.schedulerHooks.onWorkflow(e),
        onInquiry: async (e) => host?.schedulerHooks.onInquiry(e),
      },
      completionHooks: {
        onChildCompleted: async (e, tx) => {
          if (!WorkflowRuntime.dropCompletions) await host?.completionHooks.onChildCompleted(e, tx);
        },
      },
    });
    host = new WorkflowHost({
      store: rt.store,
      bus: rt.bus,
      cipher,
      kickOutbox: () => rt.relay.kick(),
      pollIntervalMs: hostOpts.pollIntervalMs ?? 50,
      recoveryIntervalMs: hostOpts.recoveryIntervalMs ?? 300,
      recoveryGraceSeconds: 0.5,
    });
    await host.start();
    const loaded = loadPack(path.join(root, 'packs', 'core'), { allowSystem: true });
    if (!loaded.pack) throw new Error(`core pack: ${JSON.stringify(loaded.problems)}`);
    const core = loaded.pack;
    await rt.store.transaction((tx) =>
      registerPack(tx, core, { source: { type: 'builtin', location: 'packs/core' }, installedBy: null }),
    );
    return new WorkflowRuntime(rt, host);
  }

  get store() {
    return this.rt.store;
  }

  /** Stores a workflow (and its action) from a file-like document; returns its ref. */
  async workflow(ref: string, doc: Record<string, unknown>): Promise<string> {
    const { output_schema: outSchema, ...fileDoc } = doc;
    const parsed = parseWorkflow({ ref, ...fileDoc });
    if (!parsed.ok) throw new Error(`invalid test workflow ${ref}: ${JSON.stringify(parsed.problems)}`);
    const def = parsed.definition;
    const [pack] = await this.store.db.select().from(packs).where(eq(packs.id, this.rt.pack));
    const [action] = await this.store.db
      .insert(actions)
      .values({
        ref,
        packId: this.rt.pack,
        packRef: pack!.ref,
        name: ref.split('.').pop()!,
        label: ref,
        runner: 'workflow',
        paramSchema: def.parameters ?? {},
      })
      .returning();
    const { parameters: _p, output: _o, ...body } = doc;
    await this.store.db.insert(workflows).values({
      ref,
      packId: this.rt.pack,
      packRef: pack!.ref,
      actionId: action!.id,
      label: ref,
      paramSchema: def.parameters ?? null,
      outSchema: (outSchema as Record<string, unknown> | undefined) ?? null,
      definition: Object.fromEntries(Object.entries(body).filter(([k]) => k !== 'output_schema')),
    });
    return ref;
  }

  /** Requests an execution of `ref` as the API does; returns its id. */
  async run(ref: string, parameters: Record<string, unknown> = {}, createdBy = 'tester'): Promise<number> {
    const row = await this.store.transaction((tx) =>
      requestExecution(tx, cipher, { actionRef: ref, parameters, createdBy }),
    );
    this.rt.relay.kick();
    return row.id;
  }

  async finish(id: number, timeoutMs = 20_000): Promise<ExecutionRow> {
    const [row] = await this.rt.waitFor([id], TERMINAL, timeoutMs);
    return row!;
  }

  async waitStatus(id: number, statuses: string[], timeoutMs = 20_000): Promise<ExecutionRow> {
    const [row] = await this.rt.waitFor([id], statuses, timeoutMs);
    return row!;
  }

  /** Children of a workflow execution, oldest first. */
  async children(id: number): Promise<ExecutionRow[]> {
    return this.store.db
      .select()
      .from(executions)
      .where(eq(executions.parentId, id))
      .orderBy(asc(executions.id));
  }

  async taskRuns(id: number) {
    return this.store.db
      .select()
      .from(workflowTaskRuns)
      .where(eq(workflowTaskRuns.workflowExecutionId, id))
      .orderBy(asc(workflowTaskRuns.id));
  }

  async runRow(id: number) {
    const [r] = await this.store.db.select().from(workflowRuns).where(eq(workflowRuns.executionId, id));
    return r;
  }

  async childrenOf(id: number, task: string): Promise<ExecutionRow[]> {
    return this.store.db
      .select()
      .from(executions)
      .where(and(eq(executions.parentId, id), eq(executions.taskName, task)))
      .orderBy(asc(executions.id));
  }

  async stop(): Promise<void> {
    await this.host.stop();
    await this.rt.stop();
  }
}
