// Memory soak of the live overview (issue 25: "no memory growth over an hour of live
// updates"), in Debian's Chromium driven by playwright-core (same flags as run.mjs).
// Driven by `gridlake bench --only dashboard_soak` (ops/bench/dashboard.py), which serves
// the dashboard and writes a new load-curve point into the serving copy every few seconds;
// it can also be pointed at any running dashboard whose stream receives live points.
//
//   node e2e/soak.mjs    with E2E_BASE (the dashboard's URL), E2E_USERS (JSON: role →
//                        [username, password]; `admin` is used), E2E_CHROMIUM, SOAK_S (how
//                        long, default 600), SOAK_SAMPLE_S (seconds between samples,
//                        default 30)
//
// Signs in, opens the overview, waits for its chart and a live stream, prints `READY
// <points>`, then every SOAK_SAMPLE_S forces a garbage collection (CDP
// HeapProfiler.collectGarbage) and records the JS heap in use, DOM nodes and event
// listeners (CDP Performance.getMetrics) and the chart's point count. Prints one JSON line
// `RESULT {...}` with the samples; the slope is computed by the Python side.
import { chromium } from 'playwright-core';

const BASE = process.env.E2E_BASE ?? 'http://127.0.0.1:8080';
const USERS = JSON.parse(process.env.E2E_USERS ?? '{}');
const CHROMIUM = process.env.E2E_CHROMIUM ?? '/usr/bin/chromium';
const SOAK_S = Number(process.env.SOAK_S ?? 600);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE_S ?? 30);
const TIMEOUT = 30000;

const result = { errors: [], samples: [], durationS: SOAK_S, sampleS: SAMPLE_S };
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

const points = (page) => page.evaluate(() => Number(document.querySelector('[data-test=load-points]')?.getAttribute('data-points') ?? 0));

try {
  if (!(SOAK_S > 0) || !(SAMPLE_S > 0)) throw new Error(`SOAK_S and SOAK_SAMPLE_S must be positive (${SOAK_S}, ${SAMPLE_S})`);
  if (!USERS.admin) throw new Error('E2E_USERS has no admin');
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('pageerror', (e) => result.errors.push(String(e)));
  const [user, password] = USERS.admin;
  await page.goto(`${BASE}/login?next=%2F`);
  await page.locator('[data-test=username] input, input[data-test=username]').first().fill(user);
  await page.locator('[data-test=password] input, input[data-test=password]').first().fill(password);
  await page.click('[data-test=submit]');
  await page.waitForFunction(() => Number(document.querySelector('[data-test=load-points]')?.getAttribute('data-points')) > 0);
  await page.waitForFunction(() => document.querySelector('[data-test=feed-state]')?.textContent.trim() === 'live');
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Performance.enable');
  const first = await points(page);
  result.pointsBefore = first;
  console.log(`READY ${first}`);

  const t0 = Date.now();
  for (let i = 0; ; i++) {
    const due = t0 + i * SAMPLE_S * 1000;
    if (due > t0 + SOAK_S * 1000) break;
    await page.waitForTimeout(Math.max(0, due - Date.now()));
    await cdp.send('HeapProfiler.collectGarbage');
    const { metrics } = await cdp.send('Performance.getMetrics');
    const m = Object.fromEntries(metrics.map((x) => [x.name, x.value]));
    const sample = { t_s: Math.round((Date.now() - t0) / 100) / 10, heap_bytes: m.JSHeapUsedSize, nodes: m.Nodes,
      listeners: m.JSEventListeners, points: await points(page),
      feed: (await page.locator('[data-test=feed-state]').first().textContent())?.trim() ?? '' };
    result.samples.push(sample);
    console.log(`SAMPLE ${JSON.stringify(sample)}`);
  }
  result.pointsAfter = await points(page);
  await ctx.close();
} catch (err) {
  result.failure = String(err?.stack ?? err);
} finally {
  console.log(`RESULT ${JSON.stringify(result)}`);
  await browser.close();
}
