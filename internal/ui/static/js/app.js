// The app shell: header, router, the time range and auto-refresh every page
// shares (kept in the URL, so every view is a shareable link), and themes.
import {h, replace, message} from './dom.js';
import * as services from './pages/services.js';
import * as service from './pages/service.js';
import * as map from './pages/map.js';
import * as traces from './pages/traces.js';
import * as trace from './pages/trace.js';
import * as instances from './pages/instances.js';
import * as instance from './pages/instance.js';
import * as compare from './pages/compare.js';
import * as health from './pages/health.js';
import * as alerts from './pages/alerts.js';
import * as logs from './pages/logs.js';
import {api} from './api.js';
import {link} from './links.js';

const RANGES = {'15m': 15 * 60000, '1h': 3600000, '6h': 6 * 3600000, '24h': 24 * 3600000};
const REFRESH = {off: 0, '10s': 10000, '30s': 30000, '1m': 60000, '5m': 300000};
const DEFAULT_RANGE = '1h';
const routes = [
  {re: /^\/(?:services)?$/, page: services, nav: 'services'},
  {re: /^\/services\/([^/]+)$/, page: service, nav: 'services'},
  {re: /^\/map$/, page: map, nav: 'map'},
  {re: /^\/traces$/, page: traces, nav: 'traces'},
  {re: /^\/traces\/([^/]+)$/, page: trace, nav: 'traces'},
  {re: /^\/compare$/, page: compare, nav: 'traces'},
  {re: /^\/instances$/, page: instances, nav: 'instances'},
  {re: /^\/instances\/([^/]+)\/([^/]+)$/, page: instance, nav: 'instances'},
  {re: /^\/health$/, page: health, nav: 'health'},
  {re: /^\/alerts$/, page: alerts, nav: 'alerts'},
  {re: /^\/logs$/, page: logs, nav: 'logs'},
];

// timeRange reads the shared range from the URL: a relative range ending
// now, or a custom one (from/to, Unix milliseconds).
function timeRange(params) {
  const key = params.get('range') || DEFAULT_RANGE;
  if (key === 'custom') {
    const from = Number(params.get('from'));
    const to = Number(params.get('to')) || Date.now();
    if (from > 0 && from < to) return {start: from, end: to, key, label: 'custom'};
  }
  const d = RANGES[key] || RANGES[DEFAULT_RANGE];
  // A relative range ends at the end of the current minute: the analysis
  // stamps each minute's figures at its end, so "now" would leave the
  // newest minute out.
  const end = Math.ceil(Date.now() / 60000) * 60000;
  return {start: end - d, end, key: RANGES[key] ? key : DEFAULT_RANGE, label: RANGES[key] ? key : DEFAULT_RANGE};
}

export function navigate(url, {replace: rep = false} = {}) {
  if (rep) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  render(false);
}

// setParams changes the current URL's parameters without a new render.
export function setParams(params) {
  const u = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') u.delete(k);
    else u.set(k, v);
  }
  const q = u.toString();
  history.replaceState(null, '', location.pathname + (q ? '?' + q : ''));
}

const main = h('main', {id: 'main', tabindex: '-1'});
const navLinks = {};
let rangeSelect, refreshSelect, customBox, fromInput, toInput, healthBadge, alertsBadge;

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

