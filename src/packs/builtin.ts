/**
 * The packs shipped in the repository's `packs/` folder that are registered at every start (`core`).
 * Idempotent and cheap: a content checksum of the pack's files is stored with it, and when neither the
 * files nor their installed copy changed, nothing is read beyond that checksum. Other shipped packs
 * (`examples`) are installed by users through the API.
 */
import path from 'node:path';
import { eq } from 'drizzle-orm';
import type { ApiContext } from '../services/api/context.ts';
import { packs } from '../store/schema.ts';
import { registerDirectory } from './install.ts';
import { activeDir, cleanStaging, versionDirName } from './installed-files.ts';
import { checksumTree, isDirectory, listTree } from './tree.ts';

/** Shipped packs registered automatically. */
export const AUTO_REGISTERED = ['core'] as const;

export async function registerBuiltinPacks(ctx: ApiContext): Promise<void> {
  cleanStaging(ctx.packsDir);
  for (const ref of AUTO_REGISTERED) {
    const t0 = performance.now();
    const dir = path.join(ctx.builtinPacksDir, ref);
    if (!isDirectory(dir)) {
      ctx.log.warn({ pack: ref, dir }, 'shipped pack not found; it is not registered');
      continue;
    }
    const checksum = checksumTree(dir, listTree(dir));
    const [row] = await ctx.store.db
      .select({ version: packs.version, source: packs.source })
      .from(packs)
      .where(eq(packs.ref, ref));
    const active = activeDir(ctx.packsDir, ref);
    if (
      row &&
      row.source.checksum === checksum &&
      active !== undefined &&
      path.basename(active) === versionDirName(row.version, checksum)
    ) {
      ctx.log.debug({ pack: ref }, 'shipped pack unchanged');
      continue;
    }
    try {
      const out = await registerDirectory(ctx, dir, {
        source: { type: 'builtin', location: dir },
        allowSystem: true,
        // a new product version may drop what users' rules use: they are disabled, not left dangling
        force: true,
        actor: null,
        mayUpgrade: true,
        move: false,
      });
      if (out.disabled.rules.length || out.disabled.sensors.length)
        ctx.log.warn(
          { pack: ref, disabled: out.disabled },
          'rules or sensors were disabled: what they used is gone',
        );
      ctx.log.info(
        {
          pack: ref,
          version: out.pack.version,
          ms: Math.round(performance.now() - t0),
          counts: out.pack.counts,
        },
        `registered shipped pack '${ref}'`,
      );
    } catch (e) {
      const details = (e as { details?: unknown }).details;
      const list = Array.isArray(details)
        ? details.map(
            (p: { file?: string; line?: number; message: string }) =>
              `  ${p.file ?? ''}:${p.line ?? ''} ${p.message}`,
          )
        : [];
      throw new Error(
        `the shipped pack '${ref}' (${dir}) cannot be registered: ${(e as Error).message}${list.length ? `\n${list.join('\n')}` : ''}`,
      );
    }
  }
}
