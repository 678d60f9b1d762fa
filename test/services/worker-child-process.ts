/**
 * A worker process for the kill test: opens the PostgreSQL database named by ATTUNE_TEST_WORKER_DB,
 * relays its outbox onto an in-process bus, and runs one worker with short heartbeats. Prints
 * `ready <worker id>` when it is consuming. Killed with SIGKILL by the test.
 */
import { MemoryBus, OutboxRelay } from '../../src/bus/index.ts';
import { Cipher } from '../../src/security/crypto.ts';
import { WorkerService } from '../../src/services/worker/worker-service.ts';
import { openStore } from '../../src/store/database.ts';

const url = process.env.ATTUNE_TEST_WORKER_DB;
if (!url) throw new Error('ATTUNE_TEST_WORKER_DB is not set');
const store = await openStore({ databaseUrl: url, poolSize: 3 });
const bus = new MemoryBus();
const relay = new OutboxRelay(store, bus, { pollIntervalMs: 50 });
relay.start();
const worker = new WorkerService({
  store,
  bus,
  kickOutbox: () => relay.kick(),
  cipher: new Cipher('kill-test'),
  packDir: () => null,
  capacity: 2,
  heartbeatIntervalSeconds: Number(process.env.ATTUNE_TEST_HEARTBEAT ?? 0.5),
  runLeaseSeconds: Number(process.env.ATTUNE_TEST_LEASE ?? 3),
});
await worker.start();
process.stdout.write(`ready ${worker.id}\n`);
