/** Keys: the datastore. Encrypted values stay masked until revealed (with the decrypt permission). */
import { type FormEvent, useState } from 'react';
import { keys } from '../api/resources.ts';
import type { KeyRecord } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import { ConfirmButton, Dialog, Empty, ErrorBox, Field, Loading, Pager, Time } from '../components/ui.tsx';
import { pretty } from '../lib/format.ts';
import { useDebounced, useLoad } from '../lib/hooks.ts';

const scopeQuery = (k: KeyRecord) => ({
  scope: k.scope,
  owner: k.scope === 'user' ? (k.owner ?? undefined) : undefined,
});

function ValueCell({ k }: { k: KeyRecord }) {
  const { can } = useSession();
  const [shown, setShown] = useState<unknown>(undefined);
  const [error, setError] = useState<string | null>(null);
  const hidden = k.encrypted || k.masked;
  if (!hidden || shown !== undefined) {
    const v = hidden ? shown : k.value;
    return (
      <span className="row">
        <code className="ellipsis" style={{ maxWidth: 360, display: 'inline-block' }}>
          {typeof v === 'string' ? v : JSON.stringify(v)}
        </code>
        {hidden && (
          <button type="button" className="small" onClick={() => setShown(undefined)}>
            Hide
          </button>
        )}
      </span>
    );
  }
  return (
    <span className="row">
      <span className="muted" title="hidden value">
        ••••••••
      </span>
      {can('keys', 'decrypt') ? (
        <button
          type="button"
          className="small"
          onClick={async () => {
            setError(null);
            try {
              const r = await keys.get(k.name, { ...scopeQuery(k), decrypt: true });
              setShown(r.value);
            } catch (e) {
              setError((e as Error).message);
            }
          }}
        >
          Reveal
        </button>
      ) : (
        <span className="muted small">(needs keys:decrypt to reveal)</span>
      )}
      {error && (
        <span className="small" role="alert" style={{ color: 'var(--danger)' }}>
          {error}
        </span>
      )}
    </span>
  );
}

