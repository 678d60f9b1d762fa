/**
 * The RabbitMQ bus (amqplib), for the distributed mode. Semantics in bus.ts; how they are built:
 *
 * Topology (all durable; `attune` is the default exchange name, configurable for isolation):
 * - exchange `attune` (topic): every publish goes there, with the topic as routing key;
 * - exchange `attune.dead` (topic): dead letters, routed by the name of the queue they died in;
 * - per work queue `Q`: queue `Q` bound to `attune` with the consumer's patterns and declared with
 *   `x-dead-letter-exchange: attune.dead` (so anything the broker itself dead-letters lands in
 *   `Q.dead` too); queue `Q.retry` (no consumer; its messages expire back into `Q` through the
 *   default exchange); queue `Q.dead`, bound to `attune.dead` with the key `Q`.
 * - per subscriber: a server-named, exclusive, auto-delete queue, consumed without acks.
 *
 * Publishing: one confirm channel; persistent messages; `publish` resolves on the broker's ack.
 * While disconnected, publishes wait for the next connection (at most `publishTimeoutMs`); a
 * message whose channel died before its confirm is sent again on the next connection — so a
 * confirmed message is never lost, and an unconfirmed one may arrive twice.
 *
 * Consuming: one channel per consumer (its own prefetch), manual acks. A failed message is retried
 * by publishing a copy, carrying its delivery count in the header `x-attune-deliveries`, to `Q.retry`
 * with a per-message expiration of `retryDelayMs`, then acknowledging the original. (RabbitMQ
 * expires messages only at the head of a queue: consumers of one queue should share one retry
 * delay, or shorter delays wait behind longer ones.) After `maxDeliveries` the copy goes to
 * `attune.dead` → `Q.dead` with `x-attune-error` instead. A message the broker redelivers (flag
 * `redelivered`: its consumer died or lost its connection before settling it) is first re-enqueued
 * with its count incremented, so a message that crashes its consumers ends in `Q.dead` too.
 * If a consumer's channel dies while its handler runs, the outcome is dropped and the broker
 * redelivers the message (at least once).
 *
 * Connection loss (socket error, missed heartbeats, broker restart): state `disconnected`, reconnect
 * with exponential backoff and jitter, then the exchanges, queues, bindings and consumers are declared
 * again. Subscribers miss what is published meanwhile (at most once).
 */
import { randomUUID } from 'node:crypto';
import amqp, {
  type Channel,
  type ChannelModel,
  type ConfirmChannel,
  type ConsumeMessage,
  type Options,
} from 'amqplib';
import {
  type Bus,
  BusError,
  type BusLogger,
  type BusMessage,
  type BusState,
  type ConsumeOptions,
  type JsonValue,
  type MessageHandler,
  type PublishOptions,
  type Subscription,
  silentLogger,
} from './bus.ts';
import {
  checkPatterns,
  checkQueueName,
  checkTopic,
  DEFAULT_CLOSE_GRACE_MS,
  encodePayload,
  errorMessage,
  H_DELIVERIES,
  H_ERROR,
  H_TOPIC,
  type ResolvedConsumeOptions,
  resolveConsumeOptions,
  resolvePublishOptions,
  StateCell,
  waitIdle,
} from './common.ts';

export interface AmqpBusOptions {
  /** `amqp://user:pass@host:5672/vhost`. */
  url: string;
  /** Name of the topic exchange; dead letters go to `<exchange>.dead`. Default `attune`. */
  exchange?: string;
  /**
   * Keeps several deployments apart on one broker (and vhost): the exchange is named after it and
   * every queue name is prefixed with `<namespace>.`. Default none (exchange `attune`, bare names).
   */
  namespace?: string;
  logger?: BusLogger;
  /** How long a publish may wait for a connection and its confirm. Default 15 s. */
  publishTimeoutMs?: number;
  /** How long `AmqpBus.connect` waits for the first connection. Default 15 s. */
  connectTimeoutMs?: number;
  /** Reconnect backoff: first delay, doubled per failed attempt up to the maximum. Default 100 ms … 5 s. */
  reconnectInitialDelayMs?: number;
  reconnectMaxDelayMs?: number;
  /** AMQP heartbeat (a dead peer is noticed within about twice this). Default 10 s; unless the URL sets one. */
  heartbeatSeconds?: number;
  /** Shown in the broker's connection list. */
  connectionName?: string;
  /** How long closing a subscription waits for its handlers in flight. Default 10 s. */
  closeGraceMs?: number;
}

