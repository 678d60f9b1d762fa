/**
 * The composition root: opens the store, seeds it, and starts the services of this process.
 * Embedded (no ATTUNE_DATABASE_URL): PGlite in the data directory, which this process locks.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { type Bus, createBus, OutboxRelay } from './bus/index.ts';
import type { Config } from './config.ts';
import { createLogger } from './logging.ts';
import { registerBuiltinPacks } from './packs/builtin.ts';
import { Cipher } from './security/crypto.ts';
import { loadInstanceSecrets } from './security/instance-secrets.ts';
import { PrincipalLoader } from './services/api/auth.ts';
import { type ApiContext, Health, makeAudit } from './services/api/context.ts';
import { type ApiApp, buildApi } from './services/api/server.ts';
import { type BootstrapResult, bootstrap } from './services/bootstrap.ts';
import { RecentEvents } from './services/events/recent-events.ts';
import { type MetricsServer, startMetricsServer } from './services/metrics/server.ts';
import { type RulesEngine, startRulesEngine } from './services/rules-engine/index.ts';
import { type ExecutionRuntime, packDirResolver, startExecutionRuntime } from './services/scheduler/index.ts';
import { SensorManager } from './services/sensors/sensor-manager.ts';
import { TimerService } from './services/timers/timer-service.ts';
import { WorkflowHost } from './services/workflows/index.ts';
import { type DataDirLock, lockDataDir } from './store/data-dir-lock.ts';
import { openStore, type Store } from './store/database.ts';

export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const ROLES = ['api', 'scheduler', 'worker', 'sensor'] as const;
/** The services a process runs: the embedded platform runs all four. */
export type Role = (typeof ROLES)[number];

