import type { ApiApp } from '../server.ts';

export function registerAuthRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
