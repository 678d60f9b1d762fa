/** Authentication endpoints under `/auth`. */
import { eq } from 'drizzle-orm';
import { Type } from 'typebox';
import { unauthorized } from '../../../domain/errors.ts';
import { identities, refreshTokens } from '../../../store/schema.ts';
import {
  ACCESS_TOKEN_TTL_S,
  type AccessClaims,
  newRefreshToken,
  REFRESH_TOKEN_TTL_S,
  verifyPassword,
} from '../auth.ts';
import { Data } from '../http.ts';
import type { ApiApp } from '../server.ts';

const TokenPair = Type.Object({
  access_token: Type.String(),
  refresh_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ description: 'seconds until the access token expires' }),
});
const LoginBody = Type.Object(
  {
    login: Type.String({ minLength: 1, maxLength: 200 }),
    password: Type.String({ minLength: 1, maxLength: 1000 }),
  },
  { additionalProperties: false },
);

export function registerAuthRoutes(app: ApiApp): void {
  const db = () => app.ctx.store.db;

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
    };
  }

  app.post(
    '/auth/login',
    {
      config: { public: true },
      schema: {
        tags: ['auth'],
        summary: 'Log in with login and password',
        security: [],
        body: LoginBody,
        response: { 200: Data(TokenPair), 400: { $ref: 'ErrorBody#' }, 401: { $ref: 'ErrorBody#' } },
      },
    },
    async (req) => {
      const [ident] = await db().select().from(identities).where(eq(identities.login, req.body.login));
      const ok =
        !!ident?.passwordHash &&
        !ident.disabled &&
        (await verifyPassword(ident.passwordHash, req.body.password));
      if (!ident || !ok) {
        void app.ctx.audit({
          action: 'auth.login_failed',
          outcome: 'failure',
          actor: req.body.login,
          ip: req.ip,
          requestId: req.id,
        });
        throw unauthorized('invalid login or password');
      }
      await db().update(identities).set({ lastLoginAt: new Date() }).where(eq(identities.id, ident.id));
      return { data: await issueTokens(ident.id, ident.login) };
    },
  );
}
