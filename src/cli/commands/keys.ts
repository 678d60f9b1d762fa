/**
 * `attune key set|get|list|delete|load`: the key datastore. Values are text unless `--json-value`;
 * a value can come from a file (`@file`), standard input (`-`), or — on a terminal — a prompt that
 * does not echo, so that secrets need not appear in the shell's history.
 */
import type { Command } from 'commander';
import type { KeyRecord } from '../../services/api/resource-types.ts';
import { act, argsOf, limitOf, withLimit } from '../command.ts';
import type { Ctx } from '../context.ts';
import { ApiError, CliError, EXIT_FAILURE, UsageError } from '../errors.ts';
import { formatTime, oneLine, parsePositiveInt } from '../format.ts';
import { readDocument, readStdin, readTextFile } from '../input.ts';
import { askSecret, interactive } from '../prompt.ts';

const MAX_TTL = 10 * 365 * 86_400;

interface Scoped {
  scope?: string;
  owner?: string;
}

function scopeQuery(o: Scoped): { scope?: string; owner?: string } {
  if (o.scope !== undefined && o.scope !== 'system' && o.scope !== 'user')
    throw new UsageError(`--scope must be 'system' or 'user', not '${o.scope}'`);
  if (o.owner !== undefined && o.scope === 'system')
    throw new UsageError('--owner applies only to user-scope keys');
  return { scope: o.scope, owner: o.owner };
}

const keyPath = (name: string) => `/api/v1/keys/${encodeURIComponent(name)}`;

const withScope = (cmd: Command): Command =>
  cmd
    .option('--scope <scope>', "'system' (shared, the default) or 'user' (your own)")
    .option('--owner <login>', "another identity's user-scope keys (needs identities:update)");

/** The text shown for a key's value. */
function valueText(k: KeyRecord): string {
  if (k.masked) return '(encrypted; add --decrypt to see it)';
  return typeof k.value === 'string' ? k.value : JSON.stringify(k.value);
}

async function set(ctx: Ctx, cmd: Command): Promise<void> {
  const [name, given] = argsOf<[string, string | undefined]>(cmd);
  const o = cmd.opts<
    Scoped & { encrypt?: boolean; ttl?: string; description?: string; jsonValue?: boolean }
  >();
  const q = scopeQuery(o);
  let text: string;
  if (given === undefined) {
    if (!interactive())
      throw new UsageError('no value given', `give it as an argument, '-' to read standard input, or @file`);
    text = await askSecret(`Value of ${name}: `);
  } else if (given === '-') text = (await readStdin()).replace(/\r?\n$/, '');
  else if (given.startsWith('@@')) text = given.slice(1);
  else if (given.startsWith('@') && given.length > 1) text = readTextFile(given.slice(1));
  else text = given;
  let value: unknown = text;
  if (o.jsonValue)
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`--json-value: the value is not valid JSON (${(e as Error).message})`);
    }
  const body: Record<string, unknown> = { value };
  // only an explicit flag changes encryption: updating an encrypted key keeps it encrypted
  if (o.encrypt !== undefined) body.encrypted = o.encrypt;
  if (o.ttl !== undefined) body.ttl = parsePositiveInt(o.ttl, '--ttl', MAX_TTL);
  if (o.description !== undefined) body.description = o.description;
  const k = await ctx.api().data<KeyRecord>('PUT', keyPath(name), { body, query: q });
  ctx.out.item(
    k,
    (x) => x.name,
    () => {
      const notes = [
        k.encrypted ? 'encrypted' : undefined,
        k.scope === 'user' ? `user scope of ${k.owner}` : undefined,
        k.expires_at ? `expires ${formatTime(k.expires_at)}` : undefined,
      ].filter(Boolean);
      ctx.out.print(`Saved key ${ctx.out.c.bold(k.name)}${notes.length ? ` (${notes.join(', ')})` : ''}`);
    },
  );
}

