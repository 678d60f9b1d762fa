/**
 * What the scenarios run: a `bench` pack with triggers, rules and workflows, created through the API
 * as a user would; and the database reads that turn a run into figures.
 */
import { sql } from 'drizzle-orm';
import type { Db } from '../../src/store/database.ts';
import type { ApiClient } from './client.ts';

export const PACK = 'bench';

export async function createPack(api: ApiClient): Promise<void> {
  await api.post('/api/v1/packs', { ref: PACK, label: 'Benchmark' });
}

/** A trigger `bench.<name>` and a rule `bench.<name>_rule` running `action` with `params`. */
export async function createRule(
  api: ApiClient,
  name: string,
  action: string,
  params: Record<string, unknown> = {},
): Promise<{ trigger: string; rule: string }> {
  const trigger = `${PACK}.${name}`;
  const rule = `${PACK}.${name}_rule`;
  await api.post('/api/v1/triggers', { ref: trigger });
  await api.post('/api/v1/rules', {
    ref: rule,
    trigger_ref: trigger,
    action_ref: action,
    action_params: params,
  });
  return { trigger, rule };
}

export async function createWorkflow(api: ApiClient, name: string, definition: unknown): Promise<string> {
  const ref = `${PACK}.${name}`;
  await api.post('/api/v1/workflows', { ref, label: name, definition });
  return ref;
}

/**
 * Posts `n` events of `trigger` in bulk requests of `batch`, `concurrency` requests at once; returns
 * the time of the first request (Date.now()).
 */
export async function postEvents(
  api: ApiClient,
  trigger: string,
  n: number,
  { batch = 1000, concurrency = 2 } = {},
): Promise<number> {
  const t0 = Date.now();
  let sent = 0;
  const lane = async () => {
    while (sent < n) {
      const size = Math.min(batch, n - sent);
      sent += size;
      await api.post('/api/v1/events', {
        events: Array.from({ length: size }, (_, i) => ({ trigger, payload: { i } })),
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return t0;
}

/** The rows of a raw query on either driver. */
export function rowsOf<T>(r: unknown): T[] {
  if (Array.isArray(r)) return r as T[];
  const rows = (r as { rows?: unknown } | null)?.rows;
  return Array.isArray(rows) ? (rows as T[]) : [];
}

export async function query<T>(db: Db, q: ReturnType<typeof sql>): Promise<T[]> {
  return rowsOf<T>(await db.execute(q));
}

/** Executions of a rule by status. */
export async function countByStatus(db: Db, ruleRef: string): Promise<Record<string, number>> {
  const rows = await query<{ status: string; n: number | string }>(
    db,
    sql`select status, count(*) as n from executions where rule_ref = ${ruleRef} group by status`,
  );
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
}

/** The latest `finished_at` of a rule's executions, in epoch milliseconds. */
export async function lastFinished(db: Db, ruleRef: string): Promise<number> {
  const [r] = await query<{ ms: number | string | null }>(
    db,
    sql`select extract(epoch from max(finished_at)) * 1000 as ms from executions where rule_ref = ${ruleRef}`,
  );
  return Number(r?.ms ?? Number.NaN);
}

export async function executionStatus(db: Db, id: number): Promise<string | undefined> {
  const [r] = await query<{ status: string }>(db, sql`select status from executions where id = ${id}`);
  return r?.status;
}

/** Milliseconds from creation to the end of an execution, from the database's timestamps. */
export async function executionSpan(db: Db, id: number): Promise<{ total: number; status: string }> {
  const [r] = await query<{ ms: number | string; status: string }>(
    db,
    sql`select extract(epoch from (finished_at - created_at)) * 1000 as ms, status from executions where id = ${id}`,
  );
  if (!r) throw new Error(`execution ${id} not found`);
  return { total: Number(r.ms), status: r.status };
}
