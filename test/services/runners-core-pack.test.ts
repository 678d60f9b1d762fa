/** The core pack's script actions, run through the runners exactly as a worker runs them. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runAction } from '../../src/services/worker/runners/runner.ts';
import { groupMembers, makeRequest } from './runners-helpers.ts';

const core = path.resolve('packs/core');

describe('core pack script actions', () => {
  it('core.local_script runs its inline shell script with args and input', async () => {
    const r = makeRequest({
      runner: 'local-shell-script',
      actionRef: 'core.local_script',
      packDir: core,
      entryPoint: 'inline/shell.sh',
      parameters: { script: 'echo "hi $1"; cat', args: ['there'], input: { a: 1 }, shell: 'sh' },
    });
    const out = await runAction(r.req);
    expect(out).toMatchObject({ status: 'succeeded', result: { stdout: 'hi there\n{"a":1}', exit_code: 0 } });
  });

  it('core.node prints a structured result', async () => {
    const r = makeRequest({
      runner: 'node-script',
      actionRef: 'core.node',
      packDir: core,
      entryPoint: 'inline/node.mjs',
      parameters: {
        script: 'console.log(JSON.stringify({ argv: process.argv.slice(2) }))',
        args: ['x', 'y'],
      },
    });
    const out = await runAction(r.req);
    expect(out).toMatchObject({ status: 'succeeded', result: { argv: ['x', 'y'] } });
  });

  it('core.python gets its input as params', async () => {
    const r = makeRequest({
      runner: 'python-script',
      actionRef: 'core.python',
      packDir: core,
      entryPoint: 'inline/python.py',
      parameters: { script: 'import json\nprint(json.dumps({"got": params}))', input: { k: [1, 2] } },
    });
    const out = await runAction(r.req);
    expect(out).toMatchObject({ status: 'succeeded', result: { got: { k: [1, 2] } } });
  });

  it('a timeout stops the inline script and everything it started', async () => {
    const r = makeRequest({
      runner: 'local-shell-script',
      actionRef: 'core.local_script',
      packDir: core,
      entryPoint: 'inline/shell.sh',
      parameters: { script: `trap '' TERM; echo "group=$(ps -o pgid= $$)"; sleep 100`, shell: 'sh' },
      timeoutSeconds: 1,
    });
    const running = runAction(r.req, { killGraceMs: 300 });
    const pgid = Number(/group=\s*(\d+)/.exec(await r.waitFor('stdout', /group=\s*\d+/))![1]);
    const out = await running;
    expect(out.status).toBe('timeout');
    expect(groupMembers(pgid)).toEqual([]);
  });
});
