import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateAgainst } from '../../src/domain/json-schema.ts';
import { loadPack } from '../../src/packs/loader.ts';

const PACKS = path.resolve(import.meta.dirname, '../../packs');
const INLINE = path.join(PACKS, 'core/actions/inline');

describe('the core pack', () => {
  const r = loadPack(path.join(PACKS, 'core'), { allowSystem: true });

  it('is valid, and a system pack', () => {
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
    expect(r.pack!.meta).toMatchObject({ ref: 'core', system: true, version: '1.0.0' });
  });

  it('has the basic actions, each on its runner', () => {
    const runners = Object.fromEntries(r.pack!.actions.map((a) => [a.ref, a.runner]));
    expect(runners).toEqual({
      'core.ask': 'inquiry',
      'core.echo': 'echo',
      'core.http': 'http-request',
      'core.local': 'local-shell-cmd',
      'core.local_script': 'local-shell-script',
      'core.node': 'node-script',
      'core.noop': 'noop',
      'core.python': 'python-script',
      'core.sleep': 'sleep',
    });
  });

  it('has the timer, webhook and internal trigger types', () => {
    expect(r.pack!.triggers.map((t) => t.ref).sort()).toEqual([
      'core.crontimer',
      'core.datetimetimer',
      'core.execution_completed',
      'core.intervaltimer',
      'core.key_changed',
      'core.webhook',
    ]);
  });

  it('declares parameters that accept what users write and refuse mistakes', () => {
    const schema = (ref: string) => {
      const a = r.pack!.actions.find((x) => x.ref === ref) ?? r.pack!.triggers.find((x) => x.ref === ref);
      return ('paramSchema' in a! ? a.paramSchema : null)!;
    };
    expect(validateAgainst(schema('core.local'), { cmd: 'uptime' })).toEqual([]);
    expect(validateAgainst(schema('core.local'), { cmd: 'x', sudo: true })[0]!.path).toBe('/sudo');
    expect(validateAgainst(schema('core.local'), {})[0]!.path).toBe('/cmd');
    expect(validateAgainst(schema('core.python'), { script: 'print(1)' })).toEqual([]);
    expect(validateAgainst(schema('core.python'), { path: '/opt/x.py' })).toEqual([]);
    expect(validateAgainst(schema('core.python'), { script: 'x', path: '/y' }).length).toBeGreaterThan(0);
    expect(validateAgainst(schema('core.python'), {}).length).toBeGreaterThan(0);
    const http = { url: 'https://example.com' };
    expect(validateAgainst(schema('core.http'), http)).toEqual([]);
    expect(http).toMatchObject({ method: 'GET', verify_tls: true, follow_redirects: true, max_redirects: 5 });
    expect(validateAgainst(schema('core.http'), { url: 'ftp://x' })[0]!.path).toBe('/url');
    const ask = { prompt: 'Go?' };
    expect(validateAgainst(schema('core.ask'), ask)).toEqual([]);
    expect(ask).toMatchObject({ timeout: 86400, response_schema: { required: ['approved'] } });
    expect(validateAgainst(schema('core.intervaltimer'), { delta: 5, unit: 'minutes' })).toEqual([]);
    expect(validateAgainst(schema('core.intervaltimer'), { delta: 0 })[0]!.path).toBe('/delta');
    expect(validateAgainst(schema('core.crontimer'), { cron: '0 */5 * * * *' })).toEqual([]);
    expect(validateAgainst(schema('core.datetimetimer'), { date: '2030-01-31T09:00:00' })).toEqual([]);
    expect(validateAgainst(schema('core.datetimetimer'), { date: 'tomorrow' })[0]!.path).toBe('/date');
    expect(validateAgainst(schema('core.webhook'), { name: 'healthcheck' })).toEqual([]);
    expect(validateAgainst(schema('core.webhook'), { name: '../x' })[0]!.path).toBe('/name');
  });

  it('marks secret parameters', () => {
    const http = r.pack!.actions.find((a) => a.ref === 'core.http')!;
    expect((http.paramSchema.properties as Record<string, { secret?: boolean }>).password!.secret).toBe(true);
  });
});

