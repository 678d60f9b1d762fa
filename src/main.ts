/**
 * `npm start`: the whole platform in one process, embedded (PGlite + in-process bus) unless
 * ATTUNE_DATABASE_URL / ATTUNE_AMQP_URL point at servers.
 */
import { ConfigError, loadConfig } from './config.ts';
import { startPlatform } from './platform.ts';
import { DataDirLockedError } from './store/data-dir-lock.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`attune: configuration error: ${e.message}`);
      process.exit(2);
    }
    throw e;
  }
  let platform: Awaited<ReturnType<typeof startPlatform>>;
  try {
    platform = await startPlatform(config);
  } catch (e) {
    if (e instanceof DataDirLockedError) {
      console.error(`attune: ${e.message}`);
      process.exit(1);
    }
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(
        `attune: port ${config.port} on ${config.host} is in use; set ATTUNE_PORT to another port`,
      );
      process.exit(1);
    }
    throw e;
  }
  const b = platform.bootstrap;
  const lines = [
    '',
    `  Attune is ready at ${platform.url}  (${platform.store.kind}, started in ${platform.startupMs} ms)`,
    `  API docs:  ${platform.url}/docs`,
  ];
  if (b.generatedAdminPassword) {
    lines.push(`  Log in as 'admin' with password: ${b.generatedAdminPassword}`);
    lines.push(`  (shown once; also saved to ${b.adminPasswordFile})`);
  } else if (b.adminCreated) {
    lines.push(`  Log in as 'admin' with the password from ATTUNE_ADMIN_PASSWORD.`);
  } else {
    lines.push(`  Log in as 'admin' (password from first start, or ATTUNE_ADMIN_PASSWORD).`);
  }
  lines.push(`  CLI: npx attune login --url ${platform.url}`, '');
  process.stdout.write(lines.join('\n') + '\n');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    platform.ctx.log.info({ signal }, 'shutting down');
    const timer = setTimeout(() => process.exit(1), 10_000);
    timer.unref();
    await platform.stop().catch((e) => platform.ctx.log.error({ err: e }, 'error during shutdown'));
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

await main();
