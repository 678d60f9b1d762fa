/**
 * `npm run bench`: the platform's benchmark. Prints a table and writes every figure as JSON to
 * bench/results/<timestamp>.json.
 *
 *   npm run bench                                  every scenario, both backends, 3 runs each
 *   npm run bench -- --scenario a,b --backend embedded --runs 1
 *
 * Options:
 *   --scenario <names>   comma-separated: noop (a), latency (b), shell (c), api (d), wf-chain, wf-items,
 *                        wf-branches, expr, engine; `pipeline`, `workflows` and `micro` name groups
 *   --backend <b>        embedded | server | both (default both)
 *   --runs <n>           runs of each scenario, each on a fresh platform; the median is reported (default 3)
 *   --capacity <n>       ATTUNE_WORKER_CAPACITY of the platform (default: the platform's default)
 *   --quick              smaller sizes (a tenth of the events and items) for a fast look
 *   --log <level>        log level of the platform, to stderr (default warn)
 *   --profile            write a CPU profile of each run (platform start excluded) next to the JSON
 *                        (open it in Chrome DevTools or speedscope)
 *
 * The embedded backend is PGlite in a temporary directory with the in-process bus; the server backend
 * is a fresh PostgreSQL database (ATTUNE_TEST_DATABASE_URL's server) and RabbitMQ (ATTUNE_TEST_AMQP_URL,
 * in a virtual host of its own), every service in this one process. See docs/performance.md.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { probePostgres } from '../test/support/postgres.ts';
import { type Backend, type BenchPlatform, startBenchPlatform } from './lib/platform.ts';
import { median, round } from './lib/stats.ts';
import { microScenarios } from './scenarios/micro.ts';
import { DEFAULT_PIPELINE, pipelineScenarios } from './scenarios/pipeline.ts';
import { type Metric, meets, type Scenario } from './scenarios/scenario.ts';
import { DEFAULT_WORKFLOWS, workflowScenarios } from './scenarios/workflows.ts';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));

interface Options {
  scenarios: string[] | undefined;
  backends: Backend[];
  runs: number;
  capacity: number | undefined;
  quick: boolean;
  log: string;
  profile: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    scenarios: undefined,
    backends: ['embedded', 'server'],
    runs: 3,
    capacity: undefined,
    quick: false,
    log: 'warn',
    profile: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=')
      ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
      : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const int = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1)
        throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
      return n;
    };
    switch (flag) {
      case '--scenario':
      case '--scenarios':
        o.scenarios = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case '--backend': {
        const b = value();
        if (b === 'both') o.backends = ['embedded', 'server'];
        else if (b === 'embedded' || b === 'server') o.backends = [b];
        else throw new UsageError(`--backend must be embedded, server or both, got '${b}'`);
        break;
      }
      case '--runs':
        o.runs = int(value());
        break;
      case '--capacity':
        o.capacity = int(value());
        break;
      case '--quick':
        o.quick = true;
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--log':
        o.log = value();
        break;
      case '--help':
      case '-h':
        throw new UsageError('');
      default:
        throw new UsageError(`unknown option '${a}'`);
    }
  }
  return o;
}

function allScenarios(quick: boolean): { all: Scenario[]; groups: Record<string, string[]> } {
  const pipeline = pipelineScenarios(
    quick
      ? {
          ...DEFAULT_PIPELINE,
          noopEvents: 1000,
          shellEvents: 200,
          latencySeconds: 3,
          apiRequests: 100,
          apiRoundTrips: 30,
        }
      : DEFAULT_PIPELINE,
  );
  const wf = workflowScenarios(quick ? { ...DEFAULT_WORKFLOWS, items: 1000, repeats: 3 } : DEFAULT_WORKFLOWS);
  return {
    all: [...pipeline, ...wf, ...microScenarios],
    groups: {
      pipeline: pipeline.map((s) => s.name),
      workflows: wf.map((s) => s.name),
      micro: microScenarios.map((s) => s.name),
    },
  };
}

function select(names: string[] | undefined, quick: boolean): Scenario[] {
  const { all, groups } = allScenarios(quick);
  if (!names) return all;
  const chosen = new Set<string>();
  for (const n of names) {
    const group = groups[n];
    if (group) {
      for (const g of group) chosen.add(g);
      continue;
    }
    const s = all.find((x) => x.name === n || x.aliases.includes(n));
    if (!s) {
      const known = all.map((x) => (x.aliases.length ? `${x.name} (${x.aliases.join(', ')})` : x.name));
      throw new UsageError(
        `unknown scenario '${n}'; known: ${[...known, ...Object.keys(groups)].join(', ')}`,
      );
    }
    chosen.add(s.name);
  }
  return all.filter((s) => chosen.has(s.name));
}

interface RunRecord {
  scenario: string;
  backend: Backend | 'pure';
  run: number;
  seconds: number;
  loadavg: number[];
  metrics?: Metric[];
  error?: string;
  profile?: string;
}

interface Summary {
  scenario: string;
  title: string;
  backend: Backend | 'pure';
  metrics: (Metric & { runs: number[]; min: number; max: number; met?: boolean })[];
  errors: string[];
}

/** CPU profiling of this process through the inspector (no flag needed). */
async function startProfile(): Promise<() => Promise<object>> {
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 200 });
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    return profile;
  };
}

