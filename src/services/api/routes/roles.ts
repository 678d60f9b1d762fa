import type { ApiApp } from '../server.ts';

export function registerRoleRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
