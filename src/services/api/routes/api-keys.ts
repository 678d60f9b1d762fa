import type { ApiApp } from '../server.ts';

export function registerApiKeyRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
