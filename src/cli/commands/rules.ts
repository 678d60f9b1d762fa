/**
 * `attune rule list|show|create|enable|disable|delete|test`.
 *
 * `create -f` takes a rule in the pack file format (`name`, `trigger: {type, parameters}`,
 * `criteria`, `action: {ref, parameters}` — refs without a pack are the rule's own pack) or in the
 * API's form (`ref`, `trigger_ref`, `action_ref`, …).
 */
import type { Command } from 'commander';
import type { Rule } from '../../services/api/resource-types.ts';
import { act, argsOf, limitOf } from '../command.ts';
import type { Ctx } from '../context.ts';
import { CliError, EXIT_FAILURE, UsageError, withProblems } from '../errors.ts';
import { formatTime, oneLine, parseId } from '../format.ts';
import { parseValue, readDocument } from '../input.ts';
import {
  type DefinitionFilters,
  definitionQuery,
  enabledColumn,
  refPath,
  withDefinitionFilters,
} from './definitions.ts';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

async function list(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<DefinitionFilters & { trigger?: string; action?: string }>();
  const { items, total } = await ctx
    .api()
    .list<Rule>(
      '/api/v1/rules',
      { ...definitionQuery(o), trigger: o.trigger, action: o.action },
      limitOf(o.limit),
    );
  ctx.out.list(
    items,
    [
      { header: 'REF', value: (r) => r.ref },
      { header: 'TRIGGER', value: (r) => r.trigger_ref },
      { header: 'ACTION', value: (r) => r.action_ref },
      enabledColumn(ctx),
      { header: 'DESCRIPTION', value: (r) => r.description || r.label, flex: true },
    ],
    (r) => r.ref,
    { total, empty: 'no rules found' },
  );
}

function showRule(ctx: Ctx, r: Rule): void {
  const c = ctx.out.c;
  ctx.out.fields([
    ['ref', c.bold(r.ref)],
    ['label', r.label],
    ['description', r.description || null],
    ['enabled', r.enabled ? 'yes' : c.magenta('no')],
    ['trigger', r.trigger_ref],
    ['action', r.action_ref],
    ['owner', r.owner_login ?? undefined],
    ['tags', r.tags.length ? r.tags.join(', ') : undefined],
    ['updated', formatTime(r.updated_at)],
  ]);
  if (Object.keys(r.trigger_params).length) {
    ctx.out.heading('trigger parameters');
    ctx.out.block(r.trigger_params);
  }
  ctx.out.heading('criteria');
  if (Object.keys(r.criteria).length) ctx.out.block(r.criteria);
  else ctx.out.print(`  ${c.dim('none: every event of the trigger matches')}`);
  if (Object.keys(r.action_params).length) {
    ctx.out.heading('action parameters');
    ctx.out.block(r.action_params);
  }
}

async function show(ctx: Ctx, cmd: Command): Promise<void> {
  const [ref] = argsOf<[string]>(cmd);
  const r = await ctx.api().data<Rule>('GET', refPath('/api/v1/rules', ref));
  ctx.out.item(
    r,
    (x) => x.ref,
    () => showRule(ctx, r),
  );
}

/** A ref of the rule's own pack when it names no pack. */
const qualify = (ref: unknown, pack: string | undefined): unknown =>
  typeof ref === 'string' && !ref.includes('.') && pack ? `${pack}.${ref}` : ref;

