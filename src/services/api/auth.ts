/**
 * Authentication and authorisation of every request.
 *
 * A route is public only when its config says `public: true`; every other route needs a principal,
 * from a Bearer access token (JWT), a Bearer API key or an `X-API-Key` header. A route that names a
 * `permission: [resource, action]` is refused with 403 unless a grant of the principal allows it.
 */
import { randomBytes } from 'node:crypto';
import '@fastify/jwt';
import { hash as argonHash, verify as argonVerify } from '@node-rs/argon2';
import { and, eq, inArray } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { forbidden, unauthorized } from '../../domain/errors.ts';
import {
  ACTIONS,
  type Action,
  checkPermission,
  type Grant,
  RESOURCES,
  type Resource,
} from '../../domain/permissions.ts';
import { sha256Hex } from '../../security/crypto.ts';
import type { Db, Tx } from '../../store/database.ts';
import { apiKeys, identities, identityRoles, refreshTokens, roles } from '../../store/schema.ts';
import type { ApiContext, Principal } from './context.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** No authentication at all (health, login, docs, webhook receivers). */
    public?: boolean;
    /** The grant the caller needs. Unset on a non-public route = any authenticated caller. */
    permission?: [Resource, Action];
    /**
     * Declares a route without `permission` on purpose: any authenticated caller may use it, and
     * the handler limits it to the caller's own things (their session, password, API keys).
     */
    selfService?: boolean;
    /**
     * A server-sent-events route: besides the headers, the credentials may come as the query
     * parameter `access_token` (EventSource cannot send headers). Only such routes read it.
     */
    stream?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export const ACCESS_TOKEN_TTL_S = 3600;
export const REFRESH_TOKEN_TTL_S = 7 * 24 * 3600;
export const API_KEY_PREFIX = 'atk_';

/** argon2id with the OWASP-recommended minimum cost. */
export const hashPassword = (pw: string): Promise<string> =>
  argonHash(pw, { memoryCost: 19456, timeCost: 2, parallelism: 1, algorithm: 2 });
export const verifyPassword = async (stored: string, pw: string): Promise<boolean> => {
  try {
    return await argonVerify(stored, pw);
  } catch {
    return false;
  }
};

