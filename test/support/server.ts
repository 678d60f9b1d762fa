/**
 * A real platform for a test file: real HTTP on a random port, a fresh database on the backend
 * under test (a PGlite data directory unpacked from the template, or a new PostgreSQL database).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../src/config.ts';
import { type Platform, startPlatform } from '../../src/platform.ts';
import { BACKEND } from './backend.ts';
import { createTestDatabase } from './postgres.ts';

export const ADMIN_PASSWORD = 'admin-test-password';

export interface HttpResult<T = Record<string, unknown>> {
  status: number;
  body: T;
  headers: Headers;
}

export interface RequestOptions {
  token?: string | null;
  headers?: Record<string, string>;
  /** Sent as JSON unless `raw` is given. */
  body?: unknown;
  raw?: string | Buffer | Uint8Array;
}

export interface TestServer {
  url: string;
  platform: Platform;
  /** Access token of `admin`. */
  adminToken: string;
  request<T = Record<string, unknown>>(
    method: string,
    urlPath: string,
    opts?: RequestOptions,
  ): Promise<HttpResult<T>>;
  /** Logs in and returns an access token. */
  login(login: string, password: string): Promise<string>;
  stop(): Promise<void>;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON bodies
export type AnyBody = any;

export async function startTestServer(env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-test-'));
  let dropDb: (() => Promise<void>) | undefined;
  const fullEnv: Record<string, string> = {
    ATTUNE_DATA_DIR: dataDir,
    ATTUNE_PORT: '0',
    ATTUNE_HOST: '127.0.0.1',
    ATTUNE_ADMIN_PASSWORD: ADMIN_PASSWORD,
    ATTUNE_LOGIN_RATE_LIMIT: '1000',
    ...env,
  };
  if (BACKEND === 'postgres' && !fullEnv.ATTUNE_DATABASE_URL) {
    const db = await createTestDatabase();
    fullEnv.ATTUNE_DATABASE_URL = db.url;
    dropDb = db.drop;
  }
  const config = loadConfig(fullEnv, dataDir);
  const platform = await startPlatform(config, {
    logger: pino({ level: process.env.ATTUNE_TEST_LOG ?? 'silent' }),
  });
  const url = platform.url;

  const request = async <T>(
    method: string,
    urlPath: string,
    opts: RequestOptions = {},
  ): Promise<HttpResult<T>> => {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | Buffer | Uint8Array | undefined;
    if (opts.raw !== undefined) body = opts.raw;
    else if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(url + urlPath, { method, headers, body: body as string | undefined });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed as T, headers: res.headers };
  };
  const login = async (loginName: string, password: string): Promise<string> => {
    const r = await request<AnyBody>('POST', '/auth/login', { body: { login: loginName, password } });
    if (r.status !== 200) throw new Error(`login ${loginName} failed: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body.data.access_token as string;
  };
  let adminToken = '';
  try {
    adminToken = await login('admin', ADMIN_PASSWORD);
  } catch {
    // login routes may not exist yet in an early build; tests that need a token will fail clearly
  }
  return {
    url,
    platform,
    adminToken,
    request,
    login,
    async stop() {
      await platform.stop();
      await dropDb?.();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
