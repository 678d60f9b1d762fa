/** What both bus drivers share: argument checks, topic matching, payload encoding, state listeners. */
import { BusError, type BusState, type ConsumeOptions, type JsonValue, type PublishOptions } from './bus.ts';

const WORD = /^[A-Za-z0-9_:-]+$/;
const QUEUE = /^[A-Za-z0-9_.:-]+$/;
const MAX_TOPIC_BYTES = 255;
/** Leaves room for the `.retry` / `.dead` suffixes within AMQP's 255-byte names. */
const MAX_QUEUE_LENGTH = 200;

export const DEFAULT_PREFETCH = 16;
export const DEFAULT_MAX_DELIVERIES = 5;
export const DEFAULT_RETRY_DELAY_MS = 1000;
/** How long closing a subscription waits for its handlers in flight. */
export const DEFAULT_CLOSE_GRACE_MS = 10_000;

/** Headers the bus sets for itself; never shown to handlers. */
export const H_TOPIC = 'x-attune-topic';
export const H_DELIVERIES = 'x-attune-deliveries';
/** Shown to handlers of `<queue>.dead`: why the message was dead-lettered. */
export const H_ERROR = 'x-attune-error';

const invalid = (message: string) => new BusError('INVALID_ARGUMENT', message);

export function checkTopic(topic: unknown): string {
  if (typeof topic !== 'string' || topic === '') throw invalid('topic must be a non-empty string');
  if (Buffer.byteLength(topic) > MAX_TOPIC_BYTES)
    throw invalid(`topic is longer than ${MAX_TOPIC_BYTES} bytes`);
  for (const w of topic.split('.')) {
    if (!WORD.test(w)) {
      throw invalid(
        `topic '${topic}' is invalid: dot-separated words of letters, digits, '_', '-', ':' expected`,
      );
    }
  }
  return topic;
}

export function checkPattern(pattern: unknown): string {
  if (typeof pattern !== 'string' || pattern === '')
    throw invalid('a topic pattern must be a non-empty string');
  if (Buffer.byteLength(pattern) > MAX_TOPIC_BYTES) {
    throw invalid(`topic pattern is longer than ${MAX_TOPIC_BYTES} bytes`);
  }
  for (const w of pattern.split('.')) {
    if (w !== '*' && w !== '#' && !WORD.test(w)) {
      throw invalid(
        `topic pattern '${pattern}' is invalid: words, '*' (one word) or '#' (any words) expected`,
      );
    }
  }
  return pattern;
}

export function checkPatterns(patterns: unknown, what = 'topics'): string[] {
  if (!Array.isArray(patterns)) throw invalid(`${what} must be an array of topic patterns`);
  return [...new Set(patterns.map((p) => checkPattern(p)))];
}

export function checkQueueName(queue: unknown): string {
  if (typeof queue !== 'string' || queue === '') throw invalid('queue name must be a non-empty string');
  if (queue.length > MAX_QUEUE_LENGTH)
    throw invalid(`queue name is longer than ${MAX_QUEUE_LENGTH} characters`);
  if (!QUEUE.test(queue))
    throw invalid(`queue name '${queue}' is invalid: letters, digits, '_', '-', '.', ':'`);
  if (queue.startsWith('amq.')) throw invalid(`queue name '${queue}' is invalid: 'amq.' is reserved`);
  if (queue.endsWith('.retry')) throw invalid(`queue name '${queue}' is invalid: '.retry' is reserved`);
  return queue;
}

export interface ResolvedConsumeOptions {
  topics: string[];
  prefetch: number;
  maxDeliveries: number;
  retryDelayMs: number;
}

function intOption(value: unknown, name: string, min: number, max: number, dflt: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(`${name} must be an integer from ${min} to ${max}`);
  }
  return value;
}

