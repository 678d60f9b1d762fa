/**
 * Installing a pack: fetch (server path, git, uploaded archive) into a staging directory of ours,
 * load and validate everything (nothing is written when anything is wrong: every problem is returned
 * with its file and line), then register all of it in one transaction and switch the pack's files to
 * the new version. Used by `POST /api/v1/packs/install` and, for the shipped packs, at start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import semver from 'semver';
import { AppError, badRequest, conflict, forbidden, type Problem, unprocessable } from '../domain/errors.ts';
import type { ApiContext } from '../services/api/context.ts';
import { packs } from '../store/schema.ts';
import { BadArchiveError, extractArchive } from './archive.ts';
import { gitClone, redactUrl } from './git.ts';
import { activate, activeDir, makeStaging, pruneVersions, versionDir } from './installed-files.ts';
import { type LoadedPack, loadPack, sortProblems } from './loader.ts';
import { checkAgainstStore } from './references.ts';
import { type Changes, type PackSource, registerPack } from './register.ts';
import { countsOf, type PackApi, packToApi } from './summary.ts';
import {
  checksumTree,
  copyTree,
  DEFAULT_LIMITS,
  findPackRoot,
  isDirectory,
  isInside,
  listTree,
  PackTooLargeError,
} from './tree.ts';

export type InstallSource =
  | { type: 'path'; path: string }
  | { type: 'git'; url: string; ref?: string | undefined }
  | { type: 'upload'; data: Buffer };

export interface InstallRequest {
  /** Upgrade even when rules or sensors elsewhere use what the new version drops (they are disabled). */
  force?: boolean;
  /** Login of the caller (recorded as `installed_by` and in the audit log). */
  actor: string | null;
  /** May the caller replace an installed pack (the `packs:update` right)? */
  mayUpgrade: boolean;
  requestId?: string;
  ip?: string;
}

export interface InstallOutcome {
  pack: PackApi;
  operation: 'installed' | 'updated';
  previous_version: string | null;
  changes: Changes;
  /** Rules and sensors of other packs disabled because the new version dropped what they use (force). */
  disabled: { rules: string[]; sensors: string[] };
  warnings: ProblemDetail[];
}

/** A problem as the API shows it. */
export interface ProblemDetail {
  file: string | null;
  line: number | null;
  path: string;
  message: string;
}

export const toDetail = (p: Problem): ProblemDetail => ({
  file: p.file || null,
  line: p.line ?? null,
  path: p.path ?? '/',
  message: p.message,
});

/** The error of a pack with problems: 422, every problem in `details`. */
export function packProblems(problems: Problem[], ref?: string): AppError {
  const n = problems.length;
  const what = ref ? `pack '${ref}'` : 'the pack';
  return unprocessable(
    `${what} has ${n} problem${n === 1 ? '' : 's'}; nothing was installed. ${problemLine(problems[0]!)}${n > 1 ? ' …' : ''}`,
    problems.map(toDetail),
  );
}

const problemLine = (p: Problem): string =>
  `${p.file ?? ''}${p.line ? `:${p.line}` : ''}${p.file ? ': ' : ''}${p.message}`;

