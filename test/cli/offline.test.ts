/**
 * The command line without a server: help and version, usage errors (exit 2), a server that is
 * down (exit 1 with a clear line), shell completion, and the offline workflow commands.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHome, ROOT, runCli } from './support.ts';

const home = new CliHome();
let downUrl = '';

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

const WORKFLOW = `ref: demo.hello
label: Hello
parameters:
  name: {type: string, required: true}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.name }}"}
    next:
      - when: "{{ succeeded() }}"
        do: [done]
  - name: done
    action: core.noop
`;
const BROKEN = `ref: demo.broken
tasks:
  - name: greet
    action: core.echo
    next:
      - do: [nowhere]
  - name: orphan
    action: core.noop
    input: {x: "{{ unclosed"}
`;
const SPEC = `workflow: hello.yaml
cases:
  - name: greets
    parameters: {name: bob}
    expect: {tasks: [greet, done], status: succeeded}
  - name: expects the wrong order
    parameters: {name: bob}
    expect: {tasks: [done, greet]}
`;

beforeAll(async () => {
  downUrl = `http://127.0.0.1:${await freePort()}`;
  const dir = path.join(home.dir, 'wf');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'hello.yaml'), WORKFLOW);
  fs.writeFileSync(path.join(dir, 'broken.yaml'), BROKEN);
  fs.writeFileSync(path.join(dir, 'hello.test.yaml'), SPEC);
  fs.writeFileSync(
    path.join(dir, 'pass.test.yaml'),
    SPEC.replace(/ {2}- name: expects the wrong order[\s\S]*$/, ''),
  );
});
afterAll(() => home.remove());

const wf = (f: string) => path.join(home.dir, 'wf', f);

describe('help, version and usage errors', () => {
  it('prints the version and the help', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const [v, h, sub] = await Promise.all([
      runCli(home, ['--version']),
      runCli(home, ['--help']),
      runCli(home, ['execution', 'list', '--help']),
    ]);
    expect(v).toMatchObject({ code: 0, stdout: `${pkg.version}\n` });
    expect(h.code).toBe(0);
    for (const c of ['login', 'run', 'execution', 'pack', 'workflow', 'rule', 'key', 'inquiry', 'completion'])
      expect(h.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('--since <time>');
  });

  it('exits 2 for unknown commands and options, with a suggestion', async () => {
    const [cmd, opt, group] = await Promise.all([
      runCli(home, ['execution', 'lst']),
      runCli(home, ['pack', 'list', '--colour']),
      runCli(home, ['execution']),
    ]);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toContain("unknown command 'lst'");
    expect(cmd.stderr).toContain('list');
    expect(opt.code).toBe(2);
    expect(opt.stderr).toContain("unknown option '--colour'");
    expect(group.code).toBe(2);
    expect(group.stderr).toContain('Usage: attune execution');
  });

  it('refuses conflicting output flags, bad values and malformed parameters with exit 2, before any request', async () => {
    const env = { env: { ATTUNE_URL: downUrl } };
    const results = await Promise.all([
      runCli(home, ['--json', '--yaml', 'pack', 'list'], env),
      runCli(home, ['action', 'list', '--json', '-q'], env),
      runCli(home, ['execution', 'list', '--limit', 'many'], env),
      runCli(home, ['execution', 'list', '--since', 'yesterday'], env),
      runCli(home, ['execution', 'list', '--status', 'done'], env),
      runCli(home, ['execution', 'get', 'abc'], env),
      runCli(home, ['run', 'core.echo', 'message'], env),
      runCli(home, ['run', 'core.echo', 'a=1', 'a=2'], env),
      runCli(home, ['--url', 'ftp://example.org', 'pack', 'list']),
      runCli(home, ['rule', 'list', '--enabled', '--disabled'], env),
    ]);
    for (const r of results) {
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).not.toContain('cannot reach');
    }
    const [jy, jq, limit, since, status, id, pair, twice, url] = results.map((r) => r.stderr);
    expect(jy).toContain('--json and --yaml cannot be used together');
    expect(jq).toContain('--json and --quiet cannot be used together');
    expect(limit).toContain('--limit must be a whole number');
    expect(since).toContain("--since 'yesterday' is neither an ISO 8601 time nor a span");
    expect(status).toContain("unknown status 'done'");
    expect(id).toContain("execution id must be a positive whole number, not 'abc'");
    expect(pair).toContain("'message' is not a name=value pair");
    expect(twice).toContain("'a' is given twice");
    expect(url).toContain('is not an http:// or https:// URL');
  });
});

describe('a server that is down', () => {
  it('says so in one line and exits 1', async () => {
    const r = await runCli(home, ['action', 'list'], { env: { ATTUNE_URL: downUrl } });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `error: cannot reach the Attune API at ${downUrl}: connection refused (is the server running?)\n`,
    );
  });

  it('shows the HTTP exchange with --debug', async () => {
    const r = await runCli(home, ['--url', downUrl, '--debug', 'execution', 'list', '--status', 'failed']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `\\[debug\\] GET ${downUrl}/api/v1/executions\\?status=failed&page=1&page_size=50 → failed after \\d+ ms: connection refused`,
      ),
    );
  });
});

describe('shell completion', () => {
  it('prints a bash script that completes commands, subcommands and options', async () => {
    const r = await runCli(home, ['completion', 'bash']);
    expect(r.code).toBe(0);
    const script = path.join(home.dir, 'attune.bash');
    fs.writeFileSync(script, r.stdout);
    const complete = (...words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source ${script}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _attune_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: 'utf8' },
      )
        .trim()
        .split('\n');
    expect(complete('attune', 'exe')).toEqual(['execution']);
    expect(complete('attune', 'execution', '')).toEqual(
      expect.arrayContaining(['list', 'get', 'tail', 'cancel', 'rerun', 'result', 'pause', 'resume']),
    );
    expect(complete('attune', 'ex', 't')).toEqual(['tail']);
    expect(complete('attune', 'execution', 'list', '--st')).toEqual(['--status']);
    expect(complete('attune', 'key', 'set', 'x', '--enc')).toEqual(['--encrypt']);
    expect(complete('attune', '--js')).toEqual(['--json']);
  });

  it('prints a zsh script', async () => {
    const r = await runCli(home, ['completion', 'zsh']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith('#compdef attune\n')).toBe(true);
    expect(r.stdout).toContain("'tail:follow an execution");
    const zsh = spawnSync('zsh', ['--version']);
    if (zsh.status === 0) {
      const file = path.join(home.dir, '_attune');
      fs.writeFileSync(file, r.stdout);
      expect(spawnSync('zsh', ['-n', file]).status).toBe(0);
    }
  });

  it('refuses an unknown shell', async () => {
    const r = await runCli(home, ['completion', 'fish']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no completion for 'fish'");
  });
});

describe('workflow validate and test, offline', () => {
  it('validates workflow files without a server', async () => {
    const env = { env: { ATTUNE_URL: downUrl } };
    const [ok, bad, json, both] = await Promise.all([
      runCli(home, ['workflow', 'validate', '-f', wf('hello.yaml')], env),
      runCli(home, ['workflow', 'validate', '-f', wf('broken.yaml')], env),
      runCli(home, ['--json', 'workflow', 'validate', '-f', wf('broken.yaml')], env),
      runCli(home, ['workflow', 'validate', '-f', wf('hello.yaml'), wf('broken.yaml')], env),
    ]);
    expect(ok).toMatchObject({ code: 0, stdout: `✔ ${wf('hello.yaml')} is valid\n` });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`✖ ${wf('broken.yaml')}:`);
    expect(bad.stdout).toContain("unknown task 'nowhere'");
    const doc = JSON.parse(json.stdout) as { ok: boolean; problems: { severity: string; message: string }[] };
    expect(json.code).toBe(1);
    expect(doc.ok).toBe(false);
    expect(doc.problems.some((p) => p.severity === 'error' && p.message.includes("'nowhere'"))).toBe(true);
    expect(both.code).toBe(1);
    expect(both.stdout).toContain('is valid');
  });

  it('rehearses a workflow against a spec: exit 0 when every case passes, 1 with the mismatches otherwise', async () => {
    const env = { env: { ATTUNE_URL: downUrl } };
    const [pass, fail, one, json] = await Promise.all([
      runCli(home, ['workflow', 'test', '-f', wf('pass.test.yaml')], env),
      runCli(home, ['workflow', 'test', '-f', wf('hello.test.yaml')], env),
      runCli(home, ['workflow', 'test', '-f', wf('hello.test.yaml'), '--case', 'greets'], env),
      runCli(home, ['--json', 'workflow', 'test', '-f', wf('hello.test.yaml')], env),
    ]);
    expect(pass.code).toBe(0);
    expect(pass.stdout).toContain('✔ greets  succeeded: greet → done');
    expect(pass.stdout).toContain('all passed: 1 of 1 case passed');
    expect(fail.code).toBe(1);
    expect(fail.stdout).toContain('✖ expects the wrong order');
    expect(fail.stdout).toContain('tasks: expected ["done","greet"], got ["greet","done"]');
    expect(fail.stdout).toContain('1 failed: 1 of 2 cases passed');
    expect(one.code).toBe(0);
    const doc = JSON.parse(json.stdout) as { passed: boolean; cases: { name: string; passed: boolean }[] };
    expect(doc.passed).toBe(false);
    expect(doc.cases.map((c) => [c.name, c.passed])).toEqual([
      ['greets', true],
      ['expects the wrong order', false],
    ]);
  });

  it('reports a spec or a file that cannot be read', async () => {
    fs.writeFileSync(
      wf('bad.test.yaml'),
      'workflow: hello.yaml\ncases:\n  - parameters: {}\n    expct: {}\n',
    );
    const [spec, missing, yaml] = await Promise.all([
      runCli(home, ['workflow', 'test', '-f', wf('bad.test.yaml')]),
      runCli(home, ['workflow', 'validate', '-f', wf('nope.yaml')]),
      runCli(home, ['workflow', 'validate', '-f', '-'], { input: 'tasks: [\n' }),
    ]);
    expect(spec.code).toBe(1);
    expect(spec.stderr).toContain('is not a valid rehearsal spec');
    expect(spec.stderr).toContain("unknown key 'expct' (did you mean 'expect'?)");
    expect(missing).toMatchObject({ code: 1, stderr: `error: no such file: ${wf('nope.yaml')}\n` });
    expect(yaml.code).toBe(1);
    expect(yaml.stderr).toContain('standard input is not valid YAML or JSON');
  });
});

describe('files checked before anything is sent', () => {
  it('refuses a key file with problems, listing each', async () => {
    const file = path.join(home.dir, 'keys.yaml');
    fs.writeFileSync(
      file,
      '- {name: a, value: 1}\n- {name: b}\n- {name: c, value: 2, ttl: -5, colour: red}\n',
    );
    const r = await runCli(home, ['key', 'load', '-f', file], { env: { ATTUNE_URL: downUrl } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: ${file} is not a valid key file; nothing was loaded`);
    expect(r.stderr).toContain("item 2: 'value' is missing");
    expect(r.stderr).toContain('item 3: unknown field colour');
    expect(r.stderr).toContain("item 3: 'ttl' must be a positive whole number of seconds");
    expect(r.stderr).not.toContain('cannot reach');
  });
});
