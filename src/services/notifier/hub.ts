/**
 * The notification hub of a process: ONE bus subscription to the live notifications
 * (`notify.execution.status`, `notify.execution.output`), fanned out in memory to every listener
 * (server-sent-event clients, WebSocket clients). Listeners of one execution are indexed by its id,
 * so a busy platform does not offer every output line to every client; other listeners carry a
 * predicate.
 *
 * The subscription is opened with the first listener and closed after the last one has been gone
 * for `idleCloseMs`, so an idle API replica does not receive the whole platform's output. Broadcasts
 * are best effort (a message may be lost): listeners that must not miss anything catch up from the
 * database (see `execution-stream.ts`).
 */
import type { Bus, BusMessage, Subscription } from '../../bus/bus.ts';
import { type OutputNotification, type StatusNotification, TOPICS } from '../runtime/messages.ts';

export type HubMessage =
  | { kind: 'status'; payload: StatusNotification }
  | { kind: 'output'; payload: OutputNotification };

export interface HubLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ListenOptions {
  /** Only messages of this execution (indexed; cheaper than a predicate). */
  executionId?: number;
  /** Only messages this accepts. */
  filter?: (msg: HubMessage) => boolean;
}

export interface HubSettings {
  /** A comment line is sent to every stream this often, so proxies keep the connection open. */
  heartbeatMs: number;
  /** With a bus, streams also re-read the database this often (lost broadcasts). */
  catchUpMs: number;
  /** Without a bus (or while it is down), streams poll the database this often. */
  pollMs: number;
  /** A client that lets this much unsent data pile up is disconnected (it resumes with Last-Event-ID). */
  maxBufferedBytes: number;
  /** The bus subscription is closed after this long without listeners. */
  idleCloseMs: number;
}

export const DEFAULT_HUB_SETTINGS: HubSettings = {
  heartbeatMs: 15_000,
  catchUpMs: 15_000,
  pollMs: 2_000,
  maxBufferedBytes: 8 * 1024 * 1024,
  idleCloseMs: 30_000,
};

interface Listener {
  fn: (msg: HubMessage) => void;
  filter: ((msg: HubMessage) => boolean) | undefined;
  executionId: number | undefined;
}

/** Something a hub can close when it shuts down (an SSE response, a socket). */
export interface Closable {
  close(): void;
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v);

/** The message, or undefined when the payload is not what the topic promises. */
export function parseNotification(topic: string, payload: unknown): HubMessage | undefined {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
  const p = payload as Record<string, unknown>;
  if (!isInt(p.execution_id)) return undefined;
  if (topic === TOPICS.notifyStatus) {
    if (typeof p.status !== 'string' || typeof p.action_ref !== 'string') return undefined;
    return {
      kind: 'status',
      payload: {
        execution_id: p.execution_id,
        status: p.status,
        action_ref: p.action_ref,
        parent_id: isInt(p.parent_id) ? p.parent_id : null,
        at: typeof p.at === 'string' ? p.at : new Date().toISOString(),
      },
    };
  }
  if (topic === TOPICS.notifyOutput) {
    if (!isInt(p.seq) || typeof p.data !== 'string' || (p.stream !== 'stdout' && p.stream !== 'stderr'))
      return undefined;
    return {
      kind: 'output',
      payload: { execution_id: p.execution_id, seq: p.seq, stream: p.stream, data: p.data },
    };
  }
  return undefined;
}

export class NotificationHub {
  readonly settings: HubSettings;
  private readonly byExecution = new Map<number, Set<Listener>>();
  private readonly others = new Set<Listener>();
  private readonly closables = new Set<Closable>();
  private subscription: Promise<Subscription | undefined> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Messages received from the bus (for tests and metrics). */
  received = 0;

  constructor(
    private readonly bus: () => Bus | undefined,
    private readonly log: HubLogger,
    settings: Partial<HubSettings> = {},
  ) {
    this.settings = { ...DEFAULT_HUB_SETTINGS, ...settings };
  }

