/**
 * Errors of the command line and their exit codes: 1 when an operation failed (the server refused,
 * could not be reached, an execution did not succeed), 2 when the command itself was wrong (unknown
 * option, conflicting flags, a malformed `key=value`). Each becomes one line on stderr.
 */

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
/** Interrupted by Ctrl-C. */
export const EXIT_INTERRUPTED = 130;

export class CliError extends Error {
  /** Lines printed under the error line (the problems of a pack or a workflow, one each). */
  lines: string[] = [];

  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
    /** Shown with --debug. */
    readonly details?: unknown,
    /** A second line telling what to do about it. */
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The command line was wrong: exit code 2. */
export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT_USAGE, undefined, hint);
    this.name = 'UsageError';
  }
}

/** The API answered with an error body `{error: {code, message, details}}` (or something else non-2xx). */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    details?: unknown,
    hint?: string,
  ) {
    super(message, EXIT_FAILURE, details, hint);
    this.name = 'ApiError';
  }
}

/** The server could not be reached at all. */
export class ConnectionError extends CliError {
  constructor(message: string, details?: unknown) {
    super(message, EXIT_FAILURE, details);
    this.name = 'ConnectionError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The problems listed in an error's details (`[{file, line, path, message}]`, or `{problems: […]}`),
 * one readable line each: `actions/x.yaml:3 /parameters/foo: unknown key`.
 */
export function problemLines(details: unknown): string[] {
  const list = Array.isArray(details)
    ? details
    : isObject(details) && Array.isArray(details.problems)
      ? details.problems
      : [];
  const lines: string[] = [];
  for (const p of list) {
    if (!isObject(p) || typeof p.message !== 'string') continue;
    const where = [
      typeof p.file === 'string' ? `${p.file}${typeof p.line === 'number' ? `:${p.line}` : ''}` : undefined,
      typeof p.path === 'string' && p.path && p.path !== '/' ? p.path : undefined,
      typeof p.task === 'string' ? `task ${p.task}` : undefined,
    ].filter(Boolean);
    lines.push(where.length ? `${where.join(' ')}: ${p.message}` : p.message);
  }
  return lines;
}

/** `err` with the problems of its details listed under it (when it has more than its message says). */
export function withProblems<E>(err: E): E {
  if (err instanceof ApiError) {
    const lines = problemLines(err.details);
    if (lines.length > 1 || (lines.length === 1 && !err.message.includes(lines[0]!))) err.lines = lines;
  }
  return err;
}
