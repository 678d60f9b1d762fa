/**
 * The fields of an inquiry, read from the parameters of its `core.ask` execution (or from a
 * workflow task's input). Who may answer is `assignees: {users, roles}`; the workflow language
 * also accepts `users` and `roles` at the top of the input, as the docs show.
 */
import { isPlainObject } from '../../workflow/definition.ts';
import { parametersToSchema } from '../../workflow/file-format.ts';

export interface InquiryFields {
  prompt: string;
  responseSchema: Record<string, unknown>;
  users: string[];
  roles: string[];
  /** Seconds to wait for an answer; null = no limit. */
  timeoutSeconds: number | null;
}

const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string' && x.length > 0) : [];

/**
 * The parameters of a `core.ask` execution for a workflow task's input: `users`/`roles` folded into
 * `assignees`, and the response schema the engine read (flat form already turned into JSON Schema).
 */
export function inquiryParameters(
  input: Record<string, unknown>,
  responseSchema: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (input.prompt !== undefined) out.prompt = input.prompt;
  if (responseSchema && Object.keys(responseSchema).length > 0) out.response_schema = responseSchema;
  else if (input.response_schema !== undefined) out.response_schema = input.response_schema;
  const a = isPlainObject(input.assignees) ? input.assignees : {};
  const users = [...new Set([...strings(a.users), ...strings(input.users)])];
  const roles = [...new Set([...strings(a.roles), ...strings(input.roles)])];
  if (input.assignees !== undefined && !isPlainObject(input.assignees)) out.assignees = input.assignees;
  else if (users.length || roles.length)
    out.assignees = { ...(users.length ? { users } : {}), ...(roles.length ? { roles } : {}) };
  if (input.timeout !== undefined) out.timeout = input.timeout;
  return out;
}

/** The inquiry fields of validated `core.ask` parameters. */
export function inquiryFields(parameters: Record<string, unknown>): InquiryFields {
  const a = isPlainObject(parameters.assignees) ? parameters.assignees : {};
  let responseSchema: Record<string, unknown> = {};
  if (isPlainObject(parameters.response_schema)) {
    const r = parametersToSchema(parameters.response_schema, { object: true });
    responseSchema = r.schema ?? parameters.response_schema;
  }
  const t = parameters.timeout;
  return {
    prompt: typeof parameters.prompt === 'string' ? parameters.prompt : '',
    responseSchema,
    users: [...new Set([...strings(a.users), ...strings(parameters.users)])],
    roles: [...new Set([...strings(a.roles), ...strings(parameters.roles)])],
    timeoutSeconds: typeof t === 'number' && Number.isFinite(t) && t > 0 ? t : null,
  };
}
