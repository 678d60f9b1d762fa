/**
 * Creating events: the one way an event enters the platform, whatever brought it (the API, a
 * webhook, a timer, a sensor, the platform itself). Transport-neutral: callers give trigger refs and
 * payloads and a transaction; this module checks them, stores the events and writes one
 * `event.created` outbox message per event in that same transaction (DESIGN §4.2). The caller kicks
 * the outbox relay after its commit.
 */
import { inArray, sql } from 'drizzle-orm';
import type { JsonValue } from '../../bus/bus.ts';
import { trackOutboxRows } from '../../bus/outbox.ts';
import { AppError } from '../../domain/errors.ts';
import { validateAgainst } from '../../domain/json-schema.ts';
import type { Db } from '../../store/database.ts';
import { insertStatement, mapRows, rawRows } from '../../store/repositories/bulk.ts';
import { events, outbox, triggers } from '../../store/schema.ts';
import { metrics } from '../metrics/registry.ts';
import type { RuleIndex } from '../rules-engine/rule-index.ts';
import { type EventCreated, TOPICS } from '../runtime/messages.ts';

export type EventRow = typeof events.$inferSelect;

export interface NewEvent {
  triggerRef: string;
  /** Any JSON document; validated against the trigger's payload_schema when it has one. */
  payload: JsonValue;
  /**
   * The parameters of the trigger instance that fired (a webhook's `{name}`, a timer's spec), stored
   * on the event; default `{}`. Rules of a parameterised trigger receive only events of their own
   * parameters.
   */
  triggerParams?: Record<string, JsonValue> | undefined;
  /** `api`, `webhook:<name>`, `sensor:<ref>`, `timer`, `internal` */
  source: string;
  /** Login of the identity that caused the event, when there is one. */
  createdBy?: string | null | undefined;
}

/** Most events accepted in one call (one transaction). */
export const MAX_EVENTS_PER_CALL = 1000;

/**
 * Checks and stores `inputs` (in order) in the caller's transaction, with their outbox messages.
 * Refuses the whole call, changing nothing, on the first problem:
 * - 404 `NOT_FOUND` when a trigger does not exist,
 * - 422 `UNPROCESSABLE_ENTITY` when a trigger is disabled,
 * - 400 `VALIDATION_ERROR` when a payload does not fit its trigger's payload_schema.
 * The details name the trigger ref and, for calls of several events, the index of the culprit.
 */
export async function createEvents(tx: Db, inputs: readonly NewEvent[]): Promise<EventRow[]> {
  if (!inputs.length) return [];
  if (inputs.length > MAX_EVENTS_PER_CALL)
    throw new AppError(
      'PAYLOAD_TOO_LARGE',
      `at most ${MAX_EVENTS_PER_CALL} events are accepted at once, got ${inputs.length}`,
      { count: inputs.length, max: MAX_EVENTS_PER_CALL },
    );
  const many = inputs.length > 1;
  const problems = await eventProblems(tx, inputs, many);
  const first = problems.find((p) => p !== null);
  if (first) throw first;
  return insertEvents(tx, inputs);
}

/**
 * What is wrong with each event, if anything (null: nothing): its trigger is unknown (404) or
 * disabled (422), or its payload does not fit the trigger's payload_schema (400). `indexed`: the
 * messages and details name each event's index (a call of several events).
 */
export async function eventProblems(
  tx: Db,
  inputs: readonly NewEvent[],
  indexed = false,
): Promise<(AppError | null)[]> {
  const refs = [...new Set(inputs.map((e) => e.triggerRef))];
  const found = await tx
    .select({ ref: triggers.ref, enabled: triggers.enabled, payloadSchema: triggers.payloadSchema })
    .from(triggers)
    .where(inArray(triggers.ref, refs));
  const byRef = new Map(found.map((t) => [t.ref, t]));
  return inputs.map((e, index) => {
    const where = indexed ? ` (events[${index}])` : '';
    const at = indexed ? { index } : {};
    const t = byRef.get(e.triggerRef);
    if (!t)
      return new AppError('NOT_FOUND', `trigger '${e.triggerRef}' not found${where}`, {
        resource: 'trigger',
        id: e.triggerRef,
        trigger_ref: e.triggerRef,
        ...at,
      });
    if (!t.enabled)
      return new AppError(
        'UNPROCESSABLE_ENTITY',
        `trigger '${e.triggerRef}' is disabled; enable it to accept its events${where}`,
        { trigger_ref: e.triggerRef, ...at },
      );
    if (t.payloadSchema) {
      // Validate a copy: the schema's defaults must not rewrite what the sender sent.
      const problems = validateAgainst(t.payloadSchema, structuredClone(e.payload));
      if (problems.length)
        return new AppError(
          'VALIDATION_ERROR',
          `payload does not fit trigger '${e.triggerRef}'${where}: ${problems[0]!.path} ${problems[0]!.message}`,
          { field: 'payload', trigger_ref: e.triggerRef, problems, ...at },
        );
    }
    return null;
  });
}

