/** Packs: installed bundles of actions, workflows, rules, triggers and sensors; install and uninstall. */
import { type FormEvent, useState } from 'react';
import { ApiError } from '../api/client.ts';
import { packs } from '../api/resources.ts';
import type { DefinitionKind, Pack, PackInstallResult } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import { JsonView } from '../components/JsonView.tsx';
import {
  ConfirmButton,
  Dialog,
  Empty,
  ErrorBox,
  Field,
  Loading,
  Props,
  Tabs,
  Tags,
  Time,
} from '../components/ui.tsx';
import { useLoad } from '../lib/hooks.ts';
import { Link, navigate, seg } from '../lib/router.tsx';

const KINDS: DefinitionKind[] = ['actions', 'workflows', 'rules', 'triggers', 'sensors'];

function InstallResult({ r }: { r: PackInstallResult }) {
  const lines = (['created', 'updated', 'removed'] as const).flatMap((what) =>
    KINDS.filter((k) => r.changes[what][k].length).map((k) => `${what} ${r.changes[what][k].length} ${k}`),
  );
  return (
    <div className="alert ok" role="status">
      <strong>
        {r.operation === 'installed' ? 'Installed' : 'Updated'} {r.pack.ref} {r.pack.version}
      </strong>
      {r.previous_version && ` (was ${r.previous_version})`}. {lines.join(', ') || 'Nothing changed.'}
      {(r.disabled.rules.length > 0 || r.disabled.sensors.length > 0) && (
        <div>Disabled until configured: {[...r.disabled.rules, ...r.disabled.sensors].join(', ')}</div>
      )}
      {r.warnings.length > 0 && (
        <ul>
          {r.warnings.map((w, i) => (
            // biome-ignore lint/suspicious/noArrayIndexKey: positional
            <li key={i}>
              {w.file ? `${w.file}${w.line ? `:${w.line}` : ''}: ` : ''}
              {w.message}
            </li>
          ))}
        </ul>
      )}
      <div>
        <Link to={`/packs/${seg(r.pack.ref)}`}>Open the pack →</Link>
      </div>
    </div>
  );
}

function InstallDialog({
  open,
  onClose,
  onInstalled,
}: {
  open: boolean;
  onClose: () => void;
  onInstalled: () => void;
}) {
  const [how, setHow] = useState<'git' | 'path' | 'upload'>('git');
  const [url, setUrl] = useState('');
  const [gitRef, setGitRef] = useState('');
  const [dir, setDir] = useState('');
  const [file, setFile] = useState<File | null>(null);
  const [force, setForce] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [result, setResult] = useState<PackInstallResult | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setResult(null);
    setBusy(true);
    try {
      let r: PackInstallResult;
      if (how === 'upload') {
        if (!file) throw new Error('Choose a .tar.gz file of the pack');
        r = await packs.upload(file, force);
      } else if (how === 'git') {
        if (!url.trim()) throw new Error('Give the URL of the git repository');
        r = await packs.installFrom(
          { source: 'git', url: url.trim(), ...(gitRef.trim() ? { ref: gitRef.trim() } : {}) },
          force,
        );
      } else {
        if (!dir.trim()) throw new Error('Give the path of the pack folder on the server');
        r = await packs.installFrom({ source: 'path', path: dir.trim() }, force);
      }
      setResult(r);
      onInstalled();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} title="Install a pack" onClose={onClose}>
      <Tabs
        label="Where the pack comes from"
        value={how}
        onChange={setHow}
        tabs={[
          { id: 'git', label: 'Git URL' },
          { id: 'upload', label: 'Upload' },
          { id: 'path', label: 'Server path' },
        ]}
      />
      <form onSubmit={submit} noValidate>
        {how === 'git' && (
          <>
            <Field label="Repository URL" required>
              {(ids) => (
                <input
                  id={ids.id}
                  value={url}
                  onChange={(e) => setUrl(e.target.value)}
                  placeholder="https://example.com/team/attune-pack.git"
                />
              )}
            </Field>
            <Field label="Branch, tag or commit" help="Empty: the default branch.">
              {(ids) => (
                <input
                  id={ids.id}
                  aria-describedby={ids.describedBy}
                  value={gitRef}
                  onChange={(e) => setGitRef(e.target.value)}
                />
              )}
            </Field>
          </>
        )}
        {how === 'upload' && (
          <Field
            label="Pack archive"
            required
            help="A .tar.gz (or .tar) of the pack folder, with pack.yaml at its top."
          >
            {(ids) => (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                type="file"
                accept=".tgz,.gz,.tar,application/gzip,application/x-tar"
                onChange={(e) => setFile(e.target.files?.[0] ?? null)}
              />
            )}
          </Field>
        )}
        {how === 'path' && (
          <Field label="Folder on the server" required help="A path the Attune server can read.">
            {(ids) => (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                value={dir}
                onChange={(e) => setDir(e.target.value)}
                placeholder="/opt/packs/mypack"
              />
            )}
          </Field>
        )}
        <label className="row" style={{ marginBottom: 12 }}>
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} /> Replace even
          if it downgrades or removes things in use
        </label>
        <ErrorBox error={error} title="Not installed" />
        {result && <InstallResult r={result} />}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Installing…' : 'Install'}
        </button>
      </form>
    </Dialog>
  );
}