/** The URL with its password masked, for logs and errors. */
export function redactAmqpUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class PublishTimeout extends Error {}

interface Waiter {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export class AmqpBus implements Bus {
  readonly kind = 'amqp' as const;
  readonly exchange: string;
  readonly deadExchange: string;
  private readonly url: string;
  /** @internal */
  readonly log: BusLogger;
  /** @internal */
  readonly closeGraceMs: number;
  private readonly publishTimeoutMs: number;
  private readonly backoff: { initial: number; max: number };
  private readonly connectionName: string;
  private readonly cell = new StateCell('connecting');

  private conn: ChannelModel | undefined;
  private pub: ConfirmChannel | undefined;
  /** Incremented per connection attempt; events of older connections are ignored. */
  private generation = 0;
  private establishing = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastError = 'not connected yet';
  private waiters = new Set<Waiter>();
  private drain: Promise<void> | undefined;
  private publishesInFlight = 0;
  private publishesIdle: (() => void)[] = [];
  private closing: Promise<void> | undefined;
  /** @internal */
  readonly consumers = new Set<AmqpConsumer>();
  private readonly queuePrefix: string;

  private constructor(opts: AmqpBusOptions) {
    const exchange = opts.namespace ?? opts.exchange ?? 'attune';
    checkQueueName(exchange);
    this.queuePrefix = opts.namespace ? `${opts.namespace}.` : '';
    this.exchange = exchange;
    this.deadExchange = `${exchange}.dead`;
    this.log = opts.logger ?? silentLogger;
    this.publishTimeoutMs = opts.publishTimeoutMs ?? 15_000;
    this.closeGraceMs = opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
    this.backoff = { initial: opts.reconnectInitialDelayMs ?? 100, max: opts.reconnectMaxDelayMs ?? 5_000 };
    this.connectionName = opts.connectionName ?? `attune pid ${process.pid}`;
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new BusError('INVALID_ARGUMENT', `invalid AMQP URL '${redactAmqpUrl(opts.url)}'`);
    }
    if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') {
      throw new BusError(
        'INVALID_ARGUMENT',
        `AMQP URL must start with amqp:// or amqps://, got '${u.protocol}'`,
      );
    }
    if (!u.searchParams.has('heartbeat'))
      u.searchParams.set('heartbeat', String(opts.heartbeatSeconds ?? 10));
    this.url = u.toString();
  }

  /**
   * Connects (retrying with backoff for `connectTimeoutMs`) and returns the bus; rejects with
   * BUS_UNAVAILABLE if the broker cannot be reached in time, at once if it refuses the credentials.
   */
  static async connect(opts: AmqpBusOptions): Promise<AmqpBus> {
    const bus = new AmqpBus(opts);
    const deadline = Date.now() + (opts.connectTimeoutMs ?? 15_000);
    for (;;) {
      try {
        await bus.establish();
        return bus;
      } catch (e) {
        const msg = errorMessage(e);
        bus.lastError = msg;
        const fatal = /ACCESS[-_]REFUSED|NOT[-_]ALLOWED|\b403\b|\b530\b/.test(msg);
        const delay = bus.nextDelay();
        if (fatal || Date.now() + delay >= deadline) {
          await bus.close();
          throw new BusError(
            'BUS_UNAVAILABLE',
            `cannot connect to RabbitMQ at ${redactAmqpUrl(opts.url)}: ${msg}`,
            {
              cause: e,
            },
          );
        }
        await sleep(delay);
      }
    }
  }

  get state(): BusState {
    return this.cell.state;
  }

  get healthy(): boolean {
    return this.cell.state === 'connected';
  }

  onStateChange(listener: (state: BusState, reason?: string) => void): () => void {
    return this.cell.listen(listener);
  }

  async publish(topic: string, payload: JsonValue, opts?: PublishOptions): Promise<void> {
    this.assertOpen();
    checkTopic(topic);
    const { messageId, headers } = resolvePublishOptions(opts);
    const body = Buffer.from(encodePayload(payload));
    await this.publishConfirmed(this.exchange, topic, body, {
      persistent: true,
      contentType: 'application/json',
      messageId: messageId ?? randomUUID(),
      timestamp: Math.floor(Date.now() / 1000),
      headers: { ...headers, [H_TOPIC]: topic },
    });
  }

  async consume(queue: string, opts: ConsumeOptions, handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    checkQueueName(queue);
    const resolved = resolveConsumeOptions(opts);
    if (typeof handler !== 'function') throw new BusError('INVALID_ARGUMENT', 'handler must be a function');
    return this.register(new WorkConsumer(this, this.queuePrefix + queue, resolved, handler));
  }

  async subscribe(topics: string[], handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    const patterns = checkPatterns(topics);
    if (patterns.length === 0)
      throw new BusError('INVALID_ARGUMENT', 'subscribe needs at least one topic pattern');
    if (typeof handler !== 'function') throw new BusError('INVALID_ARGUMENT', 'handler must be a function');
    return this.register(new BroadcastConsumer(this, patterns, handler));
  }

  /** Messages ready in a queue; undefined if the queue does not exist or the broker is unreachable. */
  async queueDepth(queue: string): Promise<number | undefined> {
    checkQueueName(queue.endsWith('.retry') ? queue.slice(0, -6) : queue);
    const conn = this.conn;
    if (!conn) return undefined;
    let ch: Channel | undefined;
    try {
      ch = await conn.createChannel();
      ch.on('error', () => {});
      const r = await ch.checkQueue(this.queuePrefix + queue);
      return r.messageCount;
    } catch {
      return undefined;
    } finally {
      await ch?.close().catch(() => {});
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    clearTimeout(this.reconnectTimer);
    // Publishes still waiting for a connection give up now; sent ones get their confirm first.
    for (const w of [...this.waiters]) {
      clearTimeout(w.timer);
      w.reject(new BusError('BUS_CLOSED', 'the bus is closed'));
    }
    this.waiters.clear();
    await Promise.all([...this.consumers].map((c) => c.close()));
    if (this.publishesInFlight > 0) await new Promise<void>((r) => this.publishesIdle.push(r));
    this.cell.set('closed');
    this.generation++;
    const conn = this.conn;
    this.conn = undefined;
    this.pub = undefined;
    if (conn) await conn.close().catch(() => {});
  }

  // ───────────────────────────── connection ─────────────────────────────

  /** One connection attempt: connection, publish channel, exchanges, then every consumer. */
  private async establish(): Promise<void> {
    const gen = ++this.generation;
    this.establishing = true;
    let conn: ChannelModel | undefined;
    try {
      conn = await amqp.connect(this.url, {
        noDelay: true,
        timeout: 10_000,
        clientProperties: { connection_name: this.connectionName },
      });
      const c = conn;
      c.on('error', (err: Error) => this.log.warn({ err: err.message }, 'AMQP connection error'));
      c.on('close', (err?: Error) => this.lost(gen, err));
      c.on('blocked', (reason: string) => this.log.warn({ reason }, 'RabbitMQ blocked publishing'));
      c.on('unblocked', () => this.log.info({}, 'RabbitMQ unblocked publishing'));
      const pub = await c.createConfirmChannel();
      pub.on('error', (err: Error) => this.log.warn({ err: err.message }, 'AMQP publish channel error'));
      pub.on('close', () => {
        // A channel-level error (e.g. an exchange deleted under us): start over on a fresh connection.
        if (gen === this.generation && this.pub === pub && !this.closing) c.close().catch(() => {});
      });
      await pub.assertExchange(this.exchange, 'topic', { durable: true });
      await pub.assertExchange(this.deadExchange, 'topic', { durable: true });
      if (this.closing || gen !== this.generation) throw new Error('closed while connecting');
      this.conn = c;
      this.pub = pub;
      for (const consumer of this.consumers) {
        await consumer.attach(c).catch((e: unknown) => consumer.attachFailed(c, e));
      }
      if (gen !== this.generation || this.conn !== c) throw new Error('connection lost while connecting');
      this.attempt = 0;
      this.establishing = false;
      this.cell.set('connected');
      this.log.info({ url: redactAmqpUrl(this.url) }, 'connected to RabbitMQ');
      for (const w of [...this.waiters]) {
        clearTimeout(w.timer);
        w.resolve();
      }
      this.waiters.clear();
    } catch (e) {
      this.establishing = false;
      if (this.conn === conn) {
        this.conn = undefined;
        this.pub = undefined;
      }
      await conn?.close().catch(() => {});
      throw e;
    }
  }

  private lost(gen: number, err: Error | undefined): void {
    if (gen !== this.generation || this.closing) return;
    const reason = err ? err.message : 'connection closed';
    this.lastError = reason;
    this.conn = undefined;
    this.pub = undefined;
    for (const c of this.consumers) c.detach();
    if (this.establishing) return; // the attempt in progress fails and schedules the next one
    this.cell.set('disconnected', reason);
    this.log.warn({ reason }, 'lost the RabbitMQ connection; reconnecting');
    this.scheduleReconnect();
  }

  private nextDelay(): number {
    const base = Math.min(this.backoff.max, this.backoff.initial * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    const delay = this.nextDelay();
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closing) return;
      this.establish().catch((e: unknown) => {
        this.lastError = errorMessage(e);
        if (this.closing) return;
        this.cell.set('disconnected', this.lastError);
        this.log.warn({ err: this.lastError }, 'RabbitMQ reconnect failed');
        this.scheduleReconnect();
      });
    }, delay);
  }

  /** @internal The live connection, if any. */
  current(): ChannelModel | undefined {
    return this.conn;
  }

  private async register<T extends AmqpConsumer>(c: T): Promise<T> {
    this.consumers.add(c);
    try {
      const deadline = Date.now() + this.publishTimeoutMs;
      for (;;) {
        await this.connected(deadline);
        const conn = this.conn;
        if (!conn) continue;
        try {
          await c.attach(conn);
          return c;
        } catch (e) {
          if (this.conn === conn) throw e; // a refusal, not a connection loss
          if (Date.now() >= deadline) throw e;
        }
      }
    } catch (e) {
      this.consumers.delete(c);
      await c.close();
      if (e instanceof BusError) throw e;
      throw new BusError('BROKER_REJECTED', `cannot set up the consumer: ${errorMessage(e)}`, { cause: e });
    }
  }

  private assertOpen(): void {
    if (this.closing) throw new BusError('BUS_CLOSED', 'the bus is closed');
  }

  /** Resolves when connected; rejects with BUS_UNAVAILABLE at the deadline. */
  private connected(deadline: number): Promise<void> {
    if (this.closing) return Promise.reject(new BusError('BUS_CLOSED', 'the bus is closed'));
    if (this.pub && this.cell.state === 'connected') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        timer: setTimeout(
          () => {
            this.waiters.delete(w);
            reject(
              new BusError(
                'BUS_UNAVAILABLE',
                `RabbitMQ at ${redactAmqpUrl(this.url)} is unreachable (${this.lastError}); gave up after ${this.publishTimeoutMs} ms`,
              ),
            );
          },
          Math.max(0, deadline - Date.now()),
        ),
      };
      this.waiters.add(w);
    });
  }

  // ───────────────────────────── publishing ─────────────────────────────

  /** @internal Publishes and waits for the confirm, re-sending on a new connection if the channel dies. */
  async publishConfirmed(
    exchange: string,
    routingKey: string,
    body: Buffer,
    props: Options.Publish,
  ): Promise<void> {
    const deadline = Date.now() + this.publishTimeoutMs;
    this.publishesInFlight++;
    try {
      for (;;) {
        await this.connected(deadline);
        const ch = this.pub;
        if (!ch) continue;
        if (this.drain) await this.drain;
        if (this.pub !== ch) continue;
        try {
          await this.sendConfirmed(ch, exchange, routingKey, body, props, deadline);
          return;
        } catch (e) {
          if (e instanceof PublishTimeout) {
            throw new BusError(
              'BUS_UNAVAILABLE',
              `RabbitMQ did not confirm the message within ${this.publishTimeoutMs} ms`,
            );
          }
          if (errorMessage(e) === 'message nacked') {
            throw new BusError('BROKER_REJECTED', 'RabbitMQ refused the message (negative confirm)');
          }
          // The channel died before the confirm: send again on the next connection.
          if (Date.now() >= deadline) {
            throw new BusError(
              'BUS_UNAVAILABLE',
              `message not confirmed before the connection was lost: ${errorMessage(e)}`,
            );
          }
          if (this.pub === ch) await sleep(10);
        }
      }
    } finally {
      this.publishesInFlight--;
      if (this.publishesInFlight === 0) for (const r of this.publishesIdle.splice(0)) r();
    }
  }

  private sendConfirmed(
    ch: ConfirmChannel,
    exchange: string,
    routingKey: string,
    body: Buffer,
    props: Options.Publish,
    deadline: number,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new PublishTimeout()), Math.max(1, deadline - Date.now()));
      try {
        const ok = ch.publish(exchange, routingKey, body, props, (err: unknown) => {
          clearTimeout(timer);
          if (err) reject(err instanceof Error ? err : new Error(String(err)));
          else resolve();
        });
        if (!ok) this.waitForDrain(ch);
      } catch (e) {
        clearTimeout(timer);
        reject(e);
      }
    });
  }

  /** Back-pressure: once the socket buffer is full, further publishes wait for it to drain. */
  private waitForDrain(ch: ConfirmChannel): void {
    if (this.drain) return;
    this.drain = new Promise<void>((resolve) => {
      const done = () => {
        ch.off('drain', done);
        ch.off('close', done);
        this.drain = undefined;
        resolve();
      };
      ch.on('drain', done);
      ch.on('close', done);
    });
  }
}

