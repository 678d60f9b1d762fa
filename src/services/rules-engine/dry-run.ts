/**
 * The dry run of a rule (`POST /api/v1/rules/test`): the same evaluation as the rules engine
 * (`evaluate.ts`) over a stored or an inline rule and a payload or a stored event, with nothing
 * written. Secret parameters come back redacted; encrypted keys are decrypted for the templates only
 * when the caller may decrypt keys — otherwise criteria could be used to guess them.
 */
import { eq } from 'drizzle-orm';
import { validateAgainst } from '../../domain/json-schema.ts';
import type { Db } from '../../store/database.ts';
import { actions, events, triggers } from '../../store/schema.ts';
import type { KeyStore } from '../keys/key-store.ts';
import { type ActionInfo, type CriterionResult, evaluateRule, redact, ruleUsesKeys } from './evaluate.ts';
import { type IndexedRule, paramsKey } from './rule-index.ts';
import { loadSystemKeys, NO_KEYS } from './system-keys.ts';

export type DryRunRule = Pick<
  IndexedRule,
  'ref' | 'packRef' | 'triggerRef' | 'triggerParams' | 'criteria' | 'actionRef' | 'actionParams'
>;

export interface DryRunEvent {
  id: number | null;
  triggerRef: string;
  /** The parameters the event was fired with; for a payload tried alone, the rule's own. */
  triggerParams: Record<string, unknown>;
  source: string;
  createdAt: Date;
  payload: unknown;
}

export interface DryRunProblem {
  stage: 'trigger' | 'payload' | 'criteria' | 'parameters' | 'action' | 'validation' | 'keys';
  message: string;
}

export interface DryRunResult {
  /** Whether the criteria hold for this event. */
  matched: boolean;
  /** Whether the engine would request an execution (matched, and parameters rendered and valid). */
  would_execute: boolean;
  criteria: CriterionResult[];
  /** The action parameters the engine would use (secret ones as `{"$secret": true}`); null when unmatched. */
  parameters: Record<string, unknown> | null;
  secret_parameters: string[];
  errors: DryRunProblem[];
  /** Things worth knowing that are not errors. */
  notes: string[];
}

export interface DryRunOptions {
  /** Whether encrypted keys may be decrypted for the templates. */
  decryptKeys: boolean;
  /** "now" of time-based criteria; default the event's time. */
  now?: Date;
}

export async function dryRun(
  db: Db,
  keyStore: KeyStore,
  rule: DryRunRule,
  ev: DryRunEvent,
  opts: DryRunOptions,
): Promise<DryRunResult> {
  const errors: DryRunProblem[] = [];
  const notes: string[] = [];
  const [[trigger], [actionRow]] = await Promise.all([
    db
      .select({ enabled: triggers.enabled, payloadSchema: triggers.payloadSchema })
      .from(triggers)
      .where(eq(triggers.ref, rule.triggerRef)),
    db
      .select({
        ref: actions.ref,
        runner: actions.runner,
        enabled: actions.enabled,
        paramSchema: actions.paramSchema,
      })
      .from(actions)
      .where(eq(actions.ref, rule.actionRef)),
  ]);
  if (!trigger) errors.push({ stage: 'trigger', message: `trigger '${rule.triggerRef}' does not exist` });
  else {
    if (!trigger.enabled)
      notes.push(`trigger '${rule.triggerRef}' is disabled: it accepts no events until it is enabled`);
    if (ev.triggerRef !== rule.triggerRef)
      notes.push(
        `event ${ev.id} is of trigger '${ev.triggerRef}'; the rule listens to '${rule.triggerRef}' and would never see it`,
      );
    else if (paramsKey(ev.triggerParams) !== paramsKey(rule.triggerParams))
      notes.push(
        `event ${ev.id} was fired with trigger parameters ${paramsKey(ev.triggerParams)}; the rule has ` +
          `${paramsKey(rule.triggerParams)} and would never see it`,
      );
    else if (ev.id === null && trigger.payloadSchema) {
      const problems = validateAgainst(trigger.payloadSchema, structuredClone(ev.payload));
      if (problems.length)
        errors.push({
          stage: 'payload',
          message: `payload does not fit trigger '${rule.triggerRef}' (it would be refused): ${problems[0]!.path} ${problems[0]!.message}`,
        });
    }
  }
  let keys = NO_KEYS;
  if (ruleUsesKeys(rule)) {
    keys = await loadSystemKeys(db, keyStore, { decrypt: opts.decryptKeys });
    if (!opts.decryptKeys && keys.encrypted.size)
      notes.push(
        'encrypted keys are shown to the templates as "********": decrypting them needs the decrypt permission on keys',
      );
    for (const [name, why] of Object.entries(keys.unreadable))
      errors.push({ stage: 'keys', message: `key '${name}' cannot be read: ${why}` });
  }
  const action: ActionInfo | undefined = actionRow;
  const outcome = evaluateRule(
    rule,
    {
      payload: ev.payload,
      event: {
        id: ev.id,
        trigger: ev.triggerRef,
        trigger_params: ev.triggerParams,
        source: ev.source,
        created_at: ev.createdAt.toISOString(),
      },
    },
    keys,
    action,
    { now: opts.now ?? ev.createdAt },
  );
  if (outcome.kind === 'unmatched')
    return {
      matched: false,
      would_execute: false,
      criteria: outcome.criteria,
      parameters: null,
      secret_parameters: [],
      errors,
      notes,
    };
  if (outcome.kind === 'failed') {
    errors.push({ stage: outcome.stage, message: outcome.reason });
    return {
      matched: outcome.stage !== 'criteria',
      would_execute: false,
      criteria: outcome.criteria,
      parameters: outcome.parameters ?? null,
      secret_parameters: [...(outcome.secret ?? [])].sort(),
      errors,
      notes,
    };
  }
  const unseen =
    ev.triggerRef !== rule.triggerRef || paramsKey(ev.triggerParams) !== paramsKey(rule.triggerParams);
  return {
    matched: true,
    would_execute: !unseen && errors.every((e) => e.stage !== 'trigger' && e.stage !== 'payload'),
    criteria: outcome.criteria,
    parameters: redact(outcome.parameters, outcome.secret),
    secret_parameters: [...outcome.secret].sort(),
    errors,
    notes,
  };
}

/** A stored event as a dry-run event, or undefined. */
export async function loadEvent(db: Db, id: number): Promise<DryRunEvent | undefined> {
  const [e] = await db.select().from(events).where(eq(events.id, id));
  return (
    e && {
      id: e.id,
      triggerRef: e.triggerRef,
      triggerParams: e.triggerParams,
      source: e.source,
      createdAt: e.createdAt,
      payload: e.payload,
    }
  );
}
