/**
 * `npm start` as a user runs it: a real process on a fresh data directory, then a second process on
 * the same directory, which must refuse to start instead of corrupting the database.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');

function startProcess(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: root,
    env: { ...process.env, ATTUNE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d) => {
    out += String(d);
  });
  child.stderr!.on('data', (d) => {
    out += String(d);
  });
  return { child, output: () => out };
}

async function waitFor(fn: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('embedded start', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-e2e-'));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts on a fresh data directory, prints how to log in, and a second process is refused', async () => {
    const first = startProcess({ ATTUNE_DATA_DIR: dataDir, ATTUNE_PORT: '0' });
    children.push(first.child);
    await waitFor(() => /Attune is ready at (http:\/\/\S+)/.test(first.output()), 30_000);
    const url = /Attune is ready at (http:\/\/\S+)/.exec(first.output())![1]!;
    const password = /password: (\S+)/.exec(first.output())![1]!;
    expect(fs.readFileSync(path.join(dataDir, 'admin-password'), 'utf8').trim()).toBe(password);
    expect(fs.statSync(path.join(dataDir, 'admin-password')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.join(dataDir, 'encryption.key')).mode & 0o777).toBe(0o600);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
    const login = await fetch(`${url}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ login: 'admin', password }),
    });
    expect(login.status).toBe(200);

    const second = startProcess({ ATTUNE_DATA_DIR: dataDir, ATTUNE_PORT: '0' });
    children.push(second.child);
    const code = await new Promise<number | null>((r) => second.child.on('exit', r));
    expect(code).toBe(1);
    expect(second.output()).toMatch(/data directory .* is in use by another Attune process/);

    // the first one is unharmed and stops cleanly, releasing the lock
    expect((await fetch(`${url}/health`)).status).toBe(200);
    first.child.kill('SIGTERM');
    expect(await new Promise<number | null>((r) => first.child.on('exit', r))).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'attune.lock'))).toBe(false);

    // a restart reuses the database: the generated password still works, no new one is printed
    const third = startProcess({ ATTUNE_DATA_DIR: dataDir, ATTUNE_PORT: '0' });
    children.push(third.child);
    await waitFor(() => /Attune is ready at/.test(third.output()), 30_000);
    expect(third.output()).not.toMatch(/password: /);
    third.child.kill('SIGTERM');
    await new Promise((r) => third.child.on('exit', r));
  }, 90_000);

  it('takes over a lock left by a process that died', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-e2e-'));
    fs.writeFileSync(path.join(dir, 'attune.lock'), '999999');
    const p = startProcess({ ATTUNE_DATA_DIR: dir, ATTUNE_PORT: '0', ATTUNE_ADMIN_PASSWORD: 'x-password-1' });
    children.push(p.child);
    await waitFor(() => /Attune is ready at/.test(p.output()), 30_000);
    p.child.kill('SIGTERM');
    await new Promise((r) => p.child.on('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
