/**
 * HMAC signatures of webhook requests: the sender signs the raw request body with a shared secret
 * and sends the hex digest in a header, either bare (`5d41…`) or prefixed with the algorithm
 * (`sha256=5d41…`, as GitHub does). Compared in constant time.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const HMAC_ALGORITHMS = ['sha256', 'sha512'] as const;
export type HmacAlgorithm = (typeof HMAC_ALGORITHMS)[number];

export type SignatureCheck = 'valid' | 'missing' | 'invalid';

/** The hex HMAC of `body` (what a sender puts in the signature header, bare form). */
export function signBody(body: Buffer | string, secret: string, algorithm: HmacAlgorithm): string {
  return createHmac(algorithm, secret).update(body).digest('hex');
}

const HEX = /^[0-9a-fA-F]+$/;

/** Checks the value of the signature header against the raw body. */
export function checkSignature(
  body: Buffer,
  secret: string,
  algorithm: HmacAlgorithm,
  header: string | string[] | undefined,
): SignatureCheck {
  if (header === undefined) return 'missing';
  // A header sent twice is ambiguous: refuse rather than pick one.
  if (Array.isArray(header)) return header.length ? 'invalid' : 'missing';
  let value = header.trim();
  if (value === '') return 'missing';
  const eq = value.indexOf('=');
  if (eq >= 0) {
    if (value.slice(0, eq).toLowerCase() !== algorithm) return 'invalid';
    value = value.slice(eq + 1);
  }
  const expected = createHmac(algorithm, secret).update(body).digest();
  if (value.length !== expected.length * 2 || !HEX.test(value)) return 'invalid';
  return timingSafeEqual(Buffer.from(value, 'hex'), expected) ? 'valid' : 'invalid';
}
