/**
 * A client that posts single events at a fixed rate, in a worker thread of its own: the load
 * generator does not compete with the platform for its event loop (as an outside client would not).
 * Started by `postPaced`; the thread reports the client-side latencies of its requests when done.
 */
import http from 'node:http';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface PacedJob {
  url: string;
  token: string;
  trigger: string;
  /** Events per second. */
  rate: number;
  count: number;
}

export interface PacedReport {
  /** Client-side duration of each request, ms. */
  postMs: number[];
  /** Seconds from the first request to the last answer. */
  seconds: number;
  maxInflight: number;
  errors: string[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(job: PacedJob): Promise<PacedReport> {
  const postMs: number[] = [];
  const errors: string[] = [];
  const inflight = new Set<Promise<void>>();
  let maxInflight = 0;
  // node:http with keep-alive: a light client (fetch costs the client ~2 ms of CPU per request, taken
  // from the platform on a small machine).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const url = new URL(`${job.url}/api/v1/events`);
  const post = (body: string) =>
    new Promise<number>((resolve, reject) => {
      const r = http.request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: 'POST',
          headers: {
            authorization: `Bearer ${job.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      r.on('error', reject);
      r.end(body);
    });
  const send = (i: number) => {
    const t = performance.now();
    const req = post(JSON.stringify({ trigger: job.trigger, payload: { i } }))
      .then((status) => {
        if (status !== 201) errors.push(`HTTP ${status}`);
        postMs.push(performance.now() - t);
      })
      .catch((e: unknown) => {
        errors.push((e as Error).message);
      })
      .finally(() => inflight.delete(req));
    inflight.add(req);
    maxInflight = Math.max(maxInflight, inflight.size);
  };
  const interval = 1000 / job.rate;
  const start = performance.now();
  for (let i = 0; i < job.count; ) {
    const wait = start + i * interval - performance.now();
    if (wait > 0) {
      await sleep(wait);
      continue;
    }
    while (i < job.count && start + i * interval <= performance.now()) send(i++);
  }
  await Promise.all(inflight);
  agent.destroy();
  return { postMs, seconds: (performance.now() - start) / 1000, maxInflight, errors };
}

/** Posts `job.count` events at `job.rate` per second from a worker thread; resolves with its report. */
export function postPaced(job: PacedJob): Promise<PacedReport> {
  return new Promise((resolve, reject) => {
    // The thread loads this file through tsx, like the main thread.
    const boot = `(async () => {
      const { register } = await import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))});
      register();
      await import(${JSON.stringify(import.meta.url)});
    })();`;
    const w = new Worker(boot, { eval: true, workerData: job });
    w.once('message', (r: PacedReport) => resolve(r));
    w.once('error', reject);
    w.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the event poster exited with code ${code}`));
    });
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  void run(workerData as PacedJob).then((r) => port.postMessage(r));
}
