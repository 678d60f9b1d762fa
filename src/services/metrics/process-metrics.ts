/**
 * Metrics of the Node.js process itself: memory, CPU time, uptime, and the event loop's lag.
 *
 * The lag is sampled by a timer (every 500 ms, unreferenced: it never keeps the process alive): how
 * late it fires is how long the loop was busy. Observations go to a histogram, so the quantiles of
 * any time range can be computed by the scraper.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Histogram, Registry } from './instruments.ts';

const LAG_SAMPLE_MS = 500;
const LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

function productVersion(): string {
  try {
    const pkg = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json');
    const v = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : 'unknown';
  } catch {
    return 'unknown';
  }
}

export class ProcessMetrics {
  private readonly lag: Histogram;
  private timer: NodeJS.Timeout | undefined;
  private mem: NodeJS.MemoryUsage | undefined;

  constructor(registry: Registry) {
    registry
      .gauge<'version' | 'node_version'>({
        name: 'attune_info',
        help: 'Always 1; the labels say which Attune and Node.js versions this process runs',
        labelNames: ['version', 'node_version'],
      })
      .set({ version: productVersion(), node_version: process.version }, 1);
    const startTime = Date.now() / 1000 - process.uptime();
    registry.callback({
      name: 'attune_process_start_time_seconds',
      help: 'Start time of the process, in seconds since the Unix epoch',
      type: 'gauge',
      read: () => Math.round(startTime),
    });
    registry.callback({
      name: 'attune_process_uptime_seconds',
      help: 'Seconds since the process started',
      type: 'gauge',
      read: () => process.uptime(),
    });
    registry.callback({
      name: 'attune_process_cpu_seconds_total',
      help: 'User and system CPU time spent by the process, in seconds',
      type: 'counter',
      read: () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      },
    });
    // One memoryUsage() call per scrape, read by the four memory families.
    registry.addCollector(() => {
      this.mem = process.memoryUsage();
    });
    const memory: [string, string, keyof NodeJS.MemoryUsage][] = [
      ['attune_process_resident_memory_bytes', 'Resident memory of the process, in bytes', 'rss'],
      ['attune_process_heap_used_bytes', 'V8 heap in use, in bytes', 'heapUsed'],
      ['attune_process_heap_total_bytes', 'V8 heap allocated, in bytes', 'heapTotal'],
      [
        'attune_process_external_memory_bytes',
        'Memory of C++ objects bound to JavaScript objects (buffers, WebAssembly), in bytes',
        'external',
      ],
    ];
    for (const [name, help, field] of memory)
      registry.callback({ name, help, type: 'gauge', read: () => this.mem?.[field] });
    this.lag = registry.histogram({
      name: 'attune_process_event_loop_lag_seconds',
      help: `How late a timer fired (sampled every ${LAG_SAMPLE_MS} ms): time the event loop was blocked`,
      buckets: LAG_BUCKETS,
    });
  }

  /** Starts sampling the event loop lag (idempotent). */
  startSampling(): void {
    if (this.timer) return;
    let expected = performance.now() + LAG_SAMPLE_MS;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.lag.observe(Math.max(0, now - expected) / 1000);
      expected = now + LAG_SAMPLE_MS;
    }, LAG_SAMPLE_MS);
    this.timer.unref();
  }

  stopSampling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
