/**
 * Builds the HTTP API: Fastify with schema-first routes, the uniform error body, authentication
 * on every non-public route, OpenAPI at /api-spec/openapi.json and Swagger UI at /docs (offline).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import fastifyJwt from '@fastify/jwt';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify';
import { ACCESS_TOKEN_TTL_S, installAuth } from './auth.ts';
import type { ApiContext } from './context.ts';
import { installErrorHandling, sendError } from './errors.ts';
import { ErrorBody } from './http.ts';
import { registerRoutes } from './routes/index.ts';
import { registerUi } from './ui.ts';
import { validatorCompiler } from './validation.ts';

export type ApiApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface RouteInfo {
  method: string;
  url: string;
  public: boolean;
  permission?: [string, string];
  /** Any authenticated caller; the handler limits it to the caller's own things. */
  selfService?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    ctx: ApiContext;
    /** Every route registered, with its access rule (used by the RBAC tests and the docs). */
    routeTable: RouteInfo[];
  }
}

export async function buildApi(ctx: ApiContext, loggerInstance: FastifyBaseLogger): Promise<ApiApp> {
  const app = Fastify({
    loggerInstance,
    bodyLimit: ctx.config.bodyLimit,
    trustProxy: false,
    // On shutdown, idle keep-alive sockets are closed at once instead of holding the process.
    forceCloseConnections: 'idle',
    logController: new LogController({ disableRequestLogging: true }),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500 },
    ajv: { customOptions: { strict: false } },
    // Router-level refusals (malformed URL, over-long path parameter) get the uniform body too.
    frameworkErrors: (err, _req, reply) =>
      sendError(
        reply,
        'BAD_REQUEST',
        err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path parameter is too long' : err.message,
      ),
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as ApiApp;

  app.setValidatorCompiler(validatorCompiler);
  app.decorate('ctx', ctx);
  app.decorate('routeTable', [] as RouteInfo[]);
  app.addSchema(ErrorBody);

  app.addHook('onRoute', (r) => {
    if (r.url.startsWith('/docs')) {
      r.config = { ...(r.config ?? {}), public: true };
    }
    // Document the refusals every protected route can answer, so no route has to repeat them.
    if (!r.config?.public && r.schema) {
      const response = { ...((r.schema.response as Record<string, unknown> | undefined) ?? {}) };
      response[401] ??= { $ref: 'ErrorBody#', description: 'Not authenticated' };
      if (r.config?.permission) response[403] ??= { $ref: 'ErrorBody#', description: 'Not permitted' };
      response[503] ??= { $ref: 'ErrorBody#', description: 'Starting or shutting down' };
      r.schema = { ...r.schema, response };
    }
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    for (const m of methods) {
      if (m === 'HEAD') continue;
      const info: RouteInfo = { method: m, url: r.url, public: !!r.config?.public };
      if (r.config?.permission) info.permission = r.config.permission;
      if (r.config?.selfService) info.selfService = true;
      app.routeTable.push(info);
    }
  });

  installErrorHandling(app);
  // Verified tokens are remembered (never past their expiry): a client sends the same token with
  // every request, and checking its signature each time cost more than the rest of authentication.
  await app.register(fastifyJwt, {
    secret: ctx.jwtSecret,
    sign: { expiresIn: ACCESS_TOKEN_TTL_S },
    verify: { cache: 1000 },
  });
  // Until the platform is ready, everything except /health answers 503 (before authentication:
  // identities may not even exist yet).
  app.addHook('onRequest', async (req, reply) => {
    if (!ctx.health.ready && req.routeOptions.url !== '/health') {
      return sendError(reply, 'SERVICE_UNAVAILABLE', 'Attune is starting; try again in a moment');
    }
  });
  installAuth(app, ctx, ctx.principals);

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Attune API',
        version: '1',
        description:
          'Event-driven automation and workflow orchestration. Lists answer `{data, pagination}`; ' +
          'errors answer `{error: {code, message, details}}`.',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'Access token from POST /auth/login, or an API key',
          },
          apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    refResolver: { buildLocalReference: (json, _base, _frag, i) => (json.$id as string) || `def-${i}` },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', staticCSP: true });

  app.get('/api-spec/openapi.json', { config: { public: true }, schema: { hide: true } }, async () =>
    app.swagger(),
  );

  registerRoutes(app);
  registerUi(app);
  return app;
}
