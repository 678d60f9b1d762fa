/**
 * The typed HTTP client of the UI. It keeps the session (access + refresh token) in localStorage,
 * refreshes the access token shortly before it expires or when the server says it has, and turns
 * every error body into an `ApiError` carrying the server's code, message and details.
 *
 * Refresh tokens are single-use and reusing one ends every session, so refreshing is serialised
 * across tabs (Web Locks where available) and each tab first looks whether another one has already
 * refreshed.
 */
import { ENDPOINTS, type Endpoint, fillPath } from './endpoints.ts';
import type { TokenPair } from './types.ts';

export interface Session {
  accessToken: string;
  refreshToken: string;
  /** Epoch ms when the access token expires. */
  expiresAt: number;
  login: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** Problems listed in `details` (`{path, message}` items), when the server gave any. */
  get problems(): { path: string; message: string }[] {
    const d = this.details as { problems?: unknown } | unknown[] | undefined;
    const list = Array.isArray(d)
      ? d
      : Array.isArray((d as { problems?: unknown })?.problems)
        ? (d as { problems: unknown[] }).problems
        : [];
    return list
      .filter((p): p is { path?: unknown; message?: unknown } => typeof p === 'object' && p !== null)
      .map((p) => ({ path: String(p.path ?? ''), message: String(p.message ?? '') }));
  }
}

/** True when the endpoint is not there at all (an older or partial server). */
export const isMissingEndpoint = (e: unknown): boolean =>
  e instanceof ApiError && e.status === 404 && /^no route /.test(e.message);

const STORAGE_KEY = 'attune.session';
/** Refresh this long before the access token expires. */
const REFRESH_MARGIN_MS = 60_000;

type Query = Record<string, string | number | boolean | undefined | null>;

export interface RequestOptions {
  params?: Record<string, string | number>;
  query?: Query;
  body?: unknown;
  /** A raw body (e.g. a pack archive) with its content type. */
  raw?: { data: Blob | ArrayBuffer; contentType: string };
  signal?: AbortSignal;
}

type Listener = (s: Session | null, reason?: string) => void;

function readStored(): Session | null {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Partial<Session>;
    if (typeof s.accessToken !== 'string' || typeof s.refreshToken !== 'string') return null;
    return {
      accessToken: s.accessToken,
      refreshToken: s.refreshToken,
      expiresAt: Number(s.expiresAt) || 0,
      login: String(s.login ?? ''),
    };
  } catch {
    return null;
  }
}

export function queryString(q: Query | undefined): string {
  if (!q) return '';
  const sp = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '') sp.set(k, String(v));
  const s = sp.toString();
  return s ? `?${s}` : '';
}

export class ApiClient {
  private session: Session | null;
  private listeners = new Set<Listener>();
  private refreshing: Promise<Session | null> | null = null;

  constructor(private readonly base = '') {
    this.session = readStored();
    if (typeof window !== 'undefined')
      window.addEventListener('storage', (e) => {
        if (e.key !== STORAGE_KEY) return;
        const s = readStored();
        const was = this.session;
        this.session = s;
        if (!s && was) this.emit(null, 'You were signed out in another tab.');
        else if (s && !was) this.emit(s);
      });
  }

  get current(): Session | null {
    return this.session;
  }

