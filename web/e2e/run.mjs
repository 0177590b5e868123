// Browser checks of the dashboard in Debian's Chromium, driven by playwright-core (no
// browser download). Run by tests/web/test_browser.py against a live stack:
//
//   node e2e/run.mjs <scenario>      with E2E_BASE (the dashboard's URL), E2E_OUT (folder
//                                    for screenshots and results), E2E_USERS (JSON: role →
//                                    [username, password]) and scenario-specific variables.
//
// Each scenario prints one JSON line `RESULT {...}` with what it saw; the Python test
// asserts on it. The `live` scenario also prints `READY <points>` once the overview's chart
// is loaded and the stream is live, then waits for a point more (the test publishes it).
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const BASE = process.env.E2E_BASE ?? 'http://127.0.0.1:8080';
const OUT = process.env.E2E_OUT ?? '/tmp/gridlake-e2e';
const USERS = JSON.parse(process.env.E2E_USERS ?? '{}');
const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';
const TIMEOUT = 20000;
mkdirSync(OUT, { recursive: true });

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const result = { errors: [] };

async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => result.errors.push(String(e)));
  return page;
}

async function login(page, role, next = '/') {
  const [user, password] = USERS[role];
  await page.goto(`${BASE}/login?next=${encodeURIComponent(next)}`);
  await fillIn(page, '[data-test=username]', user);
  await fillIn(page, '[data-test=password]', password);
  await page.click('[data-test=submit]');
  await page.waitForSelector('[data-test=whoami]');
}

/** Fill a text field: the element itself when it is an input, else the input inside it
 * (Arco puts some attributes on the wrapper). */
async function fillIn(page, sel, value) {
  const el = page.locator(sel).first();
  await el.waitFor();
  const tag = await el.evaluate((e) => e.tagName);
  await (tag === 'INPUT' ? el : el.locator('input').first()).fill(String(value));
}

async function menu(page) {
  return page.$$eval('[data-test^=menu-]', (els) => els.map((e) => e.getAttribute('data-test').slice(5)));
}

async function shot(page, name) {
  await page.waitForTimeout(600); // charts finish their first paint
  await page.screenshot({ path: join(OUT, `${name}.png`) });
}

async function text(page, sel) {
  return (await page.locator(sel).first().innerText()).trim();
}

// --------------------------------------------------------------------------- scenarios
async function roles() {
  result.roles = {};
  for (const role of Object.keys(USERS)) {
    const page = await newPage();
    await login(page, role);
    const r = { menu: await menu(page) };
    // a page outside the role: refused in the UI (the API refuses it too: see the test)
    await page.goto(`${BASE}/users`);
    r.usersPage = (await page.locator('[data-test=forbidden]').count()) ? 'forbidden' : 'shown';
    await page.goto(`${BASE}/devices`);
    await page.waitForSelector('[data-test=devices]');
    r.newDeviceButton = await page.locator('[data-test=device-new]').count() > 0;
    if (r.menu.includes('jobs')) {
      await page.goto(`${BASE}/jobs`);
      await page.waitForSelector('[data-test=jobs]');
      r.launchForm = await page.locator('[data-test=backfill-form]').count() > 0;
    }
    result.roles[role] = r;
    await page.context().close();
  }
}

