/**
 * The execution runtime of a process: the scheduler (with its completion handler and sweeper) and a
 * worker, each optional, so that the embedded process runs all of them and `attune scheduler` /
 * `attune worker` run their part. `stop()` stops the workers first (they finish or stop their
 * executions), then the scheduler side.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Bus } from '../../bus/bus.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Store } from '../../store/database.ts';
import type { RuleIndex } from '../rules-engine/rule-index.ts';
import type { RunnerConfig } from '../worker/runners/runner.ts';
import { WorkerService } from '../worker/worker-service.ts';
import { CompletionHandler, type CompletionHooks } from './completion.ts';
import type { RuntimeLogger } from './runtime.ts';
import { Scheduler, type SchedulerHooks } from './scheduler.ts';
import { Sweeper } from './sweeper.ts';

export { type CancelResult, cancelExecution } from './cancel.ts';
export { CompletionHandler, type CompletionHooks, EXECUTION_COMPLETED_TRIGGER } from './completion.ts';
export { DEADLINES, DEFAULT_TIMEOUT_SECONDS } from './runtime.ts';
export { Scheduler, type SchedulerHooks } from './scheduler.ts';
export { Sweeper } from './sweeper.ts';

export interface ExecutionRuntimeOptions {
  store: Store;
  bus: Bus;
  cipher: Cipher;
  log: RuntimeLogger & { child?(bindings: object): RuntimeLogger };
  /** Called after commits that wrote outbox rows. */
  kickOutbox: () => void;
  /** Run the scheduler, completion handler and sweeper. Default true. */
  scheduler?: boolean;
  /** Run a worker; `false` for none. Default a worker of capacity 8. */
  worker?: false | { capacity?: number; runnerConfig?: RunnerConfig };
  /** Installed packs (`<dataDir>/packs`). */
  packsDir: string;
  /** The repository's packs, the files of the shipped ones that are not installed locally. */
  builtinPacksDir: string;
  /** Shipped packs whose files may come from `builtinPacksDir`. */
  builtinPacks?: readonly string[];
  /** For `core.execution_completed` events. */
  ruleIndex?: RuleIndex;
  schedulerHooks?: Partial<SchedulerHooks>;
  completionHooks?: Partial<CompletionHooks>;
}

export interface ExecutionRuntime {
  scheduler: Scheduler | undefined;
  completion: CompletionHandler | undefined;
  sweeper: Sweeper | undefined;
  worker: WorkerService | undefined;
  stop(): Promise<void>;
}

/**
 * The directory of a pack's files on this machine, resolved to the real path (a pack upgrade that
 * switches the `<packsDir>/<ref>` link does not change the files under a running execution).
 */
export function packDirResolver(
  packsDir: string,
  builtinPacksDir: string,
  builtinPacks: readonly string[] = ['core'],
): (packRef: string) => string | null {
  return (packRef) => {
    const candidates = [path.join(packsDir, packRef)];
    if (builtinPacks.includes(packRef)) candidates.push(path.join(builtinPacksDir, packRef));
    for (const dir of candidates) {
      try {
        const real = fs.realpathSync(dir);
        if (fs.statSync(real).isDirectory()) return real;
      } catch {
        // not here
      }
    }
    return null;
  };
}

export async function startExecutionRuntime(opts: ExecutionRuntimeOptions): Promise<ExecutionRuntime> {
  const child = (component: string): RuntimeLogger => opts.log.child?.({ component }) ?? opts.log;
  const base = { store: opts.store, bus: opts.bus, kickOutbox: opts.kickOutbox };
  const rt: ExecutionRuntime = {
    scheduler: undefined,
    completion: undefined,
    sweeper: undefined,
    worker: undefined,
    async stop() {
      await rt.worker?.stop();
      await rt.sweeper?.stop();
      await rt.scheduler?.stop();
      await rt.completion?.stop();
    },
  };
  try {
    if (opts.scheduler !== false) {
      rt.scheduler = new Scheduler({
        ...base,
        log: child('scheduler'),
        ...(opts.schedulerHooks && { hooks: opts.schedulerHooks }),
      });
      rt.completion = new CompletionHandler({
        ...base,
        log: child('completion'),
        ...(opts.completionHooks && { hooks: opts.completionHooks }),
        ...(opts.ruleIndex && { ruleIndex: opts.ruleIndex }),
      });
      rt.sweeper = new Sweeper({ ...base, log: child('sweeper') });
      await rt.scheduler.start();
      await rt.completion.start();
      rt.sweeper.start();
    }
    if (opts.worker !== false) {
      rt.worker = new WorkerService({
        ...base,
        log: child('worker'),
        cipher: opts.cipher,
        packDir: packDirResolver(opts.packsDir, opts.builtinPacksDir, opts.builtinPacks),
        ...(opts.worker?.capacity !== undefined && { capacity: opts.worker.capacity }),
        ...(opts.worker?.runnerConfig && { runnerConfig: opts.worker.runnerConfig }),
        // The completion handler is in this process: ends that need no follow-up are followed up at once.
        ...(rt.completion &&
          !opts.completionHooks?.onExecutionCompleted && { followUpHere: { rules: opts.ruleIndex } }),
      });
      await rt.worker.start();
    }
    return rt;
  } catch (e) {
    await rt.stop().catch(() => {});
    throw e;
  }
}
