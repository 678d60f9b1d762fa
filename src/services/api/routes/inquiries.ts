/**
 * Inquiries: `/api/v1/inquiries`. A question to people, asked by a `core.ask` execution (on its own
 * or as a workflow task), waiting for an answer that fits its `response_schema` from an allowed user
 * or role, or for its timeout. List and get need `inquiries:read`; answering needs
 * `inquiries:respond` and, when the inquiry names users or roles, being one of them.
 */
import { and, count, desc, eq, type SQL, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { type Static, Type } from 'typebox';
import { notFound } from '../../../domain/errors.ts';
import { checkPermission } from '../../../domain/permissions.ts';
import { INQUIRY_TRANSITIONS } from '../../../domain/status.ts';
import { inquiries } from '../../../store/schema.ts';
import { respondInquiry } from '../../workflows/index.ts';
import { Data, IdParams, iso, JsonObject, List, listBody, PageQuery, pageOf, Timestamp } from '../http.ts';
import type { ApiApp } from '../server.ts';
import { statusFilter } from './executions.ts';
import { workflowDeps } from './workflow-runs.ts';

export const INQUIRY_STATUSES: readonly string[] = Object.keys(INQUIRY_TRANSITIONS);

const Inquiry = Type.Object({
  id: Type.Integer(),
  status: Type.String({ description: INQUIRY_STATUSES.join(', ') }),
  prompt: Type.String(),
  response_schema: { ...JsonObject, description: 'JSON Schema the answer must fit' },
  response: Type.Unknown({ description: 'The accepted answer (with the schema defaults); null until then' }),
  responded_by: Type.Union([Type.String(), Type.Null()]),
  responded_at: Type.Union([Timestamp, Type.Null()]),
  timeout_at: Type.Union([Timestamp, Type.Null()], { description: 'When it times out unanswered' }),
  created_at: Timestamp,
  execution_id: Type.Integer({ description: 'The core.ask execution asking the question' }),
  workflow_execution_id: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The workflow execution it belongs to',
  }),
  task_name: Type.Union([Type.String(), Type.Null()], { description: 'The workflow task asking' }),
  assigned_users: Type.Array(Type.String(), { description: 'Who may answer (with assigned_roles)' }),
  assigned_roles: Type.Array(Type.String(), {
    description: 'Roles whose members may answer; with neither, anyone with inquiries:respond may',
  }),
  can_respond: Type.Boolean({
    description: 'Whether the caller may answer it now (pending, not past its timeout, allowed)',
  }),
});

const InquiryListQuery = Type.Object(
  {
    ...PageQuery,
    status: Type.Optional(
      Type.String({
        maxLength: 200,
        description: `Comma-separated; any of ${INQUIRY_STATUSES.join(', ')} (default: all; \`pending\` for an inbox)`,
      }),
    ),
    assigned_to_me: Type.Optional(
      Type.Boolean({
        description:
          "`true`: only inquiries naming the caller or one of the caller's roles; `false`: only the others",
      }),
    ),
    workflow_execution: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'Of this workflow execution',
      }),
    ),
    execution: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: Number.MAX_SAFE_INTEGER,
        description: 'Of this core.ask execution',
      }),
    ),
  },
  { additionalProperties: false },
);

const Respond = Type.Object(
  {
    response: Type.Unknown({
      description: "The answer, checked against the inquiry's response_schema (defaults are filled in)",
    }),
  },
  { additionalProperties: false, required: ['response'] },
);

type Row = typeof inquiries.$inferSelect;
type Caller = FastifyRequest['principal'];

/** Whether `caller` may answer `r` now: pending, not past its timeout, the right, the assignment. */
function canRespond(r: Row, caller: Caller, now = Date.now()): boolean {
  if (!caller || r.status !== 'pending') return false;
  if (r.timeoutAt && r.timeoutAt.getTime() <= now) return false;
  if (!checkPermission(caller.grants, 'inquiries', 'respond')) return false;
  if (r.assignedUsers.length + r.assignedRoles.length === 0) return true;
  return r.assignedUsers.includes(caller.login) || r.assignedRoles.some((x) => caller.roles.includes(x));
}

