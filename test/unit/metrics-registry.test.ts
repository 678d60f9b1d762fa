/**
 * The metrics library: the exposition it writes is valid Prometheus text (format 0.0.4) — read back
 * by a strict parser — with escaping, cumulative histogram buckets, `+Inf`, `_sum` and `_count`; bad
 * names, labels and updates are refused.
 */
import { describe, expect, it } from 'vitest';
import {
  CallbackMetric,
  Counter,
  escapeHelp,
  escapeLabelValue,
  formatValue,
  Gauge,
  Histogram,
  Registry,
} from '../../src/services/metrics/instruments.ts';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.ts';

describe('exposition format 0.0.4', () => {
  it('writes HELP and TYPE for every family, even before any sample', () => {
    const r = new Registry();
    r.counter({ name: 'a_total', help: 'A things' });
    r.gauge({ name: 'b', help: 'B level', labelNames: ['x'] });
    r.histogram({ name: 'c_seconds', help: 'C time', buckets: [1] });
    expect(r.render()).toBe(
      [
        '# HELP a_total A things',
        '# TYPE a_total counter',
        '# HELP b B level',
        '# TYPE b gauge',
        '# HELP c_seconds C time',
        '# TYPE c_seconds histogram',
        '',
      ].join('\n'),
    );
    expect([...parsePrometheusText(r.render()).keys()]).toEqual(['a_total', 'b', 'c_seconds']);
  });

  it('writes counters and gauges with and without labels', () => {
    const r = new Registry();
    const c = r.counter<'action' | 'status'>({
      name: 'runs_total',
      help: 'Runs',
      labelNames: ['action', 'status'],
    });
    c.inc({ action: 'core.noop', status: 'succeeded' });
    c.inc({ status: 'succeeded', action: 'core.noop' }, 2);
    c.inc({ action: 'core.local', status: 'failed' }, 0.5);
    const plain = r.counter({ name: 'plain_total', help: 'Plain' });
    plain.inc();
    const g = r.gauge({ name: 'level', help: 'Level' });
    g.set(-3.25);
    g.inc(1);
    expect(r.render()).toContain(
      'runs_total{action="core.noop",status="succeeded"} 3\nruns_total{action="core.local",status="failed"} 0.5\n',
    );
    const f = parsePrometheusText(r.render());
    expect(sampleValue(f, 'runs_total', { action: 'core.noop', status: 'succeeded' })).toBe(3);
    expect(sampleValue(f, 'plain_total')).toBe(1);
    expect(sampleValue(f, 'level')).toBe(-2.25);
    expect(c.get('core.noop', 'succeeded')).toBe(3);
    expect(c.get('nothing', 'here')).toBe(0);
  });

  it('escapes label values (backslash, double quote, newline) and help texts', () => {
    expect(escapeLabelValue('a\\b"c\nd')).toBe('a\\\\b\\"c\\nd');
    expect(escapeLabelValue('plain value, with = and } and {')).toBe('plain value, with = and } and {');
    expect(escapeHelp('line 1\nline 2 \\ "quoted"')).toBe('line 1\\nline 2 \\\\ "quoted"');
    const r = new Registry();
    const g = r.gauge<'path'>({ name: 'odd', help: 'Odd\nhelp \\ text', labelNames: ['path'] });
    const nasty = ['C:\\dir\\file', 'say "hi"', 'two\nlines', '}{,=', 'ünïcødé ✓', ''];
    for (const [i, v] of nasty.entries()) g.set({ path: v }, i);
    const text = r.render();
    expect(text).toContain('# HELP odd Odd\\nhelp \\\\ text\n');
    expect(text).toContain('odd{path="C:\\\\dir\\\\file"} 0\n');
    expect(text).toContain('odd{path="say \\"hi\\""} 1\n');
    expect(text).toContain('odd{path="two\\nlines"} 2\n');
    // every line is one line: no raw newline inside a sample
    expect(text.split('\n').filter((l) => l.startsWith('odd{'))).toHaveLength(nasty.length);
    const f = parsePrometheusText(text).get('odd')!;
    expect(f.help).toBe('Odd\nhelp \\ text');
    expect(f.samples.map((s) => s.labels.path)).toEqual(nasty);
  });

  it('formats special values as Prometheus expects', () => {
    expect(formatValue(Number.POSITIVE_INFINITY)).toBe('+Inf');
    expect(formatValue(Number.NEGATIVE_INFINITY)).toBe('-Inf');
    expect(formatValue(Number.NaN)).toBe('NaN');
    expect(formatValue(1e-7)).toBe('1e-7');
    expect(formatValue(123456789012)).toBe('123456789012');
    const r = new Registry();
    const g = r.gauge<'k'>({ name: 'special', help: 'x', labelNames: ['k'] });
    g.set({ k: 'inf' }, Number.POSITIVE_INFINITY);
    g.set({ k: 'ninf' }, Number.NEGATIVE_INFINITY);
    g.set({ k: 'nan' }, Number.NaN);
    g.set({ k: 'tiny' }, 1e-7);
    const f = parsePrometheusText(r.render());
    expect(sampleValue(f, 'special', { k: 'inf' })).toBe(Number.POSITIVE_INFINITY);
    expect(sampleValue(f, 'special', { k: 'ninf' })).toBe(Number.NEGATIVE_INFINITY);
    expect(sampleValue(f, 'special', { k: 'nan' })).toBeNaN();
    expect(sampleValue(f, 'special', { k: 'tiny' })).toBe(1e-7);
  });
});

