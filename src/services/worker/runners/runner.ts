/**
 * The runner library: what a worker calls to run one execution of an action. `runAction` picks the
 * runner named by the action and returns an outcome; it never throws because an action failed
 * (a failing command, a refused path, an HTTP error are all outcomes, not exceptions).
 *
 * The contract every process runner shares (see docs/runners.md):
 *  - parameters reach the process as one JSON document on stdin (secret ones only there);
 *  - non-secret parameters may also be exported as ATTUNE_PARAM_<NAME> when the action opts in;
 *  - stdout that is a JSON object or array becomes the structured result;
 *  - the process runs in its own process group, which a timeout or a cancel kills (TERM, then KILL).
 */
import type { RunnerRef } from '../../../domain/runners.ts';
import { runEcho, runNoop, runSleep } from './builtin.ts';
import { type ResolvedRunnerConfig, type RunnerConfig, resolveRunnerConfig } from './config.ts';
import { runHttpRequest } from './http.ts';
import { failure } from './outcome.ts';
import { runScript } from './script.ts';
import { runShellCommand } from './shell.ts';

export type { HttpRunnerConfig, ResolvedRunnerConfig, RunnerConfig } from './config.ts';
export { DEFAULT_RUNNER_CONFIG, resolveRunnerConfig } from './config.ts';

export type OutputStream = 'stdout' | 'stderr';

export interface RunRequest {
  executionId: number;
  actionRef: string;
  runner: RunnerRef;
  /** Script path relative to `<packDir>/actions`, or '' for inline runners. */
  entryPoint: string;
  /** Absolute directory of the pack's files (null for actions without files). */
  packDir: string | null;
  /** Parameter values, secrets already decrypted. */
  parameters: Record<string, unknown>;
  /** Names of the parameters that are secret: never in argv, env or logs. */
  secretParameters: string[];
  /** Non-secret parameters also exported as ATTUNE_PARAM_<NAME> (opt-in). */
  envParameters?: string[] | 'all-non-secret';
  timeoutSeconds: number;
  /** The action's metadata (runner options). */
  meta: Record<string, unknown>;
  /** Largest output captured per stream, in bytes. */
  limits: { maxOutputBytes: number };
  /** Aborting it cancels the execution. */
  signal: AbortSignal;
  /** Live output, in arrival order, capped like the captured output. */
  onOutput(stream: OutputStream, chunk: string): void;
}

/** What kind of failure ended an execution (stable values, for policies and the UI). */
export type RunErrorType =
  | 'invalid_parameters'
  | 'invalid_entry_point'
  | 'spawn_error'
  | 'exit_code'
  | 'signal'
  | 'timeout'
  | 'canceled'
  | 'host_denied'
  | 'http_status'
  | 'http_error'
  | 'tls_error'
  | 'too_many_redirects'
  | 'unsupported_runner'
  | 'internal_error';

export interface RunError {
  message: string;
  type: RunErrorType;
  exit_code?: number;
  signal?: string;
}

export type RunStatus = 'succeeded' | 'failed' | 'timeout' | 'canceled';

export interface RunOutcome {
  status: RunStatus;
  result: unknown;
  error?: RunError;
  exitCode?: number | null;
  truncated: { stdout: boolean; stderr: boolean };
  durationMs: number;
}

/** Runs one execution. `config` is the worker's runner configuration (defaults apply). */
export async function runAction(
  req: RunRequest,
  config: RunnerConfig | ResolvedRunnerConfig = {},
): Promise<RunOutcome> {
  const started = performance.now();
  const cfg = resolveRunnerConfig(config);
  try {
    if (req.signal.aborted) {
      return failure(started, 'canceled', { type: 'canceled', message: 'canceled before it started' });
    }
    switch (req.runner) {
      case 'noop':
        return runNoop(req, started);
      case 'echo':
        return runEcho(req, started);
      case 'sleep':
        return await runSleep(req, started);
      case 'local-shell-cmd':
        return await runShellCommand(req, cfg, started);
      case 'local-shell-script':
      case 'python-script':
      case 'node-script':
        return await runScript(req, cfg, started);
      case 'http-request':
        return await runHttpRequest(req, cfg, started);
      case 'workflow':
      case 'inquiry':
        return failure(started, 'failed', {
          type: 'unsupported_runner',
          message: `runner '${req.runner}' is carried out by the scheduler, not by a worker`,
        });
      default: {
        const unknown: string = req.runner;
        return failure(started, 'failed', {
          type: 'unsupported_runner',
          message: `unknown runner '${unknown}'`,
        });
      }
    }
  } catch (e) {
    return failure(started, 'failed', {
      type: 'internal_error',
      message: `runner '${req.runner}' crashed: ${(e as Error)?.message ?? String(e)}`,
    });
  }
}
