import type { ApiApp } from '../server.ts';

export function registerActionRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
