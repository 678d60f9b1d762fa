/**
 * The in-process bus of the embedded mode, with the semantics of the RabbitMQ driver (see bus.ts):
 * queues with bindings that outlive their consumers, competing consumers served round robin,
 * `prefetch` handlers at most per consumer, retry after a delay (to the back of the queue),
 * dead-lettering to `<queue>.dead`, at-most-once broadcast subscribers. Payloads travel as JSON
 * text, so a handler never shares an object with the publisher. Nothing survives the process: the
 * outbox and the database make up for that (a restarted process relays what was not handled).
 */
import { randomUUID } from 'node:crypto';
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
  compilePatterns,
  DEFAULT_CLOSE_GRACE_MS,
  encodePayload,
  errorMessage,
  H_ERROR,
  type ResolvedConsumeOptions,
  resolveConsumeOptions,
  resolvePublishOptions,
  StateCell,
  waitIdle,
} from './common.ts';

interface Envelope {
  id: string;
  topic: string;
  body: string;
  headers: Record<string, string>;
  /** Deliveries of this message to its current queue so far. */
  deliveries: number;
}

class MemQueue {
  private readonly patterns = new Set<string>();
  matches: (topic: string) => boolean = () => false;
  private items: Envelope[] = [];
  private head = 0;
  readonly consumers: MemConsumer[] = [];
  next = 0;
  scheduled = false;

  constructor(readonly name: string) {}

  bind(patterns: string[]): void {
    const before = this.patterns.size;
    for (const p of patterns) this.patterns.add(p);
    if (this.patterns.size !== before) this.matches = compilePatterns(this.patterns);
  }

  get size(): number {
    return this.items.length - this.head;
  }

  push(e: Envelope): void {
    this.items.push(e);
  }

  shift(): Envelope | undefined {
    if (this.head >= this.items.length) return undefined;
    const e = this.items[this.head];
    this.items[this.head] = undefined as unknown as Envelope;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return e;
  }
}

class MemConsumer implements Subscription {
  inFlight = 0;
  closed = false;
  private idle: (() => void)[] = [];

  constructor(
    private readonly bus: MemoryBus,
    readonly queue: MemQueue,
    readonly opts: ResolvedConsumeOptions,
    readonly handler: MessageHandler,
  ) {}

  settled(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.idle.length) for (const r of this.idle.splice(0)) r();
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.bus.detach(this);
    }
    if (this.inFlight > 0) await waitIdle(this.idle, this.bus.closeGraceMs);
  }
}

class MemSubscriber implements Subscription {
  inFlight = 0;
  closed = false;
  private idle: (() => void)[] = [];
  readonly matches: (topic: string) => boolean;

  constructor(
    private readonly bus: MemoryBus,
    topics: string[],
    readonly handler: MessageHandler,
  ) {
    this.matches = compilePatterns(topics);
  }

  settled(): void {
    this.inFlight--;
    if (this.inFlight === 0 && this.idle.length) for (const r of this.idle.splice(0)) r();
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.bus.unsubscribe(this);
    }
    if (this.inFlight > 0) await waitIdle(this.idle, this.bus.closeGraceMs);
  }
}

export interface MemoryBusOptions {
  logger?: BusLogger;
  /** How long closing a subscription waits for its handlers in flight. Default 10 s. */
  closeGraceMs?: number;
}

