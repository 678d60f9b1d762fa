/**
 * One error handler for the whole API: every failure leaves as `{"error": {code, message, details}}`
 * with the status of its code. Bad input of any kind is a 4xx; only our own bugs are a 500.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode, STATUS_OF } from '../../domain/errors.ts';

interface AjvLikeError {
  instancePath?: string;
  message?: string;
  params?: Record<string, unknown>;
  keyword?: string;
}

function describeValidation(e: FastifyError): { message: string; details: unknown } {
  const errs = (e.validation ?? []) as AjvLikeError[];
  const where = e.validationContext ?? 'body';
  const details = errs.map((v) => {
    let path = v.instancePath ?? '';
    if (v.keyword === 'additionalProperties' && v.params?.additionalProperty)
      path = `${path}/${String(v.params.additionalProperty)}`;
    if (v.keyword === 'required' && v.params?.missingProperty)
      path = `${path}/${String(v.params.missingProperty)}`;
    return { in: where, path: path || '/', message: v.message ?? 'invalid', keyword: v.keyword };
  });
  const first = details[0];
  const message = first
    ? `${where}${first.path === '/' ? '' : first.path.replace(/\//g, '.')} ${first.message}${
        first.keyword === 'additionalProperties' ? ' (unknown field)' : ''
      }`
    : e.message;
  return { message, details };
}

interface PgLikeError {
  code?: string;
  detail?: string;
  constraint?: string;
}

function classify(err: unknown): { code: ErrorCode; message: string; details?: unknown } {
  if (err instanceof AppError) return { code: err.code, message: err.message, details: err.details };
  const fe = err as FastifyError & PgLikeError & { cause?: PgLikeError };
  if (fe?.validation) {
    const { message, details } = describeValidation(fe);
    return { code: 'VALIDATION_ERROR', message, details };
  }
  switch (fe?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'PAYLOAD_TOO_LARGE', message: 'request body is too large' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { code: 'UNSUPPORTED_MEDIA_TYPE', message: fe.message };
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'BAD_REQUEST', message: fe.message };
  }
  if (fe instanceof SyntaxError) return { code: 'BAD_REQUEST', message: `malformed JSON: ${fe.message}` };
  // PostgreSQL errors that mean the input was wrong rather than the code
  const pgCode = fe?.code ?? fe?.cause?.code;
  const pgDetail = fe?.detail ?? fe?.cause?.detail;
  if (pgCode === '23505') return { code: 'CONFLICT', message: pgDetail ?? 'already exists' };
  if (pgCode === '23503') return { code: 'CONFLICT', message: pgDetail ?? 'still referenced' };
  if (pgCode === '22P02' || pgCode === '22003' || pgCode === '22007' || pgCode === '22008')
    return { code: 'BAD_REQUEST', message: 'a value is out of range or malformed' };
  // 22021: a NUL character in text; 22P05: \u0000 inside JSON (PostgreSQL stores neither)
  if (pgCode === '22021' || pgCode === '22P05')
    return { code: 'BAD_REQUEST', message: 'a value contains a NUL character, which cannot be stored' };
  const status = (fe as { statusCode?: number })?.statusCode;
  if (status && status >= 400 && status < 500) {
    const code = (Object.entries(STATUS_OF).find(([, s]) => s === status)?.[0] ?? 'BAD_REQUEST') as ErrorCode;
    return { code, message: fe.message };
  }
  return { code: 'INTERNAL_ERROR', message: 'internal error' };
}

export function sendError(
  reply: FastifyReply,
  code: ErrorCode,
  message: string,
  details?: unknown,
): FastifyReply {
  const body: { error: { code: string; message: string; details?: unknown } } = { error: { code, message } };
  if (details !== undefined) body.error.details = details;
  return reply.code(STATUS_OF[code]).type('application/json; charset=utf-8').send(body);
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const c = classify(err);
    if (c.code === 'INTERNAL_ERROR') req.log.error({ err }, 'unhandled error');
    else req.log.debug({ err }, 'request failed');
    if (c.code === 'TOO_MANY_REQUESTS') {
      const ra = (c.details as { retry_after?: number } | undefined)?.retry_after;
      if (ra) reply.header('retry-after', String(ra));
    }
    return sendError(reply, c.code, c.message, c.details);
  });
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, 'NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`),
  );
}
