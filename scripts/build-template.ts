// Builds the PGlite template database (run by `npm ci` via postinstall; harmless to run again).
import { ensureTemplate } from '../src/store/pglite-template.ts';

const t0 = performance.now();
const file = await ensureTemplate();
console.log(`attune: database template ready (${file}, ${Math.round(performance.now() - t0)} ms)`);
