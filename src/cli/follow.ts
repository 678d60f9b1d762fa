/**
 * Following an execution until it finishes: its server-sent-event stream (`status`, `output` with
 * id = seq, `end`), reconnecting after a dropped connection without repeating output, and falling
 * back to polling the execution and its output when the server offers no stream.
 */
import { TERMINAL_EXECUTION_STATUSES } from '../domain/status.ts';
import type { Execution, OutputChunk } from '../services/api/resource-types.ts';
import type { ApiClient } from './client.ts';
import { ApiError, ConnectionError } from './errors.ts';
import { readSse, SseParser } from './sse.ts';

export const isTerminal = (status: string): boolean =>
  (TERMINAL_EXECUTION_STATUSES as readonly string[]).includes(status);

export interface FollowOptions {
  onStatus?: (e: Execution) => void;
  onOutput?: (chunk: OutputChunk) => void;
  signal?: AbortSignal;
  /** Polling interval when there is no stream (default 1 s). */
  pollMs?: number;
  /** How long to keep trying to reconnect a dropped stream (default 60 s). */
  reconnectForMs?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Follows execution `id` until it is finished; resolves with its final record. */
export async function followExecution(
  api: ApiClient,
  id: number,
  opts: FollowOptions = {},
): Promise<Execution> {
  let lastSeq = 0;
  let lastKey = '';
  const status = (e: Execution) => {
    const key = `${e.status}|${e.updated_at}`;
    if (key === lastKey) return;
    lastKey = key;
    opts.onStatus?.(e);
  };
  const output = (c: OutputChunk) => {
    if (c.seq <= lastSeq) return;
    lastSeq = c.seq;
    opts.onOutput?.(c);
  };
  const get = () => api.data<Execution>('GET', `/api/v1/executions/${id}`, { signal: opts.signal });

  let downSince: number | undefined;
  for (;;) {
    let res: Response;
    try {
      res = await api.stream(`/api/v1/executions/${id}/stream`, {
        query: lastSeq ? { after: lastSeq } : undefined,
        signal: opts.signal,
      });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      // a server without the stream (or behind a proxy that refuses it): poll instead
      if (e instanceof ApiError && (e.status === 404 || e.status === 405 || e.status === 406)) {
        await get(); // a real 404 for the execution itself surfaces here
        return poll(api, id, { ...opts, onStatus: status, onOutput: output }, () => lastSeq);
      }
      if (e instanceof ConnectionError) {
        downSince ??= Date.now();
        if (Date.now() - downSince > (opts.reconnectForMs ?? 60_000)) throw e;
        await sleep(1000, opts.signal);
        continue;
      }
      throw e;
    }
    downSince = undefined;
    let ended = false;
    try {
      for await (const ev of readSse(res.body!, new SseParser())) {
        if (ev.event === 'status') status(JSON.parse(ev.data) as Execution);
        else if (ev.event === 'output') output(JSON.parse(ev.data) as OutputChunk);
        else if (ev.event === 'end') {
          ended = true;
          break;
        }
      }
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      // the connection dropped: reconnect below, continuing after the last output seen
    }
    if (ended) {
      const final = await get();
      status(final);
      return final;
    }
    // the stream closed without `end`: the server restarted, or a proxy cut it; is it done?
    const now = await get().catch((e: unknown) => {
      if (e instanceof ConnectionError) return undefined;
      throw e;
    });
    if (now && isTerminal(now.status)) {
      await drainOutput(api, id, () => lastSeq, output, opts.signal);
      status(now);
      return now;
    }
    downSince ??= Date.now();
    if (Date.now() - downSince > (opts.reconnectForMs ?? 60_000))
      throw new ConnectionError(`lost the connection to ${api.baseUrl} while following execution ${id}`);
    await sleep(500, opts.signal);
  }
}

/** Reads the stored output after the last seq seen (all pages). */
async function drainOutput(
  api: ApiClient,
  id: number,
  lastSeq: () => number,
  output: (c: OutputChunk) => void,
  signal?: AbortSignal,
): Promise<void> {
  for (;;) {
    let page: { data: OutputChunk[]; has_more: boolean };
    try {
      page = await api.call('GET', `/api/v1/executions/${id}/output`, {
        query: { after: lastSeq(), limit: 1000 },
        signal,
      });
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return;
      throw e;
    }
    for (const c of page.data ?? []) output(c);
    if (!page.has_more || !page.data?.length) return;
  }
}

async function poll(
  api: ApiClient,
  id: number,
  opts: FollowOptions & { onStatus: (e: Execution) => void; onOutput: (c: OutputChunk) => void },
  lastSeq: () => number,
): Promise<Execution> {
  for (;;) {
    const e = await api.data<Execution>('GET', `/api/v1/executions/${id}`, { signal: opts.signal });
    await drainOutput(api, id, lastSeq, opts.onOutput, opts.signal);
    opts.onStatus(e);
    if (isTerminal(e.status)) return e;
    await sleep(opts.pollMs ?? 1000, opts.signal);
  }
}
