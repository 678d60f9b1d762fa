import type { ApiApp } from '../server.ts';

export function registerRuleRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
