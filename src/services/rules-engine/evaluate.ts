/**
 * One rule against one event, without I/O: criteria (src/rules), then the action parameters
 * rendered (src/expr) and validated against the action's param_schema, and which of them are
 * secret. Shared by the rules engine and the dry run (`POST /api/v1/rules/test`).
 *
 * Template context: `trigger` (the event payload; `payload` is the same), `event` ({id, trigger,
 * trigger_params, source, created_at}), `rule` ({ref, pack}) and `keys` (the system-scope keys,
 * decrypted).
 *
 * A parameter is secret when the action's param_schema marks it `secret: true`, or when its value
 * depends on an encrypted key. The dependency is found by rendering the parameter a second time with
 * every encrypted key's value perturbed: a value that changes (or a render that then fails) came
 * from an encrypted key, whichever way the template reached it (`keys.x`, `keys['x']`, a loop, a
 * variable). Only parameters whose template mentions `keys` pay for the second render.
 */
import { validateAgainst } from '../../domain/json-schema.ts';
import { ExprError, render } from '../../expr/index.ts';
import { type CriterionResult, matchCriteria, ruleContext } from '../../rules/index.ts';
import { schemaSecretNames } from '../runtime/execution-secrets.ts';
import type { IndexedRule } from './rule-index.ts';
import type { TemplateKeys } from './system-keys.ts';

export type { CriterionResult };

export interface ActionInfo {
  ref: string;
  runner: string;
  enabled: boolean;
  paramSchema: Record<string, unknown>;
}

export interface EventContext {
  payload: unknown;
  event: {
    id: number | null;
    trigger: string;
    trigger_params: Record<string, unknown>;
    source: string;
    created_at: string;
  };
}

export type RuleStage = 'criteria' | 'parameters' | 'action' | 'validation';

export type RuleOutcome =
  | { kind: 'unmatched'; criteria: CriterionResult[] }
  | {
      kind: 'matched';
      criteria: CriterionResult[];
      /** Rendered and validated (schema defaults applied); secret values in the clear. */
      parameters: Record<string, unknown>;
      /** Names of the secret parameters. */
      secret: Set<string>;
    }
  | {
      kind: 'failed';
      stage: RuleStage;
      reason: string;
      criteria: CriterionResult[];
      /** What could be rendered, secrets already replaced by the marker (for the record). */
      parameters?: Record<string, unknown>;
      secret?: Set<string>;
    };

export interface EvaluateOptions {
  /** "now" of the time-based criteria. */
  now: Date;
}

type Rule = Pick<IndexedRule, 'ref' | 'packRef' | 'criteria' | 'actionRef' | 'actionParams'>;

const usesKeysCache = new WeakMap<object, boolean>();

/** Whether any template of the rule mentions `keys` (then the keys must be loaded). */
export function ruleUsesKeys(rule: Pick<IndexedRule, 'criteria' | 'actionParams'>): boolean {
  let v = usesKeysCache.get(rule);
  if (v === undefined) {
    v = mentionsKeys(rule.criteria) || mentionsKeys(rule.actionParams);
    usesKeysCache.set(rule, v);
  }
  return v;
}

const mentionsKeys = (v: unknown): boolean => (JSON.stringify(v) ?? '').includes('keys');

/** The template context of one rule and one event. */
export function templateContext(rule: Rule, ev: EventContext, keys: TemplateKeys): Record<string, unknown> {
  return ruleContext({
    payload: ev.payload,
    event: { ...ev.event },
    rule: { ref: rule.ref, pack: rule.packRef },
    keys: keys.values,
  });
}

const message = (e: unknown): string =>
  e instanceof ExprError || e instanceof Error ? e.message : String(e);

/**
 * Evaluates `rule` for one event. Never throws for anything a rule or an event can contain. Failure
 * reasons never quote the value of an encrypted key (an error message may quote a value).
 */
export function evaluateRule(
  rule: Rule,
  ev: EventContext,
  keys: TemplateKeys,
  action: ActionInfo | undefined,
  opts: EvaluateOptions,
): RuleOutcome {
  const outcome = evaluateUnscrubbed(rule, ev, keys, action, opts);
  if (outcome.kind === 'failed' && keys.encrypted.size) outcome.reason = scrub(outcome.reason, keys);
  return outcome;
}

/** `text` with every string found in an encrypted key's value (4+ characters) masked. */
function scrub(text: string, keys: TemplateKeys): string {
  const secrets: string[] = [];
  const collect = (v: unknown, depth: number): void => {
    if (typeof v === 'string' || typeof v === 'number') {
      const t = String(v);
      if (t.length >= 4) secrets.push(t, JSON.stringify(t).slice(1, -1));
    } else if (v && typeof v === 'object' && depth < 20)
      for (const x of Object.values(v)) collect(x, depth + 1);
  };
  for (const name of keys.encrypted) collect(keys.values[name], 0);
  secrets.sort((a, b) => b.length - a.length);
  let out = text;
  for (const t of secrets) out = out.split(t).join('********');
  return out;
}

