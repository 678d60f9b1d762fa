/**
 * http-request (core.http): one HTTP(S) request, redirects followed hop by hop so that every hop is
 * checked against the host allow and deny lists (the worker's and the action's). Deny lists are
 * also checked against the addresses a host name resolves to, so a name pointing at a denied
 * address is refused too. The response body is kept up to a size limit and parsed when it is JSON.
 */
import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import { Agent, request } from 'undici';
import type { ResolvedRunnerConfig } from './config.ts';
import { compileHostPatterns, type HostMatcher, isPatternError } from './hosts.ts';
import { elapsedSince, failure, invalidParameters, isPlainObject } from './outcome.ts';
import type { RunError, RunOutcome, RunRequest } from './runner.ts';
import { timeoutMsOf } from './timing.ts';

interface Rule {
  matcher: HostMatcher;
  /** Who set it, for messages: "the worker configuration" or "the action's denied_hosts". */
  source: string;
}

interface HttpParams {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** The request's own timeout (parameter `timeout`), if any. */
  timeoutMs: number | undefined;
  followRedirects: boolean;
  maxRedirects: number;
  verifyTls: boolean;
  failOnStatus: boolean;
  /** The action's own response size limit (parameter `max_response_bytes`), if any. */
  maxResponseBytes: number | undefined;
  deny: Rule[];
  allow: Rule[];
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[]>;
  body: unknown;
  elapsed_ms: number;
  /** The URL that answered (after redirects). */
  url: string;
  redirects: number;
  /** The body was longer than the limit and was cut (and then not parsed). */
  truncated: boolean;
}

const METHOD = /^[A-Za-z]+$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const JSON_TYPE = /^(application|text)\/([a-z0-9.+-]*\+)?json\s*(;|$)/i;
/** Headers that must not follow a redirect to another origin. */
const CREDENTIAL_HEADERS = ['authorization', 'cookie', 'proxy-authorization'];

class HostDeniedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HostDeniedError';
  }
}

function optBool(v: unknown, name: string, dflt: boolean): boolean | string {
  if (v === undefined || v === null) return dflt;
  return typeof v === 'boolean' ? v : `parameter '${name}' must be a boolean`;
}

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function rules(patterns: unknown, name: string, source: string, out: Rule[]): string | undefined {
  if (patterns === undefined || patterns === null) return undefined;
  if (!Array.isArray(patterns) || !patterns.every((p) => typeof p === 'string')) {
    return `parameter '${name}' must be a list of host patterns`;
  }
  const m = compileHostPatterns(patterns as string[]);
  if (isPatternError(m)) return `${name}: '${m.pattern}' is ${m.message}`;
  if (m.size > 0) out.push({ matcher: m, source });
  return undefined;
}

