/**
 * What every route can reach: configuration, the store, the cipher for secrets, the audit trail
 * and the health registry. Built once by the platform and decorated onto the Fastify instance.
 */
import type { FastifyBaseLogger } from 'fastify';
import type { Bus } from '../../bus/bus.ts';
import type { Config } from '../../config.ts';
import type { Grant } from '../../domain/permissions.ts';
import type { Cipher } from '../../security/crypto.ts';
import type { Store } from '../../store/database.ts';
import { auditLog } from '../../store/schema.ts';
import type { RecentEvents } from '../events/recent-events.ts';
import type { PrincipalLoader } from './auth.ts';

export interface Principal {
  identityId: number;
  login: string;
  kind: 'user' | 'service';
  roles: string[];
  grants: Grant[];
  via: 'jwt' | 'api_key';
}

export interface AuditEntry {
  action: string;
  outcome?: 'success' | 'failure' | 'denied';
  actor?: string | null | undefined;
  resourceType?: string;
  resourceRef?: string;
  requestId?: string;
  ip?: string;
  details?: Record<string, unknown>;
}

export type PartState = 'starting' | 'ok' | 'degraded' | 'down';

/** Parts of the platform report their state here; `/health` shows them. */
export class Health {
  readonly parts = new Map<string, { state: PartState; detail?: string }>();
  ready = false;
  set(part: string, state: PartState, detail?: string): void {
    this.parts.set(part, detail === undefined ? { state } : { state, detail });
  }
  snapshot(): Record<string, { state: PartState; detail?: string }> {
    return Object.fromEntries(this.parts);
  }
}

export interface ApiContext {
  config: Config;
  store: Store;
  cipher: Cipher;
  jwtSecret: string;
  health: Health;
  log: FastifyBaseLogger;
  startedAt: Date;
  /** Platform-wide directory of the packs shipped with the product (core, examples). */
  builtinPacksDir: string;
  /** Where installed packs' files live (`<dataDir>/packs`). */
  packsDir: string;
  audit(entry: AuditEntry): Promise<void>;
  /** Identity → roles → grants, cached briefly; invalidate after changing identities or roles. */
  principals: PrincipalLoader;
  /** The bus of this process, when the platform runs one (broadcasts such as definition changes). */
  bus?: Bus;
  /** The outbox relay: kicked after a commit that wrote outbox messages (a poll covers it otherwise). */
  outbox?: { kick(): void };
  /** Events stored here, for the rules engine of this process (when it runs one) not to read back. */
  recentEvents?: RecentEvents;
}

export function makeAudit(store: Store, log: FastifyBaseLogger): ApiContext['audit'] {
  return async (e) => {
    try {
      await store.db.insert(auditLog).values({
        action: e.action,
        outcome: e.outcome ?? 'success',
        actor: e.actor ?? null,
        resourceType: e.resourceType ?? null,
        resourceRef: e.resourceRef ?? null,
        requestId: e.requestId ?? null,
        ip: e.ip ?? null,
        details: e.details ?? {},
      });
    } catch (err) {
      log.error({ err, audit: e.action }, 'could not write audit entry');
    }
  };
}
