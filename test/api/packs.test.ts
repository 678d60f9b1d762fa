import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import zlib from 'node:zlib';
import { and, desc, eq } from 'drizzle-orm';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerBuiltinPacks } from '../../src/packs/builtin.ts';
import { hashPassword } from '../../src/services/api/auth.ts';
import {
  actions,
  auditLog,
  identities,
  identityRoles,
  packs,
  roles,
  rules,
  sensors,
  triggers,
  workflows,
} from '../../src/store/schema.ts';
import { describeBackend } from '../support/backend.ts';
import { type AnyBody, startTestServer, type TestServer } from '../support/server.ts';

const FIX = path.resolve(import.meta.dirname, '../fixtures/packs');
const UPLOAD_LIMIT = 256 * 1024;

describeBackend('packs API', () => {
  let s: TestServer;
  let tmp: string;
  beforeAll(async () => {
    s = await startTestServer({ ATTUNE_PACK_UPLOAD_LIMIT: String(UPLOAD_LIMIT) });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-packs-api-'));
  });
  afterAll(async () => {
    await s?.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const api = (
    method: string,
    url: string,
    opts: { body?: unknown; raw?: Buffer; headers?: Record<string, string>; token?: string } = {},
  ) => s.request<AnyBody>(method, url, { token: opts.token ?? s.adminToken, ...opts });
  const install = (body: unknown, query = '') => api('POST', `/api/v1/packs/install${query}`, { body });
  const upload = (data: Buffer, type = 'application/gzip', query = '') =>
    api('POST', `/api/v1/packs/install${query}`, { raw: data, headers: { 'content-type': type } });
  const db = () => s.platform.store.db;
  const packsDir = () => s.platform.ctx.packsDir;

  /** Every definition row (ref, pack, timestamps): equal snapshots mean nothing changed. */
  async function snapshot() {
    const [p, a, w, t, se, r] = await Promise.all([
      db().select({ ref: packs.ref, v: packs.version, u: packs.updatedAt }).from(packs).orderBy(packs.ref),
      db().select({ ref: actions.ref, u: actions.updatedAt }).from(actions).orderBy(actions.ref),
      db().select({ ref: workflows.ref, u: workflows.updatedAt }).from(workflows).orderBy(workflows.ref),
      db().select({ ref: triggers.ref, u: triggers.updatedAt }).from(triggers).orderBy(triggers.ref),
      db()
        .select({ ref: sensors.ref, u: sensors.updatedAt, e: sensors.enabled })
        .from(sensors)
        .orderBy(sensors.ref),
      db().select({ ref: rules.ref, u: rules.updatedAt, e: rules.enabled }).from(rules).orderBy(rules.ref),
    ]);
    return { p, a, w, t, se, r };
  }
  const stagingLeft = () => {
    const dir = path.join(packsDir(), '.staging');
    return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  };
  /** A pack directory in the test's temp folder. */
  function packDir(name: string, files: Record<string, string>): string {
    const dir = path.join(tmp, name);
    for (const [rel, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    }
    return dir;
  }
  const targz = (cwd: string, entries: string[]) =>
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      tar
        .c({ gzip: true, cwd, portable: true }, entries)
        .on('data', (c: Buffer) => chunks.push(c))
        .on('end', () => resolve(Buffer.concat(chunks)))
        .on('error', reject);
    });

  describe('the core pack', () => {
    it('is registered at start with all its actions and trigger types, and its files', async () => {
      const r = await api('GET', '/api/v1/packs/core');
      expect(r.status).toBe(200);
      const p = r.body.data;
      expect(p).toMatchObject({
        ref: 'core',
        system: true,
        version: '1.0.0',
        source: { type: 'builtin', checksum: expect.stringMatching(/^sha256:/) },
        counts: { actions: 9, workflows: 0, rules: 0, triggers: 6, sensors: 0 },
      });
      expect(p.contents.actions).toEqual([
        'core.ask',
        'core.echo',
        'core.http',
        'core.local',
        'core.local_script',
        'core.node',
        'core.noop',
        'core.python',
        'core.sleep',
      ]);
      expect(p.contents.triggers).toEqual([
        'core.crontimer',
        'core.datetimetimer',
        'core.execution_completed',
        'core.intervaltimer',
        'core.key_changed',
        'core.webhook',
      ]);
      const [local] = await db().select().from(actions).where(eq(actions.ref, 'core.local_script'));
      expect(local).toMatchObject({
        runner: 'local-shell-script',
        entryPoint: 'inline/shell.sh',
        timeoutSeconds: 600,
      });
      // the files are where the workers run them from
      expect(fs.statSync(path.join(packsDir(), 'core/actions', local!.entryPoint)).isFile()).toBe(true);
    });

    it('is left alone at the next start when nothing changed (and that is fast)', async () => {
      const before = await snapshot();
      const t0 = performance.now();
      await registerBuiltinPacks(s.platform.ctx);
      expect(performance.now() - t0).toBeLessThan(1000);
      expect(await snapshot()).toEqual(before);
    });

    it('is updated in place when its files change, and restored', async () => {
      const changed = path.join(tmp, 'shipped');
      fs.cpSync(s.platform.ctx.builtinPacksDir, changed, { recursive: true });
      const echo = path.join(changed, 'core/actions/echo.yaml');
      fs.writeFileSync(
        echo,
        fs.readFileSync(echo, 'utf8').replace('Returns its message', 'Gives back its message'),
      );
      await registerBuiltinPacks({ ...s.platform.ctx, builtinPacksDir: changed });
      const desc = async () =>
        (await db().select({ d: actions.description }).from(actions).where(eq(actions.ref, 'core.echo')))[0]!
          .d;
      expect(await desc()).toMatch(/^Gives back/);
      await registerBuiltinPacks(s.platform.ctx);
      expect(await desc()).toMatch(/^Returns its message/);
    });

    it('cannot be uninstalled, replaced or changed', async () => {
      expect((await api('DELETE', '/api/v1/packs/core')).status).toBe(409);
      const put = await api('PUT', '/api/v1/packs/core', { body: { label: 'Mine' } });
      expect(put.status).toBe(409);
      const copy = path.join(tmp, 'fake-core');
      fs.cpSync(path.join(s.platform.ctx.builtinPacksDir, 'core'), copy, { recursive: true });
      fs.writeFileSync(path.join(copy, 'pack.yaml'), 'ref: core\nversion: 9.0.0\n');
      const r = await install({ source: 'path', path: copy });
      expect(r.status).toBe(409);
      expect(r.body.error.message).toMatch(/system pack/);
    });
  });

  describe('installing from a server path', () => {
    it('installs the examples pack (workflow with its action, rules, script files)', async () => {
      const r = await install({ source: 'path', path: 'packs/examples' });
      expect(r.status).toBe(201);
      expect(r.body.data).toMatchObject({
        operation: 'installed',
        previous_version: null,
        pack: { ref: 'examples', counts: { actions: 1, workflows: 1, rules: 2, triggers: 0, sensors: 0 } },
        changes: {
          created: {
            actions: ['examples.restart_service'],
            workflows: ['examples.service_healthcheck'],
            rules: ['examples.healthcheck_on_webhook', 'examples.hourly_attune_healthcheck'],
          },
        },
        warnings: [],
      });
      const [wf] = await db()
        .select()
        .from(workflows)
        .where(eq(workflows.ref, 'examples.service_healthcheck'));
      const [wfAction] = await db()
        .select()
        .from(actions)
        .where(eq(actions.ref, 'examples.service_healthcheck'));
      expect(wfAction).toMatchObject({
        runner: 'workflow',
        packRef: 'examples',
        paramSchema: wf!.paramSchema,
      });
      expect(wf!.actionId).toBe(wfAction!.id);
      expect(fs.existsSync(path.join(packsDir(), 'examples/actions/restart_service.sh'))).toBe(true);
      const audit = await db()
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, 'pack.install'), eq(auditLog.resourceRef, 'examples')));
      expect(audit).toMatchObject([
        { outcome: 'success', actor: 'admin', details: { operation: 'installed' } },
      ]);
    });

    it('installs a pack with one of everything; installing it again changes nothing', async () => {
      const r = await install({ source: 'path', path: path.join(FIX, 'basic') });
      expect(r.status).toBe(201);
      expect(r.body.data.pack).toMatchObject({
        ref: 'fixture_basic',
        version: '1.2.0',
        author: 'Tests',
        email: 'tests@example.com',
        dependencies: ['core@>=1.0.0'],
        config: { retries: 3, greeting: 'Hello' },
        installed_by: 'admin',
        source: { type: 'path', location: path.join(FIX, 'basic') },
        counts: { actions: 3, workflows: 1, rules: 2, triggers: 1, sensors: 1 },
      });
      const detail = await api('GET', '/api/v1/packs/fixture_basic');
      expect(detail.body.data.contents).toEqual({
        actions: ['fixture_basic.hello', 'fixture_basic.ping', 'fixture_basic.report'],
        workflows: ['fixture_basic.greet'],
        rules: ['fixture_basic.on_deploy', 'fixture_basic.on_webhook'],
        triggers: ['fixture_basic.deployed'],
        sensors: ['fixture_basic.watcher'],
      });
      const [rule] = await db().select().from(rules).where(eq(rules.ref, 'fixture_basic.on_deploy'));
      expect(rule).toMatchObject({
        triggerRef: 'fixture_basic.deployed',
        actionRef: 'fixture_basic.hello',
        triggerParams: { environment: 'production' },
        ownerLogin: null,
      });
      const [sensor] = await db().select().from(sensors).where(eq(sensors.ref, 'fixture_basic.watcher'));
      expect(sensor).toMatchObject({
        runner: 'python-script',
        entryPoint: 'watcher.py',
        triggerRefs: ['fixture_basic.deployed'],
      });
      expect(fs.readFileSync(path.join(packsDir(), 'fixture_basic/actions/lib/report.py'), 'utf8')).toMatch(
        /json.dumps/,
      );

      const before = await snapshot();
      const again = await install({ source: 'path', path: path.join(FIX, 'basic') });
      expect(again.status).toBe(200);
      expect(again.body.data).toMatchObject({
        operation: 'updated',
        previous_version: '1.2.0',
        changes: { unchanged: 8 },
      });
      for (const k of ['created', 'updated', 'removed'])
        expect(Object.values(again.body.data.changes[k]).flat()).toEqual([]);
      const after = await snapshot();
      expect(after.a).toEqual(before.a);
      expect(after.r).toEqual(before.r);
      expect(stagingLeft()).toEqual([]);
    });

    it('keeps a configuration set through the API across a reinstall', async () => {
      const put = await api('PUT', '/api/v1/packs/fixture_basic', { body: { config: { greeting: 'Hi' } } });
      expect(put.status).toBe(200);
      expect(put.body.data.config).toEqual({ greeting: 'Hi', retries: 2 });
      const r = await install({ source: 'path', path: path.join(FIX, 'basic') });
      expect(r.body.data.pack.config).toEqual({ greeting: 'Hi', retries: 2 });
    });

    it('answers an invalid pack with every problem, file and line, and installs nothing', async () => {
      const before = await snapshot();
      const r = await install({ source: 'path', path: path.join(FIX, 'broken') });
      expect(r.status).toBe(422);
      expect(r.body.error.code).toBe('UNPROCESSABLE_ENTITY');
      expect(r.body.error.message).toMatch(/^pack 'fixture_broken' has 25 problems; nothing was installed/);
      const d = r.body.error.details;
      expect(d).toHaveLength(25);
      for (const p of [
        { file: 'pack.yaml', line: 3, path: '/version' },
        {
          file: 'pack.yaml',
          line: 5,
          path: '/dependencies/0',
          message: expect.stringMatching(/'not_installed', which is not installed/),
        },
        { file: 'actions/bad_runner.yaml', line: 3, path: '/runner' },
        { file: 'actions/missing_script.yaml', line: 2, path: '/entry_point' },
        {
          file: 'rules/bad_rule.yaml',
          line: 3,
          path: '/trigger/type',
          message: "trigger type 'core.nonexistent' does not exist in pack 'core'",
        },
        {
          file: 'rules/bad_rule.yaml',
          line: 11,
          path: '/action/parameters/mesage',
          message: expect.stringMatching(/did you mean 'message'/),
        },
        { file: 'workflows/flow.yaml', line: 10, path: '/tasks/1/input/mesage' },
        { file: 'workflows/flow.yaml', line: 6, path: '/tasks/0/next/0/do' },
      ])
        expect(d).toContainEqual(expect.objectContaining(p));
      for (const p of d)
        expect(p).toEqual({
          file: expect.any(String),
          line: expect.any(Number),
          path: expect.any(String),
          message: expect.any(String),
        });
      expect(await snapshot()).toEqual(before);
      expect(fs.existsSync(path.join(packsDir(), 'fixture_broken'))).toBe(false);
      expect(stagingLeft()).toEqual([]);
      const [failed] = await db()
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, 'pack.install'), eq(auditLog.outcome, 'failure')))
        .orderBy(desc(auditLog.id))
        .limit(1);
      expect(failed!.details).toMatchObject({ error: 'UNPROCESSABLE_ENTITY', source: { type: 'path' } });
    });

    it('refuses bad requests with a 4xx', async () => {
      const bad = async (body: unknown, status: number, msg: RegExp) => {
        const r = await install(body);
        expect(r.status, JSON.stringify(r.body)).toBe(status);
        expect(r.body.error.message).toMatch(msg);
      };
      await bad({ source: 'ftp', path: '/x' }, 400, /source/);
      await bad({ source: 'path' }, 400, /needs 'path'/);
      await bad({ source: 'path', path: FIX, url: 'x' }, 400, /'url' is only for source 'git'/);
      await bad({ source: 'git', path: FIX }, 400, /'path' is only for source 'path'/);
      await bad({ source: 'path', path: '/x', extra: 1 }, 400, /extra/);
      await bad({ source: 'path', path: path.join(tmp, 'does-not-exist') }, 400, /no such directory/);
      await bad({ source: 'path', path: path.join(FIX, 'basic/pack.yaml') }, 400, /not a directory/);
      await bad({ source: 'path', path: FIX }, 422, /no pack.yaml in directory/);
      const r = await api('POST', '/api/v1/packs/install', {
        raw: Buffer.from('source=path'),
        headers: { 'content-type': 'text/plain' },
      });
      expect(r.status).toBe(415);
    });

    it('honours ATTUNE_PACK_PATHS (the shipped packs stay allowed)', async () => {
      const cfg = s.platform.ctx.config;
      const saved = cfg.packPathAllowlist;
      cfg.packPathAllowlist = [path.join(tmp, 'allowed')];
      try {
        const outside = await install({ source: 'path', path: path.join(FIX, 'basic') });
        expect(outside.status).toBe(403);
        expect(outside.body.error.message).toMatch(/ATTUNE_PACK_PATHS/);
        const inside = packDir('allowed/mini', { 'pack.yaml': 'ref: fixture_allowed\nversion: 1.0.0\n' });
        expect((await install({ source: 'path', path: inside })).status).toBe(201);
        expect((await install({ source: 'path', path: 'packs/examples' })).status).toBe(200);
        const viaGit = await install({ source: 'git', url: pathToFileURL(path.join(FIX, 'basic')).href });
        expect(viaGit.status).toBe(403);
      } finally {
        cfg.packPathAllowlist = saved;
      }
    });
  });

  describe('upgrades', () => {
    it('update what changed and remove what the new version no longer has', async () => {
      expect((await install({ source: 'path', path: path.join(FIX, 'upgrade-v1') })).status).toBe(201);
      expect((await install({ source: 'path', path: path.join(FIX, 'consumer') })).status).toBe(201);
      expect(fs.existsSync(path.join(packsDir(), 'fixture_upgrade/actions/old_only.txt'))).toBe(true);

      // v2 drops the action b that a rule of another pack uses: refused, nothing changes
      const before = await snapshot();
      const refused = await install({ source: 'path', path: path.join(FIX, 'upgrade-v2') });
      expect(refused.status).toBe(409);
      expect(refused.body.error.details).toMatchObject({
        rules: ['fixture_consumer.uses_b'],
        removed: { actions: ['fixture_upgrade.b', 'fixture_upgrade.w1'], triggers: ['fixture_upgrade.t2'] },
      });
      expect(await snapshot()).toEqual(before);
      expect(fs.existsSync(path.join(packsDir(), 'fixture_upgrade/actions/old_only.txt'))).toBe(true);

      const r = await install({ source: 'path', path: path.join(FIX, 'upgrade-v2') }, '?force=true');
      expect(r.status).toBe(200);
      const out = r.body.data;
      expect(out).toMatchObject({
        operation: 'updated',
        previous_version: '1.0.0',
        pack: { version: '2.0.0' },
      });
      expect(out.changes).toEqual({
        created: {
          actions: ['fixture_upgrade.d'],
          workflows: ['fixture_upgrade.w2'],
          rules: [],
          triggers: [],
          sensors: [],
        },
        updated: { actions: ['fixture_upgrade.a'], workflows: [], rules: [], triggers: [], sensors: [] },
        removed: {
          actions: ['fixture_upgrade.b'],
          workflows: ['fixture_upgrade.w1'],
          rules: ['fixture_upgrade.r2'],
          triggers: ['fixture_upgrade.t2'],
          sensors: [],
        },
        unchanged: 4,
      });
      expect(out.disabled).toEqual({ rules: ['fixture_consumer.uses_b'], sensors: [] });
      expect(out.warnings).toContainEqual(
        expect.objectContaining({
          message:
            "pack 'fixture_consumer' depends on 'fixture_upgrade@^1.0', which version 2.0.0 does not satisfy",
        }),
      );
      const refs = async (t: typeof actions | typeof workflows | typeof triggers | typeof rules) =>
        (await db().select({ ref: t.ref }).from(t).where(eq(t.packRef, 'fixture_upgrade')))
          .map((x) => x.ref)
          .sort();
      expect(await refs(actions)).toEqual([
        'fixture_upgrade.a',
        'fixture_upgrade.c',
        'fixture_upgrade.d',
        'fixture_upgrade.w2',
      ]);
      expect(await refs(workflows)).toEqual(['fixture_upgrade.w2']);
      expect(await refs(triggers)).toEqual(['fixture_upgrade.t1']);
      expect(await refs(rules)).toEqual(['fixture_upgrade.r1']);
      const [uses] = await db().select().from(rules).where(eq(rules.ref, 'fixture_consumer.uses_b'));
      expect(uses!.enabled).toBe(false);
      // the files follow: the new version is active, the previous one kept for running executions
      expect(fs.existsSync(path.join(packsDir(), 'fixture_upgrade/actions/new_file.txt'))).toBe(true);
      expect(fs.existsSync(path.join(packsDir(), 'fixture_upgrade/actions/old_only.txt'))).toBe(false);
      expect(fs.readdirSync(path.join(packsDir(), '.versions/fixture_upgrade'))).toHaveLength(2);
    });

    it('need the update right on packs', async () => {
      const [role] = await db()
        .insert(roles)
        .values({ name: 'pack_installer', grants: [{ resource: 'packs', actions: ['read', 'create'] }] })
        .returning();
      const users: Record<string, string> = {};
      for (const [login, roleName] of [
        ['installer1', 'pack_installer'],
        ['viewer1', 'viewer'],
      ] as const) {
        const [ident] = await db()
          .insert(identities)
          .values({ login, passwordHash: await hashPassword('pw-for-tests') })
          .returning();
        const [r] =
          roleName === 'pack_installer'
            ? [role]
            : await db().select().from(roles).where(eq(roles.name, roleName));
        await db().insert(identityRoles).values({ identityId: ident!.id, roleId: r!.id });
        users[login] = await s.login(login, 'pw-for-tests');
      }
      const dir = packDir('rbac', { 'pack.yaml': 'ref: fixture_rbac\nversion: 1.0.0\n' });
      const asViewer = await api('POST', '/api/v1/packs/install', {
        token: users.viewer1,
        body: { source: 'path', path: dir },
      });
      expect(asViewer.status).toBe(403);
      const first = await api('POST', '/api/v1/packs/install', {
        token: users.installer1,
        body: { source: 'path', path: dir },
      });
      expect(first.status).toBe(201);
      const second = await api('POST', '/api/v1/packs/install', {
        token: users.installer1,
        body: { source: 'path', path: dir },
      });
      expect(second.status).toBe(403);
      expect(second.body.error.message).toMatch(/'update' permission/);
    });
  });

  describe('installing from git', () => {
    let repo: string;
    let bare: string;
    let v1: string;
    const git = (cwd: string, ...args: string[]) =>
      execFileSync('git', ['-c', 'user.name=T', '-c', 'user.email=t@example.com', ...args], {
        cwd,
        encoding: 'utf8',
      }).trim();
    beforeAll(() => {
      repo = packDir('git-src', {
        'pack.yaml': 'ref: fixture_git\nversion: 1.0.0\n',
        'actions/hi.yaml': 'runner: local-shell-script\nentry_point: hi.sh\n',
        'actions/hi.sh': 'echo hi\n',
        'rules/on_hook.yaml': 'trigger: {type: core.webhook, parameters: {name: hi}}\naction: {ref: hi}\n',
      });
      git(repo, 'init', '--quiet', '--initial-branch=main');
      git(repo, 'add', '.');
      git(repo, 'commit', '--quiet', '-m', 'one');
      git(repo, 'tag', 'v1.0.0');
      v1 = git(repo, 'rev-parse', 'HEAD');
      fs.writeFileSync(path.join(repo, 'pack.yaml'), 'ref: fixture_git\nversion: 1.1.0\n');
      git(repo, 'commit', '--quiet', '-am', 'two');
      bare = path.join(tmp, 'git-bare.git');
      execFileSync('git', ['clone', '--quiet', '--bare', repo, bare]);
    });

    it('clones the default branch of a bare repository', async () => {
      const r = await install({ source: 'git', url: pathToFileURL(bare).href });
      expect(r.status).toBe(201);
      expect(r.body.data.pack).toMatchObject({
        ref: 'fixture_git',
        version: '1.1.0',
        source: {
          type: 'git',
          location: pathToFileURL(bare).href,
          commit: expect.stringMatching(/^[0-9a-f]{40}$/),
        },
        counts: { actions: 1, rules: 1 },
      });
      expect(fs.existsSync(path.join(packsDir(), 'fixture_git/actions/hi.sh'))).toBe(true);
      expect(fs.existsSync(path.join(packsDir(), 'fixture_git/.git'))).toBe(false);
    });

    it('installs a tag or a commit of a local repository', async () => {
      const byTag = await install({ source: 'git', url: repo, ref: 'v1.0.0' });
      expect(byTag.status).toBe(200);
      expect(byTag.body.data).toMatchObject({
        previous_version: '1.1.0',
        pack: { version: '1.0.0', source: { ref: 'v1.0.0', commit: v1 } },
      });
      const bySha = await install({ source: 'git', url: pathToFileURL(repo).href, ref: v1 });
      expect(bySha.status).toBe(200);
      expect(bySha.body.data.pack.source.commit).toBe(v1);
    });

    it('explains what went wrong', async () => {
      const missing = await install({ source: 'git', url: pathToFileURL(path.join(tmp, 'nope.git')).href });
      expect(missing.status).toBe(400);
      expect(missing.body.error.message).toMatch(/could not fetch/);
      const badRef = await install({ source: 'git', url: repo, ref: 'no-such-branch' });
      expect(badRef.status).toBe(400);
      expect(badRef.body.error.message).toMatch(/no-such-branch/);
      const scheme = await install({ source: 'git', url: 'ext::sh -c id' });
      expect(scheme.status).toBe(400);
      const option = await install({ source: 'git', url: '--upload-pack=touch /tmp/x' });
      expect(option.status).toBe(400);
      expect(stagingLeft()).toEqual([]);
    });
  });

  describe('installing an uploaded archive', () => {
    let dir: string;
    beforeAll(() => {
      dir = packDir('upload-src/fixture_upload-1.0.0', {
        'pack.yaml': 'ref: fixture_upload\nversion: 1.0.0\n',
        'actions/run.yaml': 'runner: python-script\nentry_point: run.py\n',
        'actions/run.py': 'print("{}")\n',
      });
    });

    it('installs a .tar.gz whose pack sits in a single top folder; again as octet-stream', async () => {
      const data = await targz(path.dirname(dir), [path.basename(dir)]);
      const r = await upload(data);
      expect(r.status).toBe(201);
      expect(r.body.data.pack).toMatchObject({
        ref: 'fixture_upload',
        source: { type: 'upload' },
        counts: { actions: 1 },
      });
      expect(fs.existsSync(path.join(packsDir(), 'fixture_upload/actions/run.py'))).toBe(true);
      const again = await upload(data, 'application/octet-stream');
      expect(again.status).toBe(200);
    });

    it('refuses an unsafe archive, naming every bad entry, and installs nothing', async () => {
      const entry = (name: string, body: string, type = '0', link = '') => {
        const h = Buffer.alloc(512);
        const oct = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
        h.write(name, 0);
        h.write(oct(0o644, 8), 100);
        h.write(oct(0, 8), 108);
        h.write(oct(0, 8), 116);
        h.write(oct(body.length, 12), 124);
        h.write(oct(0, 12), 136);
        h.write('        ', 148);
        h.write(type, 156);
        h.write(link, 157);
        h.write('ustar\0', 257);
        h.write('00', 263);
        let sum = 0;
        for (const b of h) sum += b;
        h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
        const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
        return Buffer.concat([h, Buffer.from(body), pad]);
      };
      const evil = zlib.gzipSync(
        Buffer.concat([
          entry('pack.yaml', 'ref: fixture_evil\nversion: 1.0.0\n'),
          entry('../../escape.sh', 'touch /tmp/pwned'),
          entry('actions/passwd', '', '2', '/etc/passwd'),
          Buffer.alloc(1024),
        ]),
      );
      const before = await snapshot();
      const r = await upload(evil);
      expect(r.status).toBe(422);
      expect(r.body.error.details).toEqual([
        {
          file: '../../escape.sh',
          line: null,
          path: '/',
          message: "unsafe entry: the path contains a '..' segment",
        },
        {
          file: 'actions/passwd',
          line: null,
          path: '/',
          message: "unsafe entry: symbolic link to '/etc/passwd' points outside the pack",
        },
      ]);
      expect(await snapshot()).toEqual(before);
      expect(fs.existsSync(path.join(packsDir(), 'fixture_evil'))).toBe(false);
      expect(stagingLeft()).toEqual([]);
    });

    it('refuses an archive over the upload limit (413), a body that is no archive, and an empty one', async () => {
      const big = await upload(Buffer.alloc(UPLOAD_LIMIT + 1024, 7));
      expect(big.status).toBe(413);
      expect(big.body.error).toMatchObject({
        code: 'PAYLOAD_TOO_LARGE',
        message: expect.stringMatching(/upload limit of 262144 bytes/),
      });
      const junk = await upload(Buffer.from('this is not a tarball'));
      expect(junk.status).toBe(400);
      expect(junk.body.error.message).toMatch(/not a tar archive/);
      const empty = await upload(Buffer.alloc(0));
      expect(empty.status).toBe(400);
    });
  });

  describe('managing packs', () => {
    it('creates an empty pack, validating its config against its schema', async () => {
      const body = {
        ref: 'fixture_empty',
        label: 'Empty',
        version: '0.1.0',
        tags: ['fixture', 'empty'],
        config_schema: {
          type: 'object',
          properties: { url: { type: 'string' }, n: { type: 'integer', default: 5 } },
        },
        config: { url: 'https://example.com' },
      };
      const r = await api('POST', '/api/v1/packs', { body });
      expect(r.status).toBe(201);
      expect(r.body.data).toMatchObject({
        ref: 'fixture_empty',
        config: { url: 'https://example.com', n: 5 },
        source: { type: 'api' },
        counts: { actions: 0, workflows: 0, rules: 0, triggers: 0, sensors: 0 },
      });
      expect((await api('POST', '/api/v1/packs', { body })).status).toBe(409);
      const bad = async (b: Record<string, unknown>, msg: RegExp) => {
        const x = await api('POST', '/api/v1/packs', { body: { ref: 'fixture_other', ...b } });
        expect(x.status).toBe(400);
        expect(x.body.error.message).toMatch(msg);
      };
      await bad({ version: '1.0' }, /semantic version/);
      await bad({ config_schema: { type: 'object' }, config: 5 }, /config/);
      await bad(
        { config_schema: { type: 'object', properties: { n: { type: 'integer' } } }, config: { n: 'x' } },
        /config does not fit config_schema/,
      );
      await bad({ config_schema: { type: 'nonsense' } }, /config_schema/);
      await bad({ ref: 'Bad Ref' }, /ref/);
      await bad({ email: 'not-an-email' }, /email/);
    });

    it('updates a pack partially, checking its config', async () => {
      const r = await api('PUT', '/api/v1/packs/fixture_empty', {
        body: { label: 'Renamed', config: { n: 7 } },
      });
      expect(r.status).toBe(200);
      expect(r.body.data).toMatchObject({ label: 'Renamed', version: '0.1.0', config: { n: 7 } });
      const bad = await api('PUT', '/api/v1/packs/fixture_empty', { body: { config: { n: 'seven' } } });
      expect(bad.status).toBe(400);
      expect((await api('PUT', '/api/v1/packs/fixture_empty', { body: {} })).status).toBe(400);
      expect((await api('PUT', '/api/v1/packs/nope', { body: { label: 'x' } })).status).toBe(404);
    });

    it('lists packs with their counts, filters and pagination', async () => {
      const all = await api('GET', '/api/v1/packs');
      expect(all.status).toBe(200);
      const refs = all.body.data.map((p: { ref: string }) => p.ref);
      expect(refs).toEqual([...refs].sort());
      expect(refs).toEqual(expect.arrayContaining(['core', 'examples', 'fixture_basic', 'fixture_empty']));
      const examples = all.body.data.find((p: { ref: string }) => p.ref === 'examples');
      expect(examples.counts).toEqual({ actions: 1, workflows: 1, rules: 2, triggers: 0, sensors: 0 });
      const tagged = await api('GET', '/api/v1/packs?tags=empty,nothing');
      expect(tagged.body.data.map((p: { ref: string }) => p.ref)).toEqual(['fixture_empty']);
      const search = await api('GET', '/api/v1/packs?search=one%20of%20everything');
      expect(search.body.data.map((p: { ref: string }) => p.ref)).toEqual(['fixture_basic']);
      const page = await api('GET', '/api/v1/packs?page=2&page_size=1');
      expect(page.body.data).toHaveLength(1);
      expect(page.body.data[0].ref).toBe(refs[1]);
      expect(page.body.pagination).toEqual({
        page: 2,
        page_size: 1,
        total_items: all.body.pagination.total_items,
        total_pages: all.body.pagination.total_items,
      });
      expect((await api('GET', '/api/v1/packs?page_size=0')).status).toBe(400);
      expect((await api('GET', '/api/v1/packs/nope')).status).toBe(404);
    });
  });

  describe('uninstalling', () => {
    it('is refused while other packs use the pack, then removes everything', async () => {
      const refused = await api('DELETE', '/api/v1/packs/fixture_upgrade');
      expect(refused.status).toBe(409);
      expect(refused.body.error.details).toEqual({
        rules: ['fixture_consumer.uses_b'],
        sensors: [],
        packs: ['fixture_consumer'],
      });
      expect((await api('DELETE', '/api/v1/packs/fixture_consumer')).status).toBe(204);
      expect((await api('DELETE', '/api/v1/packs/fixture_upgrade')).status).toBe(204);
      for (const t of [actions, workflows, triggers, sensors, rules])
        expect(await db().select().from(t).where(eq(t.packRef, 'fixture_upgrade'))).toEqual([]);
      expect(fs.existsSync(path.join(packsDir(), 'fixture_upgrade'))).toBe(false);
      expect(fs.existsSync(path.join(packsDir(), '.versions/fixture_upgrade'))).toBe(false);
      expect((await api('GET', '/api/v1/packs/fixture_upgrade')).status).toBe(404);
      expect((await api('DELETE', '/api/v1/packs/fixture_upgrade')).status).toBe(404);
    });

    it('with force=true, disables the rules of other packs that used it', async () => {
      expect((await install({ source: 'path', path: path.join(FIX, 'upgrade-v1') })).status).toBe(201);
      expect((await install({ source: 'path', path: path.join(FIX, 'consumer') })).status).toBe(201);
      const r = await api('DELETE', '/api/v1/packs/fixture_upgrade?force=true');
      expect(r.status).toBe(204);
      const [uses] = await db().select().from(rules).where(eq(rules.ref, 'fixture_consumer.uses_b'));
      expect(uses!.enabled).toBe(false);
      const [entry] = await db()
        .select()
        .from(auditLog)
        .where(and(eq(auditLog.action, 'pack.uninstall'), eq(auditLog.resourceRef, 'fixture_upgrade')))
        .orderBy(auditLog.id);
      expect(entry).toMatchObject({ actor: 'admin', resourceType: 'packs' });
    });
  });
});
