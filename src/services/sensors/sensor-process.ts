/**
 * One sensor process: how it is started (runner + entry point under the pack's `sensors/` folder,
 * a minimal environment, its configuration as JSON on stdin), how its output is cut into lines, and
 * how it is stopped (SIGTERM to its whole process group, SIGKILL after a grace period).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PATH, type ResolvedRunnerConfig } from '../worker/runners/config.ts';
import { groupAlive, signalGroup } from '../worker/runners/process.ts';
import { readShebang } from '../worker/runners/script.ts';

export interface SensorDefinition {
  ref: string;
  packRef: string;
  runner: string;
  entryPoint: string;
  triggerRefs: string[];
  config: Record<string, unknown>;
  pollIntervalSeconds: number | null;
}

export interface SpawnSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** How messages name the program (`sensors/watch.py`, `command`). */
  label: string;
}

export type SpecResult = { ok: true; spec: SpawnSpec } | { ok: false; message: string };

const inside = (dir: string, p: string): boolean =>
  p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/** A script entry point as a regular file inside `<packDir>/sensors`, or why it cannot be one. */
export function resolveSensorScript(
  packDir: string,
  entryPoint: string,
): { ok: true; file: string } | { ok: false; message: string } {
  if (!entryPoint) return { ok: false, message: 'the sensor has no entry point' };
  if (entryPoint.includes('\0')) return { ok: false, message: 'the entry point contains a NUL character' };
  if (path.isAbsolute(entryPoint))
    return {
      ok: false,
      message: `entry point '${entryPoint}' must be relative to the pack's sensors directory`,
    };
  const root = path.resolve(packDir);
  const lexical = path.resolve(root, 'sensors', entryPoint);
  if (!inside(root, lexical))
    return { ok: false, message: `entry point '${entryPoint}' escapes the pack directory` };
  let realRoot: string;
  let real: string;
  try {
    realRoot = fs.realpathSync(root);
  } catch {
    return { ok: false, message: `the pack directory ${root} does not exist` };
  }
  try {
    real = fs.realpathSync(lexical);
  } catch {
    return { ok: false, message: `entry point 'sensors/${entryPoint}' does not exist in the pack` };
  }
  if (!inside(realRoot, real))
    return {
      ok: false,
      message: `entry point '${entryPoint}' leads out of the pack directory (symbolic link)`,
    };
  if (!fs.statSync(real).isFile())
    return { ok: false, message: `entry point '${entryPoint}' is not a regular file` };
  return { ok: true, file: real };
}

const isExecutable = (file: string): boolean => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * The environment of a sensor: nothing of the platform's own environment except the names in
 * `passEnv` (never an ATTUNE_ variable: database URLs and keys live there), plus what identifies it.
 */
export function sensorEnv(
  def: SensorDefinition,
  packDir: string,
  cfg: ResolvedRunnerConfig,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of cfg.passEnv) {
    const v = process.env[name];
    if (v !== undefined && !name.startsWith('ATTUNE_')) env[name] = v;
  }
  env.PATH ??= DEFAULT_PATH;
  env.HOME ??= os.homedir();
  env.LANG ??= 'C.UTF-8';
  for (const [k, v] of Object.entries(cfg.extraEnv)) if (!k.startsWith('ATTUNE_')) env[k] = v;
  // Python buffers a pipe's output by default: sensors' events must leave at once.
  env.PYTHONUNBUFFERED = '1';
  env.ATTUNE_SENSOR_REF = def.ref;
  env.ATTUNE_PACK_DIR = packDir;
  if (cfg.apiUrl) env.ATTUNE_API_URL = cfg.apiUrl;
  env.ATTUNE_NODE = cfg.node;
  return env;
}

/** How to start `def` from `packDir`. */
export function spawnSpecOf(def: SensorDefinition, packDir: string, cfg: ResolvedRunnerConfig): SpecResult {
  const env = sensorEnv(def, packDir, cfg);
  if (def.runner === 'local-shell-cmd') {
    if (!def.entryPoint.trim())
      return { ok: false, message: "runner 'local-shell-cmd' needs the command as entry_point" };
    return {
      ok: true,
      spec: { command: cfg.shell, args: ['-c', def.entryPoint], cwd: packDir, env, label: 'command' },
    };
  }
  const entry = resolveSensorScript(packDir, def.entryPoint);
  if (!entry.ok) return entry;
  const label = `sensors/${def.entryPoint}`;
  const cwd = path.dirname(entry.file);
  switch (def.runner) {
    case 'python-script':
      return { ok: true, spec: { command: cfg.python, args: ['-u', entry.file], cwd, env, label } };
    case 'node-script':
      return { ok: true, spec: { command: cfg.node, args: [entry.file], cwd, env, label } };
    case 'local-shell-script': {
      let shebang: string[] | undefined;
      try {
        shebang = readShebang(entry.file);
      } catch (e) {
        return { ok: false, message: `cannot read ${label}: ${(e as Error).message}` };
      }
      if (!shebang) return { ok: true, spec: { command: cfg.bash, args: [entry.file], cwd, env, label } };
      if (isExecutable(entry.file))
        return { ok: true, spec: { command: entry.file, args: [], cwd, env, label } };
      return {
        ok: true,
        spec: { command: shebang[0]!, args: [...shebang.slice(1), entry.file], cwd, env, label },
      };
    }
    default:
      return {
        ok: false,
        message: `runner '${def.runner}' cannot run a sensor (use local-shell-script, local-shell-cmd, python-script or node-script)`,
      };
  }
}

