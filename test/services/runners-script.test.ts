import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runAction } from '../../src/services/worker/runners/runner.ts';
import { makeRequest, procView } from './runners-helpers.ts';

const root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'attune-scripts-')));
const pack = path.join(root, 'mypack');
const actions = path.join(pack, 'actions');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

function write(rel: string, text: string, mode = 0o644): void {
  const file = path.join(pack, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode });
}

// shell script without a shebang: run with bash (uses a bash-only construct)
write(
  'actions/plain.sh',
  ['read -r params', 'n=0; [[ abc == a* ]] && n=3', 'echo "{\\"n\\": $n, \\"params\\": $params}"', ''].join(
    '\n',
  ),
);
// executable with a shebang: exec'd directly
write('actions/direct.sh', '#!/bin/sh\necho "argv0=$0 dir=$(pwd)"\n', 0o755);
// shebang but not executable (e.g. unpacked without modes): its interpreter is used
write(
  'actions/noexec.py',
  '#!/usr/bin/env python3\nimport sys, json\nprint(json.dumps({"lang": "python", "ver": sys.version_info[0]}))\n',
);
write(
  'actions/hello.py',
  [
    'import json, os, sys',
    'params = json.load(sys.stdin)',
    'print("working...", file=sys.stderr)',
    'print(json.dumps({"greeting": "hello " + params["name"], "secret_len": len(params["token"]),',
    '                  "exec_id": os.environ["ATTUNE_EXECUTION_ID"]}))',
  ].join('\n'),
);
write('actions/fail.py', 'import sys\nprint("bad input", file=sys.stderr)\nsys.exit(3)\n');
write(
  'actions/hello.js',
  [
    "let input = '';",
    "process.stdin.setEncoding('utf8');",
    "process.stdin.on('data', (c) => { input += c; });",
    "process.stdin.on('end', () => {",
    '  const p = JSON.parse(input);',
    '  console.log(JSON.stringify({ sum: p.a + p.b, region: process.env.ATTUNE_PARAM_REGION ?? null, node_options: process.env.NODE_OPTIONS ?? null }));',
    '});',
  ].join('\n'),
);
write('actions/lib/util.sh', 'echo "from lib"\n');
write('actions/wait.sh', 'read -r params\necho "pid=$$"\nsleep 30\n');
write('scripts/shared.sh', 'echo "pack-level script"\n');
fs.mkdirSync(path.join(actions, 'subdir'), { recursive: true });
fs.writeFileSync(path.join(root, 'outside.sh'), 'echo escaped\n');
fs.symlinkSync(path.join(root, 'outside.sh'), path.join(actions, 'link-out.sh'));
fs.symlinkSync(path.join(actions, 'lib', 'util.sh'), path.join(actions, 'link-in.sh'));
fs.symlinkSync(root, path.join(actions, 'dir-out'));

const script = (
  runner: 'local-shell-script' | 'python-script' | 'node-script',
  entryPoint: string,
  over = {},
) => makeRequest({ runner, packDir: pack, entryPoint, ...over });

