/**
 * `attune run <action> key=value …`: requests an execution and, unless `--async`, follows it to the
 * end — a spinner on a terminal, the action's output as it comes, the tasks of a workflow as they
 * change — then prints the result. Exit code 0 when it succeeded, 1 otherwise. Ctrl-C stops
 * following (the execution goes on; the command says how to find it again).
 */
import type { Command } from 'commander';
import type { Ora } from 'ora';
import type { Action, Execution, OutputChunk } from '../../services/api/resource-types.ts';
import { act, argsOf } from '../command.ts';
import type { Ctx } from '../context.ts';
import { ApiError, CliError, EXIT_FAILURE, EXIT_INTERRUPTED } from '../errors.ts';
import { followExecution, isTerminal } from '../follow.ts';
import { formatDuration, parsePositiveInt } from '../format.ts';
import { checkPairs, parsePairs, stringProperties } from '../input.ts';
import { statusColor } from '../output.ts';

export interface WaitOptions {
  /** Stop following after this many seconds (the execution goes on). */
  waitTimeoutS?: number;
}

/** Parameters from `key=value` arguments, typed by the action's parameter schema when it is readable. */
export async function actionParameters(
  ctx: Ctx,
  actionRef: string,
  pairs: string[],
): Promise<Record<string, unknown>> {
  checkPairs(pairs);
  let schema: unknown;
  if (pairs.length)
    try {
      schema = (await ctx.api().data<Action>('GET', `/api/v1/actions/${encodeURIComponent(actionRef)}`))
        .param_schema;
    } catch (e) {
      // the run itself says what is wrong with the action; without read access, plain JSON parsing is used
      if (!(e instanceof ApiError) || (e.status !== 403 && e.status !== 404)) throw e;
    }
  return parsePairs(pairs, { textKeys: stringProperties(schema) });
}

/** A result without the stdout/stderr texts that were already shown live (or are empty). */
function shownResult(result: unknown, outputShown: boolean): unknown {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return result;
  const kept: Record<string, unknown> = { ...(result as Record<string, unknown>) };
  for (const k of ['stdout', 'stderr'])
    if (typeof kept[k] === 'string' && (outputShown || kept[k] === '')) delete kept[k];
  return kept;
}

/** The human summary of a finished execution. */
export function printOutcome(ctx: Ctx, e: Execution, outputShown: boolean): void {
  const c = ctx.out.c;
  const ok = e.status === 'succeeded';
  const mark = ok ? c.green('✔') : c.red('✖');
  const took = e.duration_ms !== null ? ` in ${formatDuration(e.duration_ms)}` : '';
  ctx.out.print(`${mark} ${c.bold(e.action_ref)} #${e.id} ${statusColor(c, e.status)}${took}`);
  const result = shownResult(e.result, outputShown);
  const empty =
    result === null ||
    result === undefined ||
    (typeof result === 'object' && !Array.isArray(result) && Object.keys(result).length === 0);
  if (!empty) {
    ctx.out.print(c.dim('result:'));
    ctx.out.block(result);
  }
  if (e.error) {
    const msg = typeof e.error.message === 'string' ? e.error.message : JSON.stringify(e.error);
    ctx.out.print(`${c.red('error:')} ${msg}`);
  }
}

/** Prints a line about the follow-up commands when the user stops following. */
const stillRunning = (ctx: Ctx, id: number, why: string) =>
  ctx.out.note(
    `${why}; execution ${id} goes on. Follow it with \`attune execution tail ${id}\`, ` +
      `cancel it with \`attune execution cancel ${id}\`.`,
  );

/**
 * Follows `started` to its end the way `run` does and reports it; returns the exit code.
 */
