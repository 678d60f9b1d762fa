import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  activate,
  activeDir,
  cleanStaging,
  makeStaging,
  pruneVersions,
  removeInstalled,
  versionDir,
  versionDirName,
} from '../../src/packs/installed-files.ts';
import { checksumTree, copyTree, findPackRoot, listTree, PackTooLargeError } from '../../src/packs/tree.ts';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-files-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const write = (rel: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
};

describe('copying a pack directory', () => {
  it('copies files and follows links that stay inside the pack', () => {
    write('src/pack.yaml', 'ref: a\n');
    write('src/actions/run.sh', 'echo\n');
    fs.chmodSync(path.join(root, 'src/actions/run.sh'), 0o700);
    fs.symlinkSync('run.sh', path.join(root, 'src/actions/alias.sh'));
    write('src/.git/config', 'ignored');
    const { files, problems } = copyTree(path.join(root, 'src'), path.join(root, 'dst'));
    expect(problems).toEqual([]);
    expect(files.map((f) => [f.path, f.mode.toString(8)])).toEqual([
      ['actions/alias.sh', '755'],
      ['actions/run.sh', '755'],
      ['pack.yaml', '644'],
    ]);
    expect(fs.lstatSync(path.join(root, 'dst/actions/alias.sh')).isSymbolicLink()).toBe(false);
    expect(fs.existsSync(path.join(root, 'dst/.git'))).toBe(false);
  });

  it('reports links leaving the pack, links to directories, dangling links and pipes', () => {
    write('outside.txt', 'secret');
    write('src/pack.yaml', 'ref: a\n');
    fs.symlinkSync('../outside.txt', path.join(root, 'src/out'));
    fs.symlinkSync('/etc', path.join(root, 'src/etc'));
    fs.mkdirSync(path.join(root, 'src/dir'));
    fs.symlinkSync('dir', path.join(root, 'src/dirlink'));
    fs.symlinkSync('nothing', path.join(root, 'src/dangling'));
    execFileSync('mkfifo', [path.join(root, 'src/fifo')]);
    const { problems } = copyTree(path.join(root, 'src'), path.join(root, 'dst'));
    expect(problems.map((p) => [p.file, p.message])).toEqual([
      ['dangling', 'symbolic link points to nothing'],
      ['dirlink', 'symbolic links to directories are not supported'],
      ['etc', 'symbolic link points outside the pack'],
      ['fifo', 'not a regular file or directory (device, socket or pipe)'],
      ['out', 'symbolic link points outside the pack'],
    ]);
    expect(fs.existsSync(path.join(root, 'dst/out'))).toBe(false);
  });

  it('stops past the limits', () => {
    for (let i = 0; i < 5; i++) write(`src/f${i}`, 'x'.repeat(100));
    const limits = { maxFiles: 3, maxFileBytes: 1000, maxTotalBytes: 10_000 };
    expect(() => copyTree(path.join(root, 'src'), path.join(root, 'd1'), limits)).toThrow(PackTooLargeError);
    expect(() =>
      copyTree(path.join(root, 'src'), path.join(root, 'd2'), { ...limits, maxFiles: 10, maxFileBytes: 50 }),
    ).toThrow(/larger than 50 bytes/);
    expect(() =>
      copyTree(path.join(root, 'src'), path.join(root, 'd3'), {
        ...limits,
        maxFiles: 10,
        maxTotalBytes: 250,
      }),
    ).toThrow(/more than 250 bytes/);
  });

  it('checksums contents and paths, not times', () => {
    write('a/pack.yaml', 'ref: a\n');
    write('b/pack.yaml', 'ref: a\n');
    const sum = (d: string) => checksumTree(path.join(root, d), listTree(path.join(root, d)));
    expect(sum('a')).toBe(sum('b'));
    expect(sum('a')).toMatch(/^sha256:[0-9a-f]{64}$/);
    write('b/pack.yaml', 'ref: b\n');
    expect(sum('a')).not.toBe(sum('b'));
  });

  it('finds pack.yaml at the root or in a single top folder', () => {
    write('one/top/pack.yaml', 'ref: a\n');
    expect(findPackRoot(path.join(root, 'one'))).toBe(path.join(root, 'one/top'));
    write('two/a/pack.yaml', '');
    write('two/b/pack.yaml', '');
    expect(findPackRoot(path.join(root, 'two'))).toBeUndefined();
    write('three/pack.yaml', '');
    expect(findPackRoot(path.join(root, 'three'))).toBe(path.join(root, 'three'));
  });
});

