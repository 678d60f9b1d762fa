/**
 * A metrics-only HTTP listener for processes that run no API (`attune scheduler|worker|sensor`
 * with `ATTUNE_METRICS_PORT`): `GET /metrics` renders this process's own metrics (worker load,
 * completions, event → start latency, events, memory …). The cluster-wide families come from the
 * API's `/metrics`. It answers without authentication and shows no data, only counts and timings:
 * bind it to a private interface (`ATTUNE_HOST`).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { EXPOSITION_CONTENT_TYPE } from './instruments.ts';
import { metrics } from './registry.ts';

export interface MetricsServer {
  /** `http://host:port` */
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(port: number, host: string): Promise<MetricsServer> {
  metrics.process.startSampling();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, code: string, message: string, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...extra });
      res.end(JSON.stringify({ error: { code, message } }));
    };
    if (path !== '/metrics') return json(404, 'NOT_FOUND', 'this listener serves GET /metrics only');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return json(405, 'METHOD_NOT_ALLOWED', 'use GET', { allow: 'GET, HEAD' });
    metrics.render().then(
      (text) => {
        res.writeHead(200, { 'content-type': EXPOSITION_CONTENT_TYPE, 'cache-control': 'no-store' });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (e: unknown) => json(500, 'INTERNAL_ERROR', `metrics could not be rendered: ${(e as Error).message}`),
    );
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