/** Stores events already checked (`eventProblems`), with their `event.created` messages, in order. */
export async function insertEvents(tx: Db, inputs: readonly NewEvent[]): Promise<EventRow[]> {
  if (!inputs.length) return [];
  // The events and their `event.created` messages in one statement (every API call of the
  // platform's busiest endpoint pays for each statement).
  const inserted = rawRows(
    await tx.execute(sql`with e as (${insertStatement(
      events,
      inputs.map((e) => ({
        triggerRef: e.triggerRef,
        payload: e.payload,
        triggerParams: e.triggerParams ?? {},
        source: e.source,
        createdBy: e.createdBy ?? null,
      })),
      // A JSON null payload is the jsonb value null, not SQL NULL.
      { returning: 'all', jsonNull: true },
    )}), o as (
      insert into ${outbox} (topic, payload)
      select ${TOPICS.eventCreated}::text, jsonb_build_object('event_id', e.id) from e order by e.id
      returning id, (payload->>'event_id')::bigint as event_id)
    select e.*, o.id as outbox_id from e join o on o.event_id = e.id order by e.id`),
  );
  const rows = mapRows<EventRow & { outbox_id: number | string }>(events, inserted);
  trackOutboxRows(
    tx,
    rows.map((r) => ({
      id: Number(r.outbox_id),
      topic: TOPICS.eventCreated,
      payload: { event_id: r.id } satisfies EventCreated,
    })),
  );
  for (const r of rows) delete (r as { outbox_id?: unknown }).outbox_id;
  metrics.eventsStored(rows);
  return rows;
}

/** One event; see `createEvents`. */
export async function createEvent(tx: Db, input: NewEvent): Promise<EventRow> {
  const [row] = await createEvents(tx, [input]);
  return row!;
}

export interface InternalEventOptions {
  /** The process's rule index: tells, from its cache, whether any enabled rule uses the trigger. */
  rules: RuleIndex;
  /** Default `internal`. */
  source?: string;
  createdBy?: string | null;
  /** Told when the event was refused (its trigger's payload_schema was changed to refuse it). */
  log?: { warn(obj: object, msg: string): void };
}

/**
 * An event of one of the platform's own triggers (execution completed, key changed …), created only
 * when at least one enabled rule uses that trigger; returns it, or undefined when nothing listens.
 *
 * Why only then: these triggers fire on every execution and every key write, and an event nobody
 * matches would cost an insert, an outbox message and a rules-engine pass for nothing — for
 * internal triggers that would double the write load of the platform. The check reads the rule
 * index (cached per trigger, reloaded on rule changes and within seconds at worst), so a rule
 * enabled a moment ago may miss the firings of those few seconds; unlike webhook or API events,
 * nobody outside is waiting for these. A missing or disabled trigger also yields undefined: the
 * platform must not fail an execution because an internal trigger was switched off — nor because
 * someone changed that trigger's payload_schema so that it refuses the platform's payloads (the
 * refusal is logged and the event dropped).
 */
export async function emitInternalEvent(
  tx: Db,
  triggerRef: string,
  payload: JsonValue,
  opts: InternalEventOptions,
): Promise<EventRow | undefined> {
  if (!(await opts.rules.hasRules(triggerRef, tx))) return undefined;
  const [t] = await tx
    .select({ enabled: triggers.enabled })
    .from(triggers)
    .where(inArray(triggers.ref, [triggerRef]));
  if (!t?.enabled) return undefined;
  try {
    return await createEvent(tx, {
      triggerRef,
      payload,
      source: opts.source ?? 'internal',
      createdBy: opts.createdBy ?? null,
    });
  } catch (e) {
    if (!(e instanceof AppError) || e.code !== 'VALIDATION_ERROR') throw e;
    opts.log?.warn(
      { trigger_ref: triggerRef, err: e.message },
      'internal event refused by its trigger; dropped',
    );
    return undefined;
  }
}