  /** Listeners currently attached. */
  get size(): number {
    let n = this.others.size;
    for (const s of this.byExecution.values()) n += s.size;
    return n;
  }

  /** Whether the bus subscription is open (or opening). */
  get subscribed(): boolean {
    return this.subscription !== undefined;
  }

  /** Whether live messages can arrive at all: a bus exists and is connected. */
  get live(): boolean {
    return !!this.bus()?.healthy;
  }

  /**
   * Attaches `fn`. Resolves, with a function that detaches it, once the bus subscription is open:
   * every broadcast published after that reaches `fn`. Without a bus it resolves at once (nothing
   * live will come). Rejects when the bus refuses the subscription.
   */
  async listen(fn: (msg: HubMessage) => void, opts: ListenOptions = {}): Promise<() => void> {
    if (this.closed) throw new Error('the notification hub is closed');
    const l: Listener = { fn, filter: opts.filter, executionId: opts.executionId };
    if (l.executionId === undefined) this.others.add(l);
    else {
      const set = this.byExecution.get(l.executionId) ?? new Set<Listener>();
      set.add(l);
      this.byExecution.set(l.executionId, set);
    }
    if (this.idleTimer) {
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    }
    let detached = false;
    const detach = () => {
      if (detached) return;
      detached = true;
      this.remove(l);
    };
    try {
      await this.ensureSubscribed();
    } catch (e) {
      detach();
      throw e;
    }
    return detach;
  }

  /** Registers something to close when the hub closes; returns a function that unregisters it. */
  track(c: Closable): () => void {
    if (this.closed) {
      c.close();
      return () => {};
    }
    this.closables.add(c);
    return () => this.closables.delete(c);
  }

  /** Closes every tracked stream and the bus subscription. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    for (const c of [...this.closables]) {
      try {
        c.close();
      } catch {
        /* closing is best effort */
      }
    }
    this.closables.clear();
    this.byExecution.clear();
    this.others.clear();
    await this.unsubscribe();
  }

  private remove(l: Listener): void {
    if (l.executionId === undefined) this.others.delete(l);
    else {
      const set = this.byExecution.get(l.executionId);
      set?.delete(l);
      if (set && set.size === 0) this.byExecution.delete(l.executionId);
    }
    if (this.size === 0 && this.subscription && !this.closed && !this.idleTimer) {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        if (this.size === 0) void this.unsubscribe();
      }, this.settings.idleCloseMs);
      this.idleTimer.unref();
    }
  }

  private ensureSubscribed(): Promise<Subscription | undefined> {
    if (this.subscription) return this.subscription;
    const bus = this.bus();
    if (!bus) return Promise.resolve(undefined);
    const p = bus
      .subscribe([TOPICS.notifyStatus, TOPICS.notifyOutput], async (msg) => this.dispatch(msg))
      .then(
        (sub) => sub,
        (e: unknown) => {
          if (this.subscription === p) this.subscription = undefined;
          throw e;
        },
      );
    this.subscription = p;
    return p;
  }

  private async unsubscribe(): Promise<void> {
    const p = this.subscription;
    this.subscription = undefined;
    if (!p) return;
    try {
      await (await p)?.close();
    } catch (e) {
      this.log.debug({ err: (e as Error).message }, 'closing the notification subscription failed');
    }
  }

  private dispatch(raw: BusMessage): void {
    this.received++;
    const msg = parseNotification(raw.topic, raw.payload);
    if (!msg) {
      this.log.debug({ topic: raw.topic }, 'malformed notification ignored');
      return;
    }
    const targets = this.byExecution.get(msg.payload.execution_id);
    if (targets) for (const l of [...targets]) this.deliver(l, msg);
    for (const l of [...this.others]) this.deliver(l, msg);
  }

  private deliver(l: Listener, msg: HubMessage): void {
    try {
      if (!l.filter || l.filter(msg)) l.fn(msg);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'a notification listener failed');
    }
  }
}
