/** Routes: every page loaded on first use (its own chunk); guards for sign-in and role. */
import { createRouter, createWebHistory } from 'vue-router';
import type { Permission } from './api/schema';
import { MENU, guard } from './lib/menu';
import { session } from './store/session';

declare module 'vue-router' {
  interface RouteMeta {
    perm?: Permission;
    bare?: boolean;
    public?: boolean;
  }
}

const perm = (name: string): Permission => MENU.find((m) => m.name === name)!.perm;

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/login', name: 'login', component: () => import('./pages/LoginPage.vue'), meta: { bare: true, public: true } },
    { path: '/', name: 'overview', component: () => import('./pages/OverviewPage.vue'), meta: { perm: perm('overview') } },
    { path: '/grid/:path(.*)*', name: 'drill', component: () => import('./pages/DrillPage.vue'), meta: { perm: perm('drill') } },
    { path: '/ess', name: 'ess', component: () => import('./pages/EssPage.vue'), meta: { perm: perm('ess') } },
    { path: '/health', name: 'health', component: () => import('./pages/HealthPage.vue'), meta: { perm: perm('health') } },
    { path: '/images', name: 'images', component: () => import('./pages/ImagesPage.vue'), meta: { perm: perm('images') } },
    { path: '/quality', name: 'quality', component: () => import('./pages/QualityPage.vue'), meta: { perm: perm('quality') } },
    { path: '/devices', name: 'devices', component: () => import('./pages/DevicesPage.vue'), meta: { perm: perm('devices') } },
    { path: '/jobs', name: 'jobs', component: () => import('./pages/JobsPage.vue'), meta: { perm: perm('jobs') } },
    { path: '/users', name: 'users', component: () => import('./pages/UsersPage.vue'), meta: { perm: perm('users') } },
    { path: '/embed/:view', name: 'embed', component: () => import('./pages/EmbedPage.vue'), meta: { bare: true, public: true } },
    { path: '/forbidden', name: 'forbidden', component: () => import('./pages/ForbiddenPage.vue') },
    { path: '/:rest(.*)*', redirect: '/' },
  ],
});

router.beforeEach((to) => {
  const where = guard(to, !!session.state.saved, session.permissions);
  return where === true ? true : where;
});

session.onExpired(() => {
  const here = router.currentRoute.value;
  if (here.name !== 'login' && here.name !== 'embed') {
    void router.push(`/login?next=${encodeURIComponent(here.fullPath)}`);
  }
});
