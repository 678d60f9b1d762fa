import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { runAction } from '../../src/services/worker/runners/runner.ts';
import { groupMembers, makeRequest, procView } from './runners-helpers.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const shell = (cmd: string, over: Partial<Parameters<typeof makeRequest>[0]> = {}) =>
  makeRequest({ runner: 'local-shell-cmd', ...over, parameters: { cmd, ...over.parameters } });

describe('local-shell-cmd: results and exit codes', () => {
  it('JSON printed on stdout becomes the structured result', async () => {
    const out = await runAction(shell(`echo '{"ok": true, "items": [1, 2]}'`).req);
    expect(out).toMatchObject({ status: 'succeeded', exitCode: 0, result: { ok: true, items: [1, 2] } });
    const arr = await runAction(shell(`printf '  [1, "two"]\\n\\n'`).req);
    expect(arr.result).toEqual([1, 'two']);
  });

  it('other output is returned as stdout, stderr and exit code', async () => {
    const out = await runAction(shell('echo plain text; echo warning >&2').req);
    expect(out).toMatchObject({
      status: 'succeeded',
      result: { stdout: 'plain text\n', stderr: 'warning\n', exit_code: 0 },
    });
    // a scalar or something that merely looks like JSON is not parsed
    expect((await runAction(shell('echo 42').req)).result).toEqual({
      stdout: '42\n',
      stderr: '',
      exit_code: 0,
    });
    expect((await runAction(shell(`echo '{not json'`).req)).result).toMatchObject({ stdout: '{not json\n' });
  });

  it('a non-zero exit fails with the exit code and the last stderr line', async () => {
    const out = await runAction(shell('echo partial; echo "first"  >&2; echo "disk full" >&2; exit 7').req);
    expect(out.status).toBe('failed');
    expect(out.exitCode).toBe(7);
    expect(out.error).toEqual({
      type: 'exit_code',
      exit_code: 7,
      message: 'command exited with code 7: disk full',
    });
    expect(out.result).toEqual({ stdout: 'partial\n', stderr: 'first\ndisk full\n', exit_code: 7 });
  });

  it('a failing command keeps a JSON result', async () => {
    const out = await runAction(shell(`echo '{"reason":"quota"}'; exit 2`).req);
    expect(out).toMatchObject({ status: 'failed', exitCode: 2, result: { reason: 'quota' } });
  });

  it('death by a signal is reported', async () => {
    const out = await runAction(shell('kill -SEGV $$').req);
    expect(out).toMatchObject({
      status: 'failed',
      exitCode: null,
      error: { type: 'signal', signal: 'SIGSEGV' },
    });
  });

  it('refuses a missing command, a bad cwd and a bad env', async () => {
    const cases: Record<string, unknown>[] = [
      { cmd: '' },
      { cmd: 42 },
      { cmd: 'pwd', cwd: 'relative/dir' },
      { cmd: 'pwd', cwd: '/no/such/dir' },
      { cmd: 'pwd', env: 'A=1' },
      { cmd: 'pwd', env: { 'BAD-NAME': '1' } },
      { cmd: 'pwd', env: { ATTUNE_EXECUTION_ID: '7' } },
      { cmd: 'pwd', env: { X: { nested: true } } },
    ];
    for (const parameters of cases) {
      const out = await runAction(makeRequest({ runner: 'local-shell-cmd', parameters }).req);
      expect(out, JSON.stringify(parameters)).toMatchObject({
        status: 'failed',
        error: { type: 'invalid_parameters' },
      });
    }
  });

  it('runs by default in a fresh scratch directory, removed afterwards', async () => {
    const work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'attune-work-')));
    try {
      const r = shell('pwd; ls -A | wc -l; touch leftover');
      const out = await runAction(r.req, { workDir: work });
      const [dir, count] = (out.result as { stdout: string }).stdout.trim().split('\n');
      expect(path.dirname(dir!)).toBe(work);
      expect(path.basename(dir!)).toMatch(/^attune-42-/);
      expect(count).toBe('0');
      expect(fs.existsSync(dir!)).toBe(false);
      expect(fs.readdirSync(work)).toEqual([]);
      const missing = await runAction(shell('pwd').req, { workDir: path.join(work, 'missing') });
      expect(missing).toMatchObject({ status: 'failed', error: { type: 'spawn_error' } });
      expect(missing.error?.message).toMatch(/cannot create a working directory/);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  it('runs in the given cwd, with extra env variables', async () => {
    const dir = fs.realpathSync(os.tmpdir());
    const out = await runAction(
      shell('printf "%s|%s|%s" "$PWD" "$GREETING" "$N"', {
        parameters: { cwd: dir, env: { GREETING: 'hi there', N: 3 } },
      }).req,
    );
    expect(out.result).toMatchObject({ stdout: `${dir}|hi there|3` });
  });
});

