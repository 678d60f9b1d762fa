/**
 * The application: sign-in, then the shell (header, navigation) around the page of the current
 * URL. Pages are loaded on demand, so the first load stays small.
 */
import { type ComponentType, lazy, type ReactNode, Suspense, useEffect, useState } from 'react';
import { api, isMissingEndpoint } from '../api/client.ts';
import { auth, inquiries } from '../api/resources.ts';
import type { Me, Resource } from '../api/types.ts';
import { ErrorBox, Loading } from '../components/ui.tsx';
import { Link, navigate, useLocation, useRoute } from '../lib/router.tsx';
import { LoginPage } from '../pages/Login.tsx';
import { SessionProvider, useSession } from './session.tsx';
import { useTheme } from './theme.ts';

type Params = Record<string, string>;
type Page = ComponentType<{ params: Params }>;

const page = (load: () => Promise<Record<string, unknown>>, name: string): Page =>
  lazy(async () => ({ default: (await load())[name] as Page }));

const Dashboard = page(() => import('../pages/Dashboard.tsx'), 'DashboardPage');
const Executions = page(() => import('../pages/Executions.tsx'), 'ExecutionsPage');
const Execution = page(() => import('../pages/Execution.tsx'), 'ExecutionPage');
const Actions = page(() => import('../pages/Actions.tsx'), 'ActionsPage');
const Action = page(() => import('../pages/Actions.tsx'), 'ActionPage');
const Workflows = page(() => import('../pages/Workflows.tsx'), 'WorkflowsPage');
const Workflow = page(() => import('../pages/Workflows.tsx'), 'WorkflowPage');
const WorkflowNew = page(() => import('../pages/Workflows.tsx'), 'WorkflowNewPage');
const Rules = page(() => import('../pages/Rules.tsx'), 'RulesPage');
const Rule = page(() => import('../pages/Rules.tsx'), 'RulePage');
const RuleEdit = page(() => import('../pages/Rules.tsx'), 'RuleEditPage');
const Triggers = page(() => import('../pages/Triggers.tsx'), 'TriggersPage');
const Trigger = page(() => import('../pages/Triggers.tsx'), 'TriggerPage');
const Sensors = page(() => import('../pages/Sensors.tsx'), 'SensorsPage');
const Sensor = page(() => import('../pages/Sensors.tsx'), 'SensorPage');
const Events = page(() => import('../pages/Events.tsx'), 'EventsPage');
const EventPage = page(() => import('../pages/Events.tsx'), 'EventPage');
const Webhooks = page(() => import('../pages/Webhooks.tsx'), 'WebhooksPage');
const Webhook = page(() => import('../pages/Webhooks.tsx'), 'WebhookPage');
const Inquiries = page(() => import('../pages/Inquiries.tsx'), 'InquiriesPage');
const Inquiry = page(() => import('../pages/Inquiries.tsx'), 'InquiryPage');
const Packs = page(() => import('../pages/Packs.tsx'), 'PacksPage');
const PackPage = page(() => import('../pages/Packs.tsx'), 'PackPage');
const Keys = page(() => import('../pages/Keys.tsx'), 'KeysPage');
const Users = page(() => import('../pages/Access.tsx'), 'UsersPage');
const Roles = page(() => import('../pages/Access.tsx'), 'RolesPage');
const ApiKeys = page(() => import('../pages/Access.tsx'), 'ApiKeysPage');
const Account = page(() => import('../pages/Access.tsx'), 'AccountPage');

const ROUTES: [string, Page][] = [
  ['/', Dashboard],
  ['/executions', Executions],
  ['/executions/:id', Execution],
  ['/actions', Actions],
  ['/actions/:ref', Action],
  ['/workflows', Workflows],
  ['/workflows/new', WorkflowNew],
  ['/workflows/:ref', Workflow],
  ['/rules', Rules],
  ['/rules/new', RuleEdit],
  ['/rules/:ref', Rule],
  ['/rules/:ref/edit', RuleEdit],
  ['/triggers', Triggers],
  ['/triggers/:ref', Trigger],
  ['/sensors', Sensors],
  ['/sensors/:ref', Sensor],
  ['/events', Events],
  ['/events/:id', EventPage],
  ['/webhooks', Webhooks],
  ['/webhooks/:name', Webhook],
  ['/inquiries', Inquiries],
  ['/inquiries/:id', Inquiry],
  ['/packs', Packs],
  ['/packs/:ref', PackPage],
  ['/keys', Keys],
  ['/users', Users],
  ['/roles', Roles],
  ['/api-keys', ApiKeys],
  ['/account', Account],
];
const PATTERNS = ROUTES.map(([p]) => p);
const BY_PATTERN = new Map(ROUTES);

interface NavItem {
  to: string;
  label: string;
  resource?: Resource;
  badge?: ReactNode;
}

function useInquiryCount(): number | null {
  const [count, setCount] = useState<number | null>(null);
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const r = await inquiries.list({ status: 'pending', page_size: 1 });
        if (!stopped) setCount(r.pagination.total_items);
      } catch (e) {
        if (isMissingEndpoint(e) || (e as { status?: number }).status === 403) {
          setCount(null);
          return; // nothing to poll on this server, or not allowed
        }
      }
      if (!stopped) timer = setTimeout(poll, 10_000);
    };
    void poll();
    const onChange = () => {
      clearTimeout(timer);
      void poll();
    };
    window.addEventListener('attune:inquiries-changed', onChange);
    return () => {
      stopped = true;
      clearTimeout(timer);
      window.removeEventListener('attune:inquiries-changed', onChange);
    };
  }, []);
  return count;
}