export function resolveConsumeOptions(opts: ConsumeOptions): ResolvedConsumeOptions {
  if (typeof opts !== 'object' || opts === null) throw invalid('consume options are required');
  return {
    topics: checkPatterns(opts.topics),
    prefetch: intOption(opts.prefetch, 'prefetch', 1, 65535, DEFAULT_PREFETCH),
    maxDeliveries: intOption(opts.maxDeliveries, 'maxDeliveries', 1, 1000, DEFAULT_MAX_DELIVERIES),
    retryDelayMs: intOption(opts.retryDelayMs, 'retryDelayMs', 0, 86_400_000, DEFAULT_RETRY_DELAY_MS),
  };
}

export interface ResolvedPublishOptions {
  messageId: string | undefined;
  headers: Record<string, string>;
}

export function resolvePublishOptions(opts: PublishOptions | undefined): ResolvedPublishOptions {
  const headers: Record<string, string> = {};
  if (opts?.messageId !== undefined && (typeof opts.messageId !== 'string' || opts.messageId === '')) {
    throw invalid('messageId must be a non-empty string');
  }
  if (opts?.messageId && Buffer.byteLength(opts.messageId) > 255)
    throw invalid('messageId is longer than 255 bytes');
  for (const [k, v] of Object.entries(opts?.headers ?? {})) {
    if (typeof v !== 'string') throw invalid(`header '${k}' must be a string`);
    if (k === '' || k.toLowerCase().startsWith('x-'))
      throw invalid(`header '${k}': names starting with 'x-' are reserved`);
    headers[k] = v;
  }
  return { messageId: opts?.messageId, headers };
}

/** JSON text of a payload; throws INVALID_PAYLOAD for what JSON cannot carry. */
export function encodePayload(payload: JsonValue): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(payload);
  } catch (e) {
    throw new BusError('INVALID_PAYLOAD', `payload is not JSON-serialisable: ${(e as Error).message}`, {
      cause: e,
    });
  }
  if (text === undefined) throw new BusError('INVALID_PAYLOAD', 'payload is not JSON-serialisable');
  return text;
}

/** AMQP topic matching: `*` = exactly one word, `#` = zero or more words. */
export function compilePattern(pattern: string): (topic: string) => boolean {
  const words = pattern.split('.');
  if (words.length === 1 && words[0] === '#') return () => true;
  if (!words.includes('#') && !words.includes('*')) return (topic) => topic === pattern;
  return (topic) => matchWords(words, topic.split('.'), 0, 0);
}

function matchWords(p: string[], t: string[], i: number, j: number): boolean {
  while (i < p.length) {
    const w = p[i];
    if (w === '#') {
      // Collapse consecutive '#': they match the same as one.
      while (p[i + 1] === '#') i++;
      if (i === p.length - 1) return true;
      for (let k = j; k <= t.length; k++) if (matchWords(p, t, i + 1, k)) return true;
      return false;
    }
    if (j >= t.length) return false;
    if (w !== '*' && w !== t[j]) return false;
    i++;
    j++;
  }
  return j === t.length;
}

/** Matches a topic against any of several patterns. */
export function compilePatterns(patterns: Iterable<string>): (topic: string) => boolean {
  const fns = [...patterns].map(compilePattern);
  return (topic) => fns.some((f) => f(topic));
}

/** The state of a bus and its listeners. */
export class StateCell {
  private current: BusState;
  private readonly listeners = new Set<(state: BusState, reason?: string) => void>();
  constructor(initial: BusState) {
    this.current = initial;
  }
  get state(): BusState {
    return this.current;
  }
  set(state: BusState, reason?: string): void {
    if (state === this.current || this.current === 'closed') return;
    this.current = state;
    for (const l of [...this.listeners]) {
      try {
        l(state, reason);
      } catch {
        // a listener's failure is its own business
      }
    }
  }
  listen(listener: (state: BusState, reason?: string) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}

export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Registers a waiter in `waiters` and resolves when it is called or after `graceMs`, whichever is first. */
export function waitIdle(waiters: (() => void)[], graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(done, graceMs);
    function done() {
      clearTimeout(t);
      resolve();
    }
    waiters.push(done);
  });
}
