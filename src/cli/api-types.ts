/**
 * The shapes of the API resources the command line reads (the fields it uses; see the OpenAPI
 * document at /api-spec/openapi.json for all of them).
 */

export type JsonObject = Record<string, unknown>;

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

export interface Action extends Definition {
  name: string;
  runner: string;
  entry_point: string;
  param_schema: JsonObject;
  out_schema: JsonObject | null;
  timeout_seconds: number | null;
  retry_policy: JsonObject | null;
  concurrency_policy: JsonObject | null;
}

export interface Workflow extends Definition {
  version: string;
  param_schema: JsonObject | null;
  out_schema: JsonObject | null;
  definition: JsonObject;
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

export interface Rule extends Definition {
  name: string;
  trigger_ref: string;
  trigger_params: JsonObject;
  criteria: JsonObject;
  action_ref: string;
  action_params: JsonObject;
  owner_login: string | null;
}

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
  source: Record<string, string>;
  installed_by: string | null;
  counts: Record<string, number>;
  contents?: Record<string, string[]>;
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

export interface Inquiry {
  id: number;
  status: string;
  prompt: string;
  response_schema: JsonObject | null;
  response: unknown;
  responded_by: string | null;
  responded_at: string | null;
  timeout_at: string | null;
  created_at: string;
  execution_id: number | null;
  workflow_execution_id: number | null;
  task_name: string | null;
  assigned_users: string[];
  assigned_roles: string[];
  can_respond?: boolean;
}