export const inquiryToApi = (r: Row, caller: Caller): Static<typeof Inquiry> => ({
  id: r.id,
  status: r.status,
  prompt: r.prompt,
  response_schema: r.responseSchema,
  response: r.response ?? null,
  responded_by: r.respondedBy,
  responded_at: iso(r.respondedAt),
  timeout_at: iso(r.timeoutAt),
  created_at: iso(r.createdAt)!,
  execution_id: r.executionId,
  workflow_execution_id: r.workflowExecutionId,
  task_name: r.taskName,
  assigned_users: r.assignedUsers,
  assigned_roles: r.assignedRoles,
  can_respond: canRespond(r, caller),
});

const tags = ['inquiries'];
const err = { $ref: 'ErrorBody#' };

export function registerInquiryRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

  app.get(
    '/api/v1/inquiries',
    {
      config: { permission: ['inquiries', 'read'] },
      schema: {
        tags,
        summary: 'List inquiries',
        description:
          'Newest first. Filters: `status` (comma-separated, any of; all by default), `assigned_to_me` ' +
          "(inquiries naming the caller or one of the caller's roles), `workflow_execution`, `execution`. " +
          'Each inquiry says whether the caller may answer it now (`can_respond`).',
        querystring: InquiryListQuery,
        response: { 200: List(Inquiry), 400: err },
      },
    },
    async (req) => {
      const q = req.query;
      const page = pageOf(q);
      const where: SQL[] = [];
      if (q.status !== undefined) where.push(statusFilter(q.status, INQUIRY_STATUSES, inquiries.status));
      if (q.workflow_execution !== undefined)
        where.push(eq(inquiries.workflowExecutionId, q.workflow_execution));
      if (q.execution !== undefined) where.push(eq(inquiries.executionId, q.execution));
      if (q.assigned_to_me !== undefined) {
        const p = req.principal!;
        const mine = sql`(${p.login} = ANY(${inquiries.assignedUsers}) OR ${inquiries.assignedRoles} && ${sql.param([...p.roles])}::text[])`;
        where.push(q.assigned_to_me ? mine : sql`NOT ${mine}`);
      }
      const cond = and(...where);
      const [rows, [total]] = await Promise.all([
        db()
          .select()
          .from(inquiries)
          .where(cond)
          .orderBy(desc(inquiries.createdAt), desc(inquiries.id))
          .limit(page.limit)
          .offset(page.offset),
        db().select({ n: count() }).from(inquiries).where(cond),
      ]);
      return listBody(
        rows.map((r) => inquiryToApi(r, req.principal)),
        page,
        total?.n ?? 0,
      );
    },
  );

  app.get(
    '/api/v1/inquiries/:id',
    {
      config: { permission: ['inquiries', 'read'] },
      schema: {
        tags,
        summary: 'Get an inquiry',
        params: IdParams,
        response: { 200: Data(Inquiry), 400: err, 404: err },
      },
    },
    async (req) => {
      const [r] = await db().select().from(inquiries).where(eq(inquiries.id, req.params.id));
      if (!r) throw notFound('inquiry', req.params.id);
      return { data: inquiryToApi(r, req.principal) };
    },
  );

  app.post(
    '/api/v1/inquiries/:id/respond',
    {
      config: { permission: ['inquiries', 'respond'] },
      schema: {
        tags,
        summary: 'Answer an inquiry',
        description:
          "The answer must fit the inquiry's response_schema (400, every problem in `details.problems`; the " +
          'inquiry keeps waiting). When the inquiry names users or roles, only they may answer (403). An ' +
          'inquiry that was answered, timed out or withdrawn cannot be answered (409). The accepted answer, ' +
          "with the schema's defaults, becomes the result of the asking execution (`result().response` in " +
          'the workflow), which then goes on.',
        params: IdParams,
        body: Respond,
        response: { 200: Data(Inquiry), 400: err, 403: err, 404: err, 409: err },
      },
    },
    async (req) => {
      const p = req.principal!;
      const id = req.params.id;
      const audit = (outcome: 'success' | 'failure' | 'denied', details: Record<string, unknown> = {}) =>
        app.ctx.audit({
          action: 'inquiry.respond',
          outcome,
          actor: p.login,
          resourceType: 'inquiries',
          resourceRef: String(id),
          requestId: req.id,
          ip: req.ip,
          details,
        });
      try {
        const row = await respondInquiry(workflowDeps(app), id, req.body.response, {
          login: p.login,
          roles: p.roles,
        });
        await audit('success');
        return { data: inquiryToApi(row, p) };
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 'FORBIDDEN') await audit('denied');
        else if (code === 'CONFLICT') await audit('failure', { error: code });
        throw e;
      }
    },
  );
}
