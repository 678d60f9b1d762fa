/**
 * Reading a pack directory into definitions, validating everything on the way and collecting every
 * problem (file, line, path, message) instead of stopping at the first. Nothing here touches the
 * store: references to other packs are returned as `external` for `checkAgainstStore`.
 */
import fs from 'node:fs';
import path from 'node:path';
import semver from 'semver';
import type { Problem } from '../domain/errors.ts';
import { validateAgainst } from '../domain/json-schema.ts';
import { isName, isRef } from '../domain/refs.ts';
import { isRunner, RUNNER_REFS } from '../domain/runners.ts';
import { criteriaProblems } from '../rules/operators-list.ts';
import { SCRIPT_RUNNERS } from '../services/api/definitions.ts';
import { SENSOR_RUNNERS } from '../services/api/routes/sensors.ts';
import {
  type FormatProblem,
  fromPointer,
  type JsonSchema,
  type PathSegment,
  parametersToSchema,
  suggest,
  type WorkflowDefinition,
  workflowFileToResource,
} from '../workflow/file-format.ts';
import { validateWorkflow } from '../workflow/validate.ts';
import {
  ACTION_FILE,
  PACK_FILE,
  RULE_FILE,
  SENSOR_FILE,
  shapeProblems,
  TRIGGER_FILE,
} from './file-schemas.ts';
import { listTree, type TreeFile } from './tree.ts';
import { YamlSource } from './yaml-source.ts';

type Obj = Record<string, unknown>;

export interface PackMeta {
  ref: string;
  label: string;
  description: string;
  version: string;
  author: string | null;
  email: string | null;
  tags: string[];
  /** As written: `name` or `name@range`. */
  dependencies: string[];
  confSchema: JsonSchema | null;
  /** The pack's configuration from pack.yaml, with the schema's defaults applied. */
  config: Obj;
  system: boolean;
}

interface Located {
  /** The definition file, relative to the pack root. */
  file: string;
}

export interface ActionDef extends Located {
  ref: string;
  name: string;
  label: string;
  description: string;
  runner: string;
  entryPoint: string;
  paramSchema: JsonSchema;
  outSchema: JsonSchema | null;
  timeoutSeconds: number | null;
  retryPolicy: Obj | null;
  concurrencyPolicy: Obj | null;
  tags: string[];
  enabled: boolean;
  meta: Obj;
}

export interface WorkflowDef extends Located {
  ref: string;
  name: string;
  label: string;
  description: string;
  version: string;
  paramSchema: JsonSchema | null;
  outSchema: JsonSchema | null;
  definition: WorkflowDefinition;
  tags: string[];
  enabled: boolean;
}

export interface TriggerDef extends Located {
  ref: string;
  name: string;
  label: string;
  description: string;
  paramSchema: JsonSchema | null;
  payloadSchema: JsonSchema | null;
  tags: string[];
  enabled: boolean;
}

export interface SensorDef extends Located {
  ref: string;
  name: string;
  label: string;
  description: string;
  runner: string;
  entryPoint: string;
  triggerRefs: string[];
  config: Obj;
  pollIntervalSeconds: number | null;
  tags: string[];
  enabled: boolean;
}

export interface RuleDef extends Located {
  ref: string;
  name: string;
  label: string;
  description: string;
  triggerRef: string;
  triggerParams: Obj;
  criteria: Obj;
  actionRef: string;
  actionParams: Obj;
  tags: string[];
  enabled: boolean;
}

export interface LoadedPack {
  meta: PackMeta;
  actions: ActionDef[];
  workflows: WorkflowDef[];
  triggers: TriggerDef[];
  sensors: SensorDef[];
  rules: RuleDef[];
  files: TreeFile[];
}

/** A reference from this pack to an action or trigger type of another pack. */
export interface ExternalRef {
  kind: 'action' | 'trigger';
  ref: string;
  source: YamlSource;
  path: PathSegment[];
  /** Parameters given to it, checked against its schema once it is found. */
  params?: { value: Obj; path: PathSegment[] };
  /** What refers: a rule, a sensor or a workflow task. */
  from: 'rule' | 'sensor' | 'task';
}

export interface LoadResult {
  /** Undefined when anything is wrong (see `problems`). */
  pack: LoadedPack | undefined;
  /** The pack's ref, when pack.yaml names a valid one (even if other things are wrong). */
  ref: string | undefined;
  problems: Problem[];
  warnings: Problem[];
  external: ExternalRef[];
  /** Parsed `dependencies`: pack ref → semver range ('*' when none). */
  dependencies: Map<string, { range: string; source: YamlSource; path: PathSegment[] }>;
}