describe('installed pack files', () => {
  it('switch versions atomically through a link, and can switch back', () => {
    const packsDir = path.join(root, 'packs');
    const v1 = versionDir(packsDir, 'demo', '1.0.0', 'sha256:aaaaaaaaaaaaaaaa');
    const v2 = versionDir(packsDir, 'demo', '2.0.0', 'sha256:bbbbbbbbbbbbbbbb');
    expect(path.basename(v1)).toBe(versionDirName('1.0.0', 'sha256:aaaaaaaaaaaaaaaa'));
    for (const [d, text] of [
      [v1, 'one'],
      [v2, 'two'],
    ] as const) {
      fs.mkdirSync(d, { recursive: true });
      fs.writeFileSync(path.join(d, 'file'), text);
    }
    const undoFirst = activate(packsDir, 'demo', v1);
    expect(fs.readFileSync(path.join(packsDir, 'demo/file'), 'utf8')).toBe('one');
    expect(fs.readlinkSync(path.join(packsDir, 'demo'))).not.toMatch(/^\//); // relative: the folder can move
    const undo = activate(packsDir, 'demo', v2);
    expect(fs.readFileSync(path.join(packsDir, 'demo/file'), 'utf8')).toBe('two');
    expect(activeDir(packsDir, 'demo')).toBe(fs.realpathSync(v2));
    undo();
    expect(fs.readFileSync(path.join(packsDir, 'demo/file'), 'utf8')).toBe('one');
    undoFirst();
    expect(activeDir(packsDir, 'demo')).toBeUndefined();
  });

  it('keeps a plain directory found in the way as a version', () => {
    const packsDir = path.join(root, 'packs');
    fs.mkdirSync(path.join(packsDir, 'demo'), { recursive: true });
    fs.writeFileSync(path.join(packsDir, 'demo/old'), 'x');
    const v = versionDir(packsDir, 'demo', '1.0.0', 'sha256:cccccccccccc');
    fs.mkdirSync(v, { recursive: true });
    const undo = activate(packsDir, 'demo', v);
    expect(fs.lstatSync(path.join(packsDir, 'demo')).isSymbolicLink()).toBe(true);
    undo();
    expect(fs.readFileSync(path.join(packsDir, 'demo/old'), 'utf8')).toBe('x');
  });

  it('prunes old versions and removes everything on uninstall', () => {
    const packsDir = path.join(root, 'packs');
    const dirs = ['1', '2', '3'].map((v) =>
      versionDir(packsDir, 'demo', `${v}.0.0`, `sha256:${v.repeat(12)}`),
    );
    for (const d of dirs) fs.mkdirSync(d, { recursive: true });
    activate(packsDir, 'demo', dirs[2]!);
    pruneVersions(packsDir, 'demo', [dirs[2], dirs[1]]);
    expect(dirs.map((d) => fs.existsSync(d))).toEqual([false, true, true]);
    removeInstalled(packsDir, 'demo');
    expect(fs.existsSync(path.join(packsDir, 'demo'))).toBe(false);
    expect(fs.existsSync(path.join(packsDir, '.versions/demo'))).toBe(false);
  });

  it('clears work directories that a crash left behind, not the ones in use', () => {
    const packsDir = path.join(root, 'packs');
    const old = makeStaging(packsDir);
    const current = makeStaging(packsDir);
    const hourAgo = new Date(Date.now() - 2 * 3_600_000);
    fs.utimesSync(old, hourAgo, hourAgo);
    cleanStaging(packsDir);
    expect([fs.existsSync(old), fs.existsSync(current)]).toEqual([false, true]);
  });
});
