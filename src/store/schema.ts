/**
 * The one PostgreSQL schema of the platform (both PGlite and server PostgreSQL; SQL kept to what
 * PostgreSQL 15 supports). Migrations are generated from this file with `npm run db:generate`.
 *
 * Conventions: `bigserial` ids in number mode; `ref` = `pack.name`; timestamps with time zone;
 * free-form documents (schemas, definitions, parameters, results) in jsonb.
 */
import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  index,
  integer,
  json,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';

type Json = unknown;
type JsonObject = Record<string, unknown>;

const id = () => bigserial('id', { mode: 'number' }).primaryKey();
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });
const created = () => ts('created_at').notNull().defaultNow();
const updated = () => ts('updated_at').notNull().defaultNow();
const tags = () => text('tags').array().notNull().default(sql`'{}'::text[]`);
const obj = (name: string) => jsonb(name).$type<JsonObject>();

// ───────────────────────────── packs and definitions ─────────────────────────────

export const packs = pgTable('packs', {
  id: id(),
  ref: text('ref').notNull().unique(),
  label: text('label').notNull(),
  description: text('description').notNull().default(''),
  version: text('version').notNull(),
  author: text('author'),
  email: text('email'),
  tags: tags(),
  dependencies: jsonb('dependencies').$type<string[]>().notNull().default([]),
  confSchema: obj('conf_schema'),
  config: obj('config').notNull().default({}),
  /** Where the pack came from: `{type: 'path'|'git'|'upload'|'api'|'builtin', location?, ref?, checksum?}` */
  source: obj('source').notNull().default({}),
  /** True for packs shipped with the platform (core); they cannot be uninstalled. */
  system: boolean('system').notNull().default(false),
  installedBy: text('installed_by'),
  createdAt: created(),
  updatedAt: updated(),
});

export const runners = pgTable('runners', {
  id: id(),
  /** e.g. `local-shell-cmd`, `local-shell-script`, `python-script`, `node-script`, `http-request`, `noop`, `echo`, `sleep`, `workflow`, `inquiry` */
  ref: text('ref').notNull().unique(),
  description: text('description').notNull().default(''),
  /** Parameters every action of this runner accepts (merged under the action's own). */
  paramSchema: obj('param_schema').notNull().default({}),
  enabled: boolean('enabled').notNull().default(true),
  createdAt: created(),
  updatedAt: updated(),
});

