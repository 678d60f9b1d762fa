/**
 * The automation pipeline: events → rule → execution → worker → succeeded.
 *  (a) `noop`: sustained throughput of rule → core.noop → succeeded, events posted in bulk;
 *  (b) `latency`: event → action started, at a fixed rate of single-event requests;
 *  (c) `shell`: throughput of core.local `true` (a process per execution);
 *  (d) `api`: POST /api/v1/executions latency, and request → succeeded for core.noop.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import {
  countByStatus,
  createPack,
  createRule,
  executionStatus,
  lastFinished,
  postEvents,
  query,
} from '../lib/fixtures.ts';
import { postPaced } from '../lib/paced-poster.ts';
import type { BenchPlatform } from '../lib/platform.ts';
import { percentile, round } from '../lib/stats.ts';
import { type Metric, metric, type Scenario } from './scenario.ts';

export interface PipelineOptions {
  /** Events of the throughput scenarios. */
  noopEvents: number;
  shellEvents: number;
  /** Rate and duration of the latency scenario. */
  latencyRate: number;
  latencySeconds: number;
  /** Sequential API requests. */
  apiRequests: number;
  apiRoundTrips: number;
}

export const DEFAULT_PIPELINE: PipelineOptions = {
  noopEvents: 10_000,
  shellEvents: 1000,
  latencyRate: 200,
  latencySeconds: 10,
  apiRequests: 300,
  apiRoundTrips: 100,
};

const execFileP = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `n` executions of `rule` (running `action`) are terminal, and checks they all succeeded. */
async function allSucceeded(p: BenchPlatform, rule: string, action: string, n: number, timeoutMs = 300_000) {
  const db = p.platform.store.db;
  let last: Record<string, number> = {};
  await p.watch.until(
    () => p.watch.terminalCount(action) >= n,
    async () => {
      last = await countByStatus(db, rule);
      const terminal = ['succeeded', 'failed', 'timeout', 'canceled', 'abandoned'].reduce(
        (s, k) => s + (last[k] ?? 0),
        0,
      );
      return terminal >= n;
    },
    { timeoutMs, verifyMs: 2000, what: `${n} executions of ${rule}` },
  );
  if ((last.succeeded ?? 0) !== n)
    throw new Error(`${rule}: expected ${n} succeeded executions, found ${JSON.stringify(last)}`);
}

/** Posts `n` events of `trigger` and waits for their executions: the warm-up of a scenario. */
async function warmUp(p: BenchPlatform, action: string, n: number): Promise<void> {
  const { trigger, rule } = await createRule(
    p.api,
    'warm',
    action,
    action === 'core.local' ? { cmd: 'true' } : {},
  );
  await postEvents(p.api, trigger, n, { batch: n, concurrency: 1 });
  await allSucceeded(p, rule, action, n);
  p.watch.reset();
}

async function throughput(
  p: BenchPlatform,
  name: string,
  action: string,
  params: Record<string, unknown>,
  n: number,
): Promise<{ rate: number; seconds: number }> {
  await createPack(p.api);
  await warmUp(p, action, Math.min(500, Math.max(50, n / 20)));
  const { trigger, rule } = await createRule(p.api, name, action, params);
  await sleep(200); // the rule index reloads on the definitions-changed broadcast
  const t0 = await postEvents(p.api, trigger, n);
  await allSucceeded(p, rule, action, n);
  const seconds = (await lastFinished(p.platform.store.db, rule)) / 1000 - t0 / 1000;
  return { rate: n / seconds, seconds };
}

/**
 * What this machine can do without the platform: processes started the way the process host starts
 * an action (`sh -c`, three pipes, a process group of its own), 8 at a time, from a small process of
 * its own. The shell figure cannot exceed it; it tells a slow machine from a slow platform.
 */
async function spawnCeiling(total = 300, concurrency = 8): Promise<number> {
  const script = `
    const { spawn } = require('node:child_process');
    let started = 0, done = 0;
    const t0 = performance.now();
    const one = () => {
      if (started >= ${total}) return;
      started++;
      const c = spawn('/bin/sh', ['-c', 'true'], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
      c.stdin.on('error', () => {});
      c.stdin.end('{}');
      c.stdout.resume();
      c.stderr.resume();
      c.on('close', () => {
        if (++done === ${total}) console.log(${total} / ((performance.now() - t0) / 1000));
        else one();
      });
    };
    for (let i = 0; i < ${concurrency}; i++) one();`;
  const { stdout } = await execFileP(process.execPath, ['-e', script]);
  return Number(stdout.trim());
}

