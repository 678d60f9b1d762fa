/**
 * Follows execution status broadcasts (`notify.execution.status`) so that a scenario can wait for
 * executions without polling the database. Broadcasts are best effort: every wait ends with a check
 * in the database, and a slow periodic check covers a lost broadcast.
 */
import type { Bus, Subscription } from '../../src/bus/bus.ts';
import { TOPICS } from '../../src/services/runtime/messages.ts';

export const TERMINAL = new Set(['succeeded', 'failed', 'timeout', 'canceled', 'abandoned']);

interface Waiter {
  done: () => boolean;
  resolve: () => void;
}

export class ExecutionWatch {
  /** Last status seen per execution id. */
  readonly status = new Map<number, string>();
  /** Terminal broadcasts per action ref (an execution counted once). */
  private readonly terminalByAction = new Map<string, number>();
  private readonly counted = new Set<number>();
  private waiters: Waiter[] = [];

  private constructor(private sub: Subscription | undefined) {}

  static async start(bus: Bus): Promise<ExecutionWatch> {
    const w = new ExecutionWatch(undefined);
    w.sub = await bus.subscribe([TOPICS.notifyStatus], async (msg) => {
      const p = msg.payload as { execution_id: number; status: string; action_ref: string };
      w.status.set(p.execution_id, p.status);
      if (TERMINAL.has(p.status) && !w.counted.has(p.execution_id)) {
        w.counted.add(p.execution_id);
        w.terminalByAction.set(p.action_ref, (w.terminalByAction.get(p.action_ref) ?? 0) + 1);
      }
      if (w.waiters.length) w.check();
    });
    return w;
  }

  terminalCount(actionRef: string): number {
    return this.terminalByAction.get(actionRef) ?? 0;
  }

  /** Forgets the counts (between phases of a scenario). */
  reset(): void {
    this.terminalByAction.clear();
  }

  private check(): void {
    const still: Waiter[] = [];
    for (const w of this.waiters)
      if (w.done()) w.resolve();
      else still.push(w);
    this.waiters = still;
  }

  /**
   * Resolves when `done()` holds — asked on every broadcast and, through `verify` (a database
   * check), every `verifyMs` — or rejects after `timeoutMs`.
   */
  async until(
    done: () => boolean,
    verify: () => Promise<boolean>,
    { timeoutMs = 120_000, verifyMs = 1000, what = 'executions' } = {},
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (done() && (await verify())) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(finish, Math.min(verifyMs, left));
        const w: Waiter = { done, resolve: finish };
        this.waiters.push(w);
        function finish() {
          clearTimeout(t);
          resolve();
        }
      });
      this.waiters = this.waiters.filter((w) => w.done !== done);
      if (await verify()) return;
    }
  }

  /** Resolves with the terminal status of execution `id`. */
  async terminal(
    id: number,
    verify: () => Promise<string | undefined>,
    timeoutMs = 120_000,
  ): Promise<string> {
    let status: string | undefined;
    await this.until(
      () => TERMINAL.has(this.status.get(id) ?? ''),
      async () => {
        const s = await verify();
        if (s && TERMINAL.has(s)) status = s;
        return status !== undefined;
      },
      { timeoutMs, verifyMs: 500, what: `execution ${id}` },
    );
    return status!;
  }

  async close(): Promise<void> {
    await this.sub?.close();
  }
}
