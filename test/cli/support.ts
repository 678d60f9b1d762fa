/**
 * Runs the real `attune` command as a child process (`node --import tsx src/cli/main.ts …`) with a
 * clean environment: its own HOME and XDG_CONFIG_HOME, no colour forced, nothing inherited that
 * could change its behaviour.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = path.join(ROOT, 'src/cli/main.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  /** Written to the command's standard input (closed afterwards). */
  input?: string;
  cwd?: string;
  timeoutMs?: number;
}

/** A fresh home folder for one test: the configuration lives in `<home>/.config/attune`. */
export class CliHome {
  readonly dir: string;
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-cli-'));
  }
  get configDir(): string {
    return path.join(this.dir, '.config', 'attune');
  }
  get configFile(): string {
    return path.join(this.configDir, 'config.yaml');
  }
  env(): Record<string, string> {
    return { HOME: this.dir, XDG_CONFIG_HOME: path.join(this.dir, '.config') };
  }
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface RunningCli {
  child: ChildProcessWithoutNullStreams;
  /** What it printed so far. */
  output(): { stdout: string; stderr: string };
  done: Promise<CliResult>;
}

export function runCli(home: CliHome, args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return spawnCli(home, args, opts).done;
}

/** Starts the command and hands back the process (to signal it) and its result. */
export function spawnCli(home: CliHome, args: string[], opts: CliOptions = {}): RunningCli {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TMPDIR: os.tmpdir(),
    ...home.env(),
  };
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: opts.cwd ?? ROOT,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`attune ${args.join(' ')} did not finish in time\nstdout: ${stdout}\nstderr: ${stderr}`),
      );
    }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
  return { child, output: () => ({ stdout, stderr }), done };
}

/** Waits until `check` holds (polling), or fails after `ms`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined> | T | undefined,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
