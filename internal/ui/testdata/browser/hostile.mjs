// Stored XSS checks, run by ../../hostile_test.go against a server fed with
// HTML and script payloads in every field a user sees. On every page:
// nothing ran (window.__pwned unset, no dialog), no markup was made of the
// payloads (no element or attribute they carry exists in the DOM, no CSP
// violation: the CSP would stop an inline handler, so a violation means
// markup got in), and each payload's text is shown literally. Environment:
//   BASE_URL      the UI
//   TRACE_ID      the OTLP trace carrying payloads
//   SW_TRACE_ID   the go2sky trace carrying payloads, with an agent log
//   EVIL_SERVICE  the hostile OTLP service name; EVIL_SW the go2sky one
//   TEXTS         JSON {page: [literal texts the page must show]}
//   ALLOW_MISSING comma-separated API paths the server does not serve yet
import {chromium} from 'playwright-core';
import assert from 'node:assert/strict';
import {mkdirSync} from 'node:fs';

const env = process.env;
const base = env.BASE_URL;
const texts = JSON.parse(env.TEXTS);
const allowMissing = (env.ALLOW_MISSING || '').split(',').filter(Boolean);
const shots = env.SCREENSHOTS;
if (shots) mkdirSync(shots, {recursive: true});

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const context = await browser.newContext({viewport: {width: 1280, height: 800}});
// Record CSP violations before any of the app's code runs.
await context.addInitScript(() => {
  window.__csp = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample || ''}`));
});
const page = await context.newPage();
const problems = [];
let notFoundExpected = false; // a page asked for what does not exist says so
page.on('dialog', async (d) => {
  problems.push(`a dialog opened: ${d.type()} ${d.message()}`);
  await d.dismiss();
});
page.on('console', (msg) => {
  if (msg.type() !== 'error') return;
  if (/status of 404/.test(msg.text()) && (allowMissing.length || notFoundExpected)) return;
  problems.push(`console error: ${msg.text()}`);
});
page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));

const t0 = Date.now();
const log = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

// clean asserts nothing ran and no markup came from the data, and returns
// the page's text (hidden parts included: a payload must not hide either).
async function clean(where) {
  const r = await page.evaluate(() => ({
    pwned: window.__pwned,
    csp: window.__csp,
    injected: [...document.querySelectorAll(
      'body img:not([src^="/"]), body iframe, body script, body style, body object, body embed, [onerror], [onload], [onmouseover], [srcdoc], a[href^="javascript:" i], [href^="javascript:" i], [src^="javascript:" i]')]
      .map((e) => e.outerHTML.slice(0, 160)),
    text: document.body.textContent,
  }));
  assert.equal(r.pwned, undefined, `${where}: a payload ran (window.__pwned = ${r.pwned})`);
  assert.deepEqual(r.csp, [], `${where}: CSP violations (markup from the data reached the DOM): ${r.csp.join('; ')}`);
  assert.deepEqual(r.injected, [], `${where}: elements or attributes made from the data: ${r.injected.join(' | ')}`);
  assert.deepEqual(problems, [], `${where}: ${problems.join('; ')}`);
  return r.text;
}

function shows(where, text, want) {
  for (const w of want) assert.ok(text.includes(w), `${where} does not show ${JSON.stringify(w)} literally`);
}

async function visit(name, path, ready, after) {
  log('▶', name, path);
  await page.goto(base + path);
  await ready();
  let text = await clean(name);
  if (after) text += await after();
  text += await clean(name);
  if (texts[name]) shows(name, text, texts[name]);
  if (shots) await page.screenshot({path: `${shots}/hostile-${name}.png`});
}

try {
  await visit('services', '/services', () => page.locator('table.services tbody tr').nth(2).waitFor());

  await visit('service', '/services/' + encodeURIComponent(env.EVIL_SERVICE), () => page.locator('h1').first().waitFor(), async () => {
    await page.locator('h2', {hasText: 'Slowest spans'}).waitFor();
    await page.waitForLoadState('networkidle');
    return '';
  });

  await visit('traces', '/traces?service=' + encodeURIComponent(env.EVIL_SERVICE) + '&lookback=1h', () => page.locator('.trace-row').first().waitFor());

  await visit('trace', '/traces/' + env.TRACE_ID, () => page.locator('.wf-row').first().waitFor(), async () => {
    // Open every span's details: attributes, resource, events, status.
    let all = '';
    const n = await page.locator('.wf-row').count();
    for (let i = 0; i < n; i++) {
      await page.locator('.wf-row').nth(i).click();
      await page.locator('.span-detail').waitFor();
      all += await clean(`trace, span ${i}`);
    }
    return all;
  });

  await visit('swtrace', '/traces/' + encodeURIComponent(env.SW_TRACE_ID), () => page.locator('.wf-row').first().waitFor(), async () => {
    let all = '';
    await page.getByRole('button', {name: '1 log'}).click();
    await page.locator('.trace-logs').waitFor();
    const n = await page.locator('.wf-row').count();
    for (let i = 0; i < n; i++) {
      await page.locator('.wf-row').nth(i).click();
      await page.locator('.span-detail').waitFor();
      all += await clean(`swtrace, span ${i}`);
    }
    return all;
  });

  await visit('map', '/map', () => page.locator('g.node').first().waitFor(), async () => {
    // Node labels may be shortened to fit: their full names are in data-node.
    const names = await page.locator('g.node').evaluateAll((gs) => gs.map((g) => g.dataset.node));
    for (const want of texts.map) assert.ok(names.includes(want), `the map has no node ${JSON.stringify(want)}: ${JSON.stringify(names)}`);
    const node = page.locator('g.node').filter({has: page.locator('text')}).first();
    await node.click();
    return names.join('\n');
  });

  await visit('instances', '/instances', () => page.locator('h1', {hasText: 'Instances'}).waitFor(), async () => {
    await page.waitForLoadState('networkidle');
    return '';
  });

  await visit('health', '/health', () => page.locator('li.finding').first().waitFor());

  await visit('health, service filter', '/health?service=' + encodeURIComponent(env.EVIL_SERVICE), () => page.locator('h1', {hasText: 'Health'}).waitFor(), async () => {
    await page.waitForLoadState('networkidle');
    return '';
  });

  // A hostile value in the URL itself (a shared link) is text too.
  await visit('trace search by hostile tag', '/traces?tag=' + encodeURIComponent(`k=<img src=x onerror=window.__pwned='q'>`), () => page.locator('h1').first().waitFor(), async () => {
    await page.waitForLoadState('networkidle');
    return '';
  });
  notFoundExpected = true;
  await visit('hostile trace ID', '/traces/' + encodeURIComponent(`<img src=x onerror=window.__pwned='id'>`), () => page.locator('h1').first().waitFor());
} catch (e) {
  console.error('FAIL:', e.message);
  await browser.close();
  process.exit(1);
}
await browser.close();
console.log('hostile input: every page rendered the payloads as text');
