/**
 * The payload of a webhook event, built from the request:
 * `{body, headers, query, method, remote_ip}` (+ `body_encoding: 'base64'` for a binary body).
 *
 * - `body`: JSON (`application/json`, `*\/*+json`) parsed; a form (`application/x-www-form-urlencoded`)
 *   as an object (repeated fields as arrays); anything else as UTF-8 text — or base64 when it is not
 *   valid UTF-8 text; `null` when the request has no body.
 * - `headers`: lower-cased names; credentials are removed (authorization, cookies, API keys, the
 *   signature header, and any header whose name speaks of a signature, token, secret or password).
 * - `query`: the query-string fields, with the same credential-like names removed.
 */
import type { JsonValue } from '../../bus/bus.ts';

const ALWAYS_HIDDEN = new Set(['authorization', 'proxy-authorization', 'cookie', 'set-cookie', 'x-api-key']);
const SECRET_LIKE = /signature|token|secret|passw|api[-_]?key|credential/i;

/** Whether a header or query field of this name is withheld from events. */
export const isHiddenField = (name: string, signatureHeader?: string): boolean =>
  ALWAYS_HIDDEN.has(name) || name === signatureHeader || SECRET_LIKE.test(name);

export interface WebhookRequest {
  body: Buffer;
  contentType: string | undefined;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  query: unknown;
  method: string;
  remoteIp: string;
  /** The webhook's signature header (lower-case), also withheld. */
  signatureHeader?: string | undefined;
}

export type BuiltPayload =
  | { ok: true; payload: { [key: string]: JsonValue } }
  | { ok: false; message: string };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

function parseBody(
  raw: Buffer,
  contentType: string | undefined,
): { ok: true; body: JsonValue; base64?: true } | { ok: false; message: string } {
  if (raw.length === 0) return { ok: true, body: null };
  const type = mediaType(contentType);
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    return { ok: true, body: raw.toString('base64'), base64: true };
  }
  if (type === 'application/json' || type.endsWith('+json')) {
    try {
      return { ok: true, body: JSON.parse(text) as JsonValue };
    } catch (e) {
      return { ok: false, message: `the body is not valid JSON (${(e as Error).message})` };
    }
  }
  if (type === 'application/x-www-form-urlencoded')
    return { ok: true, body: fieldsOf(new URLSearchParams(text)) };
  // Text PostgreSQL cannot store (NUL characters) travels as base64, like any binary body.
  if (text.includes('\0')) return { ok: true, body: raw.toString('base64'), base64: true };
  return { ok: true, body: text };
}

// Objects are built with Object.fromEntries, which defines own properties: a field named
// `__proto__` stays a field and never becomes a prototype.
function fieldsOf(entries: Iterable<[string, string]>): { [key: string]: JsonValue } {
  const fields = new Map<string, string | string[]>();
  for (const [k, v] of entries) {
    const cur = fields.get(k);
    if (cur === undefined) fields.set(k, v);
    else if (Array.isArray(cur)) cur.push(v);
    else fields.set(k, [cur, v]);
  }
  return Object.fromEntries(fields);
}

function queryOf(query: unknown, signatureHeader: string | undefined): { [key: string]: JsonValue } {
  if (typeof query !== 'object' || query === null) return {};
  const kept: [string, JsonValue][] = [];
  for (const [k, v] of Object.entries(query as Record<string, unknown>)) {
    if (isHiddenField(k.toLowerCase(), signatureHeader)) continue;
    if (typeof v === 'string') kept.push([k, v]);
    else if (Array.isArray(v)) kept.push([k, v.map(String)]);
  }
  return Object.fromEntries(kept);
}

export function buildWebhookPayload(r: WebhookRequest): BuiltPayload {
  const parsed = parseBody(r.body, r.contentType);
  if (!parsed.ok) return parsed;
  const kept: [string, string][] = [];
  for (const [name, value] of Object.entries(r.headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || isHiddenField(lower, r.signatureHeader)) continue;
    kept.push([lower, Array.isArray(value) ? value.join(', ') : value]);
  }
  const headers: { [key: string]: JsonValue } = Object.fromEntries(kept);
  const payload: { [key: string]: JsonValue } = {
    body: parsed.body,
    headers,
    query: queryOf(r.query, r.signatureHeader),
    method: r.method,
    remote_ip: r.remoteIp,
  };
  if (parsed.base64) payload.body_encoding = 'base64';
  // PostgreSQL stores no NUL character in JSON text (a JSON body or a query field may carry one).
  if (JSON.stringify(payload).includes('\\u0000'))
    return { ok: false, message: 'the request carries a NUL character (\\u0000), which cannot be stored' };
  return { ok: true, payload };
}
