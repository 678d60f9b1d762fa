import type { ApiApp } from '../server.ts';

export function registerPackInstallRoutes(_app: ApiApp): void {
  // routes: POST /api/v1/packs/install
}