async function get(ctx: Ctx, cmd: Command): Promise<void> {
  const [name] = argsOf<[string]>(cmd);
  const o = cmd.opts<Scoped & { decrypt?: boolean }>();
  const k = await ctx.api().data<KeyRecord>('GET', keyPath(name), {
    query: { ...scopeQuery(o), decrypt: o.decrypt ? true : undefined },
  });
  ctx.out.item(
    k,
    (x) => x.name,
    () => {
      const c = ctx.out.c;
      const text = valueText(k);
      ctx.out.fields([
        ['name', c.bold(k.name)],
        ['value', k.masked ? c.dim(text) : text],
        ['encrypted', k.encrypted ? 'yes' : 'no'],
        ['scope', k.scope === 'user' ? `user (${k.owner})` : 'system'],
        ['description', k.description || undefined],
        ['expires', k.expires_at ? formatTime(k.expires_at) : 'never'],
        ['updated', formatTime(k.updated_at)],
      ]);
    },
  );
}

async function list(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<Scoped & { prefix?: string; search?: string; limit?: string }>();
  const { items, total } = await ctx
    .api()
    .list<KeyRecord>(
      '/api/v1/keys',
      { ...scopeQuery(o), prefix: o.prefix, search: o.search },
      limitOf(o.limit),
    );
  const c = ctx.out.c;
  ctx.out.list(
    items,
    [
      { header: 'NAME', value: (k) => k.name },
      {
        header: 'VALUE',
        value: (k) => (k.masked ? '••••••' : oneLine(k.value, 200)),
        flex: true,
        color: (t, k) => (k.masked ? c.dim(t) : t),
      },
      { header: 'ENCRYPTED', value: (k) => (k.encrypted ? 'yes' : '') },
      { header: 'SCOPE', value: (k) => (k.scope === 'user' ? `user:${k.owner}` : 'system') },
      { header: 'EXPIRES', value: (k) => formatTime(k.expires_at) },
      { header: 'DESCRIPTION', value: (k) => k.description, flex: true },
    ],
    (k) => k.name,
    { total, empty: 'no keys found' },
  );
}

async function remove(ctx: Ctx, cmd: Command): Promise<void> {
  const [names] = argsOf<[string[]]>(cmd);
  const q = scopeQuery(cmd.opts<Scoped>());
  for (const name of names) {
    await ctx.api().call('DELETE', keyPath(name), { query: q });
    if (ctx.out.human) ctx.out.print(`Deleted key ${name}`);
    else if (ctx.out.format === 'quiet') ctx.out.print(name);
  }
  if (!ctx.out.human && ctx.out.format !== 'quiet') ctx.out.doc({ deleted: names });
}

const SPEC_KEYS = ['name', 'value', 'encrypted', 'ttl', 'scope', 'owner', 'description'];

