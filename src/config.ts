/**
 * Configuration: environment variables, optionally preceded by a YAML file (`ATTUNE_CONFIG`, or
 * `attune.yaml` in the working directory). Environment variables win over the file.
 * Every variable is documented in the README.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** Unset = embedded PGlite in `dataDir/db`. */
  databaseUrl: string | undefined;
  /** Unset = in-process bus. */
  amqpUrl: string | undefined;
  /** Keeps deployments sharing one RabbitMQ apart (exchange and queue-name prefix). */
  amqpNamespace: string | undefined;
  adminPassword: string | undefined;
  encryptionKey: string | undefined;
  jwtSecret: string | undefined;
  logLevel: string;
  /** Login attempts allowed per client per minute. */
  loginRateLimit: number;
  /** Largest request body accepted, in bytes. */
  bodyLimit: number;
  /** Largest pack upload accepted, in bytes. */
  packUploadLimit: number;
  /** Directories from which `POST /packs/install {path}` may install (empty = any). */
  packPathAllowlist: string[];
  /** Executions one worker process runs at once. */
  workerCapacity: number;
  /** `json`, `pretty`, or undefined: pretty on a terminal, JSON otherwise. */
  logFormat: 'json' | 'pretty' | undefined;
  /** `GET /metrics` answers without authentication (for scrapers on a private network). */
  metricsPublic: boolean;
  /** Port of a metrics-only HTTP listener in processes that run no API (unset = none). */
  metricsPort: number | undefined;
}

const KEYS: Record<keyof Config, string> = {
  port: 'ATTUNE_PORT',
  host: 'ATTUNE_HOST',
  dataDir: 'ATTUNE_DATA_DIR',
  databaseUrl: 'ATTUNE_DATABASE_URL',
  amqpUrl: 'ATTUNE_AMQP_URL',
  amqpNamespace: 'ATTUNE_AMQP_NAMESPACE',
  adminPassword: 'ATTUNE_ADMIN_PASSWORD',
  encryptionKey: 'ATTUNE_ENCRYPTION_KEY',
  jwtSecret: 'ATTUNE_JWT_SECRET',
  logLevel: 'ATTUNE_LOG_LEVEL',
  loginRateLimit: 'ATTUNE_LOGIN_RATE_LIMIT',
  bodyLimit: 'ATTUNE_BODY_LIMIT',
  packUploadLimit: 'ATTUNE_PACK_UPLOAD_LIMIT',
  packPathAllowlist: 'ATTUNE_PACK_PATHS',
  workerCapacity: 'ATTUNE_WORKER_CAPACITY',
  logFormat: 'ATTUNE_LOG_FORMAT',
  metricsPublic: 'ATTUNE_METRICS_PUBLIC',
  metricsPort: 'ATTUNE_METRICS_PORT',
};

export class ConfigError extends Error {}

function intOf(name: string, raw: string | undefined, dflt: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return dflt;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ConfigError(`${name} must be an integer between ${min} and ${max}, got '${raw}'`);
  return n;
}

function boolOf(name: string, raw: string | undefined, dflt: boolean): boolean {
  if (raw === undefined || raw === '') return dflt;
  const v = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false, got '${raw}'`);
}

function logFormatOf(raw: string | undefined): Config['logFormat'] {
  if (raw === undefined || raw === '') return undefined;
  const v = raw.trim().toLowerCase();
  if (v === 'json' || v === 'pretty') return v;
  throw new ConfigError(`ATTUNE_LOG_FORMAT must be json or pretty, got '${raw}'`);
}

/** Reads the configuration. `env` defaults to `process.env`; tests pass their own. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Config {
  const file =
    env.ATTUNE_CONFIG ?? (fs.existsSync(path.join(cwd, 'attune.yaml')) ? 'attune.yaml' : undefined);
  const fromFile: Record<string, string> = {};
  if (file) {
    let doc: unknown;
    try {
      doc = parseYaml(fs.readFileSync(path.resolve(cwd, file), 'utf8'));
    } catch (e) {
      throw new ConfigError(`cannot read config file ${file}: ${(e as Error).message}`);
    }
    if (doc !== null && doc !== undefined) {
      if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`${file} must be a mapping`);
      for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
        // accept both `port: 8080` and `ATTUNE_PORT: 8080`
        const envName = k.startsWith('ATTUNE_') ? k : KEYS[k as keyof Config];
        if (!envName) throw new ConfigError(`${file}: unknown setting '${k}'`);
        fromFile[envName] = Array.isArray(v) ? v.join(',') : String(v);
      }
    }
  }
  const get = (k: keyof Config): string | undefined => {
    const v = env[KEYS[k]] ?? fromFile[KEYS[k]];
    return v === '' ? undefined : v;
  };
  return {
    port: intOf('ATTUNE_PORT', get('port'), 8080, 0, 65535),
    host: get('host') ?? '127.0.0.1',
    dataDir: path.resolve(cwd, get('dataDir') ?? '.attune'),
    databaseUrl: get('databaseUrl'),
    amqpUrl: get('amqpUrl'),
    amqpNamespace: get('amqpNamespace'),
    adminPassword: get('adminPassword'),
    encryptionKey: get('encryptionKey'),
    jwtSecret: get('jwtSecret'),
    logLevel: get('logLevel') ?? 'info',
    loginRateLimit: intOf('ATTUNE_LOGIN_RATE_LIMIT', get('loginRateLimit'), 10, 1, 100000),
    bodyLimit: intOf('ATTUNE_BODY_LIMIT', get('bodyLimit'), 1048576, 1024, 1073741824),
    packUploadLimit: intOf('ATTUNE_PACK_UPLOAD_LIMIT', get('packUploadLimit'), 104857600, 1024, 1073741824),
    packPathAllowlist: (get('packPathAllowlist') ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((p) => path.resolve(cwd, p)),
    workerCapacity: intOf('ATTUNE_WORKER_CAPACITY', get('workerCapacity'), 32, 1, 10_000),
    logFormat: logFormatOf(get('logFormat')),
    metricsPublic: boolOf('ATTUNE_METRICS_PUBLIC', get('metricsPublic'), false),
    metricsPort:
      get('metricsPort') === undefined
        ? undefined
        : intOf('ATTUNE_METRICS_PORT', get('metricsPort'), 0, 0, 65535),
  };
}
