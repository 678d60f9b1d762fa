/** A fresh, migrated store on the backend under test (no HTTP server). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, type Store } from '../../src/store/database.ts';
import { BACKEND, type Backend } from './backend.ts';
import { createTestDatabase } from './postgres.ts';

export async function openTestStore(
  backend: Backend = BACKEND,
): Promise<{ store: Store; close: () => Promise<void> }> {
  if (backend === 'postgres') {
    const db = await createTestDatabase();
    const store = await openStore({ databaseUrl: db.url, poolSize: 4 });
    return {
      store,
      close: async () => {
        await store.close();
        await db.drop();
      },
    };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'attune-store-'));
  const store = await openStore({ pgliteDir: path.join(dir, 'db') });
  return {
    store,
    close: async () => {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
