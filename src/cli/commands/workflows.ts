/**
 * `attune workflow list|show|create|update|validate|delete|test`.
 *
 * Files are in the workflow file format of packs (`ref`, `label`, `parameters`, `output`, `vars`,
 * `tasks`, `output_map`; see docs/workflows.md). `validate` and `test` run offline through the
 * workflow library itself — no server, no login — so they fit in a CI job.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Workflow } from '../../services/api/resource-types.ts';
import type { WorkflowProblem } from '../../workflow/definition.ts';
import { act, argsOf, limitOf } from '../command.ts';
import type { Ctx } from '../context.ts';
import { CliError, EXIT_FAILURE, UsageError, withProblems } from '../errors.ts';
import { formatTime, splitList } from '../format.ts';
import { type LoadedDocument, readDocument } from '../input.ts';
import { printParams } from '../schema-view.ts';
import {
  type DefinitionFilters,
  definitionQuery,
  enabledColumn,
  refPath,
  withDefinitionFilters,
} from './definitions.ts';

async function list(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<DefinitionFilters>();
  const { items, total } = await ctx
    .api()
    .list<Workflow>('/api/v1/workflows', definitionQuery(o), limitOf(o.limit));
  ctx.out.list(
    items,
    [
      { header: 'REF', value: (w) => w.ref },
      { header: 'VERSION', value: (w) => w.version },
      { header: 'TASKS', value: (w) => (Array.isArray(w.definition.tasks) ? w.definition.tasks.length : '') },
      enabledColumn(ctx),
      { header: 'DESCRIPTION', value: (w) => w.description || w.label, flex: true },
    ],
    (w) => w.ref,
    { total, empty: 'no workflows found' },
  );
}

const asFile = async (w: Workflow) =>
  (await import('../../workflow/file-format.ts')).resourceToWorkflowFile({
    ref: w.ref,
    label: w.label,
    description: w.description,
    version: w.version,
    tags: w.tags,
    enabled: w.enabled,
    param_schema: w.param_schema,
    out_schema: w.out_schema,
    definition: w.definition,
  });

async function show(ctx: Ctx, cmd: Command): Promise<void> {
  const [ref] = argsOf<[string]>(cmd);
  const o = cmd.opts<{ source?: boolean }>();
  const w = await ctx.api().data<Workflow>('GET', refPath('/api/v1/workflows', ref));
  if (o.source) {
    const { stringify } = await import('yaml');
    ctx.out.write(stringify(await asFile(w), { lineWidth: 0 }));
    return;
  }
  ctx.out.item(
    w,
    (x) => x.ref,
    () => {
      const c = ctx.out.c;
      ctx.out.fields([
        ['ref', c.bold(w.ref)],
        ['label', w.label],
        ['description', w.description || null],
        ['version', w.version],
        ['enabled', w.enabled ? 'yes' : c.magenta('no')],
        ['tags', w.tags.length ? w.tags.join(', ') : undefined],
        ['updated', formatTime(w.updated_at)],
      ]);
      ctx.out.heading('parameters');
      printParams(ctx, w.param_schema);
      const tasks = Array.isArray(w.definition.tasks)
        ? (w.definition.tasks as Record<string, unknown>[])
        : [];
      ctx.out.heading(`tasks (${tasks.length})`);
      ctx.out.table(tasks, [
        { header: 'TASK', value: (t) => String(t.name ?? '') },
        { header: 'ACTION', value: (t) => String(t.action ?? '') },
        {
          header: 'NEXT',
          value: (t) =>
            Array.isArray(t.next)
              ? (t.next as Record<string, unknown>[])
                  .map((n) => (Array.isArray(n.do) ? n.do.join(', ') : typeof n.do === 'string' ? n.do : ''))
                  .filter(Boolean)
                  .join(' | ')
              : '',
          flex: true,
        },
      ]);
      ctx.out.print();
      ctx.out.print(c.dim(`its file: attune workflow show ${w.ref} --source`));
    },
  );
}

/** The API fields of a workflow file, or an error listing every problem of its format. */
async function resourceOf(
  doc: LoadedDocument,
  o: { pack?: string; ref?: string },
): Promise<Record<string, unknown>> {
  const { pointer, workflowFileToResource } = await import('../../workflow/file-format.ts');
  const { fields, problems } = workflowFileToResource(doc.value);
  if (problems.length) {
    const err = new CliError(
      `${doc.name} is not a valid workflow file (${problems.length} problem${problems.length > 1 ? 's' : ''})`,
    );
    err.lines = problems.map((p) => `${pointer(p.path)}: ${p.message}`);
    throw err;
  }
  const baseName =
    doc.name === 'standard input' ? undefined : path.basename(doc.name).replace(/\.(ya?ml|json)$/i, '');
  const ref = o.ref ?? fields.ref ?? (o.pack ? `${o.pack}.${fields.name ?? baseName}` : undefined);
  if (!ref)
    throw new UsageError(
      `${doc.name} has no 'ref'`,
      "add 'ref: pack.name' to the file, or give --pack (and --ref)",
    );
  const body: Record<string, unknown> = {
    ref,
    label: fields.label ?? fields.name ?? ref.slice(ref.indexOf('.') + 1),
    param_schema: fields.param_schema,
    out_schema: fields.out_schema,
    definition: fields.definition,
  };
  for (const k of ['description', 'version', 'tags', 'enabled'] as const)
    if (fields[k] !== undefined) body[k] = fields[k];
  return body;
}

