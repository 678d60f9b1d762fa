/**
 * Glue between commander and the command implementations: `act()` wraps an implementation so that
 * it receives the resolved context, and turns what it returns into the exit code.
 */
import type { Command } from 'commander';
import { Ctx } from './context.ts';
import { parsePositiveInt } from './format.ts';

/** An implementation: the context and the commander command; a number it resolves to is the exit code. */
export type Handler = (ctx: Ctx, cmd: Command) => Promise<unknown>;

/** The commander action of an implementation; a returned number is the exit code. */
export function act(fn: Handler) {
  return async (...args: unknown[]): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const code = await fn(Ctx.of(cmd), cmd);
    if (typeof code === 'number' && code !== 0) process.exitCode = code;
  };
}

/** The positional arguments of a command, as commander processed them. */
export const argsOf = <T extends unknown[]>(cmd: Command): T => cmd.processedArgs as T;

export const DEFAULT_LIMIT = 50;

/** Adds `--limit N` (how many items a list shows). */
export const withLimit = (cmd: Command, what = 'items'): Command =>
  cmd.option('-n, --limit <n>', `how many ${what} to show (default ${DEFAULT_LIMIT})`);

export const limitOf = (raw: string | undefined): number =>
  raw === undefined ? DEFAULT_LIMIT : parsePositiveInt(raw, '--limit', 100_000);