describe('the examples pack', () => {
  it('validates, with a workflow that uses an approval, a shell script action and rules', () => {
    const r = loadPack(path.join(PACKS, 'examples'));
    expect(r.problems).toEqual([]);
    expect(r.warnings).toEqual([]);
    const p = r.pack!;
    expect(p.workflows.map((w) => w.ref)).toEqual(['examples.service_healthcheck']);
    const tasks = p.workflows[0]!.definition.tasks;
    expect(tasks.map((t) => t.action)).toContain('core.ask');
    expect(tasks.map((t) => t.action)).toContain('examples.restart_service');
    expect(p.actions).toMatchObject([{ ref: 'examples.restart_service', runner: 'local-shell-script' }]);
    expect(p.rules.map((x) => [x.ref, x.triggerRef, x.actionRef, x.enabled])).toEqual([
      ['examples.healthcheck_on_webhook', 'core.webhook', 'examples.service_healthcheck', true],
      ['examples.hourly_attune_healthcheck', 'core.intervaltimer', 'examples.service_healthcheck', false],
    ]);
    expect(r.external.every((e) => e.ref.startsWith('core.'))).toBe(true);
  });

  it('has a shell script that reads its parameters from stdin and answers JSON', () => {
    const script = path.join(PACKS, 'examples/actions/restart_service.sh');
    const run = spawnSync('sh', [script], {
      input: JSON.stringify({ service: 'nginx', dry_run: true }),
      encoding: 'utf8',
    });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({
      service: 'nginx',
      restarted: false,
      dry_run: true,
      would_run: 'systemctl restart nginx',
    });
    const none = spawnSync('sh', [script], { input: '{}', encoding: 'utf8' });
    expect(none.status).toBe(2);
  });
});

describe('the inline script launchers of core.python, core.node and core.local_script', () => {
  const run = (cmd: string, args: string[], params: unknown) =>
    spawnSync(cmd, args, { input: JSON.stringify(params), encoding: 'utf8', timeout: 20_000 });
  const hasPython = spawnSync('python3', ['--version']).status === 0;

  it.skipIf(!hasPython)(
    'core.python runs inline code with args, input (stdin and `params`), env and cwd',
    () => {
      const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-py-'));
      try {
        const out = run('python3', [path.join(INLINE, 'python.py')], {
          script:
            'import json, os, sys\nprint(json.dumps({"argv": sys.argv[1:], "stdin": json.load(sys.stdin), "params": params, "env": os.environ["GREETING"], "cwd": os.getcwd()}))',
          args: ['a', 'b'],
          input: { n: 1 },
          env: { GREETING: 'hi' },
          cwd,
        });
        expect(out.stderr).toBe('');
        expect(out.status).toBe(0);
        expect(JSON.parse(out.stdout)).toEqual({
          argv: ['a', 'b'],
          stdin: { n: 1 },
          params: { n: 1 },
          env: 'hi',
          cwd: fs.realpathSync(cwd),
        });
        const file = path.join(cwd, 'x.py');
        fs.writeFileSync(file, 'import sys\nprint("from file", sys.argv[1:])\nsys.exit(3)\n');
        const fromFile = run('python3', [path.join(INLINE, 'python.py')], { path: file, args: ['z'] });
        expect(fromFile.stdout.trim()).toBe("from file ['z']");
        expect(fromFile.status).toBe(3);
        const failing = run('python3', [path.join(INLINE, 'python.py')], {
          script: 'raise ValueError("boom")',
        });
        expect(failing.status).toBe(1);
        expect(failing.stderr).toMatch(/ValueError: boom/);
      } finally {
        fs.rmSync(cwd, { recursive: true, force: true });
      }
    },
  );

  it('core.node runs an inline ES module with args, input and env', () => {
    const out = run(process.execPath, [path.join(INLINE, 'node.mjs')], {
      script:
        'let s = ""; for await (const c of process.stdin) s += c;\nconsole.log(JSON.stringify({ argv: process.argv.slice(2), input: JSON.parse(s), env: process.env.X }));',
      args: ['1'],
      input: [1, 2],
      env: { X: 'y' },
    });
    expect(out.status).toBe(0);
    expect(JSON.parse(out.stdout)).toEqual({ argv: ['1'], input: [1, 2], env: 'y' });
    const failing = run(process.execPath, [path.join(INLINE, 'node.mjs')], { script: 'process.exit(7)' });
    expect(failing.status).toBe(7);
  });

  it('core.local_script runs an inline shell script with positional args and input on stdin', () => {
    const out = spawnSync('sh', [path.join(INLINE, 'shell.sh')], {
      input: JSON.stringify({ script: 'echo "hello $1"; cat; exit 4', args: ['world'], input: { k: 'v' } }),
      encoding: 'utf8',
      env: { ...process.env, ATTUNE_NODE: process.execPath },
    });
    expect(out.stdout).toBe('hello world\n{"k":"v"}');
    expect(out.status).toBe(4);
    const bash = spawnSync('sh', [path.join(INLINE, 'shell.sh')], {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell syntax, not a template
      input: JSON.stringify({ script: 'echo "${BASH_VERSION:+bash}"', shell: 'bash' }),
      encoding: 'utf8',
      env: { ...process.env, ATTUNE_NODE: process.execPath },
    });
    expect(bash.stdout).toBe('bash\n');
  });
});
