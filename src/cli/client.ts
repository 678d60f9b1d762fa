/**
 * The CLI's HTTP client of the Attune API: JSON in and out, the API's error body turned into one
 * clear `ApiError`, network failures into a `ConnectionError` naming the server, credentials from a
 * pluggable source that may renew them once after a 401, pagination, server-sent-event streams, and
 * with `--debug` a line per exchange on stderr (method, URL, status, time; never a credential).
 */
import { ApiError, ConnectionError } from './errors.ts';

export type QueryValue = string | number | boolean | undefined | null;
export type Query = Record<string, QueryValue>;

export interface Credentials {
  /** Headers that authenticate a request (none when there are no credentials). */
  headers(): Promise<Record<string, string>>;
  /** Called after a 401; true when the credentials were renewed and the request should be retried. */
  renew(): Promise<boolean>;
  /** Turns a 401 that renewing could not fix into the error shown to the user. */
  refused(err: ApiError): ApiError;
}

export const NO_CREDENTIALS: Credentials = {
  headers: async () => ({}),
  renew: async () => false,
  refused: (err) => err,
};

export interface RequestOptions {
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as is, with `contentType`. */
  raw?: Uint8Array;
  contentType?: string;
  /** Without credentials (login, refresh). */
  anonymous?: boolean;
  /** Milliseconds before the request is given up (default 60 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface Pagination {
  page: number;
  page_size: number;
  total_items: number;
  total_pages: number;
}

export interface ListResult<T> {
  items: T[];
  total: number;
}

export interface ClientOptions {
  baseUrl: string;
  credentials?: Credentials;
  /** Receives the `--debug` lines. */
  debug?: (line: string) => void;
  userAgent?: string;
}

const MAX_PAGE = 1000;

/** Query parameters that carry secrets are never printed. */
const redactUrl = (u: string): string => u.replace(/([?&](?:access_token|token|api_key)=)[^&]*/gi, '$1***');

export function buildQuery(q: Query | undefined): string {
  if (!q) return '';
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) sp.set(k, String(v));
  const s = sp.toString();
  return s ? `?${s}` : '';
}

/** Why fetch failed, in words a person can act on. */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (is the server running?)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'the connection was reset';
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'the connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'the host is unreachable';
    case 'CERT_HAS_EXPIRED':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `the TLS certificate was refused (${code})`;
    default:
      return cause?.message ?? (err as Error).message ?? String(err);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The API error in a response body, or a generic one for a body that is not the error shape. */
