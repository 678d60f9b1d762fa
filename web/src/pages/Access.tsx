/** People and access: users (identities), roles with their grants, API keys, and one's own account. */
import { type FormEvent, useMemo, useState } from 'react';
import { api } from '../api/client.ts';
import { apiKeys, auth, identities, roles } from '../api/resources.ts';
import type { Grant, Identity, NewApiKey, Resource, Role, Verb } from '../api/types.ts';
import { useSession } from '../app/session.tsx';
import {
  ConfirmButton,
  CopyButton,
  Dialog,
  Empty,
  ErrorBox,
  Field,
  Loading,
  Props,
  Time,
} from '../components/ui.tsx';
import { useLoad } from '../lib/hooks.ts';

const RESOURCES: Resource[] = [
  'packs',
  'actions',
  'workflows',
  'triggers',
  'sensors',
  'rules',
  'webhooks',
  'events',
  'enforcements',
  'executions',
  'inquiries',
  'keys',
  'identities',
  'roles',
  'api_keys',
  'workers',
  'audit',
];
const VERBS: Verb[] = ['read', 'create', 'update', 'delete', 'execute', 'cancel', 'respond', 'decrypt'];

function NotAllowed({ what }: { what: string }) {
  return (
    <div className="card">
      <Empty title="Not for you">You do not have the permission to see {what}. Ask an administrator.</Empty>
    </div>
  );
}

function UserForm({
  existing,
  roleNames,
  onClose,
  onSaved,
}: {
  existing?: Identity;
  roleNames: string[];
  onClose: () => void;
  onSaved: () => void;
}) {
  const [login, setLogin] = useState(existing?.login ?? '');
  const [displayName, setDisplayName] = useState(existing?.display_name ?? '');
  const [email, setEmail] = useState(existing?.email ?? '');
  const [kind, setKind] = useState<'user' | 'service'>(existing?.kind ?? 'user');
  const [password, setPassword] = useState('');
  const [chosen, setChosen] = useState<string[]>(existing?.roles ?? ['viewer']);
  const [disabled, setDisabled] = useState(existing?.disabled ?? false);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body: Record<string, unknown> = {
        display_name: displayName,
        email: email.trim() || null,
        roles: chosen,
        disabled,
      };
      if (password) body.password = password;
      if (existing) await identities.update(existing.id, body);
      else await identities.create({ ...body, login: login.trim(), kind });
      onSaved();
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open title={existing ? `Edit ${existing.login}` : 'New user'} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        {!existing && (
          <>
            <Field label="Login" required>
              {(ids) => (
                <input
                  id={ids.id}
                  value={login}
                  onChange={(e) => setLogin(e.target.value)}
                  autoComplete="off"
                />
              )}
            </Field>
            <Field label="Kind" help="A service account is for scripts: it signs in with API keys.">
              {(ids) => (
                <select
                  id={ids.id}
                  aria-describedby={ids.describedBy}
                  value={kind}
                  onChange={(e) => setKind(e.target.value as 'user' | 'service')}
                >
                  <option value="user">person</option>
                  <option value="service">service account</option>
                </select>
              )}
            </Field>
          </>
        )}
        <Field label="Display name">
          {(ids) => (
            <input id={ids.id} value={displayName} onChange={(e) => setDisplayName(e.target.value)} />
          )}
        </Field>
        <Field label="Email">
          {(ids) => (
            <input id={ids.id} type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          )}
        </Field>
        {kind === 'user' && (
          <Field
            label={existing ? 'New password' : 'Password'}
            help={existing ? 'Empty: unchanged. Setting it ends their sessions.' : undefined}
          >
            {(ids) => (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                type="password"
                autoComplete="new-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            )}
          </Field>
        )}
        <fieldset style={{ border: 0, padding: 0, marginBottom: 12 }}>
          <legend className="label" style={{ fontWeight: 600, marginBottom: 4 }}>
            Roles
          </legend>
          <div className="row">
            {roleNames.map((r) => (
              <label className="row" key={r} style={{ marginRight: 10 }}>
                <input
                  type="checkbox"
                  checked={chosen.includes(r)}
                  onChange={(e) =>
                    setChosen(e.target.checked ? [...chosen, r] : chosen.filter((x) => x !== r))
                  }
                />
                {r}
              </label>
            ))}
          </div>
        </fieldset>
        {existing && (
          <label className="row" style={{ marginBottom: 12 }}>
            <input type="checkbox" checked={disabled} onChange={(e) => setDisabled(e.target.checked)} />{' '}
            Disabled (cannot sign in)
          </label>
        )}
        <ErrorBox error={error} title="Not saved" />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : existing ? 'Save' : 'Create user'}
        </button>
      </form>
    </Dialog>
  );
}