export async function installPack(
  ctx: ApiContext,
  src: InstallSource,
  req: InstallRequest,
): Promise<InstallOutcome> {
  const staging = makeStaging(ctx.packsDir);
  const shown = src.type === 'path' ? src.path : src.type === 'git' ? redactUrl(src.url) : 'upload';
  try {
    const fetched = path.join(staging, 'src');
    const source: PackSource = { type: src.type };
    if (src.type === 'path') {
      const dir = resolvePackPath(ctx, src.path);
      source.location = dir;
      copyInto(dir, fetched, 'path');
    } else if (src.type === 'git') {
      const clone = path.join(staging, 'clone');
      const { commit } = await gitClone(src.url, clone, {
        ref: src.ref,
        checkLocalPath: (dir) =>
          checkAllowed(ctx, fs.existsSync(dir) ? fs.realpathSync(dir) : path.resolve(dir), 'git url'),
      });
      source.location = redactUrl(src.url);
      if (src.ref) source.ref = src.ref;
      source.commit = commit;
      const root = findPackRoot(clone);
      if (!root) throw noPackYaml('the repository');
      copyInto(root, fetched, 'git');
    } else {
      try {
        const limits = {
          ...DEFAULT_LIMITS,
          maxTotalBytes: Math.max(DEFAULT_LIMITS.maxTotalBytes, ctx.config.packUploadLimit * 2),
        };
        const { problems } = await extractArchive(src.data, fetched, limits);
        if (problems.length) throw packProblems(problems);
      } catch (e) {
        if (e instanceof PackTooLargeError) throw new AppError('PAYLOAD_TOO_LARGE', e.message);
        if (e instanceof BadArchiveError) throw badRequest(e.message);
        throw e;
      }
    }
    const root = findPackRoot(fetched);
    if (!root) throw noPackYaml(src.type === 'upload' ? 'the archive' : 'the directory');
    const outcome = await registerDirectory(ctx, root, {
      source,
      allowSystem: false,
      force: req.force ?? false,
      actor: req.actor,
      mayUpgrade: req.mayUpgrade,
      move: true,
    });
    await ctx.audit({
      action: 'pack.install',
      actor: req.actor,
      resourceType: 'packs',
      resourceRef: outcome.pack.ref,
      ...(req.requestId !== undefined && { requestId: req.requestId }),
      ...(req.ip !== undefined && { ip: req.ip }),
      details: {
        operation: outcome.operation,
        version: outcome.pack.version,
        previous_version: outcome.previous_version,
        source: outcome.pack.source,
        created: countRefs(outcome.changes.created),
        updated: countRefs(outcome.changes.updated),
        removed: countRefs(outcome.changes.removed),
        disabled: outcome.disabled,
      },
    });
    return outcome;
  } catch (e) {
    await ctx.audit({
      action: 'pack.install',
      outcome: 'failure',
      actor: req.actor,
      resourceType: 'packs',
      ...(req.requestId !== undefined && { requestId: req.requestId }),
      ...(req.ip !== undefined && { ip: req.ip }),
      details: {
        source: { type: src.type, location: shown },
        error: e instanceof AppError ? e.code : 'INTERNAL_ERROR',
        message: e instanceof Error ? e.message.slice(0, 500) : String(e),
      },
    });
    throw e;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

const countRefs = (r: Changes['created']): number => Object.values(r).reduce((n, l) => n + l.length, 0);

const noPackYaml = (where: string) =>
  packProblems([
    {
      file: 'pack.yaml',
      path: '/',
      message: `no pack.yaml in ${where} (at its root or in its single top folder)`,
    },
  ]);

function copyInto(from: string, to: string, kind: 'path' | 'git'): void {
  try {
    const { problems } = copyTree(from, to);
    if (problems.length) throw packProblems(problems);
  } catch (e) {
    if (e instanceof PackTooLargeError)
      throw packProblems([{ file: '', path: '/', message: `${e.message} (${kind} source)` }]);
    throw e;
  }
}

/** The directory a `path` source names: absolute, or relative to the working directory (else to the product's folder). */
export function resolvePackPath(ctx: ApiContext, p: string): string {
  if (!p.trim() || p.includes('\0')) throw badRequest('path must name a directory', { field: 'path' });
  let abs = path.resolve(p);
  if (!fs.existsSync(abs) && !path.isAbsolute(p)) {
    const alt = path.resolve(path.dirname(ctx.builtinPacksDir), p);
    if (fs.existsSync(alt)) abs = alt;
  }
  if (!fs.existsSync(abs))
    throw badRequest(`no such directory on the server: ${p}`, { field: 'path', path: p });
  const real = fs.realpathSync(abs);
  if (!isDirectory(real)) throw badRequest(`not a directory: ${p}`, { field: 'path', path: p });
  checkAllowed(ctx, real, 'path');
  const root = findPackRoot(real);
  if (!root) throw noPackYaml(`directory ${p}`);
  return root;
}

/** With ATTUNE_PACK_PATHS set, local sources must lie inside one of its directories (or the shipped packs). */
function checkAllowed(ctx: ApiContext, real: string, what: string): void {
  const list = ctx.config.packPathAllowlist;
  if (!list.length) return;
  const roots = [...list, ctx.builtinPacksDir].map((d) => {
    try {
      return fs.realpathSync(d);
    } catch {
      return path.resolve(d);
    }
  });
  if (!roots.some((r) => isInside(r, real)))
    throw forbidden(`${what} is outside the directories packs may be installed from (ATTUNE_PACK_PATHS)`);
}

/** Packs that depend on `ref` with a range its new `version` does not satisfy. */
async function brokenDependents(ctx: ApiContext, ref: string, version: string): Promise<Problem[]> {
  const rows = await ctx.store.db
    .select({ ref: packs.ref, dependencies: packs.dependencies })
    .from(packs)
    .where(
      sql`${packs.dependencies} @> ${JSON.stringify([ref])}::jsonb or ${packs.dependencies}::text like ${`%"${ref}@%`}`,
    );
  const out: Problem[] = [];
  for (const r of rows)
    for (const d of r.dependencies) {
      const [name, range = '*'] = d.split('@').map((x) => x.trim());
      if (name === ref && !semver.satisfies(version, range, { includePrerelease: true }))
        out.push({
          file: 'pack.yaml',
          path: '/version',
          message: `pack '${r.ref}' depends on '${d}', which version ${version} does not satisfy`,
        });
    }
  return out;
}

export interface RegisterOptions {
  source: PackSource;
  allowSystem: boolean;
  force: boolean;
  actor: string | null;
  mayUpgrade: boolean;
  /** Move `root` into place (it is a staging copy); otherwise copy it. */
  move: boolean;
}

/** Loads, validates and registers the pack at `root`, and switches its installed files. */
export async function registerDirectory(
  ctx: ApiContext,
  root: string,
  opts: RegisterOptions,
): Promise<InstallOutcome> {
  const files = listTree(root);
  const checksum = checksumTree(root, files);
  const loaded = loadPack(root, { files, allowSystem: opts.allowSystem });
  const db = ctx.store.db;
  const ref = loaded.ref;
  if (ref) {
    const [existing] = await db.select({ system: packs.system }).from(packs).where(eq(packs.ref, ref));
    if (existing?.system && !opts.allowSystem)
      throw conflict(`pack '${ref}' is a system pack shipped with Attune; it cannot be replaced`, { ref });
    if (existing && !opts.mayUpgrade)
      throw forbidden(`pack '${ref}' is installed; replacing it needs the 'update' permission on packs`);
  }
  // every problem at once: the files' own, and those only the store can tell (dependencies, other packs)
  const checked = ref ? await checkAgainstStore(db, loaded) : { problems: [], warnings: [] };
  const problems = sortProblems([...loaded.problems, ...checked.problems]);
  if (problems.length || !loaded.pack) throw packProblems(problems, ref);
  const pack: LoadedPack = loaded.pack;

  const target = versionDir(ctx.packsDir, pack.meta.ref, pack.meta.version, checksum);
  const previous = activeDir(ctx.packsDir, pack.meta.ref);
  let undo: (() => void) | undefined;
  let placed = false;
  let result: Awaited<ReturnType<typeof registerPack>>;
  try {
    result = await ctx.store.transaction(async (tx) => {
      const r = await registerPack(tx, pack, {
        source: { ...opts.source, checksum },
        installedBy: opts.actor,
        force: opts.force,
      });
      // the files switch last, inside the transaction: if it fails, nothing of the install remains
      if (!fs.existsSync(target)) {
        fs.mkdirSync(path.dirname(target), { recursive: true });
        if (opts.move) fs.renameSync(root, target);
        else copyTree(root, target);
        placed = true;
      }
      undo = activate(ctx.packsDir, pack.meta.ref, target);
      return r;
    });
  } catch (e) {
    try {
      undo?.();
      if (placed) fs.rmSync(target, { recursive: true, force: true });
    } catch (cleanup) {
      ctx.log.error(
        { err: cleanup, pack: pack.meta.ref },
        'could not restore the files of the previous version',
      );
    }
    throw e;
  }
  try {
    pruneVersions(ctx.packsDir, pack.meta.ref, [target, previous]);
  } catch (err) {
    ctx.log.warn({ err, pack: pack.meta.ref }, 'could not remove old versions of the pack files');
  }

  const [row] = await db.select().from(packs).where(eq(packs.id, result.packId));
  const warnings: ProblemDetail[] = [
    ...loaded.warnings,
    ...checked.warnings,
    ...result.warnings.map((message): Problem => ({ file: 'pack.yaml', path: '/config', message })),
    ...(await brokenDependents(ctx, pack.meta.ref, pack.meta.version)),
  ].map(toDetail);
  return {
    pack: packToApi(row!, await countsOf(db, result.packId)),
    operation: result.created ? 'installed' : 'updated',
    previous_version: result.previousVersion,
    changes: result.changes,
    disabled: result.disabled,
    warnings,
  };
}
