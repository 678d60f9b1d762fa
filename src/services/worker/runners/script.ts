/**
 * Script runners: local-shell-script, python-script, node-script. The entry point is a file under
 * `<packDir>/actions`; it must stay inside the pack directory (no `..` out, no absolute path, no
 * symbolic link out). The script runs in its own directory with the same I/O contract as a command.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedRunnerConfig } from './config.ts';
import { buildEnv } from './env.ts';
import { failure, invalidParameters } from './outcome.ts';
import { runProcess } from './process.ts';
import type { RunOutcome, RunRequest } from './runner.ts';
import { secretValues } from './secrets.ts';

export type EntryPoint = { ok: true; file: string } | { ok: false; message: string };

const inside = (dir: string, p: string): boolean =>
  p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/** Resolves an entry point to a regular file inside the pack directory, or says why it cannot. */
export function resolveEntryPoint(packDir: string | null, entryPoint: string): EntryPoint {
  if (!packDir) return { ok: false, message: 'the action has no pack directory to run a script from' };
  if (!entryPoint) return { ok: false, message: 'the action has no entry point' };
  if (entryPoint.includes('\0')) return { ok: false, message: 'the entry point contains a NUL character' };
  if (path.isAbsolute(entryPoint)) {
    return {
      ok: false,
      message: `entry point '${entryPoint}' must be relative to the pack's actions directory`,
    };
  }
  const root = path.resolve(packDir);
  const lexical = path.resolve(root, 'actions', entryPoint);
  if (!inside(root, lexical)) {
    return { ok: false, message: `entry point '${entryPoint}' escapes the pack directory` };
  }
  let realRoot: string;
  try {
    realRoot = fs.realpathSync(root);
  } catch {
    return { ok: false, message: `the pack directory ${root} does not exist` };
  }
  let real: string;
  try {
    real = fs.realpathSync(lexical);
  } catch {
    return { ok: false, message: `entry point 'actions/${entryPoint}' does not exist in the pack` };
  }
  if (!inside(realRoot, real)) {
    return {
      ok: false,
      message: `entry point '${entryPoint}' leads out of the pack directory (symbolic link)`,
    };
  }
  if (!fs.statSync(real).isFile()) {
    return { ok: false, message: `entry point '${entryPoint}' is not a regular file` };
  }
  return { ok: true, file: real };
}

/** The interpreter line of a script (`#!/usr/bin/env python3` → ['/usr/bin/env', 'python3']). */
export function readShebang(file: string): string[] | undefined {
  const buf = Buffer.alloc(256);
  const fd = fs.openSync(file, 'r');
  let n: number;
  try {
    n = fs.readSync(fd, buf, 0, buf.length, 0);
  } finally {
    fs.closeSync(fd);
  }
  const head = buf.subarray(0, n).toString('utf8');
  if (!head.startsWith('#!')) return undefined;
  const line = head.slice(2).split('\n')[0]!.trim();
  if (line === '') return undefined;
  // Like the kernel: the interpreter, then at most one argument (the rest of the line).
  const sp = line.search(/[ \t]/);
  return sp < 0 ? [line] : [line.slice(0, sp), line.slice(sp + 1).trim()];
}

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

function commandFor(
  req: RunRequest,
  cfg: ResolvedRunnerConfig,
  file: string,
): { command: string; args: string[] } {
  switch (req.runner) {
    case 'python-script':
      return { command: cfg.python, args: ['-u', file] };
    case 'node-script':
      return { command: cfg.node, args: [file] };
    default: {
      const shebang = readShebang(file);
      if (!shebang) return { command: cfg.bash, args: [file] };
      if (isExecutable(file)) return { command: file, args: [] };
      // A script that lost its executable bit (e.g. in an archive): run its interpreter ourselves.
      return { command: shebang[0]!, args: [...shebang.slice(1), file] };
    }
  }
}

export async function runScript(
  req: RunRequest,
  cfg: ResolvedRunnerConfig,
  started: number,
): Promise<RunOutcome> {
  const entry = resolveEntryPoint(req.packDir, req.entryPoint);
  if (!entry.ok) return failure(started, 'failed', { type: 'invalid_entry_point', message: entry.message });
  const built = buildEnv(req, cfg, secretValues(req));
  if (!built.ok) return invalidParameters(started, built.message);
  let cmd: { command: string; args: string[] };
  try {
    cmd = commandFor(req, cfg, entry.file);
  } catch (e) {
    return failure(started, 'failed', {
      type: 'invalid_entry_point',
      message: `cannot read entry point '${req.entryPoint}': ${(e as Error).message}`,
    });
  }
  const { command, args } = cmd;
  const label = `script actions/${req.entryPoint}`;
  return runProcess(
    req,
    cfg,
    { command, args, cwd: path.dirname(entry.file), env: built.env, label },
    started,
  );
}
