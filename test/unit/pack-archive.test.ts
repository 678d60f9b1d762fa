import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import * as tar from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { BadArchiveError, extractArchive, unsafePath } from '../../src/packs/archive.ts';
import { loadPack } from '../../src/packs/loader.ts';
import { DEFAULT_LIMITS, findPackRoot, PackTooLargeError } from '../../src/packs/tree.ts';

const FIXTURES = path.resolve(import.meta.dirname, '../fixtures/packs');
const tmp: string[] = [];
afterAll(() => {
  for (const d of tmp) fs.rmSync(d, { recursive: true, force: true });
});
const tmpDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-tar-'));
  tmp.push(d);
  return d;
};

// ── raw ustar entries, so that the archives can hold what no well-behaved tool would write ──
interface Entry {
  name: string;
  type?: '0' | '1' | '2' | '3' | '5';
  body?: string | Buffer;
  link?: string;
  /** Size written in the header (defaults to the body's). */
  size?: number;
  mode?: number;
}
function header(e: Entry, size: number): Buffer {
  const h = Buffer.alloc(512);
  const put = (s: string, off: number, len: number) =>
    h.write(s, off, Math.min(len, Buffer.byteLength(s)), 'utf8');
  const oct = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  put(e.name, 0, 100);
  put(oct(e.mode ?? 0o644, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(size, 12), 124, 12);
  put(oct(1_700_000_000, 12), 136, 12);
  put('        ', 148, 8);
  put(e.type ?? '0', 156, 1);
  put(e.link ?? '', 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}
function tarball(entries: Entry[], gzip = true): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    parts.push(header(e, e.size ?? body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  const raw = Buffer.concat(parts);
  return gzip ? zlib.gzipSync(raw) : raw;
}
const PACK = { name: 'pack.yaml', body: 'ref: up\nversion: 1.0.0\n' };

describe('unsafe paths', () => {
  it.each([
    ['../x', "contains a '..' segment"],
    ['a/../../x', "contains a '..' segment"],
    ['/etc/passwd', 'is an absolute path'],
    ['C:/windows', 'is an absolute path'],
    ['a\\..\\b', 'contains a backslash'],
    ['a\0b', 'contains a NUL character'],
  ])('%j %s', (p, why) => expect(unsafePath(p)).toBe(why));
  it('accepts ordinary relative paths', () => {
    expect(unsafePath('./actions/a.sh')).toBeUndefined();
    expect(unsafePath('top/actions/lib/x.py')).toBeUndefined();
  });
});

describe('extracting a pack archive', () => {
  it('extracts files, directories and links inside the pack (links become copies)', async () => {
    const dest = tmpDir();
    const { problems } = await extractArchive(
      tarball([
        { name: 'top/', type: '5' },
        { name: 'top/pack.yaml', body: PACK.body },
        { name: 'top/actions/', type: '5' },
        { name: 'top/actions/run.sh', body: 'echo hi\n', mode: 0o755 },
        { name: 'top/actions/alias.sh', type: '2', link: 'run.sh' },
        { name: 'top/actions/hard.sh', type: '1', link: 'top/actions/run.sh' },
      ]),
      path.join(dest, 'x'),
    );
    expect(problems).toEqual([]);
    const root = findPackRoot(path.join(dest, 'x'))!;
    expect(root).toBe(path.join(dest, 'x', 'top'));
    expect(fs.readFileSync(path.join(root, 'actions/alias.sh'), 'utf8')).toBe('echo hi\n');
    expect(fs.lstatSync(path.join(root, 'actions/alias.sh')).isSymbolicLink()).toBe(false);
    expect(fs.readFileSync(path.join(root, 'actions/hard.sh'), 'utf8')).toBe('echo hi\n');
    expect(fs.statSync(path.join(root, 'actions/run.sh')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(root, 'pack.yaml')).mode & 0o777).toBe(0o644);
  });

  it('reads archives written by the tar tool (a real pack, in a single top folder)', async () => {
    const data = await new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      tar
        .c({ gzip: true, cwd: FIXTURES, portable: true }, ['basic'])
        .on('data', (c: Buffer) => chunks.push(c))
        .on('end', () => resolve(Buffer.concat(chunks)))
        .on('error', reject);
    });
    const dest = tmpDir();
    expect((await extractArchive(data, dest)).problems).toEqual([]);
    const r = loadPack(findPackRoot(dest)!);
    expect(r.problems).toEqual([]);
    expect(r.pack!.meta.ref).toBe('fixture_basic');
  });

  it('refuses every unsafe entry, names them all, and writes nothing', async () => {
    const dest = path.join(tmpDir(), 'out');
    const { problems } = await extractArchive(
      tarball([
        PACK,
        { name: '../escape.sh', body: 'x' },
        { name: 'a/../../escape2.sh', body: 'x' },
        { name: '/etc/cron.d/evil', body: 'x' },
        { name: 'link-out', type: '2', link: '../../etc/passwd' },
        { name: 'actions/link-abs', type: '2', link: '/etc/passwd' },
        { name: 'hard-out', type: '1', link: '../outside' },
        { name: 'dev', type: '3' },
        { name: 'dangling', type: '2', link: 'nothing-here' },
      ]),
      dest,
    );
    expect(problems.map((p) => [p.file, p.message])).toEqual([
      ['../escape.sh', "unsafe entry: the path contains a '..' segment"],
      ['a/../../escape2.sh', "unsafe entry: the path contains a '..' segment"],
      ['/etc/cron.d/evil', 'unsafe entry: the path is an absolute path'],
      ['link-out', "unsafe entry: symbolic link to '../../etc/passwd' points outside the pack"],
      ['actions/link-abs', "unsafe entry: symbolic link to '/etc/passwd' points outside the pack"],
      ['hard-out', "unsafe entry: hard link to '../outside' points outside the pack"],
      ['dev', "unsupported entry type 'CharacterDevice' (only files, directories and links inside the pack)"],
      ['dangling', "symbolic link to 'nothing-here' does not name a file of the archive"],
    ]);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.existsSync(path.join(path.dirname(dest), 'escape.sh'))).toBe(false);
  });

  it('stops at the size limits: per entry, in total, in number of entries', async () => {
    const small = { ...DEFAULT_LIMITS, maxFileBytes: 1000, maxTotalBytes: 3000, maxFiles: 4 };
    const big = 'x'.repeat(1500);
    await expect(
      extractArchive(tarball([PACK, { name: 'big', body: big }]), tmpDir(), small),
    ).rejects.toThrow(new PackTooLargeError('big is larger than 1000 bytes'));
    const files = [PACK, ...[1, 2, 3, 4].map((i) => ({ name: `f${i}`, body: 'y'.repeat(900) }))];
    await expect(
      extractArchive(tarball(files.slice(0, 4)), tmpDir(), { ...small, maxTotalBytes: 2000 }),
    ).rejects.toThrow(/add up to more than 2000 bytes/);
    await expect(
      extractArchive(tarball(files), tmpDir(), { ...small, maxTotalBytes: 100_000 }),
    ).rejects.toThrow(/more than 4 entries/);
  });

  it('does not trust a header that lies about its size', async () => {
    const lying = tarball([PACK, { name: 'huge', body: 'tiny', size: 5 * 1024 * 1024 * 1024 }]);
    await expect(extractArchive(lying, tmpDir())).rejects.toThrow(PackTooLargeError);
  });

  it('stops a gzip bomb while decompressing', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024));
    expect(bomb.length).toBeLessThan(200 * 1024);
    await expect(
      extractArchive(bomb, tmpDir(), {
        maxFiles: 10,
        maxFileBytes: 1024 * 1024,
        maxTotalBytes: 4 * 1024 * 1024,
      }),
    ).rejects.toThrow(/the archive expands to more than/);
  });

  it('refuses what is not an archive', async () => {
    await expect(
      extractArchive(Buffer.from('just some text, not a tarball at all'), tmpDir()),
    ).rejects.toThrow(BadArchiveError);
    await expect(extractArchive(zlib.gzipSync(Buffer.from('x'.repeat(2000))), tmpDir())).rejects.toThrow(
      /not a tar archive/,
    );
    await expect(extractArchive(Buffer.from([0x1f, 0x8b, 1, 2, 3]), tmpDir())).rejects.toThrow(
      /not a valid gzip stream/,
    );
    const truncated = tarball([PACK, { name: 'f', body: 'z'.repeat(5000) }], false).subarray(0, 2048);
    await expect(extractArchive(truncated, tmpDir())).rejects.toThrow(BadArchiveError);
  });
});
