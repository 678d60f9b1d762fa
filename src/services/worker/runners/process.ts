/**
 * Running an action as a child process: its own process group (and session), parameters as JSON on
 * stdin, output streamed live and captured up to a limit, and a group kill (SIGTERM, then SIGKILL
 * after a grace period) on timeout or cancel. When the main process exits, whatever it left running
 * in its group is stopped the same way: an action's processes do not outlive it.
 */
import fs from 'node:fs';
import type { ResolvedRunnerConfig } from './config.ts';
import { elapsedSince, failure } from './outcome.ts';
import { StreamCapture } from './output.ts';
import { type ChildLike, startProcess } from './process-host.ts';
import type { RunError, RunOutcome, RunRequest } from './runner.ts';
import { timeoutMsOf } from './timing.ts';

export interface ProcessSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** What the runner calls the program in messages (e.g. "command", "script foo.py"). */
  label: string;
}

/** How long stdout/stderr may stay open after the whole group is gone (held by an escaped process). */
const LINGER_MS = 500;
const LINGER_POLL_MS = 100;

/** Sends `signal` to every process of the group; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Whether any live (non-zombie) process remains in the group. */
export function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  // kill(0) also succeeds for zombies nobody has reaped yet; /proc tells them apart.
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    return true;
  }
  for (const e of entries) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

/** A result from stdout: a JSON object or array when stdout is one, else the raw streams. */
function resultOf(
  stdout: string,
  stderr: string,
  exitCode: number | null,
  stdoutTruncated: boolean,
): unknown {
  if (!stdoutTruncated) {
    const t = stdout.trim();
    const first = t.charCodeAt(0);
    if (first === 123 /* { */ || first === 91 /* [ */) {
      try {
        return JSON.parse(t);
      } catch {
        // not JSON after all
      }
    }
  }
  return { stdout, stderr, exit_code: exitCode };
}

function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  const line = (lines[lines.length - 1] ?? '').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

export function runProcess(
  req: RunRequest,
  cfg: ResolvedRunnerConfig,
  spec: ProcessSpec,
  started: number,
): Promise<RunOutcome> {
  const stdin = `${JSON.stringify(req.parameters)}\n`;
  let child: ChildLike;
  try {
    child = startProcess(
      { command: spec.command, args: spec.args, cwd: spec.cwd, env: spec.env, stdin },
      cfg.processHost,
    );
  } catch (e) {
    return Promise.resolve(
      failure(started, 'failed', {
        type: 'spawn_error',
        message: `cannot start ${spec.label}: ${(e as Error).message}`,
      }),
    );
  }
  const out = new StreamCapture('stdout', req.limits.maxOutputBytes, req.onOutput);
  const err = new StreamCapture('stderr', req.limits.maxOutputBytes, req.onOutput);

  return new Promise<RunOutcome>((resolve) => {
    // The process group: known once the process started (at once when started directly).
    let pgid = child.pid;
    let stopPending = false;
    let stopReason: 'timeout' | 'canceled' | undefined;
    let exited = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let openStreams = 2;
    let done = false;
    let timeoutTimer: NodeJS.Timeout | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let lingerTimer: NodeJS.Timeout | undefined;
    let groupGoneAt: number | undefined;

    const finish = (outcome: RunOutcome): void => {
      if (done) return;
      done = true;
      // killTimer stays armed: a straggler that ignores TERM still gets its KILL after the outcome.
      clearTimeout(timeoutTimer);
      clearInterval(lingerTimer);
      req.signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };

    /** SIGTERM to the group now, SIGKILL to whatever is left after the grace period. */
    const stopGroup = (): void => {
      if (pgid === undefined) {
        stopPending = true; // not started yet: stopped as soon as it is
        return;
      }
      if (killTimer !== undefined) return;
      const group = pgid;
      signalGroup(group, 'SIGTERM');
      killTimer = setTimeout(() => {
        if (groupAlive(group)) signalGroup(group, 'SIGKILL');
      }, cfg.killGraceMs);
    };

    const settle = (): void => {
      if (!exited || openStreams > 0) return;
      out.end();
      err.end();
      const stdout = out.text();
      const stderr = err.text();
      const truncated = { stdout: out.truncated, stderr: err.truncated };
      const base = { result: resultOf(stdout, stderr, exitCode, out.truncated), exitCode, truncated };
      let status: RunOutcome['status'];
      let error: RunError | undefined;
      if (stopReason === 'timeout') {
        status = 'timeout';
        error = {
          type: 'timeout',
          message: `${spec.label} timed out after ${req.timeoutSeconds} s; its process group was stopped`,
        };
      } else if (stopReason === 'canceled') {
        status = 'canceled';
        error = { type: 'canceled', message: `${spec.label} was canceled; its process group was stopped` };
      } else if (exitCode === 0) {
        status = 'succeeded';
      } else if (exitCode !== null) {
        status = 'failed';
        const why = lastLine(stderr);
        error = {
          type: 'exit_code',
          exit_code: exitCode,
          message: `${spec.label} exited with code ${exitCode}${why ? `: ${why}` : ''}`,
        };
      } else {
        status = 'failed';
        error = {
          type: 'signal',
          signal: exitSignal ?? 'unknown',
          message: `${spec.label} was killed by signal ${exitSignal ?? 'unknown'}`,
        };
      }
      finish({ status, ...base, ...(error ? { error } : {}), durationMs: elapsedSince(started) });
    };

    const onAbort = (): void => {
      if (exited) return;
      stopReason ??= 'canceled';
      stopGroup();
    };

    child.on('spawn', () => {
      pgid = child.pid;
      if (stopPending) stopGroup();
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      // Start-up failures (ENOENT, EACCES…): the process never ran and has no pid.
      if (child.pid !== undefined) return;
      finish(
        failure(started, 'failed', {
          type: 'spawn_error',
          message: `cannot start ${spec.label}: ${e.message}`,
        }),
      );
    });

    const onStreamClose = (): void => {
      openStreams -= 1;
      settle();
    };
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.stdout.on('close', onStreamClose);
    child.stderr.on('close', onStreamClose);

    child.on('exit', (code, signal) => {
      exited = true;
      exitCode = code;
      exitSignal = signal;
      const group = pgid ?? child.pid;
      if (group === undefined) return;
      const leftovers = groupAlive(group);
      // Something the process started is still around: stop the rest of the group.
      if (leftovers) stopGroup();
      if (openStreams > 0 || leftovers) {
        // Do not wait forever for pipes held by a process that left the group.
        lingerTimer = setInterval(() => {
          if (groupAlive(group)) {
            groupGoneAt = undefined;
            return;
          }
          groupGoneAt ??= Date.now();
          if (Date.now() - groupGoneAt >= LINGER_MS) {
            child.stdout.destroy();
            child.stderr.destroy();
          }
        }, LINGER_POLL_MS);
      }
      settle();
    });

    const timeoutMs = timeoutMsOf(req.timeoutSeconds);
    if (timeoutMs !== undefined) {
      timeoutTimer = setTimeout(() => {
        if (exited) return;
        stopReason ??= 'timeout';
        stopGroup();
      }, timeoutMs);
    }
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener('abort', onAbort, { once: true });
  });
}
