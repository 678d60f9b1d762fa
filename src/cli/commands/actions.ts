/**
 * `attune action list|show`: actions, with their parameters rendered as a table.
 */
import type { Command } from 'commander';
import type { Action } from '../../services/api/resource-types.ts';
import { act, argsOf, limitOf } from '../command.ts';
import type { Ctx } from '../context.ts';
import { printParams } from '../schema-view.ts';
import {
  type DefinitionFilters,
  definitionQuery,
  enabledColumn,
  refPath,
  withDefinitionFilters,
} from './definitions.ts';

async function list(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<DefinitionFilters & { runner?: string }>();
  const { items, total } = await ctx
    .api()
    .list<Action>('/api/v1/actions', { ...definitionQuery(o), runner: o.runner }, limitOf(o.limit));
  ctx.out.list(
    items,
    [
      { header: 'REF', value: (a) => a.ref },
      { header: 'RUNNER', value: (a) => a.runner },
      enabledColumn(ctx),
      { header: 'DESCRIPTION', value: (a) => a.description || a.label, flex: true },
    ],
    (a) => a.ref,
    { total, empty: 'no actions found' },
  );
}

export function showAction(ctx: Ctx, a: Action): void {
  const c = ctx.out.c;
  const policies: string[] = [];
  const rp = a.retry_policy;
  if (rp && typeof rp.count === 'number' && rp.count > 0)
    policies.push(
      `retry ${rp.count}×${rp.delay !== undefined ? ` after ${rp.delay} s` : ''}${rp.backoff ? ` (${rp.backoff})` : ''}`,
    );
  const cp = a.concurrency_policy;
  if (cp && typeof cp.limit === 'number')
    policies.push(
      `at most ${cp.limit} at once${Array.isArray(cp.group_by) && cp.group_by.length ? ` per ${cp.group_by.join(', ')}` : ''}${cp.action ? `, then ${cp.action}` : ''}`,
    );
  ctx.out.fields([
    ['ref', c.bold(a.ref)],
    ['label', a.label],
    ['description', a.description || null],
    ['runner', a.runner],
    ['entry point', a.entry_point || undefined],
    ['enabled', a.enabled ? 'yes' : c.magenta('no')],
    ['timeout', a.timeout_seconds ? `${a.timeout_seconds} s` : undefined],
    ['policies', policies.length ? policies.join('; ') : undefined],
    ['tags', a.tags.length ? a.tags.join(', ') : undefined],
  ]);
  ctx.out.heading('parameters');
  printParams(ctx, a.param_schema);
  if (a.out_schema && Object.keys(a.out_schema).length) {
    ctx.out.heading('output');
    printParams(ctx, a.out_schema, 'free-form');
  }
  ctx.out.print();
  ctx.out.print(c.dim(`run it: attune run ${a.ref}${requiredExample(a.param_schema)}`));
}

/** ` name=… other=…` for the required parameters of a schema. */
function requiredExample(schema: unknown): string {
  const req = (schema as { required?: unknown })?.required;
  return Array.isArray(req) ? req.map((r) => ` ${String(r)}=…`).join('') : '';
}

async function show(ctx: Ctx, cmd: Command): Promise<void> {
  const [ref] = argsOf<[string]>(cmd);
  const a = await ctx.api().data<Action>('GET', refPath('/api/v1/actions', ref));
  ctx.out.item(
    a,
    (x) => x.ref,
    () => showAction(ctx, a),
  );
}

export function registerActionCommands(program: Command): void {
  const action = program.command('action').description('list and inspect actions');
  withDefinitionFilters(action.command('list').alias('ls').description('list actions'), 'actions')
    .option('--runner <runner>', 'only actions of this runner')
    .action(act(list));
  action
    .command('show')
    .alias('get')
    .argument('<ref>')
    .description('show an action and its parameters')
    .action(act(show));
}