export interface LoadOptions {
  /** The pack's files (listed from `root` when not given). */
  files?: TreeFile[];
  /** Accept `system: true` (only packs shipped with the platform). */
  allowSystem?: boolean;
}

const EMPTY_PARAMS: JsonSchema = { type: 'object', properties: {}, additionalProperties: false };

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isTemplate = (v: unknown): boolean => typeof v === 'string' && v.includes('{{');
const humanize = (name: string): string => {
  const s = name.replace(/[_.-]+/g, ' ').trim();
  return s ? s[0]!.toUpperCase() + s.slice(1) : name;
};

/** Parses and validates the pack at `root`. */
export function loadPack(root: string, opts: LoadOptions = {}): LoadResult {
  return new PackReader(root, opts).read();
}

class PackReader {
  readonly root: string;
  readonly files: TreeFile[];
  readonly fileSet: Set<string>;
  readonly problems: Problem[] = [];
  readonly warnings: Problem[] = [];
  readonly external: ExternalRef[] = [];
  readonly dependencies: LoadResult['dependencies'] = new Map();
  /** Refs of definition files that could not be read: references to them are not reported again. */
  readonly broken = new Set<string>();
  readonly opts: LoadOptions;
  packRef = 'pack';
  ref: string | undefined;

  constructor(root: string, opts: LoadOptions) {
    this.root = root;
    this.opts = opts;
    this.files = opts.files ?? listTree(root);
    this.fileSet = new Set(this.files.map((f) => f.path));
  }

  read(): LoadResult {
    const done = (pack: LoadedPack | undefined): LoadResult => ({
      pack: this.problems.length ? undefined : pack,
      ref: this.ref,
      problems: sortProblems(this.problems),
      warnings: sortProblems(this.warnings),
      external: this.external,
      dependencies: this.dependencies,
    });
    if (!this.fileSet.has('pack.yaml')) {
      const alt = this.fileSet.has('pack.yml') ? ' (found pack.yml: rename it to pack.yaml)' : '';
      this.problems.push({
        file: 'pack.yaml',
        path: '/',
        message: `a pack needs a pack.yaml at its root${alt}`,
      });
      return done(undefined);
    }
    const meta = this.readMeta();
    if (meta) {
      this.packRef = meta.ref;
      this.ref = meta.ref;
    }

    const actions = this.each('actions', (src, v) => this.readAction(src, v));
    const workflows = this.each('workflows', (src, v) => this.readWorkflow(src, v, meta?.version ?? '1.0.0'));
    const triggers = this.each('triggers', (src, v) => this.readTrigger(src, v));
    const sensors = this.each('sensors', (src, v) => this.readSensor(src, v));
    const rules = this.each('rules', (src, v) => this.readRule(src, v));

    this.unique('action', [...actions, ...workflows]);
    this.unique('trigger', triggers);
    this.unique('sensor', sensors);
    this.unique('rule', rules);
    this.crossCheck(actions, workflows, triggers, sensors, rules);

    if (!meta) return done(undefined);
    return done({
      meta,
      actions: actions.map((a) => a.def),
      workflows: workflows.map((w) => w.def),
      triggers: triggers.map((t) => t.def),
      sensors: sensors.map((s) => s.def),
      rules: rules.map((r) => r.def),
      files: this.files,
    });
  }

  // ───────────────────────────── files ─────────────────────────────

  source(file: string): YamlSource | undefined {
    let text: string;
    try {
      text = fs.readFileSync(path.join(this.root, file), 'utf8');
    } catch (e) {
      this.problems.push({ file, path: '/', message: `cannot read: ${(e as Error).message}` });
      return undefined;
    }
    const src = new YamlSource(file, text);
    if (src.problems.length) {
      this.problems.push(...src.problems);
      return undefined;
    }
    return src;
  }