/** A new API key: `atk_<8 chars>_<43 chars>`; the caller stores only its hash and prefix. */
export function newApiKey(): { key: string; prefix: string; hash: string } {
  const prefix = randomBytes(6).toString('base64url').slice(0, 8);
  const key = `${API_KEY_PREFIX}${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix: `${API_KEY_PREFIX}${prefix}`, hash: sha256Hex(key) };
}

/** An opaque refresh token; only its sha256 is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = `rt_${randomBytes(32).toString('base64url')}`;
  return { token, hash: sha256Hex(token) };
}

interface CachedPrincipal {
  at: number;
  principal: Omit<Principal, 'via'> | null;
}

/**
 * Loads identities with their roles' grants. Cached for a moment per identity so a busy client does
 * not cost a query per request; `invalidate()` is called when identities or roles change.
 */
export class PrincipalLoader {
  readonly #cache = new Map<number, CachedPrincipal>();
  constructor(
    private readonly db: Db,
    private readonly ttlMs = 2000,
  ) {}

  invalidate(): void {
    this.#cache.clear();
  }

  async load(identityId: number): Promise<Omit<Principal, 'via'> | null> {
    const hit = this.#cache.get(identityId);
    const now = Date.now();
    if (hit && now - hit.at < this.ttlMs) return hit.principal;
    const [ident] = await this.db
      .select({
        id: identities.id,
        login: identities.login,
        kind: identities.kind,
        disabled: identities.disabled,
      })
      .from(identities)
      .where(eq(identities.id, identityId));
    let principal: Omit<Principal, 'via'> | null = null;
    if (ident && !ident.disabled) {
      const rs = await this.db
        .select({ name: roles.name, grants: roles.grants })
        .from(identityRoles)
        .innerJoin(roles, eq(roles.id, identityRoles.roleId))
        .where(eq(identityRoles.identityId, identityId));
      principal = {
        identityId: ident.id,
        login: ident.login,
        kind: ident.kind === 'service' ? 'service' : 'user',
        roles: rs.map((r) => r.name).sort(),
        grants: rs.flatMap((r) => r.grants as Grant[]),
      };
    }
    this.#cache.set(identityId, { at: now, principal });
    if (this.#cache.size > 10_000) this.#cache.clear();
    return principal;
  }

  /** Identity ids holding any of the named roles (for invalidation after role edits). */
  async identitiesWithRoles(names: string[]): Promise<number[]> {
    if (!names.length) return [];
    const rows = await this.db
      .select({ id: identityRoles.identityId })
      .from(identityRoles)
      .innerJoin(roles, eq(roles.id, identityRoles.roleId))
      .where(inArray(roles.name, names));
    return rows.map((r) => r.id);
  }
}

export interface AccessClaims {
  sub: string;
  login: string;
  typ: 'access';
}

async function principalFromApiKey(
  ctx: ApiContext,
  loader: PrincipalLoader,
  key: string,
): Promise<Principal | null> {
  const [row] = await ctx.store.db
    .select({
      id: apiKeys.id,
      identityId: apiKeys.identityId,
      expiresAt: apiKeys.expiresAt,
      revokedAt: apiKeys.revokedAt,
      lastUsedAt: apiKeys.lastUsedAt,
    })
    .from(apiKeys)
    .where(eq(apiKeys.hash, sha256Hex(key)));
  if (!row || row.revokedAt || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return null;
  const p = await loader.load(row.identityId);
  if (!p) return null;
  // Record use at most once a minute per key: no write per request on a hot path.
  if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > 60_000) {
    await ctx.store.db
      .update(apiKeys)
      .set({ lastUsedAt: new Date() })
      .where(and(eq(apiKeys.id, row.id)))
      .catch(() => {});
  }
  return { ...p, via: 'api_key' };
}

export function installAuth(app: FastifyInstance, ctx: ApiContext, loader: PrincipalLoader): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req: FastifyRequest) => {
    const cfg = req.routeOptions.config;
    if (cfg?.public || !req.routeOptions.url) return; // public route, or the not-found handler
    req.principal = await authenticate(app, ctx, loader, req);
    if (!req.principal) throw unauthorized();
    const perm = cfg?.permission;
    if (perm && !checkPermission(req.principal.grants, perm[0], perm[1])) {
      await ctx.audit({
        action: 'rbac.denied',
        outcome: 'denied',
        actor: req.principal.login,
        resourceType: perm[0],
        requestId: req.id,
        ip: req.ip,
        details: { permission: `${perm[0]}:${perm[1]}`, method: req.method, url: redactAccessToken(req.url) },
      });
      throw forbidden(`'${req.principal.login}' lacks the '${perm[1]}' permission on ${perm[0]}`);
    }
  });
}

async function authenticate(
  app: FastifyInstance,
  ctx: ApiContext,
  loader: PrincipalLoader,
  req: FastifyRequest,
): Promise<Principal | null> {
  const header = req.headers.authorization;
  const apiKeyHeader = req.headers['x-api-key'];
  if (typeof apiKeyHeader === 'string' && apiKeyHeader) return principalFromApiKey(ctx, loader, apiKeyHeader);
  let token: string;
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) throw unauthorized('Authorization header must be "Bearer <token>"');
    token = m[1]!;
  } else {
    const fromQuery = req.routeOptions.config?.stream ? queryToken(req) : undefined;
    if (fromQuery === undefined) return null;
    token = fromQuery;
  }
  if (token.startsWith(API_KEY_PREFIX)) return principalFromApiKey(ctx, loader, token);
  let claims: AccessClaims;
  try {
    claims = app.jwt.verify<AccessClaims>(token);
  } catch {
    throw unauthorized('invalid or expired access token');
  }
  if (claims.typ !== 'access') throw unauthorized('not an access token');
  const id = Number(claims.sub);
  if (!Number.isSafeInteger(id)) throw unauthorized('invalid access token');
  const p = await loader.load(id);
  return p ? { ...p, via: 'jwt' } : null;
}

/** The `access_token` query parameter of a stream route (one non-empty value), or undefined. */
function queryToken(req: FastifyRequest): string | undefined {
  const v = (req.query as Record<string, unknown> | undefined)?.access_token;
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A URL with the value of its `access_token` query parameter hidden (for logs and the audit trail). */
export const redactAccessToken = (url: string): string =>
  url.replace(/([?&]access_token=)[^&#]*/gi, '$1[redacted]');

/** Throws 403 unless the request's principal holds the permission (for checks inside a handler). */
export function requirePermission(req: FastifyRequest, resource: Resource, action: Action): Principal {
  const p = req.principal;
  if (!p) throw unauthorized();
  if (!checkPermission(p.grants, resource, action))
    throw forbidden(`'${p.login}' lacks the '${action}' permission on ${resource}`);
  return p;
}

export const hasPermission = (req: FastifyRequest, resource: Resource, action: Action): boolean =>
  !!req.principal && checkPermission(req.principal.grants, resource, action);

/** Every `resource:action` pair the grants allow, as `{resource: [actions]}` (wildcards expanded). */
export function effectivePermissions(grants: readonly Grant[]): Partial<Record<Resource, Action[]>> {
  const out: Partial<Record<Resource, Action[]>> = {};
  for (const r of RESOURCES) {
    const acts = ACTIONS.filter((a) => checkPermission(grants, r, a));
    if (acts.length) out[r] = acts;
  }
  return out;
}

/**
 * The `resource:action` pairs that `wanted` allows and `held` does not. Used so that nobody can
 * hand out (through a role, a role assignment or an API key) more than they hold themselves.
 */
export function grantsNotCovered(held: readonly Grant[], wanted: readonly Grant[]): string[] {
  const missing: string[] = [];
  for (const [r, acts] of Object.entries(effectivePermissions(wanted)) as [Resource, Action[]][]) {
    for (const a of acts) if (!checkPermission(held, r, a)) missing.push(`${r}:${a}`);
  }
  return missing;
}

/**
 * Ends every session of an identity (logout everywhere, password change, disable) by deleting its
 * refresh tokens. Deleted, not marked: a revoked row means "rotated", and presenting a rotated
 * token again is treated as theft (see POST /auth/refresh).
 */
export async function revokeRefreshTokens(db: Db | Tx, identityId: number): Promise<number> {
  const rows = await db
    .delete(refreshTokens)
    .where(eq(refreshTokens.identityId, identityId))
    .returning({ id: refreshTokens.id });
  return rows.length;
}