const loadavg = () => os.loadavg().map((x) => round(x, 2));

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: BENCH_DIR, encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

function summarise(s: Scenario, backend: Backend | 'pure', records: RunRecord[]): Summary {
  const ok = records.filter((r) => r.metrics);
  const first = ok[0]?.metrics ?? [];
  return {
    scenario: s.name,
    title: s.title,
    backend,
    errors: records.filter((r) => r.error).map((r) => r.error!),
    metrics: first.map((m) => {
      const runs = ok.map((r) => r.metrics!.find((x) => x.key === m.key)?.value ?? Number.NaN);
      const value = round(median(runs), 3);
      const out = { ...m, value, runs, min: Math.min(...runs), max: Math.max(...runs) };
      const met = meets(out);
      return met === undefined ? out : { ...out, met };
    }),
  };
}

const fmt = (n: number): string =>
  Number.isNaN(n) ? '—' : Math.abs(n) >= 1000 ? Math.round(n).toLocaleString('en-US') : String(n);

function cell(m: Summary['metrics'][number] | undefined, runs: number): string {
  if (!m) return '';
  const v = `${fmt(m.value)} ${m.unit}`.trim();
  return runs > 1 && m.min !== m.max ? `${v} (${fmt(m.min)}–${fmt(m.max)})` : v;
}