  each<T>(folder: string, read: (src: YamlSource, v: Obj) => T | undefined): (T & Parsed)[] {
    const out: (T & Parsed)[] = [];
    const defs = this.files
      .map((f) => f.path)
      .filter((p) => p.startsWith(`${folder}/`) && !p.slice(folder.length + 1).includes('/'))
      .filter((p) => /\.ya?ml$/i.test(p));
    for (const file of defs) {
      const src = this.source(file);
      const stem = path.posix.basename(file).replace(/\.ya?ml$/i, '');
      if (!src) {
        this.broken.add(`${this.packRef}.${stem}`);
        continue;
      }
      if (!isObject(src.value)) {
        this.broken.add(`${this.packRef}.${stem}`);
        this.problems.push(src.problem([], 'a definition file must hold one mapping (name, description, …)'));
        continue;
      }
      const before = this.problems.length;
      const def = read(src, src.value);
      if (def !== undefined) out.push({ ...def, src, ok: this.problems.length === before } as T & Parsed);
    }
    return out;
  }

  /** The entity name of a definition file: its `name`, the name part of its `ref`, or the file name. */
  nameOf(src: YamlSource, v: Obj): string {
    const stem = path.posix.basename(src.file).replace(/\.ya?ml$/i, '');
    let name = typeof v.name === 'string' ? v.name : undefined;
    if (typeof v.ref === 'string' && this.ref) {
      const prefix = `${this.packRef}.`;
      if (!v.ref.startsWith(prefix))
        this.problems.push(
          src.problem(['ref'], `ref '${v.ref}' must start with the pack's ref ('${prefix}')`),
        );
      else {
        const fromRef = v.ref.slice(prefix.length);
        if (name !== undefined && name !== fromRef)
          this.problems.push(src.problem(['ref'], `ref '${v.ref}' does not match name '${name}'`));
        name ??= fromRef;
      }
    }
    name ??= stem;
    if (!isRef(`${this.packRef}.${name}`))
      this.problems.push(
        src.problem(
          v.name !== undefined ? ['name'] : [],
          `'${name}' is not a valid name (letters, digits, '_', '-', '.'; starting with a letter, digit or '_')`,
        ),
      );
    return name;
  }

  /** `x` → `<this pack>.x`; refs are kept. */
  resolve(refOrName: string): string {
    return refOrName.includes('.') ? refOrName : `${this.packRef}.${refOrName}`;
  }

  shape(src: YamlSource, schema: Obj, v: Obj): void {
    this.problems.push(...src.fromFormat(shapeProblems(schema, v)));
  }

  /** A schema field; `object` for parameters and config (an object, closed in the flat form). */
  schemaField(src: YamlSource, v: Obj, key: string, object: boolean): JsonSchema | null {
    const r = parametersToSchema(v[key], { at: [key], object, closed: object });
    this.problems.push(...src.fromFormat(r.problems));
    return r.schema;
  }

  // ───────────────────────────── pack.yaml ─────────────────────────────

  readMeta(): PackMeta | undefined {
    const src = this.source('pack.yaml');
    if (!src) return undefined;
    const v = src.value;
    if (!isObject(v)) {
      this.problems.push(src.problem([], 'pack.yaml must be a mapping (ref, label, version, …)'));
      return undefined;
    }
    this.shape(src, PACK_FILE, v);
    const ref = typeof v.ref === 'string' && isName(v.ref) ? v.ref : undefined;
    if (typeof v.version === 'string' && semver.valid(v.version) !== v.version)
      this.problems.push(
        src.problem(
          ['version'],
          `version '${v.version}' is not a semantic version (MAJOR.MINOR.PATCH, e.g. 1.0.0)`,
        ),
      );
    if (v.system === true && !this.opts.allowSystem)
      this.problems.push(src.problem(['system'], 'only the packs shipped with Attune are system packs'));

    const deps: string[] = Array.isArray(v.dependencies)
      ? v.dependencies.filter((d): d is string => typeof d === 'string')
      : [];
    (Array.isArray(v.dependencies) ? v.dependencies : []).forEach((d, i) => {
      if (typeof d !== 'string') return;
      const at = ['dependencies', i];
      const m = /^([^@\s]+)(?:@(.+))?$/.exec(d.trim());
      const depRef = m?.[1];
      const range = m?.[2]?.trim() ?? '*';
      if (!depRef || !isName(depRef)) {
        this.problems.push(
          src.problem(at, `'${d}' is not a dependency ('pack' or 'pack@range', e.g. 'aws@^1.2')`),
        );
        return;
      }
      if (semver.validRange(range) === null) {
        this.problems.push(
          src.problem(at, `'${range}' is not a semantic-version range (e.g. ^1.2, >=2.0.0 <3)`),
        );
        return;
      }
      if (depRef === ref) {
        this.problems.push(src.problem(at, 'a pack cannot depend on itself'));
        return;
      }
      if (this.dependencies.has(depRef)) {
        this.problems.push(src.problem(at, `'${depRef}' is listed twice`));
        return;
      }
      this.dependencies.set(depRef, { range, source: src, path: at });
    });

    const confSchema = this.schemaField(src, v, 'config_schema', true);
    let config: Obj = isObject(v.config) ? structuredClone(v.config) : {};
    if (confSchema) {
      const issues = validateAgainst(confSchema, config);
      for (const i of issues)
        this.problems.push(
          src.problem(
            ['config', ...fromPointer(i.path)],
            `config ${i.path === '/' ? '' : `${i.path} `}${i.message} (see config_schema)`,
          ),
        );
    } else if (v.config !== undefined && v.config !== null && !isObject(v.config)) config = {};

    if (!ref) return undefined;
    return this.metaOf(ref, v, deps, confSchema, config);
  }

