CREATE TABLE "actions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ref" text NOT NULL,
	"pack_id" bigint NOT NULL,
	"pack_ref" text NOT NULL,
	"name" text NOT NULL,
	"label" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"runner" text NOT NULL,
	"entry_point" text DEFAULT '' NOT NULL,
	"param_schema" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"out_schema" jsonb,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"timeout_seconds" integer,
	"retry_policy" jsonb,
	"concurrency_policy" jsonb,
	"meta" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "actions_ref_unique" UNIQUE("ref")
);
--> statement-breakpoint
CREATE TABLE "api_keys" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"identity_id" bigint NOT NULL,
	"name" text NOT NULL,
	"prefix" text NOT NULL,
	"hash" text NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_hash_unique" UNIQUE("hash")
);
--> statement-breakpoint
CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor" text,
	"action" text NOT NULL,
	"outcome" text DEFAULT 'success' NOT NULL,
	"resource_type" text,
	"resource_ref" text,
	"request_id" text,
	"ip" text,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "enforcements" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"rule_id" bigint,
	"rule_ref" text NOT NULL,
	"trigger_ref" text NOT NULL,
	"event_id" bigint NOT NULL,
	"status" text DEFAULT 'created' NOT NULL,
	"resolved_params" jsonb,
	"failure_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"trigger_ref" text NOT NULL,
	"payload" jsonb NOT NULL,
	"trigger_params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"source" text DEFAULT 'api' NOT NULL,
	"created_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "execution_output" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"execution_id" bigint NOT NULL,
	"stream" text NOT NULL,
	"data" text NOT NULL,
	"truncated" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "execution_secrets" (
	"execution_id" bigint PRIMARY KEY NOT NULL,
	"ciphertext" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "executions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"action_ref" text NOT NULL,
	"runner" text NOT NULL,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"status" text DEFAULT 'requested' NOT NULL,
	"result" jsonb,
	"error" jsonb,
	"parent_id" bigint,
	"root_id" bigint,
	"task_name" text,
	"enforcement_id" bigint,
	"rule_ref" text,
	"trigger_ref" text,
	"event_id" bigint,
	"created_by" text,
	"rerun_of" bigint,
	"retry_of" bigint,
	"worker_id" text,
	"attempt" integer DEFAULT 1 NOT NULL,
	"timeout_seconds" integer,
	"policy_group" text,
	"run_after" timestamp with time zone,
	"lease_expires_at" timestamp with time zone,
	"heartbeat_at" timestamp with time zone,
	"context" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"scheduled_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completion_handled_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "identities" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"login" text NOT NULL,
	"display_name" text DEFAULT '' NOT NULL,
	"email" text,
	"password_hash" text,
	"kind" text DEFAULT 'user' NOT NULL,
	"attributes" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"disabled" boolean DEFAULT false NOT NULL,
	"last_login_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "identities_login_unique" UNIQUE("login")
);
--> statement-breakpoint
CREATE TABLE "identity_roles" (
	"identity_id" bigint NOT NULL,
	"role_id" bigint NOT NULL,
	CONSTRAINT "identity_roles_identity_id_role_id_pk" PRIMARY KEY("identity_id","role_id")
);
--> statement-breakpoint
CREATE TABLE "inquiries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"execution_id" bigint NOT NULL,
	"workflow_execution_id" bigint,
	"task_name" text,
	"prompt" text DEFAULT '' NOT NULL,
	"response_schema" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"assigned_users" text[] DEFAULT '{}'::text[] NOT NULL,
	"assigned_roles" text[] DEFAULT '{}'::text[] NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"response" jsonb,
	"responded_by" text,
	"timeout_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"responded_at" timestamp with time zone,
	CONSTRAINT "inquiries_execution_id_unique" UNIQUE("execution_id")
);
--> statement-breakpoint
CREATE TABLE "keys" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"scope" text DEFAULT 'system' NOT NULL,
	"owner" text DEFAULT '' NOT NULL,
	"value" text NOT NULL,
	"encrypted" boolean DEFAULT false NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"expires_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "leases" (
	"name" text PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"topic" text NOT NULL,
	"payload" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"published_at" timestamp with time zone,
	"attempts" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "packs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ref" text NOT NULL,
	"label" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"version" text NOT NULL,
	"author" text,
	"email" text,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"dependencies" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"conf_schema" jsonb,
	"config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"source" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"system" boolean DEFAULT false NOT NULL,
	"installed_by" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "packs_ref_unique" UNIQUE("ref")
);
--> statement-breakpoint
CREATE TABLE "refresh_tokens" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"identity_id" bigint NOT NULL,
	"hash" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "refresh_tokens_hash_unique" UNIQUE("hash")
);
--> statement-breakpoint
CREATE TABLE "roles" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"grants" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"builtin" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "roles_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "rules" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ref" text NOT NULL,
	"pack_id" bigint NOT NULL,
	"pack_ref" text NOT NULL,
	"name" text NOT NULL,
	"label" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"trigger_ref" text NOT NULL,
	"trigger_params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"criteria" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"action_ref" text NOT NULL,
	"action_params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"owner_login" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rules_ref_unique" UNIQUE("ref")
);
--> statement-breakpoint
CREATE TABLE "runners" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ref" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"param_schema" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "runners_ref_unique" UNIQUE("ref")
);
--> statement-breakpoint
CREATE TABLE "sensor_logs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"sensor_ref" text NOT NULL,
	"stream" text NOT NULL,
	"line" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sensor_processes" (
	"sensor_ref" text PRIMARY KEY NOT NULL,
	"owner" text,
	"lease_expires_at" timestamp with time zone,
	"pid" integer,
	"status" text DEFAULT 'stopped' NOT NULL,
	"restarts" integer DEFAULT 0 NOT NULL,
	"last_exit_code" integer,
	"last_error" text,
	"next_restart_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sensors" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ref" text NOT NULL,
	"pack_id" bigint NOT NULL,
	"pack_ref" text NOT NULL,
	"name" text NOT NULL,
	"label" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"runner" text DEFAULT 'local-shell-script' NOT NULL,
	"entry_point" text DEFAULT '' NOT NULL,
	"trigger_refs" text[] DEFAULT '{}'::text[] NOT NULL,
	"config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"poll_interval_seconds" integer,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sensors_ref_unique" UNIQUE("ref")
);
--> statement-breakpoint
CREATE TABLE "settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "timers" (
	"key" text PRIMARY KEY NOT NULL,
	"trigger_ref" text NOT NULL,
	"trigger_params" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"next_fire_at" timestamp with time zone,
	"last_fired_at" timestamp with time zone,
	"fire_count" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "triggers" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ref" text NOT NULL,
	"pack_id" bigint NOT NULL,
	"pack_ref" text NOT NULL,
	"name" text NOT NULL,
	"label" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"param_schema" jsonb,
	"payload_schema" jsonb,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "triggers_ref_unique" UNIQUE("ref")
);
--> statement-breakpoint
CREATE TABLE "webhook_calls" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"webhook_name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"remote_ip" text,
	"status_code" integer NOT NULL,
	"signature_valid" boolean,
	"event_id" bigint,
	"duration_ms" integer,
	"body_bytes" integer,
	"error" text
);
--> statement-breakpoint
CREATE TABLE "webhooks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"trigger_ref" text DEFAULT 'core.webhook' NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"hmac_secret" text,
	"hmac_algorithm" text DEFAULT 'sha256' NOT NULL,
	"hmac_header" text DEFAULT 'x-attune-signature' NOT NULL,
	"max_payload_bytes" integer DEFAULT 1048576 NOT NULL,
	"rate_limit_per_minute" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "webhooks_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "workers" (
	"id" text PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"pid" integer NOT NULL,
	"runners" text[] DEFAULT '{}'::text[] NOT NULL,
	"capacity" integer NOT NULL,
	"running" integer DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"heartbeat_at" timestamp with time zone DEFAULT now() NOT NULL,
	"stopped_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "workflow_runs" (
	"execution_id" bigint PRIMARY KEY NOT NULL,
	"workflow_ref" text NOT NULL,
	"definition" jsonb NOT NULL,
	"state" jsonb NOT NULL,
	"status" text NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "workflow_task_runs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"workflow_execution_id" bigint NOT NULL,
	"task_name" text NOT NULL,
	"run_key" text NOT NULL,
	"item_index" integer,
	"attempt" integer DEFAULT 1 NOT NULL,
	"status" text NOT NULL,
	"execution_id" bigint,
	"input" jsonb,
	"result" jsonb,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "workflow_timers" (
	"workflow_execution_id" bigint NOT NULL,
	"key" text NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"fired" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "workflow_timers_workflow_execution_id_key_pk" PRIMARY KEY("workflow_execution_id","key")
);
--> statement-breakpoint
CREATE TABLE "workflows" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"ref" text NOT NULL,
	"pack_id" bigint NOT NULL,
	"pack_ref" text NOT NULL,
	"action_id" bigint,
	"label" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"version" text DEFAULT '1.0.0' NOT NULL,
	"param_schema" jsonb,
	"out_schema" jsonb,
	"definition" jsonb NOT NULL,
	"tags" text[] DEFAULT '{}'::text[] NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "workflows_ref_unique" UNIQUE("ref")
);
--> statement-breakpoint
ALTER TABLE "actions" ADD CONSTRAINT "actions_pack_id_packs_id_fk" FOREIGN KEY ("pack_id") REFERENCES "public"."packs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "enforcements" ADD CONSTRAINT "enforcements_rule_id_rules_id_fk" FOREIGN KEY ("rule_id") REFERENCES "public"."rules"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "enforcements" ADD CONSTRAINT "enforcements_event_id_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "execution_output" ADD CONSTRAINT "execution_output_execution_id_executions_id_fk" FOREIGN KEY ("execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "execution_secrets" ADD CONSTRAINT "execution_secrets_execution_id_executions_id_fk" FOREIGN KEY ("execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "identity_roles" ADD CONSTRAINT "identity_roles_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "identity_roles" ADD CONSTRAINT "identity_roles_role_id_roles_id_fk" FOREIGN KEY ("role_id") REFERENCES "public"."roles"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "inquiries" ADD CONSTRAINT "inquiries_execution_id_executions_id_fk" FOREIGN KEY ("execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "refresh_tokens" ADD CONSTRAINT "refresh_tokens_identity_id_identities_id_fk" FOREIGN KEY ("identity_id") REFERENCES "public"."identities"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rules" ADD CONSTRAINT "rules_pack_id_packs_id_fk" FOREIGN KEY ("pack_id") REFERENCES "public"."packs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sensors" ADD CONSTRAINT "sensors_pack_id_packs_id_fk" FOREIGN KEY ("pack_id") REFERENCES "public"."packs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "triggers" ADD CONSTRAINT "triggers_pack_id_packs_id_fk" FOREIGN KEY ("pack_id") REFERENCES "public"."packs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflow_runs" ADD CONSTRAINT "workflow_runs_execution_id_executions_id_fk" FOREIGN KEY ("execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflow_task_runs" ADD CONSTRAINT "workflow_task_runs_workflow_execution_id_executions_id_fk" FOREIGN KEY ("workflow_execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflow_timers" ADD CONSTRAINT "workflow_timers_workflow_execution_id_executions_id_fk" FOREIGN KEY ("workflow_execution_id") REFERENCES "public"."executions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflows" ADD CONSTRAINT "workflows_pack_id_packs_id_fk" FOREIGN KEY ("pack_id") REFERENCES "public"."packs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workflows" ADD CONSTRAINT "workflows_action_id_actions_id_fk" FOREIGN KEY ("action_id") REFERENCES "public"."actions"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "actions_pack_idx" ON "actions" USING btree ("pack_id");--> statement-breakpoint
CREATE INDEX "api_keys_identity_idx" ON "api_keys" USING btree ("identity_id");--> statement-breakpoint
CREATE INDEX "audit_log_at_idx" ON "audit_log" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "audit_log_action_idx" ON "audit_log" USING btree ("action","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "enforcements_rule_event_uq" ON "enforcements" USING btree ("rule_ref","event_id");--> statement-breakpoint
CREATE INDEX "enforcements_event_idx" ON "enforcements" USING btree ("event_id");--> statement-breakpoint
CREATE INDEX "enforcements_created_idx" ON "enforcements" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "events_trigger_idx" ON "events" USING btree ("trigger_ref","created_at");--> statement-breakpoint
CREATE INDEX "events_created_idx" ON "events" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "execution_output_exec_idx" ON "execution_output" USING btree ("execution_id","id");--> statement-breakpoint
CREATE INDEX "executions_status_idx" ON "executions" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "executions_action_idx" ON "executions" USING btree ("action_ref","created_at");--> statement-breakpoint
CREATE INDEX "executions_parent_idx" ON "executions" USING btree ("parent_id");--> statement-breakpoint
CREATE INDEX "executions_created_idx" ON "executions" USING btree ("created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "executions_enforcement_uq" ON "executions" USING btree ("enforcement_id");--> statement-breakpoint
CREATE INDEX "executions_lease_idx" ON "executions" USING btree ("lease_expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "executions_retry_of_uq" ON "executions" USING btree ("retry_of");--> statement-breakpoint
CREATE INDEX "executions_policy_group_idx" ON "executions" USING btree ("policy_group","status") WHERE policy_group IS NOT NULL;--> statement-breakpoint
CREATE INDEX "executions_worker_idx" ON "executions" USING btree ("worker_id") WHERE status IN ('running', 'canceling');--> statement-breakpoint
CREATE INDEX "executions_delayed_idx" ON "executions" USING btree ("run_after") WHERE status = 'delayed';--> statement-breakpoint
CREATE INDEX "executions_requested_idx" ON "executions" USING btree ("updated_at") WHERE status = 'requested';--> statement-breakpoint
CREATE INDEX "executions_unhandled_idx" ON "executions" USING btree ("updated_at") WHERE finished_at IS NOT NULL AND completion_handled_at IS NULL;--> statement-breakpoint
CREATE INDEX "inquiries_status_idx" ON "inquiries" USING btree ("status","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "keys_scope_owner_name_uq" ON "keys" USING btree ("scope","owner","name");--> statement-breakpoint
CREATE INDEX "keys_expires_idx" ON "keys" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "outbox_unpublished_idx" ON "outbox" USING btree ("id") WHERE published_at IS NULL;--> statement-breakpoint
CREATE INDEX "refresh_tokens_identity_idx" ON "refresh_tokens" USING btree ("identity_id");--> statement-breakpoint
CREATE INDEX "rules_trigger_enabled_idx" ON "rules" USING btree ("trigger_ref","enabled");--> statement-breakpoint
CREATE INDEX "rules_pack_idx" ON "rules" USING btree ("pack_id");--> statement-breakpoint
CREATE INDEX "sensor_logs_ref_idx" ON "sensor_logs" USING btree ("sensor_ref","id");--> statement-breakpoint
CREATE INDEX "timers_next_fire_idx" ON "timers" USING btree ("next_fire_at");--> statement-breakpoint
CREATE INDEX "webhook_calls_name_idx" ON "webhook_calls" USING btree ("webhook_name","created_at");--> statement-breakpoint
CREATE INDEX "workflow_runs_status_idx" ON "workflow_runs" USING btree ("status");--> statement-breakpoint
CREATE UNIQUE INDEX "workflow_task_runs_key_uq" ON "workflow_task_runs" USING btree ("workflow_execution_id","run_key");--> statement-breakpoint
CREATE INDEX "workflow_task_runs_exec_idx" ON "workflow_task_runs" USING btree ("execution_id");--> statement-breakpoint
CREATE INDEX "workflow_timers_due_idx" ON "workflow_timers" USING btree ("due_at") WHERE NOT fired;--> statement-breakpoint
CREATE INDEX "workflows_pack_idx" ON "workflows" USING btree ("pack_id");