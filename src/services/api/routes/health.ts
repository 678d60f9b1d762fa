import { Type } from 'typebox';
import type { ApiApp } from '../server.ts';

const PartState = Type.Object({
  state: Type.Union([
    Type.Literal('starting'),
    Type.Literal('ok'),
    Type.Literal('degraded'),
    Type.Literal('down'),
  ]),
  detail: Type.Optional(Type.String()),
});
const HealthBody = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('starting'), Type.Literal('degraded')]),
  version: Type.String(),
  uptime_seconds: Type.Number(),
  parts: Type.Record(Type.String(), PartState),
});

export function registerHealthRoutes(app: ApiApp): void {
  app.get(
    '/health',
    {
      config: { public: true },
      schema: {
        tags: ['health'],
        summary: 'Readiness of the platform and the state of its parts',
        description:
          '200 once the platform is ready to serve, 503 before (or when the database is unreachable).',
        security: [],
        response: { 200: HealthBody, 503: HealthBody },
      },
    },
    async (_req, reply) => {
      const { ctx } = app;
      let dbOk = true;
      try {
        await ctx.store.ping();
        ctx.health.set('database', 'ok', ctx.store.kind);
      } catch (e) {
        dbOk = false;
        ctx.health.set('database', 'down', (e as Error).message);
      }
      const parts = ctx.health.snapshot();
      const degraded = Object.values(parts).some((p) => p.state === 'degraded' || p.state === 'down');
      const status = !ctx.health.ready ? 'starting' : degraded ? 'degraded' : 'ok';
      return reply.code(ctx.health.ready && dbOk ? 200 : 503).send({
        status,
        version: process.env.npm_package_version ?? '0.1.0',
        uptime_seconds: Math.round((Date.now() - ctx.startedAt.getTime()) / 1000),
        parts,
      });
    },
  );
}
