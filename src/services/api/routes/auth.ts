/**
 * Authentication endpoints under `/auth`: login, refresh (with rotation and reuse detection),
 * logout, the caller's own identity and password.
 *
 * Sessions: an access token (JWT, 1 h) and an opaque refresh token (7 d, stored as sha256). Each
 * refresh revokes the token it used and answers a new pair. A revoked row therefore means
 * "already rotated": presenting it again means two parties hold the token, so every session of
 * the identity is ended. Logout and password changes delete rows instead, so a stale token after
 * a logout is simply unknown.
 */
import { randomBytes } from 'node:crypto';
import { and, eq, gt, isNull, lt, sql } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { conflict, tooManyRequests, unauthorized, validationError } from '../../../domain/errors.ts';
import { sha256Hex } from '../../../security/crypto.ts';
import { identities, refreshTokens } from '../../../store/schema.ts';
import {
  ACCESS_TOKEN_TTL_S,
  type AccessClaims,
  effectivePermissions,
  hashPassword,
  newRefreshToken,
  REFRESH_TOKEN_TTL_S,
  revokeRefreshTokens,
  verifyPassword,
} from '../auth.ts';
import { Data } from '../http.ts';
import { RateLimiter } from '../rate-limit.ts';
import type { ApiApp } from '../server.ts';
import { findIdentity, Identity, identityToApi, Password, rolesOf } from './identities.ts';
import { GrantSchema } from './roles.ts';

