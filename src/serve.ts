/**
 * Running the platform as a server process: `npm start` and `attune up` run every service
 * (embedded unless ATTUNE_DATABASE_URL / ATTUNE_AMQP_URL point at servers); `attune api|scheduler|
 * worker|sensor` run one service each against PostgreSQL and RabbitMQ; `attune migrate` only
 * brings the database schema up to date.
 */
import { ConfigError, loadConfig } from './config.ts';
import { PlatformConfigError, ROLES, type Role, startPlatform } from './platform.ts';
import { DataDirLockedError } from './store/data-dir-lock.ts';
import { openStore } from './store/database.ts';

function fail(message: string, code = 1): never {
  process.stderr.write(`attune: ${message}\n`);
  process.exit(code);
}

function configOrExit() {
  try {
    return loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) fail(`configuration error: ${e.message}`, 2);
    throw e;
  }
}

/** Starts the given services in this process and keeps running until SIGINT/SIGTERM. */
export async function runServer(roles: readonly Role[] = ROLES): Promise<void> {
  const config = configOrExit();
  let platform: Awaited<ReturnType<typeof startPlatform>>;
  try {
    platform = await startPlatform(config, { roles });
  } catch (e) {
    if (e instanceof DataDirLockedError || e instanceof PlatformConfigError) fail(e.message);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
      fail(`port ${config.port} on ${config.host} is in use; set ATTUNE_PORT to another port`);
    if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED')
      fail(`cannot reach a server: ${(e as Error).message} (check ATTUNE_DATABASE_URL and ATTUNE_AMQP_URL)`);
    throw e;
  }
  const b = platform.bootstrap;
  const all = roles.length === ROLES.length;
  const lines = [''];
  if (platform.url) {
    lines.push(
      `  Attune is ready at ${platform.url}  (${all ? 'all services' : roles.join(', ')}; ${platform.store.kind}, ${platform.bus.kind} bus; started in ${platform.startupMs} ms)`,
      `  API docs:  ${platform.url}/docs`,
    );
    if (b.generatedAdminPassword) {
      lines.push(`  Log in as 'admin' with password: ${b.generatedAdminPassword}`);
      lines.push(`  (shown once; also saved to ${b.adminPasswordFile})`);
    } else if (b.adminCreated) {
      lines.push(`  Log in as 'admin' with the password from ATTUNE_ADMIN_PASSWORD.`);
    } else {
      lines.push(`  Log in as 'admin' (password from first start, or ATTUNE_ADMIN_PASSWORD).`);
    }
    lines.push(`  CLI: npx attune login --url ${platform.url}`, '');
  } else {
    lines.push(
      `  Attune ${roles.join(', ')} is running (${platform.store.kind}, ${platform.bus.kind} bus; started in ${platform.startupMs} ms)`,
      '',
    );
  }
  process.stdout.write(lines.join('\n') + '\n');

  // A background loop's unexpected rejection must not take every service of the process down with
  // it: state lives in the database and every loop retries, so it is logged loudly and the process
  // carries on.
  process.on('unhandledRejection', (err) => {
    platform.ctx.log.error({ err }, 'unhandled promise rejection (the process keeps running)');
  });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    platform.ctx.log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => process.exit(1), 15_000);
    timer.unref();
    await platform.stop().catch((e) => platform.ctx.log.error({ err: e }, 'error during shutdown'));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

/** Applies the schema migrations to the configured database and exits. */
export async function runMigrate(): Promise<void> {
  const config = configOrExit();
  if (!config.databaseUrl)
    fail(
      'migrate works on a PostgreSQL server (ATTUNE_DATABASE_URL); the embedded database migrates itself on start',
    );
  const t0 = performance.now();
  const store = await openStore({ databaseUrl: config.databaseUrl, poolSize: 1 });
  await store.close();
  process.stdout.write(`attune: database schema is up to date (${Math.round(performance.now() - t0)} ms)\n`);
}
