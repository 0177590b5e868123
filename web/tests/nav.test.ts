import { describe, expect, it } from 'vitest';
import { ROLE_PERMISSIONS } from '../src/api/schema';
import { childFilter, childLevel, crumbsToPath, pathToCrumbs, upTo } from '../src/lib/drill';
import { afterLogin, allowed, guard, visibleMenu } from '../src/lib/menu';

const names = (role: keyof typeof ROLE_PERMISSIONS) => visibleMenu(ROLE_PERMISSIONS[role]).map((m) => m.name);

describe('menu by role', () => {
  it('shows administration only to admins and jobs not to viewers', () => {
    expect(names('admin')).toEqual(['overview', 'drill', 'ess', 'health', 'images', 'quality', 'devices', 'jobs', 'users']);
    expect(names('operator')).not.toContain('users');
    expect(names('operator')).toContain('jobs');
    expect(names('analyst')).toContain('jobs');
    expect(names('viewer')).toEqual(['overview', 'drill', 'ess', 'health', 'images', 'quality', 'devices']);
  });

  it('allows write actions by permission', () => {
    expect(allowed(ROLE_PERMISSIONS.operator, 'devices:write')).toBe(true);
    expect(allowed(ROLE_PERMISSIONS.analyst, 'devices:write')).toBe(false);
    expect(allowed(ROLE_PERMISSIONS.analyst, 'jobs:run')).toBe(false);
  });
});

describe('route guard', () => {
  const users = { fullPath: '/users', meta: { perm: 'users:manage' as const } };
  it('sends a signed-out user to sign in and back', () => {
    expect(guard({ fullPath: '/grid/region/R1?x=1', meta: {} }, false, [])).toBe('/login?next=%2Fgrid%2Fregion%2FR1%3Fx%3D1');
    expect(guard({ fullPath: '/login', meta: { public: true } }, false, [])).toBe(true);
  });
  it('refuses a page the role lacks', () => {
    expect(guard(users, true, ROLE_PERMISSIONS.viewer)).toBe('/forbidden');
    expect(guard(users, true, ROLE_PERMISSIONS.admin)).toBe(true);
  });
  it('returns only to paths of this app after signing in', () => {
    expect(afterLogin('/grid/region/R1')).toBe('/grid/region/R1');
    expect(afterLogin('//evil.example/x')).toBe('/');
    expect(afterLogin('https://evil.example')).toBe('/');
    expect(afterLogin('/login?next=/x')).toBe('/');
    expect(afterLogin(undefined)).toBe('/');
  });
});

describe('drill-down breadcrumbs', () => {
  it('round-trips crumbs through the URL, ids encoded', () => {
    const crumbs = [{ level: 'region' as const, id: 'R1' }, { level: 'substation' as const, id: 'SUB 01/a' }];
    const path = crumbsToPath(crumbs);
    expect(path).toBe('region/R1/substation/SUB%2001%2Fa');
    expect(pathToCrumbs(path.split('/'))).toEqual(crumbs);
  });
  it('cuts a path where it leaves the hierarchy', () => {
    expect(pathToCrumbs('region/R1/feeder/F1')).toEqual([{ level: 'region', id: 'R1' }]);
    expect(pathToCrumbs('bogus/x')).toEqual([]);
    expect(pathToCrumbs('region/R1/substation')).toEqual([{ level: 'region', id: 'R1' }]);
  });
  it('knows each level\'s children and their device filter', () => {
    expect(childLevel('feeder')).toBe('transformer');
    expect(childLevel('meter')).toBeNull();
    expect(childFilter({ level: 'feeder', id: 'F1' })).toEqual({ device_type: 'transformer', feeder_id: 'F1' });
    expect(childFilter({ level: 'region', id: 'R1' })).toEqual({ device_type: 'substation', region_id: 'R1' });
  });
  it('goes back up to a breadcrumb', () => {
    const c = pathToCrumbs('region/R1/substation/S1/feeder/F1');
    expect(upTo(c, 0)).toEqual([{ level: 'region', id: 'R1' }]);
    expect(upTo(c, -1)).toEqual([]);
  });
});