// ───────────────────────────── consumers ─────────────────────────────

abstract class AmqpConsumer implements Subscription {
  protected channel: Channel | undefined;
  protected consumerTag: string | undefined;
  protected closed = false;
  private attachedTo: ChannelModel | undefined;
  private attaching: { conn: ChannelModel; run: Promise<void> } | undefined;
  private inFlight = 0;
  private idle: (() => void)[] = [];
  private retryTimer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closing: Promise<void> | undefined;

  constructor(protected readonly bus: AmqpBus) {}

  /** Declares what the consumer needs on `ch` and starts consuming. */
  protected abstract setup(ch: Channel): Promise<void>;

  /** Sets the consumer up on `conn`; concurrent calls for one connection share one attempt. */
  attach(conn: ChannelModel): Promise<void> {
    if (this.closed || (this.channel && this.attachedTo === conn)) return Promise.resolve();
    if (this.attaching?.conn === conn) return this.attaching.run;
    const run = this.attachTo(conn).finally(() => {
      if (this.attaching?.run === run) this.attaching = undefined;
    });
    this.attaching = { conn, run };
    return run;
  }

  private async attachTo(conn: ChannelModel): Promise<void> {
    const ch = await conn.createChannel();
    ch.on('error', (err: Error) => this.log().warn({ err: err.message }, 'AMQP consumer channel error'));
    ch.on('close', () => {
      if (this.channel !== ch) return;
      this.channel = undefined;
      // The channel died but the connection lives (e.g. the queue was deleted): set up again.
      if (!this.closed && this.bus.current() === conn) this.reattachLater(conn);
    });
    this.channel = ch;
    this.attachedTo = conn;
    try {
      await this.setup(ch);
      this.failures = 0;
      if (this.closed) await this.dropChannel();
    } catch (e) {
      if (this.channel === ch) this.channel = undefined;
      await ch.close().catch(() => {});
      throw e;
    }
  }

