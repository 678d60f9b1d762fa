/**
 * Template problems of a rule, found when it is saved rather than when an event arrives: every
 * criteria pattern, the expression criterion and every action parameter that is a template must
 * compile (syntax, known filters, no sandbox-refused access such as `constructor`). What only shows
 * at render time (a refused key computed at run time, a loop that does too much) is caught then.
 */
import type { Problem } from '../../domain/errors.ts';
import { check, isTemplate } from '../../expr/index.ts';
import { EXPRESSION_KEY } from '../../rules/operators-list.ts';

const pointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

function walk(v: unknown, at: string, out: Problem[], depth: number): void {
  if (out.length >= 20 || depth > 64) return;
  if (typeof v === 'string') {
    if (!isTemplate(v)) return;
    const r = check(v);
    if (!r.ok) out.push({ path: at, message: r.message });
    return;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) walk(v[i], `${at}/${i}`, out, depth + 1);
  } else if (v && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) walk(x, `${at}/${pointer(k)}`, out, depth + 1);
}

/** Problems of the templates in a criteria document (paths are JSON pointers from `/criteria`). */
export function criteriaTemplateProblems(criteria: Record<string, unknown> | undefined): Problem[] {
  const out: Problem[] = [];
  if (!criteria) return out;
  for (const [key, c] of Object.entries(criteria)) {
    const at = `/criteria/${pointer(key)}`;
    if (key === EXPRESSION_KEY) {
      if (typeof c === 'string') {
        const r = check(c);
        if (!r.ok) out.push({ path: at, message: r.message });
      }
      continue;
    }
    if (c && typeof c === 'object' && !Array.isArray(c)) {
      const pattern = (c as Record<string, unknown>).pattern;
      if ((c as Record<string, unknown>).type === 'search' && pattern && typeof pattern === 'object')
        for (const p of criteriaTemplateProblems(pattern as Record<string, unknown>))
          out.push({ ...p, path: `${at}/pattern${p.path!.slice('/criteria'.length)}` });
      else walk(pattern, `${at}/pattern`, out, 0);
    }
  }
  return out;
}

/** Problems of the templates in action parameters (paths from `/action_params`). */
export function paramTemplateProblems(params: Record<string, unknown> | undefined): Problem[] {
  const out: Problem[] = [];
  if (params) walk(params, '/action_params', out, 0);
  return out;
}
