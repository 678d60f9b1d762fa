/**
 * `attune trigger list|show`, `attune sensor list|show`, `attune event list|get|send` and
 * `attune enforcement list|get`.
 */
import type { Command } from 'commander';
import type { Enforcement, EventRecord, Sensor, Trigger } from '../../services/api/resource-types.ts';
import { act, argsOf, limitOf, withLimit } from '../command.ts';
import type { Ctx } from '../context.ts';
import { UsageError } from '../errors.ts';
import { formatTime, oneLine, parseId, parseSince, splitList } from '../format.ts';
import { parsePairs, parseValue, readDocument } from '../input.ts';
import { statusColor } from '../output.ts';
import { printParams } from '../schema-view.ts';
import {
  type DefinitionFilters,
  definitionQuery,
  enabledColumn,
  refPath,
  withDefinitionFilters,
} from './definitions.ts';
import { serveRole } from './server.ts';

async function triggerList(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<DefinitionFilters>();
  const { items, total } = await ctx
    .api()
    .list<Trigger>('/api/v1/triggers', definitionQuery(o), limitOf(o.limit));
  ctx.out.list(
    items,
    [
      { header: 'REF', value: (t) => t.ref },
      enabledColumn(ctx),
      { header: 'DESCRIPTION', value: (t) => t.description || t.label, flex: true },
    ],
    (t) => t.ref,
    { total, empty: 'no triggers found' },
  );
}

async function triggerShow(ctx: Ctx, cmd: Command): Promise<void> {
  const [ref] = argsOf<[string]>(cmd);
  const t = await ctx.api().data<Trigger>('GET', refPath('/api/v1/triggers', ref));
  ctx.out.item(
    t,
    (x) => x.ref,
    () => {
      ctx.out.fields([
        ['ref', ctx.out.c.bold(t.ref)],
        ['label', t.label],
        ['description', t.description || null],
        ['enabled', t.enabled ? 'yes' : ctx.out.c.magenta('no')],
        ['tags', t.tags.length ? t.tags.join(', ') : undefined],
      ]);
      ctx.out.heading('parameters (set by rules)');
      printParams(ctx, t.param_schema);
      ctx.out.heading('payload');
      printParams(ctx, t.payload_schema, 'free-form');
    },
  );
}

async function sensorList(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<DefinitionFilters>();
  const { items, total } = await ctx
    .api()
    .list<Sensor>('/api/v1/sensors', definitionQuery(o), limitOf(o.limit));
  ctx.out.list(
    items,
    [
      { header: 'REF', value: (s) => s.ref },
      { header: 'RUNNER', value: (s) => s.runner },
      { header: 'TRIGGERS', value: (s) => s.trigger_refs.join(', '), flex: true },
      enabledColumn(ctx),
      { header: 'DESCRIPTION', value: (s) => s.description || s.label, flex: true },
    ],
    (s) => s.ref,
    { total, empty: 'no sensors found' },
  );
}

async function sensorShow(ctx: Ctx, cmd: Command): Promise<void> {
  const [ref] = argsOf<[string]>(cmd);
  const s = await ctx.api().data<Sensor>('GET', refPath('/api/v1/sensors', ref));
  ctx.out.item(
    s,
    (x) => x.ref,
    () => {
      ctx.out.fields([
        ['ref', ctx.out.c.bold(s.ref)],
        ['label', s.label],
        ['description', s.description || null],
        ['runner', s.runner],
        ['entry point', s.entry_point || undefined],
        ['triggers', s.trigger_refs.join(', ') || null],
        ['poll interval', s.poll_interval_seconds ? `${s.poll_interval_seconds} s` : undefined],
        ['enabled', s.enabled ? 'yes' : ctx.out.c.magenta('no')],
      ]);
      if (Object.keys(s.config ?? {}).length) {
        ctx.out.heading('config');
        ctx.out.block(s.config);
      }
    },
  );
}