export interface Platform {
  /** The API's URL ('' when this process runs no API). */
  url: string;
  roles: readonly Role[];
  config: Config;
  store: Store;
  /** The HTTP API (when this process runs the `api` role). */
  api: ApiApp;
  /** The bus of this process (in-process when embedded). */
  bus: Bus;
  /** Relays the outbox to the bus. */
  relay: OutboxRelay;
  /** Rules engine (`scheduler` role). */
  rulesEngine: RulesEngine | undefined;
  /** Scheduler, completion handler and sweeper (`scheduler` role) and worker (`worker` role). */
  executionRuntime: ExecutionRuntime;
  /** Runs workflows and inquiries, hooked into the scheduler (`scheduler` role). */
  workflows: WorkflowHost | undefined;
  timers: TimerService | undefined;
  sensors: SensorManager | undefined;
  ctx: ApiContext;
  bootstrap: BootstrapResult;
  /** Milliseconds from the call to ready. */
  startupMs: number;
  stop(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** Services to run in this process. Default: all of them (the embedded platform). */
  roles?: readonly Role[];
}

export class PlatformConfigError extends Error {}

export async function startPlatform(config: Config, opts: StartOptions = {}): Promise<Platform> {
  const t0 = performance.now();
  const log = opts.logger ?? createLogger(config.logLevel, config.logFormat);
  const roles: readonly Role[] = opts.roles?.length ? [...new Set(opts.roles)] : ROLES;
  const has = (r: Role) => roles.includes(r);
  const embedded = !config.databaseUrl;
  if (roles.length < ROLES.length && embedded)
    throw new PlatformConfigError(
      'running services in separate processes needs a PostgreSQL server (ATTUNE_DATABASE_URL): the embedded database belongs to one process',
    );
  if (roles.length < ROLES.length && !config.amqpUrl)
    throw new PlatformConfigError(
      'running services in separate processes needs RabbitMQ (ATTUNE_AMQP_URL): the in-process bus does not reach other processes',
    );
  let lock: DataDirLock | undefined;
  if (embedded) lock = lockDataDir(config.dataDir);
  let store: Store | undefined;
  let api: ApiApp | undefined;
  // Runtime pieces, stopped in reverse order of their start.
  let bus: Bus | undefined;
  let relay: OutboxRelay | undefined;
  let rulesEngine: RulesEngine | undefined;
  let executionRuntime: ExecutionRuntime | undefined;
  let workflowHost: WorkflowHost | undefined;
  let timers: TimerService | undefined;
  let sensors: SensorManager | undefined;
  let metricsServer: MetricsServer | undefined;
  const stopRuntime = async () => {
    await metricsServer?.close();
    await sensors?.stop();
    await timers?.stop();
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
    // The API listens first so that /health can say "starting" while the rest comes up.
    let address = '';
    if (has('api')) {
      health.set('api', 'starting');
      api = await buildApi(ctx, log);
      address = await api.listen({ port: config.port, host: config.host });
    }
    const boot: BootstrapResult = has('api')
      ? await bootstrap(store, { adminPassword: config.adminPassword, dataDir: config.dataDir })
      : { adminCreated: false };
    if (has('api')) await registerBuiltinPacks(ctx);

    const busLog = log.child({ component: 'bus' });
    health.set('bus', 'starting');
    bus = await createBus(config.amqpUrl, {
      logger: busLog,
      ...(config.amqpNamespace && { namespace: config.amqpNamespace }),
    });
    health.set('bus', 'ok', bus.kind);
    bus.onStateChange((state, reason) =>
      health.set('bus', state === 'connected' ? 'ok' : 'degraded', reason ?? state),
    );
    relay = new OutboxRelay(store, bus, { logger: busLog });
    relay.start();
    ctx.bus = bus;
    ctx.outbox = relay;
    const outbox = relay;
    const kickOutbox = () => outbox.kick();

    if (has('scheduler')) {
      // Events stored by this process's API reach its rules engine without a read back.
      if (has('api')) ctx.recentEvents = new RecentEvents();
      rulesEngine = await startRulesEngine(bus, store, {
        cipher: ctx.cipher,
        outbox: relay,
        ...(ctx.recentEvents && { recentEvents: ctx.recentEvents }),
        logger: log.child({ component: 'rules-engine' }),
        // This process runs the scheduler too: plain executions are scheduled as they are created.
        scheduleDirectly: true,
      });
      workflowHost = new WorkflowHost({
        store,
        bus,
        cipher: ctx.cipher,
        log: log.child({ component: 'workflows' }),
        kickOutbox,
        ruleIndex: rulesEngine.ruleIndex,
      });
    }
    executionRuntime = await startExecutionRuntime({
      ...(workflowHost && {
        schedulerHooks: workflowHost.schedulerHooks,
        completionHooks: workflowHost.completionHooks,
      }),
      store,
      bus,
      cipher: ctx.cipher,
      log,
      kickOutbox,
      packsDir: ctx.packsDir,
      builtinPacksDir: ctx.builtinPacksDir,
      ...(rulesEngine && { ruleIndex: rulesEngine.ruleIndex }),
      scheduler: has('scheduler'),
      worker: has('worker') ? { capacity: config.workerCapacity } : false,
    });
    if (workflowHost) await workflowHost.start();
    if (has('scheduler')) {
      timers = new TimerService({ store, bus, log: log.child({ component: 'timers' }), kickOutbox });
      await timers.start();
    }
    if (has('sensor')) {
      sensors = new SensorManager({
        store,
        bus,
        log: log.child({ component: 'sensors' }),
        kickOutbox,
        packDir: packDirResolver(ctx.packsDir, ctx.builtinPacksDir),
      });
      await sensors.start();
    }
    // Processes without the API serve their own metrics on a port of their own, when asked to.
    if (!has('api') && config.metricsPort !== undefined)
      metricsServer = await startMetricsServer(config.metricsPort, config.host);

    if (has('api')) health.set('api', 'ok');
    health.ready = true;
    const url = address.replace('[::1]', 'localhost');
    const s = store;
    const a = api;
    let stopped = false;
    log.info({ roles, store: store.kind, bus: bus.kind }, 'services started');
    return {
      url,
      roles,
      config,
      store,
      api: api as ApiApp,
      bus,
      relay,
      rulesEngine,
      executionRuntime,
      workflows: workflowHost,
      timers,
      sensors,
      ctx,
      bootstrap: boot,
      startupMs: Math.round(performance.now() - t0),
      async stop() {
        if (stopped) return;
        stopped = true;
        health.ready = false;
        await a?.close();
        await stopRuntime();
        await s.close();
        lock?.release();
      },
    };
  } catch (e) {
    await api?.close().catch(() => {});
    await stopRuntime().catch(() => {});
    await store?.close().catch(() => {});
    lock?.release();
    throw e;
  }
}
