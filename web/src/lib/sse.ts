/**
 * Server-sent events from the API. EventSource cannot send headers, so the access token goes in
 * `?access_token=`; when the stream drops (the server restarted, the token expired) it is reopened
 * with a fresh token, resuming after the last output seen. When the server refuses the stream
 * outright (no such endpoint, no permission), the reason is read and reported instead of retrying.
 */
import { ApiError, api } from '../api/client.ts';
import type { Endpoint } from '../api/endpoints.ts';

/** `ended`: the server said the stream is over (e.g. the execution finished); it is not reopened. */
export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'closed' | 'ended';

export interface StreamOptions {
  params?: Record<string, string | number>;
  query?: Record<string, string | number | undefined>;
  /** Event name → handler of its parsed JSON data. */
  on: Record<string, (data: unknown, id: string) => void>;
  onState?: (s: StreamState, error?: ApiError) => void;
  /** Called after a reconnection, so the caller can catch up on what it may have missed. */
  onReconnect?: () => void;
  /** Query parameter that carries the last event id on reconnection (e.g. `after`). */
  resumeParam?: string;
  /** An event after which the server closes the stream for good (e.g. `end`): stop there. */
  endEvent?: string;
}

export function openStream(endpoint: Endpoint, opts: StreamOptions): () => void {
  let es: EventSource | null = null;
  let closed = false;
  let lastId = '';
  let everOpened = false;
  let attempt = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const state = (s: StreamState, e?: ApiError) => opts.onState?.(s, e);

  const connect = async () => {
    if (closed) return;
    let token: string | null;
    try {
      token = await api.freshToken();
    } catch {
      token = api.current?.accessToken ?? null;
    }
    if (closed) return;
    const query: Record<string, string | number | undefined> = {
      ...opts.query,
      access_token: token ?? undefined,
    };
    if (lastId && opts.resumeParam) query[opts.resumeParam] = lastId;
    const url = api.url(endpoint, { params: opts.params, query });
    const source = new EventSource(url);
    es = source;
    source.onopen = () => {
      const reconnected = everOpened;
      everOpened = true;
      attempt = 0;
      state('live');
      if (reconnected) opts.onReconnect?.();
    };
    for (const [name, handler] of Object.entries(opts.on))
      source.addEventListener(name, (ev) => {
        const m = ev as MessageEvent<string>;
        if (m.lastEventId) lastId = m.lastEventId;
        let parsed: unknown = m.data;
        try {
          parsed = JSON.parse(m.data);
        } catch {
          /* not JSON: pass the text */
        }
        handler(parsed, m.lastEventId);
        if (name === opts.endEvent) finish();
      });
    if (opts.endEvent && !opts.on[opts.endEvent]) source.addEventListener(opts.endEvent, () => finish());
    source.onerror = () => {
      if (closed) return;
      if (source.readyState === EventSource.CONNECTING) {
        state('reconnecting');
        return; // the browser retries by itself
      }
      source.close();
      void diagnose(url).then((err) => {
        if (closed) return;
        if (err && err.status !== 401 && err.status !== 503 && err.status !== 0) {
          state('closed', err);
          closed = true;
          return;
        }
        attempt++;
        state('reconnecting', err ?? undefined);
        timer = setTimeout(() => void connect(), Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)));
      });
    };
  };

  const finish = () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    es?.close();
    state('ended');
  };

  state('connecting');
  void connect();
  return () => {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    es?.close();
  };
}

/** Why a stream was refused: the API's error, or null when it seems fine (a dropped connection). */
async function diagnose(url: string): Promise<ApiError | null> {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), 5000);
  try {
    const res = await fetch(url, { signal: ctl.signal, headers: { accept: 'text/event-stream' } });
    if (res.ok) {
      void res.body?.cancel();
      return null;
    }
    let body: { error?: { code?: string; message?: string } } | null = null;
    try {
      body = await res.json();
    } catch {
      /* not JSON */
    }
    return new ApiError(
      res.status,
      body?.error?.code ?? `HTTP_${res.status}`,
      body?.error?.message ?? res.statusText,
    );
  } catch {
    return new ApiError(0, 'NETWORK', 'The server cannot be reached');
  } finally {
    clearTimeout(t);
  }
}
