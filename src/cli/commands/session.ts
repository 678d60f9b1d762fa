/**
 * Session commands: `login`, `logout`, `whoami`, `profile list|use|remove`, and
 * `api-key create|list|revoke`.
 */
import type { Command } from 'commander';
import { act, argsOf, limitOf, withLimit } from '../command.ts';
import { checkProfileName, normalizeUrl } from '../config.ts';
import type { Ctx } from '../context.ts';
import { ApiError, CliError, ConnectionError, EXIT_FAILURE, UsageError } from '../errors.ts';
import { formatTime, parseId, parsePositiveInt } from '../format.ts';
import { readStdin } from '../input.ts';
import { statusColor } from '../output.ts';
import { askSecret, interactive } from '../prompt.ts';
import { type TokenPair, tokensToProfile, withoutTokens } from '../session.ts';

interface Me {
  id: number;
  login: string;
  display_name: string;
  email: string | null;
  kind: string;
  roles: string[];
  via: string;
  permissions: Record<string, string[]>;
}

interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  identity: string;
  status: string;
  created_by: string | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  key?: string;
}

async function readPassword(user: string, url: string, fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const text = (await readStdin()).replace(/\r?\n$/, '');
    if (!text) throw new UsageError('no password on standard input');
    return text;
  }
  if (!interactive())
    throw new UsageError(
      'cannot ask for the password: standard input is not a terminal',
      'pipe the password in with --password-stdin',
    );
  const pw = await askSecret(`Password for ${user} at ${url}: `);
  if (!pw) throw new UsageError('no password given');
  return pw;
}

async function login(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{ user?: string; passwordStdin?: boolean }>();
  const url = ctx.url;
  const before = ctx.profile();
  const user =
    o.user ?? (before.url && normalizeUrl(before.url) === url ? before.user : undefined) ?? 'admin';
  if (!user.trim()) throw new UsageError('--user must not be empty');
  const password = await readPassword(user, url, !!o.passwordStdin);
  const pair = await ctx
    .clientFor(url)
    .data<TokenPair>('POST', '/auth/login', { body: { login: user, password }, anonymous: true });

  // the session this profile held before is of no more use: end it (best effort)
  if (before.refresh_token && before.url && normalizeUrl(before.url) === url && before.access_token) {
    const old = before;
    await ctx
      .clientFor(url)
      .call('POST', '/auth/logout', {
        body: { refresh_token: old.refresh_token },
        anonymous: true,
        timeoutMs: 5000,
      })
      .catch(() => undefined);
  }
  const saved = ctx.config.update(ctx.profileName, (p) => ({
    ...withoutTokens(p),
    url,
    user,
    ...tokensToProfile(pair),
  }));
  const result = {
    url,
    user,
    profile: ctx.profileName,
    expires_at: saved.access_expires_at ?? null,
    session_expires_at: saved.refresh_expires_at ?? null,
    config: ctx.config.file,
  };
  ctx.out.item(
    result,
    (r) => r.user,
    () => {
      ctx.out.print(
        `Logged in to ${ctx.out.c.bold(url)} as ${ctx.out.c.bold(user)}` +
          (ctx.profileName !== 'default' ? ` (profile ${ctx.profileName})` : ''),
      );
    },
  );
  if (ctx.env.ATTUNE_API_KEY)
    ctx.out.warn('ATTUNE_API_KEY is set: commands use that key, not this login, until you unset it');
}

async function logout(ctx: Ctx, cmd: Command): Promise<number> {
  const o = cmd.opts<{ all?: boolean }>();
  const url = ctx.url;
  const profile = ctx.profile();
  const ours = !!profile.url && normalizeUrl(profile.url) === url;
  if (!ours || (!profile.refresh_token && !profile.access_token)) {
    ctx.out.note(
      `not logged in to ${url}${ctx.profileName !== 'default' ? ` (profile ${ctx.profileName})` : ''}`,
    );
    return 0;
  }
  // the session itself, even when ATTUNE_API_KEY is set
  const creds = ctx.sessionCredentials();
  let failure: string | undefined;
  try {
    // may renew the access token (which rotates the refresh token): read the token afterwards
    await creds.headers();
    const current = ctx.profile();
    const body = o.all ? { all: true } : { refresh_token: current.refresh_token ?? profile.refresh_token };
    await ctx.clientFor(url, creds).call('POST', '/auth/logout', { body, timeoutMs: 10_000 });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      // the session had already ended: nothing left to revoke
    } else if (e instanceof ConnectionError) failure = e.message;
    else throw e;
  }
  ctx.config.update(ctx.profileName, (p) => withoutTokens(p));
  if (failure) {
    ctx.out.warn(`removed the local session, but could not end it on the server: ${failure}`);
    return EXIT_FAILURE;
  }
  ctx.out.item(
    { url, profile: ctx.profileName, logged_out: true, all: !!o.all },
    (r) => r.profile,
    () => ctx.out.print(o.all ? `Logged out of every session at ${url}` : `Logged out of ${url}`),
  );
  return 0;
}

