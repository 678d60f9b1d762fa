/**
 * The sensor manager: runs the sensors of packs as long-running child processes, while at least one
 * enabled rule uses one of their (enabled) triggers, on exactly one node at a time.
 *
 * - Which sensors are needed is read on every `notify.definitions.changed` broadcast and every
 *   `evaluateIntervalMs` (10 s). A sensor no longer needed (rules disabled, sensor disabled or
 *   deleted) is stopped; one whose definition, or whose pack's configuration, changed is restarted.
 * - Each running sensor is held under a lease, its row in `sensor_processes` (`owner`,
 *   `lease_expires_at`), renewed every tick (1 s) for `leaseSeconds` (30 s). Another manager takes a
 *   sensor only once its lease has expired (its node died) or was released (its node stopped it). A
 *   manager that finds its lease taken stops its process.
 * - The process gets, as one JSON document on stdin (then closed):
 *   `{sensor, triggers, config, pack_config, poll_interval_seconds}`, and emits events as JSON lines
 *   on stdout: `{"trigger": "pack.trigger", "payload": {...}}` — the trigger must be one of the
 *   sensor's `trigger_refs` (or the name of one of them). Events are stored in batches, with their
 *   outbox messages. Lines that are not valid events, and events their trigger refuses, are kept in
 *   the sensor's log (stream `invalid`, with the reason); stderr lines too (stream `stderr`). The log
 *   keeps the newest `maxLogLines` lines per sensor.
 * - A process that exits (whatever its code) is restarted after a back-off that doubles with each
 *   consecutive crash (1 s, 2 s, 4 s … at most 60 s); a run longer than `stableAfterMs` resets it.
 *   Meanwhile its status is `backoff`, with `next_restart_at`, `restarts`, `last_exit_code` and
 *   `last_error` (the last stderr line). A sensor that cannot be started at all (missing entry point,
 *   pack files absent on this node) is `failed` and tried again after the longest back-off.
 * - Stopping (not needed any more, or shutdown): SIGTERM to the whole process group, SIGKILL after
 *   `killGraceMs` (5 s); the lease is released so another node may take over at once.
 */
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { and, eq, inArray, sql } from 'drizzle-orm';
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core';
import type { Bus, BusLogger, JsonValue, Subscription } from '../../bus/bus.ts';
import { silentLogger } from '../../bus/bus.ts';
import { AppError } from '../../domain/errors.ts';
import type { Store } from '../../store/database.ts';
import { packs, sensorProcesses, sensors } from '../../store/schema.ts';
import { createEvents, type NewEvent } from '../events/create-event.ts';
import { TOPICS } from '../runtime/messages.ts';
import {
  type ResolvedRunnerConfig,
  type RunnerConfig,
  resolveRunnerConfig,
} from '../worker/runners/config.ts';
import { SensorLogWriter } from './sensor-logs.ts';
import { type SensorDefinition, SensorProcess, spawnSpecOf } from './sensor-process.ts';

export interface SensorManagerOptions {
  store: Store;
  /** Follows `notify.definitions.changed` to re-evaluate at once. */
  bus?: Bus;
  log?: BusLogger;
  /** Called after a commit that wrote outbox rows. */
  kickOutbox?: () => void;
  /** The directory of a pack's files on this node, or null when they are not here. */
  packDir: (packRef: string) => string | null;
  /** This node in `sensor_processes.owner`. Default hostname:pid:random. */
  owner?: string;
  /** Lease length. Default 30 s. */
  leaseSeconds?: number;
  /** Lease renewal and restart checks. Default 1000 ms. */
  tickMs?: number;
  /** Time between two evaluations of which sensors are needed. Default 10 000 ms. */
  evaluateIntervalMs?: number;
  /** First restart delay after a crash. Default 1000 ms; doubles per consecutive crash. */
  backoffInitialMs?: number;
  /** Longest restart delay. Default 60 000 ms. */
  backoffMaxMs?: number;
  /** A run at least this long resets the back-off. Default 60 000 ms. */
  stableAfterMs?: number;
  /** Between SIGTERM and SIGKILL. Default 5000 ms. */
  killGraceMs?: number;
  /** Log lines kept per sensor. Default 1000. */
  maxLogLines?: number;
  /** Longest stdout line read as an event. Default 1 MiB. */
  maxLineBytes?: number;
  /** Interpreters, environment pass-through, API URL (as for the worker's runners). */
  runnerConfig?: RunnerConfig;
}