export function UsersPage() {
  const { can, me } = useSession();
  const list = useLoad(
    () => (can('identities', 'read') ? identities.list({ page_size: 1000 }) : Promise.resolve(undefined)),
    [],
  );
  const roleList = useLoad(
    () => (can('roles', 'read') ? roles.list({ page_size: 1000 }) : Promise.resolve(undefined)),
    [],
  );
  const [editing, setEditing] = useState<Identity | 'new' | null>(null);
  if (!can('identities', 'read')) return <NotAllowed what="users" />;
  const rows = list.data?.data ?? [];
  const roleNames = (roleList.data?.data ?? []).map((r) => r.name);
  return (
    <div>
      <div className="page-head">
        <h1>Users</h1>
        <span className="sub">people and service accounts</span>
        <span className="grow" />
        {can('identities', 'create') && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            New user
          </button>
        )}
      </div>
      <ErrorBox error={list.error} title="Could not list users" />
      {list.loading && !list.data && <Loading />}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Login</th>
                <th>Name</th>
                <th>Kind</th>
                <th>Roles</th>
                <th>Last sign-in</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((u) => (
                <tr key={u.id}>
                  <td>
                    <code>{u.login}</code>
                    {u.disabled && <span className="tag">disabled</span>}
                  </td>
                  <td>{u.display_name}</td>
                  <td>{u.kind === 'service' ? 'service account' : 'person'}</td>
                  <td>{u.roles.join(', ') || <span className="muted">none</span>}</td>
                  <td>
                    <Time iso={u.last_login_at} relative />
                  </td>
                  <td className="num">
                    <span className="row" style={{ justifyContent: 'flex-end' }}>
                      {can('identities', 'update') && (
                        <button type="button" className="small" onClick={() => setEditing(u)}>
                          Edit
                        </button>
                      )}
                      {can('identities', 'delete') && u.id !== me.id && (
                        <ConfirmButton
                          label="Delete"
                          className="danger small"
                          question={
                            <>
                              Delete <code>{u.login}</code>? Their sessions, API keys and personal keys go
                              too.
                            </>
                          }
                          onConfirm={async () => {
                            await identities.remove(u.id);
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
      {editing && (
        <UserForm
          existing={editing === 'new' ? undefined : editing}
          roleNames={roleNames}
          onClose={() => setEditing(null)}
          onSaved={list.reload}
        />
      )}
    </div>
  );
}

function GrantGrid({
  grants,
  onChange,
  readOnly,
}: {
  grants: Grant[];
  onChange?: (g: Grant[]) => void;
  readOnly?: boolean;
}) {
  const has = (r: Resource, v: Verb) =>
    grants.some(
      (g) => (g.resource === r || g.resource === '*') && (g.actions.includes(v) || g.actions.includes('*')),
    );
  const toggle = (r: Resource, v: Verb) => {
    if (!onChange) return;
    const on = has(r, v);
    const own = grants.find((g) => g.resource === r);
    const rest = grants.filter((g) => g.resource !== r);
    const actions = own ? own.actions.filter((a) => a !== v && a !== '*') : [];
    if (!on) actions.push(v);
    onChange(actions.length ? [...rest, { resource: r, actions }] : rest);
  };
  return (
    <div className="table-wrap">
      <table className="grants">
        <thead>
          <tr>
            <th>Resource</th>
            {VERBS.map((v) => (
              <th key={v}>{v}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {RESOURCES.map((r) => (
            <tr key={r}>
              <td>{r}</td>
              {VERBS.map((v) => (
                <td key={v}>
                  <input
                    type="checkbox"
                    aria-label={`${r}: ${v}`}
                    checked={has(r, v)}
                    disabled={readOnly}
                    onChange={() => toggle(r, v)}
                  />
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function RoleForm({
  existing,
  onClose,
  onSaved,
}: {
  existing?: Role;
  onClose: () => void;
  onSaved: () => void;
}) {
  const [name, setName] = useState(existing?.name ?? '');
  const [description, setDescription] = useState(existing?.description ?? '');
  const [grants, setGrants] = useState<Grant[]>(
    existing?.grants ?? [{ resource: 'executions', actions: ['read'] }],
  );
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (existing) await roles.update(existing.name, { description, grants });
      else await roles.create({ name: name.trim(), description, grants });
      onSaved();
      onClose();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog open wide title={existing ? `Edit role ${existing.name}` : 'New role'} onClose={onClose}>
      <form onSubmit={submit} noValidate>
        {!existing && (
          <Field label="Name" required>
            {(ids) => <input id={ids.id} value={name} onChange={(e) => setName(e.target.value)} />}
          </Field>
        )}
        <Field label="Description">
          {(ids) => (
            <input id={ids.id} value={description} onChange={(e) => setDescription(e.target.value)} />
          )}
        </Field>
        <GrantGrid grants={grants} onChange={setGrants} />
        <p className="muted small">You can only grant what you hold yourself.</p>
        <ErrorBox error={error} title="Not saved" />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : existing ? 'Save' : 'Create role'}
        </button>
      </form>
    </Dialog>
  );
}

export function RolesPage() {
  const { can } = useSession();
  const list = useLoad(
    () => (can('roles', 'read') ? roles.list({ page_size: 1000 }) : Promise.resolve(undefined)),
    [],
  );
  const [open, setOpen] = useState<string | null>(null);
  const [editing, setEditing] = useState<Role | 'new' | null>(null);
  if (!can('roles', 'read')) return <NotAllowed what="roles" />;
  const rows = list.data?.data ?? [];
  const shown = rows.find((r) => r.name === open);
  return (
    <div>
      <div className="page-head">
        <h1>Roles</h1>
        <span className="sub">sets of permissions given to users</span>
        <span className="grow" />
        {can('roles', 'create') && (
          <button type="button" className="primary" onClick={() => setEditing('new')}>
            New role
          </button>
        )}
      </div>
      <ErrorBox error={list.error} title="Could not list roles" />
      {list.loading && !list.data && <Loading />}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Role</th>
                <th>Description</th>
                <th className="num">Members</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((r) => (
                <tr key={r.name}>
                  <td>
                    <button
                      type="button"
                      className="link"
                      onClick={() => setOpen(open === r.name ? null : r.name)}
                      aria-expanded={open === r.name}
                    >
                      {r.name}
                    </button>
                    {r.builtin && <span className="tag">built in</span>}
                  </td>
                  <td className="muted">{r.description}</td>
                  <td className="num">{r.member_count}</td>
                  <td className="num">
                    {!r.builtin && (
                      <span className="row" style={{ justifyContent: 'flex-end' }}>
                        {can('roles', 'update') && (
                          <button type="button" className="small" onClick={() => setEditing(r)}>
                            Edit
                          </button>
                        )}
                        {can('roles', 'delete') && (
                          <ConfirmButton
                            label="Delete"
                            className="danger small"
                            question={
                              <>
                                Delete the role <code>{r.name}</code>? Its {r.member_count} members lose its
                                permissions.
                              </>
                            }
                            onConfirm={async () => {
                              await roles.remove(r.name, r.member_count > 0);
                              list.reload();
                            }}
                          />
                        )}
                      </span>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {shown && (
        <section className="card" style={{ marginTop: 16 }}>
          <h2>Permissions of {shown.name}</h2>
          <GrantGrid grants={shown.grants} readOnly />
        </section>
      )}
      {editing && (
        <RoleForm
          existing={editing === 'new' ? undefined : editing}
          onClose={() => setEditing(null)}
          onSaved={list.reload}
        />
      )}
    </div>
  );
}

export function ApiKeysPage() {
  const { can, me } = useSession();
  const [all, setAll] = useState(false);
  const list = useLoad(
    () => apiKeys.list({ page_size: 1000, status: 'all', identity: all ? undefined : me.login }),
    [all, me.login],
  );
  const [name, setName] = useState('');
  const [days, setDays] = useState('');
  const [created, setCreated] = useState<NewApiKey | null>(null);
  const [error, setError] = useState<unknown>(null);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    try {
      const k = await apiKeys.create({
        name: name.trim(),
        ...(days.trim() ? { expires_in_days: Number(days) } : {}),
      });
      setCreated(k);
      setName('');
      setDays('');
      list.reload();
    } catch (err) {
      setError(err);
    }
  };
  const rows = list.data?.data ?? [];
  return (
    <div className="stack">
      <div className="page-head">
        <h1>API keys</h1>
        <span className="sub">credentials for scripts: send as X-API-Key</span>
        <span className="grow" />
        {can('api_keys', 'read') && (
          <label className="row small">
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> everyone's keys
          </label>
        )}
      </div>
      <form className="card" onSubmit={create} noValidate>
        <h2>New key for {me.login}</h2>
        <div className="grid two">
          <Field label="Name" required help="What it is for, e.g. 'ci-deploys'.">
            {(ids) => (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                value={name}
                onChange={(e) => setName(e.target.value)}
              />
            )}
          </Field>
          <Field label="Expires after (days)" help="Empty: never.">
            {(ids) => (
              <input
                id={ids.id}
                aria-describedby={ids.describedBy}
                inputMode="numeric"
                value={days}
                onChange={(e) => setDays(e.target.value)}
              />
            )}
          </Field>
        </div>
        <ErrorBox error={error} title="Not created" />
        <button type="submit" className="primary" disabled={!name.trim()}>
          Create key
        </button>
        {created && (
          <div className="alert ok" role="status" style={{ marginTop: 12 }}>
            <strong>Copy the key now: it is shown only once.</strong>
            <div className="row" style={{ marginTop: 6 }}>
              <code style={{ overflowWrap: 'anywhere' }}>{created.key}</code>
              <CopyButton text={created.key} />
            </div>
          </div>
        )}
      </form>
      <ErrorBox error={list.error} title="Could not list keys" />
      {list.data && rows.length === 0 && <p className="muted">No API keys yet.</p>}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Name</th>
                <th>Key</th>
                <th>For</th>
                <th>Status</th>
                <th>Last used</th>
                <th>Expires</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {rows.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td>
                  <td className="mono small">{k.prefix}…</td>
                  <td>{k.identity}</td>
                  <td>{k.status}</td>
                  <td>
                    <Time iso={k.last_used_at} relative />
                  </td>
                  <td>
                    <Time iso={k.expires_at} />
                  </td>
                  <td className="num">
                    {k.status === 'active' ? (
                      <ConfirmButton
                        label="Revoke"
                        className="danger small"
                        question={
                          <>
                            Revoke <code>{k.name}</code>? Scripts using it stop working at once.
                          </>
                        }
                        onConfirm={async () => {
                          await apiKeys.revoke(k.id);
                          list.reload();
                        }}
                      />
                    ) : (
                      <ConfirmButton
                        label="Delete"
                        className="danger small"
                        question={
                          <>
                            Delete the record of <code>{k.name}</code>?
                          </>
                        }
                        onConfirm={async () => {
                          await apiKeys.remove(k.id);
                          list.reload();
                        }}
                      />
                    )}
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

export function AccountPage() {
  const { me } = useSession();
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const mismatch = again !== '' && next !== again;
  const grants = useMemo(() => me.grants, [me.grants]);
  const change = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(false);
    if (next !== again) return;
    try {
      api.adopt(await auth.changePassword(current, next));
      setDone(true);
      setCurrent('');
      setNext('');
      setAgain('');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div className="stack">
      <div className="page-head">
        <h1>My account</h1>
      </div>
      <div className="grid two" style={{ alignItems: 'start' }}>
        <section className="card">
          <Props
            items={[
              ['Login', <code key="l">{me.login}</code>],
              ['Name', me.display_name],
              ['Email', me.email],
              ['Roles', me.roles.join(', ')],
              ['Signed in with', me.via === 'jwt' ? 'password' : 'an API key'],
              ['Last sign-in', <Time key="t" iso={me.last_login_at} />],
            ]}
          />
          <div className="row" style={{ marginTop: 12 }}>
            <button type="button" onClick={() => void api.logout()}>
              Sign out
            </button>
          </div>
        </section>
        {me.kind === 'user' && (
          <form className="card" onSubmit={change} noValidate>
            <h2>Change password</h2>
            <Field label="Current password" required>
              {(ids) => (
                <input
                  id={ids.id}
                  type="password"
                  autoComplete="current-password"
                  value={current}
                  onChange={(e) => setCurrent(e.target.value)}
                />
              )}
            </Field>
            <Field label="New password" required>
              {(ids) => (
                <input
                  id={ids.id}
                  type="password"
                  autoComplete="new-password"
                  value={next}
                  onChange={(e) => setNext(e.target.value)}
                />
              )}
            </Field>
            <Field
              label="New password again"
              required
              error={mismatch ? 'The two passwords differ' : undefined}
            >
              {(ids) => (
                <input
                  id={ids.id}
                  aria-describedby={ids.describedBy}
                  aria-invalid={ids.invalid}
                  type="password"
                  autoComplete="new-password"
                  value={again}
                  onChange={(e) => setAgain(e.target.value)}
                />
              )}
            </Field>
            <ErrorBox error={error} title="Not changed" />
            {done && (
              <div className="alert ok" role="status">
                Password changed. Your other sessions were signed out.
              </div>
            )}
            <button type="submit" className="primary" disabled={!current || !next || mismatch}>
              Change password
            </button>
          </form>
        )}
      </div>
      <section className="card">
        <h2>What I may do</h2>
        <GrantGrid grants={grants} readOnly />
      </section>
    </div>
  );
}
