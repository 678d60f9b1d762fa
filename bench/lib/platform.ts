/**
 * A platform to measure: every service in this process, on a fresh store.
 *  - `embedded`: PGlite in a temporary data directory and the in-process bus (what `npm start` runs);
 *  - `server`: a new PostgreSQL database (ATTUNE_TEST_DATABASE_URL's server) and RabbitMQ
 *    (ATTUNE_TEST_AMQP_URL) in a virtual host of its own, so that nothing else on the broker shares
 *    its queues.
 * Each comes with an API client logged in as `admin` and a watch of execution status broadcasts.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { type Platform, startPlatform } from '../../src/platform.ts';
import { createTestDatabase } from '../../test/support/postgres.ts';
import { ApiClient } from './client.ts';
import { ExecutionWatch } from './watch.ts';

export type Backend = 'embedded' | 'server';

const ADMIN_PASSWORD = 'bench-admin-password';
const run = promisify(execFile);

export const amqpBaseUrl = (): string =>
  process.env.ATTUNE_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

export interface BenchPlatform {
  backend: Backend;
  platform: Platform;
  api: ApiClient;
  watch: ExecutionWatch;
  stop(): Promise<void>;
}

export interface PlatformOptions {
  /** ATTUNE_WORKER_CAPACITY; default the platform's own default. */
  workerCapacity?: number | undefined;
  /** pino level of the platform's log (to stderr). Default `warn`. */
  logLevel?: string;
}

/** A virtual host of RabbitMQ for one platform, made with `rabbitmqctl`; undefined when that is not possible. */
async function createVhost(): Promise<{ url: string; drop: () => Promise<void> } | undefined> {
  const name = `attune-bench-${process.pid}-${Date.now().toString(36)}`;
  const base = new URL(amqpBaseUrl());
  const user = decodeURIComponent(base.username || 'guest');
  try {
    await run('rabbitmqctl', ['-q', 'add_vhost', name]);
    await run('rabbitmqctl', ['-q', 'set_permissions', '-p', name, user, '.*', '.*', '.*']);
  } catch {
    return undefined;
  }
  base.pathname = `/${encodeURIComponent(name)}`;
  return {
    url: base.toString(),
    drop: async () => {
      await run('rabbitmqctl', ['-q', 'delete_vhost', name]).catch(() => {});
    },
  };
}

export async function startBenchPlatform(
  backend: Backend,
  opts: PlatformOptions = {},
): Promise<BenchPlatform> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-bench-'));
  const cleanups: (() => Promise<void>)[] = [
    async () => fs.rmSync(dataDir, { recursive: true, force: true }),
  ];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const env: Record<string, string> = {
      ATTUNE_DATA_DIR: dataDir,
      ATTUNE_PORT: '0',
      ATTUNE_HOST: '127.0.0.1',
      ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      ATTUNE_LOGIN_RATE_LIMIT: '1000',
      ATTUNE_BODY_LIMIT: String(16 * 1024 * 1024),
    };
    if (opts.workerCapacity !== undefined) env.ATTUNE_WORKER_CAPACITY = String(opts.workerCapacity);
    if (backend === 'server') {
      const db = await createTestDatabase();
      cleanups.push(db.drop);
      env.ATTUNE_DATABASE_URL = db.url;
      const vhost = await createVhost();
      if (vhost) {
        cleanups.push(vhost.drop);
        env.ATTUNE_AMQP_URL = vhost.url;
      } else {
        console.warn(
          'bench: rabbitmqctl could not create a virtual host; using the default one (other users of the broker share its queues)',
        );
        env.ATTUNE_AMQP_URL = amqpBaseUrl();
      }
    }
    const config = loadConfig(env, dataDir);
    const logger = pino({ level: opts.logLevel ?? 'warn' }, pino.destination(2));
    const platform = await startPlatform(config, { logger });
    cleanups.push(() => platform.stop());
    const watch = await ExecutionWatch.start(platform.bus);
    cleanups.push(() => watch.close());
    const api = await ApiClient.login(platform.url, 'admin', ADMIN_PASSWORD);
    return { backend, platform, api, watch, stop: cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
