/**
 * Secret parameters reach a process only on stdin. These helpers find their values so that a
 * command line or an environment that would carry one can be refused before anything starts.
 */
import type { RunRequest } from './runner.ts';

/** Shorter secret values are not searched for: they would match ordinary text by chance. */
const MIN_SECRET_LENGTH = 4;

export interface SecretValue {
  parameter: string;
  value: string;
}

function collect(parameter: string, v: unknown, out: SecretValue[], depth: number): void {
  if (typeof v === 'string') {
    if (v.length >= MIN_SECRET_LENGTH) out.push({ parameter, value: v });
  } else if (typeof v === 'number' || typeof v === 'bigint') {
    const s = String(v);
    if (s.length >= MIN_SECRET_LENGTH) out.push({ parameter, value: s });
  } else if (v !== null && typeof v === 'object' && depth < 20) {
    for (const x of Object.values(v)) collect(parameter, x, out, depth + 1);
  }
}

/** The values (string leaves) of the request's secret parameters. */
export function secretValues(req: Pick<RunRequest, 'parameters' | 'secretParameters'>): SecretValue[] {
  const out: SecretValue[] = [];
  for (const name of req.secretParameters) {
    if (Object.hasOwn(req.parameters, name)) collect(name, req.parameters[name], out, 0);
  }
  return out;
}

/** The secret parameter whose value occurs in `text`, if any. */
export function secretIn(text: string, secrets: SecretValue[]): string | undefined {
  for (const s of secrets) if (text.includes(s.value)) return s.parameter;
  return undefined;
}
