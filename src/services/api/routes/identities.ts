import type { ApiApp } from '../server.ts';

export function registerIdentityRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