  metaOf(ref: string, v: Obj, deps: string[], confSchema: JsonSchema | null, config: Obj): PackMeta {
    return {
      ref,
      label: typeof v.label === 'string' && v.label.trim() ? v.label : humanize(ref),
      description: typeof v.description === 'string' ? v.description : '',
      version: typeof v.version === 'string' ? v.version : '0.0.0',
      author: typeof v.author === 'string' ? v.author : null,
      email: typeof v.email === 'string' ? v.email : null,
      tags: strings(v.tags),
      dependencies: deps,
      confSchema,
      config,
      system: v.system === true,
    };
  }

  // ───────────────────────────── actions ─────────────────────────────

  readAction(src: YamlSource, v: Obj): { def: ActionDef } {
    this.shape(src, ACTION_FILE, v);
    const name = this.nameOf(src, v);
    let runner = '';
    if (v.runner !== undefined && v.runner_type !== undefined)
      this.problems.push(src.problem(['runner_type'], "give either 'runner' or 'runner_type', not both"));
    const runnerKey = v.runner !== undefined ? 'runner' : 'runner_type';
    const given = v[runnerKey];
    if (given === undefined) this.problems.push(src.problem([], "missing required field 'runner'"));
    else if (typeof given === 'string') {
      runner = given;
      if (runner === 'workflow')
        this.problems.push(
          src.problem([runnerKey], "workflows are defined in the pack's workflows/ folder, not as actions"),
        );
      else if (!isRunner(runner)) {
        const choices = RUNNER_REFS.filter((r) => r !== 'workflow');
        const hint = suggest(runner, choices);
        this.problems.push(
          src.problem(
            [runnerKey],
            `unknown runner '${runner}'${hint ? ` (did you mean '${hint}'?)` : ''}; expected one of ${choices.join(', ')}`,
          ),
        );
      }
    }
    const paramSchema = this.schemaField(src, v, 'parameters', true) ?? EMPTY_PARAMS;
    const outSchema = this.schemaField(src, v, 'output_schema', false);
    const entryPoint = typeof v.entry_point === 'string' ? v.entry_point.trim() : '';
    if (SCRIPT_RUNNERS.includes(runner)) this.checkScript(src, 'actions', entryPoint, runner);
    else if (runner === 'local-shell-cmd') {
      const props = isObject(paramSchema.properties) ? paramSchema.properties : {};
      if (!entryPoint && !Object.hasOwn(props, 'cmd'))
        this.problems.push(
          src.problem(
            [],
            "runner 'local-shell-cmd' runs the command in entry_point, or the 'cmd' parameter: give one of them",
          ),
        );
    } else if (entryPoint && runner)
      this.warnings.push(
        src.problem(
          ['entry_point'],
          `runner '${runner}' does not use an entry_point; it is ignored`,
          'warning',
        ),
      );

    this.checkEnvParameters(src, v, paramSchema);
    const retry = isObject(v.retry) ? v.retry : null;
    if (
      retry &&
      typeof retry.delay === 'number' &&
      typeof retry.max_delay === 'number' &&
      retry.max_delay < retry.delay
    )
      this.problems.push(
        src.problem(['retry', 'max_delay'], 'retry.max_delay must not be smaller than retry.delay'),
      );
    const concurrency = isObject(v.concurrency) ? v.concurrency : null;
    if (concurrency && Array.isArray(concurrency.group_by)) {
      const props = isObject(paramSchema.properties) ? paramSchema.properties : {};
      concurrency.group_by.forEach((p, i) => {
        if (typeof p === 'string' && !Object.hasOwn(props, p))
          this.problems.push(
            src.problem(['concurrency', 'group_by', i], `'${p}' is not a parameter of this action`),
          );
      });
    }
    return {
      def: {
        file: src.file,
        ref: `${this.packRef}.${name}`,
        name,
        label: labelOf(v, name),
        description: typeof v.description === 'string' ? v.description : '',
        runner,
        entryPoint,
        paramSchema,
        outSchema,
        timeoutSeconds: typeof v.timeout === 'number' ? v.timeout : null,
        retryPolicy: retry,
        concurrencyPolicy: concurrency,
        tags: strings(v.tags),
        enabled: v.enabled !== false,
        meta: isObject(v.meta) ? v.meta : {},
      },
    };
  }

