/**
 * Running and following executions through the CLI against a real platform (scheduler and worker
 * included): `run` with live output and exit code by outcome, parameters from files and stdin,
 * `--async`, `tail`, `get`, `result`, `cancel`, `rerun`, `list` filters, Ctrl-C, workflows.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeBackend } from '../support/backend.ts';
import { ADMIN_PASSWORD, type AnyBody, startTestServer, type TestServer } from '../support/server.ts';
import { CliHome, ROOT, runCli, spawnCli, waitFor } from './support.ts';

describeBackend('cli executions', () => {
  let server: TestServer;
  const home = new CliHome();
  const cli = (args: string[], opts: Parameters<typeof runCli>[2] = {}) => runCli(home, args, opts);
  const exec = async (id: number): Promise<AnyBody> =>
    (await server.request<AnyBody>('GET', `/api/v1/executions/${id}`, { token: server.adminToken })).body
      .data;

  beforeAll(async () => {
    server = await startTestServer();
    const r = await runCli(home, ['login', '--url', server.url, '--password-stdin'], {
      input: ADMIN_PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
    expect(
      (await server.request('POST', '/api/v1/packs', { token: server.adminToken, body: { ref: 'clitest' } }))
        .status,
    ).toBe(201);
  });
  afterAll(async () => {
    await server?.stop();
    home.remove();
  });

  describe('run', () => {
    it('runs an action, prints its result and exits 0; string parameters keep their text', async () => {
      const r = await cli(['run', 'core.echo', 'message=hello world']);
      expect(r.code, r.stderr).toBe(0);
      // the echo runner prints its message as output, then the result follows
      expect(r.stdout).toMatch(
        /^hello world\n✔ core\.echo #\d+ succeeded in \d+(\.\d+)?m?s\nresult:\n {2}message: hello world\n$/,
      );
      const json = await cli(['--json', 'run', 'core.echo', 'message=123']);
      const e = JSON.parse(json.stdout) as AnyBody;
      expect(e).toMatchObject({
        status: 'succeeded',
        action_ref: 'core.echo',
        parameters: { message: '123' },
      });
      expect(e.result).toEqual({ message: '123' });
    });

    it('streams the output as it comes, stdout to stdout and stderr to stderr', async () => {
      const r = await cli(['run', 'core.local', 'cmd=echo one; echo two >&2; echo three']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.startsWith('one\nthree\n')).toBe(true);
      expect(r.stdout).toMatch(/✔ core\.local #\d+ succeeded/);
      // shown live, so not repeated in the result
      expect(r.stdout).not.toContain('stdout:');
      expect(r.stderr).toBe('two\n');
    });

    it('exits 1 when the execution does not succeed, with its error', async () => {
      const r = await cli(['run', 'core.local', 'cmd=echo oops >&2; exit 3']);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe('oops\n');
      expect(r.stdout).toMatch(/^✖ core\.local #\d+ failed in /m);
      expect(r.stdout).toContain('exit_code: 3');
      expect(r.stdout).toContain('error: command exited with code 3');
    });

    it('refuses unknown actions and invalid parameters with the server’s message', async () => {
      const [unknown, invalid, missing] = await Promise.all([
        cli(['run', 'core.nope', 'x=1']),
        cli(['run', 'core.sleep', 'seconds=soon']),
        cli(['run', 'core.local']),
      ]);
      expect(unknown).toMatchObject({ code: 1, stdout: '', stderr: "error: action 'core.nope' not found\n" });
      expect(invalid.code).toBe(1);
      expect(invalid.stderr).toBe(
        "error: parameters do not fit action 'core.sleep': /seconds must be number\n",
      );
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("parameters do not fit action 'core.local'");
      const debug = await cli(['--debug', 'run', 'core.sleep', 'seconds=soon']);
      expect(debug.stderr).toMatch(
        /\[debug\] POST http:\/\/\S+\/api\/v1\/executions → 400 Bad Request in \d+ ms/,
      );
      expect(debug.stderr).toContain('details:');
      expect(debug.stderr).not.toMatch(/Bearer|access_token|ey[A-Za-z0-9_-]{20,}/);
    });

    it('shows a spinner on a terminal without mangling the output, whatever the terminal width', async () => {
      if (spawnSync('script', ['--version']).status !== 0) return; // util-linux `script` gives the terminal
      const main = path.join(ROOT, 'src/cli/main.ts');
      const onTerminal = (stty: string) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const cmd = `${stty}${process.execPath} --import tsx ${main} run core.local 'cmd=echo a; sleep 1; printf partial; sleep 1; echo done'`;
          const child = spawn('script', ['-qec', cmd, '/dev/null'], {
            cwd: ROOT,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', TERM: 'xterm', ...home.env() },
          });
          let out = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => {
            out += d;
            if (out.length > 1_000_000) child.kill('SIGKILL');
          });
          child.on('close', (code) => resolve({ code, out }));
        });
      // biome-ignore lint/suspicious/noControlCharactersInRegex: the escapes are what is checked
      const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').replace(/\r/g, '');
      const sized = await onTerminal('stty cols 100 rows 40; ');
      expect(sized.code).toBe(0);
      expect(sized.out).toMatch(/core\.local #\d+ (requested|scheduled|running)/); // the spinner's text
      expect(plain(sized.out)).toContain('partialdone\n');
      expect(plain(sized.out)).toMatch(/✔ core\.local #\d+ succeeded/);
      // a terminal that reports no width gets no spinner rather than an endless redraw
      const unsized = await onTerminal('stty cols 0 rows 0; ');
      expect(unsized.code).toBe(0);
      expect(unsized.out.length).toBeLessThan(10_000);
      expect(plain(unsized.out)).toContain('partialdone\n');
    });

    it('reads values from files (@file) and standard input (@-)', async () => {
      const f = path.join(home.dir, 'message.txt');
      fs.writeFileSync(f, 'from a file\n');
      const [fromFile, fromStdin, missing] = await Promise.all([
        cli(['--json', 'run', 'core.echo', `message=@${f}`]),
        cli(['--json', 'run', 'core.echo', 'message=@-'], { input: 'from stdin\n' }),
        cli(['run', 'core.echo', `message=@${f}.nope`]),
      ]);
      expect(JSON.parse(fromFile.stdout).result.message).toBe('from a file\n');
      expect(JSON.parse(fromStdin.stdout).result.message).toBe('from stdin');
      expect(missing).toMatchObject({ code: 1, stderr: `error: no such file: ${f}.nope\n` });
    });
  });

  describe('following and managing executions', () => {
    it('--async prints the id; tail, get and result follow and show it', async () => {
      const a = await cli(['run', 'core.local', 'cmd=sleep 1; echo later', '--async', '-q']);
      expect(a.code).toBe(0);
      const id = Number(a.stdout.trim());
      expect(id).toBeGreaterThan(0);
      const tail = await cli(['execution', 'tail', String(id)]);
      expect(tail.code).toBe(0);
      expect(tail.stdout).toContain('later\n');
      expect(tail.stdout).toMatch(new RegExp(`✔ core\\.local #${id} succeeded`));
      const get = await cli(['execution', 'get', String(id)]);
      expect(get.stdout).toMatch(new RegExp(`^id: +${id}$`, 'm'));
      expect(get.stdout).toMatch(/^status: +succeeded$/m);
      expect(get.stdout).toMatch(/^started by: +admin$/m);
      expect(get.stdout).toContain('parameters\n  cmd: sleep 1; echo later');
      const result = await cli(['execution', 'result', String(id)]);
      expect(JSON.parse(result.stdout)).toMatchObject({ exit_code: 0, stdout: 'later\n' });
      const again = await cli(['execution', 'tail', String(id)]);
      expect(again.stdout.startsWith('later\n')).toBe(true);
      const missing = await cli(['execution', 'get', '999999']);
      expect(missing).toMatchObject({ code: 1, stderr: "error: execution '999999' not found\n" });
    });

    it('cancels, stops waiting after --wait-timeout, and stops following on Ctrl-C', async () => {
      const waited = await cli(['run', 'core.sleep', 'seconds=30', '--wait-timeout', '1']);
      expect(waited.code).toBe(1);
      const m = /execution (\d+) goes on/.exec(waited.stderr);
      expect(m, waited.stderr).not.toBeNull();
      const id = Number(m![1]);
      expect(waited.stderr).toContain(`\`attune execution cancel ${id}\``);
      const canceled = await cli(['execution', 'cancel', String(id)]);
      expect(canceled.code, canceled.stderr).toBe(0);
      expect(canceled.stdout).toMatch(new RegExp(`^Execution ${id} (canceled|is canceling)`));
      await waitFor('the cancel', async () => (await exec(id)).status === 'canceled');
      const tail = await cli(['execution', 'tail', String(id)]);
      expect(tail.code).toBe(1);
      expect(tail.stdout).toMatch(new RegExp(`✖ core\\.sleep #${id} canceled`));
      const twice = await cli(['execution', 'cancel', String(id)]);
      expect(twice.code).toBe(1);
      expect(twice.stderr).toMatch(/^error: .*canceled/);

      const running = spawnCli(home, ['run', 'core.sleep', 'seconds=30']);
      const started = await waitFor('the execution', async () => {
        const list = (
          await server.request<AnyBody>('GET', '/api/v1/executions?action=core.sleep&status=running', {
            token: server.adminToken,
          })
        ).body.data;
        return list.find((e: AnyBody) => e.id !== id);
      });
      running.child.kill('SIGINT');
      const r = await running.done;
      expect(r.code).toBe(130);
      expect(r.stderr).toContain(`stopped following; execution ${started.id} goes on`);
      expect((await exec(started.id)).status).toBe('running');
      expect((await cli(['execution', 'cancel', String(started.id)])).code).toBe(0);
    });

    it('re-runs with changed parameters and follows the new execution', async () => {
      const first = JSON.parse(
        (await cli(['--json', 'run', 'core.echo', 'message=first'])).stdout,
      ) as AnyBody;
      const r = await cli(['--json', 'execution', 'rerun', String(first.id), 'message=second']);
      expect(r.code, r.stderr).toBe(0);
      const e = JSON.parse(r.stdout) as AnyBody;
      expect(e).toMatchObject({ rerun_of: first.id, status: 'succeeded', result: { message: 'second' } });
      const human = await cli(['execution', 'rerun', String(first.id)]);
      expect(human.stdout).toContain('message: first');
      const bad = await cli(['execution', 'rerun', String(first.id), '--tasks', 'a', '--failed']);
      expect(bad.code).toBe(2);
    });

    it('lists with filters, and shows a server refusal for pause in one line', async () => {
      const ids = (await cli(['execution', 'list', '--action', 'core.echo', '-q'])).stdout.trim().split('\n');
      expect(ids.length).toBeGreaterThanOrEqual(3);
      const failed = await cli([
        '--json',
        'execution',
        'list',
        '--status',
        'failed,timeout',
        '--since',
        '1h',
      ]);
      const rows = JSON.parse(failed.stdout) as AnyBody[];
      expect(rows.length).toBeGreaterThanOrEqual(1);
      expect(rows.every((x) => ['failed', 'timeout'].includes(x.status))).toBe(true);
      const table = await cli(['execution', 'list', '-n', '1']);
      expect(table.stdout).toMatch(/^ID +ACTION +STATUS +STARTED +DURATION +BY\n\d+ +\S+/);
      expect(table.stderr).toMatch(/^showing 1 of \d+; use --limit to see more$/m);
      const pause = await cli(['execution', 'pause', ids[0]!]);
      expect(pause.code).toBe(1);
      expect(pause.stderr).toMatch(/^error: \S.*\n$/);
    });
  });

  describe('workflows', () => {
    it('runs a workflow showing its tasks as they change, and shows its task tree', async () => {
      const f = path.join(home.dir, 'hello.yaml');
      fs.writeFileSync(
        f,
        `ref: clitest.hello
label: Hello
parameters:
  who: {type: string, required: true}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.who }}"}
    next:
      - when: "{{ succeeded() }}"
        publish: [{greeting: "{{ result().message }}"}]
        do: [shout]
  - name: shout
    action: core.local
    input: {cmd: "echo HELLO"}
output_map:
  greeting: "{{ vars.greeting }}"
`,
      );
      expect((await cli(['workflow', 'create', '-f', f])).code).toBe(0);
      const r = await cli(['run', 'clitest.hello', 'who=bob']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^▸ greet core\.echo #\d+ /m);
      expect(r.stdout).toMatch(/^▸ shout core\.local #\d+ succeeded/m);
      expect(r.stdout).toMatch(/✔ clitest\.hello #\d+ succeeded/);
      expect(r.stdout).toContain('greeting: hello bob');
      const id = Number(/clitest\.hello #(\d+)/.exec(r.stdout)![1]);
      const get = await cli(['execution', 'get', String(id)]);
      expect(get.stdout).toMatch(/^tasks\nTASK +ID +ACTION +STATUS/m);
      expect(get.stdout).toMatch(/^greet +\d+ +core\.echo +succeeded/m);
      const json = JSON.parse((await cli(['--json', 'execution', 'get', String(id)])).stdout) as AnyBody;
      expect(json.children.map((c: AnyBody) => c.task_name)).toEqual(['greet', 'shout']);
    });

    it('re-runs the failed tasks of a workflow', async () => {
      const marker = path.join(home.dir, 'ready');
      const f = path.join(home.dir, 'flaky.yaml');
      fs.writeFileSync(
        f,
        `ref: clitest.flaky
label: Flaky
tasks:
  - name: first
    action: core.echo
    input: {message: one}
    next: [{when: "{{ succeeded() }}", do: [second]}]
  - name: second
    action: core.local
    input: {cmd: "test -f ${marker}"}
`,
      );
      expect((await cli(['workflow', 'create', '-f', f])).code).toBe(0);
      const failed = await cli(['run', 'clitest.flaky']);
      expect(failed.code).toBe(1);
      const id = /clitest\.flaky #(\d+) failed/.exec(failed.stdout)?.[1];
      expect(id, failed.stdout).toBeDefined();
      fs.writeFileSync(marker, '');
      const again = await cli(['execution', 'rerun', id!, '--failed']);
      expect(again.code, again.stdout + again.stderr).toBe(0);
      expect(again.stdout).toMatch(/✔ clitest\.flaky #\d+ succeeded/);
    });
  });
});