interface KeySpec {
  name: string;
  value: unknown;
  encrypted?: boolean;
  ttl?: number;
  scope?: string;
  owner?: string;
  description?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The keys of a load file: a list of `{name, value, …}`, or a mapping of names to values (or to `{value, …}`). */
export function keySpecs(doc: unknown, file: string): KeySpec[] {
  const specs: KeySpec[] = [];
  const problems: string[] = [];
  const check = (raw: Record<string, unknown>, where: string): void => {
    const unknown = Object.keys(raw).filter((k) => !SPEC_KEYS.includes(k));
    if (unknown.length)
      problems.push(`${where}: unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`);
    if (typeof raw.name !== 'string' || !raw.name) problems.push(`${where}: 'name' must be a non-empty text`);
    if (!('value' in raw)) problems.push(`${where}: 'value' is missing`);
    if (raw.encrypted !== undefined && typeof raw.encrypted !== 'boolean')
      problems.push(`${where}: 'encrypted' must be true or false`);
    if (raw.ttl !== undefined && !(Number.isInteger(raw.ttl) && (raw.ttl as number) > 0))
      problems.push(`${where}: 'ttl' must be a positive whole number of seconds`);
    if (raw.scope !== undefined && raw.scope !== 'system' && raw.scope !== 'user')
      problems.push(`${where}: 'scope' must be 'system' or 'user'`);
    for (const f of ['owner', 'description'])
      if (raw[f] !== undefined && typeof raw[f] !== 'string')
        problems.push(`${where}: '${f}' must be a text`);
    specs.push(raw as unknown as KeySpec);
  };
  if (Array.isArray(doc))
    doc.forEach((item, i) => {
      if (isObject(item)) check(item, `item ${i + 1}`);
      else problems.push(`item ${i + 1}: must be a mapping {name, value, …}`);
    });
  else if (isObject(doc))
    for (const [name, v] of Object.entries(doc)) {
      const isSpec =
        isObject(v) && 'value' in v && Object.keys(v).every((k) => SPEC_KEYS.includes(k) && k !== 'name');
      check(isSpec ? { name, ...v } : { name, value: v }, `'${name}'`);
    }
  else problems.push('must be a list of keys or a mapping of names to values');
  if (problems.length) {
    const err = new CliError(`${file} is not a valid key file; nothing was loaded`);
    err.lines = problems;
    throw err;
  }
  if (!specs.length) throw new CliError(`${file} holds no keys`);
  return specs;
}

async function load(ctx: Ctx, cmd: Command): Promise<number> {
  const o = cmd.opts<{ file: string; encrypt?: boolean }>();
  const doc = await readDocument(o.file);
  const specs = keySpecs(doc.value, doc.name);
  const saved: KeyRecord[] = [];
  const failed: { name: string; error: string }[] = [];
  for (const s of specs) {
    const body: Record<string, unknown> = { value: s.value };
    const encrypted = s.encrypted ?? o.encrypt;
    if (encrypted !== undefined) body.encrypted = encrypted;
    if (s.ttl !== undefined) body.ttl = s.ttl;
    if (s.description !== undefined) body.description = s.description;
    try {
      saved.push(
        await ctx.api().data<KeyRecord>('PUT', keyPath(s.name), {
          body,
          query: { scope: s.scope ?? (s.owner !== undefined ? 'user' : undefined), owner: s.owner },
        }),
      );
    } catch (e) {
      // a failure of the server as a whole stops the load; a refused key is reported and skipped
      if (!(e instanceof ApiError)) throw e;
      failed.push({ name: s.name, error: e.message });
      ctx.out.note(`${ctx.out.e.red('✖')} ${s.name}: ${e.message}`);
    }
  }
  if (ctx.out.format === 'quiet') for (const k of saved) ctx.out.print(k.name);
  else if (!ctx.out.human) ctx.out.doc({ loaded: saved.map((k) => k.name), failed });
  else
    ctx.out.print(
      `Loaded ${saved.length} key${saved.length === 1 ? '' : 's'}${failed.length ? `; ${failed.length} failed` : ''}`,
    );
  return failed.length ? EXIT_FAILURE : 0;
}

export function registerKeyCommands(program: Command): void {
  const key = program
    .command('key')
    .description('the key datastore: values (optionally encrypted) for templates');
  withScope(
    key
      .command('set')
      .argument('<name>')
      .argument('[value]', "the value; '-' reads standard input, @file a file; asked for when omitted")
      .description('create or update a key')
      .option('--encrypt', 'store it encrypted (AES-256-GCM)')
      .option('--no-encrypt', 'store it in the clear (turning encryption off needs keys:decrypt)')
      .option('--ttl <seconds>', 'delete it after this long')
      .option('--description <text>', 'what it is for')
      .option('--json-value', 'the value is JSON (a number, list, object…) rather than text'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  attune key set smtp_host mail.example.org\n' +
        '  attune key set db_password --encrypt            # asked for, not echoed\n' +
        '  vault read -field=token x | attune key set api_token - --encrypt --ttl 3600\n' +
        '  attune key set limits \'{"cpu": 2}\' --json-value\n\n' +
        'Rules use system keys in their templates: {{ keys.db_password }}.',
    )
    .action(act(set));
  withScope(
    key
      .command('get')
      .argument('<name>')
      .description('show a key')
      .option('--decrypt', 'show the value of an encrypted key (needs keys:decrypt; audited)'),
  ).action(act(get));
  withLimit(
    withScope(
      key
        .command('list')
        .alias('ls')
        .description('list keys (system keys and your own; encrypted values never shown)')
        .option('--prefix <text>', 'names starting with this')
        .option('--search <text>', 'in names and descriptions'),
    ),
    'keys',
  ).action(act(list));
  withScope(key.command('delete').alias('rm').argument('<name...>').description('delete keys')).action(
    act(remove),
  );
  key
    .command('load')
    .description('create or update many keys from a YAML/JSON file')
    .requiredOption(
      '-f, --file <file>',
      'a list of {name, value, encrypted, ttl, scope, owner, description}, or a mapping name: value',
    )
    .option('--encrypt', 'encrypt every key that does not say otherwise')
    .action(act(load));
}