export function errorFromBody(status: number, statusText: string, body: unknown): ApiError {
  const e = isObject(body) && isObject(body.error) ? body.error : undefined;
  if (e && typeof e.message === 'string') {
    return new ApiError(status, typeof e.code === 'string' ? e.code : `HTTP_${status}`, e.message, e.details);
  }
  const text = typeof body === 'string' && body.trim() ? `: ${body.trim().slice(0, 200)}` : '';
  return new ApiError(status, `HTTP_${status}`, `the server answered ${status} ${statusText}${text}`);
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly credentials: Credentials;
  private readonly debugLine: ((line: string) => void) | undefined;
  private readonly userAgent: string;

  constructor(opts: ClientOptions) {
    this.baseUrl = opts.baseUrl;
    this.credentials = opts.credentials ?? NO_CREDENTIALS;
    this.debugLine = opts.debug;
    this.userAgent = opts.userAgent ?? 'attune-cli';
  }

  url(path: string, query?: Query): string {
    return `${this.baseUrl}${path}${buildQuery(query)}`;
  }

  /** One request; the parsed body of a 2xx (null for an empty one), an ApiError otherwise. */
  async call<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    let res = await this.send(method, path, opts);
    if (res.status === 401 && !opts.anonymous && (await this.credentials.renew())) {
      await res.body?.cancel().catch(() => {});
      res = await this.send(method, path, opts);
    }
    const body = await this.readBody(res, method, path);
    if (res.ok) return body as T;
    const err = errorFromBody(res.status, res.statusText, body);
    throw res.status === 401 && !opts.anonymous ? this.credentials.refused(err) : err;
  }

  /** `call`, returning the `data` member of the response. */
  async data<T = unknown>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const body = await this.call<{ data: T } | null>(method, path, opts);
    return (body?.data ?? null) as T;
  }

  /** Items of a list endpoint up to `limit`, fetching as many pages as that takes. */
  async list<T = unknown>(path: string, query: Query = {}, limit = 50): Promise<ListResult<T>> {
    const items: T[] = [];
    let total = 0;
    let page = 1;
    const pageSize = Math.min(Math.max(limit, 1), MAX_PAGE);
    for (;;) {
      const body = await this.call<{ data: T[]; pagination?: Pagination }>('GET', path, {
        query: { ...query, page, page_size: pageSize },
      });
      const data = Array.isArray(body?.data) ? body.data : [];
      items.push(...data.slice(0, limit - items.length));
      total = body?.pagination?.total_items ?? items.length;
      const pages = body?.pagination?.total_pages ?? 1;
      if (items.length >= limit || page >= pages || !data.length) break;
      page++;
    }
    return { items, total };
  }

  /**
   * Opens a server-sent-events stream; resolves with the response once the server accepted it
   * (ApiError otherwise). The caller reads the body and aborts `signal` to close it.
   */
  async stream(path: string, opts: { query?: Query; lastEventId?: string; signal?: AbortSignal } = {}) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (opts.lastEventId !== undefined) headers['last-event-id'] = opts.lastEventId;
    let res = await this.send('GET', path, { query: opts.query, signal: opts.signal, timeoutMs: 0 }, headers);
    if (res.status === 401 && (await this.credentials.renew())) {
      await res.body?.cancel().catch(() => {});
      res = await this.send('GET', path, { query: opts.query, signal: opts.signal, timeoutMs: 0 }, headers);
    }
    if (!res.ok) {
      const err = errorFromBody(res.status, res.statusText, await this.readBody(res, 'GET', path));
      throw res.status === 401 ? this.credentials.refused(err) : err;
    }
    return res;
  }

  private async send(
    method: string,
    path: string,
    opts: RequestOptions,
    extraHeaders: Record<string, string> = {},
  ): Promise<Response> {
    const url = this.url(path, opts.query);
    const headers: Record<string, string> = {
      'user-agent': this.userAgent,
      accept: 'application/json',
      ...extraHeaders,
      ...(opts.anonymous ? {} : await this.credentials.headers()),
    };
    let body: string | Uint8Array | undefined;
    if (opts.raw !== undefined) {
      body = opts.raw;
      headers['content-type'] = opts.contentType ?? 'application/octet-stream';
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const signals = [opts.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const t0 = performance.now();
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body,
        signal: signals.length ? AbortSignal.any(signals) : undefined,
      });
    } catch (e) {
      const ms = Math.round(performance.now() - t0);
      if (opts.signal?.aborted) throw e;
      const reason =
        (e as Error).name === 'TimeoutError'
          ? `no answer within ${Math.round(timeoutMs / 1000)} s`
          : networkReason(e);
      this.debugLine?.(`${method} ${redactUrl(url)} → failed after ${ms} ms: ${reason}`);
      throw new ConnectionError(`cannot reach the Attune API at ${this.baseUrl}: ${reason}`);
    }
    const ms = Math.round(performance.now() - t0);
    const rid = res.headers.get('x-request-id');
    this.debugLine?.(
      `${method} ${redactUrl(url)} → ${res.status} ${res.statusText} in ${ms} ms${rid ? ` (request ${rid})` : ''}`,
    );
    return res;
  }

  private async readBody(res: Response, method: string, path: string): Promise<unknown> {
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new ConnectionError(
        `the connection to ${this.baseUrl} broke while reading the answer to ${method} ${path}: ${networkReason(e)}`,
      );
    }
    if (!text) return null;
    const type = res.headers.get('content-type') ?? '';
    if (type.includes('json')) {
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    }
    return text;
  }
}