function Shell() {
  const { me, can, logout } = useSession();
  const { pathname } = useLocation();
  const route = useRoute(PATTERNS);
  const [theme, cycleTheme] = useTheme();
  const pending = useInquiryCount();
  const Current = route ? BY_PATTERN.get(route.pattern) : undefined;

  const groups: [string, NavItem[]][] = [
    ['Overview', [{ to: '/', label: 'Dashboard', resource: 'executions' }]],
    [
      'Runtime',
      [
        { to: '/executions', label: 'Executions', resource: 'executions' },
        {
          to: '/inquiries',
          label: 'Inquiries',
          resource: 'inquiries',
          badge: pending ? (
            <span className="count-badge" title={`${pending} pending`}>
              {pending}
            </span>
          ) : null,
        },
        { to: '/events', label: 'Events', resource: 'events' },
      ],
    ],
    [
      'Automation',
      [
        { to: '/actions', label: 'Actions', resource: 'actions' },
        { to: '/workflows', label: 'Workflows', resource: 'workflows' },
        { to: '/rules', label: 'Rules', resource: 'rules' },
        { to: '/triggers', label: 'Triggers', resource: 'triggers' },
        { to: '/sensors', label: 'Sensors', resource: 'sensors' },
        { to: '/webhooks', label: 'Webhooks', resource: 'webhooks' },
      ],
    ],
    [
      'Platform',
      [
        { to: '/packs', label: 'Packs', resource: 'packs' },
        { to: '/keys', label: 'Keys', resource: 'keys' },
      ],
    ],
    [
      'Access',
      [
        { to: '/users', label: 'Users', resource: 'identities' },
        { to: '/roles', label: 'Roles', resource: 'roles' },
        { to: '/api-keys', label: 'API keys' },
        { to: '/account', label: 'My account' },
      ],
    ],
  ];
  const isCurrent = (to: string) =>
    to === '/' ? pathname === '/' : pathname === to || pathname.startsWith(`${to}/`);

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link to="/" className="brand">
          <img src="/favicon.svg" alt="" /> Attune
        </Link>
        <span className="spacer" />
        {pending !== null && pending > 0 && (
          <Link to="/inquiries" className="button small" aria-label={`${pending} pending inquiries`}>
            Inquiries <span className="count-badge">{pending}</span>
          </Link>
        )}
        <button
          type="button"
          className="small"
          onClick={cycleTheme}
          title="Theme: follows the system, dark, or light"
          aria-label={`Theme: ${theme}. Change theme`}
        >
          {theme === 'system' ? '◐ Auto' : theme === 'dark' ? '☾ Dark' : '☀ Light'}
        </button>
        <a className="button small" href="/docs" target="_blank" rel="noreferrer">
          API docs
        </a>
        <Link to="/account" className="small muted" title="My account">
          {me.display_name || me.login}
        </Link>
        <button type="button" className="small" onClick={() => void logout()}>
          Sign out
        </button>
      </header>
      <aside className="sidebar">
        <nav aria-label="Main">
          {groups.map(([title, items]) => {
            const visible = items.filter((i) => !i.resource || can(i.resource, 'read'));
            if (!visible.length) return null;
            return (
              <div key={title}>
                <div className="section">{title}</div>
                <ul>
                  {visible.map((i) => (
                    <li key={i.to}>
                      <Link to={i.to} aria-current={isCurrent(i.to) ? 'page' : undefined}>
                        <span>{i.label}</span>
                        {i.badge}
                      </Link>
                    </li>
                  ))}
                </ul>
              </div>
            );
          })}
        </nav>
      </aside>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<Loading />}>
          {Current && route ? (
            <Current key={route.pattern} params={route.params} />
          ) : (
            <div className="card">
              <h1>Page not found</h1>
              <p>
                There is no page at <code>{pathname}</code>. <Link to="/">Go to the dashboard</Link>.
              </p>
            </div>
          )}
        </Suspense>
      </main>
    </div>
  );
}

export function App() {
  const [session, setSession] = useState(api.current);
  const [reason, setReason] = useState<string | undefined>();
  const [me, setMe] = useState<Me | null>(null);
  const [error, setError] = useState<unknown>(null);

  useEffect(
    () =>
      api.onSession((s, why) => {
        setSession(s);
        if (!s) {
          setMe(null);
          setReason(why);
        }
      }),
    [],
  );
  const login = session?.login;
  useEffect(() => {
    if (!login) return;
    let cancelled = false;
    setError(null);
    auth
      .me()
      .then((m) => {
        if (!cancelled) setMe(m);
      })
      .catch((e) => {
        if (!cancelled) setError(e);
      });
    return () => {
      cancelled = true;
    };
  }, [login]);

  if (!session)
    return (
      <LoginPage
        reason={reason}
        onLoggedIn={() => {
          setReason(undefined);
          if (window.location.pathname === '/login') navigate('/', { replace: true });
        }}
      />
    );
  if (error)
    return (
      <div className="login">
        <div className="card">
          <ErrorBox error={error} title="Could not load your account" />
          <button type="button" onClick={() => void api.logout()}>
            Sign in again
          </button>
        </div>
      </div>
    );
  if (!me) return <Loading what="Signing in" />;
  return (
    <SessionProvider me={me}>
      <Shell />
    </SessionProvider>
  );
}