type SensorRow = typeof sensors.$inferSelect;

interface Needed {
  def: SensorDefinition;
  packConfig: Record<string, unknown>;
  /** Changes when anything the process was started with changes. */
  fingerprint: string;
}

interface Local {
  ref: string;
  needed: Needed;
  proc: SensorProcess | undefined;
  /** Resolves when the exit of the last process has been recorded. */
  exited: Promise<void> | undefined;
  startedAt: number;
  /** Consecutive crashes (resets after a stable run). */
  failures: number;
  restartAt: number;
  stopping: boolean;
  lastStderr: string;
  queue: NewEvent[];
  flushTimer: NodeJS.Timeout | undefined;
  flushing: Promise<void> | undefined;
}

/** Events stored per transaction. */
const EVENT_BATCH = 500;
/** Queued events at which the sensor's stdout is paused until they are stored. */
const QUEUE_HIGH_WATER = 2000;

export class SensorManager {
  readonly owner: string;
  private readonly store: Store;
  private readonly log: BusLogger;
  private readonly cfg: ResolvedRunnerConfig;
  private readonly leaseSeconds: number;
  private readonly tickMs: number;
  private readonly evaluateMs: number;
  private readonly backoffInitial: number;
  private readonly backoffMax: number;
  private readonly stableAfter: number;
  private readonly killGraceMs: number;
  private readonly maxLineBytes: number;
  readonly logs: SensorLogWriter;
  private readonly local = new Map<string, Local>();
  private needed = new Map<string, Needed>();
  private subscription: Subscription | undefined;
  private loop: Promise<void> | undefined;
  private stopped = true;
  private evaluateWanted = true;
  private nextEvaluateAt = 0;
  private wake: (() => void) | undefined;
  private readonly onProcessExit = () => {
    for (const l of this.local.values()) l.proc?.killNow();
  };
  /** Events stored, per sensor (for tests and metrics). */
  readonly emitted = new Map<string, number>();

