/**
 * Access control as data. A grant gives a set of actions on one resource; a role is a set of grants.
 * The four built-in roles are defined here and seeded into the database at start; custom roles are
 * stored the same way. `checkPermission` is the one place a decision is made.
 */
export const RESOURCES = [
  'packs',
  'actions',
  'workflows',
  'triggers',
  'sensors',
  'rules',
  'webhooks',
  'events',
  'enforcements',
  'executions',
  'inquiries',
  'keys',
  'identities',
  'roles',
  'api_keys',
  'workers',
  'audit',
] as const;
export type Resource = (typeof RESOURCES)[number];

export const ACTIONS = [
  'read',
  'create',
  'update',
  'delete',
  'execute',
  'cancel',
  'respond',
  'decrypt',
] as const;
export type Action = (typeof ACTIONS)[number];

export interface Grant {
  resource: Resource | '*';
  actions: (Action | '*')[];
}

const DEFINITIONS: Resource[] = ['packs', 'actions', 'workflows', 'triggers', 'sensors', 'rules', 'webhooks'];
const RUNTIME: Resource[] = ['events', 'enforcements', 'executions', 'inquiries', 'workers'];

export const BUILTIN_ROLES: Record<
  'admin' | 'editor' | 'operator' | 'viewer',
  { description: string; grants: Grant[] }
> = {
  admin: { description: 'Full access to everything', grants: [{ resource: '*', actions: ['*'] }] },
  editor: {
    description: 'Manages packs, actions, workflows, rules, triggers, sensors and keys; runs and responds',
    grants: [
      ...DEFINITIONS.map((resource) => ({
        resource,
        actions: ['read', 'create', 'update', 'delete'] as Action[],
      })),
      { resource: 'keys', actions: ['read', 'create', 'update', 'delete', 'decrypt'] },
      { resource: 'events', actions: ['read', 'create'] },
      { resource: 'enforcements', actions: ['read'] },
      { resource: 'executions', actions: ['read', 'execute', 'cancel'] },
      { resource: 'inquiries', actions: ['read', 'respond'] },
      { resource: 'workers', actions: ['read'] },
    ],
  },
  operator: {
    description: 'Reads everything operational; runs actions, cancels executions and answers inquiries',
    grants: [
      ...DEFINITIONS.map((resource) => ({ resource, actions: ['read'] as Action[] })),
      ...RUNTIME.map((resource) => ({ resource, actions: ['read'] as Action[] })),
      { resource: 'keys', actions: ['read'] },
      { resource: 'events', actions: ['read', 'create'] },
      { resource: 'executions', actions: ['read', 'execute', 'cancel'] },
      { resource: 'inquiries', actions: ['read', 'respond'] },
    ],
  },
  viewer: {
    description: 'Read-only access to definitions and runtime state',
    grants: [...DEFINITIONS, ...RUNTIME, 'keys' as Resource].map((resource) => ({
      resource,
      actions: ['read'] as Action[],
    })),
  },
};

export type BuiltinRole = keyof typeof BUILTIN_ROLES;
export const BUILTIN_ROLE_NAMES = Object.keys(BUILTIN_ROLES) as BuiltinRole[];

/** True when any grant allows `action` on `resource`. */
export function checkPermission(grants: readonly Grant[], resource: Resource, action: Action): boolean {
  for (const g of grants) {
    if (g.resource !== '*' && g.resource !== resource) continue;
    if (g.actions.includes('*') || g.actions.includes(action)) return true;
  }
  return false;
}
