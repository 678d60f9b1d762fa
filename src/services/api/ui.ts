/**
 * Serves the web UI (the static build in web/dist) at `/`. Any GET that no API route answers gets
 * the file it names, or index.html for the UI's own paths (the UI routes in the browser). Hashed
 * assets are cached for a year; index.html is revalidated on every load so a new build shows up at
 * once. Paths of the API (`/api/…`, `/auth/…`, …) keep the uniform JSON 404. The UI needs no
 * credentials to load: it signs in through the API.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './errors.ts';
import type { ApiApp } from './server.ts';

export const DEFAULT_UI_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../web/dist');

/** Paths that belong to the API: never answered with the UI. */
const API_PATHS = /^\/(api|auth|api-spec|docs|health|metrics)(\/|$)/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
};

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Attune</title></head>
<body style="font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;line-height:1.5">
<h1>The web UI is not built</h1>
<p>Build it with <code>npm run build:web</code> (it is built by <code>npm ci</code> when the development
dependencies are installed), then reload this page.</p>
<p>The API is available at <a href="/docs">/docs</a>.</p></body></html>`;

interface FileHit {
  file: string;
  stat: fs.Stats;
}

function statFile(file: string): FileHit | undefined {
  try {
    const stat = fs.statSync(file);
    return stat.isFile() ? { file, stat } : undefined;
  } catch {
    return undefined;
  }
}

export interface UiOptions {
  /** The folder of the built UI (default: web/dist of this checkout). */
  dir?: string;
}

export function registerUi(app: ApiApp, opts: UiOptions = {}): void {
  const dir = path.resolve(opts.dir ?? DEFAULT_UI_DIR);

  const send = (req: FastifyRequest, reply: FastifyReply, hit: FileHit, cache: string) => {
    const ext = path.extname(hit.file).toLowerCase();
    const etag = `W/"${hit.stat.size.toString(16)}-${Math.floor(hit.stat.mtimeMs).toString(16)}"`;
    reply
      .header('content-type', TYPES[ext] ?? 'application/octet-stream')
      .header('cache-control', cache)
      .header('etag', etag)
      .header('x-content-type-options', 'nosniff')
      .header('vary', 'accept-encoding');
    if (ext === '.html') reply.header('x-frame-options', 'DENY').header('referrer-policy', 'same-origin');
    if (req.headers['if-none-match'] === etag) return reply.code(304).send();
    const gz = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
      ? statFile(`${hit.file}.gz`)
      : undefined;
    if (gz) {
      reply.header('content-encoding', 'gzip').header('content-length', gz.stat.size);
      return reply.send(fs.createReadStream(gz.file));
    }
    reply.header('content-length', hit.stat.size);
    return reply.send(fs.createReadStream(hit.file));
  };

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const raw = req.url.split('?')[0] ?? '/';
    let urlPath: string;
    try {
      urlPath = decodeURIComponent(raw);
    } catch {
      return sendError(reply, 'BAD_REQUEST', 'the path is not valid URL encoding');
    }
    if (API_PATHS.test(urlPath)) return sendError(reply, 'NOT_FOUND', `no route ${req.method} ${raw}`);
    if (urlPath.includes('\0')) return sendError(reply, 'BAD_REQUEST', 'the path contains a NUL character');
    const index = statFile(path.join(dir, 'index.html'));
    if (!index) return reply.code(503).header('content-type', 'text/html; charset=utf-8').send(NOT_BUILT);

    const file = path.resolve(dir, `.${path.posix.normalize(urlPath)}`);
    const inside = file === dir || file.startsWith(dir + path.sep);
    const hit = inside && file !== dir ? statFile(file) : undefined;
    if (hit && path.basename(hit.file) !== 'index.html') {
      const immutable = urlPath.startsWith('/assets/');
      return send(req, reply, hit, immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    }
    // A missing asset is a 404, not the UI: a stale script must not get HTML. (UI paths hold refs
    // such as /actions/core.echo, so a dot alone does not make a path a file.)
    const ext = path.posix.extname(urlPath).toLowerCase();
    const topLevelFile = urlPath.lastIndexOf('/') === 0 && ext !== '' && ext !== '.html' && ext in TYPES;
    if (urlPath.startsWith('/assets/') || topLevelFile)
      return reply.code(404).header('content-type', 'text/plain; charset=utf-8').send(`not found: ${raw}\n`);
    return send(req, reply, index, 'no-cache');
  };

  const route = { config: { public: true }, schema: { hide: true } } as const;
  app.get('/', route, handler);
  app.get('/*', route, handler);
}
