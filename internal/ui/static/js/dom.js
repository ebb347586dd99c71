// DOM building and formatting helpers. Elements are built with h() from
// text and attributes, never from HTML strings, so data shown in the UI
// (span names, attribute values) can never inject markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    else if (k === 'style' && typeof v === 'object') {
      for (const [prop, val] of Object.entries(v)) {
        if (prop.startsWith('--')) el.style.setProperty(prop, val);
        else el.style[prop] = val;
      }
    }
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && !(el instanceof SVGElement) && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// h('a', {href: '/x', class: 'link'}, 'text', child, [more]) builds an HTML element.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s() builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// afterPaint runs fn in a task after the browser has drawn the next frame:
// work that must not hold the first draw back.
export function afterPaint(fn) {
  requestAnimationFrame(() => setTimeout(fn));
}

// FIRST_ROWS is how many rows a long table builds before its first frame:
// more than a tall screen holds.
export const FIRST_ROWS = 40;

// appendRows appends make(item) for each item to parent: the first
// FIRST_ROWS at once, the rest after the first frame is painted, a few
// score a task, so a table of hundreds shows its first screen without
// building the rest first (and the page stays responsive while it does).
// It returns a function that stops what is still to come (a redraw
// replacing the rows). With all (a refresh redrawing a table in place,
// where a shorter table would move the reader's scroll position) every
// row is built at once.
export function appendRows(parent, items, {all = false}, make) {
  if (all) {
    parent.append(...items.map(make));
    return () => {};
  }
  parent.append(...items.slice(0, FIRST_ROWS).map(make));
  return afterFirstFrame(items.slice(FIRST_ROWS), (chunk) => parent.append(...chunk.map(make)));
}

// afterFirstFrame hands items to each, 80 a task, once the first frame of
// the view is painted: what a long view builds beyond its first screen.
// It returns a function that stops what is still to come.
export function afterFirstFrame(items, each) {
  let stopped = false;
  const more = (from) => {
    if (stopped || from >= items.length) return;
    each(items.slice(from, from + 80));
    setTimeout(() => more(from + 80));
  };
  // One task later than afterPaint: the app marks the painted frame from
  // a task queued at the same point (app.js), and the rest comes after it.
  if (items.length) afterPaint(() => setTimeout(() => more(0)));
  return () => { stopped = true; };
}

// replace swaps root's content in one step, so a refresh never flashes empty.
export function replace(root, ...children) {
  const frag = document.createDocumentFragment();
  append(frag, children);
  root.replaceChildren(frag);
}

// The formatters and the collator are made once: toLocaleString and
// localeCompare build a new one on every call, tens of microseconds each,
// which a list of 500 services sorted and formatted pays thousands of times
// before its first frame.
const integerFormat = new Intl.NumberFormat('en-US', {maximumFractionDigits: 0});
const clockFormat = new Intl.DateTimeFormat('en-GB', {hour: '2-digit', minute: '2-digit'});
const collator = new Intl.Collator();

// compareText orders names as localeCompare does.
export const compareText = collator.compare;

export function fmtNumber(v, digits = 1) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e6) return (v / 1e6).toFixed(digits) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(digits) + 'k';
  if (a >= 100 || Number.isInteger(v)) return integerFormat.format(Math.round(v));
  return v.toFixed(a < 1 ? 2 : digits);
}

export function fmtPercent(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  const p = v * 100;
  if (p === 100 || p === 0) return p + '%';
  return (p >= 99.9 || p < 1 ? p.toFixed(2) : p.toFixed(1)) + '%';
}

// fmtMs shows a duration given in milliseconds with a unit that fits.
export function fmtMs(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '–';
  if (ms === 0) return '0ms';
  if (ms < 1) return (ms * 1000).toFixed(ms < 0.01 ? 1 : 0) + 'µs';
  if (ms < 10) return ms.toFixed(2) + 'ms';
  if (ms < 1000) return ms.toFixed(ms < 100 ? 1 : 0) + 'ms';
  if (ms < 60000) return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + 's';
  const m = Math.floor(ms / 60000);
  return m + 'm' + Math.round((ms % 60000) / 1000) + 's';
}

export function fmtTime(t) {
  const d = t instanceof Date ? t : new Date(t);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtClock(t) {
  const d = new Date(t);
  return clockFormat.format(d);
}

export function fmtAgo(t, now = Date.now()) {
  const sec = Math.round((now - new Date(t).getTime()) / 1000);
  if (sec < 2) return 'just now';
  if (sec < 60) return sec + 's ago';
  if (sec < 3600) return Math.floor(sec / 60) + 'm ago';
  if (sec < 86400) return Math.floor(sec / 3600) + 'h ago';
  return Math.floor(sec / 86400) + 'd ago';
}

// serviceColor is a service's one colour, the same on every page (list,
// service page, map, waterfall, search results, charts): a hue from a hash
// of the name, one of 300 (so two services rarely share one, as eleven
// palette colours often did), kept out of the error red's band (hues 335°
// to 25°), at a saturation and lightness readable on light and dark
// backgrounds.
export function serviceColor(name) {
  let hash = 2166136261;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 16777619);
  hash >>>= 0;
  const hue = 25 + (hash % 300);
  const light = 42 + ((hash >>> 9) % 3) * 6; // 42, 48 or 54%: neighbours in hue still differ
  return `hsl(${hue} 68% ${light}%)`;
}

// distinctColors maps each of services to its colour (serviceColor): a
// trace shows a service in the colour it has everywhere else.
export function distinctColors(services) {
  return new Map(services.map((name) => [name, serviceColor(name)]));
}

export function message(kind, ...children) {
  return h('div', {class: ['message', kind], role: kind === 'error' ? 'alert' : 'status'}, ...children);
}

export function loading() {
  return h('div', {class: 'loading', role: 'status'}, 'Loading…');
}

// copyText copies to the clipboard; the fallback covers plain-HTTP pages,
// where navigator.clipboard is not available.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch { /* fall through to the fallback */ }
  }
  const ta = h('textarea', {style: {position: 'fixed', opacity: '0'}}, text);
  document.body.append(ta);
  ta.select();
  const ok = document.execCommand('copy');
  ta.remove();
  return ok;
}

// sortButton is a table header that sorts by key; state is {key, dir}.
export function sortHeader(label, key, state, onSort, cls) {
  const active = state.key === key;
  const dir = active ? state.dir : null;
  return h('th', {class: cls, 'aria-sort': active ? (dir === 'asc' ? 'ascending' : 'descending') : 'none'},
    h('button', {type: 'button', class: 'sort', onclick: () => onSort(key)},
      label, h('span', {class: 'arrow', 'aria-hidden': 'true'}, active ? (dir === 'asc' ? '▲' : '▼') : '')));
}
