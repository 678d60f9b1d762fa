/**
 * Micro-benchmark of the expression engine: renders per second for cached templates.
 * Run alone: npx tsx bench/expr.bench.ts (N=… renders per case) — or as the `expr` scenario of
 * `npm run bench`.
 */
import { pathToFileURL } from 'node:url';
import { clearCache, compile, evaluate, render } from '../src/expr/index.ts';

/** The typed-evaluation rate the engine is expected to reach. */
export const EXPR_TARGET_PER_SECOND = 500_000;

interface Case {
  key: string;
  label: string;
  fn: (i: number) => unknown;
  n?: number;
}

function measure(fn: (i: number) => unknown, n: number): number {
  for (let i = 0; i < Math.min(n, 20_000); i++) fn(i); // warm up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return n / secs;
}

function cases(): Case[] {
  const contexts = Array.from({ length: 1000 }, (_, i) => ({
    result: { count: i, name: `item-${i}`, tags: ['a', 'b', String(i % 7)], meta: { ok: i % 2 === 0 } },
    trigger: { severity: i % 3 === 0 ? 'critical' : 'info', host: `web-${i % 10}` },
  }));
  const ctx = (i: number) => contexts[i % 1000]!;
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
  return [
    { key: 'typed_bool', label: 'typed: {{ result.count > 3 }}', fn: (i) => typedBool.render(ctx(i)) },
    { key: 'typed_arith', label: 'typed: {{ result.count * 2 + 1 }}', fn: (i) => typedArith.render(ctx(i)) },
    { key: 'typed_object', label: 'typed: {{ result.meta }} (object)', fn: (i) => typedObj.render(ctx(i)) },
    {
      key: 'condition',
      label: 'typed: severity == "critical" and count > 10',
      fn: (i) => cond.render(ctx(i)),
    },
    { key: 'text', label: 'text: Host {{ host }} is {{ sev | upper }} (…)', fn: (i) => text.render(ctx(i)) },
    { key: 'filter_join', label: 'text: {{ tags | join(",") }}', fn: (i) => filters.render(ctx(i)) },
    {
      key: 'evaluate',
      label: "evaluate('result.count > 3') (cache lookup)",
      fn: (i) => evaluate('result.count > 3', ctx(i)),
    },
    {
      key: 'compile_cached',
      label: "compile('{{ result.count > 3 }}') (cache hit)",
      fn: () => compile('{{ result.count > 3 }}'),
    },
    {
      key: 'render_params',
      label: 'render(params: 4 templates + 1 literal)',
      fn: (i) => render(params, ctx(i)),
    },
    {
      key: 'compile_uncached',
      label: 'compile, cache miss (distinct sources)',
      fn: (i) => {
        if (i % 1000 === 0) clearCache();
        return compile(`{{ result.count > ${i} }}`);
      },
      n: 20_000,
    },
  ];
}

/** Renders per second by case (`n` renders per case, cache misses 20,000). */
export function runExprBench(n = 300_000): Record<string, { label: string; perSecond: number }> {
  const out: Record<string, { label: string; perSecond: number }> = {};
  for (const c of cases()) out[c.key] = { label: c.label, perSecond: measure(c.fn, c.n ?? n) };
  return out;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const n = Number(process.env.N ?? 300_000);
  console.log(`expression engine, ${n.toLocaleString('en-US')} renders per case, cached`);
  const results = runExprBench(n);
  for (const r of Object.values(results))
    console.log(`${r.label.padEnd(52)} ${Math.round(r.perSecond).toLocaleString('en-US').padStart(12)} /s`);
  const ok = (results.typed_bool?.perSecond ?? 0) >= EXPR_TARGET_PER_SECOND;
  console.log(
    `\ntyped evaluation target ≥ ${EXPR_TARGET_PER_SECOND.toLocaleString('en-US')}/s: ${ok ? 'met' : 'NOT met'}`,
  );
}
