/** A minimal JSON client of the API for the benchmark (keep-alive connections, bearer token). */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: HTTP ${status} ${JSON.stringify(body)}`);
  }
}

export class ApiClient {
  private constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  static async login(url: string, login: string, password: string): Promise<ApiClient> {
    const anon = new ApiClient(url, '');
    const r = await anon.call<{ data: { access_token: string } }>('POST', '/auth/login', { login, password });
    return new ApiClient(url, r.data.access_token);
  }

  /** Calls the API; resolves with the parsed body of a 2xx answer, throws `ApiError` otherwise. */
  async call<T = { data: Record<string, unknown> }>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.url + path, {
        method,
        headers,
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    } catch (e) {
      const cause = (e as { cause?: { message?: string; code?: string } }).cause;
      throw new Error(
        `${method} ${path}: ${(e as Error).message}${cause ? ` (${cause.code ?? cause.message})` : ''}`,
      );
    }
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : null;
    if (res.status < 200 || res.status > 299) throw new ApiError(res.status, parsed, `${method} ${path}`);
    return parsed as T;
  }

  post<T = { data: Record<string, unknown> }>(path: string, body: unknown): Promise<T> {
    return this.call<T>('POST', path, body);
  }
}
