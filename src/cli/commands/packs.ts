/**
 * `attune pack install|list|show|uninstall`.
 *
 * `install` takes a local directory (packed as a .tar.gz and uploaded, so it works against a remote
 * server), a .tar.gz/.tgz/.tar file (uploaded), a git URL (cloned by the server), or with
 * `--server-path` a directory on the server's own filesystem.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import type { Pack } from '../../services/api/resource-types.ts';
import { act, argsOf, limitOf, withLimit } from '../command.ts';
import type { Ctx } from '../context.ts';
import { CliError, UsageError, withProblems } from '../errors.ts';
import { formatTime } from '../format.ts';

interface Refs {
  actions: string[];
  workflows: string[];
  rules: string[];
  triggers: string[];
  sensors: string[];
}

interface InstallOutcome {
  pack: Pack;
  operation: 'installed' | 'updated';
  previous_version: string | null;
  changes: { created: Refs; updated: Refs; removed: Refs; unchanged: number };
  disabled: { rules: string[]; sensors: string[] };
  warnings: { file: string | null; line: number | null; path: string; message: string }[];
}

const KINDS = ['actions', 'workflows', 'triggers', 'sensors', 'rules'] as const;
/** Folders never packed into an upload. */
const SKIPPED = new Set(['.git', '.hg', '.svn']);
const ARCHIVE = /\.(tar\.gz|tgz|tar)$/i;

/** Whether a source names a git repository rather than a local path. */
export function isGitUrl(s: string): boolean {
  return /^(https?|ssh|git|file):\/\//i.test(s) || /^[\w.-]+@[\w.-]+:/.test(s);
}

