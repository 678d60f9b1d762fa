/**
 * What commands read besides their flags: `key=value` arguments (values parsed as JSON when they
 * are valid JSON, `key=@file` for a file's content, `key=@-` for standard input, `key=@@text` for a
 * literal starting with `@`), documents given with `-f` (YAML or JSON, `-` for standard input), and
 * standard input itself (read at most once).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { CliError, UsageError } from './errors.ts';

/** Largest file or standard input read into a value or document: 16 MiB. */
const MAX_INPUT_BYTES = 16 * 1024 * 1024;

let stdinText: Promise<string> | undefined;

/** Everything on standard input (read once; later calls get the same text). */
export function readStdin(): Promise<string> {
  stdinText ??= (async () => {
    if (process.stdin.isTTY) process.stderr.write('(reading standard input; end with Ctrl-D)\n');
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of process.stdin) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
      size += b.length;
      if (size > MAX_INPUT_BYTES)
        throw new CliError(`standard input is larger than ${MAX_INPUT_BYTES} bytes`);
      chunks.push(b);
    }
    return Buffer.concat(chunks).toString('utf8');
  })();
  return stdinText;
}

/** A file's text, with a clear error naming the file. */
export function readTextFile(file: string): string {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'ENOENT' ? `no such file: ${file}` : `cannot read ${file}: ${(e as Error).message}`,
    );
  }
  if (st.isDirectory()) throw new CliError(`${file} is a directory, not a file`);
  if (st.size > MAX_INPUT_BYTES) throw new CliError(`${file} is larger than ${MAX_INPUT_BYTES} bytes`);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** The value of `key=value`: JSON when it parses as JSON, else the text. */
export function parseValue(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export interface PairOptions {
  /**
   * Names whose values stay text even when they look like JSON (parameters of type string), so
   * that `version=1.10` or `zip=01234` keep their exact spelling.
   */
  textKeys?: ReadonlySet<string>;
}

/** Checks the form of `name=value` arguments (exit 2 for a malformed or repeated one). */
export function checkPairs(pairs: readonly string[]): void {
  const seen = new Set<string>();
  let stdin = 0;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0)
      throw new UsageError(
        eq === 0 ? `'${pair}' has no name before '='` : `'${pair}' is not a name=value pair`,
        'give parameters as name=value (values are parsed as JSON when valid; name=@file reads a file)',
      );
    const key = pair.slice(0, eq);
    if (seen.has(key)) throw new UsageError(`'${key}' is given twice`);
    seen.add(key);
    if (pair.slice(eq + 1) === '@-' && ++stdin > 1)
      throw new UsageError('only one value can be read from standard input (@-)');
  }
}

/** `['a=1', 'b=@file', 'c=@-']` → `{a: 1, b: '<file>', c: '<stdin>'}`; exit 2 on a malformed pair. */
export async function parsePairs(
  pairs: readonly string[],
  opts: PairOptions = {},
): Promise<Record<string, unknown>> {
  checkPairs(pairs);
  const out: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    let value: unknown;
    if (raw.startsWith('@@')) value = raw.slice(1);
    else if (raw === '@-') value = (await readStdin()).replace(/\r?\n$/, '');
    else if (raw.startsWith('@') && raw.length > 1) value = readTextFile(raw.slice(1));
    else value = opts.textKeys?.has(key) ? raw : parseValue(raw);
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Names of the properties of a JSON Schema whose only type is `string`. */
export function stringProperties(schema: unknown): Set<string> {
  const names = new Set<string>();
  if (typeof schema !== 'object' || schema === null) return names;
  const props = (schema as { properties?: unknown }).properties;
  if (typeof props !== 'object' || props === null) return names;
  for (const [k, p] of Object.entries(props as Record<string, unknown>))
    if (typeof p === 'object' && p !== null && (p as { type?: unknown }).type === 'string') names.add(k);
  return names;
}

export interface LoadedDocument {
  value: unknown;
  /** The text as read (YAML or JSON). */
  text: string;
  /** The file's directory (the working directory for standard input), to resolve relative paths. */
  dir: string;
  name: string;
}

/** A YAML or JSON document from a file (`-` for standard input). */
export async function readDocument(file: string): Promise<LoadedDocument> {
  const fromStdin = file === '-';
  const text = fromStdin ? await readStdin() : readTextFile(file);
  const name = fromStdin ? 'standard input' : file;
  let value: unknown;
  try {
    value = parseYaml(text, { prettyErrors: true });
  } catch (e) {
    throw new CliError(`${name} is not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  return { value, text, dir: fromStdin ? process.cwd() : path.dirname(path.resolve(file)), name };
}
