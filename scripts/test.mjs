#!/usr/bin/env node
// `npm test`: lint, type-check, then the whole vitest suite (unit + store/API on PGlite and on
// PostgreSQL). Ends with one plain summary line: `N passed, N failed` (plus skipped).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const bin = (name) => path.join('node_modules', '.bin', name);
const step = (title, cmd, args) => {
  process.stdout.write(`\n── ${title}\n`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  return r.status === 0;
};

const extra = process.argv.slice(2);
let ok = true;
if (!extra.length) {
  ok = step('lint (biome)', bin('biome'), ['check', '.']) && ok;
  ok = step('type-check (tsc)', bin('tsc'), ['--noEmit', '-p', '.']) && ok;
  ok = step('type-check web UI (tsc)', bin('tsc'), ['--noEmit', '-p', 'web']) && ok;
}
const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'attune-vitest-')), 'report.json');
const tests = step('tests (vitest)', bin('vitest'), [
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...extra,
]);
let passed = 0;
let failed = 0;
let skipped = 0;
try {
  const r = JSON.parse(fs.readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests;
  skipped = r.numPendingTests + (r.numTodoTests ?? 0);
  if (!r.success && failed === 0) failed = Math.max(1, r.numFailedTestSuites ?? 1);
} catch {
  failed = Math.max(failed, 1);
}
if (!ok) process.stdout.write('\nlint or type-check failed (see above)\n');
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(ok && tests && failed === 0 ? 0 : 1);
