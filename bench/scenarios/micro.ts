/** The pure micro-benchmarks (no database, no bus): the expression engine and the workflow engine. */
import { EXPR_TARGET_PER_SECOND, runExprBench } from '../expr.bench.ts';
import { round } from '../lib/stats.ts';
import { runEngineBench } from '../workflow-engine.bench.ts';
import { type Metric, metric, type Scenario } from './scenario.ts';

export const microScenarios: Scenario[] = [
  {
    name: 'expr',
    aliases: [],
    title: 'expression engine (cached templates, renders/s)',
    pure: true,
    async run() {
      const r = runExprBench(200_000);
      return Object.entries(r).map(([key, v]) =>
        metric(
          key,
          v.label,
          '/s',
          round(v.perSecond, 0),
          key === 'typed_bool' ? { kind: 'min', value: EXPR_TARGET_PER_SECOND } : undefined,
        ),
      );
    },
  },
  {
    name: 'engine',
    aliases: [],
    title: 'pure workflow engine (no database, no bus)',
    pure: true,
    async run() {
      const out: Metric[] = [];
      for (const [key, f] of Object.entries(runEngineBench())) {
        out.push(metric(key, f.label, 'ms', round(f.ms, 2)));
        out.push(metric(`${key}_per_step`, `${f.label}, per step`, 'µs', round((f.ms * 1000) / f.steps, 1)));
      }
      return out;
    },
  },
];