  onSession(fn: Listener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(s: Session | null, reason?: string): void {
    for (const l of this.listeners) l(s, reason);
  }

  private store(s: Session | null, reason?: string): void {
    this.session = s;
    try {
      if (s) localStorage.setItem(STORAGE_KEY, JSON.stringify(s));
      else localStorage.removeItem(STORAGE_KEY);
    } catch {
      /* private mode: the session lives in memory only */
    }
    this.emit(s, reason);
  }

  private fromPair(p: TokenPair, login: string): Session {
    return {
      accessToken: p.access_token,
      refreshToken: p.refresh_token,
      expiresAt: Date.now() + p.expires_in * 1000,
      login,
    };
  }

  async login(login: string, password: string): Promise<Session> {
    const r = await this.send<{ data: TokenPair }>(ENDPOINTS.login, { body: { login, password } }, null);
    const s = this.fromPair(r.data, login);
    this.store(s);
    return s;
  }

  async logout(): Promise<void> {
    const s = this.session;
    this.store(null);
    if (s)
      await this.send(ENDPOINTS.logout, { body: { refresh_token: s.refreshToken } }, s.accessToken).catch(
        () => undefined,
      );
  }

  /** Ends the session locally (e.g. after a password change elsewhere), telling the app why. */
  expire(reason: string): void {
    this.store(null, reason);
  }

  /** Replaces the session with a new token pair (e.g. after a password change). */
  adopt(p: TokenPair): void {
    const login = this.session?.login ?? '';
    this.store(this.fromPair(p, login));
  }

  /** An access token valid for at least a minute (refreshing if needed), or null when signed out. */
  async freshToken(): Promise<string | null> {
    const s = this.session;
    if (!s) return null;
    if (s.expiresAt - Date.now() > REFRESH_MARGIN_MS) return s.accessToken;
    const r = await this.refresh(s);
    return r?.accessToken ?? null;
  }

  private refresh(stale: Session): Promise<Session | null> {
    if (!this.refreshing) {
      const run = async (): Promise<Session | null> => {
        // Another tab may have refreshed while we waited for the lock.
        const stored = readStored();
        if (stored && stored.refreshToken !== stale.refreshToken) {
          this.session = stored;
          return stored;
        }
        try {
          const r = await this.send<{ data: TokenPair }>(
            ENDPOINTS.refresh,
            { body: { refresh_token: stale.refreshToken } },
            null,
          );
          const s = this.fromPair(r.data, stale.login);
          this.store(s);
          return s;
        } catch (e) {
          if (e instanceof ApiError && (e.status === 401 || e.status === 400)) {
            this.store(null, 'Your session has expired. Please sign in again.');
            return null;
          }
          throw e;
        }
      };
      const locks = typeof navigator !== 'undefined' ? navigator.locks : undefined;
      const p = locks ? locks.request('attune.refresh', run) : run();
      this.refreshing = p.finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Calls an endpoint with the session's token; refreshes once and retries on an expired token. */
  async call<T>(endpoint: Endpoint, opts: RequestOptions = {}): Promise<T> {
    const token = await this.freshToken();
    try {
      return await this.send<T>(endpoint, opts, token);
    } catch (e) {
      const s = this.session;
      if (e instanceof ApiError && e.status === 401 && s && token) {
        const r = await this.refresh(s);
        if (!r) throw e;
        return this.send<T>(endpoint, opts, r.accessToken);
      }
      throw e;
    }
  }

  /** The URL of an endpoint (for EventSource, which cannot send headers). */
  url(endpoint: Endpoint, opts: Pick<RequestOptions, 'params' | 'query'> = {}): string {
    return this.base + fillPath(endpoint.path, opts.params) + queryString(opts.query);
  }

  private async send<T>(endpoint: Endpoint, opts: RequestOptions, token: string | null): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    let body: BodyInit | undefined;
    if (opts.raw) {
      body = opts.raw.data;
      headers['content-type'] = opts.raw.contentType;
    } else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(this.url(endpoint, opts), {
        method: endpoint.method,
        headers,
        body,
        signal: opts.signal,
      });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ApiError(0, 'NETWORK', 'The server cannot be reached. Is Attune running?');
    }
    const text = await res.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!res.ok) {
      const err = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | null)
        ?.error;
      throw new ApiError(
        res.status,
        err?.code ?? `HTTP_${res.status}`,
        err?.message ?? (res.statusText || `HTTP ${res.status}`),
        err?.details,
      );
    }
    return parsed as T;
  }
}

export const api = new ApiClient();
