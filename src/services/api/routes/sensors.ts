import type { ApiApp } from '../server.ts';

export function registerSensorRoutes(_app: ApiApp): void {
  // TODO(owner of this module): routes
}
