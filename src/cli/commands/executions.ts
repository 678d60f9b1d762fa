/**
 * `attune execution list|get|tail|cancel|rerun|result|pause|resume`.
 */
import type { Command } from 'commander';
import { EXECUTION_STATUSES } from '../../domain/status.ts';
import type { Execution } from '../../services/api/resource-types.ts';
import { act, argsOf, limitOf, withLimit } from '../command.ts';
import type { Ctx } from '../context.ts';
import { UsageError } from '../errors.ts';
import { followExecution, isTerminal } from '../follow.ts';
import { formatDuration, formatTime, parseId, parsePositiveInt, parseSince, splitList } from '../format.ts';
import { type Column, statusColor } from '../output.ts';
import { actionParameters, addRunOptions, parseWaitOptions, printRequested, waitAndReport } from './run.ts';

const path = (id: number, rest = '') => `/api/v1/executions/${id}${rest}`;

function checkStatuses(raw: string): string {
  const list = splitList(raw);
  const unknown = list.filter((s) => !(EXECUTION_STATUSES as readonly string[]).includes(s));
  if (!list.length || unknown.length)
    throw new UsageError(
      `unknown status ${unknown.map((s) => `'${s}'`).join(', ') || "''"}; expected any of ${EXECUTION_STATUSES.join(', ')}`,
    );
  return list.join(',');
}

/** Who or what started an execution, in a few words. */
const origin = (e: Execution): string =>
  e.rule_ref
    ? `rule ${e.rule_ref}`
    : e.parent_id
      ? `#${e.parent_id}${e.task_name ? ` ${e.task_name}` : ''}`
      : (e.created_by ?? '');

export const executionColumns = (ctx: Ctx): Column<Execution>[] => [
  { header: 'ID', value: (e) => e.id },
  { header: 'ACTION', value: (e) => e.action_ref, flex: true },
  { header: 'STATUS', value: (e) => e.status, color: (t) => statusColor(ctx.out.c, t) },
  { header: 'STARTED', value: (e) => formatTime(e.started_at ?? e.created_at) },
  { header: 'DURATION', value: (e) => formatDuration(e.duration_ms) },
  { header: 'BY', value: origin, flex: true },
];

async function list(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{
    status?: string;
    action?: string;
    rule?: string;
    trigger?: string;
    parent?: string;
    since?: string;
    until?: string;
    limit?: string;
  }>();
  const query = {
    status: o.status === undefined ? undefined : checkStatuses(o.status),
    action: o.action,
    rule: o.rule,
    trigger: o.trigger,
    parent: o.parent === undefined ? undefined : parseId(o.parent, '--parent'),
    since: o.since === undefined ? undefined : parseSince(o.since),
    until: o.until === undefined ? undefined : parseSince(o.until, '--until'),
  };
  const { items, total } = await ctx.api().list<Execution>('/api/v1/executions', query, limitOf(o.limit));
  ctx.out.list(items, executionColumns(ctx), (e) => e.id, { total, empty: 'no executions found' });
}

/** The executions under `top`, from everything under its root. */
async function descendants(ctx: Ctx, top: Execution): Promise<Execution[]> {
  const filter = top.root_id === null ? { root: top.id } : { root: top.root_id };
  const { items } = await ctx.api().list<Execution>('/api/v1/executions', filter, 10_000);
  const under = new Set<number>([top.id]);
  const sorted = items.sort((a, b) => a.id - b.id);
  const out: Execution[] = [];
  // parents are created before their children, so one pass in id order finds every level
  for (const e of sorted)
    if (e.parent_id !== null && under.has(e.parent_id)) {
      under.add(e.id);
      out.push(e);
    }
  return out;
}

/** The task tree as rows, depth first, each with its depth. */
function treeRows(top: number, all: Execution[]): { e: Execution; depth: number }[] {
  const byParent = new Map<number, Execution[]>();
  for (const e of all) {
    const list = byParent.get(e.parent_id!) ?? [];
    list.push(e);
    byParent.set(e.parent_id!, list);
  }
  const rows: { e: Execution; depth: number }[] = [];
  const walk = (id: number, depth: number) => {
    for (const child of byParent.get(id) ?? []) {
      rows.push({ e: child, depth });
      walk(child.id, depth + 1);
    }
  };
  walk(top, 0);
  return rows;
}

