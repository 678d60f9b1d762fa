/**
 * Sessions against a real server: login (never a password argument), the profile file (0600),
 * transparent renewal of the access token, sessions that ended, logout, API keys through
 * ATTUNE_API_KEY, profiles and the environment overrides.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { describeBackend } from '../support/backend.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { CliHome, ROOT, runCli } from './support.ts';

interface Profile {
  url?: string;
  user?: string;
  access_token?: string;
  access_expires_at?: string;
  refresh_token?: string;
  refresh_expires_at?: string;
}
interface ConfigDoc {
  current_profile?: string;
  profiles: Record<string, Profile>;
}

const readConfig = (home: CliHome): ConfigDoc =>
  parseYaml(fs.readFileSync(home.configFile, 'utf8')) as ConfigDoc;
const writeConfig = (home: CliHome, doc: ConfigDoc) => fs.writeFileSync(home.configFile, JSON.stringify(doc));

describeBackend('cli sessions', () => {
  let server: TestServer;
  let home: CliHome;
  const login = (h: CliHome, extra: string[] = []) =>
    runCli(h, ['login', '--url', server.url, '--password-stdin', ...extra], { input: `${ADMIN_PASSWORD}\n` });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });
  beforeEach(() => {
    home = new CliHome();
  });
  afterEach(() => home.remove());

  it('logs in with --password-stdin and keeps the session in a 0600 file', async () => {
    const r = await login(home);
    expect(r).toMatchObject({ code: 0, stdout: `Logged in to ${server.url} as admin\n`, stderr: '' });
    expect(fs.statSync(home.configFile).mode & 0o777).toBe(0o600);
    expect(fs.statSync(home.configDir).mode & 0o777).toBe(0o700);
    const text = fs.readFileSync(home.configFile, 'utf8');
    expect(text).not.toContain(ADMIN_PASSWORD);
    const doc = readConfig(home);
    expect(doc.current_profile).toBe('default');
    expect(doc.profiles.default).toMatchObject({ url: server.url, user: 'admin' });
    expect(doc.profiles.default?.access_token).toMatch(/^ey/);
    expect(Date.parse(doc.profiles.default!.access_expires_at!)).toBeGreaterThan(Date.now());

    const who = await runCli(home, ['whoami']);
    expect(who.code).toBe(0);
    expect(who.stdout).toMatch(/^login: +admin$/m);
    expect(who.stdout).toMatch(/^roles: +admin$/m);
    expect(who.stdout).toMatch(new RegExp(`^server: +${server.url}$`, 'm'));
    const json = await runCli(home, ['whoami', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      login: 'admin',
      roles: ['admin'],
      credentials: 'session',
    });
    expect(json.stdout).not.toContain(doc.profiles.default!.access_token!);
  });

  it('asks for the password on a terminal without echoing it', async () => {
    if (spawnSync('script', ['--version']).status !== 0) return; // util-linux `script` gives the terminal
    const main = path.join(ROOT, 'src/cli/main.ts');
    const child = spawn(
      'script',
      [
        '-qec',
        `stty cols 100 rows 40; ${process.execPath} --import tsx ${main} login --url ${server.url}`,
        '/dev/null',
      ],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'xterm', ...home.env() } },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (d.includes('Password for admin at')) child.stdin.write(`${ADMIN_PASSWORD}\r`);
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, out).toBe(0);
    expect(out).toContain(`Password for admin at ${server.url}: `);
    expect(out).not.toContain(ADMIN_PASSWORD);
    expect(out).toContain('Logged in to');
    expect(readConfig(home).profiles.default?.access_token).toMatch(/^ey/);
  });

  it('never takes the password from a non-terminal without --password-stdin, and refuses a wrong one', async () => {
    const [noTty, wrong, empty] = await Promise.all([
      runCli(home, ['login', '--url', server.url]),
      runCli(home, ['login', '--url', server.url, '--password-stdin'], { input: 'not-the-password\n' }),
      runCli(home, ['login', '--url', server.url, '--password-stdin'], { input: '' }),
    ]);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toContain('cannot ask for the password: standard input is not a terminal');
    expect(noTty.stderr).toContain('--password-stdin');
    expect(wrong).toMatchObject({ code: 1, stderr: 'error: invalid login or password\n' });
    expect(empty.code).toBe(2);
    expect(fs.existsSync(home.configFile)).toBe(false);
    const unknown = await runCli(home, ['login', '--password', 'x']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown option '--password'");
  });

  it('renews an expired access token with the refresh token, once, even for commands running at once', async () => {
    await login(home);
    const before = readConfig(home);
    const old = before.profiles.default!;
    writeConfig(home, {
      ...before,
      profiles: { default: { ...old, access_expires_at: new Date(Date.now() - 60_000).toISOString() } },
    });
    const results = await Promise.all([
      runCli(home, ['whoami', '-q']),
      runCli(home, ['pack', 'list', '-q']),
      runCli(home, ['action', 'list', '-q', '--pack', 'core']),
    ]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(results[0]!.stdout).toBe('admin\n');
    const after = readConfig(home).profiles.default!;
    expect(after.refresh_token).not.toBe(old.refresh_token);
    expect(after.access_token).not.toBe(old.access_token);
    expect(Date.parse(after.access_expires_at!)).toBeGreaterThan(Date.now());
    // the old refresh token was used exactly once: presenting it again is refused …
    const reuse = await server.request('POST', '/auth/refresh', {
      body: { refresh_token: old.refresh_token },
    });
    expect(reuse.status).toBe(401);
    // … which ends every session of the identity: once its access token expires, the CLI says so
    // and forgets the dead session
    const now = readConfig(home);
    writeConfig(home, {
      ...now,
      profiles: {
        default: { ...now.profiles.default, access_expires_at: new Date(Date.now() - 1000).toISOString() },
      },
    });
    const ended = await runCli(home, ['pack', 'list']);
    expect(ended.code).toBe(1);
    expect(ended.stderr).toContain(`error: your session at ${server.url} has ended`);
    expect(ended.stderr).toContain('hint: log in again with `attune login`');
    const gone = await runCli(home, ['pack', 'list']);
    expect(gone.stderr).toBe(`error: not logged in to ${server.url}\nhint: run \`attune login\`\n`);
    expect(readConfig(home).profiles.default?.refresh_token).toBeUndefined();
  });

  it('renews a refused access token transparently', async () => {
    await login(home);
    const doc = readConfig(home);
    writeConfig(home, {
      ...doc,
      profiles: { default: { ...doc.profiles.default, access_token: 'not-a-token' } },
    });
    const r = await runCli(home, ['whoami', '-q']);
    expect(r).toMatchObject({ code: 0, stdout: 'admin\n' });
    expect(readConfig(home).profiles.default?.access_token).toMatch(/^ey/);
  });

  it('says plainly when there is no session or a bad one', async () => {
    const none = await runCli(home, ['action', 'list', '--url', server.url]);
    expect(none).toMatchObject({ code: 1, stdout: '' });
    expect(none.stderr).toBe(`error: not logged in to ${server.url}\nhint: run \`attune login\`\n`);
    await login(home);
    const doc = readConfig(home);
    writeConfig(home, {
      ...doc,
      profiles: { default: { ...doc.profiles.default, access_token: 'bad', refresh_token: 'bad-too' } },
    });
    const bad = await runCli(home, ['action', 'list']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error: your session at .* has ended: /);
  });

  it('logs out: the refresh token is revoked on the server and forgotten locally', async () => {
    await login(home);
    const rt = readConfig(home).profiles.default!.refresh_token;
    // the session is what ends, even with an API key in the environment
    const out = await runCli(home, ['logout'], { env: { ATTUNE_API_KEY: 'not-a-key' } });
    expect(out).toMatchObject({ code: 0, stdout: `Logged out of ${server.url}\n` });
    const refresh = await server.request('POST', '/auth/refresh', { body: { refresh_token: rt } });
    expect(refresh.status).toBe(401);
    const p = readConfig(home).profiles.default!;
    expect(p).toEqual({ url: server.url, user: 'admin' });
    const again = await runCli(home, ['logout']);
    expect(again).toMatchObject({ code: 0, stdout: '' });
    expect(again.stderr).toContain(`not logged in to ${server.url}`);
    const who = await runCli(home, ['whoami']);
    expect(who.code).toBe(1);
  });

  it('forgets the session on logout even when the server is unreachable, and says so', async () => {
    await login(home);
    const doc = readConfig(home);
    // the same profile, pointing at a port where nothing listens
    const dead = 'http://127.0.0.1:9';
    writeConfig(home, { ...doc, profiles: { default: { ...doc.profiles.default, url: dead } } });
    const r = await runCli(home, ['logout']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('warning: removed the local session, but could not end it on the server');
    expect(readConfig(home).profiles.default?.access_token).toBeUndefined();
  });

  it('uses ATTUNE_API_KEY over the session; a revoked key is refused clearly', async () => {
    await login(home);
    const created = await runCli(home, ['api-key', 'create', 'ci', '-q']);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^\S{20,}$/);
    const human = await runCli(home, ['api-key', 'create', 'other']);
    expect(human.stdout).toContain('Copy it now: it is not shown again.');

    const other = new CliHome(); // no session at all: the key alone
    try {
      const who = await runCli(other, ['whoami', '--json'], {
        env: { ATTUNE_API_KEY: key, ATTUNE_URL: server.url },
      });
      expect(who.code, who.stderr).toBe(0);
      expect(JSON.parse(who.stdout)).toMatchObject({
        login: 'admin',
        credentials: 'ATTUNE_API_KEY',
        via: 'api_key',
      });
      const list = await runCli(home, ['api-key', 'list', '--json']);
      const keys = JSON.parse(list.stdout) as { id: number; name: string; status: string }[];
      const ci = keys.find((k) => k.name === 'ci')!;
      expect(ci.status).toBe('active');
      expect(list.stdout).not.toContain(key);
      const revoked = await runCli(home, ['api-key', 'revoke', String(ci.id)]);
      expect(revoked).toMatchObject({ code: 0, stdout: `Revoked API key ${ci.id} (ci, admin)\n` });
      const refused = await runCli(other, ['pack', 'list'], {
        env: { ATTUNE_API_KEY: key, ATTUNE_URL: server.url },
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^error: the API key in ATTUNE_API_KEY was refused: /);
      const missing = await runCli(home, ['api-key', 'revoke', '999999']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('not found');
    } finally {
      other.remove();
    }
  });

  it('keeps profiles apart, honours XDG_CONFIG_HOME, ATTUNE_PROFILE and ATTUNE_URL', async () => {
    await login(home);
    const second = await login(home, ['--profile', 'second', '--user', 'admin']);
    expect(second.stdout).toBe(`Logged in to ${server.url} as admin (profile second)\n`);
    const doc = readConfig(home);
    expect(doc.current_profile).toBe('default');
    expect(Object.keys(doc.profiles).sort()).toEqual(['default', 'second']);
    const list = await runCli(home, ['profile', 'list']);
    expect(list.stdout).toMatch(/^\* +default /m);
    expect(list.stdout).toMatch(/^ +second /m);
    const use = await runCli(home, ['profile', 'use', 'second']);
    expect(use.code).toBe(0);
    expect(readConfig(home).current_profile).toBe('second');
    const viaEnv = await runCli(home, ['whoami', '--json'], { env: { ATTUNE_PROFILE: 'default' } });
    expect(JSON.parse(viaEnv.stdout).profile).toBe('default');
    const unknown = await runCli(home, ['--profile', 'nope', '--url', server.url, 'whoami']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`not logged in to ${server.url}`);
    expect(unknown.stderr).toContain('attune login --profile nope');
    const badName = await runCli(home, ['--profile', '../x', 'whoami']);
    expect(badName.code).toBe(2);

    // another configuration folder: nothing there
    const xdg = path.join(home.dir, 'elsewhere');
    const elsewhere = await runCli(home, ['pack', 'list', '--url', server.url], {
      env: { XDG_CONFIG_HOME: xdg },
    });
    expect(elsewhere.stderr).toContain('not logged in');
    await runCli(home, ['login', '--url', server.url, '--password-stdin'], {
      input: ADMIN_PASSWORD,
      env: { XDG_CONFIG_HOME: xdg },
    });
    expect(fs.existsSync(path.join(xdg, 'attune', 'config.yaml'))).toBe(true);

    // ATTUNE_URL elsewhere: the profile's tokens are not sent there
    const seen: (string | undefined)[] = [];
    const spy = http.createServer((req, res) => {
      seen.push(req.headers.authorization ?? req.headers['x-api-key']?.toString());
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'Authentication required' } }));
    });
    await new Promise<void>((r) => spy.listen(0, '127.0.0.1', r));
    const spyUrl = `http://127.0.0.1:${(spy.address() as { port: number }).port}`;
    try {
      const r = await runCli(home, ['pack', 'list'], { env: { ATTUNE_URL: spyUrl } });
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`error: not logged in to ${spyUrl}`);
      const r2 = await runCli(home, ['--url', spyUrl, 'whoami']);
      expect(r2.code).toBe(1);
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(seen.every((h) => h === undefined)).toBe(true);
    } finally {
      spy.close();
    }
  });
});
