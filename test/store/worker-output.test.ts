/** The output writer: batched rows, broadcasts with row ids, and no poison from deleted executions. */
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BusMessage, MemoryBus } from '../../src/bus/index.ts';
import { OutputWriter } from '../../src/services/worker/output-writer.ts';
import type { Store } from '../../src/store/database.ts';
import { executionOutput, executions } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { openTestStore } from '../support/store.ts';

describeBackend('output writer', () => {
  let store: Store;
  let close: () => Promise<void>;
  const bus = new MemoryBus();
  const seen: { execution_id: number; seq: number; data: string }[] = [];
  beforeAll(async () => {
    ({ store, close } = await openTestStore());
    await bus.subscribe(['notify.execution.output'], async (m: BusMessage) => {
      seen.push(m.payload as (typeof seen)[number]);
    });
  });
  afterAll(async () => {
    await bus.close();
    await close?.();
  });

  const newExecution = async () => {
    const [r] = await store.db
      .insert(executions)
      .values({ actionRef: 'x.y', runner: 'noop', status: 'running' })
      .returning({ id: executions.id });
    return r!.id;
  };

  it('joins adjacent chunks into rows and broadcasts each row with its id', async () => {
    const id = await newExecution();
    const w = new OutputWriter(store, bus, { flushMs: 10_000 });
    w.write(id, 'stdout', 'a');
    w.write(id, 'stdout', 'b');
    w.write(id, 'stderr', 'e');
    w.write(id, 'stdout', 'c');
    await w.close();
    const rows = await store.db.select().from(executionOutput).where(eq(executionOutput.executionId, id));
    expect(rows.sort((x, y) => x.id - y.id).map((r) => [r.stream, r.data])).toEqual([
      ['stdout', 'ab'],
      ['stderr', 'e'],
      ['stdout', 'c'],
    ]);
    await new Promise((r) => setTimeout(r, 20));
    expect(seen.filter((s) => s.execution_id === id).map((s) => s.seq)).toEqual(rows.map((r) => r.id));
  });

  it('flushes by size before the timer, and drops only the output of executions deleted meanwhile', async () => {
    const id = await newExecution();
    const gone = await newExecution();
    const w = new OutputWriter(store, bus, { flushMs: 10_000, flushBytes: 1024 });
    w.write(gone, 'stdout', 'lost');
    await store.db.delete(executions).where(eq(executions.id, gone));
    w.write(id, 'stdout', 'x'.repeat(2000));
    await new Promise((r) => setTimeout(r, 100));
    w.write(id, 'stdout', 'tail');
    await w.close();
    const rows = await store.db.select().from(executionOutput).where(eq(executionOutput.executionId, id));
    expect(rows.map((r) => r.data).join('')).toBe(`${'x'.repeat(2000)}tail`);
  });
});
