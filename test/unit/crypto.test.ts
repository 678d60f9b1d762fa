import { describe, expect, it } from 'vitest';
import { Cipher } from '../../src/security/crypto.ts';

describe('AES-256-GCM cipher', () => {
  const c = new Cipher('a secret');
  it('round-trips and never repeats a ciphertext', () => {
    const a = c.encrypt('hunter2');
    const b = c.encrypt('hunter2');
    expect(a).not.toBe(b);
    expect(a).not.toContain('hunter2');
    expect(c.decrypt(a)).toBe('hunter2');
  });
  it('refuses tampered values and other keys', () => {
    const a = c.encrypt('hunter2');
    const raw = Buffer.from(a.slice(3), 'base64');
    raw[raw.length - 1]! ^= 1;
    expect(() => c.decrypt(`v1:${raw.toString('base64')}`)).toThrow();
    expect(() => new Cipher('another').decrypt(a)).toThrow();
    expect(() => c.decrypt('plain')).toThrow(/not an encrypted value/);
  });
});