/** The problems of a workflow file found by the library (errors first). */
async function problemsOf(value: unknown): Promise<WorkflowProblem[]> {
  const { validateWorkflow } = await import('../../workflow/validate.ts');
  const r = validateWorkflow(value);
  return [...r.problems].sort((a, b) => Number(a.severity !== 'error') - Number(b.severity !== 'error'));
}

const problemLine = (p: WorkflowProblem): string =>
  `${p.severity === 'error' ? 'error' : 'warning'}: ${p.task ? `task ${p.task}: ` : ''}${p.path ? `${p.path}: ` : ''}${p.message}`;

/** Refuses a file the library finds errors in, before anything is sent; warns about the rest. */
async function checkLocally(ctx: Ctx, doc: LoadedDocument): Promise<void> {
  const problems = await problemsOf(doc.value);
  const errors = problems.filter((p) => p.severity === 'error');
  if (errors.length) {
    const err = new CliError(
      `${doc.name} has ${errors.length} error${errors.length > 1 ? 's' : ''}; nothing was sent`,
    );
    err.lines = problems.map(problemLine);
    throw err;
  }
  for (const p of problems) ctx.out.warn(problemLine(p).replace(/^warning: /, ''));
}

async function create(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{ file: string; pack?: string; ref?: string }>();
  const doc = await readDocument(o.file);
  await checkLocally(ctx, doc);
  const body = await resourceOf(doc, o);
  let w: Workflow;
  try {
    w = await ctx.api().data<Workflow>('POST', '/api/v1/workflows', { body });
  } catch (e) {
    throw withProblems(e);
  }
  ctx.out.item(
    w,
    (x) => x.ref,
    () => ctx.out.print(`Created workflow ${ctx.out.c.bold(w.ref)} ${w.version}`),
  );
}

async function update(ctx: Ctx, cmd: Command): Promise<void> {
  const [given] = argsOf<[string | undefined]>(cmd);
  const o = cmd.opts<{ file: string; pack?: string }>();
  const doc = await readDocument(o.file);
  await checkLocally(ctx, doc);
  const { ref, ...body } = await resourceOf(doc, { ...o, ref: given });
  let w: Workflow;
  try {
    w = await ctx.api().data<Workflow>('PUT', refPath('/api/v1/workflows', String(ref)), { body });
  } catch (e) {
    throw withProblems(e);
  }
  ctx.out.item(
    w,
    (x) => x.ref,
    () => ctx.out.print(`Updated workflow ${ctx.out.c.bold(w.ref)} ${w.version}`),
  );
}

async function remove(ctx: Ctx, cmd: Command): Promise<void> {
  const [refs] = argsOf<[string[]]>(cmd);
  for (const ref of refs) {
    await ctx.api().call('DELETE', refPath('/api/v1/workflows', ref));
    if (ctx.out.human) ctx.out.print(`Deleted workflow ${ref}`);
    else if (ctx.out.format === 'quiet') ctx.out.print(ref);
  }
  if (!ctx.out.human && ctx.out.format !== 'quiet') ctx.out.doc({ deleted: refs });
}

async function validate(ctx: Ctx, cmd: Command): Promise<number> {
  const o = cmd.opts<{ file: string[] }>();
  let failed = 0;
  const results: { file: string; ok: boolean; problems: WorkflowProblem[] }[] = [];
  for (const file of o.file) {
    const doc = await readDocument(file);
    const problems = await problemsOf(doc.value);
    const ok = !problems.some((p) => p.severity === 'error');
    if (!ok) failed++;
    results.push({ file: doc.name, ok, problems });
    if (ctx.out.human) {
      const c = ctx.out.c;
      const errors = problems.filter((p) => p.severity === 'error').length;
      const warnings = problems.length - errors;
      ctx.out.print(
        ok
          ? `${c.green('✔')} ${doc.name} is valid${warnings ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}`
          : `${c.red('✖')} ${doc.name}: ${errors} error${errors > 1 ? 's' : ''}${warnings ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''}`,
      );
      for (const p of problems) {
        const line = problemLine(p);
        ctx.out.print(`  ${p.severity === 'error' ? c.red(line) : c.yellow(line)}`);
      }
    } else if (ctx.out.format === 'quiet') {
      if (!ok) ctx.out.print(doc.name);
    }
  }
  if (ctx.out.format === 'json' || ctx.out.format === 'yaml')
    ctx.out.doc(results.length === 1 ? results[0] : results);
  return failed ? EXIT_FAILURE : 0;
}

