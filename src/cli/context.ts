/**
 * What every command works with: the global options resolved against the environment and the
 * configuration file — the output format, the profile, the server URL, the credentials and the API
 * client built from them.
 *
 * Precedence: `--url` > `ATTUNE_URL` > the profile's URL > http://127.0.0.1:8080; `--profile` >
 * `ATTUNE_PROFILE` > the file's `current_profile` > `default`; `ATTUNE_API_KEY` > the profile's
 * session. A profile's tokens are only ever sent to the URL they were issued by.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ApiClient, type Credentials, NO_CREDENTIALS } from './client.ts';
import {
  ConfigStore,
  checkProfileName,
  DEFAULT_PROFILE,
  DEFAULT_URL,
  type Env,
  normalizeUrl,
  type Profile,
} from './config.ts';
import { UsageError } from './errors.ts';
import { type Format, Output } from './output.ts';
import { ApiKeyCredentials, SessionCredentials } from './session.ts';

export interface GlobalOptions {
  profile?: string;
  url?: string;
  json?: boolean;
  yaml?: boolean;
  quiet?: boolean;
  debug?: boolean;
  /** false with --no-color. */
  color?: boolean;
}

const PACKAGE_JSON = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../package.json');

export function cliVersion(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(PACKAGE_JSON, 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Whether colour may be used on a stream. */
export function colorAllowed(stream: { isTTY?: boolean }, opts: GlobalOptions, env: Env): boolean {
  if (opts.color === false) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0') return true;
  if (env.TERM === 'dumb') return false;
  return !!stream.isTTY;
}

export function formatOf(opts: GlobalOptions): Format {
  const chosen = [opts.json && '--json', opts.yaml && '--yaml', opts.quiet && '--quiet'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`${chosen.join(' and ')} cannot be used together`);
  return opts.json ? 'json' : opts.yaml ? 'yaml' : opts.quiet ? 'quiet' : 'table';
}

function terminalColumns(env: Env): number | undefined {
  if (process.stdout.isTTY && process.stdout.columns) return process.stdout.columns;
  const n = Number(env.COLUMNS);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

export class Ctx {
  readonly env: Env;
  readonly opts: GlobalOptions;
  readonly out: Output;
  readonly config: ConfigStore;
  readonly debug: boolean;
  private _profileName: string | undefined;
  private _api: ApiClient | undefined;
  private _credentials: Credentials | undefined;

  constructor(opts: GlobalOptions, env: Env = process.env) {
    this.env = env;
    this.opts = opts;
    this.debug = !!opts.debug;
    this.out = new Output({
      format: formatOf(opts),
      color: colorAllowed(process.stdout, opts, env),
      errColor: colorAllowed(process.stderr, opts, env),
      columns: terminalColumns(env),
    });
    this.config = new ConfigStore(env);
    if (opts.url !== undefined) normalizeUrl(opts.url);
    if (opts.profile !== undefined) checkProfileName(opts.profile);
  }

  /** Builds the context of a command from its options and those of its parents. */
  static of(cmd: Command, env: Env = process.env): Ctx {
    return new Ctx(cmd.optsWithGlobals<GlobalOptions>(), env);
  }

  get profileName(): string {
    this._profileName ??= checkProfileName(
      this.opts.profile ?? (this.env.ATTUNE_PROFILE || this.config.read().current_profile || DEFAULT_PROFILE),
    );
    return this._profileName;
  }

  profile(): Profile {
    return this.config.read().profiles[this.profileName] ?? {};
  }

  /** The server this command talks to. */
  get url(): string {
    if (this.opts.url !== undefined) return normalizeUrl(this.opts.url);
    if (this.env.ATTUNE_URL) return normalizeUrl(this.env.ATTUNE_URL);
    const p = this.profile();
    return p.url ? normalizeUrl(p.url) : DEFAULT_URL;
  }

  /** Where the credentials come from. */
  get authSource(): 'api_key' | 'session' | 'none' {
    if (this.env.ATTUNE_API_KEY) return 'api_key';
    const p = this.profile();
    return p.url && normalizeUrl(p.url) === this.url && (p.access_token || p.refresh_token)
      ? 'session'
      : 'none';
  }

  debugLine = (line: string): void => {
    if (this.debug) process.stderr.write(`${this.out.e.dim(`[debug] ${line}`)}\n`);
  };

  credentials(): Credentials {
    if (this._credentials) return this._credentials;
    const key = this.env.ATTUNE_API_KEY;
    this._credentials = key ? new ApiKeyCredentials(key.trim()) : this.sessionCredentials();
    return this._credentials;
  }

  /** The profile's session for this URL, whatever ATTUNE_API_KEY says (logout ends the session). */
  sessionCredentials(): SessionCredentials {
    const p = this.profile();
    const url = this.url;
    // tokens only go back to the server that issued them
    const usable = p.url && normalizeUrl(p.url) === url ? p : {};
    return new SessionCredentials(this.config, this.profileName, url, usable, this.debugLine);
  }

  /** The API client for this command (credentials included). */
  api(): ApiClient {
    this._api ??= new ApiClient({
      baseUrl: this.url,
      credentials: this.credentials(),
      debug: this.debugLine,
      userAgent: `attune-cli/${cliVersion()}`,
    });
    return this._api;
  }

  /** An API client with the given credentials (none by default, as for login). */
  clientFor(url = this.url, credentials: Credentials = NO_CREDENTIALS): ApiClient {
    return new ApiClient({
      baseUrl: url,
      credentials,
      debug: this.debugLine,
      userAgent: `attune-cli/${cliVersion()}`,
    });
  }
}
