/**
 * The resources of the Attune API as its clients read them: the web UI (web/src) and the command
 * line (src/cli) both type their responses with these. Written by hand from the OpenAPI document
 * (/api-spec/openapi.json); a test checks that every endpoint the UI's client calls exists there.
 */

import type { LiveNodeState as EngineNodeState, GraphEdge, GraphNode } from '../../workflow/graph.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = Record<string, unknown>;

export interface Pagination {
  page: number;
  page_size: number;
  total_items: number;
  total_pages: number;
}
export interface ListOf<T> {
  data: T[];
  pagination: Pagination;
}
export interface One<T> {
  data: T;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_expires_in: number;
}

export type Resource =
  | 'packs'
  | 'actions'
  | 'workflows'
  | 'triggers'
  | 'sensors'
  | 'rules'
  | 'webhooks'
  | 'events'
  | 'enforcements'
  | 'executions'
  | 'inquiries'
  | 'keys'
  | 'identities'
  | 'roles'
  | 'api_keys'
  | 'workers'
  | 'audit'
  | '*';
export type Verb =
  | 'read'
  | 'create'
  | 'update'
  | 'delete'
  | 'execute'
  | 'cancel'
  | 'respond'
  | 'decrypt'
  | '*';
export interface Grant {
  resource: Resource;
  actions: Verb[];
}

export interface Identity {
  id: number;
  login: string;
  display_name: string;
  email: string | null;
  kind: 'user' | 'service';
  disabled: boolean;
  roles: string[];
  has_password: boolean;
  last_login_at: string | null;
  created_at: string;
  updated_at: string;
}
export interface Me extends Identity {
  grants: Grant[];
  permissions: Record<string, unknown>;
  via: 'jwt' | 'api_key';
}

export interface Role {
  id: number;
  name: string;
  description: string;
  builtin: boolean;
  grants: Grant[];
  member_count: number;
  created_at: string;
  updated_at: string;
}

export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  identity: string;
  status: 'active' | 'revoked' | 'expired';
  created_by: string | null;
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}
export interface NewApiKey extends ApiKey {
  key: string;
}

export type DefinitionKind = 'actions' | 'workflows' | 'rules' | 'triggers' | 'sensors';

export interface Pack {
  id: number;
  ref: string;
  label: string;
  description: string;
  version: string;
  author: string | null;
  email: string | null;
  tags: string[];
  dependencies: string[];
  config_schema: JsonObject | null;
  config: JsonObject;
  system: boolean;
  source: PackSource;
  installed_by: string | null;
  counts: Record<DefinitionKind, number>;
  created_at: string;
  updated_at: string;
  contents?: Record<DefinitionKind, string[]>;
}

/** Where a pack came from: `api`, `directory`, `archive`, `git` … with what locates it. */
export interface PackSource {
  type?: string;
  location?: string;
  ref?: string;
  commit?: string;
  [key: string]: unknown;
}

export interface PackInstallResult {
  pack: Pack;
  operation: 'installed' | 'updated';
  previous_version: string | null;
  changes: {
    created: Record<DefinitionKind, string[]>;
    updated: Record<DefinitionKind, string[]>;
    removed: Record<DefinitionKind, string[]>;
    unchanged: number;
  };
  disabled: { rules: string[]; sensors: string[] };
  warnings: { file: string | null; line: number | null; path: string; message: string }[];
}

/** What every definition (action, workflow, trigger, sensor, rule) has. */
export interface Definition {
  id: number;
  ref: string;
  pack_ref: string;
  label: string;
  description: string;
  tags: string[];
  enabled: boolean;
  created_at: string;
  updated_at: string;
}

export interface RetryPolicy {
  count?: number;
  delay?: number;
  backoff?: 'constant' | 'linear' | 'exponential';
  max_delay?: number;
  on?: ('failed' | 'timeout')[];
}
export interface ConcurrencyPolicy {
  limit?: number;
  action?: 'delay' | 'cancel';
  group_by?: string[];
}