const TokenPair = Type.Object({
  access_token: Type.String({ description: 'JWT for `Authorization: Bearer …`' }),
  refresh_token: Type.String({ description: 'opaque; exchange at POST /auth/refresh (single use)' }),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds until the access token expires' }),
  refresh_expires_in: Type.Integer({ description: 'seconds until the refresh token expires' }),
});
const LoginBody = Type.Object(
  {
    login: Type.String({ minLength: 1, maxLength: 200 }),
    password: Type.String({ minLength: 1, maxLength: 1000 }),
  },
  { additionalProperties: false },
);
const RefreshBody = Type.Object(
  { refresh_token: Type.String({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);
const LogoutBody = Type.Object(
  {
    refresh_token: Type.Optional(
      Type.String({ minLength: 1, maxLength: 200, description: 'the session to end' }),
    ),
    all: Type.Optional(Type.Boolean({ description: "end every session of the caller's identity" })),
  },
  { additionalProperties: false },
);
const PasswordBody = Type.Object(
  { current_password: Type.String({ minLength: 1, maxLength: 1000 }), new_password: Password },
  { additionalProperties: false },
);
const Me = Type.Object({
  ...Identity.properties,
  grants: Type.Array(GrantSchema, { description: "the grants of the identity's roles" }),
  permissions: Type.Record(Type.String(), Type.Array(Type.String()), {
    description: 'effective permissions: resource → actions, wildcards expanded',
  }),
  via: Type.Union([Type.Literal('jwt'), Type.Literal('api_key')], {
    description: 'how this request was authenticated',
  }),
});

const tags = ['auth'];
const E = { $ref: 'ErrorBody#' };
const BAD_LOGIN = 'invalid login or password';
const BAD_REFRESH = 'refresh token is invalid, expired or revoked';

/** Hash of a random password, verified against when the login is unknown so timing tells nothing. */
let dummyHash: Promise<string> | undefined;
const getDummyHash = () => {
  dummyHash ??= hashPassword(randomBytes(24).toString('base64url'));
  return dummyHash;
};

export function registerAuthRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;
  const limiter = new RateLimiter(app.ctx.config.loginRateLimit, 60_000);

  /** Counts one password attempt from the client's address; 429 with Retry-After when over. */
  async function takeAttempt(req: FastifyRequest, actor: string | undefined): Promise<void> {
    const d = limiter.hit(req.ip);
    if (d.allowed) return;
    if (d.firstRefusal)
      await app.ctx.audit({
        action: 'auth.login_failed',
        outcome: 'denied',
        actor: actor ?? null,
        ip: req.ip,
        requestId: req.id,
        details: { reason: 'rate_limited', limit_per_minute: limiter.limit },
      });
    throw tooManyRequests(`too many login attempts; try again in ${d.retryAfterS} s`, d.retryAfterS);
  }

  /** Issues an access token and a stored refresh token for an identity. */
  async function issueTokens(identityId: number, login: string) {
    const claims: AccessClaims = { sub: String(identityId), login, typ: 'access' };
    const access = app.jwt.sign(claims, { expiresIn: ACCESS_TOKEN_TTL_S });
    const rt = newRefreshToken();
    await db()
      .insert(refreshTokens)
      .values({ identityId, hash: rt.hash, expiresAt: new Date(Date.now() + REFRESH_TOKEN_TTL_S * 1000) });
    return {
      access_token: access,
      refresh_token: rt.token,
      token_type: 'Bearer' as const,
      expires_in: ACCESS_TOKEN_TTL_S,
      refresh_expires_in: REFRESH_TOKEN_TTL_S,
    };
  }

  app.post(
    '/auth/login',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Log in with login and password',
        description:
          'Answers an access token (1 h) and a refresh token (7 d). Every failure answers the same 401, ' +
          'whether the login exists or not. Attempts are limited per client address ' +
          '(`ATTUNE_LOGIN_RATE_LIMIT` a minute, then 429 with `Retry-After`); failures are audited.',
        security: [],
        body: LoginBody,
        response: { 200: Data(TokenPair), 400: E, 401: E, 429: E },
      },
    },
    async (req) => {
      const { login, password } = req.body;
      await takeAttempt(req, login);
      const [ident] = await db().select().from(identities).where(eq(identities.login, login));
      // Always run one argon2 verification, against a dummy hash when there is nothing to verify.
      const verified = await verifyPassword(ident?.passwordHash ?? (await getDummyHash()), password);
      const reason = !ident
        ? 'unknown_login'
        : !ident.passwordHash
          ? 'no_password'
          : !verified
            ? 'bad_password'
            : ident.disabled
              ? 'disabled'
              : undefined;
      if (!ident || reason) {
        await app.ctx.audit({
          action: 'auth.login_failed',
          outcome: 'failure',
          actor: login,
          ip: req.ip,
          requestId: req.id,
          details: { reason },
        });
        throw unauthorized(BAD_LOGIN);
      }
      await db().update(identities).set({ lastLoginAt: new Date() }).where(eq(identities.id, ident.id));
      // Housekeeping: this identity's refresh tokens past their expiry are of no use to anyone.
      await db()
        .delete(refreshTokens)
        .where(and(eq(refreshTokens.identityId, ident.id), lt(refreshTokens.expiresAt, sql`now()`)));
      await app.ctx.audit({ action: 'auth.login', actor: ident.login, ip: req.ip, requestId: req.id });
      return { data: await issueTokens(ident.id, ident.login) };
    },
  );

  app.post(
    '/auth/refresh',
    {
      config: { public: true },
      schema: {
        tags,
        summary: 'Exchange a refresh token for a new token pair',
        description:
          'The refresh token is single use: it is revoked and a new pair is answered. Presenting an ' +
          'already used token again answers 401 and ends every session of its identity (the token ' +
          'was copied). Disabled identities get 401.',
        security: [],
        body: RefreshBody,
        response: { 200: Data(TokenPair), 400: E, 401: E },
      },
    },
    async (req) => {
      const hash = sha256Hex(req.body.refresh_token);
      const [used] = await db()
        .update(refreshTokens)
        .set({ revokedAt: new Date() })
        .where(
          and(
            eq(refreshTokens.hash, hash),
            isNull(refreshTokens.revokedAt),
            gt(refreshTokens.expiresAt, sql`now()`),
          ),
        )
        .returning({ identityId: refreshTokens.identityId });
      if (!used) {
        const [old] = await db()
          .select({ identityId: refreshTokens.identityId, revokedAt: refreshTokens.revokedAt })
          .from(refreshTokens)
          .where(eq(refreshTokens.hash, hash));
        if (old?.revokedAt) {
          const ended = await revokeRefreshTokens(db(), old.identityId);
          const [who] = await db()
            .select({ login: identities.login })
            .from(identities)
            .where(eq(identities.id, old.identityId));
          await app.ctx.audit({
            action: 'auth.refresh_reused',
            outcome: 'denied',
            actor: who?.login ?? null,
            ip: req.ip,
            requestId: req.id,
            details: { sessions_ended: ended },
          });
        }
        throw unauthorized(BAD_REFRESH);
      }
      const [ident] = await db()
        .select({ id: identities.id, login: identities.login, disabled: identities.disabled })
        .from(identities)
        .where(eq(identities.id, used.identityId));
      if (!ident || ident.disabled) throw unauthorized(BAD_REFRESH);
      return { data: await issueTokens(ident.id, ident.login) };
    },
  );

  app.post(
    '/auth/logout',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: 'End a session, or every session of the caller',
        description:
          "Deletes the given refresh token (if it is one of the caller's), or with `all: true` every " +
          "refresh token of the caller's identity. Access tokens already issued stay valid until they " +
          'expire (at most 1 h). Answers 204 either way.',
        body: LogoutBody,
        response: { 204: Type.Null(), 400: E, 401: E },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const me = req.principal!;
      if (b.refresh_token === undefined && !b.all)
        throw validationError('give the refresh_token to revoke, or all: true', {
          fields: ['refresh_token', 'all'],
        });
      let ended = 0;
      if (b.all) ended = await revokeRefreshTokens(db(), me.identityId);
      else {
        const rows = await db()
          .delete(refreshTokens)
          .where(
            and(
              eq(refreshTokens.hash, sha256Hex(b.refresh_token!)),
              eq(refreshTokens.identityId, me.identityId),
            ),
          )
          .returning({ id: refreshTokens.id });
        ended = rows.length;
      }
      await app.ctx.audit({
        action: 'auth.logout',
        actor: me.login,
        ip: req.ip,
        requestId: req.id,
        details: { all: !!b.all, sessions_ended: ended },
      });
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/auth/me',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: 'The calling identity, its roles and effective permissions',
        response: { 200: Data(Me), 401: E },
      },
    },
    async (req) => {
      const me = req.principal!;
      const row = await findIdentity(db(), String(me.identityId));
      const roles = (await rolesOf(db(), [row.id])).get(row.id) ?? [];
      return {
        data: {
          ...identityToApi(row, roles),
          grants: me.grants,
          permissions: effectivePermissions(me.grants),
          via: me.via,
        },
      };
    },
  );

  app.put(
    '/auth/me/password',
    {
      config: { selfService: true },
      schema: {
        tags,
        summary: "Change the caller's password",
        description:
          'Needs the current password (wrong: 400; attempts count against the login rate limit). ' +
          'Ends every other session and answers a fresh token pair. Service accounts have no ' +
          'password (409).',
        body: PasswordBody,
        response: { 200: Data(TokenPair), 400: E, 401: E, 409: E, 429: E },
      },
    },
    async (req) => {
      const me = req.principal!;
      const b = req.body;
      const row = await findIdentity(db(), String(me.identityId));
      if (row.kind === 'service' || !row.passwordHash)
        throw conflict('a service account has no password; it authenticates with API keys', {
          kind: row.kind,
        });
      await takeAttempt(req, me.login);
      if (!(await verifyPassword(row.passwordHash, b.current_password))) {
        await app.ctx.audit({
          action: 'auth.password_change_failed',
          outcome: 'failure',
          actor: me.login,
          ip: req.ip,
          requestId: req.id,
          details: { reason: 'bad_current_password' },
        });
        throw validationError('current_password is incorrect', {
          field: 'current_password',
        });
      }
      if (b.new_password === b.current_password)
        throw validationError('new_password must differ from the current password', {
          field: 'new_password',
        });
      const passwordHash = await hashPassword(b.new_password);
      await app.ctx.store.transaction(async (tx) => {
        await tx
          .update(identities)
          .set({ passwordHash, updatedAt: sql`now()` })
          .where(eq(identities.id, row.id));
        await revokeRefreshTokens(tx, row.id);
      });
      await app.ctx.audit({
        action: 'auth.password_changed',
        actor: me.login,
        ip: req.ip,
        requestId: req.id,
      });
      return { data: await issueTokens(row.id, row.login) };
    },
  );
}