  attachFailed(conn: ChannelModel, e: unknown): void {
    this.log().error({ err: errorMessage(e) }, 'cannot set up an AMQP consumer; retrying');
    this.reattachLater(conn);
  }

  /** The connection is gone: forget the channel (its unacked messages go back to the queue). */
  detach(): void {
    this.channel = undefined;
    for (const r of this.idle.splice(0)) r();
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private reattachLater(conn: ChannelModel): void {
    if (this.closed || this.retryTimer) return;
    const delay = Math.min(5_000, 200 * 2 ** this.failures++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed || this.channel || this.bus.current() !== conn) return;
      this.attach(conn).catch((e: unknown) => this.attachFailed(conn, e));
    }, delay);
  }

  protected log(): BusLogger {
    return this.bus.log;
  }

  protected alive(ch: Channel): boolean {
    return this.channel === ch;
  }

  protected track(run: Promise<void>): void {
    this.inFlight++;
    const done = () => {
      this.inFlight--;
      if (this.inFlight === 0) for (const r of this.idle.splice(0)) r();
    };
    run.then(done, (e: unknown) => {
      this.log().error({ err: errorMessage(e) }, 'AMQP message handling failed');
      done();
    });
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.bus.consumers.delete(this);
    clearTimeout(this.retryTimer);
    const ch = this.channel;
    if (ch && this.consumerTag) await ch.cancel(this.consumerTag).catch(() => {});
    // Handlers in flight get a grace period to settle their messages; whatever is still unsettled
    // when the channel closes goes back to the queue. Without a channel there is nothing to wait for.
    if (this.inFlight > 0 && this.channel) await waitIdle(this.idle, this.bus.closeGraceMs);
    await this.attaching?.run.catch(() => {});
    await this.dropChannel();
  }

  private async dropChannel(): Promise<void> {
    const last = this.channel;
    this.channel = undefined;
    if (last) await last.close().catch(() => {});
  }
}

