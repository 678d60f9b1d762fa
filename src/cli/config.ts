/**
 * The CLI's own configuration: named profiles in `$XDG_CONFIG_HOME/attune/config.yaml`
 * (`~/.config/attune/config.yaml` by default, `ATTUNE_CLI_CONFIG` to put it elsewhere). A profile holds a
 * server URL, the login used there and the current session's tokens, so the file is written with
 * mode 0600 (its folder 0700), atomically (a temporary file renamed over it).
 *
 *   current_profile: default
 *   profiles:
 *     default:
 *       url: http://127.0.0.1:8080
 *       user: admin
 *       access_token: …
 *       access_expires_at: 2025-01-01T13:00:00.000Z
 *       refresh_token: …
 *       refresh_expires_at: 2025-01-08T12:00:00.000Z
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { CliError, UsageError } from './errors.ts';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
export const DEFAULT_PROFILE = 'default';
const PROFILE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface Profile {
  url?: string;
  user?: string;
  access_token?: string;
  access_expires_at?: string;
  refresh_token?: string;
  refresh_expires_at?: string;
}

export interface ConfigDoc {
  current_profile?: string;
  profiles: Record<string, Profile>;
}

export type Env = Record<string, string | undefined>;

/** Where the configuration file lives for this environment. */
export function configPath(env: Env = process.env): string {
  if (env.ATTUNE_CLI_CONFIG) return path.resolve(env.ATTUNE_CLI_CONFIG);
  const base =
    env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME)
      ? env.XDG_CONFIG_HOME
      : path.join(env.HOME || os.homedir(), '.config');
  return path.join(base, 'attune', 'config.yaml');
}

export function checkProfileName(name: string): string {
  if (!PROFILE_NAME.test(name))
    throw new UsageError(
      `'${name}' is not a valid profile name (letters, digits, '_', '.', '-'; at most 64 characters)`,
    );
  return name;
}

/** `example.org:8080` → `http://example.org:8080`; trailing slashes removed; 2 for anything unusable. */
export function normalizeUrl(raw: string): string {
  const s = raw.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(s) ? s : `http://${s}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    throw new UsageError(`'${raw}' is not a URL (expected e.g. http://127.0.0.1:8080)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`'${raw}' is not an http:// or https:// URL`);
  if (u.username || u.password)
    throw new UsageError('put no credentials in the URL; use `attune login` or ATTUNE_API_KEY');
  if (u.search || u.hash) throw new UsageError(`'${raw}' must not have a query or fragment`);
  return `${u.origin}${u.pathname.replace(/\/+$/, '')}`;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const PROFILE_KEYS: (keyof Profile)[] = [
  'url',
  'user',
  'access_token',
  'access_expires_at',
  'refresh_token',
  'refresh_expires_at',
];

/** Reads and writes the configuration file. */
export class ConfigStore {
  readonly file: string;

  constructor(env: Env = process.env) {
    this.file = configPath(env);
  }

  /** The document on disk (empty when there is no file yet). */
  read(): ConfigDoc {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
      throw new CliError(`cannot read ${this.file}: ${(e as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch (e) {
      throw new CliError(
        `${this.file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`,
        1,
        undefined,
        'fix or delete the file, then log in again',
      );
    }
    if (raw === null || raw === undefined) return { profiles: {} };
    if (!isObject(raw)) throw new CliError(`${this.file} must be a mapping with 'profiles'`);
    const doc: ConfigDoc = { profiles: {} };
    if (typeof raw.current_profile === 'string') doc.current_profile = raw.current_profile;
    if (isObject(raw.profiles))
      for (const [name, p] of Object.entries(raw.profiles)) {
        if (!isObject(p)) continue;
        const profile: Profile = {};
        for (const k of PROFILE_KEYS) if (typeof p[k] === 'string') profile[k] = p[k];
        doc.profiles[name] = profile;
      }
    return doc;
  }

  /** Writes the whole document atomically, readable by the owner only. */
  write(doc: ConfigDoc): void {
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.${Date.now()}.tmp`;
    const body =
      '# Attune command line profiles. Holds session tokens: keep it private (mode 0600).\n' +
      // the current profile first, for the person reading the file
      toYaml({ current_profile: doc.current_profile, profiles: doc.profiles }, { lineWidth: 0 });
    try {
      fs.writeFileSync(tmp, body, { mode: 0o600 });
      fs.chmodSync(tmp, 0o600);
      fs.renameSync(tmp, this.file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw new CliError(`cannot write ${this.file}: ${(e as Error).message}`);
    }
  }

  /** Changes one profile (created when missing; the current one when there is none) and writes the file. */
  update(name: string, change: (p: Profile) => Profile): Profile {
    const doc = this.read();
    const next = change({ ...(doc.profiles[name] ?? {}) });
    for (const k of PROFILE_KEYS) if (next[k] === undefined) delete next[k];
    doc.profiles[name] = next;
    if (!doc.current_profile) doc.current_profile = name;
    this.write(doc);
    return next;
  }

  /**
   * Runs `fn` holding an exclusive lock next to the file, so that two commands refreshing the same
   * session at once do not both present the (single-use) refresh token. A lock older than 30 s is
   * taken to be left over from a killed process.
   */
  async withLock<T>(fn: () => Promise<T>): Promise<T> {
    const lock = `${this.file}.lock`;
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const deadline = Date.now() + 15_000;
    for (;;) {
      try {
        fs.closeSync(fs.openSync(lock, 'wx', 0o600));
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
          throw new CliError(`cannot lock ${lock}: ${(e as Error).message}`);
        try {
          if (Date.now() - fs.statSync(lock).mtimeMs > 30_000) fs.rmSync(lock, { force: true });
        } catch {
          /* removed meanwhile */
        }
        if (Date.now() > deadline) throw new CliError(`${lock} is held by another attune command; try again`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    try {
      return await fn();
    } finally {
      fs.rmSync(lock, { force: true });
    }
  }
}
