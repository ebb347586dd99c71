// Browser checks of the Alerts page, run by ../../alerts_browser_test.go
// against a server where the default error-rate rule fires for the service
// payments (and not for quiet). Environment:
//   BASE_URL     the UI
//   SCREENSHOTS  a directory for screenshots (optional)
import {chromium} from 'playwright-core';
import assert from 'node:assert/strict';
import {mkdirSync} from 'node:fs';

const env = process.env;
const base = env.BASE_URL;
const shots = env.SCREENSHOTS;
if (shots) mkdirSync(shots, {recursive: true});
const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const page = await (await browser.newContext({viewport: {width: 1280, height: 800}})).newPage();
const problems = [];
page.on('console', (msg) => { if (msg.type() === 'error') problems.push(`console error: ${msg.text()}`); });
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);
const rendered = () => page.waitForFunction(() => performance.getEntriesByName('skytrail:rendered').length > 0);
async function visit(path) {
  await page.goto(base + path);
  await rendered();
}
const shot = async (name) => { if (shots) await page.screenshot({path: `${shots}/${name}.png`}); };

try {
  log('▶ the header counts the firing alert');
  await visit('/services');
  const badge = page.locator('nav a[href^="/alerts"] .nav-badge');
  await badge.waitFor({state: 'visible'});
  assert.equal(await badge.textContent(), '1');

  log('▶ the services list marks payments, and only payments');
  const row = page.locator('tr[data-service="payments"]');
  await row.locator('.alert-badge').waitFor();
  assert.match(await row.locator('.alert-badge').textContent(), /1 firing/);
  assert.equal(await page.locator('tr[data-service="quiet"] .alert-badge').count(), 0);

  log('▶ the service page carries the badge');
  await visit('/services/payments');
  await page.locator('.page-head h1 .alert-badge').waitFor();

  log('▶ the Alerts page lists it, firing, with value, description and a failed trace');
  await page.locator('.page-head h1 .alert-badge').click();
  await page.waitForURL(/\/alerts/);
  const alertRow = page.locator('tr.alert-row.firing[data-service="payments"]');
  await alertRow.waitFor();
  const text = await alertRow.textContent();
  assert.match(text, /SkyTrailServiceErrorRate/);
  assert.match(text, /0\.33/, `the value (a third of the calls failed): ${text}`);
  await shot('alerts');
  await alertRow.locator('a.alert-trace').click();
  await page.waitForURL(/\/traces\/[0-9a-f]{32}/);
  await rendered();
  await page.locator('.err-mark[title="card declined"]').first().waitFor();

  log('▶ two clicks silence it');
  await visit('/alerts');
  await alertRow.getByRole('button', {name: 'Silence…'}).click();
  await alertRow.getByRole('button', {name: 'Silence', exact: true}).click();
  await page.locator('table.silences tr[data-silence]').waitFor();
  assert.match(await page.locator('table.silences').textContent(), /service="payments"/);
  await page.locator('tr.alert-row.firing[data-service="payments"] .flag', {hasText: 'silenced'}).waitFor();

  log('▶ one click expires the silence');
  await page.locator('table.silences').getByRole('button', {name: 'Expire'}).click();
  await page.getByText('No active silence.').waitFor();
  await page.locator('tr.alert-row.firing[data-service="payments"]').getByRole('button', {name: 'Silence…'}).waitFor();

  assert.deepEqual(problems, []);
  log('all alerts checks passed');
} catch (e) {
  console.error(e);
  if (problems.length) console.error(problems.join('\n'));
  await browser.close();
  process.exit(1);
}
await browser.close();
