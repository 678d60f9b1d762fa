/**
 * The environment of an action's process: a minimal, explicit set of variables. Nothing of the
 * worker's own environment passes except the names listed in `passEnv`, and never a variable whose
 * name starts with ATTUNE_ (the worker's database URL, keys and passwords live there).
 */
import os from 'node:os';
import { DEFAULT_PATH, type ResolvedRunnerConfig } from './config.ts';
import type { RunRequest } from './runner.ts';
import { type SecretValue, secretIn } from './secrets.ts';

export type EnvResult = { ok: true; env: Record<string, string> } | { ok: false; message: string };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** ATTUNE_PARAM_<NAME> for a parameter name. */
export const paramEnvName = (name: string): string =>
  `ATTUNE_PARAM_${name.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;

function envValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return JSON.stringify(v);
}

/**
 * Builds the environment. `actionEnv` holds extra variables the action asked for (the `env`
 * parameter of local-shell-cmd); they are non-secret by contract, and checked for secret values.
 */
export function buildEnv(
  req: RunRequest,
  cfg: ResolvedRunnerConfig,
  secrets: SecretValue[],
  actionEnv: Record<string, unknown> = {},
): EnvResult {
  const env: Record<string, string> = {};
  for (const name of cfg.passEnv) {
    const v = process.env[name];
    if (v !== undefined && !name.startsWith('ATTUNE_')) env[name] = v;
  }
  env.PATH ??= DEFAULT_PATH;
  env.HOME ??= os.homedir();
  env.LANG ??= 'C.UTF-8';
  for (const [k, v] of Object.entries(cfg.extraEnv)) if (!k.startsWith('ATTUNE_')) env[k] = v;

  const fromAction: string[] = [];
  for (const [k, raw] of Object.entries(actionEnv)) {
    if (!NAME.test(k)) return { ok: false, message: `env: '${k}' is not a valid variable name` };
    if (k.startsWith('ATTUNE_')) {
      return {
        ok: false,
        message: `env: '${k}' is reserved (names starting with ATTUNE_ are set by Attune)`,
      };
    }
    if (raw !== null && typeof raw === 'object') {
      return { ok: false, message: `env: the value of '${k}' must be a string, number or boolean` };
    }
    env[k] = envValue(raw);
    fromAction.push(k);
  }

  const exported =
    req.envParameters === 'all-non-secret'
      ? Object.keys(req.parameters).filter((n) => !req.secretParameters.includes(n))
      : (req.envParameters ?? []);
  for (const name of exported) {
    if (req.secretParameters.includes(name)) {
      return {
        ok: false,
        message: `parameter '${name}' is secret and cannot be exported to the environment; read it from stdin`,
      };
    }
    if (Object.hasOwn(req.parameters, name) && req.parameters[name] !== undefined) {
      env[paramEnvName(name)] = envValue(req.parameters[name]);
      fromAction.push(paramEnvName(name));
    }
  }

  env.ATTUNE_EXECUTION_ID = String(req.executionId);
  env.ATTUNE_ACTION_REF = req.actionRef;
  if (req.packDir) env.ATTUNE_PACK_DIR = req.packDir;
  if (cfg.apiUrl) env.ATTUNE_API_URL = cfg.apiUrl;
  env.ATTUNE_NODE = cfg.node;

  for (const [k, v] of Object.entries(env)) {
    if (v.includes('\0'))
      return { ok: false, message: `environment variable '${k}' contains a NUL character` };
  }
  // Only what the action put there is searched: the worker's own variables may match by chance.
  for (const k of fromAction) {
    const leaked = secretIn(env[k]!, secrets);
    if (leaked !== undefined) {
      return {
        ok: false,
        message: `the value of secret parameter '${leaked}' would appear in environment variable '${k}'; secrets are passed on stdin only`,
      };
    }
  }
  return { ok: true, env };
}