function header() {
  const nav = h('nav', {'aria-label': 'Main'});
  for (const [key, label, path] of [['services', 'Services', '/services'], ['map', 'Service map', '/map'],
    ['traces', 'Traces', '/traces'], ['logs', 'Logs', '/logs'], ['instances', 'Instances', '/instances'], ['health', 'Health', '/health'], ['alerts', 'Alerts', '/alerts']]) {
    navLinks[key] = h('a', {href: path, dataset: {path}}, label);
    nav.append(navLinks[key]);
  }
  healthBadge = h('span', {class: 'nav-badge', hidden: true});
  navLinks.health.append(healthBadge);
  alertsBadge = h('span', {class: 'nav-badge error', hidden: true});
  navLinks.alerts.append(alertsBadge);
  rangeSelect = h('select', {id: 'range', 'aria-label': 'Time range', onchange: () => {
    if (rangeSelect.value === 'custom') {
      const r = timeRange(new URLSearchParams(location.search));
      setParams({range: 'custom', from: String(r.start), to: String(r.end)});
    } else {
      setParams({range: rangeSelect.value, from: '', to: ''});
    }
    render(false);
  }}, [...Object.keys(RANGES).map((k) => h('option', {value: k}, 'Last ' + k)), h('option', {value: 'custom'}, 'Custom…')]);
  fromInput = h('input', {type: 'datetime-local', 'aria-label': 'From'});
  toInput = h('input', {type: 'datetime-local', 'aria-label': 'To'});
  customBox = h('form', {class: 'custom-range', hidden: true, onsubmit: (ev) => {
    ev.preventDefault();
    const from = new Date(fromInput.value).getTime(), to = new Date(toInput.value).getTime();
    if (!(from < to)) {
      fromInput.setCustomValidity('the start must be before the end');
      fromInput.reportValidity();
      return;
    }
    fromInput.setCustomValidity('');
    setParams({range: 'custom', from: String(from), to: String(to)});
    render(false);
  }}, fromInput, '–', toInput, h('button', {type: 'submit'}, 'Apply'));
  refreshSelect = h('select', {id: 'refresh', 'aria-label': 'Auto-refresh', onchange: () => {
    setParams({refresh: refreshSelect.value === 'off' ? '' : refreshSelect.value});
    schedule();
    updateNav();
  }}, Object.keys(REFRESH).map((k) => h('option', {value: k}, k === 'off' ? 'Refresh: off' : 'Every ' + k)));
  const refreshNow = h('button', {type: 'button', class: 'icon', title: 'Refresh now', 'aria-label': 'Refresh now', onclick: () => render(true)}, '⟳');
  const goto = h('form', {class: 'goto', role: 'search', onsubmit: (ev) => {
    ev.preventDefault();
    const id = gotoInput.value.trim();
    gotoInput.value = '';
    if (id) navigate(link('/traces/' + encodeURIComponent(id)));
  }});
  const gotoInput = h('input', {type: 'search', placeholder: 'Trace ID', 'aria-label': 'Go to trace ID', spellcheck: 'false'});
  goto.append(gotoInput);
  const theme = h('button', {type: 'button', class: 'icon', id: 'theme', title: 'Switch light/dark theme', 'aria-label': 'Switch light/dark theme', onclick: () => {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('skytrail-theme', next);
  }}, '◐');
  return h('header', {class: 'topbar'},
    h('a', {class: 'skip', href: '#main'}, 'Skip to content'),
    h('a', {class: 'brand', href: '/services', dataset: {path: '/services'}}, h('img', {src: document.querySelector('link[rel="icon"]').getAttribute('href'), alt: '', width: 22, height: 22}), 'SkyTrail'),
    nav,
    h('div', {class: 'controls'}, goto, rangeSelect, customBox, refreshSelect, refreshNow, theme));
}