  /** `meta.env_parameters`: 'all-non-secret' or names of declared, non-secret parameters. */
  checkEnvParameters(src: YamlSource, v: Obj, schema: JsonSchema): void {
    const names = isObject(v.meta) ? v.meta.env_parameters : undefined;
    if (names === undefined || names === 'all-non-secret') return;
    const at = ['meta', 'env_parameters'];
    if (!Array.isArray(names)) {
      this.problems.push(
        src.problem(at, "env_parameters must be a list of parameter names, or 'all-non-secret'"),
      );
      return;
    }
    const props = isObject(schema.properties) ? schema.properties : {};
    names.forEach((n, i) => {
      const prop = typeof n === 'string' ? props[n] : undefined;
      if (typeof n !== 'string' || !isObject(prop))
        this.problems.push(src.problem([...at, i], `'${String(n)}' is not a parameter of this action`));
      else if (prop.secret === true)
        this.problems.push(
          src.problem([...at, i], `'${n}' is secret: secrets never go into the environment`),
        );
    });
  }

  /** A script entry point: a relative path, inside `<folder>/`, naming a file of the pack. */
  checkScript(src: YamlSource, folder: string, ep: string, runner: string): void {
    const at = ['entry_point'];
    if (!ep) {
      this.problems.push(src.problem([], `runner '${runner}' needs an entry_point (a script in ${folder}/)`));
      return;
    }
    if (ep.startsWith('/') || /^[A-Za-z]:/.test(ep)) {
      this.problems.push(src.problem(at, `entry_point must be a path relative to ${folder}/`));
      return;
    }
    if (ep.includes('\\') || ep.includes('\0') || ep.split('/').some((s) => s === '..')) {
      this.problems.push(
        src.problem(at, "entry_point must stay inside the pack (no '..', backslashes or NUL)"),
      );
      return;
    }
    const rel = path.posix.normalize(`${folder}/${ep}`);
    if (!this.fileSet.has(rel))
      this.problems.push(src.problem(at, `entry point '${ep}' not found: the pack has no file ${rel}`));
  }

  // ───────────────────────────── workflows ─────────────────────────────

  readWorkflow(src: YamlSource, v: Obj, packVersion: string): { def: WorkflowDef } {
    const r = workflowFileToResource(v);
    this.problems.push(...src.fromFormat(r.problems));
    const name = this.nameOf(src, v);
    this.checkWorkflow(src, { ...v, ref: `${this.packRef}.${name}` }, r.problems);
    const f = r.fields;
    return {
      def: {
        file: src.file,
        ref: `${this.packRef}.${name}`,
        name,
        label: f.label ?? humanize(name),
        description: f.description ?? '',
        version: f.version ?? packVersion,
        paramSchema: f.param_schema,
        outSchema: f.out_schema,
        definition: f.definition,
        tags: f.tags ?? [],
        enabled: f.enabled ?? true,
      },
    };
  }

  /**
   * The workflow validator's findings about the tasks, variables and output of a workflow file:
   * unknown targets, invalid expressions, unreachable tasks, endless loops, impossible joins…
   * What the file reader (`seen`) or the cross-checks already report is not repeated: the top-level
   * fields, anything at or around a path already reported, and the task actions (checked against
   * this pack and the installed ones in `crossCheck`).
   */
  checkWorkflow(src: YamlSource, v: Obj, seen: readonly FormatProblem[]): void {
    const related = (a: readonly PathSegment[], b: readonly PathSegment[]) =>
      a.slice(0, b.length).every((s, i) => String(s) === String(b[i]));
    for (const p of validateWorkflow(v).problems) {
      const at = workflowFilePath(p.path, v);
      if (!['tasks', 'vars', 'output_map', 'output'].includes(String(at[0]))) continue;
      if (seen.some((q) => related(q.path, at) || related(at, q.path))) continue;
      if (at[0] === 'tasks' && at.length === 3 && at[2] === 'action') {
        const action = valueAt(v, at);
        if (typeof action === 'string' && action.trim() && !isTemplate(action)) continue;
      }
      const named =
        p.task === undefined || p.message.includes(`'${p.task}'`) || p.message.startsWith('tasks ');
      const message = named ? p.message : `task '${p.task}': ${p.message}`;
      if (p.severity === 'warning') this.warnings.push(src.problem(at, message, 'warning'));
      else this.problems.push(src.problem(at, message));
    }
  }

