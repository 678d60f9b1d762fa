/**
 * The encryption key and the JWT signing secret: taken from the configuration when given, else
 * generated once into the data directory (mode 0600) and reused on every start.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

function fileSecret(dataDir: string, name: string): string {
  const file = path.join(dataDir, name);
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const value = randomBytes(32).toString('base64url');
  try {
    fs.writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' });
    return value;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return fs.readFileSync(file, 'utf8').trim();
    throw e;
  }
}

export interface InstanceSecrets {
  encryptionKey: string;
  jwtSecret: string;
}

export function loadInstanceSecrets(
  dataDir: string,
  given: { encryptionKey?: string | undefined; jwtSecret?: string | undefined },
): InstanceSecrets {
  return {
    encryptionKey: given.encryptionKey ?? fileSecret(dataDir, 'encryption.key'),
    jwtSecret: given.jwtSecret ?? fileSecret(dataDir, 'jwt.secret'),
  };
}
