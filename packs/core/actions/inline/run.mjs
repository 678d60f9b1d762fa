// Runs the source text of a `script` parameter as its own process: `node` (an ES module, with the
// worker's Node.js) or `shell` (with sh or bash). The action's parameters arrive as JSON on stdin;
// the script gets `args` as its arguments, the `input` parameter as JSON on its stdin, and `cwd` and
// `env` applied. Its exit status and output are the action's. Used by core.node and core.local_script.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

export async function runInline(kind) {
  const raw = await readStdin();
  const params = raw.trim() ? JSON.parse(raw) : {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) {
    console.error(`the parameters must be a JSON object`);
    process.exit(2);
  }
  if (typeof params.script !== 'string' || !params.script.trim()) {
    console.error('give the source text in the `script` parameter');
    process.exit(2);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-inline-'));
  const file = path.join(dir, kind === 'node' ? 'script.mjs' : 'script.sh');
  fs.writeFileSync(file, params.script, { mode: 0o600 });
  const args = (params.args ?? []).map(String);
  const command = kind === 'node' ? process.execPath : params.shell === 'bash' ? 'bash' : 'sh';
  const env = { ...process.env };
  for (const [k, v] of Object.entries(params.env ?? {})) env[k] = String(v);
  const child = spawn(command, [file, ...args], {
    cwd: params.cwd || process.cwd(),
    env,
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  const cleanup = () => fs.rmSync(dir, { recursive: true, force: true });
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.stdin.on('error', () => {}); // a script that does not read its input
  child.stdin.end(Object.hasOwn(params, 'input') ? JSON.stringify(params.input) : '');
  child.on('error', (e) => {
    cleanup();
    console.error(`cannot start ${command}: ${e.message}`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => {
    cleanup();
    process.exit(code ?? 128 + (os.constants.signals[signal] ?? 1));
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const kind = process.argv[2];
  if (kind !== 'node' && kind !== 'shell') {
    console.error('usage: run.mjs node|shell < parameters.json');
    process.exit(2);
  }
  await runInline(kind);
}
