/** Sign in with login and password; says why when a session ended on its own. */
import { type FormEvent, useState } from 'react';
import { ApiError, api } from '../api/client.ts';
import { ErrorBox } from '../components/ui.tsx';

export function LoginPage({ reason, onLoggedIn }: { reason?: string; onLoggedIn: () => void }) {
  const [login, setLogin] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await api.login(login.trim(), password);
      onLoggedIn();
    } catch (err) {
      setError(err);
      setPassword('');
    } finally {
      setBusy(false);
    }
  };
  const title =
    error instanceof ApiError && error.status === 401
      ? 'Wrong login or password'
      : error instanceof ApiError && error.status === 429
        ? 'Too many attempts'
        : undefined;
  return (
    <div className="login">
      <form className="card" onSubmit={submit} aria-labelledby="login-title">
        <div className="row" style={{ marginBottom: 12 }}>
          <img src="/favicon.svg" alt="" width={28} height={28} />
          <h1 id="login-title" style={{ margin: 0 }}>
            Sign in to Attune
          </h1>
        </div>
        {reason && !error && (
          <div className="alert warn" role="status">
            {reason}
          </div>
        )}
        <ErrorBox error={error} title={title} />
        <div className="field">
          <label htmlFor="login">Login</label>
          <input
            id="login"
            name="login"
            autoComplete="username"
            value={login}
            onChange={(e) => setLogin(e.target.value)}
            required
            // biome-ignore lint/a11y/noAutofocus: the only thing to do on this page
            autoFocus
          />
        </div>
        <div className="field">
          <label htmlFor="password">Password</label>
          <input
            id="password"
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
          />
        </div>
        <button
          type="submit"
          className="primary"
          disabled={busy || !login || !password}
          style={{ width: '100%' }}
        >
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small" style={{ marginBottom: 0 }}>
          First start? The password of <code>admin</code> was printed by <code>npm start</code> and saved in
          the data directory (<code>.attune/admin-password</code>).
        </p>
      </form>
    </div>
  );
}