// updateNav keeps the header's links and controls in step with the URL.
function updateNav(active) {
  const params = new URLSearchParams(location.search);
  const r = timeRange(params);
  rangeSelect.value = r.key;
  customBox.hidden = r.key !== 'custom';
  if (r.key === 'custom') {
    fromInput.value = toLocalInput(r.start);
    toInput.value = toLocalInput(r.end);
  }
  refreshSelect.value = REFRESH[params.get('refresh')] ? params.get('refresh') : 'off';
  for (const a of document.querySelectorAll('a[data-path]')) a.href = link(a.dataset.path);
  if (active !== undefined) {
    for (const [k, a] of Object.entries(navLinks)) {
      if (k === active) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
  }
}

// updateHealthBadge shows on the Health link how many findings need
// attention (errors and warnings); a server without the API shows none.
async function updateHealthBadge() {
  let rep = null;
  try {
    rep = await api.diagnostics('');
  } catch { /* the page itself reports a failing API */ }
  const findings = (rep && rep.findings) || [];
  const n = findings.filter((f) => f.severity === 'error' || f.severity === 'warning').length;
  healthBadge.hidden = n === 0;
  healthBadge.textContent = String(n);
  healthBadge.className = 'nav-badge ' + (findings.some((f) => f.severity === 'error') ? 'error' : 'warning');
  healthBadge.title = `${n} finding${n === 1 ? '' : 's'} need${n === 1 ? 's' : ''} attention`;
  // The link's name says it to screen readers too: "Health, 3 findings…".
  if (n) navLinks.health.setAttribute('aria-label', `Health, ${healthBadge.title}`);
  else navLinks.health.removeAttribute('aria-label');
}

function updateBadges() {
  updateHealthBadge();
  updateAlertsBadge();
}

// updateAlertsBadge shows on the Alerts link how many alerts are firing.
async function updateAlertsBadge() {
  const firing = await alerts.firingByService();
  let n = 0;
  for (const c of (firing || new Map()).values()) n += c;
  alertsBadge.hidden = n === 0;
  alertsBadge.textContent = String(n);
  alertsBadge.title = `${n} alert${n === 1 ? '' : 's'} firing`;
  if (n) navLinks.alerts.setAttribute('aria-label', `Alerts, ${alertsBadge.title}`);
  else navLinks.alerts.removeAttribute('aria-label');
}

let current = null; // {controller, page}
let timer = null;

function schedule() {
  clearInterval(timer);
  const every = REFRESH[new URLSearchParams(location.search).get('refresh')] || 0;
  if (every) timer = setInterval(() => {
    if (document.visibilityState !== 'visible' || !current || current.busy || current.page.live === false) return;
    // Someone typing in a form would lose what they typed.
    if (document.activeElement && document.activeElement.closest('main form')) return;
    render(true);
  }, every);
}

// render shows the page for the current URL. refreshing re-renders the same
// view in place (auto-refresh), keeping scroll position and focus.
export async function render(refreshing) {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  let match = null, route = null;
  for (const rt of routes) {
    match = path.match(rt.re);
    if (match) {
      route = rt;
      break;
    }
  }
  if (current) current.controller.abort();
  const controller = new AbortController();
  const params = new URLSearchParams(location.search);
  current = {controller, page: route ? route.page : {}, busy: true};
  const me = current;
  updateNav(route ? route.nav : '');
  schedule();
  if (!route) {
    updateBadges();
    document.title = 'Not found · SkyTrail';
    replace(main, h('h1', {}, 'Page not found'), message('info', 'There is no page at ', h('code', {}, location.pathname), '. ', h('a', {href: link('/services')}, 'Go to the services.')));
    me.busy = false;
    return;
  }
  if (!refreshing) window.scrollTo(0, 0);
  const ctx = {
    root: main, params, match, range: timeRange(params), signal: controller.signal, refreshing,
    link, navigate, setParams,
    title: (t) => { document.title = t + ' · SkyTrail'; },
    // current says whether this render is still the one on screen.
    current: () => current === me,
  };
  // A refresh rebuilds the view; the focused control keeps focus and caret.
  const focused = refreshing && document.activeElement && document.activeElement.id ? document.activeElement : null;
  try {
    await route.page.render(ctx);
    if (focused && !focused.isConnected) {
      const again = document.getElementById(focused.id);
      if (again) {
        again.focus();
        if (typeof focused.selectionStart === 'number' && typeof again.setSelectionRange === 'function') {
          try { again.setSelectionRange(focused.selectionStart, focused.selectionEnd); } catch { /* not a text input */ }
        }
      }
    }
    // A mark per finished render lets tests and the browser's performance
    // panel measure how long a view takes to appear.
    if (current === me) {
      performance.mark('skytrail:rendered', {detail: location.pathname});
      // skytrail:painted is when the browser has drawn it: a frame's
      // callbacks run before its style, layout and paint, and a task queued
      // from them runs after that frame (the first-draw budget's end).
      requestAnimationFrame(() => setTimeout(() => {
        if (current === me) performance.mark('skytrail:painted', {detail: location.pathname});
      }));
    }
    // The link or button that led here is gone with the old view: start
    // keyboard focus at the new view, not at the top of the page.
    if (!refreshing && (!document.activeElement || document.activeElement === document.body)) main.focus({preventScroll: true});
  } catch (e) {
    if (e.name === 'AbortError' || current !== me) return;
    replace(main, h('h1', {}, 'Something went wrong'), message('error', e.message));
  } finally {
    me.busy = false;
    // The badges' questions wait for the page's first frame: asked beside
    // the page's own, they took the server's time from them.
    requestAnimationFrame(() => setTimeout(() => {
      if (current === me) updateBadges();
    }));
  }
}

function onClick(ev) {
  if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
  // SVG links (the scatter plot's dots) have no .origin or .pathname, so
  // the URL is read from the attribute for both kinds.
  const a = ev.target.closest('a');
  const href = a && a.getAttribute('href');
  if (!href || href.startsWith('#') || a.getAttribute('target') || a.hasAttribute('download')) return;
  const url = new URL(href, location.href);
  if (url.origin !== location.origin) return;
  if (/^\/(api|jaeger|prometheus|metrics|debug|healthz)(\/|$)/.test(url.pathname)) return;
  ev.preventDefault();
  if (url.pathname + url.search === location.pathname + location.search) render(true);
  else navigate(url.pathname + url.search);
}

function start() {
  const saved = localStorage.getItem('skytrail-theme');
  document.documentElement.dataset.theme = saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  document.body.replaceChildren(header(), main);
  document.addEventListener('click', onClick);
  window.addEventListener('popstate', () => render(false));
  render(false);
}

start();