export function showExecution(ctx: Ctx, e: Execution, children: Execution[]): void {
  const c = ctx.out.c;
  const by = [
    // an execution a rule started is created by `rule:<ref>`: the rule is named below
    e.created_by && !(e.rule_ref && e.created_by === `rule:${e.rule_ref}`) ? e.created_by : undefined,
    e.rule_ref ? `rule ${e.rule_ref}` : undefined,
    e.event_id ? `event ${e.event_id}` : undefined,
    e.enforcement_id ? `enforcement ${e.enforcement_id}` : undefined,
  ].filter(Boolean);
  ctx.out.fields([
    ['id', c.bold(String(e.id))],
    ['action', e.action_ref],
    ['status', statusColor(c, e.status)],
    ['runner', e.runner],
    ['started by', by.join(', ') || null],
    ['parent', e.parent_id ? `#${e.parent_id}${e.task_name ? ` (task ${e.task_name})` : ''}` : undefined],
    ['rerun of', e.rerun_of ? `#${e.rerun_of}` : undefined],
    ['created', formatTime(e.created_at)],
    ['started', formatTime(e.started_at) || null],
    ['finished', e.finished_at ? `${formatTime(e.finished_at)} (${formatDuration(e.duration_ms)})` : null],
    ['timeout', e.timeout_seconds ? `${e.timeout_seconds} s` : undefined],
    ['attempt', e.attempt > 1 ? e.attempt : undefined],
    ['worker', e.worker_id ?? undefined],
  ]);
  if (Object.keys(e.parameters ?? {}).length) {
    ctx.out.heading('parameters');
    ctx.out.block(e.parameters);
  }
  if (e.result !== null && e.result !== undefined) {
    ctx.out.heading('result');
    ctx.out.block(e.result);
  }
  if (e.error) {
    ctx.out.heading(c.red('error'));
    ctx.out.block(e.error);
  }
  if (children.length) {
    ctx.out.heading('tasks');
    const rows = treeRows(e.id, children);
    ctx.out.table(rows, [
      { header: 'TASK', value: (r) => `${'  '.repeat(r.depth)}${r.e.task_name ?? '?'}`, flex: true },
      { header: 'ID', value: (r) => r.e.id },
      { header: 'ACTION', value: (r) => r.e.action_ref, flex: true },
      { header: 'STATUS', value: (r) => r.e.status, color: (t) => statusColor(c, t) },
      { header: 'STARTED', value: (r) => formatTime(r.e.started_at) },
      { header: 'DURATION', value: (r) => formatDuration(r.e.duration_ms) },
    ]);
  }
}

async function get(ctx: Ctx, cmd: Command): Promise<void> {
  const [raw] = argsOf<[string]>(cmd);
  const e = await ctx.api().data<Execution>('GET', path(parseId(raw, 'execution id')));
  const children = await descendants(ctx, e);
  const doc = children.length ? { ...e, children } : e;
  ctx.out.item(
    doc,
    (x) => x.id,
    () => showExecution(ctx, e, children),
  );
}

async function tail(ctx: Ctx, cmd: Command): Promise<number> {
  const [raw] = argsOf<[string]>(cmd);
  const e = await ctx.api().data<Execution>('GET', path(parseId(raw, 'execution id')));
  return waitAndReport(ctx, e, parseWaitOptions(cmd.opts()));
}

async function cancel(ctx: Ctx, cmd: Command): Promise<void> {
  const [ids] = argsOf<[string[]]>(cmd);
  const done: Execution[] = [];
  for (const raw of ids) {
    const e = await ctx.api().data<Execution>('POST', path(parseId(raw, 'execution id'), '/cancel'));
    done.push(e);
    if (ctx.out.human)
      ctx.out.print(
        e.status === 'canceling'
          ? `Execution ${e.id} is ${statusColor(ctx.out.c, 'canceling')}: its worker is stopping it`
          : `Execution ${e.id} ${statusColor(ctx.out.c, e.status)}`,
      );
  }
  if (ctx.out.format === 'quiet') for (const e of done) ctx.out.print(String(e.id));
  else if (!ctx.out.human) ctx.out.doc(done.length === 1 ? done[0] : done);
}

