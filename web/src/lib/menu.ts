import type { Permission } from '../api/schema';

/** A page of the navigation, shown when the user's role has its permission. */
export interface MenuItem {
  name: string;
  path: string;
  title: string;
  perm: Permission;
}

export const MENU: MenuItem[] = [
  { name: 'overview', path: '/', title: 'Live overview', perm: 'feed:read' },
  { name: 'drill', path: '/grid', title: 'Grid drill-down', perm: 'indicators:read' },
  { name: 'ess', path: '/ess', title: 'ESS banks', perm: 'indicators:read' },
  { name: 'health', path: '/health', title: 'Asset health', perm: 'indicators:read' },
  { name: 'images', path: '/images', title: 'Equipment images', perm: 'indicators:read' },
  { name: 'quality', path: '/quality', title: 'Data quality', perm: 'indicators:read' },
  { name: 'devices', path: '/devices', title: 'Devices', perm: 'devices:read' },
  { name: 'jobs', path: '/jobs', title: 'Backfill jobs', perm: 'jobs:read' },
  { name: 'users', path: '/users', title: 'Users & roles', perm: 'users:manage' },
];

/** The menu items a user with `permissions` may open. */
export function visibleMenu(permissions: readonly string[]): MenuItem[] {
  const have = new Set(permissions);
  return MENU.filter((m) => have.has(m.perm));
}

/** Whether a user may do what `perm` names (buttons of write actions). */
export function allowed(permissions: readonly string[], perm: Permission): boolean {
  return permissions.includes(perm);
}

/** What a route needs (the subset of vue-router's RouteMeta the guard reads). */
export interface GuardedRoute {
  fullPath: string;
  meta: { perm?: Permission; public?: boolean };
}

/**
 * Where the router sends a navigation: on, to the sign-in page (remembering where the
 * user was going), or to the refusal page when the role lacks the page's permission.
 */
export function guard(to: GuardedRoute, signedIn: boolean, permissions: readonly string[]): true | string {
  if (to.meta.public) return true;
  if (!signedIn) return `/login?next=${encodeURIComponent(to.fullPath)}`;
  if (to.meta.perm && !permissions.includes(to.meta.perm)) return '/forbidden';
  return true;
}

/** The page to open after signing in: `next` when it is a path of this app, else home. */
export function afterLogin(next: unknown): string {
  return typeof next === 'string' && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/login')
    ? next : '/';
}