export interface Action extends Definition {
  name: string;
  runner: string;
  entry_point: string;
  param_schema: JsonObject;
  out_schema: JsonObject | null;
  timeout_seconds: number | null;
  retry_policy: RetryPolicy | null;
  concurrency_policy: ConcurrencyPolicy | null;
  meta: JsonObject;
}

export interface Workflow extends Definition {
  version: string;
  param_schema: JsonObject | null;
  out_schema: JsonObject | null;
  definition: JsonObject;
}
export interface WorkflowWrite {
  ref?: string;
  pack_ref?: string;
  label?: string;
  description?: string;
  version?: string;
  param_schema?: JsonObject | null;
  out_schema?: JsonObject | null;
  tags?: string[];
  enabled?: boolean;
  definition?: JsonObject;
}

export interface WorkflowProblem {
  task?: string;
  path: string;
  message: string;
  severity: 'error' | 'warning';
}
export interface WorkflowValidation {
  ok: boolean;
  problems: WorkflowProblem[];
}

export interface Trigger extends Definition {
  name: string;
  param_schema: JsonObject | null;
  payload_schema: JsonObject | null;
}

export interface Sensor extends Definition {
  name: string;
  runner: string;
  entry_point: string;
  trigger_refs: string[];
  config: JsonObject;
  poll_interval_seconds: number | null;
}
export interface SensorStatus {
  sensor_ref: string;
  enabled: boolean;
  needed: boolean;
  status: string;
  owner: string | null;
  lease_active: boolean;
  lease_expires_at: string | null;
  pid: number | null;
  restarts: number;
  last_exit_code: number | null;
  last_error: string | null;
  next_restart_at: string | null;
  started_at: string | null;
  updated_at: string | null;
}
export interface SensorLogLine {
  id: number;
  stream: string;
  line: string;
  created_at: string;
}

export interface Rule extends Definition {
  name: string;
  trigger_ref: string;
  trigger_params: JsonObject;
  criteria: JsonObject;
  action_ref: string;
  action_params: JsonObject;
  owner_login: string | null;
}
export interface RuleWrite {
  ref?: string;
  label?: string;
  description?: string;
  trigger_ref?: string;
  trigger_params?: JsonObject;
  criteria?: JsonObject;
  action_ref?: string;
  action_params?: JsonObject;
  tags?: string[];
  enabled?: boolean;
}
export interface RuleTestResult {
  matched: boolean;
  would_execute: boolean;
  criteria: JsonObject[];
  parameters: JsonObject | null;
  secret_parameters: string[];
  errors: { stage: string; message: string }[];
  notes: string[];
}

