/** Shared helpers of the runner tests: building requests, inspecting live processes. */
import fs from 'node:fs';
import type { OutputStream, RunRequest } from '../../src/services/worker/runners/runner.ts';

export interface Recorded {
  req: RunRequest;
  /** Every onOutput call, in order. */
  events: { stream: OutputStream; chunk: string; at: number }[];
  text(stream: OutputStream): string;
  /** Resolves when the combined output of `stream` contains `needle`. */
  waitFor(stream: OutputStream, needle: string | RegExp, timeoutMs?: number): Promise<string>;
  controller: AbortController;
}

/** A run request with sensible defaults and an output recorder. */
export function makeRequest(over: Partial<RunRequest> & Pick<RunRequest, 'runner'>): Recorded {
  const controller = new AbortController();
  const events: Recorded['events'] = [];
  const waiters: (() => void)[] = [];
  const t0 = performance.now();
  const text = (s: OutputStream) =>
    events
      .filter((e) => e.stream === s)
      .map((e) => e.chunk)
      .join('');
  const req: RunRequest = {
    executionId: 42,
    actionRef: 'test.action',
    entryPoint: '',
    packDir: null,
    parameters: {},
    secretParameters: [],
    timeoutSeconds: 30,
    meta: {},
    limits: { maxOutputBytes: 10 * 1024 * 1024 },
    signal: controller.signal,
    onOutput(stream, chunk) {
      events.push({ stream, chunk, at: performance.now() - t0 });
      for (const w of waiters.splice(0)) w();
    },
    ...over,
  };
  return {
    req,
    events,
    text,
    controller,
    waitFor(stream, needle, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no ${String(needle)} on ${stream} within ${timeoutMs} ms`)),
          timeoutMs,
        );
        const check = () => {
          const t = text(stream);
          if (typeof needle === 'string' ? t.includes(needle) : needle.test(t)) {
            clearTimeout(timer);
            resolve(t);
          } else waiters.push(check);
        };
        check();
      });
    },
  };
}

interface ProcInfo {
  pid: number;
  state: string;
  pgrp: number;
}

function stat(pid: number): ProcInfo | undefined {
  let s: string;
  try {
    s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { pid, state: f[0]!, pgrp: Number(f[2]) };
}

/** Whether a process exists and is not a zombie. */
export const isAlive = (pid: number): boolean => {
  const s = stat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
};

/** Live (non-zombie) processes of a process group. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const s = stat(Number(e));
    if (s && s.pgrp === pgid && s.state !== 'Z' && s.state !== 'X') out.push(s.pid);
  }
  return out;
}

/** argv and environment of a running process, as text (NULs turned into spaces / newlines). */
export function procView(pid: number): { cmdline: string; environ: string } {
  return {
    cmdline: fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '),
    environ: fs.readFileSync(`/proc/${pid}/environ`, 'utf8').replaceAll('\0', '\n'),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds (polling), or fails after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
