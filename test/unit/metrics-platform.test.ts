/**
 * The platform's metrics object: what the runtime's one-line calls record, and the families a
 * process renders (worker load, process memory and CPU, event loop lag).
 */
import { describe, expect, it } from 'vitest';
import {
  EVENT_TIME_KEY,
  type ExecutionFacts,
  PlatformMetrics,
  UNMATCHED_ROUTE,
} from '../../src/services/metrics/registry.ts';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.ts';

const exec = (over: Partial<ExecutionFacts>): ExecutionFacts => ({
  actionRef: 'core.noop',
  status: 'succeeded',
  enforcementId: null,
  context: {},
  startedAt: null,
  finishedAt: null,
  ...over,
});

describe('PlatformMetrics', () => {
  it('observes event → start latency only for executions a rule created, from the event time they carry', () => {
    const m = new PlatformMetrics();
    const event = new Date('2030-01-01T00:00:00.000Z');
    m.executionsStarted([
      // made by a rule: 40 ms after its event
      exec({
        enforcementId: 7,
        context: { [EVENT_TIME_KEY]: event.toISOString() },
        startedAt: new Date(event.getTime() + 40),
      }),
      // manual run: no enforcement
      exec({ context: { [EVENT_TIME_KEY]: event.toISOString() }, startedAt: new Date() }),
      // a rule's execution without the event time (made before it was recorded), or a garbled one
      exec({ enforcementId: 8, startedAt: new Date() }),
      exec({ enforcementId: 9, context: { [EVENT_TIME_KEY]: 'yesterday' }, startedAt: new Date() }),
      // clocks never make it negative
      exec({
        enforcementId: 10,
        context: { [EVENT_TIME_KEY]: event.toISOString() },
        startedAt: new Date(event.getTime() - 5),
      }),
    ]);
    expect(m.eventToStart.get()).toEqual({ count: 2, sum: 0.04 });
  });

  it('counts terminal executions by action and status and observes run times of those that started', () => {
    const m = new PlatformMetrics();
    const t = new Date('2030-01-01T00:00:00.000Z').getTime();
    m.executionsFinished([
      exec({ startedAt: new Date(t), finishedAt: new Date(t + 250) }),
      exec({ startedAt: new Date(t), finishedAt: new Date(t + 750) }),
      exec({
        actionRef: 'core.local',
        status: 'failed',
        startedAt: new Date(t),
        finishedAt: new Date(t + 2000),
      }),
      // canceled before it ever ran: counted, no run time
      exec({ actionRef: 'core.local', status: 'canceled', finishedAt: new Date(t) }),
    ]);
    expect(m.executionsCompleted.get('core.noop', 'succeeded')).toBe(2);
    expect(m.executionsCompleted.get('core.local', 'failed')).toBe(1);
    expect(m.executionsCompleted.get('core.local', 'canceled')).toBe(1);
    expect(m.executionDuration.get('core.noop')).toEqual({ count: 2, sum: 1 });
    expect(m.executionDuration.get('core.local')).toEqual({ count: 1, sum: 2 });
  });

  it('counts events by trigger and enforcements by outcome', () => {
    const m = new PlatformMetrics();
    m.eventsStored([{ triggerRef: 'core.webhook' }, { triggerRef: 'core.webhook' }, { triggerRef: 'x.y' }]);
    m.enforcementsRecorded(3, 0);
    m.enforcementsRecorded(0, 2);
    m.enforcementsRecorded(0, 0);
    expect(m.eventsCreated.get('core.webhook')).toBe(2);
    expect(m.eventsCreated.get('x.y')).toBe(1);
    expect(m.enforcementsCreated.get('scheduled')).toBe(3);
    expect(m.enforcementsCreated.get('failed')).toBe(2);
  });

  it('labels HTTP requests with the route template, never the raw URL', () => {
    const m = new PlatformMetrics();
    m.httpResponse('GET', '/api/v1/executions/:id', 200, 0.003);
    m.httpResponse('GET', '/api/v1/executions/:id', 200, 0.004);
    m.httpResponse('GET', undefined, 404, 0.001);
    expect(m.httpRequests.get('GET', '/api/v1/executions/:id', 200)).toBe(2);
    expect(m.httpRequests.get('GET', UNMATCHED_ROUTE, 404)).toBe(1);
    expect(m.httpDuration.get('GET', '/api/v1/executions/:id', 200).count).toBe(2);
  });

  it("renders this process's worker load while the worker is attached, and process metrics", async () => {
    const m = new PlatformMetrics();
    const w = { id: 'host:1:abc', capacity: 8, active: 3 };
    m.attachWorker(w);
    let f = parsePrometheusText(await m.render());
    expect(sampleValue(f, 'attune_worker_running', { worker: 'host:1:abc' })).toBe(3);
    expect(sampleValue(f, 'attune_worker_capacity', { worker: 'host:1:abc' })).toBe(8);
    for (const name of [
      'attune_process_resident_memory_bytes',
      'attune_process_heap_used_bytes',
      'attune_process_heap_total_bytes',
      'attune_process_uptime_seconds',
      'attune_process_cpu_seconds_total',
      'attune_process_start_time_seconds',
    ])
      expect(sampleValue(f, name), name).toBeGreaterThan(0);
    expect(f.get('attune_process_cpu_seconds_total')!.type).toBe('counter');
    expect(f.get('attune_info')!.samples[0]!.labels).toMatchObject({ node_version: process.version });
    m.detachWorker(w);
    f = parsePrometheusText(await m.render());
    expect(f.get('attune_worker_running')!.samples).toEqual([]);
  });

  it('samples the event loop lag into a histogram, and sees a blocked loop', async () => {
    const m = new PlatformMetrics();
    m.process.startSampling();
    m.process.startSampling(); // idempotent
    try {
      const until = Date.now() + 700;
      while (Date.now() < until) {
        // keep the loop busy: the sampler's timer fires late
      }
      await new Promise((r) => setTimeout(r, 600));
      const f = parsePrometheusText(await m.render());
      expect(sampleValue(f, 'attune_process_event_loop_lag_seconds_count')).toBeGreaterThanOrEqual(1);
      // the busy wait made one sample at least ~200 ms late
      expect(sampleValue(f, 'attune_process_event_loop_lag_seconds_bucket', { le: '0.1' })).toBeLessThan(
        sampleValue(f, 'attune_process_event_loop_lag_seconds_count')!,
      );
    } finally {
      m.process.stopSampling();
    }
  });
});
