/** Typed calls of every endpoint the UI uses (see endpoints.ts). */
import { api } from './client.ts';
import { ENDPOINTS as E } from './endpoints.ts';
import type {
  Action,
  ApiKey,
  Enforcement,
  EventRecord,
  Execution,
  ExecutionStats,
  Grant,
  Identity,
  Inquiry,
  JsonObject,
  KeyRecord,
  ListOf,
  LiveGraph,
  Me,
  NewApiKey,
  One,
  OutputPage,
  Pack,
  PackInstallResult,
  Role,
  Rule,
  RuleTestResult,
  RuleWrite,
  Sensor,
  SensorLogLine,
  SensorStatus,
  TaskRun,
  TokenPair,
  Trigger,
  Webhook,
  WebhookCall,
  WebhookWrite,
  Workflow,
  WorkflowValidation,
  WorkflowWrite,
} from './types.ts';

type Q = Record<string, string | number | boolean | undefined | null>;
const data = async <T>(p: Promise<One<T>>): Promise<T> => (await p).data;

export const auth = {
  me: () => data(api.call<One<Me>>(E.me)),
  changePassword: (current_password: string, new_password: string) =>
    data(api.call<One<TokenPair>>(E.changePassword, { body: { current_password, new_password } })),
};

export const identities = {
  list: (query: Q = {}) => api.call<ListOf<Identity>>(E.listIdentities, { query }),
  create: (body: JsonObject) => data(api.call<One<Identity>>(E.createIdentity, { body })),
  update: (id: number, body: JsonObject) =>
    data(api.call<One<Identity>>(E.updateIdentity, { params: { id }, body })),
  remove: (id: number) => api.call<unknown>(E.deleteIdentity, { params: { id } }),
};

export const roles = {
  list: (query: Q = {}) => api.call<ListOf<Role>>(E.listRoles, { query }),
  get: (name: string) => data(api.call<One<Role>>(E.getRole, { params: { name } })),
  create: (body: { name: string; description?: string; grants: Grant[] }) =>
    data(api.call<One<Role>>(E.createRole, { body })),
  update: (name: string, body: { description?: string; grants?: Grant[] }) =>
    data(api.call<One<Role>>(E.updateRole, { params: { name }, body })),
  remove: (name: string, force = false) =>
    api.call<unknown>(E.deleteRole, { params: { name }, query: { force: force || undefined } }),
};

export const apiKeys = {
  list: (query: Q = {}) => api.call<ListOf<ApiKey>>(E.listApiKeys, { query }),
  create: (body: { name: string; identity?: string; expires_in_days?: number }) =>
    data(api.call<One<NewApiKey>>(E.createApiKey, { body })),
  revoke: (id: number) => data(api.call<One<ApiKey>>(E.revokeApiKey, { params: { id } })),
  remove: (id: number) => api.call<unknown>(E.deleteApiKey, { params: { id } }),
};

export const packs = {
  list: (query: Q = {}) => api.call<ListOf<Pack>>(E.listPacks, { query }),
  get: (ref: string) => data(api.call<One<Pack>>(E.getPack, { params: { ref } })),
  remove: (ref: string, force = false) =>
    api.call<unknown>(E.deletePack, { params: { ref }, query: { force: force || undefined } }),
  installFrom: (body: { source: 'path' | 'git'; path?: string; url?: string; ref?: string }, force = false) =>
    data(api.call<One<PackInstallResult>>(E.installPack, { body, query: { force: force || undefined } })),
  upload: (file: Blob, force = false) =>
    data(
      api.call<One<PackInstallResult>>(E.installPack, {
        raw: { data: file, contentType: 'application/gzip' },
        query: { force: force || undefined },
      }),
    ),
};

export const actions = {
  list: (query: Q = {}) => api.call<ListOf<Action>>(E.listActions, { query }),
  get: (ref: string) => data(api.call<One<Action>>(E.getAction, { params: { ref } })),
};

export const workflows = {
  list: (query: Q = {}) => api.call<ListOf<Workflow>>(E.listWorkflows, { query }),
  get: (ref: string) => data(api.call<One<Workflow>>(E.getWorkflow, { params: { ref } })),
  create: (body: WorkflowWrite) => data(api.call<One<Workflow>>(E.createWorkflow, { body })),
  update: (ref: string, body: WorkflowWrite) =>
    data(api.call<One<Workflow>>(E.updateWorkflow, { params: { ref }, body })),
  validate: (body: JsonObject, signal?: AbortSignal) =>
    data(api.call<One<WorkflowValidation>>(E.validateWorkflow, { body, signal })),
};

export const triggers = {
  list: (query: Q = {}) => api.call<ListOf<Trigger>>(E.listTriggers, { query }),
  get: (ref: string) => data(api.call<One<Trigger>>(E.getTrigger, { params: { ref } })),
};