describe('local-shell-cmd: parameters, secrets and environment', () => {
  const saved: Record<string, string | undefined> = {};
  const workerSecrets = {
    ATTUNE_ENCRYPTION_KEY: 'worker-encryption-key-0001',
    ATTUNE_JWT_SECRET: 'worker-jwt-secret-0002',
    ATTUNE_DATABASE_URL: 'postgres://u:worker-db-pass-0003@h/db',
    ATTUNE_ADMIN_PASSWORD: 'worker-admin-password-0004',
  };
  for (const [k, v] of Object.entries(workerSecrets)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('parameters arrive as JSON on stdin, secrets included', async () => {
    const r = shell('cat', {
      parameters: { user: 'bob', password: 's3cr3t-pw', n: 2 },
      secretParameters: ['password'],
    });
    const out = await runAction(r.req);
    expect(out.result).toEqual({ cmd: 'cat', user: 'bob', password: 's3cr3t-pw', n: 2 });
  });

  it('a shell command reads a secret from stdin with jq', async () => {
    const out = await runAction(
      shell(`pw=$(jq -r .password); printf '%s' "$pw" | sha256sum | cut -c1-16`, {
        parameters: { password: 's3cr3t-pw' },
        secretParameters: ['password'],
      }).req,
    );
    const digest = createHash('sha256').update('s3cr3t-pw').digest('hex').slice(0, 16);
    expect(out).toMatchObject({ status: 'succeeded', result: { stdout: `${digest}\n` } });
  });

  it('secrets are never visible in the argv or environment of the running processes', async () => {
    const secret = 'very-secret-value-9f8e7d';
    const r = shell('cat >/dev/null; sleep 30 & echo "pid=$$"; sleep 30', {
      parameters: { password: secret, nested: { token: 'ignored' } },
      secretParameters: ['password'],
      envParameters: 'all-non-secret',
    });
    const running = runAction(r.req);
    const text = await r.waitFor('stdout', /pid=\d+/);
    const pgid = Number(/pid=(\d+)/.exec(text)![1]);
    const members = groupMembers(pgid);
    expect(members.length).toBeGreaterThanOrEqual(2);
    for (const pid of members) {
      const view = procView(pid);
      expect(view.cmdline).not.toContain(secret);
      expect(view.environ).not.toContain(secret);
      for (const v of Object.values(workerSecrets)) expect(view.environ).not.toContain(v);
      expect(view.environ).not.toMatch(/^ATTUNE_(ENCRYPTION_KEY|JWT_SECRET|DATABASE_URL|ADMIN_PASSWORD)=/m);
    }
    // the non-secret parameters were exported, the secret one was not
    const env = procView(pgid).environ;
    expect(env).toMatch(/^ATTUNE_PARAM_NESTED=\{"token":"ignored"\}$/m);
    expect(env).not.toMatch(/^ATTUNE_PARAM_PASSWORD=/m);
    r.controller.abort();
    expect((await running).status).toBe('canceled');
  });

  it('the environment is minimal and explicit, and never carries worker secrets', async () => {
    const r = shell('env', { executionId: 1234, actionRef: 'core.local' });
    const out = await runAction(r.req, {
      apiUrl: 'http://127.0.0.1:8080',
      passEnv: ['PATH', 'HOME', 'ATTUNE_JWT_SECRET'],
    });
    const stdout = (out.result as { stdout: string }).stdout;
    const env = Object.fromEntries(
      stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({
      ATTUNE_EXECUTION_ID: '1234',
      ATTUNE_ACTION_REF: 'core.local',
      ATTUNE_API_URL: 'http://127.0.0.1:8080',
      LANG: expect.any(String),
      HOME: expect.any(String),
      PATH: expect.any(String),
    });
    for (const k of Object.keys(workerSecrets)) expect(env).not.toHaveProperty(k);
    for (const v of Object.values(workerSecrets)) expect(stdout).not.toContain(v);
    // nothing else of the worker's environment leaks (e.g. the test runner's own variables)
    const allowed = new Set(['PATH', 'HOME', 'LANG', 'PWD', 'SHLVL', '_', 'OLDPWD']);
    const extra = Object.keys(env).filter((k) => !k.startsWith('ATTUNE_') && !allowed.has(k));
    expect(extra).toEqual([]);
    expect(
      Object.keys(env)
        .filter((k) => k.startsWith('ATTUNE_'))
        .sort(),
    ).toEqual(['ATTUNE_ACTION_REF', 'ATTUNE_API_URL', 'ATTUNE_EXECUTION_ID', 'ATTUNE_NODE']);
  });

  it('exports only the non-secret parameters the action opted in to', async () => {
    const parameters = {
      region: 'eu-west',
      count: 3,
      flag: true,
      list: [1, 2],
      'dash-name': 'x',
      password: 'pw-123456',
    };
    const listed = await runAction(
      shell('env | grep ^ATTUNE_PARAM_ | sort', {
        parameters,
        envParameters: ['region', 'count'],
        secretParameters: ['password'],
      }).req,
    );
    expect((listed.result as { stdout: string }).stdout).toBe(
      'ATTUNE_PARAM_COUNT=3\nATTUNE_PARAM_REGION=eu-west\n',
    );

    const all = await runAction(
      shell('env | grep ^ATTUNE_PARAM_ | sort', {
        parameters,
        envParameters: 'all-non-secret',
        secretParameters: ['password'],
      }).req,
    );
    expect((all.result as { stdout: string }).stdout).toBe(
      [
        'ATTUNE_PARAM_CMD=env | grep ^ATTUNE_PARAM_ | sort',
        'ATTUNE_PARAM_COUNT=3',
        'ATTUNE_PARAM_DASH_NAME=x',
        'ATTUNE_PARAM_FLAG=true',
        'ATTUNE_PARAM_LIST=[1,2]',
        'ATTUNE_PARAM_REGION=eu-west',
        '',
      ].join('\n'),
    );

    const none = await runAction(shell('env | grep -c ^ATTUNE_PARAM_ || true', { parameters }).req);
    expect((none.result as { stdout: string }).stdout).toBe('0\n');
  });

  it('refuses to put a secret in the environment or on the command line', async () => {
    const secretParameters = ['password'];
    const parameters = { password: 'pw-123456' };
    const listed = await runAction(
      shell('true', { parameters, secretParameters, envParameters: ['password'] }).req,
    );
    expect(listed).toMatchObject({ status: 'failed', error: { type: 'invalid_parameters' } });
    expect(listed.error?.message).toContain("'password' is secret");

    const inEnv = await runAction(
      shell('true', { parameters: { ...parameters, env: { PW: 'pw-123456' } }, secretParameters }).req,
    );
    expect(inEnv.error?.message).toMatch(
      /secret parameter 'password' would appear in environment variable 'PW'/,
    );

    const inCmd = await runAction(
      shell('curl -u admin:pw-123456 http://x', { parameters, secretParameters }).req,
    );
    expect(inCmd).toMatchObject({ status: 'failed', error: { type: 'invalid_parameters' } });
    expect(inCmd.error?.message).toMatch(/secret parameter 'password' appears in 'cmd'/);

    const secretCmd = await runAction(shell('echo x', { secretParameters: ['cmd'] }).req);
    expect(secretCmd.error?.message).toMatch(/'cmd' cannot be secret/);
  });

  it('a command that does not read its stdin is fine, and large parameters do not block', async () => {
    const big = 'y'.repeat(2 * 1024 * 1024);
    const ignore = await runAction(shell('echo done', { parameters: { big } }).req);
    expect(ignore).toMatchObject({ status: 'succeeded', result: { stdout: 'done\n' } });
    const read = await runAction(shell('wc -c', { parameters: { big } }).req);
    const n = Number((read.result as { stdout: string }).stdout.trim());
    expect(n).toBe(JSON.stringify({ cmd: 'wc -c', big }).length + 1);
  });
});

describe('local-shell-cmd: output', () => {
  it('streams output live, in order, while the command runs', async () => {
    const r = shell(
      'for i in 1 2 3; do echo out$i; sleep 0.05; echo err$i >&2; sleep 0.05; done; sleep 0.6; echo last',
    );
    const out = await runAction(r.req);
    expect(out.status).toBe('succeeded');
    const seq = r.events.flatMap((e) =>
      e.chunk
        .trim()
        .split('\n')
        .map((l) => `${e.stream}:${l}`),
    );
    expect(seq).toEqual([
      'stdout:out1',
      'stderr:err1',
      'stdout:out2',
      'stderr:err2',
      'stdout:out3',
      'stderr:err3',
      'stdout:last',
    ]);
    // the first line arrived long before the command ended
    expect(r.events[0]!.at).toBeLessThan(r.events.at(-1)!.at - 400);
  });

  it('keeps UTF-8 characters whole across chunk boundaries', async () => {
    const r = shell(`printf 'é'; sleep 0.1; printf '€\\n'`);
    const out = await runAction(r.req);
    expect((out.result as { stdout: string }).stdout).toBe('é€\n');
    expect(r.text('stdout')).toBe('é€\n');
  });

  it('caps a 20 MB producer: truncated, memory bounded, the process not blocked', async () => {
    const cap = 1024 * 1024;
    const r = shell(`head -c 20000000 /dev/zero | tr '\\0' a; echo finished >&2`, {
      limits: { maxOutputBytes: cap },
    });
    // memory still referenced after full collections (buffer backing stores are freed lazily, the
    // more so on a busy machine: the least of a few tries)
    const held = async () => {
      let least = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 5; i++) {
        gc();
        await new Promise((r) => setTimeout(r, 50));
        gc();
        const m = process.memoryUsage();
        least = Math.min(least, m.heapUsed + m.arrayBuffers);
      }
      return least;
    };
    const before = await held();
    const t = performance.now();
    const out = await runAction(r.req);
    const retained = (await held()) - before;
    expect(out.status).toBe('succeeded');
    expect(out.truncated).toEqual({ stdout: true, stderr: false });
    const result = out.result as { stdout: string; stderr: string };
    expect(result.stdout.length).toBe(cap);
    expect(result.stderr).toBe('finished\n');
    expect(r.text('stdout').length).toBe(cap);
    expect(performance.now() - t).toBeLessThan(10_000);
    // 20 MB went through; what is kept (outcome + recorded live output) is about twice the cap
    expect(retained).toBeLessThan(6 * cap);
  });

  it('caps each stream separately and does not parse a truncated JSON stdout', async () => {
    const r = shell(`echo '{"a": "${'z'.repeat(100)}"}'; head -c 5000 /dev/zero | tr '\\0' e >&2`, {
      limits: { maxOutputBytes: 50 },
    });
    const out = await runAction(r.req);
    expect(out.truncated).toEqual({ stdout: true, stderr: true });
    const result = out.result as { stdout: string; stderr: string };
    expect(result.stdout).toHaveLength(50);
    expect(result.stderr).toBe('e'.repeat(50));
  });
});

describe('local-shell-cmd: start-up failures', () => {
  it('a missing shell is a spawn error, not a crash', async () => {
    const out = await runAction(shell('true').req, { shell: path.join(os.tmpdir(), 'no-such-shell') });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'spawn_error' } });
    expect(out.error?.message).toContain('ENOENT');
  });
});
