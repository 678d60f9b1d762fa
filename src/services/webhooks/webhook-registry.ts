/**
 * Which webhooks exist, how they are configured, and the log of their calls.
 *
 * A webhook `name` exists when
 * - it is defined in the `webhooks` table (explicit: its own trigger, HMAC secret, size and rate
 *   limits; `enabled: false` switches it off, whatever rules use it), or
 * - an enabled rule uses `core.webhook` with `{name}` as trigger parameters (implicit: no signature
 *   required, the default size limit, no rate limit). Defining it explicitly later takes over.
 *
 * Every call is logged in `webhook_calls`; the log is bounded: the newest `MAX_CALLS_KEPT` calls per
 * name are kept, for at most `CALL_RETENTION_DAYS` days.
 */
import { and, asc, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Db, Store } from '../../store/database.ts';
import { rules, webhookCalls, webhooks } from '../../store/schema.ts';
import { type RateDecision, RateLimiter } from '../api/rate-limit.ts';
import type { HmacAlgorithm } from './signature.ts';

export const WEBHOOK_TRIGGER = 'core.webhook';
/** The names `core.webhook` accepts, hence the names of webhooks. */
export const WEBHOOK_NAME_PATTERN = '^[a-z0-9][a-z0-9_-]{0,99}$';
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Largest body limit a webhook may have (bodies are held in memory while they are checked). */
export const MAX_PAYLOAD_LIMIT = 16 * 1024 * 1024;
export const MAX_CALLS_KEPT = 10_000;
export const CALL_RETENTION_DAYS = 30;

export type WebhookRow = typeof webhooks.$inferSelect;

export interface WebhookConfig {
  name: string;
  triggerRef: string;
  description: string;
  enabled: boolean;
  implicit: boolean;
  /** The HMAC settings; `secret` is the encrypted secret. */
  hmac: { secret: string; algorithm: HmacAlgorithm; header: string } | null;
  maxPayloadBytes: number;
  rateLimitPerMinute: number | null;
  createdAt: Date | null;
  updatedAt: Date | null;
}