  constructor(private readonly opts: SensorManagerOptions) {
    this.store = opts.store;
    this.log = opts.log ?? silentLogger;
    this.cfg = resolveRunnerConfig(opts.runnerConfig ?? {});
    this.owner = opts.owner ?? `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
    this.leaseSeconds = opts.leaseSeconds ?? 30;
    this.tickMs = opts.tickMs ?? 1000;
    this.evaluateMs = opts.evaluateIntervalMs ?? 10_000;
    this.backoffInitial = opts.backoffInitialMs ?? 1000;
    this.backoffMax = opts.backoffMaxMs ?? 60_000;
    this.stableAfter = opts.stableAfterMs ?? 60_000;
    this.killGraceMs = opts.killGraceMs ?? 5000;
    this.maxLineBytes = opts.maxLineBytes ?? 1024 * 1024;
    this.logs = new SensorLogWriter(this.store, this.log, opts.maxLogLines ?? 1000);
  }

  /** The sensors this manager runs (or is restarting) now. */
  get running(): string[] {
    return [...this.local.keys()].sort();
  }

  /** The pid of a sensor's process here, if it runs here. */
  pidOf(ref: string): number | undefined {
    return this.local.get(ref)?.proc?.pid;
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    this.evaluateWanted = true;
    process.on('exit', this.onProcessExit);
    if (this.opts.bus)
      this.subscription = await this.opts.bus.subscribe([TOPICS.definitionsChanged], async () => {
        this.evaluateWanted = true;
        this.wake?.();
      });
    this.loop = this.run();
  }

  /** Stops every sensor process of this node, releases their leases, and stops. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake?.();
    const sub = this.subscription;
    this.subscription = undefined;
    await sub?.close();
    await this.loop;
    this.loop = undefined;
    await Promise.all(
      [...this.local.values()].map((l) => this.release(l, 'the sensor service is shutting down')),
    );
    await this.logs.close();
    process.off('exit', this.onProcessExit);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.tick();
      } catch (e) {
        if (!this.stopped)
          this.log.warn({ err: (e as Error).message }, 'sensor manager: tick failed; will retry');
      }
      if (this.stopped) break;
      await this.sleep(this.tickMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** One round: re-evaluate (when due), stop what is not needed, renew leases, take and start what is. */
  async tick(): Promise<void> {
    if (this.evaluateWanted || Date.now() >= this.nextEvaluateAt) {
      this.evaluateWanted = false;
      this.needed = await this.loadNeeded();
      this.nextEvaluateAt = Date.now() + this.evaluateMs;
    }
    for (const l of [...this.local.values()]) {
      const want = this.needed.get(l.ref);
      if (!want)
        await this.release(l, 'no enabled rule uses its triggers any more (or the sensor was disabled)');
      else if (want.fingerprint !== l.needed.fingerprint) {
        await this.stopProcess(l, 'its definition changed; restarting');
        l.needed = want;
        l.failures = 0;
        l.restartAt = 0;
      }
    }
    await this.renew();
    for (const [ref, want] of this.needed) {
      if (this.stopped) return;
      if (!this.local.has(ref)) await this.acquire(want);
    }
    const now = Date.now();
    for (const l of this.local.values()) {
      if (this.stopped) return;
      if (!l.proc && !l.stopping && l.restartAt <= now) await this.launch(l);
    }
  }

  private async loadNeeded(): Promise<Map<string, Needed>> {
    const rows = await this.store.db
      .select({
        s: sensors,
        packConfig: packs.config,
        packVersion: packs.version,
        packUpdated: packs.updatedAt,
      })
      .from(sensors)
      .innerJoin(packs, eq(packs.id, sensors.packId))
      .where(
        and(
          eq(sensors.enabled, true),
          sql`exists (select 1 from rules r join triggers t on t.ref = r.trigger_ref
                      where r.enabled and t.enabled and r.trigger_ref = any(${sensors.triggerRefs}))`,
        ),
      );
    const out = new Map<string, Needed>();
    for (const r of rows) {
      const def = definitionOf(r.s);
      out.set(def.ref, {
        def,
        packConfig: r.packConfig,
        fingerprint: JSON.stringify([def, r.packConfig, r.packVersion, r.packUpdated.toISOString()]),
      });
    }
    return out;
  }

  /** Takes the lease of a sensor if it is free (or already ours). */
  private async acquire(want: Needed): Promise<void> {
    const ref = want.def.ref;
    const rows = await this.store.db
      .insert(sensorProcesses)
      .values({
        sensorRef: ref,
        owner: this.owner,
        leaseExpiresAt: sql`now() + make_interval(secs => ${this.leaseSeconds})`,
        status: 'starting',
        updatedAt: sql`now()`,
      })
      .onConflictDoUpdate({
        target: sensorProcesses.sensorRef,
        set: {
          owner: this.owner,
          leaseExpiresAt: sql`excluded.lease_expires_at`,
          status: 'starting',
          pid: null,
          nextRestartAt: null,
          updatedAt: sql`now()`,
        },
        setWhere: sql`${sensorProcesses.owner} IS NULL OR ${sensorProcesses.leaseExpiresAt} IS NULL
          OR ${sensorProcesses.leaseExpiresAt} < now() OR ${sensorProcesses.owner} = ${this.owner}`,
      })
      .returning({ owner: sensorProcesses.owner });
    if (rows[0]?.owner !== this.owner) return;
    this.local.set(ref, {
      ref,
      needed: want,
      proc: undefined,
      exited: undefined,
      startedAt: 0,
      failures: 0,
      restartAt: 0,
      stopping: false,
      lastStderr: '',
      queue: [],
      flushTimer: undefined,
      flushing: undefined,
    });
    this.log.info({ sensor: ref, owner: this.owner }, 'sensor lease taken');
  }

  /** Renews the leases of this node's sensors; stops those whose lease another node has taken. */
  private async renew(): Promise<void> {
    const refs = [...this.local.keys()];
    if (!refs.length) return;
    const kept = await this.store.db
      .update(sensorProcesses)
      .set({ leaseExpiresAt: sql`now() + make_interval(secs => ${this.leaseSeconds})` })
      .where(and(eq(sensorProcesses.owner, this.owner), inArray(sensorProcesses.sensorRef, refs)))
      .returning({ ref: sensorProcesses.sensorRef });
    const mine = new Set(kept.map((k) => k.ref));
    for (const ref of refs) {
      if (mine.has(ref)) continue;
      const l = this.local.get(ref)!;
      this.log.warn(
        { sensor: ref, owner: this.owner },
        'sensor lease lost to another node; stopping the local process',
      );
      await this.stopProcess(l, 'its lease was taken by another node');
      this.local.delete(ref);
    }
  }

  /** Writes to this node's row of a sensor; false when the lease is not ours any more. */
  private async update(ref: string, set: PgUpdateSetSource<typeof sensorProcesses>): Promise<boolean> {
    const rows = await this.store.db
      .update(sensorProcesses)
      .set({ ...set, updatedAt: sql`now()` })
      .where(and(eq(sensorProcesses.sensorRef, ref), eq(sensorProcesses.owner, this.owner)))
      .returning({ ref: sensorProcesses.sensorRef });
    return rows.length > 0;
  }

  private backoffFor(failures: number): number {
    return Math.min(this.backoffMax, this.backoffInitial * 2 ** Math.max(0, failures - 1));
  }

  private async launch(l: Local): Promise<void> {
    const def = l.needed.def;
    const packDir = this.opts.packDir(def.packRef);
    const spec = packDir
      ? spawnSpecOf(def, packDir, this.cfg)
      : { ok: false as const, message: `the files of pack '${def.packRef}' are not on this node` };
    if (!spec.ok) {
      l.restartAt = Date.now() + this.backoffMax;
      this.logs.write(
        l.ref,
        'system',
        `cannot start: ${spec.message}; trying again in ${Math.round(this.backoffMax / 1000)} s`,
      );
      this.log.error({ sensor: l.ref, err: spec.message }, 'sensor cannot be started');
      await this.update(l.ref, {
        status: 'failed',
        lastError: spec.message,
        pid: null,
        nextRestartAt: sql`now() + make_interval(secs => ${this.backoffMax / 1000})`,
      });
      return;
    }
    const stdin = `${JSON.stringify({
      sensor: def.ref,
      triggers: def.triggerRefs,
      config: def.config,
      pack_config: l.needed.packConfig,
      poll_interval_seconds: def.pollIntervalSeconds,
    })}\n`;
    let resolveExited!: () => void;
    l.exited = new Promise((r) => {
      resolveExited = r;
    });
    l.lastStderr = '';
    l.startedAt = Date.now();
    let proc: SensorProcess | undefined;
    try {
      proc = new SensorProcess(
        spec.spec,
        stdin,
        {
          onStdoutLine: (line, truncated) => this.onLine(l, line, truncated),
          onStderrLine: (line, truncated) => {
            if (line.trim()) l.lastStderr = line.trim();
            this.logs.write(l.ref, 'stderr', truncated ? `${line}… [cut]` : line);
          },
          // Always called after the constructor returned (process events are asynchronous).
          onExit: (code, signal, error) => {
            void this.onExit(l, proc!, code, signal, error).finally(resolveExited);
          },
        },
        this.killGraceMs,
        this.maxLineBytes,
      );
    } catch (e) {
      resolveExited();
      const message = `cannot start ${spec.spec.label}: ${(e as Error).message}`;
      l.failures++;
      l.restartAt = Date.now() + this.backoffFor(l.failures);
      this.logs.write(l.ref, 'system', message);
      await this.update(l.ref, { status: 'failed', lastError: message, pid: null });
      return;
    }
    l.proc = proc;
    if (proc.pid === undefined) return; // could not start: onExit reports it
    this.logs.write(l.ref, 'system', `started ${spec.spec.label} (pid ${proc.pid})`);
    this.log.info({ sensor: l.ref, pid: proc.pid }, 'sensor started');
    const ours = await this.update(l.ref, {
      status: 'running',
      pid: proc.pid,
      startedAt: sql`now()`,
      nextRestartAt: null,
    });
    if (!ours) {
      await this.stopProcess(l, 'its lease was taken by another node');
      this.local.delete(l.ref);
    }
  }

  private async onExit(
    l: Local,
    proc: SensorProcess,
    code: number | null,
    signal: NodeJS.Signals | null,
    error: string | undefined,
  ): Promise<void> {
    await this.flushEvents(l);
    if (l.proc !== proc) return;
    if (l.stopping) return; // the stopper records the outcome
    const ran = Date.now() - l.startedAt;
    l.failures = ran >= this.stableAfter ? 1 : l.failures + 1;
    const delay = this.backoffFor(l.failures);
    l.restartAt = Date.now() + delay;
    const how = error ?? (signal ? `killed by signal ${signal}` : `exited with code ${code}`);
    const reason = l.lastStderr && !error ? `${how}: ${l.lastStderr}` : how;
    this.logs.write(l.ref, 'system', `${reason}; restarting in ${(delay / 1000).toFixed(1)} s`);
    this.log.warn(
      { sensor: l.ref, code, signal, restartInMs: delay },
      `sensor ${how}; restarting with back-off`,
    );
    try {
      await this.update(l.ref, {
        status: 'backoff',
        pid: null,
        restarts: sql`${sensorProcesses.restarts} + 1`,
        lastExitCode: code,
        lastError: reason.slice(0, 2000),
        nextRestartAt: sql`now() + make_interval(secs => ${delay / 1000})`,
      });
    } catch (e) {
      this.log.warn({ sensor: l.ref, err: (e as Error).message }, 'sensor exit could not be recorded');
    } finally {
      l.proc = undefined;
    }
  }

  /** Stops the process of `l` (if any) and waits until its exit is handled; keeps the lease. */
  private async stopProcess(l: Local, why: string): Promise<void> {
    const proc = l.proc;
    if (!proc) return;
    l.stopping = true;
    try {
      await proc.stop();
      await l.exited;
      await this.flushEvents(l);
      this.logs.write(l.ref, 'system', `stopped: ${why}`);
      this.log.info({ sensor: l.ref, why }, 'sensor stopped');
    } finally {
      l.proc = undefined;
      l.stopping = false;
    }
  }

  /** Stops `l` and gives its lease up. */
  private async release(l: Local, why: string): Promise<void> {
    await this.stopProcess(l, why);
    this.local.delete(l.ref);
    try {
      await this.update(l.ref, {
        status: 'stopped',
        owner: null,
        leaseExpiresAt: null,
        pid: null,
        nextRestartAt: null,
      });
    } catch (e) {
      this.log.warn(
        { sensor: l.ref, err: (e as Error).message },
        'sensor lease could not be released; it will expire',
      );
    }
  }

  // ───────────────────────────── events ─────────────────────────────

  private invalid(l: Local, why: string, line: string): void {
    const shown = line.length > 500 ? `${line.slice(0, 500)}…` : line;
    this.logs.write(l.ref, 'invalid', `${why}: ${shown}`);
  }

  private onLine(l: Local, line: string, truncated: boolean): void {
    if (truncated) {
      this.invalid(l, `line longer than ${this.maxLineBytes} bytes, ignored`, line);
      return;
    }
    const text = line.trim();
    if (!text) return;
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      this.invalid(l, 'not JSON (expected {"trigger": …, "payload": {…}})', text);
      return;
    }
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
      this.invalid(l, 'not a JSON object (expected {"trigger": …, "payload": {…}})', text);
      return;
    }
    const { trigger, payload } = doc as { trigger?: unknown; payload?: unknown };
    if (typeof trigger !== 'string' || !trigger) {
      this.invalid(l, '"trigger" is missing or not a string', text);
      return;
    }
    const refs = l.needed.def.triggerRefs;
    const triggerRef = refs.includes(trigger)
      ? trigger
      : refs.find((r) => r.endsWith(`.${trigger}`) && !trigger.includes('.'));
    if (!triggerRef) {
      this.invalid(l, `trigger '${trigger}' is not one of this sensor's triggers (${refs.join(', ')})`, text);
      return;
    }
    l.queue.push({
      triggerRef,
      payload: (payload === undefined ? {} : payload) as JsonValue,
      source: `sensor:${l.ref}`,
    });
    if (l.queue.length >= QUEUE_HIGH_WATER) l.proc?.pauseOutput();
    if (l.queue.length >= EVENT_BATCH) void this.flushEvents(l);
    else
      l.flushTimer ??= setTimeout(() => {
        l.flushTimer = undefined;
        void this.flushEvents(l);
      }, 20);
  }

  /** Stores the queued events of `l` (one transaction per batch); refused ones are logged. */
  private async flushEvents(l: Local): Promise<void> {
    while (l.flushing) await l.flushing;
    if (l.flushTimer) {
      clearTimeout(l.flushTimer);
      l.flushTimer = undefined;
    }
    if (!l.queue.length) return;
    l.flushing = this.storeQueued(l).finally(() => {
      l.flushing = undefined;
    });
    await l.flushing;
  }

  /** Never throws: events that cannot be stored yet stay queued and are retried with back-off. */
  private async storeQueued(l: Local): Promise<void> {
    let failures = 0;
    while (l.queue.length) {
      const batch = l.queue.slice(0, EVENT_BATCH);
      try {
        try {
          await this.store.transaction((tx) => createEvents(tx, batch));
          l.queue.splice(0, batch.length);
          this.count(l.ref, batch.length);
        } catch (e) {
          if (!(e instanceof AppError)) throw e;
          // One of them is refused (payload or trigger): store them one by one, log the refused ones.
          while (l.queue.length && batch.length) {
            await this.storeOne(l, batch[0]!);
            batch.shift();
            l.queue.shift();
          }
        }
        failures = 0;
      } catch (e) {
        failures++;
        this.log.warn(
          { sensor: l.ref, err: (e as Error).message, queued: l.queue.length },
          'sensor events could not be stored; retrying',
        );
        l.proc?.pauseOutput();
        if (this.stopped && failures >= 3) {
          this.logs.write(
            l.ref,
            'system',
            `${l.queue.length} event(s) lost at shutdown: the database is unreachable`,
          );
          l.queue = [];
          break;
        }
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** Math.min(failures, 5))));
      }
    }
    this.opts.kickOutbox?.();
    l.proc?.resumeOutput();
  }

  /** Stores one event; a refusal is logged, any other failure thrown. */
  private async storeOne(l: Local, ev: NewEvent): Promise<void> {
    try {
      await this.store.transaction((tx) => createEvents(tx, [ev]));
      this.count(l.ref, 1);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      this.invalid(
        l,
        `event refused: ${e.message}`,
        JSON.stringify({ trigger: ev.triggerRef, payload: ev.payload }),
      );
    }
  }

  private count(ref: string, n: number): void {
    this.emitted.set(ref, (this.emitted.get(ref) ?? 0) + n);
  }
}

function definitionOf(s: SensorRow): SensorDefinition {
  return {
    ref: s.ref,
    packRef: s.packRef,
    runner: s.runner,
    entryPoint: s.entryPoint,
    triggerRefs: s.triggerRefs,
    config: s.config,
    pollIntervalSeconds: s.pollIntervalSeconds,
  };
}