describe('histograms', () => {
  it('count observations in cumulative buckets, upper bound inclusive, with +Inf, _sum and _count', () => {
    const r = new Registry();
    const h = r.histogram<'action'>({
      name: 'run_seconds',
      help: 'Run time',
      labelNames: ['action'],
      buckets: [0.1, 1, 10],
    });
    for (const v of [0.05, 0.1, 0.5, 1, 5, 10, 50]) h.observe({ action: 'a' }, v);
    h.observe({ action: 'b' }, 0.2);
    h.observe({ action: 'b' }, Number.NaN); // ignored
    const text = r.render();
    expect(text).toContain(
      [
        'run_seconds_bucket{action="a",le="0.1"} 2',
        'run_seconds_bucket{action="a",le="1"} 4',
        'run_seconds_bucket{action="a",le="10"} 6',
        'run_seconds_bucket{action="a",le="+Inf"} 7',
        'run_seconds_sum{action="a"} 66.65',
        'run_seconds_count{action="a"} 7',
        'run_seconds_bucket{action="b",le="0.1"} 0',
        'run_seconds_bucket{action="b",le="1"} 1',
        'run_seconds_bucket{action="b",le="10"} 1',
        'run_seconds_bucket{action="b",le="+Inf"} 1',
        'run_seconds_sum{action="b"} 0.2',
        'run_seconds_count{action="b"} 1',
        '',
      ].join('\n'),
    );
    const f = parsePrometheusText(text); // checks cumulativeness and +Inf = _count
    expect(f.get('run_seconds')!.type).toBe('histogram');
    expect(h.get('a')).toEqual({ count: 7, sum: 66.65 });
  });

  it('without labels, and through a cached series for hot paths', () => {
    const r = new Registry();
    const h = r.histogram({ name: 'lag_seconds', help: 'Lag', buckets: [0.01, 0.1] });
    const s = h.child();
    s.observe(0.005);
    s.observe(0.5);
    h.observe(0.05);
    const f = parsePrometheusText(r.render());
    expect(sampleValue(f, 'lag_seconds_bucket', { le: '0.01' })).toBe(1);
    expect(sampleValue(f, 'lag_seconds_bucket', { le: '0.1' })).toBe(2);
    expect(sampleValue(f, 'lag_seconds_bucket', { le: '+Inf' })).toBe(3);
    expect(sampleValue(f, 'lag_seconds_count')).toBe(3);
    expect(sampleValue(f, 'lag_seconds_sum')).toBeCloseTo(0.555, 10);
  });

  it('refuse bad bucket bounds and a label named le', () => {
    const h = (buckets: number[]) => new Histogram({ name: 'h', help: 'h', buckets });
    expect(() => h([])).toThrow(/at least one bucket/);
    expect(() => h([1, 1])).toThrow(/strictly increasing/);
    expect(() => h([2, 1])).toThrow(/strictly increasing/);
    expect(() => h([1, Number.POSITIVE_INFINITY])).toThrow(/finite/);
    expect(() => h([Number.NaN])).toThrow(/finite/);
    expect(() => new Histogram({ name: 'h', help: 'h', labelNames: ['le'], buckets: [1] })).toThrow(
      /reserved/,
    );
  });
});