export function configOf(r: WebhookRow): WebhookConfig {
  return {
    name: r.name,
    triggerRef: r.triggerRef,
    description: r.description,
    enabled: r.enabled,
    implicit: false,
    hmac: r.hmacSecret
      ? { secret: r.hmacSecret, algorithm: r.hmacAlgorithm as HmacAlgorithm, header: r.hmacHeader }
      : null,
    maxPayloadBytes: r.maxPayloadBytes,
    rateLimitPerMinute: r.rateLimitPerMinute,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

export function implicitConfig(name: string): WebhookConfig {
  return {
    name,
    triggerRef: WEBHOOK_TRIGGER,
    description: '',
    enabled: true,
    implicit: true,
    hmac: null,
    maxPayloadBytes: DEFAULT_MAX_PAYLOAD_BYTES,
    rateLimitPerMinute: null,
    createdAt: null,
    updatedAt: null,
  };
}

const usesName = (name: string) =>
  and(
    eq(rules.enabled, true),
    eq(rules.triggerRef, WEBHOOK_TRIGGER),
    sql`${rules.triggerParams} ->> 'name' = ${name}`,
  );

/** The webhook called `name` (explicit, or implicit through a rule), enabled or not. */
export async function findWebhook(db: Db, name: string): Promise<WebhookConfig | undefined> {
  const [row] = await db.select().from(webhooks).where(eq(webhooks.name, name));
  if (row) return configOf(row);
  const [rule] = await db.select({ id: rules.id }).from(rules).where(usesName(name)).limit(1);
  return rule ? implicitConfig(name) : undefined;
}

/** Every webhook, explicit and implicit, by name. */
export async function listWebhooks(db: Db): Promise<WebhookConfig[]> {
  const explicit = (await db.select().from(webhooks).orderBy(asc(webhooks.name))).map(configOf);
  const known = new Set(explicit.map((w) => w.name));
  const used = await db
    .selectDistinct({ name: sql<string>`${rules.triggerParams} ->> 'name'` })
    .from(rules)
    .where(
      and(
        eq(rules.enabled, true),
        eq(rules.triggerRef, WEBHOOK_TRIGGER),
        sql`jsonb_typeof(${rules.triggerParams} -> 'name') = 'string'`,
      ),
    );
  const implicit = used
    .map((u) => u.name)
    .filter((n) => !known.has(n))
    .map(implicitConfig);
  return [...explicit, ...implicit].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The enabled rules that select each of these webhooks by name (on the webhook's trigger). */
export async function rulesUsing(db: Db, hooks: readonly WebhookConfig[]): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>(hooks.map((h) => [h.name, []]));
  if (!hooks.length) return out;
  const rows = await db
    .select({
      ref: rules.ref,
      triggerRef: rules.triggerRef,
      name: sql<string | null>`${rules.triggerParams} ->> 'name'`,
    })
    .from(rules)
    .where(
      and(
        eq(rules.enabled, true),
        inArray(rules.triggerRef, [...new Set(hooks.map((h) => h.triggerRef))]),
        sql`${rules.triggerParams} ->> 'name' = ANY(${sql.param(hooks.map((h) => h.name))}::text[])`,
      ),
    )
    .orderBy(asc(rules.ref));
  const trigger = new Map(hooks.map((h) => [h.name, h.triggerRef]));
  for (const r of rows)
    if (r.name !== null && trigger.get(r.name) === r.triggerRef) out.get(r.name)!.push(r.ref);
  return out;
}

export interface CallRecord {
  name: string;
  remoteIp: string | null;
  statusCode: number;
  signatureValid: boolean | null;
  eventId: number | null;
  durationMs: number;
  bodyBytes: number | null;
  error: string | null;
}

/** Writes call records and keeps the log bounded. */
export class WebhookCallLog {
  private writes = 0;
  private readonly touched = new Set<string>();

  constructor(
    private readonly store: Store,
    private readonly trimEvery = 200,
    private readonly keep = MAX_CALLS_KEPT,
  ) {}

  /** Records a call (in `db`, e.g. the transaction that created its event). */
  async record(c: CallRecord, db: Db = this.store.db): Promise<void> {
    await db.insert(webhookCalls).values({
      webhookName: c.name.slice(0, 300),
      remoteIp: c.remoteIp,
      statusCode: c.statusCode,
      signatureValid: c.signatureValid,
      eventId: c.eventId,
      durationMs: Math.max(0, Math.round(c.durationMs)),
      bodyBytes: c.bodyBytes,
      error: c.error === null ? null : c.error.slice(0, 2000),
    });
    this.touched.add(c.name);
    if (++this.writes % this.trimEvery === 0) void this.trim().catch(() => {});
  }

  /** Drops calls beyond the newest `keep` of each recently called webhook, and calls past the retention. */
  async trim(): Promise<number> {
    const db = this.store.db;
    const names = [...this.touched];
    this.touched.clear();
    let n = 0;
    for (const name of names) {
      const [cut] = await db
        .select({ id: webhookCalls.id })
        .from(webhookCalls)
        .where(eq(webhookCalls.webhookName, name))
        .orderBy(desc(webhookCalls.id))
        .offset(this.keep)
        .limit(1);
      if (!cut) continue;
      const gone = await db
        .delete(webhookCalls)
        .where(and(eq(webhookCalls.webhookName, name), sql`${webhookCalls.id} <= ${cut.id}`))
        .returning({ id: webhookCalls.id });
      n += gone.length;
    }
    const old = await db
      .delete(webhookCalls)
      .where(lt(webhookCalls.receivedAt, sql`now() - make_interval(days => ${CALL_RETENTION_DAYS})`))
      .returning({ id: webhookCalls.id });
    return n + old.length;
  }
}

/**
 * Rate limits per webhook (requests per minute, a token bucket). Counted per API process: with
 * several API replicas behind a balancer, each one allows the limit.
 */
export class WebhookRateLimits {
  private readonly limiters = new Map<string, RateLimiter>();

  constructor(private readonly now: () => number = Date.now) {}

  hit(name: string, perMinute: number): RateDecision {
    let l = this.limiters.get(name);
    if (!l || l.limit !== perMinute) {
      l = new RateLimiter(perMinute, 60_000, this.now);
      this.limiters.set(name, l);
    }
    return l.hit(name);
  }

  /** Forgets a webhook's bucket (its limit was changed or removed). */
  forget(name: string): void {
    this.limiters.delete(name);
  }
}
