/**
 * A small history router: the current location as state, `navigate()`, `<Link>` (a real anchor, so
 * middle-click and copy-link work) and route matching with `:params`.
 */
import {
  type AnchorHTMLAttributes,
  createContext,
  type MouseEvent,
  type ReactNode,
  useContext,
  useEffect,
  useMemo,
  useState,
} from 'react';

export interface Location {
  pathname: string;
  search: URLSearchParams;
}

const read = (): Location => ({
  pathname: window.location.pathname.replace(/\/+$/, '') || '/',
  search: new URLSearchParams(window.location.search),
});

const LocationContext = createContext<Location>({ pathname: '/', search: new URLSearchParams() });

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  window.dispatchEvent(new PopStateEvent('popstate'));
  if (!opts.replace) window.scrollTo?.(0, 0);
}

/** Updates query parameters of the current URL (without a new history entry). */
export function setSearch(changes: Record<string, string | undefined>): void {
  const sp = new URLSearchParams(window.location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined || v === '') sp.delete(k);
    else sp.set(k, v);
  }
  const q = sp.toString();
  navigate(`${window.location.pathname}${q ? `?${q}` : ''}`, { replace: true });
}

export function RouterProvider({ children }: { children: ReactNode }) {
  const [loc, setLoc] = useState(read);
  useEffect(() => {
    const on = () => setLoc(read());
    window.addEventListener('popstate', on);
    return () => window.removeEventListener('popstate', on);
  }, []);
  return <LocationContext.Provider value={loc}>{children}</LocationContext.Provider>;
}

export const useLocation = (): Location => useContext(LocationContext);

/** Matches `pattern` (`/executions/:id`) against `pathname`; the decoded params, or null. */
export function matchPath(pattern: string, pathname: string): Record<string, string> | null {
  const p = pattern.split('/').filter(Boolean);
  const s = pathname.split('/').filter(Boolean);
  if (p.length !== s.length) return null;
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const seg = p[i]!;
    const val = s[i]!;
    if (seg.startsWith(':')) {
      try {
        params[seg.slice(1)] = decodeURIComponent(val);
      } catch {
        return null;
      }
    } else if (seg !== val) return null;
  }
  return params;
}

export function useRoute<T extends string>(
  patterns: readonly T[],
): { pattern: T; params: Record<string, string> } | null {
  const { pathname } = useLocation();
  return useMemo(() => {
    for (const pattern of patterns) {
      const params = matchPath(pattern, pathname);
      if (params) return { pattern, params };
    }
    return null;
  }, [patterns, pathname]);
}

type LinkProps = AnchorHTMLAttributes<HTMLAnchorElement> & { to: string };

export function Link({ to, onClick, children, ...rest }: LinkProps) {
  const handle = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (rest.target && rest.target !== '_self') return;
    e.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={handle} {...rest}>
      {children}
    </a>
  );
}

/** A path segment for a ref or name (dots are fine in paths; slashes and the like are encoded). */
export const seg = (s: string | number): string => encodeURIComponent(String(s));