export async function waitAndReport(ctx: Ctx, started: Execution, opts: WaitOptions = {}): Promise<number> {
  const out = ctx.out;
  const human = out.human;
  let spinner: Ora | undefined;
  // a terminal of unknown width (columns 0) would make the spinner miscount its lines: none then
  if (human && process.stderr.isTTY && (process.stderr.columns ?? 0) > 0) {
    const { default: ora } = await import('ora');
    spinner = ora({ stream: process.stderr, discardStdin: false, color: 'cyan' });
  }
  const t0 = Date.now();
  let current = started;
  let atLineStart = true;
  let outputShown = false;
  const label = () =>
    `${current.action_ref} #${current.id} ${current.status} ${formatDuration(Date.now() - t0)}`;
  const resume = () => {
    if (spinner && atLineStart && !isTerminal(current.status)) spinner.start(label());
  };
  const emit = (text: string, stream: NodeJS.WriteStream) => {
    if (!text) return;
    if (spinner?.isSpinning) spinner.stop();
    stream.write(text);
    atLineStart = text.endsWith('\n');
    resume();
  };
  const tick = spinner
    ? setInterval(() => {
        if (spinner?.isSpinning) spinner.text = label();
      }, 1000)
    : undefined;

  // tasks of a workflow, as they change
  const taskStatus = new Map<number, string>();
  let watchingTasks: Promise<void> | undefined;
  const controller = new AbortController();
  const refreshTasks = async () => {
    const filter = current.root_id === null ? { root: current.id } : { parent: current.id };
    try {
      const { items } = await ctx.api().list<Execution>('/api/v1/executions', filter, 1000);
      for (const t of items.sort((a, b) => a.id - b.id)) {
        if (taskStatus.get(t.id) === t.status) continue;
        taskStatus.set(t.id, t.status);
        const depth = depthOf(t, current.id, items);
        const took =
          isTerminal(t.status) && t.duration_ms !== null
            ? ` ${out.c.dim(formatDuration(t.duration_ms))}`
            : '';
        emit(
          `${'  '.repeat(depth)}${out.c.dim('▸')} ${t.task_name ?? '?'} ${out.c.dim(`${t.action_ref} #${t.id}`)} ${statusColor(out.c, t.status)}${took}\n`,
          process.stdout,
        );
      }
    } catch {
      // progress display only: the outcome comes from the execution itself
    }
  };
  const pollTasks = async () => {
    while (!controller.signal.aborted) {
      await refreshTasks();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        controller.signal.addEventListener(
          'abort',
          () => {
            clearTimeout(t);
            resolve();
          },
          { once: true },
        );
      });
    }
  };

  const onSigint = () => controller.abort(new CliError('interrupted', EXIT_INTERRUPTED));
  process.once('SIGINT', onSigint);
  const timer =
    opts.waitTimeoutS !== undefined
      ? setTimeout(
          () => controller.abort(new CliError('wait timeout', EXIT_FAILURE)),
          opts.waitTimeoutS * 1000,
        )
      : undefined;
  resume();
  try {
    const final = await followExecution(ctx.api(), started.id, {
      signal: controller.signal,
      onStatus: (e) => {
        current = e;
        if (human && e.runner === 'workflow' && !watchingTasks) watchingTasks = pollTasks();
        if (spinner?.isSpinning) spinner.text = label();
      },
      onOutput: (chunk: OutputChunk) => {
        if (!human) return;
        outputShown = true;
        if (chunk.truncated) emit(`\n[${chunk.stream} truncated at the output limit]\n`, process.stderr);
        else emit(chunk.data, chunk.stream === 'stderr' ? process.stderr : process.stdout);
      },
    });
    current = final;
    controller.abort();
    if (watchingTasks) {
      await watchingTasks;
      await refreshTasks(); // the last changes, made while the workflow finished
    }
    if (spinner?.isSpinning) spinner.stop();
    if (!atLineStart) process.stdout.write('\n');
    out.item(
      final,
      (e) => e.id,
      () => printOutcome(ctx, final, outputShown),
    );
    return final.status === 'succeeded' ? 0 : EXIT_FAILURE;
  } catch (e) {
    if (spinner?.isSpinning) spinner.stop();
    if (!atLineStart) process.stdout.write('\n');
    const reason = controller.signal.reason;
    if (controller.signal.aborted && reason instanceof CliError) {
      if (reason.exitCode === EXIT_INTERRUPTED) {
        stillRunning(ctx, started.id, 'stopped following');
        return EXIT_INTERRUPTED;
      }
      stillRunning(ctx, started.id, `still ${current.status} after ${opts.waitTimeoutS} s`);
      return EXIT_FAILURE;
    }
    throw e;
  } finally {
    controller.abort();
    if (tick) clearInterval(tick);
    if (timer) clearTimeout(timer);
    process.off('SIGINT', onSigint);
  }
}

/** How deep `t` lies under execution `top` (1 for a direct child). */
function depthOf(t: Execution, top: number, all: Execution[]): number {
  let depth = 1;
  let parent = t.parent_id;
  while (parent !== null && parent !== top && depth < 20) {
    const p = all.find((x) => x.id === parent);
    if (!p) break;
    parent = p.parent_id;
    depth++;
  }
  return depth - 1;
}

export function parseWaitOptions(o: { waitTimeout?: string }): WaitOptions {
  return o.waitTimeout === undefined
    ? {}
    : { waitTimeoutS: parsePositiveInt(o.waitTimeout, '--wait-timeout') };
}

/** Prints an execution that was only requested (`--async`). */
export function printRequested(ctx: Ctx, e: Execution): void {
  ctx.out.item(
    e,
    (x) => x.id,
    () => {
      ctx.out.print(`Execution ${ctx.out.c.bold(String(e.id))} requested: ${e.action_ref} (${e.status})`);
      ctx.out.note(ctx.out.e.dim(`follow it with \`attune execution tail ${e.id}\``));
    },
  );
}

async function run(ctx: Ctx, cmd: Command): Promise<number> {
  const [actionRef, pairs] = argsOf<[string, string[]]>(cmd);
  const o = cmd.opts<{ async?: boolean; timeout?: string; waitTimeout?: string }>();
  const wait = parseWaitOptions(o);
  const parameters = await actionParameters(ctx, actionRef, pairs);
  const body: Record<string, unknown> = { action: actionRef, parameters };
  if (o.timeout !== undefined) body.timeout_seconds = parsePositiveInt(o.timeout, '--timeout', 604_800);
  const e = await ctx.api().data<Execution>('POST', '/api/v1/executions', { body });
  if (o.async) {
    printRequested(ctx, e);
    return 0;
  }
  return waitAndReport(ctx, e, wait);
}

export function addRunOptions(cmd: Command): Command {
  return cmd
    .option('--async', 'print the execution id and return at once')
    .option('--timeout <seconds>', "stop the execution after this long (overrides the action's timeout)")
    .option('--wait-timeout <seconds>', 'stop following after this long (the execution goes on)');
}

export function registerRunCommand(program: Command): void {
  addRunOptions(
    program
      .command('run')
      .argument('<action>', "the action's ref, e.g. core.local")
      .argument('[parameters...]', 'name=value (JSON when valid), name=@file, name=@- (stdin)')
      .description('run an action and follow it to the end (exit code 0 when it succeeded)'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        "  attune run core.local cmd='uptime'\n" +
        '  attune run examples.service_healthcheck url=http://web1/health service=nginx\n' +
        '  attune run core.http url=https://example.org headers=\'{"accept": "text/html"}\'\n' +
        '  attune run my.deploy manifest=@deploy.yaml --async',
    )
    .action(act(run));
}