async function pages() {
  // screenshots of the main pages, as an administrator; each page must render its content
  const page = await newPage();
  const t0 = Date.now();
  await login(page, 'admin');
  result.loginToShellMs = Date.now() - t0;
  const seen = {};
  const visit = async (path, sel, name) => {
    await page.goto(`${BASE}${path}`);
    await page.waitForSelector(sel);
    seen[name] = { error: await page.locator('[data-test=error]').count() ? await text(page, '[data-test=error]') : null };
    await shot(page, name);
  };
  await page.goto(`${BASE}/`);
  await page.waitForFunction(() => Number(document.querySelector('[data-test=load-points]')?.getAttribute('data-points')) > 0);
  await page.waitForFunction(() => document.querySelectorAll('[data-test=freshness] tbody tr').length > 1);
  await shot(page, 'overview');
  seen.overview = { points: Number(await page.getAttribute('[data-test=load-points]', 'data-points')) };
  await visit('/quality', '[data-test=scorecards] tbody tr', 'quality');
  await visit('/ess', '[data-test=ess-select]', 'ess');
  await visit('/health', '[data-test=health-ranking]', 'health');
  await visit('/devices', '[data-test=devices] tbody tr', 'devices');
  await visit('/users', '[data-test=users] tbody tr', 'users');
  await visit('/jobs', '[data-test=jobs]', 'jobs');
  // the images page renders once its first load is over: its grid, or its empty state when
  // the image index is empty (or its error in place, reported under `error`)
  await visit('/images', '[data-test=images][data-loaded=true]', 'images');
  seen.images.cards = await page.locator('[data-test^=image-][data-image-id]').count();
  seen.images.empty = await page.locator('[data-test=images-empty]').count() > 0;
  result.pages = seen;

  // drill down by clicking: region → substation → feeder → transformer
  await page.goto(`${BASE}/grid`);
  const path = [];
  for (let level = 0; level < 4; level++) {
    const link = page.locator('[data-test^=child-]').first();
    await link.waitFor();
    path.push((await link.getAttribute('data-test')).slice(6));
    await link.click();
    await page.waitForFunction((n) => document.querySelectorAll('[data-test=crumbs] .arco-breadcrumb-item').length === n + 2, level);
    await page.waitForSelector('[data-test=load-curve] canvas');
  }
  await page.waitForSelector('[data-test=daily] tbody tr');
  result.drill = { path, url: page.url(), crumbs: await text(page, '[data-test=crumbs]'),
    daily: await page.locator('[data-test=daily] tbody tr').count() };
  await shot(page, 'drill');
  // an API error is shown in place: an entity that does not exist
  await page.goto(`${BASE}/grid/region/NO-SUCH-REGION`);
  await page.waitForSelector('[data-test=error]');
  result.drillError = await text(page, '[data-test=error]');
  await page.context().close();
}

async function actions() {
  // operator: create a device, launch a backfill; a region-scoped operator is refused
  // outside its region and sees only its region in the drill-down
  const page = await newPage();
  await login(page, 'operator');
  await page.goto(`${BASE}/devices`);
  await page.click('[data-test=device-new]');
  const dev = JSON.parse(process.env.E2E_DEVICE);
  for (const [k, v] of Object.entries(dev)) {
    if (k === 'device_type') continue;
    await fillIn(page, `[data-test=f-${k}]`, String(v));
  }
  await page.click('[data-test=device-save]');
  await page.waitForSelector('[data-test=saved], [data-test=device-form] [data-test=error]');
  result.deviceCreate = await text(page, '[data-test=saved], [data-test=device-form] [data-test=error]');
  await fillIn(page, '[data-test=device-q]', dev.device_id);
  await page.click('[data-test=device-search]');
  await page.waitForFunction((id) => document.querySelector('[data-test=devices] tbody')?.innerText.includes(id), dev.device_id);
  result.deviceListed = true;

  await page.goto(`${BASE}/jobs`);
  const bf = JSON.parse(process.env.E2E_BACKFILL);
  await fillIn(page, '[data-test=bf-start]', bf.start);
  await fillIn(page, '[data-test=bf-end]', bf.end);
  await fillIn(page, '[data-test=bf-region]', bf.region);
  await page.click('[data-test=bf-launch]');
  await page.waitForSelector('[data-test=launched], [data-test=backfill-form] ~ * [data-test=error], [data-test=error]');
  result.backfill = await text(page, '[data-test=launched], [data-test=error]');
  const id = (result.backfill.match(/[a-z]{2}-[0-9a-f]{10}/) ?? [''])[0];
  if (id) {
    await page.waitForFunction((i) => document.querySelector('[data-test=jobs] tbody')?.innerText.includes(i), id);
    const cancel = page.locator(`[data-test=cancel-${id}]`);
    if (await cancel.count()) {
      await cancel.click();
      await page.waitForFunction((i) => /cancelled|failed|succeeded/.test(
        [...document.querySelectorAll('[data-test=jobs] tbody tr')].find((r) => r.innerText.includes(i))?.innerText ?? ''), id);
    }
    result.backfillRow = await page.locator('[data-test=jobs] tbody tr', { hasText: id }).innerText();
  }
  await page.context().close();

  const scoped = await newPage();
  await login(scoped, 'scoped');
  await scoped.goto(`${BASE}/grid`);
  await scoped.waitForSelector('[data-test^=child-]');
  result.scopedRegions = await scoped.$$eval('[data-test^=child-]', (els) => els.map((e) => e.textContent.trim()));
  await scoped.goto(`${BASE}/jobs`);
  await fillIn(scoped, '[data-test=bf-region]', process.env.E2E_OTHER_REGION);
  await scoped.click('[data-test=bf-launch]');
  await scoped.waitForSelector('[data-test=error]');
  result.scopedBackfill = await text(scoped, '[data-test=error]');
  await scoped.goto(`${BASE}/grid/region/${process.env.E2E_OTHER_REGION}`);
  await scoped.waitForSelector('[data-test=error]');
  result.scopedDrill = await text(scoped, '[data-test=error]');
  await scoped.context().close();
}