describe('refusals', () => {
  it('bad metric and label names', () => {
    expect(() => new Counter({ name: '1abc', help: 'x' })).toThrow(/invalid metric name/);
    expect(() => new Counter({ name: 'a-b', help: 'x' })).toThrow(/invalid metric name/);
    expect(() => new Gauge({ name: 'ok', help: 'x', labelNames: ['bad-label'] })).toThrow(/invalid label/);
    expect(() => new Gauge({ name: 'ok', help: 'x', labelNames: ['__reserved'] })).toThrow(/invalid label/);
    expect(() => new Gauge({ name: 'ok', help: 'x', labelNames: ['a', 'a'] })).toThrow(/twice/);
    expect(() => new CallbackMetric({ name: 'x y', help: 'x', type: 'gauge', read: () => 1 })).toThrow();
    expect(() => new Gauge({ name: 'ns:sub_level', help: 'x' })).not.toThrow();
  });

  it('labels that do not match the declared names', () => {
    const c = new Counter<'a' | 'b'>({ name: 'c_total', help: 'x', labelNames: ['a', 'b'] });
    expect(() => c.inc({ a: '1' } as never)).toThrow(/exactly \{a, b\}/);
    expect(() => c.inc({ a: '1', b: '2', z: '3' } as never)).toThrow(/exactly \{a, b\}/);
    expect(() => c.child('only-one')).toThrow(/expected 2 label value/);
    expect(c.size).toBe(0);
  });

  it('a counter never goes down', () => {
    const c = new Counter({ name: 'c_total', help: 'x' });
    expect(() => c.inc(-1)).toThrow(/only increase/);
    expect(() => c.inc(Number.NaN)).toThrow(/only increase/);
    expect(() => c.inc(Number.POSITIVE_INFINITY)).toThrow(/only increase/);
    expect(() => c.child().inc(-5)).toThrow(/only increase/);
    c.inc(0);
    expect(c.get()).toBe(0);
  });

  it('two families with the same name, or a name a histogram uses for its series', () => {
    const r = new Registry();
    r.counter({ name: 'x_total', help: 'x' });
    expect(() => r.gauge({ name: 'x_total', help: 'x' })).toThrow(/already registered/);
    r.histogram({ name: 'lat', help: 'x', buckets: [1] });
    expect(() => r.counter({ name: 'lat_count', help: 'x' })).toThrow(/already registered/);
    expect(() => r.gauge({ name: 'lat_bucket', help: 'x' })).toThrow(/already registered/);
    r.gauge({ name: 'other_count', help: 'x' });
    expect(() => r.histogram({ name: 'other', help: 'x', buckets: [1] })).toThrow(/already registered/);
  });
});

describe('registry', () => {
  it('runs collectors (sync and async) before rendering; callbacks are read at rendering', async () => {
    const r = new Registry();
    const g = r.gauge<'q'>({ name: 'depth', help: 'Depth', labelNames: ['q'] });
    let n = 0;
    r.addCollector(() => {
      g.reset();
      g.set({ q: 'a' }, ++n);
    });
    r.addCollector(async () => {
      await new Promise((res) => setTimeout(res, 5));
      g.set({ q: 'b' }, 10 * n);
    });
    r.callback({ name: 'reads_total', help: 'Reads', type: 'counter', read: () => n });
    r.callback({ name: 'unknown', help: 'Not known', type: 'gauge', read: () => undefined });
    const f1 = parsePrometheusText(await r.collect());
    expect(sampleValue(f1, 'depth', { q: 'a' })).toBe(1);
    expect(sampleValue(f1, 'depth', { q: 'b' })).toBe(10);
    expect(sampleValue(f1, 'reads_total')).toBe(1);
    expect(f1.get('unknown')!.samples).toEqual([]);
    const f2 = parsePrometheusText(await r.collect());
    expect(sampleValue(f2, 'depth', { q: 'a' })).toBe(2);
    expect(sampleValue(f2, 'reads_total')).toBe(2);
  });

  it('reset removes every series of a family', () => {
    const g = new Gauge<'k'>({ name: 'g', help: 'x', labelNames: ['k'] });
    g.set({ k: 'a' }, 1);
    g.set({ k: 'b' }, 2);
    expect(g.size).toBe(2);
    g.reset();
    expect(g.size).toBe(0);
    expect(g.render()).toBe('');
    expect(g.get('a')).toBeUndefined();
  });

  it('updates a cached series cheaply', () => {
    const c = new Counter<'action' | 'status'>({
      name: 'hot_total',
      help: 'x',
      labelNames: ['action', 'status'],
    });
    const s = c.child('core.noop', 'succeeded');
    const t0 = performance.now();
    for (let i = 0; i < 1_000_000; i++) s.inc();
    const ms = performance.now() - t0;
    expect(s.value).toBe(1_000_000);
    expect(c.get('core.noop', 'succeeded')).toBe(1_000_000);
    // ~10–30 ns per update here; the bound only guards against a pathological regression
    expect(ms).toBeLessThan(500);
  });
});

describe('the strict parser used by these tests', () => {
  it('refuses what Prometheus refuses', () => {
    const bad = [
      'x{a="1"} 1', // no final newline
      'x{a="\\q"} 1\n', // bad escape
      'x{a=1} 1\n', // unquoted
      '1x 1\n', // bad name
      'x one\n', // bad value
      '# TYPE x gauge\nx 1\n# TYPE x gauge\n', // second TYPE
      'x 1\n# TYPE x gauge\n', // TYPE after samples
      '# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\nx{a="b"} 2\n', // family split in two
      'x 1\nx 2\n', // duplicate series
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', // not cumulative
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', // no +Inf
      '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 1\n', // +Inf ≠ count
      '# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_count 1\n', // no _sum
    ];
    for (const t of bad) expect(() => parsePrometheusText(t), JSON.stringify(t)).toThrow();
    expect(() =>
      parsePrometheusText(
        '# a comment\n# HELP x help\n# TYPE x gauge\nx{a="1",b="\\"\\\\\\n"} 1 1700000000000\n\n',
      ),
    ).not.toThrow();
  });
});
