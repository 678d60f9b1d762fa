/**
 * A running execution runtime for tests: a fresh store of the backend under test, the in-process
 * bus, the outbox relay, the scheduler, the completion handler, optionally the sweeper, and workers.
 * Deadlines are shortened so that the tests of the sweeper take seconds, not minutes.
 */
import { eq, inArray } from 'drizzle-orm';
import { type BusMessage, MemoryBus, OutboxRelay } from '../../src/bus/index.ts';
import { Cipher } from '../../src/security/crypto.ts';
import { RuleIndex } from '../../src/services/rules-engine/rule-index.ts';
import { SECRET_MARKER } from '../../src/services/runtime/execution-secrets.ts';
import { CompletionHandler, type CompletionHooks } from '../../src/services/scheduler/completion.ts';
import type { Deadlines } from '../../src/services/scheduler/runtime.ts';
import { requestedMessage, writeOutboxMany } from '../../src/services/scheduler/runtime.ts';
import { Scheduler, type SchedulerHooks } from '../../src/services/scheduler/scheduler.ts';
import { Sweeper } from '../../src/services/scheduler/sweeper.ts';
import { WorkerService, type WorkerServiceOptions } from '../../src/services/worker/worker-service.ts';
import type { Store } from '../../src/store/database.ts';
import type { ExecutionRow } from '../../src/store/repositories/executions.ts';
import { actions, executionOutput, executionSecrets, executions, packs } from '../../src/store/schema.ts';
import { openTestStore } from '../support/store.ts';

export const cipher = new Cipher('runtime-tests');

/** Short deadlines (seconds) used by the tests. */
export const FAST: Deadlines = {
  requestedStale: 1,
  scheduleLease: 2,
  heartbeatInterval: 0.3,
  runLease: 1.5,
  policyRecheck: 30,
  timeoutGrace: 1,
  completionStale: 1,
};

export interface ActionSpec {
  ref: string;
  runner: string;
  entryPoint?: string;
  paramSchema?: Record<string, unknown>;
  timeoutSeconds?: number | null;
  retryPolicy?: Record<string, unknown> | null;
  concurrencyPolicy?: Record<string, unknown> | null;
  enabled?: boolean;
  meta?: Record<string, unknown>;
}

export interface RuntimeOptions {
  sweeper?: boolean;
  workers?: number;
  capacity?: number;
  deadlines?: Partial<Deadlines>;
  schedulerHooks?: Partial<SchedulerHooks>;
  completionHooks?: Partial<CompletionHooks>;
  worker?: Partial<WorkerServiceOptions>;
  /** Share an already open store (the caller closes it). */
  store?: Store;
  /** Give the completion handler a rule index (internal `core.execution_completed` events). */
  ruleIndex?: boolean;
}

export interface NewExecution {
  parameters?: Record<string, unknown>;
  secrets?: Record<string, unknown>;
  timeoutSeconds?: number;
  /** Skip the outbox message (simulate a lost `execution.requested`). */
  silent?: boolean;
  status?: string;
  parentId?: number;
}

export class Runtime {
  readonly bus = new MemoryBus();
  readonly relay: OutboxRelay;
  readonly scheduler: Scheduler;
  readonly completion: CompletionHandler;
  readonly sweeper: Sweeper | undefined;
  readonly ruleIndex: RuleIndex | undefined;
  readonly workers: WorkerService[] = [];
  /** Every status notification seen, in order. */
  readonly statuses: { id: number; status: string }[] = [];
  readonly outputs: { id: number; seq: number; data: string }[] = [];
  readonly deadlines: Deadlines;
  private packId = 0;
  private closers: (() => Promise<void>)[] = [];

  private constructor(
    readonly store: Store,
    private readonly opts: RuntimeOptions,
  ) {
    this.deadlines = { ...FAST, ...opts.deadlines };
    this.relay = new OutboxRelay(store, this.bus, { pollIntervalMs: 50 });
    const kickOutbox = () => this.relay.kick();
    const deps = { store, bus: this.bus, kickOutbox };
    this.scheduler = new Scheduler({
      ...deps,
      scheduleLeaseSeconds: this.deadlines.scheduleLease,
      policyRecheckSeconds: this.deadlines.policyRecheck,
      ...(opts.schedulerHooks && { hooks: opts.schedulerHooks }),
    });
    this.ruleIndex = opts.ruleIndex ? new RuleIndex(store.db) : undefined;
    this.completion = new CompletionHandler({
      ...deps,
      ...(opts.completionHooks && { hooks: opts.completionHooks }),
      ...(this.ruleIndex && { ruleIndex: this.ruleIndex }),
    });
    if (opts.sweeper) {
      this.sweeper = new Sweeper({ ...deps, intervalMs: 100, deadlines: this.deadlines, leaseSeconds: 3 });
    }
  }

  static async start(opts: RuntimeOptions = {}): Promise<Runtime> {
    let store = opts.store;
    let close: (() => Promise<void>) | undefined;
    if (!store) ({ store, close } = await openTestStore());
    const rt = new Runtime(store, opts);
    if (close) rt.closers.push(close);
    const [p] = await store.db
      .insert(packs)
      .values({
        ref: `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`,
        label: 'T',
        version: '1.0.0',
      })
      .returning({ id: packs.id });
    rt.packId = p!.id;
    await rt.bus.subscribe(['notify.execution.status'], async (m: BusMessage) => {
      const p = m.payload as { execution_id: number; status: string };
      rt.statuses.push({ id: p.execution_id, status: p.status });
    });
    await rt.bus.subscribe(['notify.execution.output'], async (m: BusMessage) => {
      const p = m.payload as { execution_id: number; seq: number; data: string };
      rt.outputs.push({ id: p.execution_id, seq: p.seq, data: p.data });
    });
    await rt.ruleIndex?.attach(rt.bus);
    rt.relay.start();
    await rt.scheduler.start();
    await rt.completion.start();
    rt.sweeper?.start();
    for (let i = 0; i < (opts.workers ?? 1); i++) await rt.addWorker();
    return rt;
  }

