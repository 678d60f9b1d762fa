/**
 * Turns many concurrent single-item calls into few batch calls.
 *
 * A bus consumer with a prefetch of N runs up to N handlers at once; each handler hands its item to
 * `add` and waits. Items that arrive together (in the same turn of the event loop, or within
 * `maxDelayMs`) are processed by one call of `process`, typically in one database transaction, and
 * every `add` resolves when that call has finished (committed) — or rejects when it failed.
 *
 * While `concurrency` batches are in flight, new items wait and form the next batch, so batches grow
 * by themselves under load and stay small (latency ≈ one turn) when idle.
 *
 * A batch that fails is retried item by item (`isolateFailures`, the default), so one poisoned item
 * fails alone instead of taking its neighbours down with it.
 */

export interface BatcherOptions {
  /** Largest batch handed to `process`. Default 100. */
  maxBatchSize?: number;
  /**
   * How long the first item of a batch waits for company. 0 (the default) = until the current turn
   * of the event loop has ended (`setImmediate`): items delivered together are batched, a lone
   * item is not delayed.
   */
  maxDelayMs?: number;
  /** Batches processed at once. Default 1. */
  concurrency?: number;
  /** When a batch of several items fails, process its items one by one. Default true. */
  isolateFailures?: boolean;
}

/**
 * Processes a batch. Returns one result per item, in order (or nothing, when the results are
 * `undefined`). Throwing fails every item of the batch.
 */
export type BatchProcessor<T, R> = (items: T[]) => Promise<R[] | undefined> | Promise<void>;

interface Pending<T, R> {
  item: T;
  resolve: (r: R) => void;
  reject: (e: unknown) => void;
}

export class BatcherClosedError extends Error {
  constructor() {
    super('the batcher is closed');
    this.name = 'BatcherClosedError';
  }
}

export class Batcher<T, R = void> {
  readonly #process: BatchProcessor<T, R>;
  readonly #maxBatchSize: number;
  readonly #maxDelayMs: number;
  readonly #concurrency: number;
  readonly #isolate: boolean;
  #queue: Pending<T, R>[] = [];
  #active = 0;
  #timer: ReturnType<typeof setTimeout> | ReturnType<typeof setImmediate> | undefined;
  #closed = false;
  #idle: (() => void)[] = [];
  /** Batches processed so far (for metrics and tests). */
  batches = 0;
  /** Items processed so far. */
  items = 0;

  constructor(process: BatchProcessor<T, R>, opts: BatcherOptions = {}) {
    this.#process = process;
    this.#maxBatchSize = positiveInt(opts.maxBatchSize ?? 100, 'maxBatchSize');
    this.#maxDelayMs = opts.maxDelayMs ?? 0;
    if (!Number.isFinite(this.#maxDelayMs) || this.#maxDelayMs < 0)
      throw new RangeError('maxDelayMs must be a number ≥ 0');
    this.#concurrency = positiveInt(opts.concurrency ?? 1, 'concurrency');
    this.#isolate = opts.isolateFailures ?? true;
  }

  /** Items waiting for a batch (not yet handed to `process`). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Batches in flight. */
  get active(): number {
    return this.#active;
  }

  /** Adds an item; resolves with its result once its batch has been processed. */
  add(item: T): Promise<R> {
    if (this.#closed) return Promise.reject(new BatcherClosedError());
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  /** Processes what is waiting now and resolves when nothing is waiting or in flight. */
  async drain(): Promise<void> {
    if (this.#queue.length) this.#run();
    if (!this.#queue.length && this.#active === 0) return;
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  /** Refuses new items, processes the waiting ones and waits for every batch in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain();
  }

  #schedule(): void {
    if (this.#active >= this.#concurrency) return; // the end of a batch schedules the next one
    if (this.#queue.length >= this.#maxBatchSize) {
      this.#run();
      return;
    }
    if (this.#timer !== undefined) return;
    this.#timer =
      this.#maxDelayMs > 0
        ? setTimeout(() => this.#run(), this.#maxDelayMs)
        : setImmediate(() => this.#run());
  }

  #clearTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer as ReturnType<typeof setTimeout>);
    clearImmediate(this.#timer as ReturnType<typeof setImmediate>);
    this.#timer = undefined;
  }

  #run(): void {
    this.#clearTimer();
    while (this.#active < this.#concurrency && this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatchSize);
      this.#active++;
      void this.#processBatch(batch).finally(() => {
        this.#active--;
        if (this.#queue.length) this.#run();
        else if (this.#active === 0) for (const f of this.#idle.splice(0)) f();
      });
    }
  }

  async #processBatch(batch: Pending<T, R>[]): Promise<void> {
    this.batches++;
    this.items += batch.length;
    try {
      const results = await this.#process(batch.map((p) => p.item));
      batch.forEach((p, i) => {
        p.resolve((results ? results[i] : undefined) as R);
      });
    } catch (e) {
      if (!this.#isolate || batch.length === 1) {
        for (const p of batch) p.reject(e);
        return;
      }
      for (const p of batch) {
        this.batches++;
        try {
          const [r] = (await this.#process([p.item])) ?? [];
          p.resolve(r as R);
        } catch (err) {
          p.reject(err);
        }
      }
    }
  }
}

function positiveInt(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`${name} must be an integer ≥ 1`);
  return n;
}