async function session() {
  // a session that ends (tokens refused) goes to sign-in, then back to where the user was
  const page = await newPage();
  await login(page, 'viewer');
  await page.goto(`${BASE}/grid/region/${process.env.E2E_REGION}`);
  await page.waitForSelector('[data-test=crumbs]');
  await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('gridlake.session'));
    s.access = s.access.slice(0, -4) + 'AAAA'; // tampered signature
    s.refresh = s.refresh.slice(0, -4) + 'AAAA';
    localStorage.setItem('gridlake.session', JSON.stringify(s));
  });
  await page.reload();
  await page.waitForURL(/\/login\?next=/);
  result.expiredUrl = page.url();
  result.notice = await text(page, '[data-test=notice]');
  const [user, password] = USERS.viewer;
  await fillIn(page, '[data-test=username]', user);
  await fillIn(page, '[data-test=password]', password);
  await page.click('[data-test=submit]');
  await page.waitForURL(/\/grid\/region\//);
  result.backAt = page.url();
  // a wrong password: the API's message in place
  await page.click('[data-test=logout]');
  await fillIn(page, '[data-test=username]', user);
  await fillIn(page, '[data-test=password]', 'not-the-password');
  await page.click('[data-test=submit]');
  await page.waitForSelector('[data-test=error]');
  result.badLogin = await text(page, '[data-test=error]');
  await page.context().close();
}

