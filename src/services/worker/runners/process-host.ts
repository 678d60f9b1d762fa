/**
 * Starting action processes, directly or through the process host.
 *
 * `fork()` copies the page tables of the process that calls it, so starting a process from a worker
 * that holds an embedded database (hundreds of MB mapped, tens of GB reserved by WebAssembly) blocks
 * its event loop for ~17–25 ms — a ceiling of ~50 processes a second, whatever the capacity. The
 * process host (`process-host-main.mjs`) is a small Node process, started once, that starts them
 * instead (~1–2 ms each) and relays their output and exit over its IPC channel. What the runners see
 * is the same either way (`ChildLike`): a pid, which is also the process group to signal, output
 * chunks, the exit, and the end of the output streams.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';

export interface SpawnSpec {
  command: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Written to the process's stdin, which is then closed. */
  stdin: string;
}

/** An output stream of a started process: 'data' (Buffer) and 'close' events; `destroy()` stops reading. */
export interface OutputLike {
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  destroy(): void;
}

/**
 * The part of a `ChildProcess` the runners use. Listeners are attached right after `startProcess`
 * returns, before anything happens; the pid is known from the 'spawn' event on (directly started:
 * at once).
 */
export interface ChildLike {
  /** Undefined until started, and when the process could not be started (an 'error' event says why). */
  readonly pid: number | undefined;
  readonly stdout: OutputLike;
  readonly stderr: OutputLike;
  on(event: 'spawn', listener: () => void): unknown;
  on(event: 'error', listener: (e: NodeJS.ErrnoException) => void): unknown;
  on(event: 'exit', listener: (code: number | null, signal: NodeJS.Signals | null) => void): unknown;
}

/** Starts a process in its own session and process group, directly. */
function spawnDirect(spec: SpawnSpec): ChildLike {
  const child: ChildProcess = spawn(spec.command, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // EPIPE when the process exits without reading its input: not an error of the action.
  child.stdin!.on('error', () => {});
  child.stdin!.end(spec.stdin);
  return child as ChildLike;
}

class HostedOutput extends EventEmitter implements OutputLike {
  closed = false;
  constructor(private readonly onDestroy: () => void) {
    super();
  }
  destroy(): void {
    this.onDestroy();
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  }
}

class HostedChild extends EventEmitter implements ChildLike {
  pid: number | undefined;
  readonly stdout: HostedOutput;
  readonly stderr: HostedOutput;
  exited = false;
  constructor(destroy: () => void) {
    super();
    this.stdout = new HostedOutput(destroy);
    this.stderr = new HostedOutput(destroy);
  }
}

type HostMessage =
  | { t: 'spawned'; id: number; pid: number }
  | { t: 'error'; id: number; message: string; code?: string }
  | { t: 'data'; id: number; stream: 1 | 2; data: Uint8Array }
  | { t: 'close'; id: number; stream: 1 | 2 }
  | { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null };

const HOST_SCRIPT = fileURLToPath(new URL('./process-host-main.mjs', import.meta.url));

/** The process host of this process: started on first use, started again if it dies. */
class ProcessHost {
  private proc: ChildProcess | undefined;
  private seq = 0;
  private readonly children = new Map<number, HostedChild>();

  spawn(spec: SpawnSpec): ChildLike {
    const proc = this.ensure();
    const id = ++this.seq;
    const child = new HostedChild(() => this.send(proc, { t: 'destroy', id }));
    this.children.set(id, child);
    if (this.children.size === 1) proc.channel?.ref();
    this.send(proc, { t: 'spawn', id, ...spec });
    return child;
  }

  private send(proc: ChildProcess, m: Record<string, unknown>): void {
    if (proc.connected) proc.send(m);
  }

  private ensure(): ChildProcess {
    if (this.proc?.connected) return this.proc;
    const proc = fork(HOST_SCRIPT, [], {
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.proc = proc;
    proc.on('message', (m: HostMessage) => this.onMessage(m));
    proc.on('error', () => {});
    proc.on('exit', () => this.lost(proc));
    // Idle, the host must not keep this process alive; `spawn` holds it while processes run.
    proc.unref();
    proc.channel?.unref();
    return proc;
  }

  private onMessage(m: HostMessage): void {
    const child = this.children.get(m.id);
    if (!child) return;
    switch (m.t) {
      case 'spawned':
        child.pid = m.pid;
        child.emit('spawn');
        break;
      case 'error': {
        const e = new Error(m.message) as NodeJS.ErrnoException;
        if (m.code) e.code = m.code;
        child.emit('error', e);
        if (child.pid === undefined) this.forget(m.id);
        break;
      }
      case 'data':
        (m.stream === 1 ? child.stdout : child.stderr).emit('data', Buffer.from(m.data));
        break;
      case 'close':
        (m.stream === 1 ? child.stdout : child.stderr).close();
        this.settleIfDone(m.id, child);
        break;
      case 'exit':
        child.exited = true;
        child.emit('exit', m.code, m.signal);
        this.settleIfDone(m.id, child);
        break;
    }
  }

  private settleIfDone(id: number, child: HostedChild): void {
    if (child.exited && child.stdout.closed && child.stderr.closed) this.forget(id);
  }

  private forget(id: number): void {
    this.children.delete(id);
    if (this.children.size === 0) this.proc?.channel?.unref();
  }

  /** The host died: its processes are stopped and reported killed; the next spawn starts a new host. */
  private lost(proc: ChildProcess): void {
    if (this.proc === proc) this.proc = undefined;
    for (const [id, child] of this.children) {
      if (child.pid === undefined) {
        const e = new Error('the process host exited before the process started') as NodeJS.ErrnoException;
        child.emit('error', e);
      } else {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
        if (!child.exited) {
          child.exited = true;
          child.emit('exit', null, 'SIGKILL');
        }
        child.stdout.close();
        child.stderr.close();
      }
      this.children.delete(id);
    }
  }
}

let host: ProcessHost | undefined;

/**
 * Starts a process (own session and process group, stdin written and closed): through the process
 * host when `viaHost`, else directly. A process that cannot be started gets an 'error' event (or,
 * started directly, may throw).
 */
export function startProcess(spec: SpawnSpec, viaHost: boolean): ChildLike {
  if (!viaHost) return spawnDirect(spec);
  host ??= new ProcessHost();
  return host.spawn(spec);
}