/** Cuts a byte stream into lines; a line longer than `maxBytes` is cut there and marked. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private size = 0;
  private skipping = false;

  constructor(
    private readonly maxBytes: number,
    private readonly emit: (line: string, truncated: boolean) => void,
  ) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl < 0 ? chunk.length : nl;
      if (!this.skipping) {
        const piece = chunk.subarray(start, end);
        if (this.size + piece.length > this.maxBytes) {
          const room = this.maxBytes - this.size;
          this.parts.push(piece.subarray(0, room));
          this.flushLine(true);
          this.skipping = nl < 0;
        } else {
          this.parts.push(piece);
          this.size += piece.length;
          if (nl >= 0) this.flushLine(false);
        }
      } else if (nl >= 0) this.skipping = false;
      if (nl < 0) return;
      start = nl + 1;
    }
  }

  /** Emits what is left (a last line without a newline). */
  end(): void {
    if (this.size > 0 || this.parts.length > 0) this.flushLine(false);
  }

  private flushLine(truncated: boolean): void {
    let line = Buffer.concat(this.parts).toString('utf8');
    if (line.endsWith('\r')) line = line.slice(0, -1);
    this.parts = [];
    this.size = 0;
    if (line !== '' || truncated) this.emit(line, truncated);
  }
}

export interface SensorProcessHandlers {
  onStdoutLine(line: string, truncated: boolean): void;
  onStderrLine(line: string, truncated: boolean): void;
  /** The process is gone (and its output read); `error` when it could not be started at all. */
  onExit(code: number | null, signal: NodeJS.Signals | null, error?: string): void;
}

/** A running sensor process. */
export class SensorProcess {
  readonly child: ChildProcess;
  private exited = false;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly exitPromise: Promise<void>;

  constructor(
    spec: SpawnSpec,
    stdin: string,
    handlers: SensorProcessHandlers,
    private readonly killGraceMs: number,
    maxLineBytes: number,
  ) {
    let resolveExit!: () => void;
    this.exitPromise = new Promise((r) => {
      resolveExit = r;
    });
    const out = new LineSplitter(maxLineBytes, handlers.onStdoutLine);
    const err = new LineSplitter(maxLineBytes, handlers.onStderrLine);
    this.child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let open = 2;
    let code: number | null = null;
    let signal: NodeJS.Signals | null = null;
    let spawnError: string | undefined;
    const settle = () => {
      if (!this.exited || open > 0) return;
      out.end();
      err.end();
      if (this.child.pid !== undefined && groupAlive(this.child.pid)) signalGroup(this.child.pid, 'SIGKILL');
      clearTimeout(this.killTimer);
      handlers.onExit(code, signal, spawnError);
      resolveExit();
    };
    this.child.on('error', (e) => {
      if (this.child.pid !== undefined) return;
      spawnError = `cannot start ${spec.label}: ${e.message}`;
      this.exited = true;
      open = 0;
      settle();
    });
    this.child.stdout!.on('data', (b: Buffer) => out.push(b));
    this.child.stderr!.on('data', (b: Buffer) => err.push(b));
    const closed = () => {
      open--;
      settle();
    };
    this.child.stdout!.on('close', closed);
    this.child.stderr!.on('close', closed);
    this.child.stdin!.on('error', () => {});
    this.child.stdin!.end(stdin);
    this.child.on('exit', (c, s) => {
      code = c;
      signal = s;
      this.exited = true;
      const pgid = this.child.pid;
      // Whatever the sensor left behind in its group goes with it; pipes held by it are closed.
      if (pgid !== undefined && groupAlive(pgid)) {
        signalGroup(pgid, 'SIGTERM');
        setTimeout(
          () => {
            if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
            this.child.stdout?.destroy();
            this.child.stderr?.destroy();
          },
          Math.min(this.killGraceMs, 2000),
        ).unref();
      }
      settle();
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return !this.exited;
  }

  pauseOutput(): void {
    this.child.stdout?.pause();
  }

  resumeOutput(): void {
    this.child.stdout?.resume();
  }

  /** SIGTERM to the group, SIGKILL after the grace period; resolves when the process is gone. */
  async stop(): Promise<void> {
    const pgid = this.child.pid;
    if (!this.exited && pgid !== undefined && this.killTimer === undefined) {
      signalGroup(pgid, 'SIGTERM');
      this.killTimer = setTimeout(() => {
        if (groupAlive(pgid)) signalGroup(pgid, 'SIGKILL');
      }, this.killGraceMs);
    }
    await this.exitPromise;
  }

  /** Resolves when the process is gone. */
  wait(): Promise<void> {
    return this.exitPromise;
  }

  /** Synchronous last resort (process exit): kills the whole group at once. */
  killNow(): void {
    if (!this.exited && this.child.pid !== undefined) signalGroup(this.child.pid, 'SIGKILL');
  }
}
