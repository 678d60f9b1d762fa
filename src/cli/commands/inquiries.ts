/**
 * `attune inquiry list|get|respond`: questions a workflow asks people. An answer is checked here
 * against the inquiry's `response_schema` before it is sent; on a terminal, required fields that
 * were not given are asked for.
 */
import type { Command } from 'commander';
import type { Inquiry } from '../../services/api/resource-types.ts';
import { act, argsOf, limitOf, withLimit } from '../command.ts';
import type { Ctx } from '../context.ts';
import { CliError, EXIT_FAILURE, UsageError } from '../errors.ts';
import { formatTime, oneLine, parseId, splitList } from '../format.ts';
import { parsePairs, parseValue, stringProperties } from '../input.ts';
import { statusColor } from '../output.ts';
import { askLine, interactive } from '../prompt.ts';
import { constraintsOf, printParams, typeOf } from '../schema-view.ts';

type Schema = Record<string, unknown>;
const isObject = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

const STATUSES = ['pending', 'responded', 'timeout', 'canceled'];

/** The response schema as a JSON Schema (inquiries may carry the flat form). */
export async function responseSchema(i: Inquiry): Promise<Schema> {
  const raw = i.response_schema;
  if (!isObject(raw) || !Object.keys(raw).length) return { type: 'object' };
  const { isFlatForm, isJsonSchemaForm, parametersToSchema } = await import('../../workflow/file-format.ts');
  if (!isJsonSchemaForm(raw) && isFlatForm(raw)) {
    const { schema } = parametersToSchema(raw, { object: true });
    if (schema) return schema;
  }
  return raw;
}

const who = (i: Inquiry): string => {
  const users = i.assigned_users ?? [];
  const roles = i.assigned_roles ?? [];
  return [...users, ...roles.map((r) => `role:${r}`)].join(', ');
};

async function list(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{ status?: string; all?: boolean; mine?: boolean; limit?: string }>();
  if (o.status !== undefined) {
    const bad = splitList(o.status).filter((s) => !STATUSES.includes(s));
    if (bad.length || !splitList(o.status).length)
      throw new UsageError(`--status takes any of ${STATUSES.join(', ')}`);
  }
  const status = o.status ?? (o.all ? undefined : 'pending');
  const { items, total } = await ctx
    .api()
    .list<Inquiry>(
      '/api/v1/inquiries',
      { status, assigned_to_me: o.mine ? true : undefined },
      limitOf(o.limit),
    );
  ctx.out.list(
    items,
    [
      { header: 'ID', value: (i) => i.id },
      { header: 'STATUS', value: (i) => i.status, color: (t) => statusColor(ctx.out.c, t) },
      { header: 'PROMPT', value: (i) => i.prompt ?? '', flex: true },
      { header: 'FOR', value: who, flex: true },
      {
        header: 'YOU MAY ANSWER',
        value: (i) => (i.status === 'pending' ? (i.can_respond ? 'yes' : 'no') : ''),
      },
      { header: 'EXECUTION', value: (i) => i.workflow_execution_id ?? i.execution_id ?? '' },
      { header: 'CREATED', value: (i) => formatTime(i.created_at) },
      { header: 'EXPIRES', value: (i) => formatTime(i.timeout_at) },
    ],
    (i) => i.id,
    { total, empty: status === 'pending' ? 'no pending inquiries' : 'no inquiries found' },
  );
}

async function get(ctx: Ctx, cmd: Command): Promise<void> {
  const [raw] = argsOf<[string]>(cmd);
  const i = await ctx.api().data<Inquiry>('GET', `/api/v1/inquiries/${parseId(raw, 'inquiry id')}`);
  const schema = await responseSchema(i);
  ctx.out.item(
    i,
    (x) => x.id,
    () => {
      ctx.out.fields([
        ['id', ctx.out.c.bold(String(i.id))],
        ['status', statusColor(ctx.out.c, i.status)],
        ['prompt', i.prompt || null],
        ['for', who(i) || 'anyone who may respond'],
        ['execution', i.execution_id ?? undefined],
        [
          'workflow',
          i.workflow_execution_id !== null
            ? `#${i.workflow_execution_id}${i.task_name ? ` (task ${i.task_name})` : ''}`
            : undefined,
        ],
        ['created', formatTime(i.created_at)],
        ['expires', formatTime(i.timeout_at) || undefined],
        ['answered by', i.responded_by ?? undefined],
      ]);
      ctx.out.heading('response');
      if (i.status === 'pending') printParams(ctx, schema, 'any JSON object');
      else ctx.out.block(i.response ?? null);
      if (i.status === 'pending') {
        ctx.out.print();
        ctx.out.print(ctx.out.c.dim(`answer it: attune inquiry respond ${i.id} name=value …`));
      }
    },
  );
}

/** A typed-in answer to one field, read by the field's type. */
function fromTyped(text: string, p: Schema): unknown {
  const type = typeOf(p);
  if (type === 'boolean') {
    const t = text.trim().toLowerCase();
    if (['y', 'yes', 'true'].includes(t)) return true;
    if (['n', 'no', 'false'].includes(t)) return false;
    return text;
  }
  if (type === 'string') return text;
  return parseValue(text.trim());
}

