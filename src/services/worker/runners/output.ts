/**
 * Output capture: bytes of one stream are decoded as UTF-8 (never splitting a character), passed on
 * live and kept, up to a byte limit. Beyond it nothing more is kept or passed on, the capture is
 * marked truncated, and the caller keeps draining the stream so the producer never blocks.
 */
import { StringDecoder } from 'node:string_decoder';
import type { OutputStream, RunRequest } from './runner.ts';

export class StreamCapture {
  readonly #stream: OutputStream;
  readonly #limit: number;
  readonly #onOutput: RunRequest['onOutput'];
  readonly #decoder = new StringDecoder('utf8');
  readonly #parts: string[] = [];
  #bytes = 0;
  #truncated = false;
  #ended = false;

  constructor(stream: OutputStream, limit: number, onOutput: RunRequest['onOutput']) {
    this.#stream = stream;
    this.#limit = Math.max(0, Math.floor(limit));
    this.#onOutput = onOutput;
  }

  get truncated(): boolean {
    return this.#truncated;
  }

  push(chunk: Buffer): void {
    if (this.#truncated || this.#ended || chunk.length === 0) return;
    const room = this.#limit - this.#bytes;
    let part = chunk;
    if (chunk.length > room) {
      part = chunk.subarray(0, room);
      this.#truncated = true;
    }
    this.#bytes += part.length;
    // An incomplete character at the cut stays in the decoder and is dropped.
    if (part.length > 0) this.#keep(this.#decoder.write(part));
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (!this.#truncated) this.#keep(this.#decoder.end());
  }

  text(): string {
    return this.#parts.join('');
  }

  #keep(s: string): void {
    if (s === '') return;
    this.#parts.push(s);
    try {
      this.#onOutput(this.#stream, s);
    } catch {
      // A failing listener must not disturb the execution.
    }
  }
}
