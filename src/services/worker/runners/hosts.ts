/**
 * Host patterns for the HTTP runner's allow and deny lists. A pattern is either a glob over host
 * names and address literals (`*` = any characters, `?` = one; case-insensitive:
 * `*.example.com`, `10.*`, `localhost`) or a CIDR block (`10.0.0.0/8`, `fd00::/8`) that matches
 * addresses.
 */
import { BlockList, isIP } from 'node:net';

export interface HostMatcher {
  /** The first pattern matching `host` (a name or an address literal), if any. */
  match(host: string): string | undefined;
  readonly size: number;
}

const escapeRe = (s: string): string => s.replace(/[.+^${}()|[\]\\]/g, '\\$&');

/** Host names in URLs are case-insensitive and IPv6 literals come in brackets. */
export const normalizeHost = (host: string): string =>
  host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');

export type PatternError = { pattern: string; message: string };

/** Compiles patterns; invalid ones are reported, not ignored. */
export function compileHostPatterns(patterns: readonly string[]): HostMatcher | PatternError {
  const globs: { pattern: string; re: RegExp }[] = [];
  const blocks: { pattern: string; list: BlockList }[] = [];
  for (const raw of patterns) {
    if (typeof raw !== 'string' || raw.trim() === '')
      return { pattern: String(raw), message: 'empty pattern' };
    const p = normalizeHost(raw.trim());
    const slash = p.indexOf('/');
    if (slash >= 0) {
      const addr = p.slice(0, slash);
      const bits = Number(p.slice(slash + 1));
      const v = isIP(addr);
      if (v === 0 || !Number.isInteger(bits) || bits < 0 || bits > (v === 4 ? 32 : 128)) {
        return { pattern: raw, message: 'not a valid CIDR block' };
      }
      const list = new BlockList();
      list.addSubnet(addr, bits, v === 4 ? 'ipv4' : 'ipv6');
      blocks.push({ pattern: raw, list });
      continue;
    }
    if (!/^[a-z0-9.*?:_-]+$/.test(p)) return { pattern: raw, message: 'not a host name, address or glob' };
    const re = new RegExp(`^${escapeRe(p).replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
    globs.push({ pattern: raw, re });
  }
  return {
    size: globs.length + blocks.length,
    match(host: string): string | undefined {
      const h = normalizeHost(host);
      for (const g of globs) if (g.re.test(h)) return g.pattern;
      const v = isIP(h);
      if (v !== 0) {
        // BlockList also matches IPv4-mapped IPv6 addresses (::ffff:a00:1) against IPv4 blocks.
        for (const b of blocks) if (b.list.check(h, v === 4 ? 'ipv4' : 'ipv6')) return b.pattern;
      }
      return undefined;
    },
  };
}

export const isPatternError = (x: HostMatcher | PatternError): x is PatternError => 'message' in x;