async function eventList(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{ trigger?: string; source?: string; since?: string; until?: string; limit?: string }>();
  const { items, total } = await ctx.api().list<EventRecord>(
    '/api/v1/events',
    {
      trigger: o.trigger,
      source: o.source,
      since: o.since === undefined ? undefined : parseSince(o.since),
      until: o.until === undefined ? undefined : parseSince(o.until, '--until'),
    },
    limitOf(o.limit),
  );
  ctx.out.list(
    items,
    [
      { header: 'ID', value: (e) => e.id },
      { header: 'TRIGGER', value: (e) => e.trigger_ref },
      { header: 'SOURCE', value: (e) => e.source },
      { header: 'CREATED', value: (e) => formatTime(e.created_at) },
      { header: 'PAYLOAD', value: (e) => oneLine(e.payload, 200), flex: true },
    ],
    (e) => e.id,
    { total, empty: 'no events found' },
  );
}

async function eventGet(ctx: Ctx, cmd: Command): Promise<void> {
  const [raw] = argsOf<[string]>(cmd);
  const e = await ctx.api().data<EventRecord>('GET', `/api/v1/events/${parseId(raw, 'event id')}`);
  ctx.out.item(
    e,
    (x) => x.id,
    () => {
      ctx.out.fields([
        ['id', ctx.out.c.bold(String(e.id))],
        ['trigger', e.trigger_ref],
        ['source', e.source],
        ['created', formatTime(e.created_at)],
        ['created by', e.created_by ?? undefined],
      ]);
      ctx.out.heading('payload');
      ctx.out.block(e.payload);
      ctx.out.print();
      ctx.out.print(ctx.out.c.dim(`what it caused: attune enforcement list --event ${e.id}`));
    },
  );
}

async function eventSend(ctx: Ctx, cmd: Command): Promise<void> {
  const [trigger, pairs] = argsOf<[string, string[]]>(cmd);
  const o = cmd.opts<{ payload?: string; file?: string }>();
  const given = [o.payload !== undefined, o.file !== undefined, pairs.length > 0].filter(Boolean).length;
  if (given > 1) throw new UsageError('give the payload one way: key=value pairs, --payload or -f');
  let payload: unknown = {};
  if (o.payload !== undefined) payload = parseValue(o.payload);
  else if (o.file !== undefined) payload = (await readDocument(o.file)).value;
  else if (pairs.length) payload = await parsePairs(pairs);
  const e = await ctx.api().data<EventRecord>('POST', '/api/v1/events', { body: { trigger, payload } });
  ctx.out.item(
    e,
    (x) => x.id,
    () => {
      ctx.out.print(`Event ${ctx.out.c.bold(String(e.id))} created (${e.trigger_ref})`);
      ctx.out.note(ctx.out.e.dim(`rules it matched: attune enforcement list --event ${e.id}`));
    },
  );
}

const ENFORCEMENT_STATUSES = ['created', 'scheduled', 'failed'];

async function enforcementList(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{
    rule?: string;
    trigger?: string;
    event?: string;
    status?: string;
    since?: string;
    until?: string;
    limit?: string;
  }>();
  if (o.status !== undefined) {
    const bad = splitList(o.status).filter((s) => !ENFORCEMENT_STATUSES.includes(s));
    if (bad.length || !splitList(o.status).length)
      throw new UsageError(`--status takes any of ${ENFORCEMENT_STATUSES.join(', ')}`);
  }
  const { items, total } = await ctx.api().list<Enforcement>(
    '/api/v1/enforcements',
    {
      rule: o.rule,
      trigger: o.trigger,
      event: o.event === undefined ? undefined : parseId(o.event, '--event'),
      status: o.status,
      since: o.since === undefined ? undefined : parseSince(o.since),
      until: o.until === undefined ? undefined : parseSince(o.until, '--until'),
    },
    limitOf(o.limit),
  );
  ctx.out.list(
    items,
    [
      { header: 'ID', value: (e) => e.id },
      { header: 'RULE', value: (e) => e.rule_ref, flex: true },
      { header: 'EVENT', value: (e) => e.event_id },
      { header: 'STATUS', value: (e) => e.status, color: (t) => statusColor(ctx.out.c, t) },
      { header: 'EXECUTION', value: (e) => e.execution_id ?? '' },
      { header: 'CREATED', value: (e) => formatTime(e.created_at) },
      { header: 'REASON', value: (e) => e.failure_reason ?? '', flex: true },
    ],
    (e) => e.id,
    { total, empty: 'no enforcements found' },
  );
}