async function test(ctx: Ctx, cmd: Command): Promise<number> {
  const o = cmd.opts<{ file: string; case?: string; roundTrip?: boolean }>();
  const { parseRehearsalSpec, runRehearsalSpec } = await import('../../workflow/rehearse-spec.ts');
  const specDoc = await readDocument(o.file);
  const parsed = parseRehearsalSpec(specDoc.value);
  if (!parsed.ok) {
    const err = new CliError(`${specDoc.name} is not a valid rehearsal spec`);
    err.lines = parsed.problems.map(problemLine);
    throw err;
  }
  const spec = parsed.spec;
  let definition: unknown;
  if (spec.workflow !== undefined) {
    const wfPath = path.resolve(specDoc.dir, spec.workflow);
    if (!fs.existsSync(wfPath))
      throw new CliError(`the spec's workflow ${spec.workflow} does not exist (looked at ${wfPath})`);
    definition = (await readDocument(wfPath)).value;
  }
  if (o.case !== undefined) {
    const wanted = new Set(splitList(o.case));
    const unknown = [...wanted].filter((n) => !spec.cases.some((c) => c.name === n));
    if (unknown.length)
      throw new UsageError(
        `no case named ${unknown.map((n) => `'${n}'`).join(', ')} in ${specDoc.name}`,
        `its cases: ${spec.cases.map((c) => c.name).join(', ')}`,
      );
    spec.cases = spec.cases.filter((c) => wanted.has(c.name));
  }
  const result = runRehearsalSpec(spec, { definition, round_trip: !!o.roundTrip });
  if (ctx.out.format === 'json' || ctx.out.format === 'yaml') ctx.out.doc(result);
  else if (ctx.out.format === 'quiet') {
    for (const c of result.cases) if (!c.passed) ctx.out.print(c.name);
  } else {
    const c = ctx.out.c;
    for (const k of result.cases) {
      const r = k.report;
      const seq = r.tasks.length ? r.tasks.join(' → ') : '(no task ran)';
      ctx.out.print(`${k.passed ? c.green('✔') : c.red('✖')} ${k.name}  ${c.dim(`${r.status}: ${seq}`)}`);
      if (!k.passed) {
        for (const m of r.mismatches) ctx.out.print(`    ${c.red(m)}`);
        for (const p of r.problems) ctx.out.print(`    ${problemLine(p)}`);
        if (r.error) ctx.out.print(`    ${c.dim(`workflow error: ${r.error}`)}`);
      }
    }
    const passed = result.cases.filter((k) => k.passed).length;
    const failedN = result.cases.length - passed;
    ctx.out.print();
    ctx.out.print(
      `${failedN ? c.red(`${failedN} failed`) : c.green('all passed')}: ${passed} of ${result.cases.length} case${result.cases.length === 1 ? '' : 's'} passed`,
    );
  }
  return result.passed ? 0 : EXIT_FAILURE;
}

export function registerWorkflowCommands(program: Command): void {
  const wf = program.command('workflow').alias('wf').description('manage, validate and rehearse workflows');
  withDefinitionFilters(wf.command('list').alias('ls').description('list workflows'), 'workflows').action(
    act(list),
  );
  wf.command('show')
    .alias('get')
    .argument('<ref>')
    .description('show a workflow: parameters and tasks')
    .option('--source', 'print it in the workflow file format (YAML), ready to edit and `update -f`')
    .action(act(show));
  wf.command('create')
    .description('create a workflow from a workflow file (checked locally first)')
    .requiredOption('-f, --file <file>', 'the workflow file, YAML or JSON (- for stdin)')
    .option(
      '-p, --pack <ref>',
      "its pack, when the file has no 'ref' (the name is the file's, or its 'name')",
    )
    .option('--ref <ref>', 'its ref, when the file has none')
    .action(act(create));
  wf.command('update')
    .argument('[ref]', "the workflow (default: the file's ref)")
    .description('replace a workflow with the content of a workflow file')
    .requiredOption('-f, --file <file>', 'the workflow file (- for stdin)')
    .option('-p, --pack <ref>', "its pack, when the file has no 'ref'")
    .action(act(update));
  wf.command('validate')
    .description('check workflow files offline (no server needed): structure, expressions, graph')
    .requiredOption('-f, --file <files...>', 'workflow files (- for stdin)')
    .addHelpText('after', '\nExit code 0 when every file is valid (warnings allowed), 1 otherwise.')
    .action(act(validate));
  wf.command('delete').alias('rm').argument('<ref...>').description('delete workflows').action(act(remove));
  wf.command('test')
    .description('rehearse a workflow offline against a test spec: mocked task results, expected outcome')
    .requiredOption(
      '-f, --file <spec>',
      'the rehearsal spec (YAML): workflow, cases with mocks and expectations',
    )
    .option('--case <names>', 'only these cases (comma-separated)')
    .option('--round-trip', 'serialise the engine state between every step (proves it survives a restart)')
    .addHelpText(
      'after',
      '\nA spec:\n' +
        '  workflow: ../workflows/deploy.yaml\n' +
        '  cases:\n' +
        '    - name: happy path\n' +
        '      parameters: {app: web}\n' +
        '      mocks: {build: {result: {code: 0}}}\n' +
        '      expect: {tasks: [build, deploy], status: succeeded}\n\n' +
        'Exit code 0 when every case passes, 1 otherwise. See docs/workflows.md.',
    )
    .action(act(test));
}