/** The API body of a rule file (pack format or API form). */
export async function ruleBody(
  doc: unknown,
  name: string,
  pack: string | undefined,
): Promise<Record<string, unknown>> {
  if (!isObject(doc)) throw new CliError(`${name} must be a mapping describing one rule`);
  const packFormat = isObject(doc.trigger) || isObject(doc.action);
  if (!packFormat) {
    const body = { ...doc };
    if (body.ref === undefined && typeof body.name === 'string' && pack) body.ref = `${pack}.${body.name}`;
    delete body.name;
    if (body.ref === undefined)
      throw new CliError(`${name} names no rule: give 'ref: pack.name' (or 'name' with --pack)`);
    return body;
  }
  // loaded on demand: the file schemas take a while to compile
  const { RULE_FILE, shapeProblems } = await import('../../packs/file-schemas.ts');
  const { pointer } = await import('../../workflow/file-format.ts');
  const problems = shapeProblems(RULE_FILE, doc);
  if (problems.length) {
    const err = new CliError(
      `${name} is not a valid rule file (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
    );
    err.lines = problems.map((p) => `${pointer(p.path)}: ${p.message}`);
    throw err;
  }
  const filePack =
    typeof doc.ref === 'string' && doc.ref.includes('.') ? doc.ref.slice(0, doc.ref.indexOf('.')) : pack;
  const ref =
    typeof doc.ref === 'string'
      ? doc.ref
      : typeof doc.name === 'string' && filePack
        ? `${filePack}.${doc.name}`
        : undefined;
  if (!ref) throw new CliError(`${name} names no rule: give 'ref: pack.name', or 'name' and --pack`);
  const trigger = doc.trigger as Record<string, unknown>;
  const action = doc.action as Record<string, unknown>;
  const body: Record<string, unknown> = {
    ref,
    trigger_ref: qualify(trigger.type, filePack),
    action_ref: qualify(action.ref, filePack),
  };
  if (trigger.parameters !== undefined) body.trigger_params = trigger.parameters;
  if (action.parameters !== undefined) body.action_params = action.parameters;
  for (const k of ['label', 'description', 'criteria', 'tags', 'enabled'] as const)
    if (doc[k] !== undefined) body[k] = doc[k];
  return body;
}

async function create(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{ file: string; pack?: string }>();
  const doc = await readDocument(o.file);
  const body = await ruleBody(doc.value, doc.name, o.pack);
  let r: Rule;
  try {
    r = await ctx.api().data<Rule>('POST', '/api/v1/rules', { body });
  } catch (e) {
    throw withProblems(e);
  }
  ctx.out.item(
    r,
    (x) => x.ref,
    () =>
      ctx.out.print(
        `Created rule ${ctx.out.c.bold(r.ref)} (${r.trigger_ref} → ${r.action_ref}, ${r.enabled ? 'enabled' : 'disabled'})`,
      ),
  );
}

async function setEnabled(ctx: Ctx, cmd: Command, enabled: boolean): Promise<void> {
  const [refs] = argsOf<[string[]]>(cmd);
  const done: Rule[] = [];
  for (const ref of refs) {
    const r = await ctx.api().data<Rule>('PUT', refPath('/api/v1/rules', ref), { body: { enabled } });
    done.push(r);
    if (ctx.out.human) ctx.out.print(`Rule ${r.ref} ${enabled ? 'enabled' : 'disabled'}`);
  }
  if (ctx.out.format === 'quiet') for (const r of done) ctx.out.print(r.ref);
  else if (!ctx.out.human) ctx.out.doc(done.length === 1 ? done[0] : done);
}

async function remove(ctx: Ctx, cmd: Command): Promise<void> {
  const [refs] = argsOf<[string[]]>(cmd);
  for (const ref of refs) {
    await ctx.api().call('DELETE', refPath('/api/v1/rules', ref));
    if (ctx.out.human) ctx.out.print(`Deleted rule ${ref}`);
    else if (ctx.out.format === 'quiet') ctx.out.print(ref);
  }
  if (!ctx.out.human && ctx.out.format !== 'quiet') ctx.out.doc({ deleted: refs });
}

interface TestResult {
  matched: boolean;
  would_execute: boolean;
  criteria: Record<string, unknown>[];
  parameters: Record<string, unknown> | null;
  secret_parameters: string[];
  errors: { stage: string; message: string }[];
  notes: string[];
}

/** One criterion's line: a mark and what it checked. */
function criterionLine(ctx: Ctx, c: Record<string, unknown>): string {
  const ok = [c.passed, c.matched, c.ok, c.result].find((v) => typeof v === 'boolean');
  const mark = ok === true ? ctx.out.c.green('✔') : ok === false ? ctx.out.c.red('✖') : ctx.out.c.dim('•');
  const what = [
    c.key ?? c.path ?? c.criterion,
    c.type ?? c.operator,
    c.pattern !== undefined ? oneLine(c.pattern, 60) : undefined,
  ]
    .filter((x) => x !== undefined && x !== null)
    .map(String)
    .join(' ');
  const detail = [
    c.value !== undefined ? `value ${oneLine(c.value, 60)}` : undefined,
    typeof c.message === 'string' ? c.message : typeof c.error === 'string' ? c.error : undefined,
  ]
    .filter(Boolean)
    .join('; ');
  return `  ${mark} ${what || oneLine(c, 100)}${detail ? ctx.out.c.dim(`  (${detail})`) : ''}`;
}

async function test(ctx: Ctx, cmd: Command): Promise<number> {
  const [ref] = argsOf<[string]>(cmd);
  const o = cmd.opts<{ payload?: string; file?: string; event?: string }>();
  const given = [o.payload, o.file, o.event].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new UsageError('give the event to try: --payload JSON, -f payload.yaml, or --event ID');
  const body: Record<string, unknown> = { rule: ref };
  if (o.payload !== undefined) body.payload = parseValue(o.payload);
  else if (o.file !== undefined) body.payload = (await readDocument(o.file)).value;
  else body.event_id = parseId(o.event!, '--event');
  const r = await ctx.api().data<TestResult>('POST', '/api/v1/rules/test', { body });
  ctx.out.item(
    r,
    (x) => String(x.would_execute),
    () => {
      const c = ctx.out.c;
      ctx.out.print(
        r.would_execute
          ? `${c.green('✔')} rule ${c.bold(ref)} matches: it would run its action`
          : r.matched
            ? `${c.yellow('!')} rule ${c.bold(ref)} matches, but would not run its action`
            : `${c.red('✖')} rule ${c.bold(ref)} does not match`,
      );
      if (r.criteria.length) {
        ctx.out.heading('criteria');
        for (const cr of r.criteria) ctx.out.print(criterionLine(ctx, cr));
      }
      if (r.parameters) {
        ctx.out.heading('action parameters');
        ctx.out.block(r.parameters);
      }
      if (r.errors.length) {
        ctx.out.heading(c.red('errors'));
        for (const e of r.errors) ctx.out.print(`  ${e.stage}: ${e.message}`);
      }
      for (const n of r.notes) ctx.out.print(c.dim(`note: ${n}`));
    },
  );
  return r.would_execute ? 0 : EXIT_FAILURE;
}

export function registerRuleCommands(program: Command): void {
  const rule = program.command('rule').description('manage rules: when an event matches, run an action');
  withDefinitionFilters(rule.command('list').alias('ls').description('list rules'), 'rules')
    .option('-t, --trigger <ref>', 'only rules of this trigger')
    .option('-a, --action <ref>', 'only rules running this action')
    .action(act(list));
  rule.command('show').alias('get').argument('<ref>').description('show a rule').action(act(show));
  rule
    .command('create')
    .description('create a rule from a YAML/JSON file (pack rule format or API form)')
    .requiredOption('-f, --file <file>', 'the rule file (- for stdin)')
    .option('-p, --pack <ref>', "the pack of a rule file that gives only a 'name'")
    .action(act(create));
  rule
    .command('enable')
    .argument('<ref...>')
    .description('enable rules')
    .action(act((ctx, cmd) => setEnabled(ctx, cmd, true)));
  rule
    .command('disable')
    .argument('<ref...>')
    .description('disable rules')
    .action(act((ctx, cmd) => setEnabled(ctx, cmd, false)));
  rule.command('delete').alias('rm').argument('<ref...>').description('delete rules').action(act(remove));
  rule
    .command('test')
    .argument('<ref>')
    .description(
      'try a rule on a payload or a stored event, changing nothing (exit 0 when it would run its action)',
    )
    .option('--payload <json>', 'the event payload as JSON')
    .option('-f, --file <file>', 'the payload from a YAML/JSON file (- for stdin)')
    .option('-e, --event <id>', 'a stored event')
    .action(act(test));
}
