/** The bus of this process: RabbitMQ when a URL is given (`ATTUNE_AMQP_URL`), in-process otherwise. */
import { AmqpBus, type AmqpBusOptions } from './amqp-bus.ts';
import type { Bus, BusLogger } from './bus.ts';
import { MemoryBus } from './memory-bus.ts';

export { AmqpBus, type AmqpBusOptions, redactAmqpUrl } from './amqp-bus.ts';
export * from './bus.ts';
export { MemoryBus } from './memory-bus.ts';
export {
  OutboxRelay,
  type OutboxRelayOptions,
  type OutboxRelayStats,
  writeOutbox,
  writeOutboxMany,
} from './outbox.ts';

export interface CreateBusOptions extends Omit<AmqpBusOptions, 'url'> {
  logger?: BusLogger;
}

/**
 * Opens the bus: `url` unset or empty = in-process; otherwise connects to RabbitMQ (waiting at most
 * `connectTimeoutMs` for the first connection, then failing with BUS_UNAVAILABLE).
 */
export async function createBus(url?: string, opts: CreateBusOptions = {}): Promise<Bus> {
  if (!url) return new MemoryBus({ ...(opts.logger ? { logger: opts.logger } : {}) });
  return AmqpBus.connect({ ...opts, url });
}
