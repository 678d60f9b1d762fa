/**
 * The worker's runner configuration: how processes are started and stopped, what environment they
 * get, and which hosts the HTTP runner may reach. Everything has a safe default.
 */
import os from 'node:os';

export interface HttpRunnerConfig {
  /** Host patterns no action may reach (globs, `*` = any characters), checked on every redirect hop
   * and against the addresses a name resolves to. Always wins over any allow list. */
  deniedHosts: string[];
  /** If non-empty, the only host patterns actions may reach. */
  allowedHosts: string[];
  /** Largest response body kept, in bytes (further capped by the request's maxOutputBytes). */
  maxResponseBytes: number;
}

export interface ResolvedRunnerConfig {
  /** Time between SIGTERM and SIGKILL when a process group is stopped. */
  killGraceMs: number;
  /**
   * Start processes through the process host (a small helper process) rather than by forking the
   * worker, which costs ~20 ms of blocked event loop in a worker holding an embedded database.
   */
  processHost: boolean;
  /** Exported to actions as ATTUNE_API_URL when set. */
  apiUrl: string | undefined;
  /** Where `local-shell-cmd` creates the scratch directory an execution runs in by default. */
  workDir: string;
  /** Shell for `local-shell-cmd`. */
  shell: string;
  /** Interpreter for shell scripts without a shebang. */
  bash: string;
  /** Interpreter for `python-script` (looked up on the child's PATH when not absolute). */
  python: string;
  /** Interpreter for `node-script`. */
  node: string;
  /** Names of worker environment variables passed to actions as they are. */
  passEnv: string[];
  /** Variables set for every action (operator configuration, e.g. proxies). */
  extraEnv: Record<string, string>;
  http: HttpRunnerConfig;
}

export type RunnerConfig = Partial<Omit<ResolvedRunnerConfig, 'http'>> & {
  http?: Partial<HttpRunnerConfig>;
};

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export const DEFAULT_RUNNER_CONFIG: ResolvedRunnerConfig = {
  killGraceMs: 5000,
  processHost: true,
  apiUrl: undefined,
  workDir: os.tmpdir(),
  shell: '/bin/sh',
  bash: '/bin/bash',
  python: 'python3',
  node: process.execPath,
  passEnv: ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR', 'USER', 'LOGNAME'],
  extraEnv: {},
  http: { deniedHosts: [], allowedHosts: [], maxResponseBytes: 10 * 1024 * 1024 },
};

const RESOLVED = new WeakSet<object>();

/** Fills in defaults. Idempotent and cheap for an already resolved configuration. */
export function resolveRunnerConfig(c: RunnerConfig | ResolvedRunnerConfig): ResolvedRunnerConfig {
  if (RESOLVED.has(c)) return c as ResolvedRunnerConfig;
  const d = DEFAULT_RUNNER_CONFIG;
  const r: ResolvedRunnerConfig = {
    killGraceMs: c.killGraceMs ?? d.killGraceMs,
    processHost: c.processHost ?? d.processHost,
    apiUrl: c.apiUrl ?? d.apiUrl,
    workDir: c.workDir ?? d.workDir,
    shell: c.shell ?? d.shell,
    bash: c.bash ?? d.bash,
    python: c.python ?? d.python,
    node: c.node ?? d.node,
    passEnv: c.passEnv ?? d.passEnv,
    extraEnv: c.extraEnv ?? d.extraEnv,
    http: {
      deniedHosts: c.http?.deniedHosts ?? d.http.deniedHosts,
      allowedHosts: c.http?.allowedHosts ?? d.http.allowedHosts,
      maxResponseBytes: c.http?.maxResponseBytes ?? d.http.maxResponseBytes,
    },
  };
  RESOLVED.add(r);
  return r;
}
