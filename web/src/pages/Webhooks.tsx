/** Webhooks: URLs that turn HTTP calls into events; signing, limits, and the log of calls. */
import { type FormEvent, useState } from 'react';
import { webhooks } from '../api/resources.ts';
import type { Webhook, WebhookWrite } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import {
  ConfirmButton,
  CopyButton,
  Dialog,
  Empty,
  ErrorBox,
  Field,
  Loading,
  Pager,
  Props,
  Time,
} from '../components/ui.tsx';
import { formatBytes } from '../lib/format.ts';
import { useLoad } from '../lib/hooks.ts';
import { Link, navigate, seg } from '../lib/router.tsx';

const absolute = (url: string): string => (url.startsWith('http') ? url : `${window.location.origin}${url}`);

function WebhookForm({
  existing,
  open,
  onClose,
  onSaved,
}: {
  existing?: Webhook;
  open: boolean;
  onClose: () => void;
  onSaved: (w: Webhook) => void;
}) {
  const [name, setName] = useState(existing?.name ?? '');
  const [description, setDescription] = useState(existing?.description ?? '');
  const [enabled, setEnabled] = useState(existing?.enabled ?? true);
  const [signed, setSigned] = useState(!!existing?.hmac);
  const [secret, setSecret] = useState('');
  const [algorithm, setAlgorithm] = useState<'sha256' | 'sha512'>(existing?.hmac?.algorithm ?? 'sha256');
  const [header, setHeader] = useState(existing?.hmac?.header ?? '');
  const [maxBytes, setMaxBytes] = useState(existing ? String(existing.max_payload_bytes) : '');
  const [rate, setRate] = useState(
    existing?.rate_limit_per_minute ? String(existing.rate_limit_per_minute) : '',
  );
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const body: WebhookWrite = { description, enabled };
    if (!existing) body.name = name.trim();
    if (maxBytes.trim()) body.max_payload_bytes = Number(maxBytes);
    body.rate_limit_per_minute = rate.trim() ? Number(rate) : null;
    if (!signed) body.hmac = null;
    else if (secret || !existing?.hmac)
      body.hmac = { secret, algorithm, ...(header.trim() ? { header: header.trim() } : {}) };
    else body.hmac = { algorithm, ...(header.trim() ? { header: header.trim() } : {}) };
    setBusy(true);
    try {
      const w = existing ? await webhooks.update(existing.name, body) : await webhooks.create(body);
      onSaved(w);
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open={open} title={existing ? `Edit webhook ${existing.name}` : 'New webhook'} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        {!existing && (
          <Field label="Name" required help="The URL becomes /api/v1/webhooks/<name>.">
            {(ids) => (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                value={name}
                onChange={(e) => setName(e.target.value)}
                placeholder="github-push"
              />
            )}
          </Field>
        )}
        <Field label="Description">
          {(ids) => (
            <input id={ids.id} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
        <label className="row" style={{ marginBottom: 12 }}>
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} /> Enabled
        </label>
        <label className="row" style={{ marginBottom: 12 }}>
          <input type="checkbox" checked={signed} onChange={(e) => setSigned(e.target.checked)} /> Require an
          HMAC signature
        </label>
        {signed && (
          <>
            <Field
              label="Secret"
              required={!existing?.hmac}
              help={existing?.hmac ? 'Leave empty to keep the current secret.' : undefined}
            >
              {(ids) => (
                <input
                  id={ids.id}
                  aria-describedby={ids.describedBy}
                  type="password"
                  autoComplete="off"
                  value={secret}
                  onChange={(e) => setSecret(e.target.value)}
                />
              )}
            </Field>
            <Field label="Algorithm">
              {(ids) => (
                <select
                  id={ids.id}
                  value={algorithm}
                  onChange={(e) => setAlgorithm(e.target.value as 'sha256' | 'sha512')}
                >
                  <option value="sha256">sha256</option>
                  <option value="sha512">sha512</option>
                </select>
              )}
            </Field>
            <Field
              label="Signature header"
              help="Default: X-Hub-Signature-256 style (server default when empty)."
            >
              {(ids) => (
                <input
                  id={ids.id}
                  aria-describedby={ids.describedBy}
                  value={header}
                  onChange={(e) => setHeader(e.target.value)}
                />
              )}
            </Field>
          </>
        )}
        <Field label="Largest payload (bytes)" help="Empty: the server's default.">
          {(ids) => (
            <input
              id={ids.id}
              aria-describedby={ids.describedBy}
              inputMode="numeric"
              value={maxBytes}
              onChange={(e) => setMaxBytes(e.target.value)}
            />
          )}
        </Field>
        <Field label="Calls per minute" help="Empty: no limit.">
          {(ids) => (
            <input
              id={ids.id}
              aria-describedby={ids.describedBy}
              inputMode="numeric"
              value={rate}
              onChange={(e) => setRate(e.target.value)}
            />
          )}
        </Field>
        <ErrorBox error={error} title="Not saved" />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : existing ? 'Save' : 'Create webhook'}
        </button>
      </form>
    </Dialog>
  );
}