  // ───────────────────────────── triggers, sensors, rules ─────────────────────────────

  readTrigger(src: YamlSource, v: Obj): { def: TriggerDef } {
    this.shape(src, TRIGGER_FILE, v);
    const name = this.nameOf(src, v);
    return {
      def: {
        file: src.file,
        ref: `${this.packRef}.${name}`,
        name,
        label: labelOf(v, name),
        description: typeof v.description === 'string' ? v.description : '',
        paramSchema: this.schemaField(src, v, 'parameters', true),
        payloadSchema: this.schemaField(src, v, 'payload_schema', false),
        tags: strings(v.tags),
        enabled: v.enabled !== false,
      },
    };
  }

  readSensor(src: YamlSource, v: Obj): { def: SensorDef } {
    this.shape(src, SENSOR_FILE, v);
    const name = this.nameOf(src, v);
    if (v.runner !== undefined && v.runner_type !== undefined)
      this.problems.push(src.problem(['runner_type'], "give either 'runner' or 'runner_type', not both"));
    const runnerKey = v.runner !== undefined ? 'runner' : 'runner_type';
    const entryPoint = typeof v.entry_point === 'string' ? v.entry_point.trim() : '';
    let runner = typeof v[runnerKey] === 'string' ? (v[runnerKey] as string) : '';
    if (!runner) {
      runner = inferRunner(entryPoint) ?? '';
      if (!runner)
        this.problems.push(
          src.problem([], `missing required field 'runner' (one of ${SENSOR_RUNNERS.join(', ')})`),
        );
    } else if (!(SENSOR_RUNNERS as readonly string[]).includes(runner)) {
      const hint = suggest(runner, SENSOR_RUNNERS);
      this.problems.push(
        src.problem(
          [runnerKey],
          `runner '${runner}' cannot run a sensor${hint ? ` (did you mean '${hint}'?)` : ''}; expected one of ${SENSOR_RUNNERS.join(', ')}`,
        ),
      );
    }
    if (SCRIPT_RUNNERS.includes(runner)) this.checkScript(src, 'sensors', entryPoint, runner);
    else if (runner === 'local-shell-cmd' && !entryPoint)
      this.problems.push(src.problem([], "runner 'local-shell-cmd' needs the command in entry_point"));
    const triggerRefs = (Array.isArray(v.triggers) ? v.triggers : [])
      .filter((t): t is string => typeof t === 'string')
      .map((t) => this.resolve(t));
    return {
      def: {
        file: src.file,
        ref: `${this.packRef}.${name}`,
        name,
        label: labelOf(v, name),
        description: typeof v.description === 'string' ? v.description : '',
        runner,
        entryPoint,
        triggerRefs,
        config: isObject(v.config) ? v.config : {},
        pollIntervalSeconds: typeof v.poll_interval === 'number' ? v.poll_interval : null,
        tags: strings(v.tags),
        enabled: v.enabled !== false,
      },
    };
  }

  readRule(src: YamlSource, v: Obj): { def: RuleDef } {
    this.shape(src, RULE_FILE, v);
    const name = this.nameOf(src, v);
    const trigger = isObject(v.trigger) ? v.trigger : {};
    const action = isObject(v.action) ? v.action : {};
    if (v.criteria !== undefined && v.criteria !== null) {
      for (const p of criteriaProblems(v.criteria))
        this.problems.push(src.problem(['criteria', ...fromPointer(p.path ?? '/')], p.message));
    }
    return {
      def: {
        file: src.file,
        ref: `${this.packRef}.${name}`,
        name,
        label: labelOf(v, name),
        description: typeof v.description === 'string' ? v.description : '',
        triggerRef: typeof trigger.type === 'string' ? this.resolve(trigger.type) : '',
        triggerParams: isObject(trigger.parameters) ? trigger.parameters : {},
        criteria: isObject(v.criteria) ? v.criteria : {},
        actionRef: typeof action.ref === 'string' ? this.resolve(action.ref) : '',
        actionParams: isObject(action.parameters) ? action.parameters : {},
        tags: strings(v.tags),
        enabled: v.enabled !== false,
      },
    };
  }

