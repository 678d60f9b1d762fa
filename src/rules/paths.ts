/**
 * Payload paths as rule criteria write them: `trigger.body.action`, `payload.items.0.name`,
 * `trigger.headers['X-GitHub-Event']`, `trigger["a.b"][2]`, optionally tagged with `#suffix` so the
 * same field can be tested twice (`trigger.count#low`, `trigger.count#high`).
 */

export interface ParsedPath {
  /** The key as written (with any `#tag`). */
  readonly key: string;
  /** Segments after parsing: strings for names, numbers for `[n]` indexes. */
  readonly segments: readonly (string | number)[];
}

export class PathError extends Error {}

const NAME = /^[^.[\]'"\s#]+/;

/** Parse a criteria key into path segments. Throws PathError with a readable reason. */
export function parsePath(key: string): ParsedPath {
  let src = key;
  const tag = /#[^.[\]'"]*$/.exec(src);
  if (tag) src = src.slice(0, tag.index);
  if (src === '') throw new PathError('empty path');
  const segments: (string | number)[] = [];
  let i = 0;
  let expectName = true;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '[') {
      const rest = src.slice(i);
      const m = /^\[\s*(?:(-?\d+)|'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]/.exec(rest);
      if (!m) throw new PathError(`bad subscript at position ${i} (use [0], ['name'] or ["name"])`);
      if (m[1] !== undefined) segments.push(Number(m[1]));
      else segments.push((m[2] ?? m[3] ?? '').replace(/\\(.)/g, '$1'));
      i += m[0].length;
      expectName = false;
      continue;
    }
    if (c === '.') {
      if (expectName) throw new PathError(`empty segment at position ${i}`);
      i++;
      expectName = true;
      if (i >= src.length) throw new PathError('the path ends with a dot');
      continue;
    }
    if (!expectName) throw new PathError(`expected '.' or '[' at position ${i}`);
    const m = NAME.exec(src.slice(i));
    if (!m) throw new PathError(`unexpected '${c}' at position ${i}`);
    segments.push(m[0]);
    i += m[0].length;
    expectName = false;
  }
  return { key, segments };
}

/**
 * Follow segments from a value: own properties of objects, items of arrays (a name made of digits
 * indexes an array too, so `items.0.name` works; negative indexes count from the end). Returns
 * undefined when any step is missing.
 */
export function resolveSegments(root: unknown, segments: readonly (string | number)[], from = 0): unknown {
  let cur = root;
  for (let s = from; s < segments.length; s++) {
    const seg = segments[s]!;
    if (cur === null || typeof cur !== 'object') return undefined;
    if (Array.isArray(cur)) {
      const n = typeof seg === 'number' ? seg : /^-?\d+$/.test(seg) ? Number(seg) : Number.NaN;
      if (!Number.isInteger(n)) return undefined;
      const idx = n < 0 ? cur.length + n : n;
      if (idx < 0 || idx >= cur.length) return undefined;
      cur = cur[idx];
      continue;
    }
    const k = String(seg);
    if (!Object.hasOwn(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}
