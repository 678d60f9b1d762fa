/**
 * Creating a PGlite database runs initdb inside WASM: 4–6 s and ~750 MB. Instead, a template
 * (an initialised, fully migrated data directory, as a gzipped tar) is built once per migration set
 * and unpacked into every new data directory (~0.2 s), which then opens like an existing database.
 * The template is built by `npm ci` (postinstall) or, failing that, on first use.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import * as tar from 'tar';

const here = path.dirname(fileURLToPath(import.meta.url));
const migrationsDir = path.join(here, 'migrations');
const projectRoot = path.resolve(here, '..', '..');

function templateKey(): string {
  const h = createHash('sha256');
  const pkg = JSON.parse(
    fs.readFileSync(
      path.join(projectRoot, 'node_modules', '@electric-sql', 'pglite', 'package.json'),
      'utf8',
    ),
  ) as { version: string };
  h.update(pkg.version);
  for (const f of fs.readdirSync(migrationsDir).sort()) {
    if (f.endsWith('.sql')) h.update(f).update(fs.readFileSync(path.join(migrationsDir, f)));
  }
  return h.digest('hex').slice(0, 16);
}

function cacheDir(): string {
  const preferred = path.join(projectRoot, 'node_modules', '.cache', 'attune');
  try {
    fs.mkdirSync(preferred, { recursive: true });
    fs.accessSync(preferred, fs.constants.W_OK);
    return preferred;
  } catch {
    const fallback = path.join(os.tmpdir(), 'attune-cache');
    fs.mkdirSync(fallback, { recursive: true });
    return fallback;
  }
}

export function templatePath(): string {
  return path.join(cacheDir(), `pglite-template-${templateKey()}.tar.gz`);
}

/** Builds the template if it is missing; returns its path. Safe to call from several processes at once. */
export async function ensureTemplate(): Promise<string> {
  const file = templatePath();
  if (fs.existsSync(file)) return file;
  const client = await PGlite.create();
  try {
    await migrate(drizzle({ client }), { migrationsFolder: migrationsDir });
    await client.query('CHECKPOINT');
    const blob = await client.dumpDataDir('gzip');
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, Buffer.from(await blob.arrayBuffer()));
    fs.renameSync(tmp, file);
  } finally {
    await client.close();
  }
  return file;
}

/** A directory holds a database when it has PG_VERSION. */
export const isPgliteDataDir = (dir: string): boolean => fs.existsSync(path.join(dir, 'PG_VERSION'));

/** Makes `dir` a ready PGlite data directory (unpacking the template when it is new). */
export async function preparePgliteDataDir(dir: string): Promise<void> {
  if (isPgliteDataDir(dir)) return;
  const file = await ensureTemplate();
  const staging = `${dir}.unpacking-${process.pid}`;
  fs.rmSync(staging, { recursive: true, force: true });
  fs.mkdirSync(staging, { recursive: true });
  await tar.x({ file, cwd: staging }); // entries are absolute ('/base/…'); tar strips the leading '/'
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  fs.renameSync(staging, dir);
}
