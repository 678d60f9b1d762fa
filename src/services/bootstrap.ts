/**
 * First-start and every-start seeding: the built-in roles, the runners, and the `admin` identity.
 * Idempotent, safe for several processes starting at once (unique keys + ON CONFLICT).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { eq, sql } from 'drizzle-orm';
import { BUILTIN_ROLE_NAMES, BUILTIN_ROLES } from '../domain/permissions.ts';
import { RUNNERS } from '../domain/runners.ts';
import type { Store } from '../store/database.ts';
import { identities, identityRoles, roles, runners } from '../store/schema.ts';
import { hashPassword } from './api/auth.ts';

export interface BootstrapResult {
  /** Set when this start created the admin identity with a generated password. */
  generatedAdminPassword?: string;
  adminPasswordFile?: string;
  adminCreated: boolean;
}

export async function bootstrap(
  store: Store,
  opts: { adminPassword?: string | undefined; dataDir: string },
): Promise<BootstrapResult> {
  const db = store.db;
  for (const name of BUILTIN_ROLE_NAMES) {
    const r = BUILTIN_ROLES[name];
    await db
      .insert(roles)
      .values({ name, description: r.description, grants: r.grants, builtin: true })
      .onConflictDoUpdate({
        target: roles.name,
        set: { description: r.description, grants: r.grants, builtin: true, updatedAt: sql`now()` },
      });
  }
  for (const [ref, description] of Object.entries(RUNNERS)) {
    await db
      .insert(runners)
      .values({ ref, description })
      .onConflictDoUpdate({ target: runners.ref, set: { description } });
  }

  const [existing] = await db
    .select({ id: identities.id })
    .from(identities)
    .where(eq(identities.login, 'admin'));
  if (existing) return { adminCreated: false };

  const generated = opts.adminPassword ? undefined : randomBytes(12).toString('base64url');
  const password = opts.adminPassword ?? generated!;
  const inserted = await db
    .insert(identities)
    .values({ login: 'admin', displayName: 'Administrator', passwordHash: await hashPassword(password) })
    .onConflictDoNothing()
    .returning({ id: identities.id });
  const id = inserted[0]?.id;
  if (id === undefined) return { adminCreated: false }; // another process created it first
  const [adminRole] = await db.select({ id: roles.id }).from(roles).where(eq(roles.name, 'admin'));
  await db.insert(identityRoles).values({ identityId: id, roleId: adminRole!.id }).onConflictDoNothing();
  const result: BootstrapResult = { adminCreated: true };
  if (generated) {
    fs.mkdirSync(opts.dataDir, { recursive: true });
    const file = path.join(opts.dataDir, 'admin-password');
    fs.writeFileSync(file, generated + '\n', { mode: 0o600 });
    result.generatedAdminPassword = generated;
    result.adminPasswordFile = file;
  }
  return result;
}