async function live() {
  // the overview's chart gains a point when a region's load curve changes in the serving
  // copy; timings of the first view are measured on the way
  // cold: an empty cache, from the sign-in page's request to the overview with its data
  const page = await newPage();
  const c0 = Date.now();
  await page.goto(`${BASE}/login?next=%2F`);
  await page.waitForSelector('[data-test=submit]');
  result.coldLoginMs = Date.now() - c0;
  const [user, password] = USERS.admin;
  await fillIn(page, '[data-test=username]', user);
  await fillIn(page, '[data-test=password]', password);
  const s0 = Date.now();
  await page.click('[data-test=submit]');
  await page.waitForFunction(() => Number(document.querySelector('[data-test=load-points]')?.getAttribute('data-points')) > 0);
  result.coldSignInToOverviewMs = Date.now() - s0;
  result.coldTransferBytes = await page.evaluate(() => performance.getEntriesByType('resource')
    .reduce((a, r) => a + (r.transferSize || 0), 0));
  // warm: the overview opened again (assets cached, data asked again)
  const t0 = Date.now();
  await page.goto(`${BASE}/`);
  await page.waitForFunction(() => Number(document.querySelector('[data-test=load-points]')?.getAttribute('data-points')) > 0);
  result.firstViewMs = Date.now() - t0;
  result.navigation = await page.evaluate(() => {
    const n = performance.getEntriesByType('navigation')[0];
    const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, Math.round(p.startTime)]));
    return { domInteractiveMs: Math.round(n.domInteractive), domContentLoadedMs: Math.round(n.domContentLoadedEventEnd),
      loadMs: Math.round(n.loadEventEnd), transferBytes: performance.getEntriesByType('resource').reduce((a, r) => a + (r.transferSize || 0), 0),
      ...paint };
  });
  await page.waitForFunction(() => document.querySelector('[data-test=feed-state]')?.textContent.trim() === 'live');
  const before = Number(await page.getAttribute('[data-test=load-points]', 'data-points'));
  const lastBefore = await text(page, '[data-test=load-points]');
  console.log(`READY ${before}`);
  await page.waitForFunction((n) => Number(document.querySelector('[data-test=load-points]')?.getAttribute('data-points')) > n, before, { timeout: 30000 });
  result.pointsBefore = before;
  result.pointsAfter = Number(await page.getAttribute('[data-test=load-points]', 'data-points'));
  result.lastBefore = lastBefore;
  result.lastAfter = await text(page, '[data-test=load-points]');
  // every region's part of the new point: the total once they have all arrived
  await page.waitForFunction((want) => {
    const m = document.querySelector('[data-test=load-points]')?.textContent.match(/: ([-\d.]+) kW/);
    return m && Math.abs(Number(m[1]) - want) < 0.1;
  }, Number(process.env.E2E_TOTAL ?? 0), { timeout: 15000 }).catch(() => undefined);
  result.lastTotal = await text(page, '[data-test=load-points]');
  await shot(page, 'overview-live');
  // the stream dies (the API refuses new streams for this page): a banner says so
  await page.route('**/api/v1/feed**', (route) => route.fulfill({ status: 503, body: '{"detail":"down"}' }));
  await page.reload();
  await page.waitForSelector('[data-test=feed-banner]');
  result.banner = await text(page, '[data-test=feed-banner]');
  await page.context().close();
}

async function embed() {
  // /embed/<view> inside iframes of portal pages: E2E_PORTALS is JSON {name: url of a page
  // that frames E2E_EMBED_URL}; the frame either renders the embed view or is refused
  const portals = JSON.parse(process.env.E2E_PORTALS ?? '{}');
  result.frames = {};
  for (const [name, url] of Object.entries(portals)) {
    const page = await newPage();
    const refused = [];
    page.on('console', (m) => { if (/frame-ancestors|Refused to frame/i.test(m.text())) refused.push(m.text()); });
    await page.goto(url);
    await page.waitForTimeout(2500);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    let rendered = false;
    try {
      rendered = !!frame && (await frame.locator('[data-test=embed]').count()) > 0;
    } catch { rendered = false; }
    result.frames[name] = { rendered, refused: refused.length > 0, frameUrl: frame?.url() ?? null,
      text: rendered ? (await frame.locator('[data-test=embed]').innerText()).slice(0, 300) : null };
    await page.screenshot({ path: join(OUT, `embed-${name}.png`) });
    await page.context().close();
  }
  // the front end shows only the view its token names, and refuses expired tokens
  result.embedChecks = {};
  for (const [name, url] of Object.entries(JSON.parse(process.env.E2E_EMBED_CHECKS ?? '{}'))) {
    const page = await newPage();
    await page.goto(url);
    await page.waitForSelector('[data-test=error], [data-test=embed-load-curve] canvas');
    result.embedChecks[name] = (await page.locator('[data-test=error]').count()) ? await text(page, '[data-test=error]') : 'rendered';
    await page.context().close();
  }
}

const scenarios = { roles, pages, actions, session, live, embed };
const name = process.argv[2];
try {
  if (!scenarios[name]) throw new Error(`unknown scenario ${name}; one of ${Object.keys(scenarios).join(', ')}`);
  await scenarios[name]();
} catch (err) {
  result.failure = String(err?.stack ?? err);
} finally {
  console.log(`RESULT ${JSON.stringify(result)}`);
  await browser.close();
}
