/**
 * The lock of an embedded data directory: one owner at a time, a dead owner's lock taken over, and
 * a released lock leaves nothing behind (no file, no exit listener).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DataDirLockedError, lockDataDir } from '../../src/store/data-dir-lock.ts';

const dirs: string[] = [];
const tempDir = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-lock-'));
  dirs.push(d);
  return d;
};
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('lockDataDir', () => {
  it('writes the owner pid and removes the file on release', () => {
    const dir = tempDir();
    const lock = lockDataDir(dir);
    expect(fs.readFileSync(path.join(dir, 'attune.lock'), 'utf8')).toBe(String(process.pid));
    lock.release();
    expect(fs.existsSync(path.join(dir, 'attune.lock'))).toBe(false);
    lock.release(); // twice is harmless
  });

  it('refuses a directory held by another live process', () => {
    const dir = tempDir();
    // pid 1 is always alive (and never this test).
    fs.writeFileSync(path.join(dir, 'attune.lock'), '1');
    expect(() => lockDataDir(dir)).toThrow(DataDirLockedError);
    expect(fs.readFileSync(path.join(dir, 'attune.lock'), 'utf8')).toBe('1');
  });

  it('takes over the lock of a process that is gone', () => {
    const dir = tempDir();
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    fs.writeFileSync(path.join(dir, 'attune.lock'), gone.stdout.toString());
    const lock = lockDataDir(dir);
    expect(fs.readFileSync(path.join(dir, 'attune.lock'), 'utf8')).toBe(String(process.pid));
    lock.release();
  });

  it('keeps no exit listener once released, however many stores a process opens', () => {
    const before = process.listenerCount('exit');
    for (let i = 0; i < 20; i++) lockDataDir(tempDir()).release();
    expect(process.listenerCount('exit')).toBe(before);
  });
});