export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private readonly queues = new Map<string, MemQueue>();
  private readonly subscribers = new Set<MemSubscriber>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly cell = new StateCell('connected');
  private readonly log: BusLogger;
  /** @internal */
  readonly closeGraceMs: number;

  constructor(opts: MemoryBusOptions = {}) {
    this.log = opts.logger ?? silentLogger;
    this.closeGraceMs = opts.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
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
    const body = encodePayload(payload);
    const id = messageId ?? randomUUID();
    for (const q of this.queues.values()) {
      if (!q.matches(topic)) continue;
      q.push({ id, topic, body, headers, deliveries: 0 });
      this.schedule(q);
    }
    for (const s of this.subscribers) {
      if (!s.matches(topic)) continue;
      s.inFlight++;
      setImmediate(() => this.broadcast(s, { id, topic, body, headers, deliveries: 0 }));
    }
  }

  async consume(queue: string, opts: ConsumeOptions, handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    checkQueueName(queue);
    const resolved = resolveConsumeOptions(opts);
    if (typeof handler !== 'function') throw new BusError('INVALID_ARGUMENT', 'handler must be a function');
    const q = this.queue(queue);
    this.queue(`${queue}.dead`);
    q.bind(resolved.topics);
    const c = new MemConsumer(this, q, resolved, handler);
    q.consumers.push(c);
    this.schedule(q);
    return c;
  }

  async subscribe(topics: string[], handler: MessageHandler): Promise<Subscription> {
    this.assertOpen();
    const patterns = checkPatterns(topics);
    if (patterns.length === 0)
      throw new BusError('INVALID_ARGUMENT', 'subscribe needs at least one topic pattern');
    if (typeof handler !== 'function') throw new BusError('INVALID_ARGUMENT', 'handler must be a function');
    const s = new MemSubscriber(this, patterns, handler);
    this.subscribers.add(s);
    return s;
  }

  async close(): Promise<void> {
    if (this.cell.state === 'closed') return;
    this.cell.set('closed');
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const subs: Subscription[] = [...this.subscribers];
    for (const q of this.queues.values()) subs.push(...q.consumers);
    await Promise.all(subs.map((s) => s.close()));
  }

  async queueDepth(queue: string): Promise<number | undefined> {
    return this.queues.get(queue)?.size;
  }

  /** @internal */
  detach(c: MemConsumer): void {
    const i = c.queue.consumers.indexOf(c);
    if (i >= 0) c.queue.consumers.splice(i, 1);
  }

  /** @internal */
  unsubscribe(s: MemSubscriber): void {
    this.subscribers.delete(s);
  }

  private assertOpen(): void {
    if (this.cell.state === 'closed') throw new BusError('BUS_CLOSED', 'the bus is closed');
  }

  private queue(name: string): MemQueue {
    let q = this.queues.get(name);
    if (!q) {
      q = new MemQueue(name);
      this.queues.set(name, q);
    }
    return q;
  }

  private schedule(q: MemQueue): void {
    if (q.scheduled || q.consumers.length === 0 || q.size === 0) return;
    q.scheduled = true;
    setImmediate(() => {
      q.scheduled = false;
      this.pump(q);
    });
  }

  /** Hands waiting messages to consumers with free capacity, round robin. */
  private pump(q: MemQueue): void {
    if (this.cell.state === 'closed') return;
    while (q.size > 0) {
      const n = q.consumers.length;
      let chosen: MemConsumer | undefined;
      for (let k = 0; k < n; k++) {
        const c = q.consumers[(q.next + k) % n];
        if (c && !c.closed && c.inFlight < c.opts.prefetch) {
          chosen = c;
          q.next = (q.next + k + 1) % n;
          break;
        }
      }
      if (!chosen) return;
      const env = q.shift();
      if (!env) return;
      this.deliver(q, chosen, env);
    }
  }

  private deliver(q: MemQueue, c: MemConsumer, env: Envelope): void {
    c.inFlight++;
    const deliveries = env.deliveries + 1;
    const msg: BusMessage = {
      id: env.id,
      topic: env.topic,
      payload: JSON.parse(env.body) as JsonValue,
      deliveries,
      headers: { ...env.headers },
    };
    let run: Promise<void>;
    try {
      run = Promise.resolve(c.handler(msg));
    } catch (e) {
      run = Promise.reject(e);
    }
    run.then(
      () => {
        c.settled();
        this.schedule(q);
      },
      (err: unknown) => {
        const next: Envelope = { ...env, deliveries };
        if (deliveries >= c.opts.maxDeliveries) {
          this.log.warn(
            { queue: q.name, topic: env.topic, messageId: env.id, deliveries, err: errorMessage(err) },
            'message dead-lettered',
          );
          const dead = this.queue(`${q.name}.dead`);
          dead.push({ ...env, headers: { ...env.headers, [H_ERROR]: errorMessage(err) }, deliveries: 0 });
          this.schedule(dead);
        } else if (this.cell.state === 'closed') {
          // nothing outlives the process's bus
        } else if (c.opts.retryDelayMs === 0) {
          q.push(next);
        } else {
          const t = setTimeout(() => {
            this.timers.delete(t);
            q.push(next);
            this.schedule(q);
          }, c.opts.retryDelayMs);
          this.timers.add(t);
        }
        c.settled();
        this.schedule(q);
      },
    );
  }

  private broadcast(s: MemSubscriber, env: Envelope): void {
    if (s.closed || this.cell.state === 'closed') {
      s.settled();
      return;
    }
    const msg: BusMessage = {
      id: env.id,
      topic: env.topic,
      payload: JSON.parse(env.body) as JsonValue,
      deliveries: 1,
      headers: { ...env.headers },
    };
    let run: Promise<void>;
    try {
      run = Promise.resolve(s.handler(msg));
    } catch (e) {
      run = Promise.reject(e);
    }
    run.then(
      () => s.settled(),
      (err: unknown) => {
        this.log.warn({ topic: env.topic, messageId: env.id, err: errorMessage(err) }, 'subscriber failed');
        s.settled();
      },
    );
  }
}
