import type { ApiContext } from '../services/api/context.ts';

/** Registers the packs shipped in the repository's `packs/` folder (core at least) at start. */
export async function registerBuiltinPacks(_ctx: ApiContext): Promise<void> {
  // filled in by the pack loader
}
