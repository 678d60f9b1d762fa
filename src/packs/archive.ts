/**
 * Safe extraction of an uploaded pack archive (.tar.gz or .tar). Nothing from the archive decides
 * where a byte is written: every entry is checked first — no absolute paths, no `..`, no devices,
 * links only to files inside the archive (materialised as copies) — and the sizes are bounded
 * (per entry, in total, in number of entries, and the decompressed size, against gzip bombs).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import type { Problem } from '../domain/errors.ts';
import { DEFAULT_LIMITS, isInside, PackTooLargeError, type TreeLimits } from './tree.ts';

/** The upload is not a readable archive. */
export class BadArchiveError extends Error {}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

interface PendingLink {
  path: string;
  /** Target, relative to the archive root (normalised). */
  target: string;
  kind: 'symbolic' | 'hard';
}

/** Why an entry's path is unsafe, or undefined when it is fine. */
export function unsafePath(p: string): string | undefined {
  if (p.includes('\0')) return 'contains a NUL character';
  if (p.includes('\\')) return 'contains a backslash';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is an absolute path';
  if (p.split('/').some((s) => s === '..')) return "contains a '..' segment";
  return undefined;
}

/** `./a//b/` → `a/b`; '' for the root. */
const clean = (p: string): string =>
  p
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');

/**
 * Extracts `data` into `dest` (created). Returns the problems of unsafe entries (nothing is written
 * when there is one); throws BadArchiveError for unreadable input and PackTooLargeError past a limit.
 */
export async function extractArchive(
  data: Buffer,
  dest: string,
  limits: TreeLimits = DEFAULT_LIMITS,
): Promise<{ problems: Problem[] }> {
  let tarBytes: Buffer = data;
  if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) {
    // headers and padding add at most ~1 KiB per entry on top of the contents
    const maxOut = limits.maxTotalBytes + limits.maxFiles * 1536 + 1024 * 1024;
    try {
      tarBytes = zlib.gunzipSync(data, { maxOutputLength: maxOut });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError)
        throw new PackTooLargeError(`the archive expands to more than ${maxOut} bytes`);
      throw new BadArchiveError(`not a valid gzip stream: ${err.message}`);
    }
  }
  if (tarBytes.length < 512 || tarBytes.subarray(257, 262).toString('latin1') !== 'ustar')
    throw new BadArchiveError('not a tar archive (expected a .tar.gz or .tar file)');

  const problems: Problem[] = [];
  const files = new Map<string, { data: Buffer; mode: number }>();
  const dirs = new Set<string>();
  const links: PendingLink[] = [];
  let total = 0;
  let count = 0;
  let tooLarge: PackTooLargeError | undefined;
  const warnings: string[] = [];

  const parser = new Parser({ strict: false });
  parser.on('warn', (_code: string, message: string | Error) => {
    warnings.push(typeof message === 'string' ? message : message.message);
  });
  parser.on('entry', (entry: ReadEntry) => {
    const raw = entry.path;
    const bad = unsafePath(raw);
    const p = clean(raw);
    const reject = (message: string) => {
      problems.push({ file: raw, path: '/', message });
      entry.resume();
    };
    if (tooLarge) return entry.resume();
    if (bad) return reject(`unsafe entry: the path ${bad}`);
    if (!p) return entry.resume();
    count++;
    if (count > limits.maxFiles) {
      tooLarge = new PackTooLargeError(`the archive holds more than ${limits.maxFiles} entries`);
      return entry.resume();
    }
    const type = entry.type;
    if (type === 'Directory') {
      dirs.add(p);
      return entry.resume();
    }
    if (type === 'SymbolicLink' || type === 'Link') {
      const lp = entry.linkpath ?? '';
      const kind = type === 'SymbolicLink' ? 'symbolic' : 'hard';
      if (!lp || lp.includes('\0') || lp.startsWith('/') || /^[A-Za-z]:/.test(lp) || lp.includes('\\'))
        return reject(`unsafe entry: ${kind} link to '${lp}' points outside the pack`);
      // a symbolic link is relative to its directory; a hard link to the archive root
      const joined =
        kind === 'symbolic'
          ? path.posix.normalize(path.posix.join(path.posix.dirname(p), lp))
          : path.posix.normalize(lp);
      if (joined === '..' || joined.startsWith('../') || joined.startsWith('/'))
        return reject(`unsafe entry: ${kind} link to '${lp}' points outside the pack`);
      links.push({ path: p, target: clean(joined), kind });
      return entry.resume();
    }
    if (!FILE_TYPES.has(type))
      return reject(`unsupported entry type '${type}' (only files, directories and links inside the pack)`);
    if (entry.size > limits.maxFileBytes) {
      tooLarge = new PackTooLargeError(`${p} is larger than ${limits.maxFileBytes} bytes`);
      return entry.resume();
    }
    total += entry.size;
    if (total > limits.maxTotalBytes) {
      tooLarge = new PackTooLargeError(
        `the archive's files add up to more than ${limits.maxTotalBytes} bytes`,
      );
      return entry.resume();
    }
    const chunks: Buffer[] = [];
    entry.on('data', (c: Buffer) => chunks.push(c));
    entry.on('end', () => {
      files.set(p, { data: Buffer.concat(chunks), mode: (entry.mode ?? 0o644) & 0o111 ? 0o755 : 0o644 });
    });
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('error', reject);
    parser.on('close', () => resolve());
    parser.end(tarBytes);
  });
  if (tooLarge) throw tooLarge;
  if (!files.size && !dirs.size && !links.length && !problems.length)
    throw new BadArchiveError(`the archive holds no files${warnings.length ? ` (${warnings[0]})` : ''}`);
  for (const w of warnings)
    if (/truncated|checksum|invalid/i.test(w)) throw new BadArchiveError(`damaged archive: ${w}`);

  // links become copies of the files they name (following chains of links, a few hops deep)
  const linkOf = new Map(links.map((l) => [l.path, l]));
  for (const l of links) {
    let target = l.target;
    for (let hops = 0; hops < 8 && !files.has(target) && linkOf.has(target); hops++)
      target = linkOf.get(target)!.target;
    const f = files.get(target);
    if (!f) {
      problems.push({
        file: l.path,
        path: '/',
        message: `${l.kind} link to '${l.target}' does not name a file of the archive`,
      });
      continue;
    }
    total += f.data.length;
    if (total > limits.maxTotalBytes)
      throw new PackTooLargeError(`the archive's files add up to more than ${limits.maxTotalBytes} bytes`);
    files.set(l.path, f);
  }
  // a path used both as a file and as a directory
  for (const d of dirs)
    if (files.has(d))
      problems.push({ file: d, path: '/', message: `'${d}' is both a file and a directory in the archive` });
  for (const p of files.keys()) {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (files.has(parent))
        problems.push({
          file: p,
          path: '/',
          message: `'${parent}' is both a file and a directory in the archive`,
        });
    }
  }
  if (problems.length) return { problems };

  fs.mkdirSync(dest, { recursive: true });
  const root = path.resolve(dest);
  for (const d of [...dirs].sort()) {
    const abs = path.join(root, ...d.split('/'));
    if (!isInside(root, abs)) throw new Error(`refusing to write outside ${root}`);
    fs.mkdirSync(abs, { recursive: true });
  }
  for (const [p, f] of files) {
    const abs = path.join(root, ...p.split('/'));
    if (!isInside(root, abs)) throw new Error(`refusing to write outside ${root}`);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, f.data, { mode: f.mode, flag: 'wx' });
  }
  return { problems };
}
