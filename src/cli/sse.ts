/**
 * A reader of server-sent events (text/event-stream) from a fetch response body: splits the byte
 * stream into events (`event`, `data`, `id`, `retry` fields; comments ignored), as the HTML
 * specification describes.
 */

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser: feed text, get the complete events so far. */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;
  /** The last `id:` seen (kept across events, as EventSource does). */
  lastEventId: string | undefined;
  retryMs: number | undefined;

  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    for (;;) {
      const m = /\r\n|\r|\n/.exec(this.buffer);
      if (!m) break;
      // a lone \r at the very end may be the first half of \r\n: wait for more
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const ev = this.line(line);
      if (ev) out.push(ev);
    }
    return out;
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') {
      if (!this.data.length && !this.event) {
        this.id = undefined;
        return undefined;
      }
      const ev: SseEvent = { event: this.event || 'message', data: this.data.join('\n') };
      if (this.id !== undefined) ev.id = this.id;
      this.event = '';
      this.data = [];
      this.id = undefined;
      return ev;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) {
      this.id = value;
      this.lastEventId = value;
    } else if (field === 'retry' && /^\d+$/.test(value)) this.retryMs = Number(value);
    return undefined;
  }
}

/** The events of a response body, until it ends or `signal` aborts. */
export async function* readSse(
  body: ReadableStream<Uint8Array>,
  parser: SseParser = new SseParser(),
): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      yield* parser.push(decoder.decode(value, { stream: true }));
    }
    // an event cut off by the end of the stream is incomplete and dropped (as EventSource does)
    yield* parser.push(decoder.decode());
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => {});
  }
}
