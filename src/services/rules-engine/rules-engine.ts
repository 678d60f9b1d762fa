/**
 * The rules engine: consumes `event.created`, matches each event against the enabled rules of its
 * trigger (the `RuleIndex`), and for every rule that matches records an enforcement and requests an
 * execution of the rule's action with the rendered parameters.
 *
 * Batches: the queue is consumed with a prefetch of several batches; the messages delivered together
 * are handled by one pass (`Batcher`): one read of the events with the enforcements already made for
 * them, the actions involved (cached a moment, like the scheduler's), the system keys (only when a
 * rule template uses `keys`), then one transaction that writes every enforcement, execution, secret
 * and outbox message of the batch. A message is acknowledged once its batch has committed.
 *
 * Where the scheduler runs in the same process (`scheduleDirectly`, the platform's `scheduler` role),
 * an execution of a plain action — enabled, run by a worker, no concurrency policy — is created
 * `scheduled`, with the lease, timeout and `execution.scheduled` message the scheduler would give it:
 * requested and scheduled in one transaction, one hop less. The others are left `requested`.
 *
 * Idempotency (DESIGN §4.2): enforcements are unique on (rule_ref, event_id) and inserted with
 * `ON CONFLICT DO NOTHING`; an execution is created only for an enforcement this pass inserted, so a
 * redelivered or concurrently processed `event.created` never yields a second execution.
 *
 * Secrets (DESIGN §4.7): parameters whose value derives from an encrypted key, or that the action's
 * param_schema marks `secret: true`, are stored as `{"$secret": true}` in the execution (and the
 * enforcement); their values go to `execution_secrets`, encrypted.
 */
import { sql } from 'drizzle-orm';
import type { Bus, BusLogger, Subscription } from '../../bus/bus.ts';
import { silentLogger } from '../../bus/bus.ts';
import { writeOutboxMessages } from '../../bus/outbox.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Store } from '../../store/database.ts';
import { idsMatch, insertRows, mapRows, rawRows, returningList } from '../../store/repositories/bulk.ts';
import type { ExecutionRow } from '../../store/repositories/executions.ts';
import { enforcements, events, executionSecrets, executions } from '../../store/schema.ts';
import { KeyStore } from '../keys/key-store.ts';
import { EVENT_TIME_KEY, metrics } from '../metrics/registry.ts';
import { Batcher } from '../runtime/batcher.ts';
import { sealParameters } from '../runtime/execution-secrets.ts';
import { type ExecutionRequested, QUEUES, TOPICS } from '../runtime/messages.ts';
import { ActionCache, type ActionRow } from '../scheduler/action-cache.ts';
import {
  DEADLINES,
  DEFAULT_TIMEOUT_SECONDS,
  NOTIFIED_COLUMNS,
  type NotifiedRow,
  notifyStatuses,
  scheduledMessage,
  schedulesDirectly,
  secondsFromNow,
} from '../scheduler/runtime.ts';
import {
  type ActionInfo,
  type EventContext,
  evaluateRule,
  type RuleOutcome,
  ruleUsesKeys,
} from './evaluate.ts';
import { type IndexedRule, paramsKey, RuleIndex } from './rule-index.ts';
import { loadSystemKeys, NO_KEYS, type TemplateKeys } from './system-keys.ts';

type EventRow = typeof events.$inferSelect;