  // ───────────────────────────── across files ─────────────────────────────

  unique(what: string, defs: { def: { ref: string; file: string }; src: YamlSource }[]): void {
    const first = new Map<string, string>();
    for (const d of defs) {
      const prev = first.get(d.def.ref);
      if (prev) this.problems.push(d.src.problem([], `${what} '${d.def.ref}' is already defined in ${prev}`));
      else first.set(d.def.ref, d.def.file);
    }
  }

  crossCheck(
    actions: ({ def: ActionDef } & Parsed)[],
    workflows: ({ def: WorkflowDef } & Parsed)[],
    triggers: ({ def: TriggerDef } & Parsed)[],
    sensors: ({ def: SensorDef } & Parsed)[],
    rules: ({ def: RuleDef } & Parsed)[],
  ): void {
    const ownActions = new Map<string, JsonSchema | null>();
    for (const a of actions) ownActions.set(a.def.ref, a.ok ? a.def.paramSchema : null);
    for (const w of workflows) ownActions.set(w.def.ref, w.ok ? (w.def.paramSchema ?? EMPTY_PARAMS) : null);
    const ownTriggers = new Map<string, JsonSchema | null>();
    for (const t of triggers) ownTriggers.set(t.def.ref, t.ok ? t.def.paramSchema : null);
    const prefix = `${this.packRef}.`;

    const refer = (
      kind: 'action' | 'trigger',
      ref: string,
      src: YamlSource,
      at: PathSegment[],
      from: ExternalRef['from'],
      params?: { value: Obj; path: PathSegment[] },
    ) => {
      if (!isRef(ref)) {
        this.problems.push(src.problem(at, `'${ref}' is not a valid ${kind} ref ('pack.name')`));
        return;
      }
      const own = kind === 'action' ? ownActions : ownTriggers;
      if (ref.startsWith(prefix)) {
        if (!own.has(ref) && this.broken.has(ref)) return; // its own file's problems say enough
        if (!own.has(ref)) {
          const hint = suggest(ref, own.keys());
          this.problems.push(
            src.problem(
              at,
              `${kind === 'action' ? 'action' : 'trigger type'} '${ref}' does not exist in this pack${hint ? ` (did you mean '${hint}'?)` : ''}`,
            ),
          );
          return;
        }
        const schema = own.get(ref);
        if (params && schema)
          this.problems.push(
            ...paramProblems(kind, ref, schema, params.value, kind === 'action').map((p) =>
              src.problem([...params.path, ...p.path], p.message),
            ),
          );
        return;
      }
      const ext: ExternalRef = { kind, ref, source: src, path: at, from };
      if (params) ext.params = params;
      this.external.push(ext);
    };

    for (const r of rules) {
      const d = r.def;
      if (d.triggerRef)
        refer('trigger', d.triggerRef, r.src, ['trigger', 'type'], 'rule', {
          value: d.triggerParams,
          path: ['trigger', 'parameters'],
        });
      if (d.actionRef)
        refer('action', d.actionRef, r.src, ['action', 'ref'], 'rule', {
          value: d.actionParams,
          path: ['action', 'parameters'],
        });
    }
    for (const s of sensors)
      s.def.triggerRefs.forEach((t, i) => {
        refer('trigger', t, s.src, ['triggers', i], 'sensor');
      });
    for (const w of workflows) {
      const raw = isObject(w.src.value) ? w.src.value.tasks : undefined;
      w.def.definition.tasks.forEach((task, i) => {
        const action = task.action;
        if (typeof action !== 'string' || isTemplate(action) || !action.trim()) return;
        const name = typeof task.name === 'string' ? task.name : String(i);
        const at: PathSegment[] = Array.isArray(raw) ? ['tasks', i] : ['tasks', name];
        if (!action.includes('.')) {
          this.problems.push(
            w.src.problem(
              [...at, 'action'],
              `'${action}' is not an action ref; write it in full ('pack.${action}')`,
            ),
          );
          return;
        }
        const input = isObject(task.input) ? task.input : undefined;
        refer(
          'action',
          action,
          w.src,
          [...at, 'action'],
          'task',
          input ? { value: input, path: [...at, 'input'] } : undefined,
        );
      });
    }
  }
}

