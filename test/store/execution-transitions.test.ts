import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { canTransition, EXECUTION_STATUSES, EXECUTION_TRANSITIONS } from '../../src/domain/status.ts';
import type { Store } from '../../src/store/database.ts';
import {
  IllegalTransitionError,
  transitionExecution,
  transitionExecutions,
} from '../../src/store/repositories/executions.ts';
import { executions } from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { openTestStore } from '../support/store.ts';

describeBackend('guarded execution transitions', () => {
  let store: Store;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ store, close } = await openTestStore());
  });
  afterAll(async () => close?.());

  const insert = async (status: string) => {
    const [r] = await store.db
      .insert(executions)
      .values({ actionRef: 'core.noop', runner: 'noop', status })
      .returning({ id: executions.id });
    return r!.id;
  };

  it('applies exactly the allowed transitions, for every pair of statuses', async () => {
    const seen: string[] = [];
    for (const from of EXECUTION_STATUSES) {
      for (const to of EXECUTION_STATUSES) {
        const id = await insert(from);
        if (canTransition(EXECUTION_TRANSITIONS, from, to)) {
          const row = await transitionExecution(store.db, id, [from], to);
          expect(row?.status, `${from} → ${to}`).toBe(to);
          if (EXECUTION_TRANSITIONS[to].length === 0) expect(row?.finishedAt).toBeInstanceOf(Date);
          seen.push(`${from}>${to}`);
        } else {
          await expect(transitionExecution(store.db, id, [from], to), `${from} → ${to}`).rejects.toThrow(
            IllegalTransitionError,
          );
          const [row] = await store.db.select().from(executions).where(eq(executions.id, id));
          expect(row!.status).toBe(from);
        }
      }
    }
    expect(seen.length).toBe(Object.values(EXECUTION_TRANSITIONS).reduce((n, t) => n + t.length, 0));
  });

  it('changes nothing when the row is not in the expected status (a lost race)', async () => {
    const id = await insert('succeeded');
    expect(await transitionExecution(store.db, id, ['running'], 'failed')).toBeNull();
    const [row] = await store.db.select().from(executions).where(eq(executions.id, id));
    expect(row!.status).toBe('succeeded');
  });

  it('lets exactly one of two racing completions win', async () => {
    for (let i = 0; i < 20; i++) {
      const id = await insert('running');
      const results = await Promise.all([
        transitionExecution(store.db, id, ['running'], 'succeeded', { result: { a: 1 } }),
        transitionExecution(store.db, id, ['running'], 'failed', { error: { message: 'x' } }),
      ]);
      expect(results.filter(Boolean)).toHaveLength(1);
    }
  });

  it('moves a batch in one statement, skipping the rows that moved already', async () => {
    const ids = [await insert('requested'), await insert('requested'), await insert('canceled')];
    const moved = await transitionExecutions(store.db, ids, ['requested'], 'scheduled');
    expect(moved.map((r) => r.id).sort()).toEqual(ids.slice(0, 2).sort());
  });
});
