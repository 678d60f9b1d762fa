/**
 * The metrics-only listener of processes that run no API (ATTUNE_METRICS_PORT), and the settings
 * of observability: ATTUNE_METRICS_PUBLIC, ATTUNE_METRICS_PORT, ATTUNE_LOG_FORMAT.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { metrics } from '../../src/services/metrics/registry.ts';
import { type MetricsServer, startMetricsServer } from '../../src/services/metrics/server.ts';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.ts';

interface ErrorBody {
  error: { code: string; message: string };
}

describe('metrics listener of a process without the API', () => {
  let server: MetricsServer;
  beforeAll(async () => {
    server = await startMetricsServer(0, '127.0.0.1');
  });
  afterAll(async () => server?.close());

  it("serves this process's metrics at GET /metrics", async () => {
    const worker = { id: 'w-listener', capacity: 4, active: 1 };
    metrics.attachWorker(worker);
    metrics.eventsStored([{ triggerRef: 'listener.test' }]);
    try {
      const r = await fetch(`${server.url}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const f = parsePrometheusText(await r.text());
      expect(sampleValue(f, 'attune_worker_capacity', { worker: 'w-listener' })).toBe(4);
      expect(sampleValue(f, 'attune_worker_running', { worker: 'w-listener' })).toBe(1);
      expect(sampleValue(f, 'attune_events_created_total', { trigger: 'listener.test' })).toBe(1);
      expect(sampleValue(f, 'attune_process_resident_memory_bytes')).toBeGreaterThan(0);
      // the cluster-wide families are the API's
      expect(f.has('attune_executions')).toBe(false);
      const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
    } finally {
      metrics.detachWorker(worker);
    }
  });

  it('answers other paths and methods with the uniform error body', async () => {
    const other = await fetch(`${server.url}/api/v1/executions`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as ErrorBody).error.code).toBe('NOT_FOUND');
    const post = await fetch(`${server.url}/metrics`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(((await post.json()) as ErrorBody).error.code).toBe('METHOD_NOT_ALLOWED');
  });

  it('refuses a port in use with the usual error', async () => {
    const port = Number(new URL(server.url).port);
    await expect(startMetricsServer(port, '127.0.0.1')).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });
});

describe('observability settings', () => {
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-obs-cfg-'));

  it('defaults: metrics need credentials, no extra listener, log format chosen by the terminal', () => {
    const c = loadConfig({}, cwd);
    expect(c.metricsPublic).toBe(false);
    expect(c.metricsPort).toBeUndefined();
    expect(c.logFormat).toBeUndefined();
  });

  it('reads them from the environment and from the YAML file', () => {
    expect(
      loadConfig(
        { ATTUNE_METRICS_PUBLIC: 'true', ATTUNE_METRICS_PORT: '9464', ATTUNE_LOG_FORMAT: 'JSON' },
        cwd,
      ),
    ).toMatchObject({ metricsPublic: true, metricsPort: 9464, logFormat: 'json' });
    for (const yes of ['1', 'yes', 'on', 'TRUE'])
      expect(loadConfig({ ATTUNE_METRICS_PUBLIC: yes }, cwd).metricsPublic).toBe(true);
    for (const no of ['0', 'no', 'off', 'false'])
      expect(loadConfig({ ATTUNE_METRICS_PUBLIC: no }, cwd).metricsPublic).toBe(false);
    const file = path.join(cwd, 'attune.yaml');
    fs.writeFileSync(file, 'metricsPublic: true\nlogFormat: pretty\nATTUNE_METRICS_PORT: 9100\n');
    try {
      expect(loadConfig({}, cwd)).toMatchObject({
        metricsPublic: true,
        logFormat: 'pretty',
        metricsPort: 9100,
      });
    } finally {
      fs.rmSync(file);
    }
  });

  it('refuses bad values with a message naming the variable', () => {
    expect(() => loadConfig({ ATTUNE_METRICS_PUBLIC: 'maybe' }, cwd)).toThrow(ConfigError);
    expect(() => loadConfig({ ATTUNE_METRICS_PUBLIC: 'maybe' }, cwd)).toThrow(
      /ATTUNE_METRICS_PUBLIC must be true or false/,
    );
    expect(() => loadConfig({ ATTUNE_METRICS_PORT: '70000' }, cwd)).toThrow(/ATTUNE_METRICS_PORT/);
    expect(() => loadConfig({ ATTUNE_METRICS_PORT: 'http' }, cwd)).toThrow(/ATTUNE_METRICS_PORT/);
    expect(() => loadConfig({ ATTUNE_LOG_FORMAT: 'xml' }, cwd)).toThrow(
      /ATTUNE_LOG_FORMAT must be json or pretty/,
    );
  });
});
