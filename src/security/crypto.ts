/**
 * AES-256-GCM for secrets at rest. Format: `v1:` + base64(iv[12] | tag[16] | ciphertext).
 * The 32-byte key comes from ATTUNE_ENCRYPTION_KEY (any string, hashed with SHA-256) or a file
 * generated once in the data directory.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const PREFIX = 'v1:';

export class Cipher {
  readonly #key: Buffer;
  constructor(secret: string | Buffer) {
    this.#key = createHash('sha256').update(secret).digest();
  }

  encrypt(plaintext: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key, iv);
    const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return PREFIX + Buffer.concat([iv, c.getAuthTag(), ct]).toString('base64');
  }

  decrypt(token: string): string {
    if (!token.startsWith(PREFIX)) throw new Error('not an encrypted value');
    const raw = Buffer.from(token.slice(PREFIX.length), 'base64');
    if (raw.length < 28) throw new Error('encrypted value is truncated');
    const d = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  }
}

export const sha256Hex = (s: string): string => createHash('sha256').update(s).digest('hex');
