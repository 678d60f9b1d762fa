/**
 * The `attune` command: runs the command tree and turns every failure into one line on stderr and
 * an exit code (1 for a failed operation, 2 for a usage error, 130 when interrupted). With --debug
 * the details of an error follow its line.
 */
import { CommanderError } from 'commander';
import pc from 'picocolors';
import { stringify as toYaml } from 'yaml';
import { colorAllowed } from './context.ts';
import { CliError, EXIT_FAILURE, EXIT_USAGE } from './errors.ts';
import { buildProgram } from './program.ts';

function report(err: unknown, argv: readonly string[]): number {
  const debug = argv.includes('--debug');
  const color = pc.createColors(
    colorAllowed(process.stderr, { color: argv.includes('--no-color') ? false : undefined }, process.env),
  );
  if (err instanceof CommanderError) {
    // commander has already printed its message (and help when asked for)
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
    return EXIT_USAGE;
  }
  if (err instanceof CliError) {
    process.stderr.write(`${color.red('error:')} ${err.message}\n`);
    for (const line of err.lines) process.stderr.write(`  ${line}\n`);
    if (err.hint) process.stderr.write(`${color.dim(`hint: ${err.hint}`)}\n`);
    if (debug && err.details !== undefined)
      process.stderr.write(
        color.dim(`details:\n${toYaml(err.details, { lineWidth: 0 }).replace(/^/gm, '  ')}`),
      );
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(`${color.red('error:')} ${e?.message ?? String(err)}\n`);
  if (debug && e?.stack) process.stderr.write(`${color.dim(e.stack)}\n`);
  return EXIT_FAILURE;
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    return report(err, argv);
  }
}

process.exitCode = await main();