/** Asks for the required fields that are missing. */
async function askMissing(schema: Schema, response: Record<string, unknown>): Promise<void> {
  const { validateAgainst } = await import('../../domain/json-schema.ts');
  const props = isObject(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required)
    ? schema.required.filter((r): r is string => typeof r === 'string')
    : [];
  for (const name of required) {
    if (Object.hasOwn(response, name)) continue;
    const p = isObject(props[name]) ? (props[name] as Schema) : {};
    const hints = [typeOf(p), ...constraintsOf(p)].filter((h) => h !== 'any');
    const desc = typeof p.description === 'string' ? `${p.description} ` : '';
    const yn = typeOf(p) === 'boolean' ? ' [y/n]' : '';
    for (;;) {
      const text = await askLine(`${name}${desc ? ` — ${desc.trim()}` : ''} (${hints.join('; ')})${yn}: `);
      if (!text.trim()) continue;
      const value = fromTyped(text, p);
      const issues = validateAgainst({ ...p }, structuredClone(value));
      if (issues.length) {
        process.stderr.write(`  ${issues.map((x) => x.message).join('; ')}\n`);
        continue;
      }
      response[name] = value;
      break;
    }
  }
}

async function respond(ctx: Ctx, cmd: Command): Promise<void> {
  const [raw, pairs] = argsOf<[string, string[]]>(cmd);
  const o = cmd.opts<{ response?: string }>();
  const id = parseId(raw, 'inquiry id');
  if (o.response !== undefined && pairs.length)
    throw new UsageError('give the answer as name=value pairs or --response, not both');
  const inquiry = await ctx.api().data<Inquiry>('GET', `/api/v1/inquiries/${id}`);
  if (inquiry.status !== 'pending')
    throw new CliError(`inquiry ${id} is ${inquiry.status}: it takes no more answers`);
  if (inquiry.can_respond === false) {
    const late = typeof inquiry.timeout_at === 'string' && Date.parse(inquiry.timeout_at) <= Date.now();
    throw new CliError(
      late
        ? `inquiry ${id} can no longer be answered: its time ran out`
        : `you may not answer inquiry ${id}: it is for ${who(inquiry) || 'those with inquiries:respond'}`,
    );
  }
  const schema = await responseSchema(inquiry);
  let response: unknown;
  if (o.response !== undefined) {
    response = parseValue(o.response);
    if (!isObject(response)) throw new UsageError('--response must be a JSON object');
  } else response = await parsePairs(pairs, { textKeys: stringProperties(schema) });
  if (interactive() && isObject(response)) {
    if (inquiry.prompt) process.stderr.write(`${ctx.out.e.bold(inquiry.prompt)}\n`);
    await askMissing(schema, response);
  }
  const { validateAgainst } = await import('../../domain/json-schema.ts');
  const issues = validateAgainst(schema, structuredClone(response));
  if (issues.length) {
    throw new CliError(
      `the answer does not fit inquiry ${id}: ${issues.map(issueText).join('; ')}`,
      EXIT_FAILURE,
      issues,
      `it expects: ${describeSchema(schema)}`,
    );
  }
  const answered = await ctx
    .api()
    .data<Inquiry>('POST', `/api/v1/inquiries/${id}/respond`, { body: { response } });
  ctx.out.item(
    answered ?? { ...inquiry, status: 'responded', response },
    (x) => x.id,
    () =>
      ctx.out.print(
        `Answered inquiry ${id}${
          inquiry.workflow_execution_id !== null
            ? `; workflow execution ${inquiry.workflow_execution_id} goes on`
            : inquiry.execution_id !== null
              ? `; execution ${inquiry.execution_id} goes on`
              : ''
        }`,
      ),
  );
}

/** One problem of an answer in words: `approved must be boolean`, `'approved' is missing`. */
function issueText(x: { path: string; message: string }): string {
  const missing = /^must have required property '(.+)'$/.exec(x.message);
  if (missing) return `'${missing[1]}' is missing`;
  return `${x.path === '/' ? 'the answer' : x.path.slice(1).replace(/\//g, '.')} ${x.message}`;
}

/** `approved (boolean, required), comment (string)`. */
function describeSchema(schema: Schema): string {
  const props = isObject(schema.properties) ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const parts = Object.entries(props).map(([k, p]) => {
    const extra = [typeOf(isObject(p) ? p : {}), required.has(k) ? 'required' : undefined].filter(Boolean);
    return `${k} (${extra.join(', ')})`;
  });
  return parts.length ? parts.join(', ') : oneLine(schema, 120);
}

export function registerInquiryCommands(program: Command): void {
  const inq = program.command('inquiry').description('questions workflows ask people, and their answers');
  withLimit(
    inq
      .command('list')
      .alias('ls')
      .description('list pending inquiries (--all for every one)')
      .option('-s, --status <statuses>', `comma-separated: ${STATUSES.join(', ')}`)
      .option('--all', 'every inquiry, whatever its status')
      .option('--mine', 'only those addressed to you or one of your roles'),
    'inquiries',
  ).action(act(list));
  inq
    .command('get')
    .alias('show')
    .argument('<id>')
    .description('show an inquiry and what it expects')
    .action(act(get));
  inq
    .command('respond')
    .alias('answer')
    .argument('<id>')
    .argument('[answer...]', 'name=value fields of the answer (JSON when valid)')
    .description(
      'answer an inquiry (checked against its schema first; missing fields are asked on a terminal)',
    )
    .option('--response <json>', 'the whole answer as a JSON object')
    .addHelpText('after', '\nExample:\n  attune inquiry respond 7 approved=true comment="go ahead"')
    .action(act(respond));
}