async function enforcementGet(ctx: Ctx, cmd: Command): Promise<void> {
  const [raw] = argsOf<[string]>(cmd);
  const e = await ctx
    .api()
    .data<Enforcement>('GET', `/api/v1/enforcements/${parseId(raw, 'enforcement id')}`);
  ctx.out.item(
    e,
    (x) => x.id,
    () => {
      ctx.out.fields([
        ['id', ctx.out.c.bold(String(e.id))],
        ['rule', e.rule_ref],
        ['trigger', e.trigger_ref],
        ['event', e.event_id],
        ['status', statusColor(ctx.out.c, e.status)],
        ['execution', e.execution_id],
        ['failure', e.failure_reason ?? undefined],
        ['created', formatTime(e.created_at)],
      ]);
      if (e.resolved_params) {
        ctx.out.heading('parameters');
        ctx.out.block(e.resolved_params);
      }
    },
  );
}

export function registerTriggerCommands(program: Command): void {
  const trigger = program.command('trigger').description('list and inspect trigger types');
  withDefinitionFilters(trigger.command('list').alias('ls').description('list triggers'), 'triggers').action(
    act(triggerList),
  );
  trigger
    .command('show')
    .alias('get')
    .argument('<ref>')
    .description('show a trigger with its parameters and payload')
    .action(act(triggerShow));

  // `attune sensor` alone starts the sensor service; its subcommands inspect sensors.
  const sensor = program
    .command('sensor')
    .description(
      "start the packs' sensors (needs ATTUNE_DATABASE_URL and ATTUNE_AMQP_URL), or list and inspect sensors",
    )
    .action(() => serveRole('sensor'));
  withDefinitionFilters(sensor.command('list').alias('ls').description('list sensors'), 'sensors').action(
    act(sensorList),
  );
  sensor.command('show').alias('get').argument('<ref>').description('show a sensor').action(act(sensorShow));
}

export function registerRuntimeCommands(program: Command): void {
  const event = program.command('event').description('list, inspect and send events');
  withLimit(
    event
      .command('list')
      .alias('ls')
      .description('list events, newest first')
      .option('-t, --trigger <ref>', 'only events of this trigger')
      .option('--source <source>', 'only from this source (api, webhook:<name>, sensor:<ref>, …)')
      .option('--since <time>', 'ISO 8601 time, or a span back from now (30m, 2h, 7d)')
      .option('--until <time>', 'ISO 8601 time, or a span back from now'),
    'events',
  ).action(act(eventList));
  event
    .command('get')
    .alias('show')
    .argument('<id>')
    .description('show an event and its payload')
    .action(act(eventGet));
  event
    .command('send')
    .argument('<trigger>', 'the trigger ref')
    .argument('[payload...]', 'name=value pairs of the payload')
    .description('create an event (rules matching it run)')
    .option('--payload <json>', 'the payload as JSON')
    .option('-f, --file <file>', 'the payload from a YAML/JSON file (- for stdin)')
    .action(act(eventSend));

  const enf = program
    .command('enforcement')
    .alias('rule-enforcement')
    .description('list rule enforcements (a rule matched an event)');
  withLimit(
    enf
      .command('list')
      .alias('ls')
      .description('list enforcements, newest first')
      .option('-r, --rule <ref>', 'only those of this rule')
      .option('-t, --trigger <ref>', 'only those of this trigger')
      .option('-e, --event <id>', 'only those of this event')
      .option('-s, --status <statuses>', `comma-separated: ${ENFORCEMENT_STATUSES.join(', ')}`)
      .option('--since <time>', 'ISO 8601 time, or a span back from now (30m, 2h, 7d)')
      .option('--until <time>', 'ISO 8601 time, or a span back from now'),
    'enforcements',
  ).action(act(enforcementList));
  enf
    .command('get')
    .alias('show')
    .argument('<id>')
    .description('show an enforcement')
    .action(act(enforcementGet));
}