/** The .tar.gz of a local pack directory, in memory. */
async function packDirectory(dir: string): Promise<Buffer> {
  const tar = await import('tar');
  const stream = tar.create(
    {
      gzip: true,
      cwd: dir,
      portable: true,
      filter: (p: string) => !p.split('/').some((seg) => SKIPPED.has(seg)),
    },
    ['.'],
  );
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

const plural = (n: number, word: string) => `${n} ${n === 1 ? word.replace(/s$/, '') : word}`;
const summary = (r: Refs): string =>
  KINDS.filter((k) => r[k]?.length)
    .map((k) => plural(r[k].length, k))
    .join(', ');

async function install(ctx: Ctx, cmd: Command): Promise<void> {
  const [source] = argsOf<[string]>(cmd);
  const o = cmd.opts<{ serverPath?: boolean; ref?: string; force?: boolean }>();
  const query = { force: o.force ? true : undefined };
  const api = ctx.api();
  const post = (opts: { body?: unknown; raw?: Uint8Array; contentType?: string }) =>
    api.data<InstallOutcome>('POST', '/api/v1/packs/install', { ...opts, query, timeoutMs: 600_000 });
  if (o.ref !== undefined && (o.serverPath || !isGitUrl(source)))
    throw new UsageError('--ref applies only to a git URL');
  let outcome: InstallOutcome;
  try {
    if (o.serverPath) outcome = await post({ body: { source: 'path', path: source } });
    else if (isGitUrl(source))
      outcome = await post({
        body: { source: 'git', url: source, ...(o.ref !== undefined && { ref: o.ref }) },
      });
    else {
      let st: fs.Stats;
      try {
        st = fs.statSync(source);
      } catch {
        throw new CliError(
          `no such file or directory: ${source}`,
          1,
          undefined,
          'give a pack directory, a .tar.gz, a git URL, or --server-path for a directory on the server',
        );
      }
      if (st.isDirectory()) {
        const root = path.resolve(source);
        if (!fs.existsSync(path.join(root, 'pack.yaml')))
          throw new CliError(`${source} is not a pack: it has no pack.yaml`);
        const archive = await packDirectory(root);
        ctx.debugLine(`packed ${root} into ${archive.length} bytes`);
        outcome = await post({ raw: archive, contentType: 'application/gzip' });
      } else if (ARCHIVE.test(source)) {
        const data = fs.readFileSync(source);
        outcome = await post({
          raw: data,
          contentType: /\.tar$/i.test(source) ? 'application/x-tar' : 'application/gzip',
        });
      } else throw new UsageError(`${source} is neither a directory nor a .tar.gz/.tgz/.tar archive`);
    }
  } catch (e) {
    throw withProblems(e);
  }
  ctx.out.item(
    outcome,
    (x) => x.pack.ref,
    () => {
      const c = ctx.out.c;
      const p = outcome.pack;
      const verb =
        outcome.operation === 'installed'
          ? 'Installed'
          : outcome.previous_version && outcome.previous_version !== p.version
            ? `Upgraded (from ${outcome.previous_version})`
            : 'Updated';
      ctx.out.print(`${c.green('✔')} ${verb} pack ${c.bold(p.ref)} ${p.version}`);
      const ch = outcome.changes;
      for (const [label, refs] of [
        ['created', ch.created],
        ['updated', ch.updated],
        ['removed', ch.removed],
      ] as const) {
        const s = summary(refs);
        if (s) ctx.out.print(`  ${c.dim(`${label}:`)} ${s}`);
      }
      if (outcome.operation === 'updated' && ch.unchanged)
        ctx.out.print(`  ${c.dim('unchanged:')} ${ch.unchanged}`);
      for (const r of outcome.disabled.rules)
        ctx.out.warn(`rule ${r} was disabled: the new version dropped what it uses`);
      for (const s of outcome.disabled.sensors)
        ctx.out.warn(`sensor ${s} was disabled: the new version dropped what it uses`);
      for (const w of outcome.warnings)
        ctx.out.warn(
          `${w.file ? `${w.file}${w.line ? `:${w.line}` : ''} ` : ''}${w.path && w.path !== '/' ? `${w.path}: ` : ''}${w.message}`,
        );
    },
  );
}

async function list(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{ search?: string; tags?: string; limit?: string }>();
  const { items, total } = await ctx
    .api()
    .list<Pack>('/api/v1/packs', { search: o.search, tags: o.tags }, limitOf(o.limit));
  ctx.out.list(
    items,
    [
      { header: 'REF', value: (p) => p.ref },
      { header: 'VERSION', value: (p) => p.version },
      { header: 'ACTIONS', value: (p) => p.counts.actions },
      { header: 'WORKFLOWS', value: (p) => p.counts.workflows },
      { header: 'RULES', value: (p) => p.counts.rules },
      { header: 'SOURCE', value: (p) => p.source.type ?? '' },
      { header: 'DESCRIPTION', value: (p) => p.description, flex: true },
    ],
    (p) => p.ref,
    { total, empty: 'no packs installed' },
  );
}

async function show(ctx: Ctx, cmd: Command): Promise<void> {
  const [ref] = argsOf<[string]>(cmd);
  const p = await ctx.api().data<Pack>('GET', `/api/v1/packs/${encodeURIComponent(ref)}`);
  ctx.out.item(
    p,
    (x) => x.ref,
    () => {
      const c = ctx.out.c;
      const src = p.source;
      ctx.out.fields([
        ['ref', c.bold(p.ref)],
        ['label', p.label],
        ['version', p.version],
        ['description', p.description || null],
        ['author', p.author ? `${p.author}${p.email ? ` <${p.email}>` : ''}` : undefined],
        ['tags', p.tags.length ? p.tags.join(', ') : undefined],
        ['depends on', p.dependencies.length ? p.dependencies.join(', ') : undefined],
        ['source', [src.type, src.location, src.ref, src.commit?.slice(0, 12)].filter(Boolean).join(' ')],
        ['system', p.system ? 'yes (shipped with Attune)' : undefined],
        ['installed', `${formatTime(p.updated_at)}${p.installed_by ? ` by ${p.installed_by}` : ''}`],
      ]);
      if (p.contents)
        for (const k of KINDS) {
          const refs = p.contents[k] ?? [];
          if (!refs.length) continue;
          ctx.out.heading(`${k} (${refs.length})`);
          for (const r of refs) ctx.out.print(`  ${r}`);
        }
      if (Object.keys(p.config ?? {}).length) {
        ctx.out.heading('config');
        ctx.out.block(p.config);
      }
    },
  );
}

async function uninstall(ctx: Ctx, cmd: Command): Promise<void> {
  const [refs] = argsOf<[string[]]>(cmd);
  const o = cmd.opts<{ force?: boolean }>();
  for (const ref of refs) {
    await ctx.api().call('DELETE', `/api/v1/packs/${encodeURIComponent(ref)}`, {
      query: { force: o.force ? true : undefined },
    });
    if (ctx.out.human) ctx.out.print(`Uninstalled pack ${ref}`);
    else if (ctx.out.format === 'quiet') ctx.out.print(ref);
  }
  if (ctx.out.format === 'json' || ctx.out.format === 'yaml') ctx.out.doc({ uninstalled: refs });
}

export function registerPackCommands(program: Command): void {
  const pack = program.command('pack').description('install, inspect and remove packs');
  pack
    .command('install')
    .argument('<source>', 'a pack directory, a .tar.gz/.tgz/.tar file, or a git URL')
    .description(
      'install or upgrade a pack (everything is checked first: a pack with problems installs nothing)',
    )
    .option('--server-path', "<source> is a directory on the server's filesystem")
    .option('--ref <ref>', 'for a git URL: the branch, tag or commit')
    .option('--force', 'upgrade even if rules or sensors of other packs use what the new version drops')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  attune pack install ./packs/examples           # uploads the directory\n' +
        '  attune pack install mypack-1.2.0.tar.gz\n' +
        '  attune pack install https://git.example.org/ops/pack.git --ref v1.2.0\n' +
        '  attune pack install /srv/packs/ops --server-path',
    )
    .action(act(install));
  withLimit(
    pack
      .command('list')
      .alias('ls')
      .description('list installed packs')
      .option('--search <text>', 'in ref, label and description')
      .option('--tags <tags>', 'comma-separated; any of them'),
    'packs',
  ).action(act(list));
  pack.command('show').argument('<ref>').description('show a pack and what it contains').action(act(show));
  pack
    .command('uninstall')
    .alias('remove')
    .argument('<ref...>')
    .description('uninstall packs with everything they define')
    .option('--force', 'even when rules or sensors of other packs use it (they are disabled)')
    .action(act(uninstall));
}
