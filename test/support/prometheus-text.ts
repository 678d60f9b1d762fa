/**
 * A strict reader of the Prometheus text exposition format 0.0.4, for tests: it refuses anything a
 * Prometheus server would refuse (bad names, bad escapes, bad values, a TYPE after samples, a
 * family split in two, duplicate series) and checks the shape of histograms (cumulative buckets
 * ending with `+Inf` equal to `_count`, `_sum` and `_count` present).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string | undefined;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(raw: string, where: string): number {
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  if (raw === 'NaN') return Number.NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) throw new Error(`${where}: bad value '${raw}'`);
  return Number(raw);
}

/** Parses `{a="x",b="y"}` starting at `i` (on the `{`); returns the labels and the index after `}`. */
function parseLabels(line: string, i: number, where: string): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++;
  while (line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without '='`);
    const name = line.slice(i, eq);
    if (!LABEL.test(name) || name.startsWith('__')) throw new Error(`${where}: bad label name '${name}'`);
    if (Object.hasOwn(labels, name)) throw new Error(`${where}: label '${name}' repeated`);
    if (line[eq + 1] !== '"') throw new Error(`${where}: label value not quoted`);
    let v = '';
    let j = eq + 2;
    for (;;) {
      const c = line[j];
      if (c === undefined) throw new Error(`${where}: unterminated label value`);
      if (c === '"') break;
      if (c === '\\') {
        const n = line[j + 1];
        if (n === '\\') v += '\\';
        else if (n === '"') v += '"';
        else if (n === 'n') v += '\n';
        else throw new Error(`${where}: bad escape '\\${n}' in a label value`);
        j += 2;
      } else {
        v += c;
        j++;
      }
    }
    labels[name] = v;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected ',' or '}' after a label`);
  }
  return [labels, i + 1];
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const f = families.get(sample.slice(0, -suffix.length));
    if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket'))) return f;
  }
  return families.get(sample);
}

const seriesKey = (name: string, labels: Record<string, string>, without?: string) =>
  `${name}{${Object.keys(labels)
    .filter((k) => k !== without)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(',')}}`;

/** Parses and checks an exposition; throws with the line number on the first problem. */
export function parsePrometheusText(text: string): Map<string, Family> {
  if (text.length && !text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const typed = new Set<string>();
  const series = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, idx) => {
    const where = `line ${idx + 1}`;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest = ''] = m;
      if (!NAME.test(name!)) throw new Error(`${where}: bad metric name '${name}'`);
      let f = families.get(name!);
      if (f && closed.has(name!)) throw new Error(`${where}: family ${name} continues after another one`);
      if (!f) {
        f = { name: name!, type: 'untyped', help: undefined, samples: [] };
        families.set(name!, f);
      }
      if (current && current !== f) closed.add(current.name);
      current = f;
      if (kind === 'HELP') {
        if (f.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${where}: bad escape in HELP`);
        f.help = rest.replace(/\\(\\|n)/g, (_x, c: string) => (c === 'n' ? '\n' : '\\'));
      } else {
        if (!TYPES.has(rest)) throw new Error(`${where}: unknown type '${rest}'`);
        if (f.samples.length) throw new Error(`${where}: TYPE of ${name} after its samples`);
        if (typed.has(f.name)) throw new Error(`${where}: second TYPE for ${name}`);
        f.type = rest;
        typed.add(f.name);
      }
      return;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`${where}: not a sample: '${line}'`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`${where}: bad metric name '${name}'`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') [labels, i] = parseLabels(line, i, where);
    if (line[i] !== ' ') throw new Error(`${where}: expected a space before the value`);
    const parts = line.slice(i + 1).split(' ');
    if (parts.length > 2 || parts[0] === '')
      throw new Error(`${where}: bad value part '${line.slice(i + 1)}'`);
    const value = parseValue(parts[0]!, where);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) throw new Error(`${where}: bad timestamp`);
    let f = familyOf(name, families);
    if (!f) {
      f = { name, type: 'untyped', help: undefined, samples: [] };
      families.set(name, f);
    }
    if (closed.has(f.name)) throw new Error(`${where}: family ${f.name} continues after another one`);
    if (current && current !== f) closed.add(current.name);
    current = f;
    if (f.type === 'histogram' && name === f.name)
      throw new Error(`${where}: bare sample of histogram ${name}`);
    if (f.type === 'histogram' && name.endsWith('_bucket') && labels.le === undefined)
      throw new Error(`${where}: bucket without le`);
    const key = seriesKey(name, labels);
    if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
    series.add(key);
    f.samples.push({ name, labels, value });
  });
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

function checkHistogram(f: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const k = seriesKey(f.name, s.labels, 'le');
    const g = groups.get(k) ?? { buckets: [] };
    groups.set(k, g);
    if (s.name.endsWith('_bucket')) g.buckets.push([parseValue(s.labels.le!, `${f.name} le`), s.value]);
    else if (s.name.endsWith('_sum')) g.sum = s.value;
    else g.count = s.value;
  }
  for (const [k, g] of groups) {
    if (g.sum === undefined || g.count === undefined) throw new Error(`${k}: _sum or _count missing`);
    if (!g.buckets.length) throw new Error(`${k}: no buckets`);
    for (let i = 1; i < g.buckets.length; i++) {
      if (!(g.buckets[i]![0] > g.buckets[i - 1]![0])) throw new Error(`${k}: le bounds not increasing`);
      if (g.buckets[i]![1] < g.buckets[i - 1]![1]) throw new Error(`${k}: buckets not cumulative`);
    }
    const last = g.buckets.at(-1)!;
    if (last[0] !== Number.POSITIVE_INFINITY) throw new Error(`${k}: no +Inf bucket`);
    if (last[1] !== g.count)
      throw new Error(`${k}: +Inf bucket (${last[1]}) differs from _count (${g.count})`);
  }
}

/** The value of one series (labels must match exactly), or undefined. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const f = familyOf(name, families);
  const want = seriesKey(name, labels);
  return f?.samples.find((s) => s.name === name && seriesKey(s.name, s.labels) === want)?.value;
}
