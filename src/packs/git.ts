/**
 * Fetching a pack from a git repository: a shallow clone (`git clone --depth 1`) of a branch, a tag
 * or a full commit id, in a child process with a deadline, non-interactive (no credential prompts),
 * limited to the usual transports (https, http, ssh, git, file — local paths included).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { badRequest } from '../domain/errors.ts';

export const GIT_TIMEOUT_MS = 120_000;

export interface CloneOptions {
  ref?: string | undefined;
  timeoutMs?: number;
  /** Called with the local directory of a `file://` URL or a plain path; throws when it is not allowed. */
  checkLocalPath?: (dir: string) => void;
}

export interface CloneResult {
  /** The commit checked out. */
  commit: string;
}

/** The URL with any user name or password replaced, for messages and records. */
export const redactUrl = (url: string): string => url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/]*@/i, '$1***@');

const SCP_LIKE = /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$/;
const SCHEMES = ['https:', 'http:', 'ssh:', 'git:', 'file:'];
const SHA_RE = /^[0-9a-f]{40}$/i;

/** Checks the URL and returns the local directory it names, if it is local. */
export function checkGitUrl(url: string): { local?: string } {
  const bad = (why: string) => badRequest(`git url ${why}`, { field: 'url' });
  if (!url.trim() || url !== url.trim()) throw bad('must be a non-empty URL without surrounding spaces');
  if (url.startsWith('-')) throw bad("must not start with '-'");
  if (/[\0\n\r]/.test(url)) throw bad('must not contain control characters');
  if (url.startsWith('/')) return { local: url };
  if (SCP_LIKE.test(url)) return {};
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw bad(
      `'${redactUrl(url)}' is not a URL (https://…, ssh://…, git@host:path, file://…, or an absolute path)`,
    );
  }
  if (!SCHEMES.includes(u.protocol))
    throw bad(`scheme '${u.protocol}' is not allowed; use ${SCHEMES.map((s) => s.slice(0, -1)).join(', ')}`);
  if (u.protocol === 'file:') return { local: fileURLToPath(u) };
  return {};
}

export function checkGitRef(ref: string): void {
  const ok =
    ref.length > 0 &&
    ref.length <= 255 &&
    /^[A-Za-z0-9._/+-]+$/.test(ref) &&
    !ref.startsWith('-') &&
    !ref.includes('..') &&
    !ref.endsWith('.lock') &&
    !ref.startsWith('/') &&
    !ref.endsWith('/');
  if (!ok) throw badRequest(`'${ref}' is not a valid git branch, tag or commit id`, { field: 'ref' });
}

/** Clones `url` (at `ref`) into `dest`, which must not exist yet. */
export async function gitClone(url: string, dest: string, opts: CloneOptions = {}): Promise<CloneResult> {
  const { local } = checkGitUrl(url);
  if (local !== undefined) opts.checkLocalPath?.(local);
  if (opts.ref !== undefined) checkGitRef(opts.ref);
  const timeoutMs = opts.timeoutMs ?? GIT_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  const remaining = () => Math.max(1, deadline - Date.now());
  const shown = { real: url, shown: redactUrl(url) };
  const ref = opts.ref;
  if (ref && SHA_RE.test(ref)) {
    fs.mkdirSync(dest, { recursive: true });
    await git(['init', '--quiet', dest], remaining(), shown);
    await git(['-C', dest, 'fetch', '--quiet', '--depth', '1', '--', url, ref], remaining(), shown);
    await git(['-C', dest, 'checkout', '--quiet', '--detach', 'FETCH_HEAD'], remaining(), shown);
  } else {
    const args = ['clone', '--quiet', '--depth', '1', '--single-branch', '--no-tags'];
    if (ref) args.push('--branch', ref);
    args.push('--', url, dest);
    await git(args, remaining(), shown);
  }
  const commit = (await git(['-C', dest, 'rev-parse', 'HEAD'], remaining(), shown)).trim();
  return { commit };
}

/** Runs git; resolves with stdout, or throws a 400 with git's own explanation. */
function git(args: string[], timeoutMs: number, u: { real: string; shown: string }): Promise<string> {
  const redact = (s: string) => s.split(u.real).join(u.shown);
  return new Promise((resolve, reject) => {
    const child = spawn(
      'git',
      ['-c', 'core.hooksPath=/dev/null', '-c', 'advice.detachedHead=false', ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: {
          ...process.env,
          GIT_TERMINAL_PROMPT: '0',
          GIT_ASKPASS: 'echo',
          SSH_ASKPASS: 'echo',
          GIT_SSH_COMMAND:
            process.env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new',
          GIT_ALLOW_PROTOCOL: 'file:git:http:https:ssh',
          GIT_LFS_SKIP_SMUDGE: '1',
          LC_ALL: 'C',
        },
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      if (out.length < 1_000_000) out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      if (err.length < 100_000) err += c.toString();
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(
        badRequest(
          (e as NodeJS.ErrnoException).code === 'ENOENT'
            ? 'git is not installed on the server'
            : `could not run git: ${e.message}`,
        ),
      );
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut)
        return reject(badRequest(`git did not finish within ${Math.round(timeoutMs / 1000)} s (${u.shown})`));
      if (code === 0) return resolve(out);
      const lines = err
        .split('\n')
        .map((l) => redact(l.trim()))
        .filter((l) => l && !l.startsWith('warning:') && !l.startsWith('hint:'));
      const why = (lines.find((l) => l.startsWith('fatal:')) ?? lines.at(-1) ?? `exit code ${code}`).replace(
        /^fatal:\s*/,
        '',
      );
      reject(badRequest(`could not fetch ${u.shown}: ${why}`, { git: lines.slice(-5) }));
    });
  });
}