function printTable(scenarios: Scenario[], summaries: Summary[], runs: number): void {
  const t = new Table({
    head: ['scenario', 'figure', 'target (embedded)', 'embedded', 'server', 'met'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: true,
    colWidths: [22, 40, 12, 24, 24, 5],
  });
  for (const s of scenarios) {
    const mine = summaries.filter((x) => x.scenario === s.name);
    if (!mine.length) continue;
    const emb = mine.find((x) => x.backend === 'embedded' || x.backend === 'pure');
    const srv = mine.find((x) => x.backend === 'server');
    const keys = [...new Set(mine.flatMap((x) => x.metrics.map((m) => m.key)))];
    const errors = mine.flatMap((x) => x.errors.map((e) => `${x.backend}: ${e}`));
    keys.forEach((k, i) => {
      const e = emb?.metrics.find((m) => m.key === k);
      const sv = srv?.metrics.find((m) => m.key === k);
      const any = e ?? sv!;
      const target = any.target
        ? `${any.target.kind === 'min' ? '≥' : '≤'} ${fmt(any.target.value)} ${any.unit}`
        : '';
      t.push([
        i === 0 ? s.name : '',
        any.label,
        target,
        cell(e, runs),
        cell(sv, runs),
        e?.met === undefined ? '' : e.met ? 'yes' : 'NO',
      ]);
    });
    for (const err of errors) t.push([keys.length ? '' : s.name, { colSpan: 5, content: `error — ${err}` }]);
  }
  console.log(t.toString());
}

async function main(): Promise<void> {
  let o: Options;
  let scenarios: Scenario[];
  try {
    o = parseArgs(process.argv.slice(2));
    scenarios = select(o.scenarios, o.quick);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    const doc = fs.readFileSync(fileURLToPath(import.meta.url), 'utf8');
    const usage = doc.slice(doc.indexOf('/**') + 3, doc.indexOf('*/')).replace(/^ \*( |$)/gm, '');
    if (e.message) console.error(`bench: ${e.message}\n`);
    console.error(usage.trim());
    process.exitCode = e.message ? 2 : 0;
    return;
  }
  if (o.backends.includes('server') && scenarios.some((s) => !s.pure)) {
    const down = await probePostgres();
    if (down) {
      console.warn(`bench: PostgreSQL is unreachable (${down}); the server backend is skipped`);
      o.backends = o.backends.filter((b) => b !== 'server');
    }
  }
  const startedAt = new Date();
  console.log(
    `attune bench — ${startedAt.toISOString()}, node ${process.version}, ${os.cpus().length} CPUs, load average ${loadavg().join(' ')}`,
  );
  console.log(
    `backends: ${o.backends.join(', ')}; ${o.runs} run(s) per scenario, each on a fresh platform\n`,
  );
  const records: RunRecord[] = [];
  const summaries: Summary[] = [];
  for (const s of scenarios) {
    const backends: (Backend | 'pure')[] = s.pure ? ['pure'] : o.backends;
    for (const backend of backends) {
      const mine: RunRecord[] = [];
      for (let run = 1; run <= o.runs; run++) {
        process.stdout.write(`${s.name} [${backend}] run ${run}/${o.runs} … `);
        const t0 = performance.now();
        let p: BenchPlatform | undefined;
        const rec: RunRecord = { scenario: s.name, backend, run, seconds: 0, loadavg: [] };
        try {
          if (backend !== 'pure')
            p = await startBenchPlatform(backend, { workerCapacity: o.capacity, logLevel: o.log });
          const stopProfile = o.profile ? await startProfile() : undefined;
          try {
            rec.metrics = await s.run(p);
          } finally {
            if (stopProfile) {
              const file = path.join(
                BENCH_DIR,
                'results',
                `${startedAt.toISOString().replace(/[:.]/g, '-')}-${s.name}-${backend}-${run}.cpuprofile`,
              );
              fs.mkdirSync(path.dirname(file), { recursive: true });
              fs.writeFileSync(file, JSON.stringify(await stopProfile()));
              rec.profile = path.relative(process.cwd(), file);
            }
          }
          console.log(
            rec.metrics
              .filter((m) => m.target)
              .map((m) => `${m.label}: ${fmt(m.value)} ${m.unit}`)
              .join('; ') || 'done',
          );
        } catch (e) {
          rec.error = (e as Error).message;
          console.log(`FAILED: ${rec.error}`);
        } finally {
          await p
            ?.stop()
            .catch((e: unknown) =>
              console.warn(`bench: stopping the platform failed: ${(e as Error).message}`),
            );
          rec.seconds = round((performance.now() - t0) / 1000, 1);
          rec.loadavg = loadavg();
        }
        records.push(rec);
        mine.push(rec);
      }
      summaries.push(summarise(s, backend, mine));
    }
  }
  console.log('');
  printTable(scenarios, summaries, o.runs);
  const dir = path.join(BENCH_DIR, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  const doc = {
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    commit: gitCommit(),
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    cpus: os.cpus().length,
    cpu_model: os.cpus()[0]?.model,
    loadavg_at_end: loadavg(),
    options: o,
    summaries,
    runs: records,
  };
  fs.writeFileSync(file, `${JSON.stringify(doc, null, 2)}\n`);
  console.log(
    `\nload average at the end: ${loadavg().join(' ')}; figures written to ${path.relative(process.cwd(), file)}`,
  );
  if (records.some((r) => r.error)) process.exitCode = 1;
}

await main();
