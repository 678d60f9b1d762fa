/**
 * Validation of a workflow: the parser's structural problems, then meaning — unknown targets,
 * invalid expressions, unreachable tasks, loops that can never end, impossible joins, unknown
 * actions and inputs that do not match the target action's parameters. Each problem names the task,
 * the path and what is wrong; `error`s make the workflow unusable, `warning`s are worth a look.
 */
import { validateAgainst } from '../domain/json-schema.ts';
import {
  isPlainObject,
  isSpecialTarget,
  type JsonObject,
  parseWorkflow,
  suggest,
  type TaskDefinition,
  type WorkflowDefinition,
  type WorkflowProblem,
} from './definition.ts';
import {
  collectTemplates,
  conditionProblem,
  expressionText,
  isTemplate,
  templateProblem,
} from './expressions.ts';
import { parametersToSchema } from './file-format.ts';
import { inboundOf, startTasks } from './graph.ts';

/**
 * What the validator knows about an action: its parameter schema; `undefined` when the action does
 * not exist; `'unknown-pack'` when its pack is not installed (yet), which is only a warning.
 */
export type ActionLookup = (
  actionRef: string,
) => { paramSchema?: Record<string, unknown> | null } | undefined | 'unknown-pack';

export interface ValidateOptions {
  lookupAction?: ActionLookup;
  /** Actions run as inquiries (default `core.ask`); their `response_schema` is checked. */
  inquiryActions?: readonly string[];
}

export interface ValidationResult {
  /** True when there is no error (warnings allowed). */
  ok: boolean;
  problems: WorkflowProblem[];
  definition?: WorkflowDefinition;
}

const ONE_EXPRESSION = /^\s*\{\{(?:(?!\{\{|\}\})[\s\S])*\}\}\s*$/;
const ALWAYS = new Set(['true', 'True', '{{ true }}', '{{true}}', '{{ True }}']);

/** Parses and validates a workflow given as a plain object (parsed YAML or JSON). */
export function validateWorkflow(raw: unknown, opts: ValidateOptions = {}): ValidationResult {
  const parsed = parseWorkflow(raw);
  if (!parsed.ok) return { ok: false, problems: parsed.problems };
  const problems = [...parsed.problems, ...validateDefinition(parsed.definition, opts)];
  return { ok: !problems.some((p) => p.severity === 'error'), problems, definition: parsed.definition };
}

/**
 * Validates a workflow as the API receives it: `definition` (vars, tasks, output_map) and
 * `param_schema`. Problem paths name those fields (`definition.tasks[0].action`, `param_schema.x`).
 */
export function validateWorkflowResource(
  resource: { param_schema?: Record<string, unknown> | null; definition: unknown },
  opts: ValidateOptions = {},
): ValidationResult {
  if (!isPlainObject(resource.definition))
    return {
      ok: false,
      problems: [{ path: 'definition', message: 'must be a mapping with a tasks list', severity: 'error' }],
    };
  const raw: JsonObject = { ...resource.definition };
  delete raw.parameters;
  if (resource.param_schema) raw.parameters = resource.param_schema;
  const r = validateWorkflow(raw, opts);
  const rename = (path: string) =>
    path === 'parameters' || path.startsWith('parameters.') || path.startsWith('parameters[')
      ? `param_schema${path.slice('parameters'.length)}`
      : path
        ? `definition.${path}`
        : 'definition';
  r.problems = r.problems.map((p) => ({ ...p, path: rename(p.path) }));
  return r;
}