export function PacksPage() {
  const { can } = useSession();
  const list = useLoad(() => packs.list({ page_size: 1000 }), []);
  const [installing, setInstalling] = useState(false);
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Packs</h1>
        <span className="sub">bundles of actions, workflows, rules, triggers and sensors</span>
        <span className="grow" />
        {can('packs', 'create') && (
          <button type="button" className="primary" onClick={() => setInstalling(true)}>
            Install a pack
          </button>
        )}
      </div>
      <ErrorBox error={list.error} title="Could not list packs" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty title="No packs installed">
            Install a pack from a git repository, an archive or a folder on the server.
          </Empty>
        </div>
      )}
      <div className="grid three">
        {rows.map((p) => (
          <article className="card" key={p.ref} style={{ marginTop: 0 }}>
            <h2>
              <Link to={`/packs/${seg(p.ref)}`}>{p.label || p.ref}</Link>{' '}
              <span className="muted small mono">
                {p.ref} {p.version}
              </span>
            </h2>
            <p className="muted small">{p.description}</p>
            <p className="small">
              {KINDS.filter((k) => p.counts[k]).map((k, i) => (
                <span key={k}>
                  {i > 0 && ' · '}
                  {p.counts[k]} {k}
                </span>
              ))}
            </p>
            <Tags tags={p.tags} />
            {p.system && <span className="tag">built in</span>}
          </article>
        ))}
      </div>
      {installing && (
        <InstallDialog open={installing} onClose={() => setInstalling(false)} onInstalled={list.reload} />
      )}
    </div>
  );
}

function Contents({ pack }: { pack: Pack }) {
  const c = pack.contents;
  if (!c) return null;
  const link = (k: DefinitionKind, ref: string) => `/${k}/${seg(ref)}`;
  return (
    <div className="grid three">
      {KINDS.map((k) => (
        <section className="card" key={k} style={{ marginTop: 0 }}>
          <h3>
            {k} ({c[k].length})
          </h3>
          {c[k].length === 0 ? (
            <p className="muted small">none</p>
          ) : (
            <ul style={{ margin: 0, paddingLeft: 18 }}>
              {c[k].map((ref) => (
                <li key={ref}>
                  <Link to={link(k, ref)}>{ref}</Link>
                </li>
              ))}
            </ul>
          )}
        </section>
      ))}
    </div>
  );
}

export function PackPage({ params }: { params: Record<string, string> }) {
  const ref = params.ref!;
  const { can } = useSession();
  const pack = useLoad(() => packs.get(ref), [ref]);
  const [force, setForce] = useState(false);
  if (pack.loading && !pack.data) return <Loading />;
  const p = pack.data;
  if (!p) return <ErrorBox error={pack.error} title={`Could not load pack ${ref}`} />;
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/packs">Packs</Link>
        </div>
        <div className="page-head">
          <h1>
            {p.label || p.ref} <span className="muted mono small">{p.ref}</span>
          </h1>
          <span className="muted">v{p.version}</span>
          <Tags tags={p.tags} />
          <span className="grow" />
          {can('packs', 'delete') && !p.system && (
            <ConfirmButton
              label="Uninstall"
              question={
                <>
                  <p>
                    Uninstall <code>{p.ref}</code> and everything it brought (
                    {KINDS.map((k) => `${p.counts[k]} ${k}`).join(', ')})?
                  </p>
                  <label className="row">
                    <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} />{' '}
                    even if other packs or rules use it
                  </label>
                </>
              }
              onConfirm={async () => {
                try {
                  await packs.remove(p.ref, force);
                } catch (e) {
                  if (e instanceof ApiError && e.status === 409 && !force)
                    throw new ApiError(
                      409,
                      e.code,
                      `${e.message} — tick the box to uninstall it anyway.`,
                      e.details,
                    );
                  throw e;
                }
                navigate('/packs');
              }}
            />
          )}
        </div>
        {p.description && <p className="muted">{p.description}</p>}
      </div>
      <section className="card">
        <Props
          items={[
            ['Author', p.author ? `${p.author}${p.email ? ` <${p.email}>` : ''}` : null],
            ['Depends on', p.dependencies.length ? p.dependencies.join(', ') : 'nothing'],
            ['Source', <code key="s">{JSON.stringify(p.source)}</code>],
            ['Installed by', p.installed_by ?? (p.system ? 'built in' : null)],
            ['Updated', <Time key="u" iso={p.updated_at} />],
          ]}
        />
      </section>
      <Contents pack={p} />
      {(Object.keys(p.config).length > 0 || p.config_schema) && (
        <div className="grid two">
          {p.config_schema && (
            <section className="card">
              <JsonView value={p.config_schema} label="Configuration schema" />
            </section>
          )}
          <section className="card">
            <JsonView value={p.config} label="Configuration" />
          </section>
        </div>
      )}
    </div>
  );
}
