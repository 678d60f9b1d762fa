/**
 * RabbitMQ for tests: the URL (ATTUNE_TEST_AMQP_URL, default the machine's local broker), a probe
 * that fails the run under CI=true and skips loudly otherwise, names unique to this run, clean-up,
 * and a TCP proxy that can cut the connection like a network failure would.
 */
import net from 'node:net';
import amqp, { type Channel } from 'amqplib';
import { describe } from 'vitest';

export const amqpTestUrl = (): string =>
  process.env.ATTUNE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Undefined when reachable, else the reason. */
export async function probeAmqp(): Promise<string | undefined> {
  try {
    const c = await amqp.connect(amqpTestUrl(), { timeout: 3000 });
    await c.close();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** Why RabbitMQ tests are skipped (unreachable), or undefined when they run. */
export const amqpDown: string | undefined = await probeAmqp();
if (amqpDown) {
  const msg = `RabbitMQ at ${amqpTestUrl().replace(/:[^:@/]*@/, ':***@')} is unreachable (${amqpDown}).`;
  if (process.env.CI === 'true') throw new Error(`${msg} CI=true: the RabbitMQ tests must run.`);
  console.warn(`\n\n!!!!!!!! ${msg}\n!!!!!!!! The RabbitMQ tests will be SKIPPED.\n\n`);
}

/** `describe` for suites that need RabbitMQ: skipped (loudly, see above) when it is unreachable. */
export const describeAmqp: typeof describe = (amqpDown ? describe.skip : describe) as typeof describe;

/** A prefix unique to this run, so parallel runs on one broker never share a queue or exchange. */
export const runPrefix = `attune-test-${process.pid}-${Date.now().toString(36)}`;

/** Deletes queues and exchanges (missing ones are fine). */
export async function deleteAmqpObjects(names: {
  queues?: Iterable<string>;
  exchanges?: Iterable<string>;
}): Promise<void> {
  const conn = await amqp.connect(amqpTestUrl());
  let ch: Channel | undefined;
  const channel = async () => {
    if (!ch) {
      ch = await conn.createChannel();
      const mine = ch;
      mine.on('error', () => {});
      mine.on('close', () => {
        if (ch === mine) ch = undefined;
      });
    }
    return ch;
  };
  try {
    for (const q of names.queues ?? []) await (await channel()).deleteQueue(q).catch(() => {});
    for (const x of names.exchanges ?? []) await (await channel()).deleteExchange(x).catch(() => {});
  } finally {
    await conn.close().catch(() => {});
  }
}

/**
 * A TCP proxy in front of the broker. `sever()` destroys every proxied connection (to the client it
 * looks like the network or the broker went away); `refuse(true)` drops new connections at once.
 */
export class TcpProxy {
  private readonly sockets = new Set<net.Socket>();
  private refusing = false;

  private constructor(
    private readonly server: net.Server,
    private readonly target: URL,
  ) {}

  static async start(targetUrl = amqpTestUrl()): Promise<TcpProxy> {
    const target = new URL(targetUrl);
    const server = net.createServer();
    const proxy = new TcpProxy(server, target);
    server.on('connection', (client) => proxy.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The broker URL through this proxy. */
  get url(): string {
    const u = new URL(this.target.toString());
    u.hostname = '127.0.0.1';
    u.port = String((this.server.address() as net.AddressInfo).port);
    return u.toString();
  }

  get connections(): number {
    return this.sockets.size / 2;
  }

  refuse(on: boolean): void {
    this.refusing = on;
  }

  sever(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.sever();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(Number(this.target.port || 5672), this.target.hostname);
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      this.sockets.add(a);
      a.on('error', () => {});
      a.on('close', () => {
        this.sockets.delete(a);
        b.destroy();
      });
      a.pipe(b);
    }
  }
}
