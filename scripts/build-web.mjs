#!/usr/bin/env node
// `npm run build:web`: builds the web UI into web/dist (served by the API at `/`). Runs after
// `npm ci`; when the build tools are not installed (a production install without dev
// dependencies), it says so and leaves the API without a UI rather than failing the install.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
if (!fs.existsSync(vite)) {
  console.warn('attune: vite is not installed (dev dependencies omitted); the web UI is not built.');
  process.exit(0);
}
const t0 = Date.now();
const r = spawnSync(
  process.execPath,
  [vite, 'build', '--config', path.join(root, 'web', 'vite.config.ts'), '--logLevel', 'warn'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
if (r.status !== 0) process.exit(r.status ?? 1);
console.log(`attune: web UI built into web/dist in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
