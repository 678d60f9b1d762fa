import type { ApiApp } from '../server.ts';

export function registerEnforcementRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
