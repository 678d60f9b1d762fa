/**
 * The statements of the hot paths, on both stores: the PGlite client that runs a statement in one
 * call with prepared statements, `insertRows` (one parameter per column), and guarded transitions
 * written without the query builder. What they return must be exactly what the query builder and
 * `PGlite.query` return.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../src/store/database.ts';
import { fastPglite, toText } from '../../src/store/pglite-client.ts';
import { insertRows } from '../../src/store/repositories/bulk.ts';
import { IllegalTransitionError, transitionExecutions } from '../../src/store/repositories/executions.ts';
import { events, executions, outbox, packs, triggers } from '../../src/store/schema.ts';
import { probePostgres } from '../support/postgres.ts';
import { openTestStore } from '../support/store.ts';

const pgDown = await probePostgres();
if (pgDown && process.env.CI === 'true') throw new Error(`PostgreSQL unreachable under CI=true: ${pgDown}`);

describe('the PGlite client', () => {
  let raw: PGlite;
  let pg: PGlite;
  beforeAll(async () => {
    raw = await PGlite.create();
    pg = fastPglite(raw);
    await pg.exec(`create table t (id bigserial primary key, j jsonb, ts timestamptz default now(),
                   tags text[], b boolean, n numeric, i integer, bytes bytea)`);
  });
  afterAll(async () => {
    await raw.close();
  });

  it('returns what PGlite.query returns, parameters of every kind included', async () => {
    const params = [
      JSON.stringify({ a: 'q"uo\\te', n: [1, null] }),
      ['x', 'y"z', 'back\\slash', null],
      true,
      '1.50',
      42,
      new Uint8Array([0, 1, 254, 255]),
    ];
    const text = 'insert into t (j, tags, b, n, i, bytes) values ($1, $2, $3, $4, $5, $6) returning *';
    const fast = await pg.query<{ id: number }>(text, params);
    const slow = await raw.query('select * from t where id = $1', [fast.rows[0]!.id]);
    expect(fast.rows).toEqual(slow.rows);
    expect(fast.rows[0]).toMatchObject({
      j: { a: 'q"uo\\te', n: [1, null] },
      tags: ['x', 'y"z', 'back\\slash', null],
      b: true,
      n: '1.50',
      i: 42,
    });
    expect(fast).toMatchObject({ command: 'INSERT', affectedRows: 1, rowCount: 1 });
    expect(fast.fields.map((f) => f.name)).toEqual(['id', 'j', 'ts', 'tags', 'b', 'n', 'i', 'bytes']);
    const arrays = await pg.query<[number]>('select $1::int + 1', ['41'], { rowMode: 'array' });
    expect(arrays.rows).toEqual([[42]]);
  });

  it('reports errors with the statement, and the session goes on', async () => {
    await expect(pg.query('select * from nowhere where x = $1', [1])).rejects.toMatchObject({
      code: '42P01',
      query: 'select * from nowhere where x = $1',
    });
    await expect(pg.query('select $1::int', ['abc'])).rejects.toThrow(/invalid input syntax/);
    // The failed parse left no statement behind: the same text works once it is valid.
    expect((await pg.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('carries text of any size and script both ways, and the fields of an error as PGlite gives them', async () => {
    const text = `naïve — 日本語 🙂 ${'x'.repeat(300_000)} \u00e9\u0301 end`;
    const r = await pg.query<{ s: string; len: number; nul: null }>(
      'select $1::text as s, octet_length($1::text) as len, $2::text as nul',
      [text, null],
    );
    expect(r.rows).toEqual([{ s: text, len: Buffer.byteLength(text), nul: null }]);
    await pg.exec('create table uq (k text primary key, v int not null)');
    await pg.query('insert into uq values ($1, 1)', ['é🙂']);
    const fields = (e: unknown) => {
      const { severity, code, detail, constraint, table, column, schema, routine } = e as Record<
        string,
        unknown
      >;
      return { severity, code, detail, constraint, table, column, schema, routine };
    };
    for (const [sql, params] of [
      ['insert into uq values ($1, 2)', ['é🙂']],
      ['insert into uq values ($1, $2)', ['other', null]],
    ] as const) {
      const fast = await pg.query(sql, [...params]).catch((e: unknown) => e);
      const slow = await raw.query(sql, [...params]).catch((e: unknown) => e);
      expect(fast).toBeInstanceOf(Error);
      expect((fast as Error).message).toBe((slow as Error).message);
      expect(fields(fast)).toEqual(fields(slow));
    }
    expect(
      fields(await pg.query('insert into uq values ($1, 2)', ['é🙂']).catch((e: unknown) => e)),
    ).toMatchObject({ code: '23505', constraint: 'uq_pkey', detail: 'Key (k)=(é🙂) already exists.' });
  });

  it('keeps prepared statements bounded: old ones are closed, every statement still runs', async () => {
    for (let i = 0; i < 450; i++) {
      const r = await pg.query(`select ${i}::int as v, $1::text as s`, [`p${i}`]);
      expect(r.rows).toEqual([{ v: i, s: `p${i}` }]);
    }
    const prepared = await raw.query<{ n: number }>('select count(*)::int as n from pg_prepared_statements');
    expect(prepared.rows[0]!.n).toBeLessThanOrEqual(401);
    expect((await pg.query('select 0::int as v, $1::text as s', ['again'])).rows).toEqual([
      { v: 0, s: 'again' },
    ]);
  });

  it('runs statements in transactions: committed, rolled back, refused once closed', async () => {
    await pg.transaction(async (tx) => {
      await tx.query('insert into t (i) values ($1)', [1001]);
    });
    await expect(
      pg.transaction(async (tx) => {
        await tx.query('insert into t (i) values ($1)', [1002]);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    const rows = await pg.query<{ i: number }>('select i from t where i > 1000 order by i');
    expect(rows.rows.map((r) => r.i)).toEqual([1001]);
    let kept: { query: PGlite['query'] } | undefined;
    await pg.transaction(async (tx) => {
      kept = tx;
    });
    await expect(kept!.query('select 1')).rejects.toThrow(/closed/);
  });

  it('runs a statement made outside a transaction after it, never inside it', async () => {
    await pg.exec('create table solo (id int primary key)');
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const tx = pg
      .transaction(async (t) => {
        await t.query('insert into solo values (1)');
        await held;
        throw new Error('rolled back');
      })
      .catch((e: Error) => e.message);
    await sleep(5);
    // Made while the transaction is open: it waits, and is not rolled back with it.
    const solo = pg.query('insert into solo values (2)');
    await sleep(20);
    release();
    expect(await tx).toBe('rolled back');
    await solo;
    expect((await pg.query<{ id: number }>('select id from solo')).rows).toEqual([{ id: 2 }]);
  });

  it('writes parameters in PostgreSQL text form', () => {
    expect(toText(null)).toBeNull();
    expect(toText(false)).toBe('f');
    expect(toText(new Date('2030-01-02T03:04:05.678Z'))).toBe('2030-01-02T03:04:05.678Z');
    expect(toText([1, [2, 3], null, 'a,b'])).toBe('{"1",{"2","3"},NULL,"a,b"}');
    expect(toText({ a: 1 })).toBe('{"a":1}');
  });
});

const backends: ('pglite' | 'postgres')[] = pgDown ? ['pglite'] : ['pglite', 'postgres'];

for (const backend of backends) {
  describe(`bulk statements on ${backend}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeAll(async () => {
      ({ store, close: dispose } = await openTestStore(backend));
      const [pack] = await store.db
        .insert(packs)
        .values({ ref: 'fp', label: 'fp', version: '1.0.0', source: { type: 'api' } })
        .returning();
      await store.db
        .insert(triggers)
        .values({ ref: 'fp.t', packId: pack!.id, packRef: 'fp', name: 't', label: 't' });
    });
    afterAll(async () => dispose?.());

    it('inserts rows in order and returns them as the query builder reads them', async () => {
      const rows = await insertRows(
        store.db,
        events,
        [
          {
            triggerRef: 'fp.t',
            payload: { a: [1, 'two'] },
            triggerParams: {},
            source: 'api',
            createdBy: null,
          },
          { triggerRef: 'fp.t', payload: null, triggerParams: { k: 'v' }, source: 'api', createdBy: 'me' },
          { triggerRef: 'fp.t', payload: 'text', triggerParams: {}, source: 'api', createdBy: null },
        ],
        { returning: 'all', jsonNull: true },
      );
      expect(rows.map((r) => r.payload)).toEqual([{ a: [1, 'two'] }, null, 'text']);
      const read = await store.db.select().from(events).where(eq(events.id, rows[1]!.id));
      expect(read[0]).toEqual(rows[1]);
      const [{ isNull } = { isNull: undefined }] = (
        (await store.db.execute(
          sql`select payload is null as "isNull" from events where id = ${rows[1]!.id}`,
        )) as unknown as { rows: { isNull: boolean }[] }
      ).rows;
      expect(isNull).toBe(false); // the JSON value null, not SQL NULL
      expect(rows[0]!.id).toBeLessThan(rows[1]!.id);
      expect(rows[1]!.id).toBeLessThan(rows[2]!.id);
    });

    it('groups rows of different shapes, with SQL expressions shared by a group', async () => {
      // In one transaction: now() is the same for every statement.
      const rows = await store.transaction((tx) =>
        insertRows(
          tx,
          executions,
          [
            {
              actionRef: 'fp.a',
              runner: 'noop',
              status: 'running',
              startedAt: sql`now() - make_interval(secs => ${30})`,
            },
            { actionRef: 'fp.b', runner: 'noop', status: 'requested' },
            {
              actionRef: 'fp.c',
              runner: 'noop',
              status: 'running',
              startedAt: sql`now() - make_interval(secs => ${30})`,
            },
            {
              actionRef: 'fp.d',
              runner: 'noop',
              status: 'running',
              startedAt: sql`now() - make_interval(secs => ${60})`,
            },
          ],
          { returning: ['actionRef', 'status', 'startedAt', 'parameters', 'attempt'] },
        ),
      );
      expect(rows.map((r) => r.actionRef).sort()).toEqual(['fp.a', 'fp.b', 'fp.c', 'fp.d']);
      const at = (ref: string) => rows.find((r) => r.actionRef === ref)!.startedAt!.getTime();
      expect(at('fp.a')).toBe(at('fp.c'));
      expect(at('fp.a') - at('fp.d')).toBe(30_000); // each group its own expression
      for (const r of rows) {
        expect(r.parameters).toEqual({});
        expect(r.attempt).toBe(1);
        expect(r.startedAt === null).toBe(r.status === 'requested');
      }
    });

    it('inserts many rows with one parameter per column, in order', async () => {
      const rows = await insertRows(
        store.db,
        outbox,
        Array.from({ length: 300 }, (_, i) => ({ topic: `fp.many`, payload: { i, text: `"${i}"\\` } })),
        { returning: ['id', 'payload'] },
      );
      expect(rows.map((r) => (r.payload as { i: number }).i)).toEqual(
        Array.from({ length: 300 }, (_, i) => i),
      );
      expect(rows[7]!.payload).toEqual({ i: 7, text: '"7"\\' });
      const ids = rows.map((r) => r.id);
      expect([...ids].sort((a, b) => a - b)).toEqual(ids);
    });

    it('skips or updates conflicting rows', async () => {
      const [e] = await insertRows(
        store.db,
        events,
        [{ triggerRef: 'fp.t', payload: {}, triggerParams: {}, source: 'api', createdBy: null }],
        { returning: ['id'] },
      );
      const first = await insertRows(
        store.db,
        outbox,
        [{ id: 9_000_001, topic: 'fp.one', payload: { v: 1 } }],
        {
          returning: ['id'],
          onConflictDoNothing: [outbox.id],
        },
      );
      const again = await insertRows(
        store.db,
        outbox,
        [
          { id: 9_000_001, topic: 'fp.one', payload: { v: 2 } },
          { id: 9_000_002, topic: 'fp.two', payload: { v: 3 } },
        ],
        { returning: ['id'], onConflictDoNothing: [outbox.id] },
      );
      expect(first).toEqual([{ id: 9_000_001 }]);
      expect(again).toEqual([{ id: 9_000_002 }]);
      await insertRows(store.db, outbox, [{ id: 9_000_001, topic: 'fp.one', payload: { v: 4 } }], {
        onConflictDoUpdate: { target: [outbox.id], set: sql`payload = excluded.payload` },
      });
      const [row] = await store.db.select().from(outbox).where(eq(outbox.id, 9_000_001));
      expect(row!.payload).toEqual({ v: 4 });
      expect(e!.id).toBeGreaterThan(0);
    });

    it('guarded transitions: only rows in an allowed status move; columns can be chosen', async () => {
      const made = await insertRows(
        store.db,
        executions,
        [
          { actionRef: 'fp.t1', runner: 'noop', status: 'scheduled' },
          { actionRef: 'fp.t2', runner: 'noop', status: 'requested' },
        ],
        { returning: ['id'] },
      );
      const ids = made.map((m) => m.id);
      const moved = await transitionExecutions(store.db, ids, ['scheduled'], 'running', {
        workerId: 'w1',
        startedAt: sql`now()`,
        result: { kept: ['json'] },
      });
      expect(moved.map((r) => r.id)).toEqual([ids[0]]);
      expect(moved[0]).toMatchObject({ status: 'running', workerId: 'w1', result: { kept: ['json'] } });
      const [read] = await store.db.select().from(executions).where(eq(executions.id, ids[0]!));
      expect(read).toEqual(moved[0]);
      const brief = await transitionExecutions(store.db, ids, ['running'], 'succeeded', {}, ['id', 'status']);
      expect(brief).toEqual([{ id: ids[0], status: 'succeeded' }]);
      const [done] = await store.db.select().from(executions).where(eq(executions.id, ids[0]!));
      expect(done!.finishedAt).toBeInstanceOf(Date);
      expect(done!.leaseExpiresAt).toBeNull();
      await expect(transitionExecutions(store.db, ids, ['succeeded'], 'running')).rejects.toBeInstanceOf(
        IllegalTransitionError,
      );
    });

    it('one-row transitions: the same guard, and a statement planned once (not at every run)', async () => {
      const made = await insertRows(
        store.db,
        executions,
        Array.from({ length: 12 }, (_, i) => ({
          actionRef: 'fp.one',
          runner: 'noop',
          status: i === 0 ? 'requested' : 'scheduled',
        })),
        { returning: ['id'] },
      );
      const ids = made.map((m) => m.id);
      // Not in `from`: nothing moves. An empty `from` moves nothing either.
      expect(await transitionExecutions(store.db, [ids[0]!], ['scheduled'], 'running')).toEqual([]);
      expect(await transitionExecutions(store.db, [ids[1]!], [], 'running')).toEqual([]);
      for (const id of ids.slice(1)) {
        const [r] = await transitionExecutions(store.db, [id], ['scheduled', 'requested'], 'running', {
          workerId: 'w2',
        });
        expect(r).toMatchObject({ id, status: 'running', workerId: 'w2' });
      }
      if (store.kind !== 'pglite') return;
      // Re-planning a statement at each run cost more than running it on the embedded database.
      const plans = (await store.db.execute(
        sql`select generic_plans, custom_plans from pg_prepared_statements
             where statement like 'update "executions" set "status" = ''running''%'
               and statement like '%"worker_id"%' and statement like '%"id" = $%'
               and statement like '%in (''scheduled'', ''requested'')%'`,
      )) as unknown as { rows: { generic_plans: number; custom_plans: number }[] };
      expect(plans.rows).toHaveLength(1);
      expect(Number(plans.rows[0]!.custom_plans)).toBeLessThanOrEqual(5);
      expect(Number(plans.rows[0]!.generic_plans)).toBeGreaterThanOrEqual(5);
    });
  });
}
