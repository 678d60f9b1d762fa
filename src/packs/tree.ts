/**
 * A pack's files on disk: listing them, copying them safely into a directory of ours (regular files
 * and directories only; symbolic links are followed only when they stay inside the pack), size limits,
 * and the content checksum that tells one version of a pack from another.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Problem } from '../domain/errors.ts';

export interface TreeLimits {
  /** Most files a pack may hold. */
  maxFiles: number;
  /** Largest single file, in bytes. */
  maxFileBytes: number;
  /** Largest total of all files, in bytes. */
  maxTotalBytes: number;
}

export const DEFAULT_LIMITS: TreeLimits = {
  maxFiles: 10_000,
  maxFileBytes: 50 * 1024 * 1024,
  maxTotalBytes: 200 * 1024 * 1024,
};

/** Directory names never taken into a pack. */
const SKIPPED = new Set(['.git', '.hg', '.svn']);

/** A limit was exceeded: the pack is too large. */
export class PackTooLargeError extends Error {}

export interface TreeFile {
  /** Path relative to the pack root, with `/` separators. */
  path: string;
  size: number;
  /** Permission bits kept for the copy (0644 or 0755). */
  mode: number;
}

const keptMode = (mode: number): number => (mode & 0o111 ? 0o755 : 0o644);

/** True when `child` is `parent` or inside it (both absolute and normalised). */
export const isInside = (parent: string, child: string): boolean => {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
};

/**
 * Copies the pack at `src` into `dest` (created). Returns the files copied and the problems found
 * (links leaving the pack, devices, sockets); throws PackTooLargeError past a limit.
 */
export function copyTree(
  src: string,
  dest: string,
  limits: TreeLimits = DEFAULT_LIMITS,
): { files: TreeFile[]; problems: Problem[] } {
  const root = fs.realpathSync(src);
  const files: TreeFile[] = [];
  const problems: Problem[] = [];
  let total = 0;
  fs.mkdirSync(dest, { recursive: true });

  const copyFile = (from: string, rel: string, size: number, mode: number) => {
    if (files.length + 1 > limits.maxFiles)
      throw new PackTooLargeError(`the pack holds more than ${limits.maxFiles} files`);
    if (size > limits.maxFileBytes)
      throw new PackTooLargeError(`${rel} is larger than ${limits.maxFileBytes} bytes`);
    total += size;
    if (total > limits.maxTotalBytes)
      throw new PackTooLargeError(`the pack's files add up to more than ${limits.maxTotalBytes} bytes`);
    const to = path.join(dest, rel);
    fs.copyFileSync(from, to);
    fs.chmodSync(to, keptMode(mode));
    files.push({ path: rel, size, mode: keptMode(mode) });
  };

  const walk = (dir: string, relDir: string) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : 1));
    for (const ent of entries) {
      if (SKIPPED.has(ent.name)) continue;
      const abs = path.join(dir, ent.name);
      const rel = relDir ? `${relDir}/${ent.name}` : ent.name;
      const st = fs.lstatSync(abs);
      if (st.isDirectory()) {
        fs.mkdirSync(path.join(dest, rel), { recursive: true });
        walk(abs, rel);
      } else if (st.isFile()) copyFile(abs, rel, st.size, st.mode);
      else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = fs.realpathSync(abs);
        } catch {
          problems.push({ file: rel, path: '/', message: 'symbolic link points to nothing' });
          continue;
        }
        if (!isInside(root, target)) {
          problems.push({ file: rel, path: '/', message: 'symbolic link points outside the pack' });
          continue;
        }
        const tst = fs.statSync(target);
        if (tst.isFile()) copyFile(target, rel, tst.size, tst.mode);
        else
          problems.push({ file: rel, path: '/', message: 'symbolic links to directories are not supported' });
      } else
        problems.push({
          file: rel,
          path: '/',
          message: 'not a regular file or directory (device, socket or pipe)',
        });
    }
  };
  walk(root, '');
  return { files, problems };
}

/** The files of the pack at `root` (regular files only, sorted), without copying. */
export function listTree(root: string): TreeFile[] {
  const files: TreeFile[] = [];
  const walk = (dir: string, relDir: string) => {
    const entries = fs.readdirSync(dir, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : 1));
    for (const ent of entries) {
      if (SKIPPED.has(ent.name)) continue;
      const abs = path.join(dir, ent.name);
      const rel = relDir ? `${relDir}/${ent.name}` : ent.name;
      if (ent.isDirectory()) walk(abs, rel);
      else if (ent.isFile()) {
        const st = fs.statSync(abs);
        files.push({ path: rel, size: st.size, mode: keptMode(st.mode) });
      }
    }
  };
  walk(root, '');
  return files.sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}

/** sha256 over the sorted paths, modes and contents of `files` under `root`: `sha256:<hex>`. */
export function checksumTree(root: string, files: readonly TreeFile[]): string {
  const h = createHash('sha256');
  const sorted = [...files].sort((x, y) => (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
  for (const f of sorted) {
    h.update(`${f.path}\0${f.mode.toString(8)}\0${f.size}\0`);
    h.update(fs.readFileSync(path.join(root, f.path)));
  }
  return `sha256:${h.digest('hex')}`;
}

/**
 * Where the pack's root is inside an unpacked source: the directory itself when it holds pack.yaml,
 * else its only sub-directory when that one does. Undefined when neither.
 */
export function findPackRoot(dir: string): string | undefined {
  if (isFile(path.join(dir, 'pack.yaml'))) return dir;
  const subdirs = fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.') && e.isDirectory());
  const others = fs.readdirSync(dir).filter((n) => !n.startsWith('.') && !subdirs.some((d) => d.name === n));
  if (subdirs.length === 1 && others.length === 0) {
    const inner = path.join(dir, subdirs[0]!.name);
    if (isFile(path.join(inner, 'pack.yaml'))) return inner;
  }
  return undefined;
}

export const isFile = (p: string): boolean => {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
};

export const isDirectory = (p: string): boolean => {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
};
