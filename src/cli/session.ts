/**
 * Where the CLI's credentials come from: `ATTUNE_API_KEY`, or the session saved in a profile by
 * `attune login`. A session's access token is renewed with its refresh token when it is about to
 * expire (or the server refused it), and the new pair is saved; the refresh happens under a lock, and
 * a pair renewed meanwhile by another command is adopted rather than renewed again (refresh tokens
 * are single-use: presenting one twice ends every session of the identity).
 */
import { ApiClient, type Credentials } from './client.ts';
import type { ConfigStore, Profile } from './config.ts';
import { ApiError } from './errors.ts';

/** Renew this long before the access token expires. */
const EARLY_MS = 30_000;

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  refresh_expires_in?: number;
}

/** The profile fields of a token pair answered at `now`. */
export function tokensToProfile(pair: TokenPair, now = Date.now()): Profile {
  const p: Profile = {
    access_token: pair.access_token,
    access_expires_at: new Date(now + pair.expires_in * 1000).toISOString(),
    refresh_token: pair.refresh_token,
  };
  if (pair.refresh_expires_in !== undefined)
    p.refresh_expires_at = new Date(now + pair.refresh_expires_in * 1000).toISOString();
  return p;
}

export const withoutTokens = (p: Profile): Profile => {
  const { access_token, access_expires_at, refresh_token, refresh_expires_at, ...rest } = p;
  return rest;
};

const expired = (iso: string | undefined, margin = 0): boolean => {
  if (!iso) return false;
  const t = Date.parse(iso);
  return Number.isFinite(t) && t - margin <= Date.now();
};

export class ApiKeyCredentials implements Credentials {
  constructor(private readonly key: string) {}
  async headers() {
    return { 'x-api-key': this.key };
  }
  async renew() {
    return false;
  }
  refused(err: ApiError): ApiError {
    return new ApiError(
      401,
      err.code,
      `the API key in ATTUNE_API_KEY was refused: ${err.message}`,
      err.details,
      'check the key (`attune api-key list`), or unset ATTUNE_API_KEY to use your login',
    );
  }
}

export class SessionCredentials implements Credentials {
  private profile: Profile;
  /** Whether the profile held a session for this URL when the command started. */
  private readonly hadSession: boolean;

  constructor(
    private readonly store: ConfigStore,
    private readonly profileName: string,
    private readonly url: string,
    profile: Profile,
    private readonly debug?: (line: string) => void,
  ) {
    this.profile = profile;
    this.hadSession = this.loggedIn;
  }

  /** Whether there is a session for this URL at all. */
  get loggedIn(): boolean {
    return !!this.profile.access_token || !!this.profile.refresh_token;
  }

  async headers(): Promise<Record<string, string>> {
    if (!this.loggedIn) return {};
    if (
      (!this.profile.access_token || expired(this.profile.access_expires_at, EARLY_MS)) &&
      this.profile.refresh_token
    )
      await this.refresh(this.profile.access_token);
    return this.profile.access_token ? { authorization: `Bearer ${this.profile.access_token}` } : {};
  }

  async renew(): Promise<boolean> {
    if (!this.profile.refresh_token) return false;
    return this.refresh(this.profile.access_token);
  }

  refused(err: ApiError): ApiError {
    if (!this.hadSession)
      return new ApiError(
        401,
        err.code,
        `not logged in to ${this.url}`,
        err.details,
        this.profileName === 'default'
          ? 'run `attune login`'
          : `run \`attune login --profile ${this.profileName}\``,
      );
    return new ApiError(
      401,
      err.code,
      `your session at ${this.url} has ended: ${err.message}`,
      err.details,
      'log in again with `attune login`',
    );
  }

  /**
   * Exchanges the refresh token for a new pair and saves it. `stale` is the access token the caller
   * found wanting: when the profile on disk already holds another one, that one is adopted.
   */
  private async refresh(stale: string | undefined): Promise<boolean> {
    return this.store.withLock(async () => {
      const onDisk = this.store.read().profiles[this.profileName] ?? {};
      if (
        onDisk.url === this.url &&
        onDisk.access_token &&
        onDisk.access_token !== stale &&
        !expired(onDisk.access_expires_at, EARLY_MS)
      ) {
        this.profile = onDisk;
        return true;
      }
      const token =
        onDisk.url === this.url && onDisk.refresh_token ? onDisk.refresh_token : this.profile.refresh_token;
      if (!token || expired(onDisk.refresh_expires_at)) {
        this.forget();
        return false;
      }
      const anon = new ApiClient({ baseUrl: this.url, debug: this.debug });
      let pair: TokenPair;
      try {
        pair = await anon.data<TokenPair>('POST', '/auth/refresh', {
          body: { refresh_token: token },
          anonymous: true,
        });
      } catch (e) {
        // a refused refresh token will never work again: forget the session
        if (e instanceof ApiError && (e.status === 401 || e.status === 400)) {
          this.forget();
          return false;
        }
        throw e;
      }
      this.profile = this.store.update(this.profileName, (p) => ({
        ...p,
        url: this.url,
        ...tokensToProfile(pair),
      }));
      return true;
    });
  }

  private forget(): void {
    this.profile = this.store.update(this.profileName, (p) => withoutTokens(p));
  }
}