/** The semantic checks of a parsed definition. */
export function validateDefinition(def: WorkflowDefinition, opts: ValidateOptions = {}): WorkflowProblem[] {
  const out: WorkflowProblem[] = [];
  const err = (task: string | undefined, path: string, message: string) =>
    out.push(
      task === undefined ? { path, message, severity: 'error' } : { task, path, message, severity: 'error' },
    );
  const warn = (task: string | undefined, path: string, message: string) =>
    out.push(
      task === undefined
        ? { path, message, severity: 'warning' }
        : { task, path, message, severity: 'warning' },
    );
  const names = def.tasks.map((t) => t.name);
  const index = new Map(def.tasks.map((t, i) => [t.name, i]));
  const inquiry = new Set(opts.inquiryActions ?? ['core.ask']);

  // variables that exist: declared or published somewhere
  const knownVars = new Set(Object.keys(def.vars));
  for (const t of def.tasks) for (const tr of t.next) for (const p of tr.publish) knownVars.add(p.name);
  const paramProps = isPlainObject(def.parameters?.properties)
    ? Object.keys(def.parameters.properties)
    : undefined;

  const checkTemplate = (task: string | undefined, path: string, tpl: string, withItems: boolean) => {
    const p = templateProblem(tpl);
    if (p) {
      err(task, path, `invalid expression: ${p}`);
      return;
    }
    references(task, path, expressionText(tpl), withItems);
  };
  const checkCondition = (task: string | undefined, path: string, cond: string, withItems: boolean) => {
    const p = conditionProblem(cond);
    if (p) {
      err(task, path, `invalid condition: ${p}`);
      return;
    }
    if (isTemplate(cond) && !ONE_EXPRESSION.test(cond))
      warn(
        task,
        path,
        `a condition should be one expression such as "{{ succeeded() and result().ok }}"; text around or between {{ }} makes it a string, which is true whenever it is not empty`,
      );
    references(task, path, expressionText(cond), withItems);
  };
  const references = (task: string | undefined, path: string, text: string, withItems: boolean) => {
    for (const m of text.matchAll(
      /(?<![\w.])task\.([A-Za-z_][A-Za-z0-9_]*)|(?<![\w.])task\[\s*['"]([^'"]+)['"]\s*\]/g,
    )) {
      const name = m[1] ?? m[2]!;
      if (!index.has(name)) {
        const s = suggest(name, names);
        warn(
          task,
          path,
          `refers to task '${name}', which this workflow does not have${s ? ` (did you mean '${s}'?)` : ''}`,
        );
      }
    }
    for (const m of text.matchAll(/(?<![\w.])(?:vars|workflow)\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
      const name = m[1]!;
      if (!knownVars.has(name)) {
        const s = suggest(name, [...knownVars]);
        warn(
          task,
          path,
          `refers to variable '${name}', which is neither in vars nor published by any task${s ? ` (did you mean '${s}'?)` : ''}`,
        );
      }
    }
    if (paramProps)
      for (const m of text.matchAll(/(?<![\w.])parameters\.([A-Za-z_][A-Za-z0-9_]*)/g)) {
        const name = m[1]!;
        if (!paramProps.includes(name)) {
          const s = suggest(name, paramProps);
          warn(
            task,
            path,
            `refers to parameter '${name}', which the parameters schema does not define${s ? ` (did you mean '${s}'?)` : ''}`,
          );
        }
      }
    if (!withItems && task !== undefined && /(?<![\w.'"])(item|index)(?![\w'"(])/.test(text))
      warn(task, path, `uses 'item' or 'index', which only exist in a task with with_items`);
  };

  for (const [name, v] of Object.entries(def.vars))
    for (const t of collectTemplates(v, `vars.${name}`)) checkTemplate(undefined, t.path, t.template, false);
  if (def.outputMap)
    for (const [name, v] of Object.entries(def.outputMap))
      for (const t of collectTemplates(v, `output_map.${name}`))
        checkTemplate(undefined, t.path, t.template, false);

  def.tasks.forEach((task, i) => {
    const base = `tasks[${i}]`;
    const wi = task.withItems !== undefined;
    for (const t of collectTemplates(task.input, `${base}.input`))
      checkTemplate(task.name, t.path, t.template, wi);
    if (task.withItems) {
      const items = task.withItems.items;
      if (typeof items === 'string') {
        const p = conditionProblem(items);
        if (p) err(task.name, `${base}.with_items`, `invalid expression: ${p}`);
        else references(task.name, `${base}.with_items`, expressionText(items), false);
      } else
        for (const t of collectTemplates(items, `${base}.with_items`))
          checkTemplate(task.name, t.path, t.template, false);
    }
    if (task.retry?.when) checkCondition(task.name, `${base}.retry.when`, task.retry.when, wi);
    task.next.forEach((tr, j) => {
      const tp = `${base}.next[${j}]`;
      if (tr.when !== undefined) checkCondition(task.name, `${tp}.when`, tr.when, false);
      tr.publish.forEach((p) => {
        for (const t of collectTemplates(p.value, `${tp}.publish.${p.name}`))
          checkTemplate(task.name, t.path, t.template, false);
      });
      tr.do.forEach((target, k) => {
        if (isSpecialTarget(target) || index.has(target)) return;
        const s = suggest(target, [...names, 'fail', 'noop', 'retry']);
        err(
          task.name,
          `${tp}.do[${k}]`,
          `unknown task '${target}'${s ? ` (did you mean '${s}'?)` : ''}; a target is a task name or fail, noop, retry`,
        );
      });
      if (tr.do.includes('fail') && tr.do.includes('noop'))
        warn(task.name, `${tp}.do`, `'fail' and 'noop' together: the workflow fails`);
    });
    const inbound = inboundOf(def, task.name);
    if (task.join !== undefined) {
      if (typeof task.join === 'number' && task.join > inbound.length)
        err(
          task.name,
          `${base}.join`,
          `join waits for ${task.join} inbound branches but only ${inbound.length} task${inbound.length === 1 ? '' : 's'} lead${inbound.length === 1 ? 's' : ''} here (${inbound.join(', ') || 'none'}), so it can never start`,
        );
      else if (inbound.length < 2)
        warn(task.name, `${base}.join`, `join has no effect: only ${inbound.length} task leads here`);
    }
    if (def.ref !== undefined && task.action === def.ref)
      warn(task.name, `${base}.action`, `the workflow runs itself; make sure the recursion ends`);
    if (inquiry.has(task.action)) checkInquiryInput(task, base, err, warn);
    if (opts.lookupAction) checkAction(task, base, opts.lookupAction, err, warn);
  });

  // reachability from the start tasks (conditions ignored: every edge may be taken)
  const starts = startTasks(def);
  const seen = new Set<string>(starts);
  const queue = [...starts];
  const byName = new Map(def.tasks.map((t) => [t.name, t]));
  while (queue.length) {
    const t = byName.get(queue.shift()!);
    for (const tr of t?.next ?? [])
      for (const d of tr.do)
        if (byName.has(d) && !seen.has(d)) {
          seen.add(d);
          queue.push(d);
        }
  }
  def.tasks.forEach((t, i) => {
    if (!seen.has(t.name))
      err(
        t.name,
        `tasks[${i}]`,
        `task '${t.name}' can never run: no start task leads to it (start task${starts.length === 1 ? '' : 's'}: ${starts.join(', ')})`,
      );
  });

  for (const cycle of endlessLoops(def)) {
    const first = cycle[0]!;
    err(
      first,
      `tasks[${index.get(first)}].next`,
      `tasks ${[...cycle, first].join(' → ')} form a loop that never ends: every transition between them is unconditional; add a 'when' to leave it`,
    );
  }
  return out;
}

function checkInquiryInput(
  task: TaskDefinition,
  base: string,
  err: (t: string, p: string, m: string) => void,
  warn: (t: string, p: string, m: string) => void,
): void {
  const rs = task.input.response_schema;
  if (rs === undefined) {
    warn(task.name, `${base}.input`, `an inquiry without response_schema accepts any answer`);
    return;
  }
  if (typeof rs === 'string') return; // a template: checked when the task runs
  const r = parametersToSchema(rs);
  for (const p of r.problems)
    err(task.name, [`${base}.input.response_schema`, ...p.path.map(String)].join('.'), p.message);
}

function checkAction(
  task: TaskDefinition,
  base: string,
  lookup: ActionLookup,
  err: (t: string, p: string, m: string) => void,
  warn: (t: string, p: string, m: string) => void,
): void {
  const found = lookup(task.action);
  if (found === undefined) {
    err(task.name, `${base}.action`, `unknown action '${task.action}'`);
    return;
  }
  if (found === 'unknown-pack') {
    warn(
      task.name,
      `${base}.action`,
      `pack '${task.action.split('.')[0]}' is not installed; '${task.action}' is checked when the pack arrives`,
    );
    return;
  }
  const schema = found.paramSchema;
  if (!isPlainObject(schema)) return;
  const props: JsonObject = isPlainObject(schema.properties) ? schema.properties : {};
  const required = Array.isArray(schema.required) ? schema.required.filter((r) => typeof r === 'string') : [];
  for (const r of required) {
    const p = props[r];
    const hasDefault = isPlainObject(p) && p.default !== undefined;
    if (!(r in task.input) && !hasDefault)
      err(
        task.name,
        `${base}.input`,
        `action '${task.action}' needs parameter '${r}', which the input does not give`,
      );
  }
  const closed = schema.additionalProperties === false;
  for (const [k, v] of Object.entries(task.input)) {
    const p = props[k];
    if (p === undefined) {
      if (Object.keys(props).length === 0 && !closed) continue;
      const s = suggest(k, Object.keys(props));
      (closed ? err : warn)(
        task.name,
        `${base}.input.${k}`,
        `action '${task.action}' has no parameter '${k}'${s ? ` (did you mean '${s}'?)` : ''}`,
      );
      continue;
    }
    if (!isPlainObject(p) || hasTemplate(v)) continue;
    const issues = validateAgainst(p, structuredClone(v));
    for (const i of issues)
      err(task.name, `${base}.input.${k}${i.path === '/' ? '' : i.path.replaceAll('/', '.')}`, i.message);
  }
}

function hasTemplate(v: unknown): boolean {
  return collectTemplates(v, '').length > 0;
}

/**
 * Loops that can never end: strongly connected groups of tasks linked only by unconditional
 * transitions, none of them a join (a join may hold the loop until other branches arrive).
 */
function endlessLoops(def: WorkflowDefinition): string[][] {
  const byName = new Map(def.tasks.map((t) => [t.name, t]));
  const edges = new Map<string, string[]>();
  for (const t of def.tasks) {
    const out: string[] = [];
    for (const tr of t.next)
      if (tr.when === undefined || ALWAYS.has(tr.when.trim()))
        for (const d of tr.do) if (byName.has(d)) out.push(d);
    edges.set(t.name, out);
  }
  // Tarjan's strongly connected components
  let counter = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const groups: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const g: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        g.push(w);
      } while (w !== v);
      groups.push(g.reverse());
    }
  };
  for (const t of def.tasks) if (!idx.has(t.name)) visit(t.name);
  return groups.filter((g) => {
    const isLoop = g.length > 1 || (edges.get(g[0]!) ?? []).includes(g[0]!);
    return isLoop && !g.some((n) => byName.get(n)?.join !== undefined);
  });
}