export const actions = pgTable(
  'actions',
  {
    id: id(),
    ref: text('ref').notNull().unique(),
    packId: bigint('pack_id', { mode: 'number' })
      .notNull()
      .references(() => packs.id, { onDelete: 'cascade' }),
    packRef: text('pack_ref').notNull(),
    name: text('name').notNull(),
    label: text('label').notNull(),
    description: text('description').notNull().default(''),
    runner: text('runner').notNull(),
    /** Script path relative to the pack's `actions/` folder, or the command for shell actions. */
    entryPoint: text('entry_point').notNull().default(''),
    paramSchema: obj('param_schema').notNull().default({}),
    outSchema: obj('out_schema'),
    tags: tags(),
    enabled: boolean('enabled').notNull().default(true),
    /** Default timeout for executions of this action (seconds); null = platform default. */
    timeoutSeconds: integer('timeout_seconds'),
    /** `{count, delay, backoff, max_delay, on: ['failed','timeout']}` */
    retryPolicy: obj('retry_policy'),
    /** `{limit, action: 'delay'|'cancel', group_by: [param names]}` */
    concurrencyPolicy: obj('concurrency_policy'),
    /** Runner-specific options (env opt-in, output format, http defaults …). */
    meta: obj('meta').notNull().default({}),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [index('actions_pack_idx').on(t.packId)],
);

export const workflows = pgTable(
  'workflows',
  {
    id: id(),
    ref: text('ref').notNull().unique(),
    packId: bigint('pack_id', { mode: 'number' })
      .notNull()
      .references(() => packs.id, { onDelete: 'cascade' }),
    packRef: text('pack_ref').notNull(),
    /** The action (runner `workflow`, same ref) through which this workflow is executed. */
    actionId: bigint('action_id', { mode: 'number' }).references(() => actions.id, { onDelete: 'set null' }),
    label: text('label').notNull(),
    description: text('description').notNull().default(''),
    version: text('version').notNull().default('1.0.0'),
    paramSchema: obj('param_schema'),
    outSchema: obj('out_schema'),
    /** `{vars, tasks, output_map}` */
    definition: obj('definition').notNull(),
    tags: tags(),
    enabled: boolean('enabled').notNull().default(true),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [index('workflows_pack_idx').on(t.packId)],
);

export const triggers = pgTable('triggers', {
  id: id(),
  ref: text('ref').notNull().unique(),
  packId: bigint('pack_id', { mode: 'number' })
    .notNull()
    .references(() => packs.id, { onDelete: 'cascade' }),
  packRef: text('pack_ref').notNull(),
  name: text('name').notNull(),
  label: text('label').notNull(),
  description: text('description').notNull().default(''),
  /** Schema of the parameters a rule gives this trigger (e.g. the interval of a timer). */
  paramSchema: obj('param_schema'),
  /** Schema an event payload of this trigger must satisfy. */
  payloadSchema: obj('payload_schema'),
  tags: tags(),
  enabled: boolean('enabled').notNull().default(true),
  createdAt: created(),
  updatedAt: updated(),
});

export const sensors = pgTable('sensors', {
  id: id(),
  ref: text('ref').notNull().unique(),
  packId: bigint('pack_id', { mode: 'number' })
    .notNull()
    .references(() => packs.id, { onDelete: 'cascade' }),
  packRef: text('pack_ref').notNull(),
  name: text('name').notNull(),
  label: text('label').notNull(),
  description: text('description').notNull().default(''),
  runner: text('runner').notNull().default('local-shell-script'),
  entryPoint: text('entry_point').notNull().default(''),
  triggerRefs: text('trigger_refs').array().notNull().default(sql`'{}'::text[]`),
  config: obj('config').notNull().default({}),
  pollIntervalSeconds: integer('poll_interval_seconds'),
  tags: tags(),
  enabled: boolean('enabled').notNull().default(true),
  createdAt: created(),
  updatedAt: updated(),
});

export const rules = pgTable(
  'rules',
  {
    id: id(),
    ref: text('ref').notNull().unique(),
    packId: bigint('pack_id', { mode: 'number' })
      .notNull()
      .references(() => packs.id, { onDelete: 'cascade' }),
    packRef: text('pack_ref').notNull(),
    name: text('name').notNull(),
    label: text('label').notNull(),
    description: text('description').notNull().default(''),
    triggerRef: text('trigger_ref').notNull(),
    /** Parameters of the trigger instance (timer interval, webhook name …). */
    triggerParams: obj('trigger_params').notNull().default({}),
    /** `{ "payload.path": {type, pattern}, … }` plus optional `expression` */
    criteria: obj('criteria').notNull().default({}),
    actionRef: text('action_ref').notNull(),
    actionParams: obj('action_params').notNull().default({}),
    tags: tags(),
    enabled: boolean('enabled').notNull().default(true),
    ownerLogin: text('owner_login'),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [
    index('rules_trigger_enabled_idx').on(t.triggerRef, t.enabled),
    index('rules_pack_idx').on(t.packId),
  ],
);

export const webhooks = pgTable('webhooks', {
  id: id(),
  /** The `{name}` of `POST /api/v1/webhooks/{name}`. */
  name: text('name').notNull().unique(),
  triggerRef: text('trigger_ref').notNull().default('core.webhook'),
  description: text('description').notNull().default(''),
  enabled: boolean('enabled').notNull().default(true),
  /** Encrypted HMAC secret (null = no signature required). */
  hmacSecret: text('hmac_secret'),
  hmacAlgorithm: text('hmac_algorithm').notNull().default('sha256'),
  hmacHeader: text('hmac_header').notNull().default('x-attune-signature'),
  maxPayloadBytes: integer('max_payload_bytes').notNull().default(1048576),
  rateLimitPerMinute: integer('rate_limit_per_minute'),
  createdAt: created(),
  updatedAt: updated(),
});

export const webhookCalls = pgTable(
  'webhook_calls',
  {
    id: id(),
    webhookName: text('webhook_name').notNull(),
    receivedAt: created(),
    remoteIp: text('remote_ip'),
    statusCode: integer('status_code').notNull(),
    signatureValid: boolean('signature_valid'),
    eventId: bigint('event_id', { mode: 'number' }),
    durationMs: integer('duration_ms'),
    /** Bytes of the request body read (up to the limit), or its declared length when refused unread. */
    bodyBytes: integer('body_bytes'),
    error: text('error'),
  },
  (t) => [index('webhook_calls_name_idx').on(t.webhookName, t.receivedAt)],
);

// ───────────────────────────── events → executions ─────────────────────────────

export const events = pgTable(
  'events',
  {
    id: id(),
    triggerRef: text('trigger_ref').notNull(),
    payload: jsonb('payload').$type<Json>().notNull(),
    /**
     * The parameters of the trigger instance that fired (a webhook's `{name}`, a timer's spec); `{}`
     * for triggers without parameters. Rules of a parameterised trigger match only equal parameters.
     */
    triggerParams: obj('trigger_params').notNull().default({}),
    /** `api`, `webhook:<name>`, `sensor:<ref>`, `timer`, `internal` */
    source: text('source').notNull().default('api'),
    createdBy: text('created_by'),
    createdAt: created(),
  },
  (t) => [
    index('events_trigger_idx').on(t.triggerRef, t.createdAt),
    index('events_created_idx').on(t.createdAt),
  ],
);

export const enforcements = pgTable(
  'enforcements',
  {
    id: id(),
    ruleId: bigint('rule_id', { mode: 'number' }).references(() => rules.id, { onDelete: 'set null' }),
    ruleRef: text('rule_ref').notNull(),
    triggerRef: text('trigger_ref').notNull(),
    eventId: bigint('event_id', { mode: 'number' })
      .notNull()
      .references(() => events.id, { onDelete: 'cascade' }),
    /** `created` → `scheduled` (an execution exists) | `failed` (parameters could not be rendered) */
    status: text('status').notNull().default('created'),
    resolvedParams: obj('resolved_params'),
    failureReason: text('failure_reason'),
    createdAt: created(),
  },
  (t) => [
    uniqueIndex('enforcements_rule_event_uq').on(t.ruleRef, t.eventId),
    index('enforcements_event_idx').on(t.eventId),
    index('enforcements_created_idx').on(t.createdAt),
  ],
);

export const executions = pgTable(
  'executions',
  {
    id: id(),
    actionRef: text('action_ref').notNull(),
    runner: text('runner').notNull(),
    /** Parameters as given (secrets redacted; the plain values live in execution_secrets). */
    parameters: obj('parameters').notNull().default({}),
    status: text('status').notNull().default('requested'),
    result: jsonb('result').$type<Json>(),
    /** `{message, type, …}` when the execution did not succeed. */
    error: obj('error'),
    parentId: bigint('parent_id', { mode: 'number' }),
    rootId: bigint('root_id', { mode: 'number' }),
    /** Name of the workflow task this execution runs, when it is a child of a workflow. */
    taskName: text('task_name'),
    enforcementId: bigint('enforcement_id', { mode: 'number' }),
    ruleRef: text('rule_ref'),
    triggerRef: text('trigger_ref'),
    eventId: bigint('event_id', { mode: 'number' }),
    createdBy: text('created_by'),
    /** Execution this one re-runs. */
    rerunOf: bigint('rerun_of', { mode: 'number' }),
    /** Execution whose failure this one retries (retry policy); unique: one retry per attempt. */
    retryOf: bigint('retry_of', { mode: 'number' }),
    workerId: text('worker_id'),
    attempt: integer('attempt').notNull().default(1),
    timeoutSeconds: integer('timeout_seconds'),
    /** Concurrency-policy group key (action ref + selected parameter values). */
    policyGroup: text('policy_group'),
    /** For `delayed` (retry back-off or policy wait): not before this time. */
    runAfter: ts('run_after'),
    /** The owner of the current non-terminal state must renew this; the sweeper acts when it passes. */
    leaseExpiresAt: ts('lease_expires_at'),
    heartbeatAt: ts('heartbeat_at'),
    context: obj('context').notNull().default({}),
    createdAt: created(),
    scheduledAt: ts('scheduled_at'),
    startedAt: ts('started_at'),
    finishedAt: ts('finished_at'),
    updatedAt: updated(),
    /** When the follow-up of the terminal status (retry, policy slot, parent, internal trigger) was done. */
    completionHandledAt: ts('completion_handled_at'),
  },
  (t) => [
    index('executions_status_idx').on(t.status, t.createdAt),
    index('executions_action_idx').on(t.actionRef, t.createdAt),
    index('executions_parent_idx').on(t.parentId),
    index('executions_created_idx').on(t.createdAt),
    uniqueIndex('executions_enforcement_uq').on(t.enforcementId),
    index('executions_lease_idx').on(t.leaseExpiresAt),
    uniqueIndex('executions_retry_of_uq').on(t.retryOf),
    index('executions_policy_group_idx').on(t.policyGroup, t.status).where(sql`policy_group IS NOT NULL`),
    index('executions_worker_idx').on(t.workerId).where(sql`status IN ('running', 'canceling')`),
    index('executions_delayed_idx').on(t.runAfter).where(sql`status = 'delayed'`),
    index('executions_requested_idx').on(t.updatedAt).where(sql`status = 'requested'`),
    index('executions_unhandled_idx')
      .on(t.updatedAt)
      .where(sql`finished_at IS NOT NULL AND completion_handled_at IS NULL`),
  ],
);

export const executionSecrets = pgTable('execution_secrets', {
  executionId: bigint('execution_id', { mode: 'number' })
    .primaryKey()
    .references(() => executions.id, { onDelete: 'cascade' }),
  /** Encrypted JSON of the secret parameter values. */
  ciphertext: text('ciphertext').notNull(),
});

export const executionOutput = pgTable(
  'execution_output',
  {
    id: id(),
    executionId: bigint('execution_id', { mode: 'number' })
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    stream: text('stream').notNull(),
    data: text('data').notNull(),
    truncated: boolean('truncated').notNull().default(false),
    createdAt: created(),
  },
  (t) => [index('execution_output_exec_idx').on(t.executionId, t.id)],
);

// ───────────────────────────── workflows at run time ─────────────────────────────

export const workflowRuns = pgTable(
  'workflow_runs',
  {
    /** The workflow execution's id. */
    executionId: bigint('execution_id', { mode: 'number' })
      .primaryKey()
      .references(() => executions.id, { onDelete: 'cascade' }),
    workflowRef: text('workflow_ref').notNull(),
    /** The definition as it was when the run started (later edits do not affect a running workflow). */
    definition: obj('definition').notNull(),
    /**
     * The pure engine's state document. `json`, not `jsonb`: it is rewritten whole at every advance
     * and never queried inside, and `json` stores the text as it comes — half the cost of a `jsonb`
     * write for the megabytes of a large fan-out's document.
     */
    state: json('state').$type<JsonObject>().notNull(),
    status: text('status').notNull(),
    /** Optimistic-concurrency counter: each advance is `… WHERE version = $expected`. */
    version: integer('version').notNull().default(0),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [index('workflow_runs_status_idx').on(t.status)],
);

export const workflowTaskRuns = pgTable(
  'workflow_task_runs',
  {
    id: id(),
    workflowExecutionId: bigint('workflow_execution_id', { mode: 'number' })
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    taskName: text('task_name').notNull(),
    /** Engine-assigned key of this run of the task (unique per workflow run; idempotency of dispatch). */
    runKey: text('run_key').notNull(),
    itemIndex: integer('item_index'),
    attempt: integer('attempt').notNull().default(1),
    status: text('status').notNull(),
    executionId: bigint('execution_id', { mode: 'number' }),
    input: jsonb('input').$type<Json>(),
    result: jsonb('result').$type<Json>(),
    startedAt: ts('started_at'),
    finishedAt: ts('finished_at'),
  },
  (t) => [
    uniqueIndex('workflow_task_runs_key_uq').on(t.workflowExecutionId, t.runKey),
    index('workflow_task_runs_exec_idx').on(t.executionId),
  ],
);

export const inquiries = pgTable(
  'inquiries',
  {
    id: id(),
    /** The `core.ask` execution this inquiry belongs to. */
    executionId: bigint('execution_id', { mode: 'number' })
      .notNull()
      .unique()
      .references(() => executions.id, { onDelete: 'cascade' }),
    workflowExecutionId: bigint('workflow_execution_id', { mode: 'number' }),
    taskName: text('task_name'),
    prompt: text('prompt').notNull().default(''),
    responseSchema: obj('response_schema').notNull().default({}),
    assignedUsers: text('assigned_users').array().notNull().default(sql`'{}'::text[]`),
    assignedRoles: text('assigned_roles').array().notNull().default(sql`'{}'::text[]`),
    /** pending | responded | timeout | canceled */
    status: text('status').notNull().default('pending'),
    response: jsonb('response').$type<Json>(),
    respondedBy: text('responded_by'),
    timeoutAt: ts('timeout_at'),
    createdAt: created(),
    respondedAt: ts('responded_at'),
  },
  (t) => [index('inquiries_status_idx').on(t.status, t.createdAt)],
);

/**
 * Durable timers of workflow runs (task delays, retry back-offs, task timeouts): the engine asks for
 * them with `schedule_timer`; the workflow host fires each due one by feeding `timer_fired` to the
 * engine in the transaction that marks it fired. Re-scheduling a key resets it.
 */
export const workflowTimers = pgTable(
  'workflow_timers',
  {
    workflowExecutionId: bigint('workflow_execution_id', { mode: 'number' })
      .notNull()
      .references(() => executions.id, { onDelete: 'cascade' }),
    /** The engine's timer key (`delay:<task>#<seq>`, `retry:<slot>@<attempt>`, `timeout:<run key>`). */
    key: text('key').notNull(),
    dueAt: ts('due_at').notNull(),
    fired: boolean('fired').notNull().default(false),
    createdAt: created(),
  },
  (t) => [
    primaryKey({ columns: [t.workflowExecutionId, t.key] }),
    index('workflow_timers_due_idx').on(t.dueAt).where(sql`NOT fired`),
  ],
);

// ───────────────────────────── data, identity, access ─────────────────────────────

export const keys = pgTable(
  'keys',
  {
    id: id(),
    name: text('name').notNull(),
    /** `system` (shared) or `user` (owned by `owner`). */
    scope: text('scope').notNull().default('system'),
    /** Login of the owning identity for user scope; '' for system scope. */
    owner: text('owner').notNull().default(''),
    /** Plain JSON text, or `v1:<base64(iv|tag|ciphertext)>` when encrypted. */
    value: text('value').notNull(),
    encrypted: boolean('encrypted').notNull().default(false),
    description: text('description').notNull().default(''),
    expiresAt: ts('expires_at'),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [
    uniqueIndex('keys_scope_owner_name_uq').on(t.scope, t.owner, t.name),
    index('keys_expires_idx').on(t.expiresAt),
  ],
);

export const identities = pgTable('identities', {
  id: id(),
  login: text('login').notNull().unique(),
  displayName: text('display_name').notNull().default(''),
  email: text('email'),
  /** argon2id PHC string; null for service accounts that only use API keys. */
  passwordHash: text('password_hash'),
  /** `user` or `service` */
  kind: text('kind').notNull().default('user'),
  attributes: obj('attributes').notNull().default({}),
  disabled: boolean('disabled').notNull().default(false),
  lastLoginAt: ts('last_login_at'),
  createdAt: created(),
  updatedAt: updated(),
});

export const roles = pgTable('roles', {
  id: id(),
  name: text('name').notNull().unique(),
  description: text('description').notNull().default(''),
  /** `[{resource, actions: []}]` */
  grants: jsonb('grants').$type<{ resource: string; actions: string[] }[]>().notNull().default([]),
  builtin: boolean('builtin').notNull().default(false),
  createdAt: created(),
  updatedAt: updated(),
});

export const identityRoles = pgTable(
  'identity_roles',
  {
    identityId: bigint('identity_id', { mode: 'number' })
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    roleId: bigint('role_id', { mode: 'number' })
      .notNull()
      .references(() => roles.id, { onDelete: 'cascade' }),
  },
  (t) => [primaryKey({ columns: [t.identityId, t.roleId] })],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: id(),
    identityId: bigint('identity_id', { mode: 'number' })
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    /** First characters of the key, shown in listings to tell keys apart. */
    prefix: text('prefix').notNull(),
    /** sha256 of the whole key, hex. The key itself is shown once and never stored. */
    hash: text('hash').notNull().unique(),
    createdBy: text('created_by'),
    createdAt: created(),
    expiresAt: ts('expires_at'),
    lastUsedAt: ts('last_used_at'),
    revokedAt: ts('revoked_at'),
  },
  (t) => [index('api_keys_identity_idx').on(t.identityId)],
);

export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: id(),
    identityId: bigint('identity_id', { mode: 'number' })
      .notNull()
      .references(() => identities.id, { onDelete: 'cascade' }),
    /** sha256 of the opaque token, hex. */
    hash: text('hash').notNull().unique(),
    createdAt: created(),
    expiresAt: ts('expires_at').notNull(),
    revokedAt: ts('revoked_at'),
  },
  (t) => [index('refresh_tokens_identity_idx').on(t.identityId)],
);

export const auditLog = pgTable(
  'audit_log',
  {
    id: id(),
    at: created(),
    actor: text('actor'),
    /** e.g. `auth.login`, `auth.login_failed`, `pack.install`, `key.decrypt`, `rbac.denied` */
    action: text('action').notNull(),
    outcome: text('outcome').notNull().default('success'),
    resourceType: text('resource_type'),
    resourceRef: text('resource_ref'),
    requestId: text('request_id'),
    ip: text('ip'),
    details: obj('details').notNull().default({}),
  },
  (t) => [index('audit_log_at_idx').on(t.at), index('audit_log_action_idx').on(t.action, t.at)],
);

// ───────────────────────────── runtime infrastructure ─────────────────────────────

export const workers = pgTable('workers', {
  id: text('id').primaryKey(),
  hostname: text('hostname').notNull(),
  pid: integer('pid').notNull(),
  runners: text('runners').array().notNull().default(sql`'{}'::text[]`),
  capacity: integer('capacity').notNull(),
  running: integer('running').notNull().default(0),
  /** active | draining | stopped | lost */
  status: text('status').notNull().default('active'),
  labels: obj('labels').notNull().default({}),
  startedAt: created(),
  heartbeatAt: ts('heartbeat_at').notNull().defaultNow(),
  stoppedAt: ts('stopped_at'),
});

export const sensorProcesses = pgTable('sensor_processes', {
  sensorRef: text('sensor_ref').primaryKey(),
  /** Node that runs it (under a lease) */
  owner: text('owner'),
  leaseExpiresAt: ts('lease_expires_at'),
  pid: integer('pid'),
  /** starting | running | backoff | stopped | failed */
  status: text('status').notNull().default('stopped'),
  restarts: integer('restarts').notNull().default(0),
  lastExitCode: integer('last_exit_code'),
  lastError: text('last_error'),
  nextRestartAt: ts('next_restart_at'),
  startedAt: ts('started_at'),
  updatedAt: updated(),
});

export const sensorLogs = pgTable(
  'sensor_logs',
  {
    id: id(),
    sensorRef: text('sensor_ref').notNull(),
    stream: text('stream').notNull(),
    line: text('line').notNull(),
    createdAt: created(),
  },
  (t) => [index('sensor_logs_ref_idx').on(t.sensorRef, t.id)],
);

/**
 * Persistent timer state: one row per distinct timer (trigger ref + trigger parameters) used by an
 * enabled rule. Rules with identical timer parameters share the row, so one firing serves them all.
 * A firing is the guarded `UPDATE … WHERE key = $k AND next_fire_at = $due` committed with its event.
 */
export const timers = pgTable(
  'timers',
  {
    /** sha256 (hex) of the trigger ref and the canonical JSON of the trigger parameters. */
    key: text('key').primaryKey(),
    triggerRef: text('trigger_ref').notNull(),
    /** The parameters exactly as the rules give them; copied into every event of this timer. */
    triggerParams: obj('trigger_params').notNull().default({}),
    /** Null once a one-shot timer has fired (or was skipped): it is done. */
    nextFireAt: ts('next_fire_at'),
    lastFiredAt: ts('last_fired_at'),
    fireCount: integer('fire_count').notNull().default(0),
    /** Why the last firing produced no event (trigger disabled, payload refused …). */
    lastError: text('last_error'),
    createdAt: created(),
    updatedAt: updated(),
  },
  (t) => [index('timers_next_fire_idx').on(t.nextFireAt)],
);

/** Named leases: at most one holder at a time (timers, sweepers, sensors). */
export const leases = pgTable('leases', {
  name: text('name').primaryKey(),
  owner: text('owner').notNull(),
  expiresAt: ts('expires_at').notNull(),
});

/** Transactional outbox: messages written with the state change that causes them, relayed after commit. */
export const outbox = pgTable(
  'outbox',
  {
    id: id(),
    topic: text('topic').notNull(),
    payload: jsonb('payload').$type<Json>().notNull(),
    createdAt: created(),
    publishedAt: ts('published_at'),
    attempts: integer('attempts').notNull().default(0),
  },
  (t) => [index('outbox_unpublished_idx').on(t.id).where(sql`published_at IS NULL`)],
);

/** Small platform-wide settings (e.g. the instance id). */
export const settings = pgTable('settings', {
  key: text('key').primaryKey(),
  value: jsonb('value').$type<Json>().notNull(),
  updatedAt: updated(),
});
