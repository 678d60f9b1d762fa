/**
 * Workflows: the list, a workflow's graph and definition, and the YAML editor that validates as you
 * type (through `POST /api/v1/workflows/validate`) and shows each problem at its line and its task.
 */
import { lazy, Suspense, useEffect, useMemo, useRef, useState } from 'react';
import { parse, stringify } from 'yaml';
import { ApiError, isMissingEndpoint } from '../api/client.ts';
import { executions, workflows } from '../api/resources.ts';
import type { JsonObject, Workflow, WorkflowWrite } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import { CodeEditor, type CodeEditorHandle } from '../components/CodeEditor.tsx';
import { Empty, ErrorBox, Loading, Props, Tabs, Tags } from '../components/ui.tsx';
import { graphOfDefinition } from '../graph/definition.ts';
import { useDebounced, useLoad } from '../lib/hooks.ts';
import { Link, navigate, seg } from '../lib/router.tsx';
import { normalizeSchema } from '../lib/schema.ts';
import { ExecutionTable } from './Executions.tsx';

const WorkflowGraph = lazy(() => import('../graph/WorkflowGraph.tsx'));

export interface Problem {
  task: string | null;
  path: string;
  message: string;
  severity: 'error' | 'warning';
  line?: number;
}

const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The workflow as a file (the format of a pack's workflows/*.yaml). */
export function workflowToYaml(w: Workflow): string {
  const doc: JsonObject = { ref: w.ref, label: w.label };
  if (w.description) doc.description = w.description;
  if (w.version) doc.version = w.version;
  if (w.tags.length) doc.tags = w.tags;
  if (!w.enabled) doc.enabled = false;
  if (w.param_schema && Object.keys(w.param_schema).length) doc.parameters = w.param_schema;
  if (w.out_schema && Object.keys(w.out_schema).length) doc.output = w.out_schema;
  Object.assign(doc, w.definition);
  return stringify(doc, { lineWidth: 110 });
}

const looksLikeSchema = (v: unknown): boolean =>
  isObject(v) &&
  (typeof v.type === 'string' || isObject(v.properties) || Object.values(v).every((x) => isObject(x)));

/** The API fields of a workflow file. */
export function yamlDocToWrite(doc: JsonObject): WorkflowWrite {
  const { ref, label, description, version, tags, enabled, parameters, output, pack_ref, ...definition } =
    doc;
  const w: WorkflowWrite = { definition };
  if (typeof ref === 'string') w.ref = ref;
  if (typeof label === 'string') w.label = label;
  if (typeof description === 'string') w.description = description;
  if (version !== undefined) w.version = String(version);
  if (Array.isArray(tags)) w.tags = tags.map(String);
  if (typeof enabled === 'boolean') w.enabled = enabled;
  if (typeof pack_ref === 'string') w.pack_ref = pack_ref;
  w.param_schema = parameters === undefined || parameters === null ? null : normalizeSchema(parameters);
  if (output !== undefined && output !== null) {
    if (looksLikeSchema(output) && !Object.values(output as JsonObject).some((v) => typeof v === 'string'))
      w.out_schema = normalizeSchema(output);
    else if (definition.output_map === undefined) definition.output_map = output;
  } else w.out_schema = null;
  return w;
}

/** The line (1-based) where a task is declared in the YAML text, if it can be found. */
export function lineOfTask(text: string, task: string): number | undefined {
  const esc = task.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const patterns = [
    new RegExp(`^\\s*-?\\s*name:\\s*['"]?${esc}['"]?\\s*(#.*)?$`),
    new RegExp(`^\\s{2,}${esc}:\\s*(#.*)?$`),
  ];
  const lines = text.split('\n');
  for (const re of patterns) {
    const i = lines.findIndex((l) => re.test(l));
    if (i >= 0) return i + 1;
  }
  return undefined;
}

interface Checked {
  doc?: JsonObject;
  parseError?: Problem;
  problems: Problem[];
  /** Validation is not available (older server): only the YAML is checked here. */
  offline?: boolean;
  error?: unknown;
  checking: boolean;
}

function parseYaml(text: string): { doc?: JsonObject; problem?: Problem } {
  try {
    const doc = parse(text, { prettyErrors: true });
    if (!isObject(doc))
      return {
        problem: {
          task: null,
          path: '',
          message: 'a workflow file must be a mapping (ref, label, tasks…)',
          severity: 'error',
          line: 1,
        },
      };
    return { doc };
  } catch (e) {
    const linePos = (e as { linePos?: { line: number }[] }).linePos;
    const message = String((e as Error).message).split('\n')[0] ?? 'not valid YAML';
    return { problem: { task: null, path: '', message, severity: 'error', line: linePos?.[0]?.line } };
  }
}

/** Validates the text as it is typed (debounced); problems get a line (from the server, or the task's). */
function useValidation(text: string): Checked {
  const debounced = useDebounced(text, 400);
  const parsed = useMemo(() => parseYaml(debounced), [debounced]);
  const [state, setState] = useState<Checked>({ problems: [], checking: false });
  useEffect(() => {
    if (parsed.problem) {
      setState({ problems: [parsed.problem], parseError: parsed.problem, checking: false });
      return;
    }
    const ctl = new AbortController();
    setState((s) => ({ ...s, doc: parsed.doc, checking: true }));
    workflows
      .validate({ yaml: debounced }, ctl.signal)
      .then((r) => {
        const report = r as unknown as { errors?: Problem[]; warnings?: Problem[]; problems?: Problem[] };
        const all = [...(report.errors ?? []), ...(report.warnings ?? []), ...(report.problems ?? [])].map(
          (p) => ({
            ...p,
            task: p.task ?? null,
            line: p.line ?? (p.task ? lineOfTask(debounced, p.task) : undefined),
          }),
        );
        setState({ doc: parsed.doc, problems: all, checking: false });
      })
      .catch((e) => {
        if (ctl.signal.aborted) return;
        if (isMissingEndpoint(e)) setState({ doc: parsed.doc, problems: [], offline: true, checking: false });
        else setState({ doc: parsed.doc, problems: [], error: e, checking: false });
      });
    return () => ctl.abort();
  }, [debounced, parsed]);
  return state;
}

function ProblemList({ problems, onGo }: { problems: Problem[]; onGo: (line: number) => void }) {
  if (!problems.length) return null;
  return (
    <ul className="problems" aria-label="Problems">
      {problems.map((p, i) => (
        // biome-ignore lint/suspicious/noArrayIndexKey: problems are positional
        <li key={i}>
          <button type="button" className="link" disabled={!p.line} onClick={() => p.line && onGo(p.line)}>
            <span
              style={{ color: p.severity === 'error' ? 'var(--danger)' : 'var(--warn)', fontWeight: 700 }}
            >
              {p.severity === 'error' ? '✕ error' : '! warning'}
            </span>{' '}
            {p.line ? <span className="muted">line {p.line} · </span> : null}
            {p.task ? (
              <>
                task <code>{p.task}</code>:{' '}
              </>
            ) : null}
            {p.path ? <code className="muted">{p.path}</code> : null}{' '}
            <span style={{ color: 'var(--text)' }}>{p.message}</span>
          </button>
        </li>
      ))}
    </ul>
  );
}

/** The YAML editor with validation, a live graph preview and Save. */
function WorkflowEditor({
  initial,
  onSave,
  saveLabel,
  readOnly,
}: {
  initial: string;
  onSave?: (w: WorkflowWrite) => Promise<void>;
  saveLabel: string;
  readOnly?: boolean;
}) {
  const [text, setText] = useState(initial);
  useEffect(() => setText(initial), [initial]);
  const editor = useRef<CodeEditorHandle>(null);
  const check = useValidation(text);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const markers = useMemo(() => {
    const m = new Map<number, { severity: 'error' | 'warning'; message: string }>();
    for (const p of check.problems)
      if (p.line && (!m.has(p.line) || p.severity === 'error'))
        m.set(p.line, { severity: p.severity, message: p.message });
    return m;
  }, [check.problems]);
  const byTask = useMemo(() => {
    const r: Record<string, 'error' | 'warning'> = {};
    for (const p of check.problems) if (p.task && r[p.task] !== 'error') r[p.task] = p.severity;
    return r;
  }, [check.problems]);
  const graph = useMemo(() => (check.doc ? graphOfDefinition(check.doc) : null), [check.doc]);
  const errors = check.problems.filter((p) => p.severity === 'error').length;
  const warnings = check.problems.length - errors;
  const dirty = text !== initial;

  const save = async () => {
    const parsed = parseYaml(text);
    if (!parsed.doc || !onSave) return;
    setSaving(true);
    setSaveError(null);
    setSaved(false);
    try {
      await onSave(yamlDocToWrite(parsed.doc));
      setSaved(true);
    } catch (e) {
      setSaveError(e);
    } finally {
      setSaving(false);
    }
  };
  const saveProblems =
    saveError instanceof ApiError && Array.isArray(saveError.details)
      ? (saveError.details as Problem[]).map((p) => ({
          ...p,
          line: p.line ?? (p.task ? lineOfTask(text, p.task) : undefined),
        }))
      : [];

  return (
    <div className="grid two" style={{ alignItems: 'start' }}>
      <div>
        <div className="row" style={{ justifyContent: 'space-between', marginBottom: 6 }}>
          <span className="small" role="status" aria-live="polite">
            {check.checking
              ? 'Checking…'
              : check.offline
                ? 'YAML is valid (this server checks the workflow when it is saved).'
                : errors
                  ? `${errors} error${errors === 1 ? '' : 's'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}`
                  : warnings
                    ? `Valid, with ${warnings} warning${warnings === 1 ? '' : 's'}`
                    : 'Valid'}
          </span>
          {!readOnly && onSave && (
            <span className="row">
              {dirty && (
                <button type="button" onClick={() => setText(initial)} disabled={saving}>
                  Discard changes
                </button>
              )}
              <button
                type="button"
                className="primary"
                onClick={save}
                disabled={saving || !!check.parseError || (!dirty && saveLabel !== 'Create')}
              >
                {saving ? 'Saving…' : saveLabel}
              </button>
            </span>
          )}
        </div>
        <CodeEditor
          ref={editor}
          value={text}
          onChange={setText}
          markers={markers}
          label="Workflow YAML"
          readOnly={readOnly}
        />
        <ErrorBox error={check.error} title="Could not validate" />
        <ProblemList problems={check.problems} onGo={(l) => editor.current?.goToLine(l)} />
        {saveError ? (
          <div style={{ marginTop: 10 }}>
            <ErrorBox error={saveError} title="Not saved" />
            <ProblemList problems={saveProblems} onGo={(l) => editor.current?.goToLine(l)} />
          </div>
        ) : null}
        {saved && !dirty && (
          <div className="alert ok" role="status" style={{ marginTop: 10 }}>
            Saved.
          </div>
        )}
      </div>
      <div>
        <h3>Preview</h3>
        {graph?.nodes.length ? (
          <Suspense fallback={<Loading what="Loading the graph view" />}>
            <WorkflowGraph nodes={graph.nodes} edges={graph.edges} problems={byTask} height={520} />
          </Suspense>
        ) : (
          <p className="muted">The graph appears here once the YAML has tasks.</p>
        )}
      </div>
    </div>
  );
}

export function WorkflowsPage() {
  const list = useLoad(() => workflows.list({ page_size: 1000 }), []);
  const { can } = useSession();
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Workflows</h1>
        <span className="sub">task graphs with branches, joins, fan-out, retries and approvals</span>
        <span className="grow" />
        {can('workflows', 'create') && (
          <Link className="button primary" to="/workflows/new">
            New workflow
          </Link>
        )}
      </div>
      <ErrorBox error={list.error} title="Could not list workflows" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty
            title="No workflows yet"
            action={
              can('workflows', 'create') ? (
                <Link className="button primary" to="/workflows/new">
                  Write one
                </Link>
              ) : undefined
            }
          >
            A workflow chains actions: each task runs an action, and transitions decide what runs next. Write
            one here in YAML, or install a pack that has some.
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Workflow</th>
                <th>Description</th>
                <th className="num">Tasks</th>
                <th>Version</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((w) => (
                <tr key={w.ref}>
                  <td className="nowrap">
                    <Link to={`/workflows/${seg(w.ref)}`}>{w.ref}</Link>
                    {!w.enabled && <span className="tag">disabled</span>}
                  </td>
                  <td className="muted">{w.description || w.label}</td>
                  <td className="num">{graphOfDefinition(w.definition).nodes.length}</td>
                  <td className="mono small">{w.version}</td>
                  <td className="num">
                    <Link className="button small" to={`/actions/${seg(w.ref)}#run`}>
                      Run…
                    </Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

export function WorkflowPage({ params }: { params: Record<string, string> }) {
  const ref = params.ref!;
  const { can } = useSession();
  const wf = useLoad(() => workflows.get(ref), [ref]);
  const runs = useLoad(() => executions.list({ action: ref, page_size: 20 }), [ref]);
  const [tab, setTab] = useState<'graph' | 'yaml' | 'runs'>('graph');
  const [selected, setSelected] = useState<string | null>(null);
  const yaml = useMemo(() => (wf.data ? workflowToYaml(wf.data) : ''), [wf.data]);
  const graph = useMemo(() => (wf.data ? graphOfDefinition(wf.data.definition) : null), [wf.data]);
  if (wf.loading && !wf.data) return <Loading />;
  const w = wf.data;
  if (!w) return <ErrorBox error={wf.error} title={`Could not load workflow ${ref}`} />;
  const task = selected && graph ? graph.nodes.find((n) => n.id === selected) : undefined;
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/workflows">Workflows</Link> › <Link to={`/packs/${seg(w.pack_ref)}`}>{w.pack_ref}</Link>
        </div>
        <div className="page-head">
          <h1 className="mono">{w.ref}</h1>
          <span className="muted">v{w.version}</span>
          {!w.enabled && <span className="tag">disabled</span>}
          <Tags tags={w.tags} />
          <span className="grow" />
          <Link className="button primary" to={`/actions/${seg(w.ref)}#run`}>
            Run…
          </Link>
        </div>
        {(w.description || w.label) && <p className="muted">{w.description || w.label}</p>}
      </div>
      <Tabs
        label="Workflow views"
        value={tab}
        onChange={setTab}
        tabs={[
          { id: 'graph', label: 'Graph' },
          { id: 'yaml', label: can('workflows', 'update') ? 'Edit YAML' : 'YAML' },
          { id: 'runs', label: `Executions${runs.data ? ` (${runs.data.pagination.total_items})` : ''}` },
        ]}
      />
      {tab === 'graph' && graph && (
        <div className="stack">
          <Suspense fallback={<Loading what="Loading the graph view" />}>
            <WorkflowGraph
              nodes={graph.nodes}
              edges={graph.edges}
              selected={selected}
              onSelect={setSelected}
            />
          </Suspense>
          {task && (
            <div className="card">
              <h2>
                Task <code>{task.id}</code>
              </h2>
              <Props
                items={[
                  [
                    'Action',
                    task.action ? (
                      <Link key="a" to={`/actions/${seg(task.action)}`}>
                        {task.action}
                      </Link>
                    ) : null,
                  ],
                  ['Starts the workflow', task.start ? 'yes' : 'no'],
                  ['Join', task.join === null ? null : String(task.join)],
                  [
                    'With items',
                    task.with_items ? `yes${task.concurrency ? `, ${task.concurrency} at once` : ''}` : 'no',
                  ],
                  ['Retries', task.retry ? String(task.retry) : null],
                  ['Timeout', task.timeout ? `${task.timeout} s` : null],
                  ['Description', task.description],
                ]}
              />
              <h3 style={{ marginTop: 12 }}>Transitions</h3>
              <ul>
                {graph.edges
                  .filter((e) => e.from === task.id)
                  .map((e) => (
                    <li key={e.id}>
                      <code>{e.label}</code> → <strong>{e.special ?? e.to}</strong>
                      {e.publish.length ? (
                        <span className="muted small"> (publishes {e.publish.join(', ')})</span>
                      ) : null}
                    </li>
                  ))}
              </ul>
            </div>
          )}
        </div>
      )}
      {tab === 'yaml' && (
        <WorkflowEditor
          initial={yaml}
          saveLabel="Save"
          readOnly={!can('workflows', 'update')}
          onSave={async (body) => {
            const { ref: _ref, pack_ref: _pack, ...rest } = body;
            const saved = await workflows.update(w.ref, rest);
            wf.set(() => saved);
          }}
        />
      )}
      {tab === 'runs' && (
        <div>
          <ErrorBox error={runs.error} title="Could not list executions" />
          <ExecutionTable
            rows={runs.data?.data ?? []}
            empty={<p className="muted">This workflow has not run yet.</p>}
          />
        </div>
      )}
    </div>
  );
}

const TEMPLATE = `# A workflow: tasks run actions; transitions (next) decide what runs next.
ref: examples.hello_workflow
label: Hello workflow
version: 1.0.0
parameters:
  name: {type: string, default: world}
tasks:
  - name: greet
    action: core.echo
    input: {message: "Hello, {{ parameters.name }}"}
    next:
      - when: "{{ succeeded() }}"
        publish: [{greeting: "{{ result().message }}"}]
        do: done
  - name: done
    action: core.noop
output_map:
  greeting: "{{ vars.greeting }}"
`;

export function WorkflowNewPage() {
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/workflows">Workflows</Link> › new
        </div>
        <h1>New workflow</h1>
        <p className="muted">
          Write the workflow in YAML; it is checked as you type. The <code>ref</code> names its pack (which
          must exist) and its name.
        </p>
      </div>
      <WorkflowEditor
        initial={TEMPLATE}
        saveLabel="Create"
        onSave={async (body) => {
          const created = await workflows.create(body);
          navigate(`/workflows/${seg(created.ref)}`);
        }}
      />
    </div>
  );
}