/** Header values as the handler sees them: the publisher's strings and, on dead letters, the error. */
function userHeaders(h: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (typeof v !== 'string') continue;
    if (k.toLowerCase().startsWith('x-') && k !== H_ERROR) continue;
    out[k] = v;
  }
  return out;
}

class WorkConsumer extends AmqpConsumer {
  constructor(
    bus: AmqpBus,
    private readonly queue: string,
    private readonly opts: ResolvedConsumeOptions,
    private readonly handler: MessageHandler,
  ) {
    super(bus);
  }

  protected async setup(ch: Channel): Promise<void> {
    const { queue, bus } = this;
    await ch.assertQueue(queue, {
      durable: true,
      arguments: { 'x-dead-letter-exchange': bus.deadExchange, 'x-dead-letter-routing-key': queue },
    });
    await ch.assertQueue(`${queue}.retry`, {
      durable: true,
      arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
    });
    await ch.assertQueue(`${queue}.dead`, {
      durable: true,
      arguments: { 'x-dead-letter-exchange': bus.deadExchange, 'x-dead-letter-routing-key': `${queue}.dead` },
    });
    await ch.bindQueue(`${queue}.dead`, bus.deadExchange, queue);
    for (const t of this.opts.topics) await ch.bindQueue(queue, bus.exchange, t);
    await ch.prefetch(this.opts.prefetch);
    const r = await ch.consume(queue, (m) => this.onMessage(ch, m), { noAck: false });
    this.consumerTag = r.consumerTag;
  }