async function whoami(ctx: Ctx): Promise<void> {
  const me = await ctx.api().data<Me>('GET', '/auth/me');
  const source = ctx.authSource;
  const profile = ctx.profile();
  const result = {
    ...me,
    url: ctx.url,
    profile: ctx.profileName,
    credentials: source === 'api_key' ? 'ATTUNE_API_KEY' : 'session',
    ...(source === 'session' && { session_expires_at: profile.refresh_expires_at ?? null }),
  };
  ctx.out.item(
    result,
    (r) => r.login,
    () => {
      const c = ctx.out.c;
      ctx.out.fields([
        ['login', c.bold(me.login)],
        ['name', me.display_name || null],
        ['email', me.email],
        ['kind', me.kind],
        ['roles', me.roles.join(', ') || null],
        ['server', ctx.url],
        ['profile', ctx.profileName],
        ['via', source === 'api_key' ? 'API key (ATTUNE_API_KEY)' : 'session'],
        ...(source === 'session' && profile.refresh_expires_at
          ? ([['session until', formatTime(profile.refresh_expires_at)]] as [string, string][])
          : []),
      ]);
    },
  );
}

// ─── profiles ───

async function profileList(ctx: Ctx): Promise<void> {
  const doc = ctx.config.read();
  const current = ctx.profileName;
  const rows = Object.entries(doc.profiles).map(([name, p]) => ({
    name,
    current: name === current,
    url: p.url ?? null,
    user: p.user ?? null,
    logged_in: !!(p.access_token || p.refresh_token),
    session_expires_at: p.refresh_expires_at ?? null,
  }));
  ctx.out.list(
    rows,
    [
      { header: '', value: (r) => (r.current ? '*' : '') },
      { header: 'PROFILE', value: (r) => r.name },
      { header: 'URL', value: (r) => r.url, flex: true },
      { header: 'USER', value: (r) => r.user },
      {
        header: 'SESSION',
        value: (r) => (r.logged_in ? `until ${formatTime(r.session_expires_at)}` : 'logged out'),
      },
    ],
    (r) => r.name,
    { empty: `no profiles yet in ${ctx.config.file}; run \`attune login\`` },
  );
}

async function profileUse(ctx: Ctx, cmd: Command): Promise<void> {
  const [name] = argsOf<[string]>(cmd);
  checkProfileName(name);
  const doc = ctx.config.read();
  if (!doc.profiles[name])
    throw new CliError(
      `no profile '${name}'`,
      EXIT_FAILURE,
      undefined,
      `create it with \`attune login --profile ${name} --url URL\``,
    );
  doc.current_profile = name;
  ctx.config.write(doc);
  ctx.out.item(
    { current_profile: name },
    (r) => r.current_profile,
    () => ctx.out.print(`Now using profile ${name}`),
  );
}

async function profileRemove(ctx: Ctx, cmd: Command): Promise<void> {
  const [name] = argsOf<[string]>(cmd);
  checkProfileName(name);
  const doc = ctx.config.read();
  const p = doc.profiles[name];
  if (!p) throw new CliError(`no profile '${name}'`);
  if (p.url && p.refresh_token) {
    // end the session it holds (best effort)
    await ctx
      .clientFor(normalizeUrl(p.url))
      .call('POST', '/auth/logout', {
        body: { refresh_token: p.refresh_token },
        anonymous: true,
        timeoutMs: 5000,
      })
      .catch(() => undefined);
  }
  delete doc.profiles[name];
  if (doc.current_profile === name) delete doc.current_profile;
  ctx.config.write(doc);
  ctx.out.item(
    { removed: name },
    (r) => r.removed,
    () => ctx.out.print(`Removed profile ${name}`),
  );
}

// ─── API keys ───

const keyColumns = (ctx: Ctx) => [
  { header: 'ID', value: (k: ApiKey) => k.id },
  { header: 'NAME', value: (k: ApiKey) => k.name, flex: true },
  { header: 'PREFIX', value: (k: ApiKey) => k.prefix },
  { header: 'IDENTITY', value: (k: ApiKey) => k.identity },
  { header: 'STATUS', value: (k: ApiKey) => k.status, color: (t: string) => statusColor(ctx.out.c, t) },
  { header: 'CREATED', value: (k: ApiKey) => formatTime(k.created_at) },
  { header: 'EXPIRES', value: (k: ApiKey) => formatTime(k.expires_at) || 'never' },
  { header: 'LAST USED', value: (k: ApiKey) => formatTime(k.last_used_at) || 'never' },
];

