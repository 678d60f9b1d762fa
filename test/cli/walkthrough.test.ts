/**
 * The walkthrough of docs/cli.md, replayed with the CLI alone against a real platform: log in,
 * install the examples pack, run an action, watch a workflow, answer its inquiry, set an encrypted
 * key and use it from a rule.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeBackend } from '../support/backend.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/server.ts';
import { CliHome, ROOT, runCli, spawnCli, waitFor } from './support.ts';

describeBackend('cli walkthrough', () => {
  let server: TestServer;
  const home = new CliHome();
  const attune = (args: string[], opts: Parameters<typeof runCli>[2] = {}) => runCli(home, args, opts);

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
    home.remove();
  });

  it('replays the walkthrough', async () => {
    // 1. log in
    const login = await attune(['login', '--url', server.url, '--password-stdin'], {
      input: `${ADMIN_PASSWORD}\n`,
    });
    expect(login.stdout).toBe(`Logged in to ${server.url} as admin\n`);

    // 2. install the examples pack
    const install = await attune(['pack', 'install', path.join(ROOT, 'packs/examples')]);
    expect(install.stdout).toContain('✔ Installed pack examples 1.0.0');
    expect((await attune(['action', 'show', 'examples.service_healthcheck'])).stdout).toMatch(
      /^url +string +yes/m,
    );

    // 3. run an action
    const run = await attune(['run', 'core.local', 'cmd=echo "hello from $(uname -s)"']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^hello from \w+\n✔ core\.local #\d+ succeeded/);

    // 4. start the health check workflow; it finds the service unhealthy (it expects 201) and asks
    const started = await attune([
      'run',
      'examples.service_healthcheck',
      `url=${server.url}/health`,
      'service=web',
      'expected_status=201',
      '--async',
      '-q',
    ]);
    expect(started.code, started.stderr).toBe(0);
    const id = started.stdout.trim();

    // 5. watch it while answering the inquiry
    const watch = spawnCli(home, ['execution', 'tail', id]);
    const inquiry = await waitFor(
      'the inquiry',
      async () => (await attune(['inquiry', 'list', '-q'])).stdout.trim() || undefined,
    );
    const shown = await attune(['inquiry', 'get', inquiry]);
    expect(shown.stdout).toMatch(
      /^prompt: +web failed its health check \(HTTP status 200\)\. Restart it\?$/m,
    );
    expect(shown.stdout).toMatch(/^approved +boolean +yes/m);
    const wrong = await attune(['inquiry', 'respond', inquiry, 'comment=no idea']);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("'approved' is missing");
    const answer = await attune(['inquiry', 'respond', inquiry, 'approved=false', 'comment=not now']);
    expect(answer).toMatchObject({
      code: 0,
      stdout: `Answered inquiry ${inquiry}; workflow execution ${id} goes on\n`,
    });
    const watched = await watch.done;
    expect(watched.code, watched.stderr).toBe(0);
    expect(watched.stdout).toMatch(/^▸ check core\.http #\d+ succeeded/m);
    expect(watched.stdout).toMatch(/^▸ approve_restart core\.ask #\d+ succeeded/m);
    expect(watched.stdout).toMatch(/^▸ notify_declined core\.echo #\d+ succeeded/m);
    expect(watched.stdout).toMatch(new RegExp(`✔ examples\\.service_healthcheck #${id} succeeded`));
    expect(watched.stdout).toContain('healthy: false');

    // 6. an encrypted key, used by a rule
    const key = await attune(['key', 'set', 'api_token', '-', '--encrypt'], { input: 's3cret\n' });
    expect(key.stdout).toBe('Saved key api_token (encrypted)\n');
    const ruleFile = path.join(home.dir, 'on_release.yaml');
    fs.writeFileSync(
      ruleFile,
      `ref: examples.on_release
description: When the release key changes, hand the API token to the deploy script
trigger:
  type: core.key_changed
criteria:
  trigger.name: {type: equals, pattern: release}
action:
  ref: core.local_script
  parameters:
    script: 'grep -q s3cret && echo "deploying with the token"'
    input:
      token: "{{ keys.api_token }}"
`,
    );
    expect((await attune(['rule', 'create', '-f', ruleFile])).stdout).toBe(
      'Created rule examples.on_release (core.key_changed → core.local_script, enabled)\n',
    );
    expect((await attune(['key', 'set', 'release', '2.0'])).code).toBe(0);
    const exec = await waitFor(
      'the rule to run',
      async () =>
        (await attune(['execution', 'list', '--rule', 'examples.on_release', '-q'])).stdout.trim() ||
        undefined,
    );
    const tail = await attune(['execution', 'tail', exec]);
    expect(tail.code, tail.stdout + tail.stderr).toBe(0);
    expect(tail.stdout.startsWith('deploying with the token\n')).toBe(true);
    const get = await attune(['execution', 'get', exec]);
    expect(get.stdout).toMatch(/^started by: +rule examples\.on_release, event \d+, enforcement \d+$/m);
    // the decrypted value never shows among the stored parameters
    expect(get.stdout).toContain('$secret: true');
    expect(get.stdout).not.toContain('token: s3cret');
  });
});