describe('script runners', () => {
  it('a shell script without a shebang runs with bash and gets its parameters on stdin', async () => {
    const out = await runAction(script('local-shell-script', 'plain.sh', { parameters: { x: 1 } }).req);
    expect(out).toMatchObject({ status: 'succeeded', result: { n: 3, params: { x: 1 } } });
  });

  it('an executable script with a shebang is executed directly, in its own directory', async () => {
    const out = await runAction(script('local-shell-script', 'direct.sh').req);
    expect(out.result).toMatchObject({ stdout: `argv0=${path.join(actions, 'direct.sh')} dir=${actions}\n` });
  });

  it('a script with a shebang but no executable bit runs with its interpreter', async () => {
    const out = await runAction(script('local-shell-script', 'noexec.py').req);
    expect(out).toMatchObject({ status: 'succeeded', result: { lang: 'python', ver: 3 } });
  });

  it('scripts in subdirectories and elsewhere in the pack are allowed', async () => {
    const lib = await runAction(script('local-shell-script', 'lib/util.sh').req);
    expect(lib.result).toMatchObject({ stdout: 'from lib\n' });
    const up = await runAction(script('local-shell-script', '../scripts/shared.sh').req);
    expect(up.result).toMatchObject({ stdout: 'pack-level script\n' });
    const link = await runAction(script('local-shell-script', 'link-in.sh').req);
    expect(link.result).toMatchObject({ stdout: 'from lib\n' });
  });

  it('python-script: JSON in, JSON out, stderr streamed', async () => {
    const r = script('python-script', 'hello.py', {
      parameters: { name: 'ada', token: 'tok-123456' },
      secretParameters: ['token'],
      executionId: 77,
    });
    const out = await runAction(r.req);
    expect(out).toMatchObject({
      status: 'succeeded',
      exitCode: 0,
      result: { greeting: 'hello ada', secret_len: 10, exec_id: '77' },
    });
    expect(r.text('stderr')).toBe('working...\n');
  });

  it('python-script: a failing script reports its exit code', async () => {
    const out = await runAction(script('python-script', 'fail.py').req);
    expect(out).toMatchObject({
      status: 'failed',
      exitCode: 3,
      error: {
        type: 'exit_code',
        exit_code: 3,
        message: 'script actions/fail.py exited with code 3: bad input',
      },
    });
  });

  it('node-script: JSON in, JSON out, opt-in env parameters, no inherited NODE_OPTIONS', async () => {
    const saved = process.env.NODE_OPTIONS;
    process.env.NODE_OPTIONS = '--max-old-space-size=64';
    try {
      const out = await runAction(
        script('node-script', 'hello.js', {
          parameters: { a: 2, b: 40, region: 'eu' },
          envParameters: ['region'],
        }).req,
      );
      expect(out).toMatchObject({
        status: 'succeeded',
        result: { sum: 42, region: 'eu', node_options: null },
      });
    } finally {
      if (saved === undefined) delete process.env.NODE_OPTIONS;
      else process.env.NODE_OPTIONS = saved;
    }
  });

  it('a script runs with only the script path in its argv; secrets stay on stdin', async () => {
    const secret = 'script-secret-abcdef';
    const r = script('local-shell-script', 'wait.sh', {
      parameters: { password: secret },
      secretParameters: ['password'],
    });
    const running = runAction(r.req);
    const pid = Number(/pid=(\d+)/.exec(await r.waitFor('stdout', /pid=\d+/))![1]);
    const view = procView(pid);
    expect(view.cmdline.trim()).toBe(`/bin/bash ${path.join(actions, 'wait.sh')}`);
    expect(view.environ).not.toContain(secret);
    r.controller.abort();
    expect((await running).status).toBe('canceled');
  });

  it('refuses entry points that escape the pack, with a clear error', async () => {
    const cases: [string, RegExp][] = [
      ['../../outside.sh', /escapes the pack directory/],
      ['../../../../etc/passwd', /escapes the pack directory/],
      ['/etc/passwd', /must be relative/],
      ['link-out.sh', /leads out of the pack directory/],
      ['dir-out/outside.sh', /leads out of the pack directory/],
      ['missing.sh', /does not exist/],
      ['subdir', /not a regular file/],
      ['', /no entry point/],
    ];
    for (const [entryPoint, message] of cases) {
      const r = script('local-shell-script', entryPoint);
      const out = await runAction(r.req);
      expect(out, entryPoint).toMatchObject({ status: 'failed', error: { type: 'invalid_entry_point' } });
      expect(out.error?.message, entryPoint).toMatch(message);
      expect(r.events, entryPoint).toEqual([]);
    }
    const noPack = await runAction(makeRequest({ runner: 'python-script', entryPoint: 'hello.py' }).req);
    expect(noPack.error).toMatchObject({
      type: 'invalid_entry_point',
      message: expect.stringMatching(/no pack directory/),
    });
  });

  it('a missing interpreter is reported as a start-up failure', async () => {
    const out = await runAction(script('python-script', 'hello.py').req, { python: 'python-does-not-exist' });
    expect(out).toMatchObject({ status: 'failed', error: { type: 'spawn_error' } });
  });
});