function KeyForm({
  existing,
  onClose,
  onSaved,
}: {
  existing?: KeyRecord;
  onClose: () => void;
  onSaved: () => void;
}) {
  const { can } = useSession();
  const [name, setName] = useState(existing?.name ?? '');
  const [asJson, setAsJson] = useState(
    existing ? typeof existing.value !== 'string' && !existing.encrypted : false,
  );
  const [value, setValue] = useState(
    existing && !existing.encrypted && !existing.masked
      ? typeof existing.value === 'string'
        ? existing.value
        : pretty(existing.value)
      : '',
  );
  const [encrypted, setEncrypted] = useState(existing?.encrypted ?? false);
  const [description, setDescription] = useState(existing?.description ?? '');
  const [ttl, setTtl] = useState('');
  const [scope, setScope] = useState<'system' | 'user'>(existing?.scope ?? 'system');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const keepSecret = !!existing && (existing.encrypted || existing.masked);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    let v: unknown = value;
    if (asJson) {
      try {
        v = JSON.parse(value);
      } catch (err) {
        setError(new Error(`The value is not valid JSON: ${(err as Error).message}`));
        return;
      }
    }
    const ttlNum = ttl.trim() ? Number(ttl) : undefined;
    if (ttlNum !== undefined && (!Number.isInteger(ttlNum) || ttlNum < 1)) {
      setError(new Error('The time to live is a whole number of seconds'));
      return;
    }
    setBusy(true);
    try {
      if (existing) {
        const body: Record<string, unknown> = { description, encrypted };
        if (!(keepSecret && value === '')) body.value = v;
        if (ttlNum !== undefined) body.ttl = ttlNum;
        await keys.update(existing.name, scopeQuery(existing), body);
      } else {
        await keys.create({
          name: name.trim(),
          value: v,
          encrypted,
          description,
          scope,
          ...(ttlNum ? { ttl: ttlNum } : {}),
        });
      }
      onSaved();
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open title={existing ? `Edit key ${existing.name}` : 'New key'} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        {!existing && (
          <Field label="Name" required help="Templates read it as {{ keys.name }}.">
            {(ids) => (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                value={name}
                onChange={(e) => setName(e.target.value)}
              />
            )}
          </Field>
        )}
        <Field
          label="Value"
          help={keepSecret ? 'Leave empty to keep the current (hidden) value.' : undefined}
        >
          {(ids) =>
            asJson ? (
              <textarea
                id={ids.id}
                aria-describedby={ids.describedBy}
                rows={5}
                value={value}
                onChange={(e) => setValue(e.target.value)}
                spellCheck={false}
              />
            ) : (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                type={encrypted ? 'password' : 'text'}
                autoComplete="off"
                value={value}
                onChange={(e) => setValue(e.target.value)}
              />
            )
          }
        </Field>
        <label className="row" style={{ marginBottom: 10 }}>
          <input type="checkbox" checked={asJson} onChange={(e) => setAsJson(e.target.checked)} /> The value
          is JSON (a number, list, object…)
        </label>
        <label className="row" style={{ marginBottom: 10 }}>
          <input type="checkbox" checked={encrypted} onChange={(e) => setEncrypted(e.target.checked)} />{' '}
          Encrypt it (shown masked; only actions and people with keys:decrypt see it)
        </label>
        <Field label="Description">
          {(ids) => (
            <input id={ids.id} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
        <Field label="Expires after (seconds)" help="Empty: never.">
          {(ids) => (
            <input
              id={ids.id}
              aria-describedby={ids.describedBy}
              inputMode="numeric"
              value={ttl}
              onChange={(e) => setTtl(e.target.value)}
            />
          )}
        </Field>
        {!existing && (
          <Field label="Scope" help="System keys are shared; user keys belong to you.">
            {(ids) => (
              <select
                id={ids.id}
                aria-describedby={ids.describedBy}
                value={scope}
                onChange={(e) => setScope(e.target.value as 'system' | 'user')}
              >
                <option value="system" disabled={!can('keys', 'create')}>
                  system
                </option>
                <option value="user">user (mine)</option>
              </select>
            )}
          </Field>
        )}
        <ErrorBox error={error} title="Not saved" />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : existing ? 'Save' : 'Create key'}
        </button>
      </form>
    </Dialog>
  );
}

export function KeysPage() {
  const { can } = useSession();
  const [scope, setScope] = useState('');
  const [text, setText] = useState('');
  const [page, setPage] = useState(1);
  const q = useDebounced(text.trim(), 250);
  const list = useLoad(
    () => keys.list({ scope: scope || undefined, search: q || undefined, page, page_size: 100 }),
    [scope, q, page],
  );
  const [editing, setEditing] = useState<KeyRecord | 'new' | null>(null);
  const rows = list.data?.data ?? [];
  return (
    <div>
      <div className="page-head">
        <h1>Keys</h1>
        <span className="sub">values and secrets for templates: {'{{ keys.name }}'}</span>
        <span className="grow" />
        <button type="button" className="primary" onClick={() => setEditing('new')}>
          New key
        </button>
      </div>
      <div className="toolbar">
        <input
          type="search"
          aria-label="Search keys"
          placeholder="Search by name"
          value={text}
          onChange={(e) => setText(e.target.value)}
        />
        <select value={scope} onChange={(e) => setScope(e.target.value)} aria-label="Scope">
          <option value="">all scopes</option>
          <option value="system">system</option>
          <option value="user">user</option>
        </select>
      </div>
      <ErrorBox error={list.error} title="Could not list keys" />
      {list.loading && !list.data && <Loading />}
      {list.data && rows.length === 0 && (
        <div className="card">
          <Empty title={q || scope ? 'No key matches' : 'No keys yet'}>
            Keys hold values that rules and workflows read — API tokens, hostnames, thresholds. Encrypt the
            secret ones.
          </Empty>
        </div>
      )}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Value</th>
                <th>Scope</th>
                <th>Expires</th>
                <th>Updated</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((k) => (
                <tr key={`${k.scope}:${k.owner ?? ''}:${k.name}`}>
                  <td>
                    <code>{k.name}</code>
                    {k.encrypted && <span className="tag">encrypted</span>}
                    {k.description && <div className="muted small">{k.description}</div>}
                  </td>
                  <td>
                    <ValueCell k={k} />
                  </td>
                  <td className="small">
                    {k.scope}
                    {k.owner ? ` (${k.owner})` : ''}
                  </td>
                  <td>
                    <Time iso={k.expires_at} relative />
                  </td>
                  <td>
                    <Time iso={k.updated_at} />
                  </td>
                  <td className="num">
                    <span className="row" style={{ justifyContent: 'flex-end' }}>
                      {(can('keys', 'update') || k.scope === 'user') && (
                        <button type="button" className="small" onClick={() => setEditing(k)}>
                          Edit
                        </button>
                      )}
                      {(can('keys', 'delete') || k.scope === 'user') && (
                        <ConfirmButton
                          label="Delete"
                          className="danger small"
                          question={
                            <>
                              Delete the key <code>{k.name}</code>? Templates that read it will fail.
                            </>
                          }
                          onConfirm={async () => {
                            await keys.remove(k.name, scopeQuery(k));
                            list.reload();
                          }}
                        />
                      )}
                    </span>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Pager pagination={list.data?.pagination} onPage={setPage} />
      {editing && (
        <KeyForm
          existing={editing === 'new' ? undefined : editing}
          onClose={() => setEditing(null)}
          onSaved={list.reload}
        />
      )}
    </div>
  );
}
