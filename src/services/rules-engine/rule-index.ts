/**
 * The enabled rules of each trigger, loaded lazily (one indexed query per trigger, on first use) and
 * cached, so that matching an event never reads every rule.
 *
 * Freshness: every process subscribes to `notify.definitions.changed` (published after a rule is
 * written) and drops the entries it names; a time-to-live (5 s by default) bounds the staleness
 * when a broadcast was lost (broadcasts are at most once) or a rule was changed behind the API's
 * back. A load that raced with an invalidation is not cached, so a reload never resurrects an old
 * answer.
 */
import { and, asc, eq } from 'drizzle-orm';
import type { Bus, JsonValue, Subscription } from '../../bus/bus.ts';
import type { Db } from '../../store/database.ts';
import { rules } from '../../store/schema.ts';
import { TOPICS } from '../runtime/messages.ts';

/** What a rule needs at match time. */
export interface IndexedRule {
  id: number;
  ref: string;
  packRef: string;
  triggerRef: string;
  /** Parameters of the trigger instance; the rule sees only events fired with equal parameters. */
  triggerParams: Record<string, unknown>;
  criteria: Record<string, unknown>;
  actionRef: string;
  actionParams: Record<string, unknown>;
}

/**
 * The payload of `notify.definitions.changed`. `trigger_refs` names the triggers whose rules changed
 * (a rule moved between triggers names both); absent = anything may have changed.
 */
export interface DefinitionsChanged {
  resource: 'rules' | 'triggers' | 'actions' | 'packs';
  refs?: string[];
  trigger_refs?: string[];
}

export interface RuleIndexOptions {
  /** How long a loaded entry is trusted without a change notification. Default 5000 ms. */
  ttlMs?: number;
  /** Milliseconds clock, for tests. */
  now?: () => number;
}

interface Entry {
  rules: readonly IndexedRule[];
  loadedAt: number;
}

export class RuleIndex {
  readonly #db: Db;
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  readonly #loading = new Map<string, Promise<readonly IndexedRule[]>>();
  /** Bumped by every invalidation: a load started before a bump is not cached. */
  #generation = 0;
  #subscription: Subscription | undefined;
  /** Queries run so far (tests check that matching does not reload per event). */
  loads = 0;

  constructor(db: Db, opts: RuleIndexOptions = {}) {
    this.#db = db;
    this.#ttlMs = opts.ttlMs ?? 5000;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * The enabled rules of `triggerRef`, by ref. `db`: where to load them from on a miss — pass the
   * open transaction when calling inside one (PGlite has a single connection: a query outside the
   * transaction would wait for it to end).
   */
  async rulesFor(triggerRef: string, db: Db = this.#db): Promise<readonly IndexedRule[]> {
    const hit = this.#entries.get(triggerRef);
    if (hit && this.#now() - hit.loadedAt < this.#ttlMs) return hit.rules;
    // Inside a transaction, never wait for a load running outside it: on PGlite that load waits
    // for the transaction to end.
    const pending = this.#loading.get(triggerRef);
    if (pending && db === this.#db) return pending;
    const generation = this.#generation;
    const load = this.#load(triggerRef, db)
      .then((loaded) => {
        if (generation === this.#generation)
          this.#entries.set(triggerRef, { rules: loaded, loadedAt: this.#now() });
        return loaded;
      })
      .finally(() => {
        if (this.#loading.get(triggerRef) === load) this.#loading.delete(triggerRef);
      });
    this.#loading.set(triggerRef, load);
    return load;
  }

  /** Whether at least one enabled rule uses `triggerRef` (`db` as for `rulesFor`). */
  async hasRules(triggerRef: string, db?: Db): Promise<boolean> {
    return (await this.rulesFor(triggerRef, db)).length > 0;
  }

  /** Forgets the entries of these triggers, or every entry. */
  invalidate(triggerRefs?: readonly string[]): void {
    this.#generation++;
    if (!triggerRefs) {
      this.#entries.clear();
      this.#loading.clear();
      return;
    }
    for (const t of triggerRefs) {
      this.#entries.delete(t);
      this.#loading.delete(t);
    }
  }

  /** Applies a `notify.definitions.changed` payload. */
  applyChange(payload: JsonValue): void {
    const p = payload as Partial<Record<keyof DefinitionsChanged, unknown>> | null;
    const refs = p && typeof p === 'object' ? p.trigger_refs : undefined;
    if (Array.isArray(refs) && refs.every((r) => typeof r === 'string')) this.invalidate(refs);
    else this.invalidate();
  }

  /** Follows change notifications on `bus` until `detach`. */
  async attach(bus: Bus): Promise<void> {
    if (this.#subscription) return;
    this.#subscription = await bus.subscribe([TOPICS.definitionsChanged], async (msg) => {
      this.applyChange(msg.payload);
    });
    // Whatever changed before the subscription existed is not in any notification.
    this.invalidate();
  }

  async detach(): Promise<void> {
    const s = this.#subscription;
    this.#subscription = undefined;
    await s?.close();
  }

  async #load(triggerRef: string, db: Db): Promise<readonly IndexedRule[]> {
    this.loads++;
    const rows = await db
      .select({
        id: rules.id,
        ref: rules.ref,
        packRef: rules.packRef,
        triggerRef: rules.triggerRef,
        triggerParams: rules.triggerParams,
        criteria: rules.criteria,
        actionRef: rules.actionRef,
        actionParams: rules.actionParams,
      })
      .from(rules)
      .where(and(eq(rules.triggerRef, triggerRef), eq(rules.enabled, true)))
      .orderBy(asc(rules.ref));
    return Object.freeze(rows.map((r) => Object.freeze(r)));
  }
}

/**
 * A canonical text of trigger parameters (keys sorted at every level), so that two parameter
 * documents are equal exactly when their texts are. `{}`, null and undefined are all "no parameters".
 */
export function paramsKey(params: unknown): string {
  if (params === null || params === undefined) return '{}';
  return JSON.stringify(sortKeys(params, 0)) ?? '{}';
}

function sortKeys(v: unknown, depth: number): unknown {
  if (typeof v !== 'object' || v === null || depth > 64) return v;
  if (Array.isArray(v)) return v.map((x) => sortKeys(x, depth + 1));
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(v).sort())
    Object.defineProperty(out, k, {
      value: sortKeys((v as Record<string, unknown>)[k], depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return out;
}
