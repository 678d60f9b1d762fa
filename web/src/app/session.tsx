/** The signed-in user (from GET /auth/me), their permissions, and sign-out, for every page. */
import { createContext, type ReactNode, useCallback, useContext, useEffect, useState } from 'react';
import { api } from '../api/client.ts';
import { auth } from '../api/resources.ts';
import type { Grant, Me, Resource, Verb } from '../api/types.ts';

export interface SessionValue {
  me: Me;
  can: (resource: Resource, verb: Verb) => boolean;
  refreshMe: () => Promise<void>;
  logout: () => Promise<void>;
}

const Ctx = createContext<SessionValue | null>(null);

export function hasGrant(grants: Grant[], resource: Resource, verb: Verb): boolean {
  return grants.some(
    (g) =>
      (g.resource === '*' || g.resource === resource) &&
      (g.actions.includes('*') || g.actions.includes(verb)),
  );
}

export function SessionProvider({ me: initial, children }: { me: Me; children: ReactNode }) {
  const [me, setMe] = useState(initial);
  useEffect(() => setMe(initial), [initial]);
  const can = useCallback((r: Resource, v: Verb) => hasGrant(me.grants, r, v), [me]);
  const refreshMe = useCallback(async () => setMe(await auth.me()), []);
  const logout = useCallback(() => api.logout(), []);
  return <Ctx.Provider value={{ me, can, refreshMe, logout }}>{children}</Ctx.Provider>;
}

export function useSession(): SessionValue {
  const v = useContext(Ctx);
  if (!v) throw new Error('useSession outside SessionProvider');
  return v;
}
