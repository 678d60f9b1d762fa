import type { ApiApp } from '../server.ts';

export function registerKeyRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
