import type { ApiApp } from '../server.ts';

export function registerExecutionRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