export interface KeyRecord {
  id: number;
  name: string;
  scope: 'system' | 'user';
  owner: string | null;
  value: unknown;
  encrypted: boolean;
  masked: boolean;
  description: string;
  expires_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface EventRecord {
  id: number;
  trigger_ref: string;
  payload: unknown;
  source: string;
  created_by: string | null;
  created_at: string;
}

export interface Enforcement {
  id: number;
  rule_id: number | null;
  rule_ref: string;
  trigger_ref: string;
  event_id: number;
  status: string;
  resolved_params: JsonObject | null;
  failure_reason: string | null;
  execution_id: number | null;
  created_at: string;
}

export interface Execution {
  id: number;
  action_ref: string;
  runner: string;
  status: string;
  parameters: JsonObject;
  result: unknown;
  error: JsonObject | null;
  parent_id: number | null;
  root_id: number | null;
  task_name: string | null;
  enforcement_id: number | null;
  rule_ref: string | null;
  trigger_ref: string | null;
  event_id: number | null;
  created_by: string | null;
  rerun_of: number | null;
  worker_id: string | null;
  attempt: number;
  timeout_seconds: number | null;
  created_at: string;
  scheduled_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  duration_ms: number | null;
}

export interface OutputChunk {
  seq: number;
  stream: 'stdout' | 'stderr';
  data: string;
  truncated: boolean;
}
export interface OutputPage {
  data: (OutputChunk & { created_at: string })[];
  next_after: number;
  has_more: boolean;
}

/** A `status` event of the global execution stream. */
export interface StatusNotice {
  execution_id: number;
  status: string;
  action_ref: string;
  parent_id: number | null;
  at?: string;
}

/** One run of a workflow task (`GET /api/v1/executions/{id}/tasks`). */
export interface TaskRun {
  id?: number;
  task_name: string;
  run_key?: string;
  item_index: number | null;
  attempt: number;
  status: string;
  execution_id: number | null;
  input?: unknown;
  result?: unknown;
  started_at: string | null;
  finished_at: string | null;
  duration_ms?: number | null;
}

// The nodes and edges of a workflow's graph are the engine's own.
export type { GraphEdge, GraphNode };
/** A with-items task's progress, as the engine counts it, with the items finished. */
export type ItemProgress = NonNullable<EngineNodeState['items']> & { done?: number };
/** The engine's live state of a node, with what the API adds from the task runs. */
export interface LiveNodeState extends Omit<EngineNodeState, 'items'> {
  items: ItemProgress | null;
  /** Task runs recorded (attempts and items included). */
  runs?: number;
  /** The child execution of the latest run of the task. */
  last_execution_id?: number | null;
}
/** `GET /api/v1/executions/{id}/graph`. */
export interface LiveGraph {
  execution_id?: number;
  workflow_ref?: string;
  workflow_version?: string | null;
  /** The workflow's status in its engine (running, pausing, paused, failing, canceling, …). */
  status: string;
  execution_status?: string;
  nodes: (GraphNode & { state: LiveNodeState })[];
  edges: (GraphEdge & { taken: number })[];
}

export interface Inquiry {
  id: number;
  execution_id: number;
  workflow_execution_id: number | null;
  task_name: string | null;
  prompt: string;
  response_schema: JsonObject;
  assigned_users: string[];
  assigned_roles: string[];
  status: 'pending' | 'responded' | 'timeout' | 'canceled';
  response: unknown;
  responded_by: string | null;
  timeout_at: string | null;
  created_at: string;
  responded_at: string | null;
  /** Whether the caller may answer it now. */
  can_respond?: boolean;
}

export interface Webhook {
  name: string;
  url: string;
  trigger_ref: string;
  description: string;
  enabled: boolean;
  implicit: boolean;
  hmac: { algorithm: 'sha256' | 'sha512'; header: string } | null;
  max_payload_bytes: number;
  rate_limit_per_minute: number | null;
  rule_refs: string[];
  created_at: string | null;
  updated_at: string | null;
}
export interface WebhookWrite {
  name?: string;
  trigger?: string;
  description?: string;
  enabled?: boolean;
  hmac?: { secret?: string; algorithm?: 'sha256' | 'sha512'; header?: string } | null;
  max_payload_bytes?: number;
  rate_limit_per_minute?: number | null;
}
export interface WebhookCall {
  id: number;
  webhook_name: string;
  received_at: string;
  remote_ip: string | null;
  status_code: number;
  signature_valid: boolean | null;
  event_id: number | null;
  duration_ms: number | null;
  body_bytes: number | null;
  error: string | null;
}

/** `GET /api/v1/executions/stats`. */
export interface ExecutionStats {
  since: string;
  until: string;
  bucket_seconds: number;
  series: { start: string; counts: Record<string, number> }[];
  totals: Record<string, number>;
  success_rate: number | null;
  active: Record<string, number>;
  waiting_for_input: number;
  busiest_actions: { action_ref: string; count: number; failed: number }[];
  busiest_rules: { rule_ref: string; count: number }[];
  recent_failures: Pick<Execution, 'id' | 'action_ref' | 'status' | 'finished_at' | 'error'>[];
}