  async addWorker(over: Partial<WorkerServiceOptions> = {}): Promise<WorkerService> {
    const w = new WorkerService({
      store: this.store,
      bus: this.bus,
      kickOutbox: () => this.relay.kick(),
      cipher,
      packDir: () => null,
      capacity: this.opts.capacity ?? 8,
      heartbeatIntervalSeconds: this.deadlines.heartbeatInterval,
      runLeaseSeconds: this.deadlines.runLease,
      shutdownGraceMs: 2000,
      outputFlushMs: 20,
      runnerConfig: { killGraceMs: 500 },
      ...this.opts.worker,
      ...over,
    });
    await w.start();
    this.workers.push(w);
    return w;
  }

  get pack(): number {
    return this.packId;
  }

  async action(spec: ActionSpec): Promise<string> {
    const [pack] = await this.store.db.select().from(packs).where(eq(packs.id, this.packId));
    await this.store.db.insert(actions).values({
      ref: spec.ref,
      packId: this.packId,
      packRef: pack!.ref,
      name: spec.ref.split('.').pop()!,
      label: spec.ref,
      runner: spec.runner,
      entryPoint: spec.entryPoint ?? '',
      paramSchema: spec.paramSchema ?? {},
      timeoutSeconds: spec.timeoutSeconds ?? null,
      retryPolicy: spec.retryPolicy ?? null,
      concurrencyPolicy: spec.concurrencyPolicy ?? null,
      enabled: spec.enabled ?? true,
      meta: spec.meta ?? {},
    });
    return spec.ref;
  }

  /** Creates executions in `requested` (with their outbox messages unless silent), in one transaction. */
  async request(actionRef: string, n = 1, e: NewExecution = {}): Promise<number[]> {
    const [action] = await this.store.db.select().from(actions).where(eq(actions.ref, actionRef));
    const ids = await this.store.transaction(async (tx) => {
      const rows = await tx
        .insert(executions)
        .values(
          Array.from({ length: n }, () => ({
            actionRef,
            runner: action?.runner ?? 'noop',
            parameters: {
              ...e.parameters,
              ...Object.fromEntries(Object.keys(e.secrets ?? {}).map((k) => [k, { ...SECRET_MARKER }])),
            },
            status: e.status ?? 'requested',
            ...(e.timeoutSeconds !== undefined && { timeoutSeconds: e.timeoutSeconds }),
            ...(e.parentId !== undefined && { parentId: e.parentId }),
          })),
        )
        .returning({ id: executions.id });
      const created = rows.map((r) => r.id).sort((a, b) => a - b);
      if (e.secrets) {
        await tx
          .insert(executionSecrets)
          .values(
            created.map((id) => ({ executionId: id, ciphertext: cipher.encrypt(JSON.stringify(e.secrets)) })),
          );
      }
      if (!e.silent) await writeOutboxMany(tx, created.map(requestedMessage));
      return created;
    });
    this.relay.kick();
    return ids;
  }

  async get(id: number): Promise<ExecutionRow> {
    const [row] = await this.store.db.select().from(executions).where(eq(executions.id, id));
    if (!row) throw new Error(`no execution ${id}`);
    return row;
  }

  async all(ids: number[]): Promise<ExecutionRow[]> {
    const rows = await this.store.db.select().from(executions).where(inArray(executions.id, ids));
    return rows.sort((a, b) => a.id - b.id);
  }

  async output(id: number): Promise<{ id: number; stream: string; data: string; truncated: boolean }[]> {
    const rows = await this.store.db
      .select({
        id: executionOutput.id,
        stream: executionOutput.stream,
        data: executionOutput.data,
        truncated: executionOutput.truncated,
      })
      .from(executionOutput)
      .where(eq(executionOutput.executionId, id));
    return rows.sort((a, b) => a.id - b.id);
  }

  /** Waits until every execution of `ids` is in one of `statuses`. */
  async waitFor(ids: number[], statuses: string[], timeoutMs = 15_000): Promise<ExecutionRow[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const rows = await this.all(ids);
      if (rows.length === ids.length && rows.every((r) => statuses.includes(r.status))) return rows;
      if (Date.now() > deadline) {
        throw new Error(
          `timed out waiting for ${statuses.join('|')}: ${rows.map((r) => `${r.id}=${r.status}`).join(', ')}`,
        );
      }
      await sleep(25);
    }
  }

  /** Waits until `pred` holds (polling). */
  async until<T>(
    what: string,
    fn: () => Promise<T | undefined | null | false>,
    timeoutMs = 15_000,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    for (const w of this.workers) await w.stop();
    await this.sweeper?.stop();
    await this.scheduler.stop();
    await this.completion.stop();
    await this.ruleIndex?.detach();
    await this.relay.stop();
    await this.bus.close();
    for (const c of this.closers) await c();
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export const TERMINAL = ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'];

/** Whether a process is alive (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
