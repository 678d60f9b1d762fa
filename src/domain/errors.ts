/**
 * The error taxonomy. Every failure that reaches a client is an AppError with a stable code; the
 * API turns it into `{"error": {"code", "message", "details"}}` with the matching HTTP status.
 */
export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNPROCESSABLE_ENTITY'
  | 'TOO_MANY_REQUESTS'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_ERROR';

export const STATUS_OF: Record<ErrorCode, number> = {
  VALIDATION_ERROR: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UNPROCESSABLE_ENTITY: 422,
  TOO_MANY_REQUESTS: 429,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_ERROR: 500,
};

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = 'AppError';
    this.code = code;
    this.details = details;
  }
  get status(): number {
    return STATUS_OF[this.code];
  }
}

export const validationError = (message: string, details?: unknown) =>
  new AppError('VALIDATION_ERROR', message, details);
export const badRequest = (message: string, details?: unknown) =>
  new AppError('BAD_REQUEST', message, details);
export const notFound = (what: string, id: string | number) =>
  new AppError('NOT_FOUND', `${what} '${id}' not found`, { resource: what, id });
export const conflict = (message: string, details?: unknown) => new AppError('CONFLICT', message, details);
export const unprocessable = (message: string, details?: unknown) =>
  new AppError('UNPROCESSABLE_ENTITY', message, details);
export const forbidden = (message = 'You do not have permission to do this') =>
  new AppError('FORBIDDEN', message);
export const unauthorized = (message = 'Authentication required') => new AppError('UNAUTHORIZED', message);
export const tooManyRequests = (message: string, retryAfterSeconds?: number) =>
  new AppError(
    'TOO_MANY_REQUESTS',
    message,
    retryAfterSeconds === undefined ? undefined : { retry_after: retryAfterSeconds },
  );

/** One problem found in a file or document, e.g. while validating a pack or a workflow. */
export interface Problem {
  file?: string;
  line?: number;
  path?: string;
  task?: string;
  message: string;
  severity?: 'error' | 'warning';
}