export function pipelineScenarios(o: PipelineOptions): Scenario[] {
  return [
    {
      name: 'noop',
      aliases: ['a'],
      title: `(a) ${o.noopEvents.toLocaleString('en-US')} events → rule → core.noop → succeeded`,
      pure: false,
      async run(p) {
        const r = await throughput(p!, 'tick', 'core.noop', {}, o.noopEvents);
        return [
          metric('rate', 'noop executions/s (event posted → succeeded)', '/s', round(r.rate, 0), {
            kind: 'min',
            value: 1000,
          }),
          metric('seconds', 'total time', 's', round(r.seconds, 2)),
        ];
      },
    },
    {
      name: 'latency',
      aliases: ['b'],
      title: `(b) event → action started at ${o.latencyRate} events/s for ${o.latencySeconds} s`,
      pure: false,
      async run(bp) {
        const p = bp!;
        await createPack(p.api);
        await warmUp(p, 'core.noop', 200);
        const { trigger, rule } = await createRule(p.api, 'lat', 'core.noop');
        await sleep(200);
        const n = Math.round(o.latencyRate * o.latencySeconds);
        // The client runs in a thread of its own, as an outside client would.
        const elu0 = performance.eventLoopUtilization();
        const sent = await postPaced({
          url: p.api.url,
          token: p.api.token,
          trigger,
          rate: o.latencyRate,
          count: n,
        });
        const busy = performance.eventLoopUtilization(elu0).utilization;
        if (sent.errors.length)
          throw new Error(`${sent.errors.length} event posts failed, e.g. ${sent.errors[0]}`);
        const postMs = sent.postMs;
        const maxInflight = sent.maxInflight;
        const sentSeconds = sent.seconds;
        await allSucceeded(p, rule, 'core.noop', n);
        const rows = await query<{ start_ms: number | string; done_ms: number | string }>(
          p.platform.store.db,
          sql`select extract(epoch from (x.started_at - e.created_at)) * 1000 as start_ms,
                     extract(epoch from (x.finished_at - e.created_at)) * 1000 as done_ms
                from executions x join events e on e.id = x.event_id
               where x.rule_ref = ${rule}`,
        );
        const started = rows.map((r) => Number(r.start_ms));
        const done = rows.map((r) => Number(r.done_ms));
        return [
          metric('p50', 'event → started p50', 'ms', round(percentile(started, 50))),
          metric('p99', 'event → started p99', 'ms', round(percentile(started, 99)), {
            kind: 'max',
            value: 50,
          }),
          metric('max', 'event → started max', 'ms', round(percentile(started, 100))),
          metric('done_p99', 'event → succeeded p99', 'ms', round(percentile(done, 99))),
          metric('post_p99', 'POST /events p99 (client side)', 'ms', round(percentile(postMs, 99))),
          metric('rate', 'events/s achieved', '/s', round(n / sentSeconds, 0)),
          metric('inflight', 'most requests in flight', '', maxInflight),
          metric('busy', 'platform event loop busy', '%', round(busy * 100, 0)),
        ];
      },
    },
    {
      name: 'shell',
      aliases: ['c'],
      title: `(c) ${o.shellEvents.toLocaleString('en-US')} events → rule → core.local \`true\``,
      pure: false,
      async run(p) {
        const r = await throughput(p!, 'sh', 'core.local', { cmd: 'true' }, o.shellEvents);
        return [
          metric('rate', 'shell executions/s', '/s', round(r.rate, 0), { kind: 'min', value: 200 }),
          metric('seconds', 'total time', 's', round(r.seconds, 2)),
          metric(
            'spawn_ceiling',
            'bare `sh -c true` processes/s on this machine (no platform)',
            '/s',
            round(await spawnCeiling(), 0),
          ),
        ];
      },
    },
    {
      name: 'api',
      aliases: ['d'],
      title: '(d) manual execution API round trip (core.noop)',
      pure: false,
      async run(bp) {
        const p = bp!;
        const db = p.platform.store.db;
        const post = () =>
          p.api.post<{ data: { id: number } }>('/api/v1/executions', { action: 'core.noop', parameters: {} });
        for (let i = 0; i < 50; i++) await post();
        const postMs: number[] = [];
        for (let i = 0; i < o.apiRequests; i++) {
          const t = performance.now();
          await post();
          postMs.push(performance.now() - t);
        }
        // Let the executions of the first phase finish before measuring round trips.
        await p.watch.until(
          () => p.watch.terminalCount('core.noop') >= o.apiRequests + 50,
          async () => {
            const [r] = await query<{ n: number | string }>(
              db,
              sql`select count(*) as n from executions where action_ref = 'core.noop' and status <> 'succeeded'`,
            );
            return Number(r?.n) === 0;
          },
          { what: 'the executions of the first phase' },
        );
        const tripMs: number[] = [];
        for (let i = 0; i < o.apiRoundTrips; i++) {
          const t = performance.now();
          const { data } = await post();
          const status = await p.watch.terminal(data.id, () => executionStatus(db, data.id));
          if (status !== 'succeeded') throw new Error(`execution ${data.id} ended ${status}`);
          tripMs.push(performance.now() - t);
        }
        const out: Metric[] = [
          metric('post_p50', 'POST /executions p50', 'ms', round(percentile(postMs, 50), 2)),
          metric('post_p99', 'POST /executions p99', 'ms', round(percentile(postMs, 99), 2)),
          metric('trip_p50', 'request → succeeded p50', 'ms', round(percentile(tripMs, 50), 2)),
          metric('trip_p99', 'request → succeeded p99', 'ms', round(percentile(tripMs, 99), 2)),
        ];
        return out;
      },
    },
  ];
}
