/**
 * `GET /metrics`: Prometheus text exposition (format 0.0.4) of this process's metrics and of the
 * cluster-wide values read from the database and the bus at scrape time. See docs/observability.md.
 *
 * Access: callers with `workers:read` (every built-in role has it; give a scraper a service account
 * and an API key), or anyone when `ATTUNE_METRICS_PUBLIC=true` (scrapers on a private network).
 * Also installs the hook that times every HTTP response by route template.
 */
import { Type } from 'typebox';
import { ClusterMetrics } from '../../metrics/cluster-metrics.ts';
import { EXPOSITION_CONTENT_TYPE } from '../../metrics/instruments.ts';
import { metrics } from '../../metrics/registry.ts';
import type { ApiApp } from '../server.ts';

export function registerMetricsRoutes(app: ApiApp): void {
  const cluster = new ClusterMetrics({
    db: () => app.ctx.store.db,
    bus: () => app.ctx.bus,
    log: app.ctx.log,
  });
  metrics.process.startSampling();
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpResponse(req.method, req.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
  });

  app.get(
    '/metrics',
    {
      config: app.ctx.config.metricsPublic ? { public: true } : { permission: ['workers', 'read'] },
      schema: {
        tags: ['health'],
        summary: 'Metrics in the Prometheus text format',
        description:
          'Executions by action and status, completions and run times, event → start latency, events, ' +
          'queue depths, outbox backlog, workers and their load, HTTP requests, process memory, CPU and ' +
          'event loop lag. Needs `workers:read` unless ATTUNE_METRICS_PUBLIC=true.',
        ...(app.ctx.config.metricsPublic ? { security: [] } : {}),
        response: {
          200: {
            description: `The metrics (${EXPOSITION_CONTENT_TYPE})`,
            content: { 'text/plain': { schema: Type.String() } },
          },
        },
      },
    },
    async (_req, reply) => {
      const [own, shared] = await Promise.all([metrics.render(), cluster.collect()]);
      return reply
        .header('content-type', EXPOSITION_CONTENT_TYPE)
        .header('cache-control', 'no-store')
        .send(own + shared);
    },
  );
}