  private onMessage(ch: Channel, m: ConsumeMessage | null): void {
    if (m === null) {
      // Cancelled by the broker (queue deleted): drop the channel, its close handler sets up again.
      this.log().warn({ queue: this.queue }, 'RabbitMQ cancelled the consumer');
      ch.close().catch(() => {});
      return;
    }
    this.track(this.handle(ch, m));
  }

  private async handle(ch: Channel, m: ConsumeMessage): Promise<void> {
    const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
    const topicHeader = headers[H_TOPIC];
    const topic = typeof topicHeader === 'string' ? topicHeader : m.fields.routingKey;
    const counted = Number(headers[H_DELIVERIES] ?? 0);
    let prior = Number.isInteger(counted) && counted >= 0 ? counted : 0;
    if (m.fields.redelivered) {
      // Its last delivery was never settled: that counts. Record it durably before handling again.
      prior++;
      if (prior >= this.opts.maxDeliveries) {
        await this.deadLetter(ch, m, topic, `delivered ${prior} times without being settled`);
      } else {
        await this.forward(ch, m, topic, this.queue, prior, 0);
      }
      return;
    }
    let payload: JsonValue;
    try {
      payload = JSON.parse(m.content.toString('utf8')) as JsonValue;
    } catch {
      await this.deadLetter(ch, m, topic, 'payload is not JSON');
      return;
    }
    const deliveries = prior + 1;
    const msg: BusMessage = {
      id: typeof m.properties.messageId === 'string' ? m.properties.messageId : randomUUID(),
      topic,
      payload,
      deliveries,
      headers: userHeaders(headers),
    };
    try {
      await this.handler(msg);
    } catch (err) {
      if (deliveries >= this.opts.maxDeliveries) {
        this.log().warn(
          { queue: this.queue, topic, messageId: msg.id, deliveries, err: errorMessage(err) },
          'message dead-lettered',
        );
        await this.deadLetter(ch, m, topic, errorMessage(err));
      } else if (this.opts.retryDelayMs === 0) {
        await this.forward(ch, m, topic, this.queue, deliveries, 0);
      } else {
        await this.forward(ch, m, topic, `${this.queue}.retry`, deliveries, this.opts.retryDelayMs);
      }
      return;
    }
    if (this.alive(ch)) {
      try {
        ch.ack(m);
      } catch {
        // channel closed meanwhile: the broker redelivers
      }
    }
  }