async function apiKeyCreate(ctx: Ctx, cmd: Command): Promise<void> {
  const [name] = argsOf<[string]>(cmd);
  const o = cmd.opts<{ identity?: string; expiresInDays?: string }>();
  const body: Record<string, unknown> = { name };
  if (o.identity !== undefined) body.identity = o.identity;
  if (o.expiresInDays !== undefined)
    body.expires_in_days = parsePositiveInt(o.expiresInDays, '--expires-in-days', 3650);
  const key = await ctx.api().data<ApiKey>('POST', '/api/v1/api-keys', { body });
  // -q prints the key itself: it is the one thing a script needs, and it is shown only now
  ctx.out.item(
    key,
    (k) => k.key,
    () => {
      const c = ctx.out.c;
      ctx.out.print(`Created API key ${c.bold(key.name)} (id ${key.id}) for ${key.identity}.`);
      ctx.out.print();
      ctx.out.print(`  ${c.bold(key.key ?? '')}`);
      ctx.out.print();
      ctx.out.print(
        c.yellow('Copy it now: it is not shown again.') +
          ' Use it as ATTUNE_API_KEY or in an X-API-Key header.',
      );
    },
  );
}

async function apiKeyList(ctx: Ctx, cmd: Command): Promise<void> {
  const o = cmd.opts<{ identity?: string; status?: string; limit?: string }>();
  if (o.status !== undefined && !['active', 'revoked', 'expired', 'all'].includes(o.status))
    throw new UsageError(`--status must be one of active, revoked, expired, all`);
  const { items, total } = await ctx
    .api()
    .list<ApiKey>('/api/v1/api-keys', { identity: o.identity, status: o.status }, limitOf(o.limit));
  ctx.out.list(items, keyColumns(ctx), (k) => k.id, { total, empty: 'no API keys' });
}

async function apiKeyRevoke(ctx: Ctx, cmd: Command): Promise<void> {
  const [ids] = argsOf<[string[]]>(cmd);
  const done: ApiKey[] = [];
  for (const raw of ids)
    done.push(await ctx.api().data<ApiKey>('POST', `/api/v1/api-keys/${parseId(raw, 'API key id')}/revoke`));
  if (ctx.out.human)
    for (const k of done) ctx.out.print(`Revoked API key ${k.id} (${k.name}, ${k.identity})`);
  else if (ctx.out.format === 'quiet') for (const k of done) ctx.out.print(String(k.id));
  else ctx.out.doc(done.length === 1 ? done[0] : done);
}

export function registerSessionCommands(program: Command): void {
  program
    .command('login')
    .description('log in to an Attune server and save the session in the profile')
    .option('-u, --user <login>', "the login (default: the profile's last one, else admin)")
    .option('--password-stdin', 'read the password from standard input instead of asking for it')
    .addHelpText(
      'after',
      '\nThe password is never taken as an argument. The session (an access token renewed\n' +
        'automatically, and a refresh token) is saved with mode 0600 in the configuration file.\n\n' +
        'Examples:\n  attune login --url https://attune.example.org --user alice\n' +
        '  printf %s "$PASSWORD" | attune login --user ci --password-stdin',
    )
    .action(act(login));

  program
    .command('logout')
    .description('end the session of the profile (revokes its refresh token)')
    .option('--all', 'end every session of your identity, on every machine')
    .action(act(logout));

  program
    .command('whoami')
    .description('show who you are logged in as, where, and with which roles')
    .action(act(whoami));

  const profile = program.command('profile').description('manage the profiles of the configuration file');
  profile.command('list').alias('ls').description('list the profiles').action(act(profileList));
  profile
    .command('use')
    .argument('<name>')
    .description('make a profile the default one')
    .action(act(profileUse));
  profile
    .command('remove')
    .alias('rm')
    .argument('<name>')
    .description('remove a profile (ending its session)')
    .action(act(profileRemove));

  const keys = program.command('api-key').description('manage API keys (for scripts and service accounts)');
  keys
    .command('create')
    .argument('<name>', 'what the key is for')
    .description('create an API key; it is shown once (-q prints only the key)')
    .option('--identity <login>', 'create it for another identity (needs api_keys:create)')
    .option('--expires-in-days <days>', 'make it expire (default: never)')
    .action(act(apiKeyCreate));
  withLimit(
    keys
      .command('list')
      .alias('ls')
      .description('list API keys (never the keys themselves)')
      .option('--identity <login>', "only this identity's keys")
      .option('--status <status>', 'active, revoked, expired or all (default)'),
    'keys',
  ).action(act(apiKeyList));
  keys
    .command('revoke')
    .argument('<id...>', 'ids of the keys')
    .description('revoke API keys: they stop working at once')
    .action(act(apiKeyRevoke));
}