async function rerun(ctx: Ctx, cmd: Command): Promise<number> {
  const [raw, pairs] = argsOf<[string, string[]]>(cmd);
  const o = cmd.opts<{
    tasks?: string;
    failed?: boolean;
    async?: boolean;
    timeout?: string;
    waitTimeout?: string;
  }>();
  const id = parseId(raw, 'execution id');
  const wait = parseWaitOptions(o);
  const body: Record<string, unknown> = {};
  if (pairs.length) {
    const orig = await ctx.api().data<Execution>('GET', path(id));
    body.parameters = await actionParameters(ctx, orig.action_ref, pairs);
  }
  if (o.tasks !== undefined && o.failed) throw new UsageError('--tasks and --failed cannot be used together');
  if (o.tasks !== undefined) {
    const tasks = splitList(o.tasks);
    if (!tasks.length) throw new UsageError('--tasks needs task names, e.g. --tasks deploy,verify');
    body.tasks = tasks;
  } else if (o.failed) body.tasks = [];
  if (o.timeout !== undefined) body.timeout_seconds = parsePositiveInt(o.timeout, '--timeout', 604_800);
  const e = await ctx.api().data<Execution>('POST', path(id, '/rerun'), { body });
  if (o.async) {
    printRequested(ctx, e);
    return 0;
  }
  return waitAndReport(ctx, e, wait);
}

async function result(ctx: Ctx, cmd: Command): Promise<number> {
  const [raw] = argsOf<[string]>(cmd);
  const o = cmd.opts<{ wait?: boolean }>();
  const id = parseId(raw, 'execution id');
  let e = await ctx.api().data<Execution>('GET', path(id));
  if (o.wait && !isTerminal(e.status)) e = await followExecution(ctx.api(), id);
  if (!isTerminal(e.status))
    ctx.out.note(`execution ${id} is still ${e.status}: its result is not final (use --wait)`);
  if (ctx.out.format === 'yaml') ctx.out.doc(e.result);
  else ctx.out.print(JSON.stringify(e.result ?? null, null, 2));
  return 0;
}

async function pauseOrResume(ctx: Ctx, cmd: Command, what: 'pause' | 'resume'): Promise<void> {
  const [raw] = argsOf<[string]>(cmd);
  const e = await ctx.api().data<Execution>('POST', path(parseId(raw, 'execution id'), `/${what}`));
  ctx.out.item(
    e,
    (x) => x.id,
    () => ctx.out.print(`Execution ${e.id} ${statusColor(ctx.out.c, e.status)}`),
  );
}

export function registerExecutionCommands(program: Command): void {
  const ex = program
    .command('execution')
    .alias('ex')
    .description('follow, inspect, cancel and re-run executions');
  withLimit(
    ex
      .command('list')
      .alias('ls')
      .description('list executions, newest first')
      .option('-s, --status <statuses>', `comma-separated: ${EXECUTION_STATUSES.join(', ')}`)
      .option('-a, --action <ref>', 'only runs of this action')
      .option('-r, --rule <ref>', 'only those started by this rule')
      .option('--trigger <ref>', 'only those caused by events of this trigger')
      .option('--parent <id>', 'only the tasks of this workflow execution')
      .option('--since <time>', 'created since: ISO 8601 time, or a span back from now (30m, 2h, 7d)')
      .option('--until <time>', 'created before: ISO 8601 time, or a span back from now'),
    'executions',
  ).action(act(list));
  ex.command('get')
    .argument('<id>')
    .description('show an execution: parameters, result, error, and the task tree of a workflow')
    .action(act(get));
  ex.command('tail')
    .argument('<id>')
    .description('follow an execution (status and output) until it is done; exit code by outcome')
    .option('--wait-timeout <seconds>', 'stop following after this long')
    .action(act(tail));
  ex.command('cancel').argument('<id...>').description('cancel executions').action(act(cancel));
  addRunOptions(
    ex
      .command('rerun')
      .argument('<id>')
      .argument('[parameters...]', 'name=value parameters replacing the original ones')
      .description('run an execution again (with changed parameters), and follow it')
      .option(
        '--tasks <names>',
        'for a failed workflow: run these tasks again (comma-separated), reusing what succeeded',
      )
      .option('--failed', 'for a failed workflow: run the tasks that failed again, reusing what succeeded'),
  ).action(act(rerun));
  ex.command('result')
    .argument('<id>')
    .description('print the result as JSON (for pipes: attune execution result 12 | jq .stdout)')
    .option('-w, --wait', 'wait for the execution to finish first')
    .action(act(result));
  ex.command('pause')
    .argument('<id>')
    .description('pause a workflow execution (running tasks finish; no new task starts)')
    .action(act((ctx, cmd) => pauseOrResume(ctx, cmd, 'pause')));
  ex.command('resume')
    .argument('<id>')
    .description('resume a paused workflow execution')
    .action(act((ctx, cmd) => pauseOrResume(ctx, cmd, 'resume')));
}
