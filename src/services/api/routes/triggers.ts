import type { ApiApp } from '../server.ts';

export function registerTriggerRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
