/**
 * A server-sent-events response (text/event-stream) over Fastify's raw response: events with an
 * optional id (so a reconnecting browser sends `Last-Event-ID`), comment heartbeats, bounded
 * buffering, and one `onClose` that fires exactly once whether the client left, the server ended
 * the stream or the hub shut down.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Closable } from './hub.ts';

export interface SseOptions {
  heartbeatMs: number;
  /** Unsent bytes beyond which the client is dropped (a slow reader must not hold the server's memory). */
  maxBufferedBytes: number;
  /** Reconnection delay suggested to the browser. */
  retryMs?: number;
}

export class SseStream implements Closable {
  private readonly res: FastifyReply['raw'];
  private readonly heartbeat: NodeJS.Timeout;
  private readonly closeHandlers: (() => void)[] = [];
  private finished = false;

  /** Hijacks the reply and writes the event-stream headers. */
  constructor(
    req: FastifyRequest,
    reply: FastifyReply,
    private readonly opts: SseOptions,
  ) {
    reply.hijack();
    this.res = reply.raw;
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // The connection is not reused after the stream: it closes with it (also on shutdown).
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': String(req.id),
    });
    this.res.write(`retry: ${opts.retryMs ?? 3000}\n\n`);
    // The response closes when it ends or when the client goes away (the socket closes).
    this.res.on('close', () => this.finish());
    this.heartbeat = setInterval(() => this.comment('ping'), opts.heartbeatMs);
    this.heartbeat.unref();
    // The client may have left while the stream was being prepared.
    if (this.res.destroyed || !this.res.socket || this.res.socket.destroyed) this.finish();
  }

  get closed(): boolean {
    return this.finished;
  }

  /** Runs `fn` once, when the stream ends for whatever reason (at once if it already has). */
  onClose(fn: () => void): void {
    if (this.finished) fn();
    else this.closeHandlers.push(fn);
  }

  /** Sends one event; its data is JSON. Returns false when the stream is closed (or was just dropped). */
  send(event: string, data: unknown, id?: number): boolean {
    let frame = `event: ${event}\n`;
    if (id !== undefined) frame += `id: ${id}\n`;
    frame += `data: ${JSON.stringify(data)}\n\n`;
    return this.write(frame);
  }

  /** Sends a comment line (ignored by EventSource; keeps proxies from timing the connection out). */
  comment(text: string): boolean {
    return this.write(`: ${text.replace(/[\r\n]+/g, ' ')}\n\n`);
  }

  /** Whether the client is behind: wait for `drain()` before sending more. */
  get needsDrain(): boolean {
    return !this.finished && this.res.writableNeedDrain;
  }

  /** Resolves when the unsent data has been handed to the socket (or the stream closed). */
  async drain(): Promise<void> {
    if (this.finished || !this.res.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /** Ends the stream (a final event should have been sent before). Idempotent. */
  close(): void {
    if (this.finished) return;
    this.res.end();
    this.finish();
  }

  private write(frame: string): boolean {
    if (this.finished) return false;
    if (this.res.writableLength > this.opts.maxBufferedBytes) {
      // The client does not keep up; it reconnects and resumes from the database.
      this.res.destroy();
      this.finish();
      return false;
    }
    this.res.write(frame);
    return true;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.heartbeat);
    const handlers = this.closeHandlers.splice(0);
    for (const h of handlers) {
      try {
        h();
      } catch {
        /* a close handler must not break the others */
      }
    }
  }
}
