import { validationError } from './errors.ts';

/** A pack ref or the name part of an entity ref: lowercase, starts with a letter. */
export const NAME_PATTERN = '^[a-z][a-z0-9_-]{0,99}$';
/** `pack.name` (the name may itself contain dots for nested names, e.g. `pack.group.name`). */
export const REF_PATTERN = '^[a-z][a-z0-9_-]{0,99}\\.[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}$';

const nameRe = new RegExp(NAME_PATTERN);
const refRe = new RegExp(REF_PATTERN);

export const isName = (s: string): boolean => nameRe.test(s);
export const isRef = (s: string): boolean => refRe.test(s);

export interface ParsedRef {
  pack: string;
  name: string;
}

export function parseRef(ref: string): ParsedRef {
  if (!isRef(ref)) throw validationError(`'${ref}' is not a valid ref (expected 'pack.name')`, { ref });
  const dot = ref.indexOf('.');
  return { pack: ref.slice(0, dot), name: ref.slice(dot + 1) };
}

export const makeRef = (pack: string, name: string): string => `${pack}.${name}`;
