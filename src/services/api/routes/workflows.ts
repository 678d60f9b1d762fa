import type { ApiApp } from '../server.ts';

export function registerWorkflowRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
