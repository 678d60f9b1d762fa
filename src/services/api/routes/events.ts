import type { ApiApp } from '../server.ts';

export function registerEventRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