  /** Re-enqueues a copy of `m` (to the queue or its retry queue) with its count, then acks `m`. */
  private async forward(
    ch: Channel,
    m: ConsumeMessage,
    topic: string,
    target: string,
    deliveries: number,
    delayMs: number,
  ): Promise<void> {
    const headers = { ...(m.properties.headers ?? {}), [H_TOPIC]: topic, [H_DELIVERIES]: deliveries };
    await this.settleWithCopy(ch, m, '', target, {
      ...this.copyProps(m, headers),
      ...(delayMs > 0 ? { expiration: String(delayMs) } : {}),
    });
  }

  private async deadLetter(ch: Channel, m: ConsumeMessage, topic: string, reason: string): Promise<void> {
    const headers = {
      ...(m.properties.headers ?? {}),
      [H_TOPIC]: topic,
      [H_DELIVERIES]: 0,
      [H_ERROR]: reason,
    };
    await this.settleWithCopy(ch, m, this.bus.deadExchange, this.queue, this.copyProps(m, headers));
  }

  private copyProps(m: ConsumeMessage, headers: Record<string, unknown>): Options.Publish {
    delete headers['x-death'];
    delete headers['x-first-death-exchange'];
    delete headers['x-first-death-queue'];
    delete headers['x-first-death-reason'];
    return {
      persistent: true,
      contentType: 'application/json',
      messageId: typeof m.properties.messageId === 'string' ? m.properties.messageId : randomUUID(),
      timestamp:
        typeof m.properties.timestamp === 'number' ? m.properties.timestamp : Math.floor(Date.now() / 1000),
      headers,
    };
  }

  private async settleWithCopy(
    ch: Channel,
    m: ConsumeMessage,
    exchange: string,
    routingKey: string,
    props: Options.Publish,
  ): Promise<void> {
    if (!this.alive(ch)) return; // the broker redelivers the original anyway
    try {
      await this.bus.publishConfirmed(exchange, routingKey, m.content, props);
    } catch (e) {
      this.log().warn(
        { queue: this.queue, err: errorMessage(e) },
        'cannot re-enqueue a message; returning it',
      );
      if (this.alive(ch)) {
        try {
          ch.nack(m, false, true);
        } catch {
          // channel closed meanwhile: the broker redelivers
        }
      }
      return;
    }
    if (this.alive(ch)) {
      try {
        ch.ack(m);
      } catch {
        // channel closed meanwhile: the original comes back too (at least once)
      }
    }
  }
}

class BroadcastConsumer extends AmqpConsumer {
  constructor(
    bus: AmqpBus,
    private readonly topics: string[],
    private readonly handler: MessageHandler,
  ) {
    super(bus);
  }

  protected async setup(ch: Channel): Promise<void> {
    const q = await ch.assertQueue('', { exclusive: true, autoDelete: true, durable: false });
    for (const t of this.topics) await ch.bindQueue(q.queue, this.bus.exchange, t);
    const r = await ch.consume(q.queue, (m) => this.onMessage(ch, m), { noAck: true });
    this.consumerTag = r.consumerTag;
  }

  private onMessage(ch: Channel, m: ConsumeMessage | null): void {
    if (m === null) {
      ch.close().catch(() => {});
      return;
    }
    const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
    const topicHeader = headers[H_TOPIC];
    let payload: JsonValue;
    try {
      payload = JSON.parse(m.content.toString('utf8')) as JsonValue;
    } catch {
      this.log().warn({ routingKey: m.fields.routingKey }, 'dropped a broadcast message that is not JSON');
      return;
    }
    const msg: BusMessage = {
      id: typeof m.properties.messageId === 'string' ? m.properties.messageId : randomUUID(),
      topic: typeof topicHeader === 'string' ? topicHeader : m.fields.routingKey,
      payload,
      deliveries: 1,
      headers: userHeaders(headers),
    };
    this.track(
      (async () => {
        try {
          await this.handler(msg);
        } catch (err) {
          this.log().warn(
            { topic: msg.topic, messageId: msg.id, err: errorMessage(err) },
            'subscriber failed',
          );
        }
      })(),
    );
  }
}
