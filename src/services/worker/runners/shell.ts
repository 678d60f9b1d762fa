/**
 * local-shell-cmd: `/bin/sh -c <cmd>`. Parameters: `cmd` (required), `cwd` (absolute directory,
 * default a fresh scratch directory under the worker's work directory), `env` (extra non-secret
 * variables).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ResolvedRunnerConfig } from './config.ts';
import { buildEnv } from './env.ts';
import { failure, invalidParameters, isPlainObject } from './outcome.ts';
import { runProcess } from './process.ts';
import type { RunOutcome, RunRequest } from './runner.ts';
import { secretIn, secretValues } from './secrets.ts';

export async function runShellCommand(
  req: RunRequest,
  cfg: ResolvedRunnerConfig,
  started: number,
): Promise<RunOutcome> {
  const { cmd, cwd, env } = req.parameters;
  if (typeof cmd !== 'string' || cmd.trim() === '') {
    return invalidParameters(started, "parameter 'cmd' must be a non-empty string");
  }
  if (cmd.includes('\0')) return invalidParameters(started, "parameter 'cmd' contains a NUL character");
  for (const name of ['cmd', 'cwd', 'env']) {
    if (req.secretParameters.includes(name)) {
      return invalidParameters(
        started,
        `parameter '${name}' cannot be secret: it would be visible in the process list; pass secrets as other parameters and read them from stdin`,
      );
    }
  }
  const secrets = secretValues(req);
  const leaked = secretIn(cmd, secrets);
  if (leaked !== undefined) {
    return invalidParameters(
      started,
      `the value of secret parameter '${leaked}' appears in 'cmd', where any process could read it; read it from stdin instead, where all parameters arrive as JSON`,
    );
  }

  let dir: string | undefined;
  if (cwd !== undefined && cwd !== null && cwd !== '') {
    if (typeof cwd !== 'string' || !path.isAbsolute(cwd)) {
      return invalidParameters(started, "parameter 'cwd' must be an absolute directory path");
    }
    let isDir = false;
    try {
      isDir = fs.statSync(cwd).isDirectory();
    } catch {
      // reported below
    }
    if (!isDir) return invalidParameters(started, `parameter 'cwd': ${cwd} is not an existing directory`);
    dir = cwd;
  }

  if (env !== undefined && env !== null && !isPlainObject(env)) {
    return invalidParameters(started, "parameter 'env' must be an object of variable names to values");
  }
  const built = buildEnv(req, cfg, secrets, env ?? {});
  if (!built.ok) return invalidParameters(started, built.message);

  // Without a cwd, each execution gets a fresh scratch directory, removed when it ends.
  let scratch: string | undefined;
  if (dir === undefined) {
    try {
      scratch = await fs.promises.mkdtemp(path.join(cfg.workDir, `attune-${req.executionId}-`));
    } catch (e) {
      return failure(started, 'failed', {
        type: 'spawn_error',
        message: `cannot create a working directory in ${cfg.workDir}: ${(e as Error).message}`,
      });
    }
    dir = scratch;
  }
  try {
    return await runProcess(
      req,
      cfg,
      { command: cfg.shell, args: ['-c', cmd], cwd: dir, env: built.env, label: 'command' },
      started,
    );
  } finally {
    if (scratch) await removeScratch(scratch);
  }
}

/**
 * Removes a scratch directory. Most are left empty, and one `rmdir` is half the work of a
 * recursive removal (which looks at the directory before removing it); the rest get the latter.
 */
async function removeScratch(dir: string): Promise<void> {
  try {
    await fs.promises.rmdir(dir);
  } catch {
    await fs.promises.rm(dir, { recursive: true, force: true }).catch(() => {});
  }
}
