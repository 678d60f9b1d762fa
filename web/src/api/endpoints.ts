/**
 * Every endpoint the UI calls, in one table. The client only takes entries of this table, so a test
 * can check each of them against the OpenAPI document of a running server.
 */
export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Endpoint {
  method: Method;
  /** OpenAPI form: `/api/v1/executions/{id}`. */
  path: string;
}

const ep = (method: Method, path: string): Endpoint => ({ method, path });

export const ENDPOINTS = {
  login: ep('POST', '/auth/login'),
  refresh: ep('POST', '/auth/refresh'),
  logout: ep('POST', '/auth/logout'),
  me: ep('GET', '/auth/me'),
  changePassword: ep('PUT', '/auth/me/password'),

  listIdentities: ep('GET', '/api/v1/identities'),
  createIdentity: ep('POST', '/api/v1/identities'),
  updateIdentity: ep('PUT', '/api/v1/identities/{id}'),
  deleteIdentity: ep('DELETE', '/api/v1/identities/{id}'),

  listRoles: ep('GET', '/api/v1/roles'),
  createRole: ep('POST', '/api/v1/roles'),
  getRole: ep('GET', '/api/v1/roles/{name}'),
  updateRole: ep('PUT', '/api/v1/roles/{name}'),
  deleteRole: ep('DELETE', '/api/v1/roles/{name}'),

  listApiKeys: ep('GET', '/api/v1/api-keys'),
  createApiKey: ep('POST', '/api/v1/api-keys'),
  revokeApiKey: ep('POST', '/api/v1/api-keys/{id}/revoke'),
  deleteApiKey: ep('DELETE', '/api/v1/api-keys/{id}'),

  listPacks: ep('GET', '/api/v1/packs'),
  getPack: ep('GET', '/api/v1/packs/{ref}'),
  deletePack: ep('DELETE', '/api/v1/packs/{ref}'),
  installPack: ep('POST', '/api/v1/packs/install'),

  listActions: ep('GET', '/api/v1/actions'),
  getAction: ep('GET', '/api/v1/actions/{ref}'),

  listWorkflows: ep('GET', '/api/v1/workflows'),
  getWorkflow: ep('GET', '/api/v1/workflows/{ref}'),
  createWorkflow: ep('POST', '/api/v1/workflows'),
  updateWorkflow: ep('PUT', '/api/v1/workflows/{ref}'),
  validateWorkflow: ep('POST', '/api/v1/workflows/validate'),

  listTriggers: ep('GET', '/api/v1/triggers'),
  getTrigger: ep('GET', '/api/v1/triggers/{ref}'),

  listSensors: ep('GET', '/api/v1/sensors'),
  getSensor: ep('GET', '/api/v1/sensors/{ref}'),
  updateSensor: ep('PUT', '/api/v1/sensors/{ref}'),
  sensorStatus: ep('GET', '/api/v1/sensors/{ref}/status'),
  sensorLogs: ep('GET', '/api/v1/sensors/{ref}/logs'),

  listRules: ep('GET', '/api/v1/rules'),
  getRule: ep('GET', '/api/v1/rules/{ref}'),
  createRule: ep('POST', '/api/v1/rules'),
  updateRule: ep('PUT', '/api/v1/rules/{ref}'),
  deleteRule: ep('DELETE', '/api/v1/rules/{ref}'),
  enableRule: ep('POST', '/api/v1/rules/{ref}/enable'),
  disableRule: ep('POST', '/api/v1/rules/{ref}/disable'),
  testRule: ep('POST', '/api/v1/rules/test'),

  listKeys: ep('GET', '/api/v1/keys'),
  getKey: ep('GET', '/api/v1/keys/{name}'),
  createKey: ep('POST', '/api/v1/keys'),
  updateKey: ep('PUT', '/api/v1/keys/{name}'),
  deleteKey: ep('DELETE', '/api/v1/keys/{name}'),

  listEvents: ep('GET', '/api/v1/events'),
  getEvent: ep('GET', '/api/v1/events/{id}'),
  createEvent: ep('POST', '/api/v1/events'),
  listEnforcements: ep('GET', '/api/v1/enforcements'),

  listExecutions: ep('GET', '/api/v1/executions'),
  createExecution: ep('POST', '/api/v1/executions'),
  getExecution: ep('GET', '/api/v1/executions/{id}'),
  cancelExecution: ep('POST', '/api/v1/executions/{id}/cancel'),
  rerunExecution: ep('POST', '/api/v1/executions/{id}/rerun'),
  pauseExecution: ep('POST', '/api/v1/executions/{id}/pause'),
  resumeExecution: ep('POST', '/api/v1/executions/{id}/resume'),
  executionOutput: ep('GET', '/api/v1/executions/{id}/output'),
  executionStream: ep('GET', '/api/v1/executions/{id}/stream'),
  executionsStream: ep('GET', '/api/v1/executions/stream'),
  executionTasks: ep('GET', '/api/v1/executions/{id}/tasks'),
  executionGraph: ep('GET', '/api/v1/executions/{id}/graph'),
  executionStats: ep('GET', '/api/v1/executions/stats'),

  listInquiries: ep('GET', '/api/v1/inquiries'),
  getInquiry: ep('GET', '/api/v1/inquiries/{id}'),
  respondInquiry: ep('POST', '/api/v1/inquiries/{id}/respond'),

  listWebhooks: ep('GET', '/api/v1/webhooks'),
  getWebhook: ep('GET', '/api/v1/webhooks/{name}'),
  createWebhook: ep('POST', '/api/v1/webhooks'),
  updateWebhook: ep('PUT', '/api/v1/webhooks/{name}'),
  deleteWebhook: ep('DELETE', '/api/v1/webhooks/{name}'),
  webhookCalls: ep('GET', '/api/v1/webhooks/{name}/calls'),
} as const satisfies Record<string, Endpoint>;

export type EndpointName = keyof typeof ENDPOINTS;

/** The URL of an endpoint with its `{param}`s filled in (each value URL-encoded). */
export function fillPath(path: string, params: Record<string, string | number> = {}): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`missing path parameter '${name}' for ${path}`);
    return encodeURIComponent(String(v));
  });
}
