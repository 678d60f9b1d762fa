/**
 * The composition root: opens the store, seeds it, and starts the services of this process.
 * Embedded (no ATTUNE_DATABASE_URL): PGlite in the data directory, which this process locks.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import { type Bus, createBus, OutboxRelay } from './bus/index.ts';
import type { Config } from './config.ts';
import { registerBuiltinPacks } from './packs/builtin.ts';
import { Cipher } from './security/crypto.ts';
import { loadInstanceSecrets } from './security/instance-secrets.ts';
import { PrincipalLoader } from './services/api/auth.ts';
import { type ApiContext, Health, makeAudit } from './services/api/context.ts';
import { type ApiApp, buildApi } from './services/api/server.ts';
import { type BootstrapResult, bootstrap } from './services/bootstrap.ts';
import { type RulesEngine, startRulesEngine } from './services/rules-engine/index.ts';
import { type ExecutionRuntime, startExecutionRuntime } from './services/scheduler/index.ts';
import { WorkflowHost } from './services/workflows/index.ts';
import { type DataDirLock, lockDataDir } from './store/data-dir-lock.ts';
import { openStore, type Store } from './store/database.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface Platform {
  url: string;
  config: Config;
  store: Store;
  api: ApiApp;
  /** The bus of this process (in-process when embedded). */
  bus: Bus;
  /** Relays the outbox to the bus. */
  relay: OutboxRelay;
  rulesEngine: RulesEngine;
  /** Scheduler, completion handler, sweeper and worker of this process. */
  executionRuntime: ExecutionRuntime;
  /** Runs workflows and inquiries (hooked into the scheduler and the completion handler). */
  workflows: WorkflowHost;
  ctx: ApiContext;
  bootstrap: BootstrapResult;
  /** Milliseconds from the call to ready. */
  startupMs: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

export async function startPlatform(config: Config, opts: StartOptions = {}): Promise<Platform> {
  const t0 = performance.now();
  const log = opts.logger ?? pino({ level: config.logLevel });
  const embedded = !config.databaseUrl;
  let lock: DataDirLock | undefined;
  if (embedded) lock = lockDataDir(config.dataDir);
  let store: Store | undefined;
  // Runtime pieces, stopped in reverse order of their start.
  let bus: Bus | undefined;
  let relay: OutboxRelay | undefined;
  let rulesEngine: RulesEngine | undefined;
  let executionRuntime: ExecutionRuntime | undefined;
  let workflowHost: WorkflowHost | undefined;
  const stopRuntime = async () => {
    await workflowHost?.stop();
    await executionRuntime?.stop();
    await rulesEngine?.stop();
    await relay?.stop();
    await bus?.close();
  };
  try {
    const secrets = loadInstanceSecrets(config.dataDir, config);
    const health = new Health();
    health.set('database', 'starting');
    health.set('api', 'starting');
    store = await openStore({
      databaseUrl: config.databaseUrl,
      pgliteDir: embedded ? path.join(config.dataDir, 'db') : undefined,
    });
    health.set('database', 'ok', store.kind);
    const ctx: ApiContext = {
      config,
      store,
      cipher: new Cipher(secrets.encryptionKey),
      jwtSecret: secrets.jwtSecret,
      health,
      log,
      startedAt: new Date(),
      builtinPacksDir: path.join(PROJECT_ROOT, 'packs'),
      packsDir: path.join(config.dataDir, 'packs'),
      audit: makeAudit(store, log),
      principals: new PrincipalLoader(store.db),
    };
    const api = await buildApi(ctx, log);
    const address = await api.listen({ port: config.port, host: config.host });
    const boot = await bootstrap(store, { adminPassword: config.adminPassword, dataDir: config.dataDir });
    await registerBuiltinPacks(ctx);

    // ── runtime: bus, outbox relay, rules engine ──
    const busLog = log.child({ component: 'bus' });
    health.set('bus', 'starting');
    bus = await createBus(config.amqpUrl, { logger: busLog });
    health.set('bus', 'ok', bus.kind);
    bus.onStateChange((state, reason) =>
      health.set('bus', state === 'connected' ? 'ok' : 'degraded', reason ?? state),
    );
    relay = new OutboxRelay(store, bus, { logger: busLog });
    relay.start();
    ctx.bus = bus;
    ctx.outbox = relay;
    rulesEngine = await startRulesEngine(bus, store, {
      cipher: ctx.cipher,
      outbox: relay,
      logger: log.child({ component: 'rules-engine' }),
    });
    // ── end runtime ──

    // ── execution runtime: scheduler, completion handler, sweeper, worker ──
    const outbox = relay;
    workflowHost = new WorkflowHost({
      store,
      bus,
      cipher: ctx.cipher,
      log: log.child({ component: 'workflows' }),
      kickOutbox: () => outbox.kick(),
    });
    executionRuntime = await startExecutionRuntime({
      schedulerHooks: workflowHost.schedulerHooks,
      completionHooks: workflowHost.completionHooks,
      store,
      bus,
      cipher: ctx.cipher,
      log,
      kickOutbox: () => outbox.kick(),
      packsDir: ctx.packsDir,
      builtinPacksDir: ctx.builtinPacksDir,
      ruleIndex: rulesEngine.ruleIndex,
      worker: { capacity: config.workerCapacity },
    });
    await workflowHost.start();
    const workflows = workflowHost;
    // ── end execution runtime ──

    health.set('api', 'ok');
    health.ready = true;
    const url = address.replace('[::1]', 'localhost');
    const s = store;
    let stopped = false;
    return {
      url,
      config,
      store,
      api,
      bus,
      relay,
      rulesEngine,
      executionRuntime,
      workflows,
      ctx,
      bootstrap: boot,
      startupMs: Math.round(performance.now() - t0),
      async stop() {
        if (stopped) return;
        stopped = true;
        health.ready = false;
        await api.close();
        await stopRuntime();
        await s.close();
        lock?.release();
      },
    };
  } catch (e) {
    await stopRuntime().catch(() => {});
    await store?.close().catch(() => {});
    lock?.release();
    throw e;
  }
}
