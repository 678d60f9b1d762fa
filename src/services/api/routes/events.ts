/**
 * Events: `/api/v1/events`. One occurrence of a trigger with its payload; immutable. Created by
 * sensors, webhooks, timers, the platform itself and `POST /api/v1/events` (one event, or up to 1000
 * in one transaction), all through `services/events/create-event.ts`.
 */
import { and, count, desc, eq, inArray, type SQL } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import type { JsonValue } from '../../../bus/bus.ts';
import { notFound, validationError } from '../../../domain/errors.ts';
import { validateAgainst } from '../../../domain/json-schema.ts';
import type { Db } from '../../../store/database.ts';
import { events, triggers } from '../../../store/schema.ts';
import { createEvents, MAX_EVENTS_PER_CALL } from '../../events/create-event.ts';
import { EventIntake } from '../../events/intake.ts';
import {
  Data,
  IdParams,
  iso,
  List,
  listBody,
  PageQuery,
  pageOf,
  Ref,
  TimeRangeQuery,
  Timestamp,
  timeRangeFilters,
} from '../http.ts';
import type { ApiApp } from '../server.ts';

export const Event = Type.Object({
  id: Type.Integer(),
  trigger_ref: Type.String(),
  payload: Type.Unknown({ description: 'The JSON payload' }),
  trigger_params: Type.Record(Type.String(), Type.Unknown(), {
    description: 'Parameters of the trigger instance that fired (a webhook name, a timer spec); `{}` if none',
  }),
  source: Type.String({ description: '`api`, `webhook:<name>`, `sensor:<ref>`, `timer:<rule>`, `internal`' }),
  created_by: Type.Union([Type.String(), Type.Null()]),
  created_at: Timestamp,
});

const EventListQuery = Type.Object(
  {
    ...PageQuery,
    trigger: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Trigger ref' })),
    source: Type.Optional(Type.String({ minLength: 1, maxLength: 300, description: 'Exact source' })),
    ...TimeRangeQuery,
  },
  { additionalProperties: false },
);

const EventInput = {
  trigger: Ref,
  payload: Type.Optional(
    Type.Unknown({
      description: "Any JSON document (default `{}`); validated against the trigger's payload_schema",
    }),
  ),
  trigger_params: Type.Optional(
    Type.Record(Type.String(), Type.Unknown(), {
      description:
        "Parameters of the trigger instance the event belongs to (default `{}`), validated against the trigger's " +
        'param_schema: only rules with equal trigger_params see the event',
    }),
  ),
};
const PostEvents = Type.Object(
  {
    trigger: Type.Optional({ ...Ref, description: 'Trigger ref of a single event' }),
    payload: EventInput.payload,
    trigger_params: EventInput.trigger_params,
    events: Type.Optional(
      Type.Array(Type.Object(EventInput, { additionalProperties: false }), {
        minItems: 1,
        maxItems: MAX_EVENTS_PER_CALL,
        description: `Several events (at most ${MAX_EVENTS_PER_CALL}), created together or not at all`,
      }),
    ),
  },
  { additionalProperties: false },
);

type Row = typeof events.$inferSelect;
export const eventToApi = (r: Row): Static<typeof Event> => ({
  id: r.id,
  trigger_ref: r.triggerRef,
  payload: r.payload,
  trigger_params: r.triggerParams,
  source: r.source,
  created_by: r.createdBy,
  created_at: iso(r.createdAt)!,
});

/** Given trigger_params must fit their trigger's param_schema (400 naming the event of a bulk request). */
async function checkTriggerParams(
  db: Db,
  items: readonly { trigger: string; trigger_params?: Record<string, unknown> | undefined }[],
  many: boolean,
): Promise<void> {
  const withParams = items.filter((e) => e.trigger_params && Object.keys(e.trigger_params).length);
  if (!withParams.length) return;
  const refs = [...new Set(withParams.map((e) => e.trigger))];
  const schemas = new Map(
    (
      await db
        .select({ ref: triggers.ref, paramSchema: triggers.paramSchema })
        .from(triggers)
        .where(inArray(triggers.ref, refs))
    ).map((t) => [t.ref, t.paramSchema]),
  );
  items.forEach((e, index) => {
    const schema = schemas.get(e.trigger);
    if (!schema || !e.trigger_params) return;
    const problems = validateAgainst(schema, structuredClone(e.trigger_params));
    if (problems.length)
      throw validationError(
        `trigger_params do not fit trigger '${e.trigger}'${many ? ` (events[${index}])` : ''}: ${problems[0]!.path} ${problems[0]!.message}`,
        { field: 'trigger_params', trigger_ref: e.trigger, problems, ...(many && { index }) },
      );
  });
}

