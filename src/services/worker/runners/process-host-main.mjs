// The process host: a small Node process that starts action processes for a worker.
//
// Starting a process forks the process that asks, and a fork costs in proportion to the memory it
// maps: ~17–25 ms of blocked event loop in a worker that holds an embedded database, ~1–2 ms here.
// So the worker asks this process to start them (see process-host.ts), over the IPC channel:
//
//   worker → host  {t: 'spawn', id, command, args, cwd, env, stdin}   start; `stdin` is written and closed
//                  {t: 'destroy', id}                                 stop reading its output
//   host → worker  {t: 'spawned', id, pid}   {t: 'error', id, message, code}
//                  {t: 'data', id, stream: 1|2, data}   {t: 'close', id, stream: 1|2}
//                  {t: 'exit', id, code, signal}
//
// Each action runs in its own session and process group (as when the worker starts it itself); the
// worker signals the groups directly. When the worker goes away (the channel closes), the groups
// still running get SIGTERM, then SIGKILL: an action's processes do not outlive their worker.
// Plain JavaScript with no dependencies, so that this process stays small.
import { spawn } from 'node:child_process';

/** @type {Map<number, import('node:child_process').ChildProcess>} */
const children = new Map();

/** @param {Record<string, unknown>} m */
function send(m) {
  if (process.connected) process.send(m);
}

/** @param {number} pid @param {NodeJS.Signals} signal */
function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

process.on('message', (/** @type {any} */ m) => {
  if (m.t === 'spawn') {
    const id = m.id;
    let child;
    try {
      child = spawn(m.command, m.args, {
        cwd: m.cwd,
        env: m.env,
        detached: true,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
    } catch (e) {
      send({ t: 'error', id, message: /** @type {Error} */ (e).message, code: /** @type {any} */ (e).code });
      return;
    }
    children.set(id, child);
    child.on('error', (e) => {
      send({ t: 'error', id, message: e.message, code: /** @type {any} */ (e).code });
      if (child.pid === undefined) children.delete(id);
    });
    if (child.pid === undefined) return; // the 'error' event follows
    send({ t: 'spawned', id, pid: child.pid });
    // Forgotten once it exited and both output streams closed (until then it may be told to stop reading).
    let open = 3;
    const done = () => {
      if (--open === 0) children.delete(id);
    };
    child.stdout.on('data', (data) => send({ t: 'data', id, stream: 1, data }));
    child.stderr.on('data', (data) => send({ t: 'data', id, stream: 2, data }));
    child.stdout.on('close', () => {
      send({ t: 'close', id, stream: 1 });
      done();
    });
    child.stderr.on('close', () => {
      send({ t: 'close', id, stream: 2 });
      done();
    });
    child.stdin.on('error', () => {});
    child.stdin.end(m.stdin);
    child.on('exit', (code, signal) => {
      send({ t: 'exit', id, code, signal });
      done();
    });
  } else if (m.t === 'destroy') {
    const child = children.get(m.id);
    child?.stdout?.destroy();
    child?.stderr?.destroy();
  }
});

process.on('disconnect', () => {
  const pids = [...children.values()].map((c) => c.pid).filter((p) => p !== undefined);
  for (const pid of pids) signalGroup(pid, 'SIGTERM');
  if (pids.length === 0) process.exit(0);
  setTimeout(() => {
    for (const pid of pids) signalGroup(pid, 'SIGKILL');
    process.exit(0);
  }, 2000).unref();
});
