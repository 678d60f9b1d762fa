/**
 * The message bus: how the processes of the platform wake each other up.
 *
 * Messages never carry the only copy of anything (DESIGN §4.2): the database is the truth, a message
 * says "look at this". Messages caused by a state change go through the transactional outbox
 * (`outbox.ts`); every consumer is idempotent, because delivery is at least once.
 *
 * Two drivers with the same semantics: `MemoryBus` (in-process, the embedded default) and `AmqpBus`
 * (RabbitMQ). `createBus(url)` in `index.ts` picks one.
 *
 * Topics are dot-separated words (`execution.scheduled`, `worker.local.output`); a word is made of
 * letters, digits, `_`, `-` and `:`. Binding patterns use AMQP topic syntax: `*` stands for exactly one
 * word, `#` for zero or more words (`execution.*`, `execution.#`, `#`).
 *
 * - `publish(topic, payload)` delivers a JSON payload to every queue bound to a matching pattern and to
 *   every matching subscriber. It resolves once the message is safe: for RabbitMQ, when the broker
 *   has confirmed the persistent message (publisher confirms); while the broker is unreachable it
 *   waits, at most `publishTimeoutMs`, then rejects with `BUS_UNAVAILABLE`. A publish that resolved
 *   is never lost; one that rejected may nevertheless have gone through (publish again: at least once).
 * - `consume(queue, {topics}, handler)` attaches a competing consumer to a durable work queue: each
 *   message of the queue goes to one consumer. The handler resolving acknowledges the message; the
 *   handler throwing makes it come back after `retryDelayMs` (with `deliveries` + 1), until
 *   `maxDeliveries` deliveries have failed: then it moves to the queue `<queue>.dead`, with the last
 *   error in the header `x-attune-error`. A consumer that dies before settling a message (process
 *   killed, connection lost) gets it redelivered to another consumer; that delivery counts too, so a
 *   message that kills its consumer is dead-lettered like one that throws. At most `prefetch`
 *   handlers run at once per consumer. Queues and their bindings outlive consumers: a queue keeps
 *   collecting messages while nobody consumes it (a queue exists from its first `consume`). Bindings
 *   accumulate: consuming with more topics adds bindings, never removes any. Ordering: one consumer
 *   with `prefetch: 1` sees messages in publish order, except retried ones (they go to the back).
 *   Queue names are letters, digits and `_ - . :`; names ending in `.retry` are reserved.
 *   Handlers should be short: the database is where work is claimed and tracked. (RabbitMQ closes a
 *   channel whose message stays unacknowledged beyond its `consumer_timeout`, 30 min by default;
 *   the message is then redelivered and counted.)
 * - `subscribe(topics, handler)` broadcasts: every subscriber gets every matching message published
 *   while it is subscribed, at most once (no acknowledgement, no retry, nothing kept while
 *   disconnected). For live notifications across processes (status changes, log lines).
 * - Handlers always run asynchronously, never inside `publish`.
 * - `Subscription.close()` stops deliveries and waits for the handlers in flight, at most
 *   `closeGraceMs` (10 s): a message still unsettled then goes back to the queue (RabbitMQ) or is
 *   settled whenever its handler finishes (in memory).
 * - `queueDepth(queue)` counts the messages waiting in a queue (for metrics).
 * - `close()` closes every subscription, waits for publishes in flight, disconnects.
 * - `state` / `healthy` / `onStateChange` report the connection for `/health`.
 */

/** A JSON document, as carried by messages. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface PublishOptions {
  /** Defaults to a random UUID. Consumers may use it to recognise a redelivered message. */
  messageId?: string;
  /** String headers. Names starting with `x-` are reserved for the bus. */
  headers?: Record<string, string>;
}

export interface BusMessage {
  readonly id: string;
  readonly topic: string;
  readonly payload: JsonValue;
  /** 1 on the first delivery; counts every delivery to this queue, failed or unsettled. */
  readonly deliveries: number;
  /** The publisher's headers; on dead-lettered messages also `x-attune-error`. */
  readonly headers: Readonly<Record<string, string>>;
}

export type MessageHandler = (msg: BusMessage) => Promise<void>;

export interface ConsumeOptions {
  /** Binding patterns of the queue (AMQP topic syntax). May be empty for a queue fed otherwise (`x.dead`). */
  topics: string[];
  /** Handlers running at once on this consumer. Default 16. */
  prefetch?: number;
  /** Failed deliveries before dead-lettering to `<queue>.dead`. Default 5. */
  maxDeliveries?: number;
  /** Delay before a failed message is delivered again. Default 1000 ms. */
  retryDelayMs?: number;
}

export interface Subscription {
  /** Stops deliveries to this handler and waits (a bounded time) for the handlers in flight. Idempotent. */
  close(): Promise<void>;
}

/** `connecting` (first connection), `connected`, `disconnected` (reconnecting with backoff), `closed`. */
export type BusState = 'connecting' | 'connected' | 'disconnected' | 'closed';

export interface Bus {
  readonly kind: 'memory' | 'amqp';
  readonly state: BusState;
  /** True when connected: publishes go through without waiting. */
  readonly healthy: boolean;
  /** Calls `listener` on every state change (with the reason, when there is one); returns an unsubscribe. */
  onStateChange(listener: (state: BusState, reason?: string) => void): () => void;
  publish(topic: string, payload: JsonValue, opts?: PublishOptions): Promise<void>;
  consume(queue: string, opts: ConsumeOptions, handler: MessageHandler): Promise<Subscription>;
  subscribe(topics: string[], handler: MessageHandler): Promise<Subscription>;
  /** Messages ready in a queue (not in flight, not waiting for a retry); undefined if unknown or unreachable. */
  queueDepth(queue: string): Promise<number | undefined>;
  close(): Promise<void>;
}

export type BusErrorCode =
  /** A topic, pattern, queue name, header or option is malformed: a programming error. */
  | 'INVALID_ARGUMENT'
  /** The payload cannot be represented as JSON (cycle, BigInt, undefined). */
  | 'INVALID_PAYLOAD'
  /** The bus was closed. */
  | 'BUS_CLOSED'
  /** The broker could not be reached (or did not confirm) in time. Retry later. */
  | 'BUS_UNAVAILABLE'
  /** The broker refused the message (negative confirm) or the queue declaration. */
  | 'BROKER_REJECTED';

export class BusError extends Error {
  readonly code: BusErrorCode;
  constructor(code: BusErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusError';
    this.code = code;
  }
  /** Whether trying again later can succeed. */
  get transient(): boolean {
    return this.code === 'BUS_UNAVAILABLE' || this.code === 'BROKER_REJECTED';
  }
}

/** The subset of a pino logger the bus uses. */
export interface BusLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export const silentLogger: BusLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
