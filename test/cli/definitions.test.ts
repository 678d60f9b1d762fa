/**
 * Packs, actions, triggers, sensors, rules, events, enforcements, workflows and keys through the
 * CLI against a real server, with the output formats (tables fitted to a width, --json, --yaml,
 * -q, colour) and the failures users meet (unknown refs, invalid files, conflicts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { describeBackend } from '../support/backend.ts';
import { ADMIN_PASSWORD, type AnyBody, startTestServer, type TestServer } from '../support/server.ts';
import { CliHome, ROOT, runCli } from './support.ts';

describeBackend('cli definitions', () => {
  let server: TestServer;
  const home = new CliHome();
  const cli = (args: string[], opts: Parameters<typeof runCli>[2] = {}) => runCli(home, args, opts);
  const file = (name: string, text: string) => {
    const p = path.join(home.dir, name);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, text);
    return p;
  };

  beforeAll(async () => {
    server = await startTestServer();
    const r = await runCli(home, ['login', '--url', server.url, '--password-stdin'], {
      input: ADMIN_PASSWORD,
    });
    expect(r.code, r.stderr).toBe(0);
    // a pack with a simple trigger for the rule tests
    const t = server.adminToken;
    expect(
      (await server.request('POST', '/api/v1/packs', { token: t, body: { ref: 'clitest' } })).status,
    ).toBe(201);
    const trig = await server.request('POST', '/api/v1/triggers', {
      token: t,
      body: {
        ref: 'clitest.ping',
        description: 'A ping',
        payload_schema: {
          type: 'object',
          properties: { level: { type: 'string' }, msg: { type: 'string' } },
        },
      },
    });
    expect(trig.status).toBe(201);
  });
  afterAll(async () => {
    await server?.stop();
    home.remove();
  });

  describe('packs', () => {
    it('installs a local directory by uploading it, and again as an update', async () => {
      const r = await cli(['pack', 'install', path.join(ROOT, 'packs/examples')]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toBe('✔ Installed pack examples 1.0.0\n  created: 1 action, 1 workflow, 2 rules\n');
      const again = await cli(['pack', 'install', path.join(ROOT, 'packs/examples')]);
      expect(again.code).toBe(0);
      expect(again.stdout).toContain('✔ Updated pack examples 1.0.0');
      const json = await cli(['--json', 'pack', 'show', 'examples']);
      const p = JSON.parse(json.stdout) as AnyBody;
      expect(p.source.type).toBe('upload');
      expect(p.contents.workflows).toEqual(['examples.service_healthcheck']);
      const show = await cli(['pack', 'show', 'examples']);
      expect(show.stdout).toMatch(/^ref: +examples$/m);
      expect(show.stdout).toContain('workflows (1)\n  examples.service_healthcheck');
      const list = await cli(['pack', 'list', '-q']);
      expect(list.stdout.split('\n')).toEqual(expect.arrayContaining(['core', 'examples', 'clitest']));
    });

    it('installs a .tar.gz, a server path and a git repository', async () => {
      const src = path.join(home.dir, 'mini');
      fs.mkdirSync(path.join(src, 'actions'), { recursive: true });
      fs.writeFileSync(path.join(src, 'pack.yaml'), 'ref: mini\nlabel: Mini\nversion: 1.0.0\n');
      fs.writeFileSync(
        path.join(src, 'actions', 'hi.yaml'),
        'name: hi\nrunner: echo\nparameters:\n  message: {type: string, required: true}\n',
      );
      const tgz = path.join(home.dir, 'mini-1.0.0.tar.gz');
      await tar.create({ gzip: true, cwd: home.dir, file: tgz, portable: true }, ['mini']);
      const up = await cli(['pack', 'install', tgz]);
      expect(up.code, up.stderr).toBe(0);
      expect(up.stdout).toContain('✔ Installed pack mini 1.0.0\n  created: 1 action');

      fs.writeFileSync(path.join(src, 'pack.yaml'), 'ref: mini\nlabel: Mini\nversion: 1.1.0\n');
      const onServer = await cli(['pack', 'install', src, '--server-path']);
      expect(onServer.code, onServer.stderr).toBe(0);
      expect(onServer.stdout).toContain('✔ Upgraded (from 1.0.0) pack mini 1.1.0');
      expect(
        (JSON.parse((await cli(['--json', 'pack', 'show', 'mini'])).stdout) as AnyBody).source.type,
      ).toBe('path');

      const git = (...a: string[]) =>
        execFileSync('git', a, {
          cwd: src,
          env: {
            ...process.env,
            GIT_AUTHOR_NAME: 't',
            GIT_AUTHOR_EMAIL: 't@x',
            GIT_COMMITTER_NAME: 't',
            GIT_COMMITTER_EMAIL: 't@x',
          },
        });
      fs.writeFileSync(path.join(src, 'pack.yaml'), 'ref: mini\nlabel: Mini\nversion: 1.2.0\n');
      git('init', '-q', '-b', 'main');
      git('add', '.');
      git('commit', '-q', '-m', 'v1.2.0');
      git('tag', 'v1.2.0');
      const fromGit = await cli(['pack', 'install', `file://${src}`, '--ref', 'v1.2.0']);
      expect(fromGit.code, fromGit.stderr).toBe(0);
      expect(fromGit.stdout).toContain('pack mini 1.2.0');

      const gone = await cli(['pack', 'uninstall', 'mini']);
      expect(gone).toMatchObject({ code: 0, stdout: 'Uninstalled pack mini\n' });
      const missing = await cli(['pack', 'show', 'mini']);
      expect(missing).toMatchObject({ code: 1, stderr: "error: pack 'mini' not found\n" });
    });

    it('lists every problem of an invalid pack and installs nothing', async () => {
      const bad = path.join(home.dir, 'badpack');
      fs.mkdirSync(path.join(bad, 'actions'), { recursive: true });
      fs.writeFileSync(path.join(bad, 'pack.yaml'), 'ref: badpack\nversion: 1.0.0\n');
      fs.writeFileSync(path.join(bad, 'actions', 'a.yaml'), 'name: a\nrunner: no-such-runner\n');
      fs.writeFileSync(path.join(bad, 'actions', 'b.yaml'), 'name: b\nrunner: echo\ncolour: red\n');
      const r = await cli(['pack', 'install', bad]);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^error: pack 'badpack' has \d+ problems; nothing was installed/);
      expect(r.stderr).toMatch(/^ {2}actions\/a\.yaml:2 .*runner/m);
      expect(r.stderr).toMatch(/^ {2}actions\/b\.yaml:3 .*colour/m);
      const notPack = await cli(['pack', 'install', home.dir]);
      expect(notPack).toMatchObject({
        code: 1,
        stderr: `error: ${home.dir} is not a pack: it has no pack.yaml\n`,
      });
      const noFile = await cli(['pack', 'install', path.join(home.dir, 'nothing-here')]);
      expect(noFile.code).toBe(1);
      expect(noFile.stderr).toContain('no such file or directory');
      const refNoGit = await cli(['pack', 'install', bad, '--ref', 'v1']);
      expect(refNoGit.code).toBe(2);
    });
  });

  describe('actions, triggers and sensors', () => {
    it('renders an action with its parameter schema', async () => {
      const r = await cli(['action', 'show', 'examples.restart_service']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^runner: +local-shell-script$/m);
      expect(r.stdout).toMatch(/^NAME +TYPE +REQUIRED +DEFAULT +DESCRIPTION$/m);
      expect(r.stdout).toMatch(
        /^service +string +yes +The systemd unit to restart; matches \^\[A-Za-z0-9_.@-\]\{1,100\}\$$/m,
      );
      expect(r.stdout).toMatch(/^dry_run +boolean +true +Only report what would be done$/m);
      expect(r.stdout).toContain('run it: attune run examples.restart_service service=…');
      const yaml = parseYaml((await cli(['--yaml', 'action', 'show', 'core.local'])).stdout) as AnyBody;
      expect(yaml.param_schema.required).toEqual(['cmd']);
    });

    it('answers 404s in one line', async () => {
      const [a, t, s, w, rl] = await Promise.all([
        cli(['action', 'show', 'core.nope']),
        cli(['trigger', 'show', 'core.nope']),
        cli(['sensor', 'show', 'core.nope']),
        cli(['workflow', 'show', 'core.nope']),
        cli(['rule', 'show', 'core.nope']),
      ]);
      expect(a).toMatchObject({ code: 1, stdout: '', stderr: "error: action 'core.nope' not found\n" });
      expect(t.stderr).toBe("error: trigger 'core.nope' not found\n");
      expect(s.stderr).toBe("error: sensor 'core.nope' not found\n");
      expect(w.stderr).toBe("error: workflow 'core.nope' not found\n");
      expect(rl.stderr).toBe("error: rule 'core.nope' not found\n");
      for (const r of [t, s, w, rl]) expect(r.code).toBe(1);
    });

    it('fits tables to the width, colours only when asked, and prints ids with -q', async () => {
      const [narrow, wide, plain, forced, noColor, quiet] = await Promise.all([
        cli(['action', 'list', '--pack', 'core'], { env: { COLUMNS: '60' } }),
        cli(['action', 'list', '--pack', 'core']),
        cli(['action', 'list', '--pack', 'core', '--limit', '2']),
        cli(['action', 'list', '--pack', 'core', '--limit', '2'], { env: { FORCE_COLOR: '1' } }),
        cli(['action', 'list', '--pack', 'core', '--limit', '2'], {
          env: { FORCE_COLOR: '1', NO_COLOR: '1' },
        }),
        cli(['action', 'list', '--pack', 'core', '-q']),
      ]);
      const lines = narrow.stdout.trimEnd().split('\n');
      expect(lines.length).toBeGreaterThan(5);
      for (const l of lines) expect([...l].length).toBeLessThanOrEqual(60);
      expect(narrow.stdout).toContain('…');
      expect(wide.stdout.split('\n').some((l) => l.length > 100)).toBe(true);
      const ESC = '\u001b[';
      expect(plain.stdout).not.toContain(ESC);
      expect(forced.stdout).toContain(`${ESC}1mREF`);
      expect(noColor.stdout).not.toContain(ESC);
      expect(plain.stderr).toMatch(/^showing 2 of \d+; use --limit to see more$/m);
      expect(quiet.stdout.trim().split('\n').sort()).toContain('core.local');
      expect(quiet.stdout).not.toContain('RUNNER');
    });

    it('lists triggers and sensors', async () => {
      const [tl, ts, sl] = await Promise.all([
        cli(['trigger', 'list', '-q']),
        cli(['trigger', 'show', 'core.webhook']),
        cli(['sensor', 'list', '--pack', 'clitest']),
      ]);
      expect(tl.stdout.split('\n')).toEqual(
        expect.arrayContaining(['core.webhook', 'core.intervaltimer', 'clitest.ping']),
      );
      expect(ts.stdout).toContain('parameters (set by rules)');
      expect(ts.stdout).toMatch(/^name +string +yes/m);
      expect(sl).toMatchObject({ code: 0, stdout: '', stderr: 'no sensors found\n' });
    });
  });

  describe('rules, events and enforcements', () => {
    it('creates a rule from a pack-format file, refuses duplicates and broken files, and tries it', async () => {
      const ruleFile = file(
        'rules/on_ping.yaml',
        `ref: clitest.on_ping
description: Echo high pings
trigger:
  type: ping
criteria:
  trigger.level: {type: equals, pattern: high}
action:
  ref: core.echo
  parameters:
    message: "ping: {{ trigger.msg }}"
`,
      );
      const created = await cli(['rule', 'create', '-f', ruleFile]);
      expect(created).toMatchObject({
        code: 0,
        stdout: 'Created rule clitest.on_ping (clitest.ping → core.echo, enabled)\n',
      });
      const dup = await cli(['rule', 'create', '-f', ruleFile]);
      expect(dup).toMatchObject({ code: 1, stderr: "error: rule 'clitest.on_ping' already exists\n" });
      const missing = await cli([
        'rule',
        'create',
        '-f',
        file('rules/m.yaml', 'ref: clitest.m\ntrigger: {type: ping}\naction: {ref: core.nope}\n'),
      ]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("action 'core.nope' does not exist");
      const broken = await cli([
        'rule',
        'create',
        '-f',
        file('rules/b.yaml', 'ref: clitest.b\ntrigger: {type: ping, params: {}}\naction: {ref: core.echo}\n'),
      ]);
      expect(broken.code).toBe(1);
      expect(broken.stderr).toContain('is not a valid rule file');
      expect(broken.stderr).toMatch(/\/trigger.*params/);

      const show = await cli(['rule', 'show', 'clitest.on_ping']);
      expect(show.stdout).toMatch(/^trigger: +clitest\.ping$/m);
      expect(show.stdout).toContain('message: "ping: {{ trigger.msg }}"');

      const hit = await cli([
        'rule',
        'test',
        'clitest.on_ping',
        '--payload',
        '{"level": "high", "msg": "hello"}',
      ]);
      expect(hit.code, hit.stderr).toBe(0);
      expect(hit.stdout).toContain('✔ rule clitest.on_ping matches: it would run its action');
      expect(hit.stdout).toContain('message: "ping: hello"');
      const miss = await cli(['rule', 'test', 'clitest.on_ping', '-f', file('low.yaml', 'level: low\n')]);
      expect(miss.code).toBe(1);
      expect(miss.stdout).toContain('✖ rule clitest.on_ping does not match');
      const json = JSON.parse(
        (await cli(['--json', 'rule', 'test', 'clitest.on_ping', '--payload', '{"level":"high"}'])).stdout,
      );
      expect(json).toMatchObject({ matched: true, would_execute: true });
      const usage = await cli(['rule', 'test', 'clitest.on_ping']);
      expect(usage.code).toBe(2);
    });

    it('disables, enables and deletes rules', async () => {
      const off = await cli(['rule', 'disable', 'clitest.on_ping']);
      expect(off.stdout).toBe('Rule clitest.on_ping disabled\n');
      expect((await cli(['rule', 'list', '--disabled', '--pack', 'clitest', '-q'])).stdout).toBe(
        'clitest.on_ping\n',
      );
      const on = await cli(['rule', 'enable', 'clitest.on_ping', '--json']);
      expect(JSON.parse(on.stdout)).toMatchObject({ ref: 'clitest.on_ping', enabled: true });
      const tmp = file(
        'rules/tmp.yaml',
        'ref: clitest.tmp\ntrigger: {type: ping}\naction: {ref: core.noop}\n',
      );
      expect((await cli(['rule', 'create', '-f', tmp])).code).toBe(0);
      expect(await cli(['rule', 'delete', 'clitest.tmp'])).toMatchObject({
        code: 0,
        stdout: 'Deleted rule clitest.tmp\n',
      });
      expect((await cli(['rule', 'delete', 'clitest.tmp'])).stderr).toBe(
        "error: rule 'clitest.tmp' not found\n",
      );
    });

    it('sends an event; its enforcement and execution show up', async () => {
      const sent = await cli(['event', 'send', 'clitest.ping', 'level=high', 'msg=from-cli', '-q']);
      expect(sent.code, sent.stderr).toBe(0);
      const id = Number(sent.stdout.trim());
      expect(id).toBeGreaterThan(0);
      const got = await cli(['event', 'get', String(id)]);
      expect(got.stdout).toMatch(/^trigger: +clitest\.ping$/m);
      expect(got.stdout).toContain('msg: from-cli');
      const list = await cli(['event', 'list', '--trigger', 'clitest.ping', '--since', '10m', '-q']);
      expect(list.stdout.split('\n')).toContain(String(id));
      // the rules engine works asynchronously
      let enf: AnyBody[] = [];
      for (let i = 0; i < 50 && !enf.length; i++) {
        enf = JSON.parse((await cli(['--json', 'enforcement', 'list', '--event', String(id)])).stdout);
        if (!enf.length) await new Promise((r) => setTimeout(r, 200));
      }
      expect(enf[0]).toMatchObject({ rule_ref: 'clitest.on_ping', event_id: id });
      const table = await cli(['enforcement', 'list', '--rule', 'clitest.on_ping']);
      expect(table.stdout).toMatch(/^ID +RULE +EVENT +STATUS +EXECUTION/m);
      const badType = await cli(['event', 'send', 'clitest.ping', '--payload', '{"level": 3}']);
      expect(badType.code).toBe(1);
      expect(badType.stderr).toContain("payload does not fit trigger 'clitest.ping'");
      const noTrigger = await cli(['event', 'send', 'clitest.nope']);
      expect(noTrigger.stderr).toContain('not found');
    });
  });

  describe('workflows', () => {
    const flow = `label: Two steps
description: Greets, then shouts
parameters:
  who: {type: string, required: true}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.who }}"}
    next:
      - when: "{{ succeeded() }}"
        do: [shout]
  - name: shout
    action: core.echo
    input: {message: "HELLO"}
`;

    it('creates from a workflow file, shows it (and its file), updates and deletes it', async () => {
      const f = file('wf/two_steps.yaml', flow);
      const noRef = await cli(['workflow', 'create', '-f', f]);
      expect(noRef.code).toBe(2);
      expect(noRef.stderr).toContain("has no 'ref'");
      const created = await cli(['workflow', 'create', '-f', f, '--pack', 'clitest']);
      expect(created).toMatchObject({ code: 0, stdout: 'Created workflow clitest.two_steps 1.0.0\n' });
      const show = await cli(['workflow', 'show', 'clitest.two_steps']);
      expect(show.stdout).toMatch(/^label: +Two steps$/m);
      expect(show.stdout).toMatch(/^greet +core\.echo +shout$/m);
      expect(show.stdout).toMatch(/^who +string +yes/m);
      const source = parseYaml(
        (await cli(['workflow', 'show', 'clitest.two_steps', '--source'])).stdout,
      ) as AnyBody;
      expect(source).toMatchObject({ ref: 'clitest.two_steps', label: 'Two steps' });
      expect(source.tasks.map((t: AnyBody) => t.name)).toEqual(['greet', 'shout']);

      const edited = file(
        'wf/edited.yaml',
        `ref: clitest.two_steps\n${flow.replace('label: Two steps', 'label: Two steps, edited')}`,
      );
      const updated = await cli(['workflow', 'update', '-f', edited]);
      expect(updated).toMatchObject({ code: 0, stdout: 'Updated workflow clitest.two_steps 1.0.0\n' });
      expect(JSON.parse((await cli(['--json', 'workflow', 'show', 'clitest.two_steps'])).stdout).label).toBe(
        'Two steps, edited',
      );
      expect((await cli(['workflow', 'list', '--pack', 'clitest', '-q'])).stdout).toBe('clitest.two_steps\n');
      expect((await cli(['action', 'show', 'clitest.two_steps'])).stdout).toMatch(/^runner: +workflow$/m);

      const broken = file(
        'wf/broken.yaml',
        'ref: clitest.broken\nlabel: B\ntasks:\n  - name: a\n    action: core.echo\n    next: [{do: [zz]}]\n',
      );
      const refused = await cli(['workflow', 'create', '-f', broken]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('has 1 error; nothing was sent');
      expect(refused.stderr).toContain("unknown task 'zz'");
      expect((await cli(['workflow', 'show', 'clitest.broken'])).code).toBe(1);

      expect(await cli(['workflow', 'delete', 'clitest.two_steps'])).toMatchObject({
        code: 0,
        stdout: 'Deleted workflow clitest.two_steps\n',
      });
    });
  });

  describe('keys', () => {
    it('sets, reads, lists, loads and deletes keys; encrypted values stay hidden unless decrypted', async () => {
      expect(await cli(['key', 'set', 'smtp_host', 'mail.example.org'])).toMatchObject({
        code: 0,
        stdout: 'Saved key smtp_host\n',
      });
      const secret = await cli(['key', 'set', 'db_password', '-', '--encrypt', '--ttl', '3600'], {
        input: 's3cret\n',
      });
      expect(secret.code, secret.stderr).toBe(0);
      expect(secret.stdout).toMatch(/^Saved key db_password \(encrypted, expires .+\)$/m);
      const numbers = await cli(['key', 'set', 'limits', '{"cpu": 2}', '--json-value']);
      expect(numbers.code).toBe(0);
      const fromFile = await cli(['key', 'set', 'motd', `@${file('motd.txt', 'hello\nworld\n')}`]);
      expect(fromFile.code).toBe(0);

      const masked = await cli(['key', 'get', 'db_password']);
      expect(masked.stdout).toMatch(/^value: +\(encrypted; add --decrypt to see it\)$/m);
      expect(masked.stdout).not.toContain('s3cret');
      const clear = await cli(['--json', 'key', 'get', 'db_password', '--decrypt']);
      expect(JSON.parse(clear.stdout)).toMatchObject({ value: 's3cret', encrypted: true, masked: false });
      expect(JSON.parse((await cli(['--json', 'key', 'get', 'limits'])).stdout).value).toEqual({ cpu: 2 });
      expect(JSON.parse((await cli(['--json', 'key', 'get', 'motd'])).stdout).value).toBe('hello\nworld\n');

      // updating an encrypted key keeps it encrypted
      expect((await cli(['key', 'set', 'db_password', 'n3w'])).stdout).toContain('(encrypted');
      const list = await cli(['key', 'list']);
      expect(list.stdout).toMatch(/^db_password +•+ +yes/m);
      expect(list.stdout).not.toContain('n3w');

      const load = await cli([
        'key',
        'load',
        '-f',
        file('keys.yaml', 'a_one: 1\nb_two: {value: two, encrypted: true}\n'),
      ]);
      expect(load).toMatchObject({ code: 0, stdout: 'Loaded 2 keys\n' });
      expect(JSON.parse((await cli(['--json', 'key', 'get', 'b_two'])).stdout)).toMatchObject({
        encrypted: true,
        masked: true,
      });
      const mine = await cli(['key', 'set', 'mine', 'x', '--scope', 'user']);
      expect(mine.stdout).toBe('Saved key mine (user scope of admin)\n');
      expect((await cli(['key', 'list', '--scope', 'user', '-q'])).stdout).toBe('mine\n');

      const del = await cli(['key', 'delete', 'a_one', 'b_two']);
      expect(del.stdout).toBe('Deleted key a_one\nDeleted key b_two\n');
      const gone = await cli(['key', 'get', 'a_one']);
      expect(gone).toMatchObject({ code: 1, stderr: "error: key 'a_one' not found\n" });
      const noValue = await cli(['key', 'set', 'x']);
      expect(noValue.code).toBe(2);
      const badScope = await cli(['key', 'list', '--scope', 'team']);
      expect(badScope.code).toBe(2);
    });
  });
});
