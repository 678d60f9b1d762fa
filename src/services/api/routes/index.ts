/**
 * Every route module of the API, registered in one place. A module exports one function that adds
 * its routes (full paths) to the app.
 */
import type { ApiApp } from '../server.ts';
import { registerActionRoutes } from './actions.ts';
import { registerApiKeyRoutes } from './api-keys.ts';
import { registerAuthRoutes } from './auth.ts';
import { registerEnforcementRoutes } from './enforcements.ts';
import { registerEventRoutes } from './events.ts';
import { registerExecutionRoutes } from './executions.ts';
import { registerHealthRoutes } from './health.ts';
import { registerIdentityRoutes } from './identities.ts';
import { registerInquiryRoutes } from './inquiries.ts';
import { registerKeyRoutes } from './keys.ts';
import { registerMetricsRoutes } from './metrics.ts';
import { registerPackInstallRoutes } from './pack-install.ts';
import { registerPackRoutes } from './packs.ts';
import { registerRoleRoutes } from './roles.ts';
import { registerRuleRoutes } from './rules.ts';
import { registerSensorRoutes } from './sensors.ts';
import { registerStatsRoutes } from './stats.ts';
import { registerTriggerRoutes } from './triggers.ts';
import { registerWebhookRoutes } from './webhooks.ts';
import { registerWorkflowRunRoutes } from './workflow-runs.ts';
import { registerWorkflowRoutes } from './workflows.ts';

export function registerRoutes(app: ApiApp): void {
  registerHealthRoutes(app);
  registerMetricsRoutes(app);
  registerAuthRoutes(app);
  registerIdentityRoutes(app);
  registerRoleRoutes(app);
  registerApiKeyRoutes(app);
  registerPackRoutes(app);
  registerPackInstallRoutes(app);
  registerActionRoutes(app);
  registerWorkflowRoutes(app);
  registerTriggerRoutes(app);
  registerSensorRoutes(app);
  registerRuleRoutes(app);
  registerKeyRoutes(app);
  registerEventRoutes(app);
  registerEnforcementRoutes(app);
  registerExecutionRoutes(app);
  registerStatsRoutes(app);
  registerWorkflowRunRoutes(app);
  registerInquiryRoutes(app);
  registerWebhookRoutes(app);
}