export interface RulesEngineDeps {
  /** The instance cipher: decrypts keys, encrypts secret parameters. */
  cipher: Cipher;
  /** Kicked after each batch that requested executions. */
  outbox?: { kick(): void } | undefined;
  /** Shared with the rest of the process when given (its owner attaches it to the bus); otherwise the engine makes and attaches its own. */
  ruleIndex?: RuleIndex;
  logger?: BusLogger;
  /** The "now" of time-based criteria (`timediff_*`); default: the event's creation time. */
  clock?: () => Date;
  /** Messages handled at once. Default 256 (two batches: one in flight, one gathering). */
  prefetch?: number;
  /** Largest batch. Default 128. */
  maxBatchSize?: number;
  /** Batches processed at once. Default 1 on PGlite (one connection), 2 on PostgreSQL. */
  concurrency?: number;
  /**
   * Schedule executions of actions that need nothing of the scheduler but a lease (no concurrency
   * policy, run by a worker) in the transaction that creates them, as the scheduler would: one hop
   * less. For a process that runs the scheduler too (the platform's `scheduler` role). Default false:
   * every execution is left `requested` for the scheduler.
   */
  scheduleDirectly?: boolean;
  /**
   * Events this process has just stored (`RecentEvents`): taken from here instead of read back. A
   * redelivered event is not there any more and is read, with the enforcements made for it.
   */
  recentEvents?: { take(id: number): EventRow | undefined };
}

export interface RulesEngineStats {
  /** Events looked at (a redelivered one counts again). */
  events: number;
  /** Enforcements created (matched rules), including failed ones. */
  enforcements: number;
  /** Executions requested. */
  executions: number;
  /** Enforcements that failed (criteria or parameters could not be evaluated, action missing …). */
  failed: number;
  /** Rule/event pairs skipped because an enforcement already existed. */
  duplicates: number;
  batches: number;
}

/** What one pass did. */
export interface PassResult {
  events: number;
  enforcements: number;
  executions: number;
  failed: number;
  duplicates: number;
  /** Ids of the executions requested by this pass. */
  executionIds: number[];
}

interface Planned {
  event: EventRow;
  rule: IndexedRule;
  action: ActionInfo | undefined;
  outcome: Exclude<RuleOutcome, { kind: 'unmatched' }>;
  sealed?: { parameters: Record<string, unknown>; ciphertext: string | null };
}

export class RulesEngine {
  readonly stats: RulesEngineStats = {
    events: 0,
    enforcements: 0,
    executions: 0,
    failed: 0,
    duplicates: 0,
    batches: 0,
  };
  readonly ruleIndex: RuleIndex;
  readonly #store: Store;
  readonly #deps: RulesEngineDeps;
  readonly #keyStore: KeyStore;
  readonly #log: BusLogger;
  readonly #batcher: Batcher<number, void>;
  #subscription: Subscription | undefined;
  #definitionsSub: Subscription | undefined;
  readonly #actions: ActionCache;
  /** The bus it consumes from: status notifications of the executions it schedules go there. */
  #bus: Bus | undefined;
  readonly #ownsIndex: boolean;

