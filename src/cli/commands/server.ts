/**
 * The commands that start Attune itself: `attune up` (every service in one process, embedded unless
 * ATTUNE_DATABASE_URL / ATTUNE_AMQP_URL are set), `attune api`, `attune scheduler`, `attune worker`,
 * `attune sensor` (one service each, against PostgreSQL and RabbitMQ) and `attune migrate`.
 * They load the server code only when run, so the client commands stay quick to start.
 */
import type { Command } from 'commander';
import type { Role } from '../../platform.ts';

// `attune sensor` is registered with the sensor client commands (triggers.ts): bare, it starts the service.
const SERVICES: { name: Role; summary: string }[] = [
  { name: 'api', summary: 'the REST API and the web UI' },
  { name: 'scheduler', summary: 'rules engine, scheduler, workflows, timers and the sweeper' },
  { name: 'worker', summary: 'a worker that runs actions' },
];

const serve = async (roles?: Role[]) => (await import('../../serve.ts')).runServer(roles);

/** Starts one service in this process. */
export const serveRole = (role: Role): Promise<void> => serve([role]);

export function registerServerCommands(program: Command): void {
  program
    .command('up')
    .description(
      'start every service in this process (embedded unless ATTUNE_DATABASE_URL/ATTUNE_AMQP_URL are set)',
    )
    .action(() => serve());
  for (const s of SERVICES) {
    program
      .command(s.name)
      .description(`start ${s.summary} (needs ATTUNE_DATABASE_URL and ATTUNE_AMQP_URL)`)
      .action(() => serve([s.name]));
  }
  program
    .command('migrate')
    .description('bring the PostgreSQL schema at ATTUNE_DATABASE_URL up to date')
    .action(async () => (await import('../../serve.ts')).runMigrate());
}