function evaluateUnscrubbed(
  rule: Rule,
  ev: EventContext,
  keys: TemplateKeys,
  action: ActionInfo | undefined,
  opts: EvaluateOptions,
): RuleOutcome {
  const ctx = templateContext(rule, ev, keys);
  let criteria: CriterionResult[] = [];
  try {
    const m = matchCriteria(rule.criteria, ctx, { now: opts.now });
    criteria = m.details;
    // A criterion that plainly does not hold decides, whatever the others do; otherwise a criterion
    // that could not be evaluated fails the enforcement (visibly) rather than silently not matching.
    if (criteria.some((c) => !c.matched && c.error === undefined)) return { kind: 'unmatched', criteria };
    const broken = criteria.find((c) => c.error !== undefined);
    if (broken)
      return {
        kind: 'failed',
        stage: 'criteria',
        reason: `criterion '${broken.key}' could not be evaluated: ${broken.error}`,
        criteria,
      };
    if (!m.matched) return { kind: 'unmatched', criteria };
  } catch (e) {
    return {
      kind: 'failed',
      stage: 'criteria',
      reason: `criteria could not be evaluated: ${message(e)}`,
      criteria,
    };
  }

  const rendered = renderParams(rule.actionParams, ctx, keys);
  const schemaSecret = action ? schemaSecretNames(action.paramSchema) : new Set<string>();
  const secret = new Set(rendered.secret);
  const markSchemaSecrets = (params: Record<string, unknown>) => {
    for (const name of schemaSecret) if (Object.hasOwn(params, name)) secret.add(name);
  };
  markSchemaSecrets(rendered.parameters);
  if (rendered.error)
    return {
      kind: 'failed',
      stage: 'parameters',
      reason: rendered.error,
      criteria,
      parameters: redact(rendered.parameters, secret),
      secret,
    };
  const params = rendered.parameters;
  if (!action)
    return {
      kind: 'failed',
      stage: 'action',
      reason: `action '${rule.actionRef}' does not exist`,
      criteria,
      parameters: redact(params, secret),
      secret,
    };
  if (!action.enabled)
    return {
      kind: 'failed',
      stage: 'action',
      reason: `action '${rule.actionRef}' is disabled`,
      criteria,
      parameters: redact(params, secret),
      secret,
    };
  const problems = validateAgainst(action.paramSchema, params);
  markSchemaSecrets(params); // defaults may have added some
  if (problems.length)
    return {
      kind: 'failed',
      stage: 'validation',
      reason: `parameters do not fit action '${action.ref}': ${problems
        .slice(0, 5)
        .map((p) => `${p.path} ${p.message}`)
        .join('; ')}`,
      criteria,
      parameters: redact(params, secret),
      secret,
    };
  return { kind: 'matched', criteria, parameters: params, secret };
}

/** Every top-level parameter rendered on its own, with the names of those derived from encrypted keys. */
function renderParams(
  templates: Record<string, unknown>,
  ctx: Record<string, unknown>,
  keys: TemplateKeys,
): { parameters: Record<string, unknown>; secret: Set<string>; error?: string } {
  const parameters: Record<string, unknown> = {};
  const secret = new Set<string>();
  let perturbed: Record<string, unknown> | undefined;
  for (const [name, template] of Object.entries(templates)) {
    let value: unknown;
    try {
      value = render(template, ctx);
    } catch (e) {
      return { parameters, secret, error: `parameter '${name}' could not be rendered: ${message(e)}` };
    }
    setOwn(parameters, name, value);
    if (keys.encrypted.size && mentionsKeys(template)) {
      perturbed ??= { ...ctx, keys: perturbKeys(keys) };
      let other: unknown;
      let differs = false;
      try {
        other = render(template, perturbed);
        differs = JSON.stringify(other) !== JSON.stringify(value);
      } catch {
        differs = true;
      }
      if (differs) secret.add(name);
    }
  }
  return { parameters, secret };
}

/** The keys with every encrypted value replaced by a different value of the same shape. */
function perturbKeys(keys: TemplateKeys): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  const salt = `\u2063${Math.random().toString(36).slice(2)}`;
  for (const [name, v] of Object.entries(keys.values))
    out[name] = keys.encrypted.has(name) ? perturb(v, salt, 0) : v;
  return out;
}

function perturb(v: unknown, salt: string, depth: number): unknown {
  if (typeof v === 'string') return v + salt;
  if (typeof v === 'number') return v === 0 ? 1 : -v;
  if (typeof v === 'boolean') return !v;
  if (v === null || v === undefined) return salt;
  if (depth > 50) return salt;
  if (Array.isArray(v)) return [...v.map((x) => perturb(x, salt, depth + 1)), salt];
  if (typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) setOwn(o, k, perturb(x, salt, depth + 1));
    return o;
  }
  return salt;
}

/** The parameters with the secret ones replaced by the marker. */
export function redact(
  params: Record<string, unknown>,
  secret: ReadonlySet<string>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) setOwn(out, k, secret.has(k) ? { $secret: true } : v);
  return out;
}

function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}