  constructor(store: Store, deps: RulesEngineDeps) {
    this.#store = store;
    this.#deps = deps;
    this.#keyStore = new KeyStore(store, deps.cipher);
    this.#actions = new ActionCache(() => store.db);
    this.#log = deps.logger ?? silentLogger;
    this.#ownsIndex = !deps.ruleIndex;
    this.ruleIndex = deps.ruleIndex ?? new RuleIndex(store.db);
    this.#batcher = new Batcher<number, void>(
      async (ids) => {
        await this.processEvents(ids);
      },
      {
        maxBatchSize: deps.maxBatchSize ?? 128,
        concurrency: deps.concurrency ?? (store.kind === 'pglite' ? 1 : 2),
      },
    );
  }

  /** Creates an engine and starts consuming. */
  static async start(bus: Bus, store: Store, deps: RulesEngineDeps): Promise<RulesEngine> {
    const engine = new RulesEngine(store, deps);
    await engine.start(bus);
    return engine;
  }

  /** Follows rule changes and consumes `attune.rules-engine` (bound to `event.created`). */
  async start(bus: Bus): Promise<void> {
    if (this.#subscription) return;
    this.#bus = bus;
    if (this.#ownsIndex) await this.ruleIndex.attach(bus);
    this.#definitionsSub = await bus.subscribe([TOPICS.definitionsChanged], async () =>
      this.#actions.clear(),
    );
    this.#subscription = await bus.consume(
      QUEUES.rulesEngine,
      { topics: [TOPICS.eventCreated], prefetch: this.#deps.prefetch ?? 256 },
      (msg) => this.handleMessage(msg.payload),
    );
  }

  /** The handler of one `event.created` message: resolves when its batch has committed. */
  async handleMessage(payload: unknown): Promise<void> {
    const id = (payload as { event_id?: unknown } | null)?.event_id;
    if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) {
      // Not retryable: a malformed message stays malformed. Acknowledge it and say so.
      this.#log.error({ payload }, 'event.created without a valid event_id; ignored');
      return;
    }
    await this.#batcher.add(id);
  }

  /** Stops consuming after the batches in flight. */
  async stop(): Promise<void> {
    const s = this.#subscription;
    this.#subscription = undefined;
    await s?.close();
    await this.#definitionsSub?.close();
    this.#definitionsSub = undefined;
    await this.#batcher.close();
    if (this.#ownsIndex) await this.ruleIndex.detach();
  }

  /**
   * One pass over events (by id; unknown ids are skipped): matches, renders, and writes everything
   * in one transaction. Safe to call again with the same ids.
   */
  async processEvents(eventIds: readonly number[]): Promise<PassResult> {
    const ids = [...new Set(eventIds)];
    const result: PassResult = {
      events: 0,
      enforcements: 0,
      executions: 0,
      failed: 0,
      duplicates: 0,
      executionIds: [],
    };
    if (!ids.length) return result;
    const db = this.#store.db;
    // Events this process has just stored come as they are (none enforced yet: this is their first
    // pass); the others are read, each with the rules that already enforced it (a redelivery).
    const fresh: EventRow[] = [];
    const unknown: number[] = [];
    for (const id of ids) {
      const row = this.#deps.recentEvents?.take(id);
      if (row) fresh.push(row);
      else unknown.push(id);
    }
    const read = unknown.length
      ? mapRows<EventRow & { enforced: string[] }>(
          events,
          rawRows(
            await db.execute(sql`select ${returningList(events)},
                array(select f.rule_ref from ${enforcements} f where f.event_id = e.id) as enforced
              from ${events} e where ${idsMatch('e.id', unknown)}`),
          ),
        )
      : [];
    const enforced = new Map(read.map((e) => [e.id, e.enforced]));
    const evs: EventRow[] = [...fresh, ...read.map(({ enforced: _, ...e }) => e)];
    result.events = evs.length;
    this.stats.events += evs.length;
    this.stats.batches++;
    if (!evs.length) return result;

    // Candidate (event, rule) pairs, without those already enforced.
    const triggerRefs = [...new Set(evs.map((e) => e.triggerRef))];
    const rulesOf = new Map<string, readonly IndexedRule[]>();
    await Promise.all(triggerRefs.map(async (t) => rulesOf.set(t, await this.ruleIndex.rulesFor(t))));
    const withRules = evs.filter((e) => (rulesOf.get(e.triggerRef)?.length ?? 0) > 0);
    if (!withRules.length) return result;
    const done = new Set(withRules.flatMap((e) => (enforced.get(e.id) ?? []).map((r) => pairKey(r, e.id))));
    const pairs: { event: EventRow; rule: IndexedRule }[] = [];
    for (const event of withRules) {
      // A rule of a parameterised trigger (a webhook's name, a timer's spec) sees only the events
      // fired with its own parameters.
      const params = paramsKey(event.triggerParams);
      for (const rule of rulesOf.get(event.triggerRef) ?? []) {
        if (ruleParamsKey(rule) !== params) continue;
        if (done.has(pairKey(rule.ref, event.id))) result.duplicates++;
        else pairs.push({ event, rule });
      }
    }
    this.stats.duplicates += result.duplicates;
    if (!pairs.length) return result;

    // What the templates need: the actions, and the system keys when a rule uses them.
    const actionRefs = [...new Set(pairs.map((p) => p.rule.actionRef))];
    // Cached a moment, like the scheduler's (a definitions-changed broadcast clears it).
    const actionRows = [...(await this.#actions.getMany(actionRefs)).values()].filter(
      (a): a is ActionRow => a !== null,
    );
    const actionOf = new Map<string, ActionInfo>(actionRows.map((a) => [a.ref, a]));
    const actionRowOf = new Map(actionRows.map((a) => [a.ref, a]));
    const scheduled: (NotifiedRow & Pick<ExecutionRow, 'runner'>)[] = [];
    let keys: TemplateKeys = NO_KEYS;
    if (pairs.some((p) => ruleUsesKeys(p.rule))) keys = await loadSystemKeys(db, this.#keyStore);

    const planned: Planned[] = [];
    for (const { event, rule } of pairs) {
      const action = actionOf.get(rule.actionRef);
      const outcome = evaluateRule(rule, eventContext(event), keys, action, {
        now: this.#deps.clock?.() ?? event.createdAt,
      });
      if (outcome.kind === 'unmatched') continue;
      const p: Planned = { event, rule, action, outcome };
      if (outcome.kind === 'matched')
        p.sealed = sealParameters(this.#deps.cipher, outcome.parameters, outcome.secret);
      planned.push(p);
    }
    if (!planned.length) return result;

    await this.#store.transaction(async (tx) => {
      const inserted = await insertRows(
        tx,
        enforcements,
        planned.map((p) => ({
          ruleId: p.rule.id,
          ruleRef: p.rule.ref,
          triggerRef: p.event.triggerRef,
          eventId: p.event.id,
          status: p.outcome.kind === 'matched' ? 'scheduled' : 'failed',
          resolvedParams:
            p.sealed?.parameters ?? (p.outcome.kind === 'failed' ? (p.outcome.parameters ?? null) : null),
          failureReason: p.outcome.kind === 'failed' ? p.outcome.reason : null,
        })),
        {
          returning: ['id', 'ruleRef', 'eventId'],
          onConflictDoNothing: [enforcements.ruleRef, enforcements.eventId],
        },
      );
      const enforcementId = new Map(inserted.map((r) => [pairKey(r.ruleRef, r.eventId), r.id]));
      result.enforcements = inserted.length;
      // Lost a race with another pass over the same event: that pass made them.
      const raced = planned.length - inserted.length;
      result.duplicates += raced;
      this.stats.duplicates += raced;
      const toRun = planned.filter(
        (p) => p.outcome.kind === 'matched' && enforcementId.has(pairKey(p.rule.ref, p.event.id)),
      );
      result.failed = planned.filter(
        (p) => p.outcome.kind === 'failed' && enforcementId.has(pairKey(p.rule.ref, p.event.id)),
      ).length;
      if (!toRun.length) return;
      // Ids first, so that each execution is created as the root of its own tree (a workflow's
      // children point to their root) without a second write.
      // (One id without generate_series: a row count given as a parameter has the statement planned
      // anew at each run.)
      const ids = rawRows(
        await tx.execute(
          toRun.length === 1
            ? sql`select nextval('executions_id_seq')::bigint as id`
            : sql`select nextval('executions_id_seq')::bigint as id from generate_series(1, ${toRun.length}::integer)`,
        ),
      ).map((r) => Number(r.id));
      // Executions of actions that need nothing of the scheduler but a lease (no concurrency policy,
      // a worker runner) are created `scheduled` — requested and scheduled in this one transaction,
      // with the lease, timeout and message the scheduler would give them; the others are left
      // `requested` for the scheduler.
      const made = await insertRows(
        tx,
        executions,
        toRun.map((p, i) => {
          const base = {
            id: ids[i]!,
            rootId: ids[i]!,
            actionRef: p.rule.actionRef,
            runner: p.action!.runner,
            parameters: p.sealed!.parameters,
            enforcementId: enforcementId.get(pairKey(p.rule.ref, p.event.id))!,
            ruleRef: p.rule.ref,
            triggerRef: p.event.triggerRef,
            eventId: p.event.id,
            createdBy: `rule:${p.rule.ref}`,
            context: { [EVENT_TIME_KEY]: p.event.createdAt.toISOString() },
          };
          const action = actionRowOf.get(p.rule.actionRef);
          if (!this.#deps.scheduleDirectly || !schedulesDirectly(action))
            return { ...base, status: 'requested' };
          return {
            ...base,
            status: 'scheduled',
            scheduledAt: sql`now()`,
            leaseExpiresAt: secondsFromNow(DEADLINES.scheduleLease),
            timeoutSeconds: action!.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS,
          };
        }),
        { returning: [...NOTIFIED_COLUMNS, 'runner', 'enforcementId'] },
      );
      const byEnforcement = new Map(made.map((m) => [m.enforcementId!, m.id]));
      scheduled.push(...made.filter((m) => m.status === 'scheduled'));
      const requested = made.filter((m) => m.status === 'requested').map((m) => m.id);
      const secrets = toRun
        .filter((p) => p.sealed!.ciphertext !== null)
        .map((p) => ({
          executionId: byEnforcement.get(enforcementId.get(pairKey(p.rule.ref, p.event.id))!)!,
          ciphertext: p.sealed!.ciphertext!,
        }));
      for (const part of chunks(secrets, ROWS_PER_INSERT)) await tx.insert(executionSecrets).values(part);
      await writeOutboxMessages(tx, [
        ...scheduled.map(scheduledMessage),
        ...requested.map((id) => ({
          topic: TOPICS.executionRequested,
          payload: { execution_id: id } satisfies ExecutionRequested,
        })),
      ]);
      result.executions = ids.length;
      result.executionIds = ids;
    });
    this.stats.enforcements += result.enforcements;
    this.stats.executions += result.executions;
    this.stats.failed += result.failed;
    metrics.enforcementsRecorded(result.enforcements - result.failed, result.failed);
    if (result.executions) this.#deps.outbox?.kick();
    if (scheduled.length && this.#bus) notifyStatuses(this.#bus, scheduled, this.#log);
    if (result.failed)
      for (const p of planned)
        if (p.outcome.kind === 'failed')
          this.#log.warn(
            { event_id: p.event.id, rule_ref: p.rule.ref, reason: p.outcome.reason },
            'rule enforcement failed',
          );
    return result;
  }
}

/** Rows per multi-row INSERT: well under PostgreSQL's 65,535 parameters per statement. */
const ROWS_PER_INSERT = 1000;

function* chunks<T>(items: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

const pairKey = (ruleRef: string, eventId: number): string => `${eventId}\u0000${ruleRef}`;

const ruleParamsKeys = new WeakMap<IndexedRule, string>();
function ruleParamsKey(rule: IndexedRule): string {
  let k = ruleParamsKeys.get(rule);
  if (k === undefined) {
    k = paramsKey(rule.triggerParams);
    ruleParamsKeys.set(rule, k);
  }
  return k;
}

/** What templates see of an event. */
export function eventContext(
  e: Pick<EventRow, 'id' | 'triggerRef' | 'triggerParams' | 'source' | 'createdAt' | 'payload'>,
): EventContext {
  return {
    payload: e.payload,
    event: {
      id: e.id,
      trigger: e.triggerRef,
      trigger_params: e.triggerParams,
      source: e.source,
      created_at: e.createdAt.toISOString(),
    },
  };
}

/** Starts a rules engine on `bus` (see `RulesEngine.start`). */
export const startRulesEngine = (bus: Bus, store: Store, deps: RulesEngineDeps): Promise<RulesEngine> =>
  RulesEngine.start(bus, store, deps);