/** Reads and checks the parameters; a string is the reason they are unusable. */
function parseParams(req: RunRequest, cfg: ResolvedRunnerConfig): HttpParams | string {
  const p = req.parameters;
  if (typeof p.url !== 'string' || p.url === '') return "parameter 'url' must be a non-empty string";
  let url: URL;
  try {
    url = new URL(p.url);
  } catch {
    return `parameter 'url': '${p.url}' is not a valid URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return `parameter 'url': only http and https URLs are supported, not ${url.protocol.slice(0, -1)}`;
  }

  const headers: Record<string, string> = {};
  if (p.headers !== undefined && p.headers !== null) {
    if (!isPlainObject(p.headers)) return "parameter 'headers' must be an object of header names to values";
    for (const [k, v] of Object.entries(p.headers)) {
      const s = scalar(v);
      if (!HEADER_NAME.test(k)) return `headers: '${k}' is not a valid header name`;
      if (s === undefined) return `headers: the value of '${k}' must be a string, number or boolean`;
      if (/[\r\n\0]/.test(s)) return `headers: the value of '${k}' contains a line break or NUL`;
      headers[k.toLowerCase()] = s;
    }
  }

  if (p.query !== undefined && p.query !== null) {
    if (!isPlainObject(p.query)) return "parameter 'query' must be an object of names to values";
    for (const [k, v] of Object.entries(p.query)) {
      for (const item of Array.isArray(v) ? v : [v]) {
        if (item === null || item === undefined) continue;
        const s = scalar(item);
        if (s === undefined)
          return `query: the value of '${k}' must be a string, number, boolean or a list of them`;
        url.searchParams.append(k, s);
      }
    }
  }

  const method = p.method ?? 'GET';
  if (typeof method !== 'string' || !METHOD.test(method))
    return "parameter 'method' must be an HTTP method name";
  const upper = method.toUpperCase();
  if (upper === 'CONNECT') return "parameter 'method': CONNECT is not supported";

  let body: string | undefined;
  const hasBody = p.body !== undefined && p.body !== null;
  if (hasBody && p.json !== undefined) return "give the request body once: either 'body' or 'json'";
  if (hasBody && typeof p.body === 'string') body = p.body;
  else if (hasBody || p.json !== undefined) {
    body = JSON.stringify(hasBody ? p.body : p.json);
    headers['content-type'] ??= 'application/json';
  }

  const userInfo = url.username !== '' || url.password !== '';
  let auth = p.auth;
  if (p.username !== undefined && p.username !== null) {
    if (auth !== undefined && auth !== null)
      return "give credentials once: either 'auth' or 'username'/'password'";
    auth = { type: 'basic', username: p.username, password: p.password };
  } else if (p.password !== undefined && p.password !== null) {
    return "parameter 'password' needs a 'username'";
  }
  if (auth !== undefined && auth !== null) {
    const a = auth;
    if (!isPlainObject(a)) return "parameter 'auth' must be an object ({type: basic|bearer, …})";
    if (headers.authorization !== undefined || userInfo) {
      return 'give credentials once: either auth/username, an Authorization header, or user:password in the URL';
    }
    if (a.type === 'basic') {
      if (typeof a.username !== 'string') return "auth: 'username' must be a string";
      const password = a.password ?? '';
      if (typeof password !== 'string') return "auth: 'password' must be a string";
      headers.authorization = `Basic ${Buffer.from(`${a.username}:${password}`).toString('base64')}`;
    } else if (a.type === 'bearer') {
      if (typeof a.token !== 'string' || a.token === '') return "auth: 'token' must be a non-empty string";
      if (/[\r\n\0]/.test(a.token)) return "auth: 'token' contains a line break or NUL";
      headers.authorization = `Bearer ${a.token}`;
    } else {
      return "auth: 'type' must be 'basic' or 'bearer'";
    }
  } else if (userInfo) {
    if (headers.authorization !== undefined) {
      return 'give credentials once: either an Authorization header or user:password in the URL';
    }
    const user = decodeURIComponent(url.username);
    const pass = decodeURIComponent(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  url.username = '';
  url.password = '';

  let timeoutMs: number | undefined;
  if (p.timeout !== undefined && p.timeout !== null) {
    if (typeof p.timeout !== 'number' || !Number.isFinite(p.timeout) || p.timeout <= 0) {
      return "parameter 'timeout' must be a number of seconds > 0";
    }
    timeoutMs = timeoutMsOf(p.timeout);
  }

  const followRedirects = optBool(p.follow_redirects, 'follow_redirects', true);
  if (typeof followRedirects === 'string') return followRedirects;
  const maxRedirects = p.max_redirects ?? 5;
  if (
    typeof maxRedirects !== 'number' ||
    !Number.isInteger(maxRedirects) ||
    maxRedirects < 0 ||
    maxRedirects > 50
  ) {
    return "parameter 'max_redirects' must be an integer between 0 and 50";
  }
  const verifyTls = optBool(p.verify_tls, 'verify_tls', true);
  if (typeof verifyTls === 'string') return verifyTls;
  const failOnStatus = optBool(p.fail_on_status ?? req.meta.fail_on_status, 'fail_on_status', true);
  if (typeof failOnStatus === 'string') return failOnStatus;

  const maxBytes = p.max_response_bytes ?? null;
  if (maxBytes !== null && (typeof maxBytes !== 'number' || !Number.isInteger(maxBytes) || maxBytes < 0)) {
    return "parameter 'max_response_bytes' must be an integer ≥ 0";
  }

  const deny: Rule[] = [];
  const allow: Rule[] = [];
  const bad =
    rules(cfg.http.deniedHosts, 'worker denied hosts', 'the worker configuration', deny) ??
    rules(cfg.http.allowedHosts, 'worker allowed hosts', 'the worker configuration', allow) ??
    rules(p.denied_hosts, 'denied_hosts', "the action's denied_hosts", deny) ??
    rules(p.allowed_hosts, 'allowed_hosts', "the action's allowed_hosts", allow);
  if (bad) return bad;

  return {
    url,
    method: upper,
    headers,
    body,
    timeoutMs,
    followRedirects,
    maxRedirects,
    verifyTls,
    failOnStatus,
    maxResponseBytes: maxBytes ?? undefined,
    deny,
    allow,
  };
}

/** Why a host may not be reached, if it may not. */
function refusal(host: string, p: HttpParams): string | undefined {
  for (const r of p.deny) {
    const m = r.matcher.match(host);
    if (m !== undefined) return `host '${host}' is denied by ${r.source} (pattern '${m}')`;
  }
  for (const r of p.allow) {
    if (r.matcher.match(host) === undefined) return `host '${host}' is not allowed by ${r.source}`;
  }
  return undefined;
}

/** DNS lookup that refuses names resolving to a denied address. */
function guardedLookup(deny: Rule[]): LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      for (const a of addresses) {
        for (const r of deny) {
          const m = r.matcher.match(a.address);
          if (m !== undefined) {
            const e = new HostDeniedError(
              `host '${hostname}' resolves to ${a.address}, which is denied by ${r.source} (pattern '${m}')`,
            );
            return callback(e, '', 0);
          }
        }
      }
      if (options.all) return callback(null, addresses);
      const first = addresses[0];
      if (!first)
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '', 0);
      callback(null, first.address, first.family);
    });
  };
}

function decoded(body: Readable, encoding: string | undefined): Readable {
  const enc = (encoding ?? '').trim().toLowerCase();
  const z =
    enc === 'gzip' || enc === 'x-gzip'
      ? zlib.createGunzip()
      : enc === 'deflate'
        ? zlib.createInflate()
        : enc === 'br'
          ? zlib.createBrotliDecompress()
          : undefined;
  if (!z) return body;
  pipeline(body, z, () => {});
  return z;
}

async function readCapped(body: Readable, cap: number): Promise<{ data: Buffer; truncated: boolean }> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const b = chunk as Buffer;
    if (size + b.length > cap) {
      parts.push(b.subarray(0, cap - size));
      size = cap;
      return { data: Buffer.concat(parts), truncated: true };
    }
    parts.push(b);
    size += b.length;
  }
  return { data: Buffer.concat(parts), truncated: false };
}

function textOf(data: Buffer, contentType: string): string {
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
  try {
    return new TextDecoder(charset ?? 'utf-8').decode(data);
  } catch {
    return data.toString('utf8');
  }
}

function headersOf(h: Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = v;
  return out;
}

function causes(e: unknown): (Error & { code?: string })[] {
  const out: (Error & { code?: string })[] = [];
  let cur: unknown = e;
  for (let i = 0; i < 5 && cur instanceof Error; i++) {
    out.push(cur as Error & { code?: string });
    cur = (cur as Error & { cause?: unknown }).cause;
  }
  return out;
}

const TLS_CODE = /CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME_MISMATCH|ALTNAME/;

function errorOf(e: unknown, where: string): RunError {
  const chain = causes(e);
  const denied = chain.find((c) => c instanceof HostDeniedError);
  if (denied) return { type: 'host_denied', message: denied.message };
  const tls = chain.find((c) => typeof c.code === 'string' && TLS_CODE.test(c.code));
  if (tls) {
    return {
      type: 'tls_error',
      message: `TLS verification of ${where} failed: ${tls.message} (${tls.code}); verify_tls: false accepts an untrusted certificate`,
    };
  }
  const invalid = chain.find((c) => c.code === 'UND_ERR_INVALID_ARG');
  if (invalid) return { type: 'invalid_parameters', message: `invalid request: ${invalid.message}` };
  const first = chain.find((c) => c.code) ?? chain[0];
  const code = first?.code ? ` (${first.code})` : '';
  return { type: 'http_error', message: `request to ${where} failed: ${first?.message ?? String(e)}${code}` };
}

export async function runHttpRequest(
  req: RunRequest,
  cfg: ResolvedRunnerConfig,
  started: number,
): Promise<RunOutcome> {
  const p = parseParams(req, cfg);
  if (typeof p === 'string') return invalidParameters(started, p);

  const actionTimeoutMs = timeoutMsOf(req.timeoutSeconds);
  const ownTimeoutMs = p.timeoutMs;
  const ac = new AbortController();
  let stop: 'canceled' | 'action-timeout' | 'request-timeout' | undefined;
  const abortWith = (why: typeof stop) => () => {
    stop ??= why;
    ac.abort();
  };
  const onCancel = abortWith('canceled');
  const timers: NodeJS.Timeout[] = [];
  if (actionTimeoutMs !== undefined) timers.push(setTimeout(abortWith('action-timeout'), actionTimeoutMs));
  if (ownTimeoutMs !== undefined) timers.push(setTimeout(abortWith('request-timeout'), ownTimeoutMs));
  if (req.signal.aborted) onCancel();
  else req.signal.addEventListener('abort', onCancel, { once: true });

  const agent = new Agent({
    connect: {
      rejectUnauthorized: p.verifyTls,
      ...(p.deny.length > 0 ? { lookup: guardedLookup(p.deny) } : {}),
    },
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  const cap = Math.max(
    0,
    Math.min(
      cfg.http.maxResponseBytes,
      req.limits.maxOutputBytes,
      p.maxResponseBytes ?? Number.POSITIVE_INFINITY,
    ),
  );

  let url = p.url;
  let method = p.method;
  let body = p.body;
  const headers = { ...p.headers };
  let redirects = 0;
  try {
    for (;;) {
      const refused = refusal(url.hostname, p);
      if (refused) return failure(started, 'failed', { type: 'host_denied', message: refused });

      const res = await request(url, { method, headers, body, dispatcher: agent, signal: ac.signal });
      const location = res.headers.location;
      if (p.followRedirects && REDIRECTS.has(res.statusCode) && typeof location === 'string') {
        await res.body.dump();
        if (redirects >= p.maxRedirects) {
          return failure(started, 'failed', {
            type: 'too_many_redirects',
            message: `more than ${p.maxRedirects} redirects (last from ${url.origin}${url.pathname})`,
          });
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          return failure(started, 'failed', {
            type: 'http_error',
            message: `${url.origin}${url.pathname} redirected to an invalid URL '${location}'`,
          });
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return failure(started, 'failed', {
            type: 'http_error',
            message: `redirect to an unsupported scheme: ${next.protocol.slice(0, -1)}`,
          });
        }
        const changesToGet =
          (res.statusCode === 303 && method !== 'HEAD') ||
          ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST');
        if (changesToGet) {
          method = 'GET';
          body = undefined;
          delete headers['content-type'];
          delete headers['content-length'];
        }
        if (next.origin !== url.origin) for (const h of CREDENTIAL_HEADERS) delete headers[h];
        url = next;
        redirects += 1;
        continue;
      }

      const contentType = String(res.headers['content-type'] ?? '');
      const encoding = res.headers['content-encoding'];
      const { data, truncated } = await readCapped(
        decoded(res.body, typeof encoding === 'string' ? encoding : undefined),
        cap,
      );
      const text = textOf(data, contentType);
      let parsed: unknown = text;
      if (!truncated && JSON_TYPE.test(contentType) && text.trim() !== '') {
        try {
          parsed = JSON.parse(text);
        } catch {
          // the server said JSON but sent something else: keep the text
        }
      }
      const result: HttpResult = {
        status: res.statusCode,
        headers: headersOf(res.headers),
        body: parsed,
        elapsed_ms: elapsedSince(started),
        url: url.href,
        redirects,
        truncated,
      };
      const outcome: RunOutcome = {
        status: 'succeeded',
        result,
        truncated: { stdout: truncated, stderr: false },
        durationMs: elapsedSince(started),
      };
      if (res.statusCode >= 400 && p.failOnStatus) {
        return {
          ...outcome,
          status: 'failed',
          error: {
            type: 'http_status',
            message: `${method} ${url.origin}${url.pathname} answered ${res.statusCode}`,
          },
        };
      }
      return outcome;
    }
  } catch (e) {
    if (stop === 'canceled')
      return failure(started, 'canceled', { type: 'canceled', message: 'request canceled' });
    if (stop === 'action-timeout') {
      return failure(started, 'timeout', {
        type: 'timeout',
        message: `request to ${url.origin} timed out after ${req.timeoutSeconds} s (action timeout)`,
      });
    }
    if (stop === 'request-timeout') {
      return failure(started, 'timeout', {
        type: 'timeout',
        message: `request to ${url.origin} timed out after ${req.parameters.timeout} s (parameter 'timeout')`,
      });
    }
    return failure(started, 'failed', errorOf(e, url.origin));
  } finally {
    for (const t of timers) clearTimeout(t);
    req.signal.removeEventListener('abort', onCancel);
    agent.destroy().catch(() => {});
  }
}