const tags = ['events'];
const err = { $ref: 'ErrorBody#' };

export function registerEventRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  // Single events posted at about the same time share a transaction (services/events/intake.ts).
  const intake = new EventIntake(app.ctx.store, {
    committed: (rows) => {
      app.ctx.recentEvents?.remember(rows);
      app.ctx.outbox?.kick();
    },
  });
  app.addHook('onClose', async () => intake.close());

  app.get(
    '/api/v1/events',
    {
      config: { permission: ['events', 'read'] },
      schema: {
        tags,
        summary: 'List events',
        description:
          'Newest first. Filters: `trigger` (ref), `source`, `since` (inclusive) and `until` (exclusive) ' +
          'on the creation time.',
        querystring: EventListQuery,
        response: { 200: List(Event), 400: err },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageOf(q);
      const where: SQL[] = timeRangeFilters(q, events.createdAt);
      if (q.trigger !== undefined) where.push(eq(events.triggerRef, q.trigger));
      if (q.source !== undefined) where.push(eq(events.source, q.source));
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        db()
          .select()
          .from(events)
          .where(cond)
          .orderBy(desc(events.createdAt), desc(events.id))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(events).where(cond),
      ]);
      return listBody(rows.map(eventToApi), page, total?.n ?? 0);
    },
  );

  app.post(
    '/api/v1/events',
    {
      config: { permission: ['events', 'create'] },
      schema: {
        tags,
        summary: 'Create events',
        description:
          'Either one event, `{trigger, payload}` → `{data: event}`, or several, ' +
          `\`{events: [{trigger, payload}, …]}\` (at most ${MAX_EVENTS_PER_CALL}) → \`{data: [event, …]}\`, ` +
          'stored in one transaction: all or none. Each trigger must exist (404) and be enabled (422); ' +
          "each payload must fit its trigger's payload_schema (400; `details.index` names the event of a " +
          'bulk request). `trigger_params` names the trigger instance (a webhook, a timer): only rules with ' +
          'equal trigger_params see the event. Rules matching the events run asynchronously; follow them through ' +
          '`/api/v1/enforcements?event=<id>`.',
        body: PostEvents,
        response: {
          201: Data(Type.Union([Event, Type.Array(Event)])),
          400: err,
          404: err,
          413: err,
          422: err,
        },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const single = b.trigger !== undefined;
      if (single === (b.events !== undefined))
        throw validationError(
          single
            ? 'give either `trigger` (one event) or `events` (several), not both'
            : 'give `trigger` (and `payload`) for one event, or `events` for several',
          { fields: ['trigger', 'events'] },
        );
      if (!single && (b.payload !== undefined || b.trigger_params !== undefined))
        throw validationError('`payload` and `trigger_params` go inside each item of `events`', {
          field: b.payload !== undefined ? 'payload' : 'trigger_params',
        });
      const items = single
        ? [{ trigger: b.trigger!, payload: b.payload, trigger_params: b.trigger_params }]
        : b.events!;
      await checkTriggerParams(app.ctx.store.db, items, !single);
      const login = req.principal?.login ?? null;
      const inputs = items.map((e) => ({
        triggerRef: e.trigger,
        payload: (e.payload === undefined ? {} : e.payload) as JsonValue,
        triggerParams: (e.trigger_params ?? {}) as Record<string, JsonValue>,
        source: 'api',
        createdBy: login,
      }));
      // A single event joins the others arriving now (group commit); a bulk call is its own transaction.
      const rows = single
        ? [await intake.add(inputs[0]!)]
        : await app.ctx.store.transaction((tx) => createEvents(tx, inputs));
      if (!single) {
        app.ctx.recentEvents?.remember(rows);
        app.ctx.outbox?.kick();
      }
      const data = rows.map(eventToApi);
      return reply.code(201).send({ data: single ? data[0]! : data });
    },
  );

  app.get(
    '/api/v1/events/:id',
    {
      config: { permission: ['events', 'read'] },
      schema: {
        tags,
        summary: 'Get an event',
        params: IdParams,
        response: { 200: Data(Event), 400: err, 404: err },
      },
    },
    async (req) => {
      const [r] = await db().select().from(events).where(eq(events.id, req.params.id));
      if (!r) throw notFound('event', req.params.id);
      return { data: eventToApi(r) };
    },
  );
}
