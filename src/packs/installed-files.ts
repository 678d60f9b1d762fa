/**
 * Where installed packs' files live, so that workers can run their scripts:
 *
 *   <packsDir>/<ref>                      symbolic link to the active version
 *   <packsDir>/.versions/<ref>/<dir>      one directory per installed version (`<version>-<checksum>`)
 *   <packsDir>/.staging/                  work space of installs in progress
 *
 * Switching versions replaces the link with one rename, so a reader sees the old files or the new
 * ones, never a mixture or nothing. The previous version is kept until the next switch, for
 * executions that started with it.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const VERSIONS = '.versions';
const STAGING = '.staging';

/** The directory name of a version: `<version>-<first 12 hex digits of the checksum>`. */
export const versionDirName = (version: string, checksum: string): string =>
  `${version.replace(/[^A-Za-z0-9._+-]/g, '_')}-${checksum.replace(/^sha256:/, '').slice(0, 12)}`;

export const versionDir = (packsDir: string, ref: string, version: string, checksum: string): string =>
  path.join(packsDir, VERSIONS, ref, versionDirName(version, checksum));

/** A fresh, empty work directory for one install. */
export function makeStaging(packsDir: string): string {
  const base = path.join(packsDir, STAGING);
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, 'install-'));
}

/** Removes work directories of installs that did not finish (a crash), older than `maxAgeMs`. */
export function cleanStaging(packsDir: string, maxAgeMs = 3_600_000): void {
  const base = path.join(packsDir, STAGING);
  let names: string[];
  try {
    names = fs.readdirSync(base);
  } catch {
    return;
  }
  const now = Date.now();
  for (const n of names) {
    const p = path.join(base, n);
    try {
      if (now - fs.statSync(p).mtimeMs > maxAgeMs) fs.rmSync(p, { recursive: true, force: true });
    } catch {
      // gone already
    }
  }
}

/** The directory the pack's link points at now (resolved), or undefined: what workers run from. */
export function activeDir(packsDir: string, ref: string): string | undefined {
  try {
    return fs.realpathSync(path.join(packsDir, ref));
  } catch {
    return undefined;
  }
}

/**
 * Points `<packsDir>/<ref>` at `dir` (atomically). Returns a function that puts the previous state
 * back (for a transaction that fails after the switch).
 */
export function activate(packsDir: string, ref: string, dir: string): () => void {
  const link = path.join(packsDir, ref);
  let previous: string | undefined;
  let movedAside: string | undefined;
  try {
    const st = fs.lstatSync(link);
    if (st.isSymbolicLink()) previous = fs.readlinkSync(link);
    else {
      // a plain directory left by hand or by an older layout: keep it as a version
      movedAside = path.join(packsDir, VERSIONS, ref, `previous-${Date.now()}`);
      fs.mkdirSync(path.dirname(movedAside), { recursive: true });
      fs.renameSync(link, movedAside);
      previous = path.relative(packsDir, movedAside);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const target = path.relative(packsDir, dir);
  const tmp = path.join(packsDir, `.${ref}.link-${randomBytes(4).toString('hex')}`);
  fs.symlinkSync(target, tmp, 'dir');
  fs.renameSync(tmp, link);
  return () => {
    if (previous === undefined) fs.rmSync(link, { force: true });
    else {
      const back = path.join(packsDir, `.${ref}.link-${randomBytes(4).toString('hex')}`);
      fs.symlinkSync(previous, back, 'dir');
      fs.renameSync(back, link);
    }
  };
}

/** Removes the versions of `ref` other than the ones in `keep` (absolute paths). */
export function pruneVersions(packsDir: string, ref: string, keep: readonly (string | undefined)[]): void {
  const dir = path.join(packsDir, VERSIONS, ref);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  const kept = new Set(keep.filter((k): k is string => !!k).map((k) => path.resolve(k)));
  for (const n of names) {
    const p = path.join(dir, n);
    if (!kept.has(path.resolve(p))) fs.rmSync(p, { recursive: true, force: true });
  }
}

/** Removes every file of the pack `ref`. */
export function removeInstalled(packsDir: string, ref: string): void {
  fs.rmSync(path.join(packsDir, ref), { recursive: true, force: true });
  fs.rmSync(path.join(packsDir, VERSIONS, ref), { recursive: true, force: true });
}
