import type { ApiApp } from '../server.ts';

export function registerPackRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
