import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkGitRef, checkGitUrl, gitClone, redactUrl } from '../../src/packs/git.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/packs');
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=Test', '-c', 'user.email=t@example.com', ...args], {
    cwd,
    encoding: 'utf8',
  }).trim();

describe('git sources: what is accepted', () => {
  it('takes the usual transports and local paths', () => {
    expect(checkGitUrl('https://github.com/org/pack.git')).toEqual({});
    expect(checkGitUrl('ssh://git@host/org/pack.git')).toEqual({});
    expect(checkGitUrl('git@github.com:org/pack.git')).toEqual({});
    expect(checkGitUrl('git://host/pack.git')).toEqual({});
    expect(checkGitUrl('file:///srv/repos/pack.git')).toEqual({ local: '/srv/repos/pack.git' });
    expect(checkGitUrl('/srv/repos/pack')).toEqual({ local: '/srv/repos/pack' });
  });

  it.each([
    ['ext::sh -c touch% /tmp/pwned', /is not a URL|scheme/],
    ['-uhelp', /must not start with '-'/],
    ['ftp://host/x', /scheme 'ftp:' is not allowed/],
    ['relative/path', /is not a URL/],
    [' https://x', /without surrounding spaces/],
    ['https://x/\nrepo', /control characters/],
  ])('refuses %j', (url, why) => {
    expect(() => checkGitUrl(url)).toThrow(why);
  });

  it('checks refs', () => {
    for (const ok of ['main', 'v1.2.0', 'release/2024-01', 'a'.repeat(40)])
      expect(() => checkGitRef(ok)).not.toThrow();
    for (const bad of ['-x', '../main', 'a b', 'x.lock', '/abs', 'main/', ''])
      expect(() => checkGitRef(bad)).toThrow();
  });

  it('never shows credentials', () => {
    expect(redactUrl('https://user:s3cret@host/org/pack.git')).toBe('https://***@host/org/pack.git');
    expect(redactUrl('https://host/x.git')).toBe('https://host/x.git');
  });
});

describe('cloning with the real git', () => {
  let root: string;
  let repo: string;
  let bare: string;
  let v1: string;
  let head: string;
  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-git-'));
    repo = path.join(root, 'repo');
    fs.cpSync(path.join(FIXTURES, 'basic'), repo, { recursive: true });
    git(repo, 'init', '--quiet', '--initial-branch=main');
    git(repo, 'add', '.');
    git(repo, 'commit', '--quiet', '-m', 'v1');
    git(repo, 'tag', 'v1');
    v1 = git(repo, 'rev-parse', 'HEAD');
    fs.writeFileSync(path.join(repo, 'CHANGELOG.md'), 'v2\n');
    git(repo, 'add', '.');
    git(repo, 'commit', '--quiet', '-m', 'v2');
    head = git(repo, 'rev-parse', 'HEAD');
    bare = path.join(root, 'bare.git');
    execFileSync('git', ['clone', '--quiet', '--bare', repo, bare]);
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('clones the default branch over file://, shallow', async () => {
    const dest = path.join(root, 'c1');
    const r = await gitClone(pathToFileURL(bare).href, dest);
    expect(r.commit).toBe(head);
    expect(fs.existsSync(path.join(dest, 'pack.yaml'))).toBe(true);
    expect(git(dest, 'rev-list', '--count', 'HEAD')).toBe('1');
  });

  it('clones a tag, and a full commit id', async () => {
    const byTag = await gitClone(pathToFileURL(bare).href, path.join(root, 'c2'), { ref: 'v1' });
    expect(byTag.commit).toBe(v1);
    expect(fs.existsSync(path.join(root, 'c2', 'CHANGELOG.md'))).toBe(false);
    const bySha = await gitClone(pathToFileURL(repo).href, path.join(root, 'c3'), { ref: v1 });
    expect(bySha.commit).toBe(v1);
  });

  it('clones a local path, asking whether the path is allowed', async () => {
    const seen: string[] = [];
    await gitClone(repo, path.join(root, 'c4'), { checkLocalPath: (d) => seen.push(d) });
    expect(seen).toEqual([repo]);
    await expect(
      gitClone(repo, path.join(root, 'c5'), {
        checkLocalPath: () => {
          throw new Error('not allowed');
        },
      }),
    ).rejects.toThrow('not allowed');
  });

  it("explains git's failures: unknown branch, missing repository", async () => {
    await expect(
      gitClone(pathToFileURL(bare).href, path.join(root, 'c6'), { ref: 'nope' }),
    ).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringMatching(/could not fetch .*: Remote branch nope not found/),
    });
    await expect(gitClone(path.join(root, 'missing.git'), path.join(root, 'c7'))).rejects.toMatchObject({
      code: 'BAD_REQUEST',
      message: expect.stringMatching(/could not fetch/),
    });
  });

  it('gives up after the deadline, killing git and what it started', async () => {
    const before = process.env.GIT_SSH_COMMAND;
    process.env.GIT_SSH_COMMAND = 'sleep 30; true';
    try {
      const t0 = Date.now();
      await expect(
        gitClone('ssh://git@example.invalid/x.git', path.join(root, 'c8'), { timeoutMs: 500 }),
      ).rejects.toMatchObject({ message: expect.stringMatching(/git did not finish within 1 s/) });
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      if (before === undefined) delete process.env.GIT_SSH_COMMAND;
      else process.env.GIT_SSH_COMMAND = before;
    }
  });
});