export const sensors = {
  list: (query: Q = {}) => api.call<ListOf<Sensor>>(E.listSensors, { query }),
  get: (ref: string) => data(api.call<One<Sensor>>(E.getSensor, { params: { ref } })),
  setEnabled: (ref: string, enabled: boolean) =>
    data(api.call<One<Sensor>>(E.updateSensor, { params: { ref }, body: { enabled } })),
  status: (ref: string) => data(api.call<One<SensorStatus>>(E.sensorStatus, { params: { ref } })),
  logs: (ref: string, query: Q = {}) =>
    data(api.call<One<SensorLogLine[]>>(E.sensorLogs, { params: { ref }, query })),
};

export const rules = {
  list: (query: Q = {}) => api.call<ListOf<Rule>>(E.listRules, { query }),
  get: (ref: string) => data(api.call<One<Rule>>(E.getRule, { params: { ref } })),
  create: (body: RuleWrite) => data(api.call<One<Rule>>(E.createRule, { body })),
  update: (ref: string, body: RuleWrite) =>
    data(api.call<One<Rule>>(E.updateRule, { params: { ref }, body })),
  remove: (ref: string) => api.call<unknown>(E.deleteRule, { params: { ref } }),
  setEnabled: (ref: string, enabled: boolean) =>
    data(api.call<One<Rule>>(enabled ? E.enableRule : E.disableRule, { params: { ref } })),
  test: (body: JsonObject) => data(api.call<One<RuleTestResult>>(E.testRule, { body })),
};

export const keys = {
  list: (query: Q = {}) => api.call<ListOf<KeyRecord>>(E.listKeys, { query }),
  get: (name: string, query: Q = {}) => data(api.call<One<KeyRecord>>(E.getKey, { params: { name }, query })),
  create: (body: JsonObject) => data(api.call<One<KeyRecord>>(E.createKey, { body })),
  update: (name: string, query: Q, body: JsonObject) =>
    data(api.call<One<KeyRecord>>(E.updateKey, { params: { name }, query, body })),
  remove: (name: string, query: Q) => api.call<unknown>(E.deleteKey, { params: { name }, query }),
};

export const events = {
  list: (query: Q = {}) => api.call<ListOf<EventRecord>>(E.listEvents, { query }),
  get: (id: number) => data(api.call<One<EventRecord>>(E.getEvent, { params: { id } })),
  create: (trigger: string, payload: unknown) =>
    data(api.call<One<EventRecord>>(E.createEvent, { body: { trigger, payload } })),
  enforcements: (query: Q = {}) => api.call<ListOf<Enforcement>>(E.listEnforcements, { query }),
};

export const executions = {
  list: (query: Q = {}, signal?: AbortSignal) =>
    api.call<ListOf<Execution>>(E.listExecutions, { query, signal }),
  get: (id: number) => data(api.call<One<Execution>>(E.getExecution, { params: { id } })),
  create: (action: string, parameters: JsonObject) =>
    data(api.call<One<Execution>>(E.createExecution, { body: { action, parameters } })),
  cancel: (id: number) => data(api.call<One<Execution>>(E.cancelExecution, { params: { id }, body: {} })),
  rerun: (id: number, body: JsonObject = {}) =>
    data(api.call<One<Execution>>(E.rerunExecution, { params: { id }, body })),
  pause: (id: number) => data(api.call<One<Execution>>(E.pauseExecution, { params: { id }, body: {} })),
  resume: (id: number) => data(api.call<One<Execution>>(E.resumeExecution, { params: { id }, body: {} })),
  output: (id: number, query: Q = {}) => api.call<OutputPage>(E.executionOutput, { params: { id }, query }),
  tasks: (id: number) => api.call<{ data: TaskRun[] }>(E.executionTasks, { params: { id } }),
  graph: (id: number) => data(api.call<One<LiveGraph>>(E.executionGraph, { params: { id } })),
  stats: (query: Q = {}) => data(api.call<One<ExecutionStats>>(E.executionStats, { query })),
};

export const inquiries = {
  list: (query: Q = {}) => api.call<ListOf<Inquiry>>(E.listInquiries, { query }),
  get: (id: number) => data(api.call<One<Inquiry>>(E.getInquiry, { params: { id } })),
  respond: (id: number, response: JsonObject) =>
    data(api.call<One<Inquiry>>(E.respondInquiry, { params: { id }, body: { response } })),
};

export const webhooks = {
  list: (query: Q = {}) => api.call<ListOf<Webhook>>(E.listWebhooks, { query }),
  get: (name: string) => data(api.call<One<Webhook>>(E.getWebhook, { params: { name } })),
  create: (body: WebhookWrite) => data(api.call<One<Webhook>>(E.createWebhook, { body })),
  update: (name: string, body: WebhookWrite) =>
    data(api.call<One<Webhook>>(E.updateWebhook, { params: { name }, body })),
  remove: (name: string) => api.call<unknown>(E.deleteWebhook, { params: { name } }),
  calls: (name: string, query: Q = {}) =>
    api.call<ListOf<WebhookCall>>(E.webhookCalls, { params: { name }, query }),
};
