/**
 * Events: `/api/v1/events`. One occurrence of a trigger with its payload; immutable. Read-only
 * here: events are created by sensors, webhooks, timers and the event-posting endpoint.
 */
import { and, count, desc, eq, type SQL } from 'drizzle-orm';
import { type Static, Type } from 'typebox';
import { notFound } from '../../../domain/errors.ts';
import { events } from '../../../store/schema.ts';
import {
  Data,
  IdParams,
  iso,
  List,
  listBody,
  PageQuery,
  pageOf,
  TimeRangeQuery,
  Timestamp,
  timeRangeFilters,
} from '../http.ts';
import type { ApiApp } from '../server.ts';

export const Event = Type.Object({
  id: Type.Integer(),
  trigger_ref: Type.String(),
  payload: Type.Unknown({ description: 'The JSON payload' }),
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

type Row = typeof events.$inferSelect;
export const eventToApi = (r: Row): Static<typeof Event> => ({
  id: r.id,
  trigger_ref: r.triggerRef,
  payload: r.payload,
  source: r.source,
  created_by: r.createdBy,
  created_at: iso(r.createdAt)!,
});

const tags = ['events'];
const err = { $ref: 'ErrorBody#' };

export function registerEventRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

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