export function WebhooksPage() {
  const { can } = useSession();
  const list = useLoad(() => webhooks.list({ page_size: 1000 }), []);
  const [creating, setCreating] = useState(false);
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Webhooks</h1>
        <span className="sub">HTTP endpoints that create events</span>
        <span className="grow" />
        {can('webhooks', 'create') && (
          <button type="button" className="primary" onClick={() => setCreating(true)}>
            New webhook
          </button>
        )}
      </div>
      <ErrorBox error={list.error} title="Could not list webhooks" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty title="No webhooks yet">
            A webhook gives other systems a URL to call; each call becomes a <code>core.webhook</code> event
            that rules can react to.
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>URL</th>
                <th>Signed</th>
                <th>Rules</th>
                <th>Enabled</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((w) => (
                <tr key={w.name}>
                  <td>
                    <Link to={`/webhooks/${seg(w.name)}`}>{w.name}</Link>
                    {w.implicit && <span className="tag">from a rule</span>}
                  </td>
                  <td className="mono small">{w.url}</td>
                  <td>{w.hmac ? w.hmac.algorithm : 'no'}</td>
                  <td className="small">{w.rule_refs.length}</td>
                  <td>{w.enabled ? 'yes' : 'no'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {creating && (
        <WebhookForm
          open={creating}
          onClose={() => setCreating(false)}
          onSaved={(w) => navigate(`/webhooks/${seg(w.name)}`)}
        />
      )}
    </div>
  );
}

export function WebhookPage({ params }: { params: Record<string, string> }) {
  const name = params.name!;
  const { can } = useSession();
  const hook = useLoad(() => webhooks.get(name), [name]);
  const [page, setPage] = useState(1);
  const calls = useLoad(() => webhooks.calls(name, { page, page_size: 25 }), [name, page]);
  const [editing, setEditing] = useState(false);
  if (hook.loading && !hook.data) return <Loading />;
  const w = hook.data;
  if (!w) return <ErrorBox error={hook.error} title={`Could not load webhook ${name}`} />;
  const url = absolute(w.url);
  return (
    <div className="stack">
      <div>
        <div className="crumbs">
          <Link to="/webhooks">Webhooks</Link>
        </div>
        <div className="page-head">
          <h1 className="mono">{w.name}</h1>
          {!w.enabled && <span className="tag">disabled</span>}
          <span className="grow" />
          {can('webhooks', 'update') && !w.implicit && (
            <button type="button" onClick={() => setEditing(true)}>
              Edit
            </button>
          )}
          {can('webhooks', 'delete') && !w.implicit && (
            <ConfirmButton
              label="Delete"
              question={
                <>
                  Delete the webhook <code>{w.name}</code>? Calls to its URL will be refused.
                </>
              }
              onConfirm={async () => {
                await webhooks.remove(w.name);
                navigate('/webhooks');
              }}
            />
          )}
        </div>
        {w.description && <p className="muted">{w.description}</p>}
      </div>
      <section className="card">
        <Props
          items={[
            [
              'URL',
              <span key="u" className="row">
                <code>POST {url}</code> <CopyButton text={url} />
              </span>,
            ],
            [
              'Trigger',
              <Link key="t" to={`/triggers/${seg(w.trigger_ref)}`}>
                {w.trigger_ref}
              </Link>,
            ],
            ['Signature', w.hmac ? `HMAC ${w.hmac.algorithm} in header ${w.hmac.header}` : 'none required'],
            ['Largest payload', formatBytes(w.max_payload_bytes)],
            ['Rate limit', w.rate_limit_per_minute ? `${w.rate_limit_per_minute} per minute` : 'none'],
            [
              'Rules',
              w.rule_refs.length ? (
                <span key="r">
                  {w.rule_refs.map((r, i) => (
                    <span key={r}>
                      {i > 0 && ', '}
                      <Link to={`/rules/${seg(r)}`}>{r}</Link>
                    </span>
                  ))}
                </span>
              ) : (
                'none yet'
              ),
            ],
          ]}
        />
        <p className="muted small" style={{ marginBottom: 0 }}>
          Try it:{' '}
          <code>
            curl -X POST -H 'content-type: application/json' -d '{'{"hello": "world"}'}' {url}
          </code>
        </p>
      </section>
      <section>
        <div className="row" style={{ justifyContent: 'space-between' }}>
          <h2>Calls</h2>
          <button type="button" className="small" onClick={calls.reload}>
            Refresh
          </button>
        </div>
        <ErrorBox error={calls.error} title="Could not list the calls" />
        {calls.data?.data.length === 0 && <p className="muted">No calls yet.</p>}
        {calls.data && calls.data.data.length > 0 && (
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>When</th>
                  <th>From</th>
                  <th className="num">Status</th>
                  <th>Signature</th>
                  <th className="num">Size</th>
                  <th>Event</th>
                  <th>Error</th>
                </tr>
              </thead>
              <tbody>
                {calls.data.data.map((c) => (
                  <tr key={c.id}>
                    <td>
                      <Time iso={c.received_at} />
                    </td>
                    <td className="mono small">{c.remote_ip ?? '—'}</td>
                    <td className="num">{c.status_code}</td>
                    <td>{c.signature_valid === null ? '—' : c.signature_valid ? 'valid' : 'invalid'}</td>
                    <td className="num">{formatBytes(c.body_bytes)}</td>
                    <td>{c.event_id ? <Link to={`/events/${c.event_id}`}>#{c.event_id}</Link> : '—'}</td>
                    <td className="small" style={{ color: 'var(--danger)' }}>
                      {c.error ?? ''}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        <Pager pagination={calls.data?.pagination} onPage={setPage} />
      </section>
      {editing && (
        <WebhookForm
          existing={w}
          open={editing}
          onClose={() => setEditing(false)}
          onSaved={(x) => hook.set(() => x)}
        />
      )}
    </div>
  );
}
