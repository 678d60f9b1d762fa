/**
 * Micro-benchmark of the expression engine: renders per second for cached templates.
 *   npx tsx bench/expr.bench.ts
 */
import { clearCache, compile, evaluate, render } from '../src/expr/index.ts';

const N = Number(process.env.N ?? 300_000);
const contexts = Array.from({ length: 1000 }, (_, i) => ({
  result: { count: i, name: `item-${i}`, tags: ['a', 'b', String(i % 7)], meta: { ok: i % 2 === 0 } },
  trigger: { severity: i % 3 === 0 ? 'critical' : 'info', host: `web-${i % 10}` },
}));

function measure(label: string, fn: (i: number) => unknown, n = N): number {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const rate = n / secs;
  console.log(`${label.padEnd(52)} ${Math.round(rate).toLocaleString('en-US').padStart(12)} /s`);
  return rate;
}

const typedBool = compile('{{ result.count > 3 }}');
const typedArith = compile('{{ result.count * 2 + 1 }}');
const typedObj = compile('{{ result.meta }}');
const text = compile('Host {{ trigger.host }} is {{ trigger.severity | upper }} ({{ result.count }})');
const filters = compile('{{ result.tags | join(",") }}');
const cond = compile('{{ trigger.severity == "critical" and result.count > 10 }}');
const params = {
  cmd: 'ping -c {{ result.count }} {{ trigger.host }}',
  timeout: '{{ result.count + 5 }}',
  literal: 'no template here',
  nested: { tags: '{{ result.tags }}', flag: '{{ result.meta.ok }}' },
};

console.log(`expression engine, ${N.toLocaleString('en-US')} renders per case, cached`);
const results: Record<string, number> = {};
results.typed_bool = measure('typed: {{ result.count > 3 }}', (i) => typedBool.render(contexts[i % 1000]!));
results.typed_arith = measure('typed: {{ result.count * 2 + 1 }}', (i) =>
  typedArith.render(contexts[i % 1000]!),
);
results.typed_object = measure('typed: {{ result.meta }} (object)', (i) =>
  typedObj.render(contexts[i % 1000]!),
);
results.condition = measure('typed: severity == "critical" and count > 10', (i) =>
  cond.render(contexts[i % 1000]!),
);
results.text = measure('text: Host {{ host }} is {{ sev | upper }} (…)', (i) =>
  text.render(contexts[i % 1000]!),
);
results.filter_join = measure('text: {{ tags | join(",") }}', (i) => filters.render(contexts[i % 1000]!));
results.evaluate = measure("evaluate('result.count > 3') (cache lookup)", (i) =>
  evaluate('result.count > 3', contexts[i % 1000]!),
);
results.compile_cached = measure("compile('{{ result.count > 3 }}') (cache hit)", () =>
  compile('{{ result.count > 3 }}'),
);
results.render_params = measure('render(params: 4 templates + 1 literal)', (i) =>
  render(params, contexts[i % 1000]!),
);
results.compile_uncached = measure(
  'compile, cache miss (distinct sources)',
  (i) => {
    if (i % 1000 === 0) clearCache();
    return compile(`{{ result.count > ${i} }}`);
  },
  20_000,
);
const target = 500_000;
const ok = results.typed_bool! >= target;
console.log(`\ntyped evaluation target ≥ ${target.toLocaleString('en-US')}/s: ${ok ? 'met' : 'NOT met'}`);