/**
 * The location in a workflow file of a validator path (`tasks[2].next[0].do[1]`): tasks written as
 * a mapping are named, variables written as a list are indexed, an `output` holding the output map
 * keeps its name.
 */
export function workflowFilePath(p: string, doc: Obj): PathSegment[] {
  const at: PathSegment[] = [];
  for (const m of p.matchAll(/\[(\d+)\]|([^.[\]]+)/g)) at.push(m[1] !== undefined ? Number(m[1]) : m[2]!);
  if (at[0] === 'tasks' && typeof at[1] === 'number' && isObject(doc.tasks)) {
    const name = Object.keys(doc.tasks)[at[1]];
    if (name !== undefined) at[1] = name;
  }
  if (at[0] === 'vars' && typeof at[1] === 'string' && Array.isArray(doc.vars)) {
    const key = at[1];
    const i = doc.vars.findIndex((x) => isObject(x) && Object.hasOwn(x, key));
    if (i >= 0) at.splice(1, 0, i);
  }
  if (at[0] === 'output_map' && doc.output_map === undefined && doc.output !== undefined) at[0] = 'output';
  return at;
}

function valueAt(doc: unknown, at: readonly PathSegment[]): unknown {
  let v = doc;
  for (const s of at) {
    if (Array.isArray(v) && typeof s === 'number') v = v[s];
    else if (isObject(v) && Object.hasOwn(v, String(s))) v = v[String(s)];
    else return undefined;
  }
  return v;
}

interface Parsed {
  src: YamlSource;
  /** No problem was found in the file (its schemas can be trusted by cross-checks). */
  ok: boolean;
}

/**
 * Problems of parameters given to an action or trigger, as far as they can be known before run time:
 * unknown names, missing required ones, and literal values (not templates) that do not fit.
 */
export function paramProblems(
  kind: 'action' | 'trigger',
  ref: string,
  schema: JsonSchema,
  params: Obj,
  templated: boolean,
): { path: PathSegment[]; message: string }[] {
  const out: { path: PathSegment[]; message: string }[] = [];
  if (!templated) {
    for (const i of validateAgainst(schema, structuredClone(params)))
      out.push({
        path: fromPointer(i.path),
        message: `${i.path === '/' ? '' : `${i.path.slice(1)}: `}${i.message} (parameters of ${kind} '${ref}')`,
      });
    return out;
  }
  const props = isObject(schema.properties) ? schema.properties : {};
  const closed = schema.additionalProperties === false;
  for (const [k, value] of Object.entries(params)) {
    const prop = props[k];
    if (prop === undefined) {
      if (closed) {
        const hint = suggest(k, Object.keys(props));
        out.push({
          path: [k],
          message: `${kind} '${ref}' has no parameter '${k}'${hint ? ` (did you mean '${hint}'?)` : ''}`,
        });
      }
      continue;
    }
    if (containsTemplate(value) || !isObject(prop)) continue;
    for (const i of validateAgainst(prop, structuredClone(value)))
      out.push({
        path: [k, ...fromPointer(i.path)],
        message: `parameter '${k}'${i.path === '/' ? '' : i.path} ${i.message}`,
      });
  }
  const required = Array.isArray(schema.required) ? schema.required : [];
  for (const r of required) {
    if (typeof r !== 'string' || Object.hasOwn(params, r)) continue;
    const prop = props[r];
    if (isObject(prop) && Object.hasOwn(prop, 'default')) continue;
    out.push({ path: [], message: `${kind} '${ref}' needs parameter '${r}'` });
  }
  return out;
}

const containsTemplate = (v: unknown): boolean =>
  isTemplate(v) ||
  (Array.isArray(v) ? v.some(containsTemplate) : isObject(v) && Object.values(v).some(containsTemplate));

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
const labelOf = (v: Obj, name: string): string =>
  typeof v.label === 'string' && v.label.trim() ? v.label : humanize(name);

function inferRunner(entryPoint: string): string | undefined {
  if (/\.py$/i.test(entryPoint)) return 'python-script';
  if (/\.(c|m)?js$/i.test(entryPoint)) return 'node-script';
  if (/\.(sh|bash)$/i.test(entryPoint)) return 'local-shell-script';
  return undefined;
}

/** Problems ordered by file, then line. */
export function sortProblems(list: Problem[]): Problem[] {
  return [...list].sort(
    (x, y) => (x.file ?? '').localeCompare(y.file ?? '') || (x.line ?? 0) - (y.line ?? 0),
  );
}
