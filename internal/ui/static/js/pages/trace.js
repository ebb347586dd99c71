// The trace view: a waterfall with a collapsible span tree, service
// colours and error marks, and the selected span's details. Only the rows
// in view are in the DOM, so a trace of thousands of spans opens and
// scrolls as fast as a small one.
import {h, replace, message, loading, fmtMs, fmtTime, distinctColors, copyText, compareText} from '../dom.js';
import {api, APIError} from '../api.js';
import {serviceChip} from '../common.js';
import {spanTable, statsTable} from '../spanstats.js';
import {logList} from '../logview.js';

// live false: auto-refresh leaves a trace alone (it would reset the
// reader's collapsed subtrees and scroll position).
export const live = false;

const ROW = 26; // px per waterfall row; must match .wf-row's height in app.css
const OVERSCAN = 12;

// toMs reads an RFC 3339 time keeping its sub-millisecond digits.
export function toMs(t) {
  const m = /\.(\d+)/.exec(t);
  const base = Date.parse(m ? t.replace(m[0], '') : t);
  return m ? base + Number('0.' + m[1]) * 1000 : base;
}

// buildTree links spans to their parents. A span whose parent is not in
// the trace (not arrived, or sampled away) becomes a root of its own.
export function buildTree(spans) {
  const nodes = new Map();
  let t0 = Infinity, t1 = -Infinity;
  for (const sp of spans) {
    const start = toMs(sp.startTime), dur = sp.durationNanos / 1e6;
    t0 = Math.min(t0, start);
    t1 = Math.max(t1, start + dur);
    nodes.set(sp.spanID, {span: sp, start, dur, children: [], parent: null, depth: 0, error: sp.statusCode === 'ERROR'});
  }
  const roots = [];
  for (const n of nodes.values()) {
    const p = n.span.parentSpanID && nodes.get(n.span.parentSpanID);
    if (p && p !== n) {
      n.parent = p;
      p.children.push(n);
    } else {
      roots.push(n);
    }
  }
  const byStart = (a, b) => a.start - b.start;
  roots.sort(byStart);
  // Iterative walk: a deep trace must not overflow the call stack.
  const stack = roots.map((n) => [n, 0]);
  const seen = new Set();
  while (stack.length) {
    const [n, d] = stack.pop();
    if (seen.has(n)) continue;
    seen.add(n);
    n.depth = d;
    n.children.sort(byStart);
    for (const c of n.children) stack.push([c, d + 1]);
  }
  for (const n of nodes.values()) {
    if (!n.error) continue;
    for (let p = n.parent; p && !p.errorBelow; p = p.parent) p.errorBelow = true;
  }
  for (const n of nodes.values()) n.self = selfTime(n);
  if (roots.length) markCritical(roots.reduce((a, b) => (b.dur > a.dur ? b : a)));
  // Spans of no measurable length (SkyWalking's millisecond clocks make
  // them common) still get a 1 ms wide timeline.
  return {nodes, roots, t0, t1: t1 > t0 ? t1 : t0 + 1, duration: t1 - t0, rootCause: rootCause(nodes)};
}

// selfTime is the part of a span's time no child covers: the children's
// intervals, clipped to the span, merged, taken away.
export function selfTime(n) {
  const end = n.start + n.dur;
  const spans = n.children.map((c) => [Math.max(n.start, c.start), Math.min(end, c.start + c.dur)]).filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
  if (spans.length === 0) return n.dur;
  let covered = 0, [from, to] = spans[0];
  for (const [a, b] of spans.slice(1)) {
    if (a > to) {
      covered += to - from;
      from = a;
      to = b;
    } else {
      to = Math.max(to, b);
    }
  }
  covered += to - from;
  return Math.max(0, n.dur - covered);
}

// markCritical marks the critical path from root: the chain of spans the
// trace waited on. From the span's end backwards, the child that finished
// last is on it, then the child that finished last before that one started,
// and so on down each child (Jaeger's definition, whole spans marked).
function markCritical(root) {
  const eps = 1e-6;
  const stack = [[root, root.start + root.dur]];
  while (stack.length) {
    const [n, until] = stack.pop();
    n.critical = true;
    let cursor = Math.min(until, n.start + n.dur);
    const kids = [...n.children].sort((a, b) => (b.start + b.dur) - (a.start + a.dur));
    for (const c of kids) {
      const end = c.start + c.dur;
      if (end <= cursor + eps && end >= n.start - eps) {
        stack.push([c, cursor]);
        cursor = c.start;
      }
    }
  }
}

// rootCause is the deepest failing span (the first to start among equals):
// where an error began, not the spans it failed on its way up.
function rootCause(nodes) {
  let best = null;
  for (const n of nodes.values()) {
    if (!n.error) continue;
    if (!best || n.depth > best.depth || (n.depth === best.depth && n.start < best.start)) best = n;
  }
  return best;
}

// visibleRows lists the nodes shown, in tree order, skipping collapsed subtrees.
function visibleRows(roots, collapsed) {
  const out = [];
  const stack = [...roots].reverse();
  const seen = new Set();
  while (stack.length) {
    const n = stack.pop();
    if (seen.has(n)) continue;
    seen.add(n);
    out.push(n);
    if (!collapsed.has(n.span.spanID)) for (let i = n.children.length - 1; i >= 0; i--) stack.push(n.children[i]);
  }
  return out;
}

// errorMessage is a failed span's message when the status has none: the
// exception event's, else an error attribute's.
function errorMessage(sp) {
  const ev = (sp.events || []).find((e) => e.name === 'exception');
  if (ev && ev.attributes && ev.attributes['exception.message']) return String(ev.attributes['exception.message']);
  const a = sp.attributes || {};
  return a['error.message'] || a['exception.message'] || a['error.type'] || '';
}

function fmtValue(v) {
  if (v === null || v === undefined) return '';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function kvTable(obj, empty = 'none') {
  const entries = Object.entries(obj || {}).sort((a, b) => compareText(a[0], b[0]));
  if (entries.length === 0) return h('p', {class: 'muted small'}, empty);
  return h('table', {class: 'kvtable'}, h('tbody', {}, entries.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, fmtValue(v))))));
}

function copyButton(text, label) {
  const b = h('button', {type: 'button', class: 'small', onclick: async () => {
    const ok = await copyText(text);
    b.textContent = ok ? 'Copied' : 'Copy failed';
    setTimeout(() => { b.textContent = label; }, 1500);
  }}, label);
  return b;
}

function spanDetails(ctx, n, tree, logs) {
  const sp = n.span;
  const rel = n.start - tree.t0;
  const mine = logs.filter((l) => l.spanID === sp.spanID);
  return h('div', {class: 'span-detail'},
    h('div', {class: 'detail-head'},
      h('h2', {}, sp.name),
      h('button', {type: 'button', class: 'icon', 'aria-label': 'Close span details', title: 'Close (Esc)', onclick: () => ctx.select(null)}, '✕')),
    h('div', {class: 'chips'}, serviceChip(sp.service, ctx.colors.get(sp.service)), h('span', {class: 'tag'}, sp.kind),
      sp.statusCode === 'ERROR' ? h('span', {class: 'tag error'}, 'error') : sp.statusCode === 'OK' ? h('span', {class: 'tag ok'}, 'ok') : null),
    h('table', {class: 'kvtable'}, h('tbody', {},
      h('tr', {}, h('th', {}, 'Duration'), h('td', {}, fmtMs(n.dur))),
      h('tr', {}, h('th', {}, 'Self time'), h('td', {class: 'self-time'}, fmtMs(n.self), n.critical ? h('span', {class: 'muted'}, ' · on the critical path') : null)),
      h('tr', {}, h('th', {}, 'Start'), h('td', {}, `+${fmtMs(rel)} (${fmtTime(n.start)})`)),
      h('tr', {}, h('th', {}, 'Span ID'), h('td', {class: 'mono'}, sp.spanID, ' ', copyButton(sp.spanID, 'Copy'))),
      h('tr', {}, h('th', {}, 'Parent'), h('td', {class: 'mono'}, sp.parentSpanID ? (n.parent ? sp.parentSpanID : sp.parentSpanID + ' (not in this trace)') : '– (root)')),
      sp.statusMessage ? h('tr', {}, h('th', {}, 'Status'), h('td', {class: 'err-text'}, sp.statusMessage)) : null,
      sp.traceState ? h('tr', {}, h('th', {}, 'Trace state'), h('td', {class: 'mono'}, sp.traceState)) : null)),
    h('h3', {}, 'Attributes'), kvTable(sp.attributes),
    h('h3', {}, 'Resource'), kvTable(sp.resource),
    sp.scope && sp.scope.name ? [h('h3', {}, 'Instrumentation scope'), h('p', {class: 'mono small'}, sp.scope.name, sp.scope.version ? ' ' + sp.scope.version : '')] : null,
    h('h3', {}, 'Events', sp.events.length ? h('span', {class: 'count'}, sp.events.length) : null),
    sp.events.length === 0 ? h('p', {class: 'muted small'}, 'none') : h('ol', {class: 'events'}, sp.events.map((ev) =>
      h('li', {class: ev.name === 'exception' ? 'error' : ''}, h('div', {}, h('span', {class: 'muted'}, '+' + fmtMs(toMs(ev.time) - n.start), ' '), h('strong', {}, ev.name)), kvTable(ev.attributes, '')))),
    mine.length ? [h('h3', {}, 'Logs', h('span', {class: 'count'}, mine.length)), h('ol', {class: 'events'}, mine.map((l) =>
      h('li', {}, h('div', {}, h('span', {class: 'muted'}, '+' + fmtMs(toMs(l.time) - n.start), ' '), l.severity ? h('strong', {}, l.severity + ' ') : null, l.body),
        Object.keys(l.attributes || {}).length ? kvTable(l.attributes, '') : null)))] : null,
    h('h3', {}, 'Links', sp.links.length ? h('span', {class: 'count'}, sp.links.length) : null),
    sp.links.length === 0 ? h('p', {class: 'muted small'}, 'none') : h('ul', {class: 'events'}, sp.links.map((l) =>
      h('li', {}, h('a', {class: 'mono', href: ctx.link('/traces/' + l.traceID, {span: l.spanID})}, `${l.traceID} / ${l.spanID}`), kvTable(l.attributes, '')))));
}

export async function render(ctx) {
  const {root, signal, match, params} = ctx;
  const id = decodeURIComponent(match[1]);
  ctx.title('Trace ' + id.slice(0, 16));
  replace(root, loading());
  let data;
  try {
    data = await api.trace(id, signal);
  } catch (e) {
    if (e instanceof APIError && (e.status === 404 || e.status === 400)) {
      replace(root, h('h1', {}, 'Trace not found'), message('info', e.status === 404 ? 'No trace ' : 'Not a trace ID: ', h('code', {}, id),
        e.status === 404 ? ' is stored. It may not have arrived yet, or it is older than the retention.' : ` (${e.message}).`));
      return;
    }
    throw e;
  }
  const logsAnswer = await api.logs(data.traceID, signal).catch(() => null);
  if (!ctx.current()) return;
  const logs = (logsAnswer && logsAnswer.logs) || [];
  const logsBySpan = new Map();
  for (const l of logs) {
    if (!l.spanID) continue;
    if (!logsBySpan.has(l.spanID)) logsBySpan.set(l.spanID, []);
    logsBySpan.get(l.spanID).push(l);
  }
  const tree = buildTree(data.spans);
  const total = tree.t1 - tree.t0;
  const colors = distinctColors(data.spans.map((x) => x.service));
  // Indent less per level in deep traces so names stay readable.
  let maxDepth = 0;
  for (const n of tree.nodes.values()) maxDepth = Math.max(maxDepth, n.depth);
  const indent = Math.max(4, Math.min(14, 240 / Math.max(1, maxDepth)));
  const sum = data.summary;
  const collapsed = new Set();
  // Spans whose log lines are open under them: each line a row of the
  // waterfall after its span's (lines is what is drawn, rows the spans the
  // keyboard walks).
  const logsOpen = new Set();
  let rows = visibleRows(tree.roots, collapsed);
  let lines = withLogLines(rows);
  function withLogLines(spans) {
    if (logsOpen.size === 0) return spans;
    const out = [];
    for (const n of spans) {
      out.push(n);
      if (logsOpen.has(n.span.spanID)) for (const l of logsBySpan.get(n.span.spanID) || []) out.push({log: l, node: n});
    }
    return out;
  }
  function relayout() {
    rows = visibleRows(tree.roots, collapsed);
    lines = withLogLines(rows);
  }
  function toggleLogs(n) {
    if (logsOpen.has(n.span.spanID)) logsOpen.delete(n.span.spanID);
    else logsOpen.add(n.span.spanID);
    lines = withLogLines(rows);
    draw(true);
  }
  let selected = params.get('span') && tree.nodes.get(params.get('span')) || null;
  let matches = new Set();

  const body = h('div', {class: 'wf-body', tabindex: '0', role: 'tree', 'aria-label': 'Spans'});
  const inner = h('div', {class: 'wf-inner'});
  body.append(inner);
  const detail = h('aside', {class: 'wf-detail', 'aria-label': 'Span details'});
  const layout = h('div', {class: 'wf-layout'});

  const ticks = [0, 0.25, 0.5, 0.75, 1];
  const ruler = h('div', {class: 'wf-ruler'}, h('div', {class: 'wf-name'}, 'Service and operation'),
    h('div', {class: 'wf-time'}, ticks.map((f) => h('span', {class: 'tick', style: {left: f * 100 + '%'}}, fmtMs(total * f)))));

  function toggle(n) {
    if (n.children.length === 0) return;
    if (collapsed.has(n.span.spanID)) collapsed.delete(n.span.spanID);
    else collapsed.add(n.span.spanID);
    relayout();
    draw(true);
  }

  function rowEl(n, i) {
    const sp = n.span;
    const hasKids = n.children.length > 0;
    const open = hasKids && !collapsed.has(sp.spanID);
    const left = ((n.start - tree.t0) / total) * 100;
    const width = Math.max(0.15, (n.dur / total) * 100);
    const color = colors.get(sp.service);
    const inside = width > 30; // a long bar carries its label
    const labelLeft = !inside && left + width > 75;
    const durText = n.self < n.dur - 0.0005 ? `${fmtMs(n.dur)} · self ${fmtMs(n.self)}` : fmtMs(n.dur);
    // The span's own log lines: a count by its name, a tick on its bar at
    // each line's time (the details list them).
    const mine = logsBySpan.get(sp.spanID) || [];
    return h('div', {class: ['wf-row', n === selected && 'selected', n.error && 'error', matches.has(n) && 'match', n.critical && 'critical'],
      id: 'span-' + sp.spanID, role: 'treeitem', 'aria-level': n.depth + 1, 'aria-selected': n === selected ? 'true' : 'false',
      'aria-expanded': hasKids ? String(open) : undefined, dataset: {spanId: sp.spanID, depth: n.depth},
      style: {top: i * ROW + 'px'}, onclick: () => select(n)},
    h('div', {class: 'wf-name', style: {paddingLeft: 6 + n.depth * indent + 'px'}},
      hasKids ? h('button', {type: 'button', class: 'twisty', tabindex: '-1', 'aria-label': open ? 'Collapse' : 'Expand',
        onclick: (ev) => { ev.stopPropagation(); toggle(n); }}, open ? '▾' : '▸') : h('span', {class: 'twisty'}),
      h('span', {class: 'svc-bar', style: {background: color}}),
      h('span', {class: 'svc'}, sp.service),
      h('span', {class: 'op'}, sp.name),
      n.error ? h('span', {class: 'err-mark', title: sp.statusMessage || 'error'}, '!') : null,
      !open && hasKids && n.errorBelow ? h('span', {class: 'err-mark faint', title: 'an error below'}, '!') : null,
      !open && hasKids ? h('span', {class: 'hidden-count'}, `+${countBelow(n)}`) : null,
      mine.length ? h('button', {type: 'button', class: 'log-mark', tabindex: '-1', 'aria-expanded': String(logsOpen.has(sp.spanID)),
        title: `${mine.length} log line${mine.length === 1 ? '' : 's'} from this span: ${logsOpen.has(sp.spanID) ? 'hide' : 'show'} them here`,
        onclick: (ev) => { ev.stopPropagation(); toggleLogs(n); }}, `≡ ${mine.length}`) : null),
    h('div', {class: 'wf-time'},
      mine.slice(0, 50).map((l) => h('span', {class: ['wf-log-tick', (l.severityNumber || 0) >= 17 && 'error'], title: l.body,
        style: {left: Math.min(100, Math.max(0, ((toMs(l.time) - tree.t0) / total) * 100)) + '%'}})),
      h('div', {class: ['wf-bar', n.critical && 'critical'], title: n.critical ? 'on the critical path' : undefined, style: {left: left + '%', width: width + '%', background: n.error ? 'var(--err)' : color}}),
      h('span', {class: ['wf-dur', inside && 'inside'], style: inside ? {right: (100 - left - width) + '%', paddingRight: '6px'}
        : labelLeft ? {right: (100 - left) + '%', paddingRight: '4px'} : {left: left + width + '%', paddingLeft: '4px'}}, durText)));
  }

  // logRowEl is one log line under its span: time, severity, message and
  // fields on one row (all of it in the tooltip), a tick at its time.
  function logRowEl(e, i) {
    const l = e.log;
    const sev = (l.severityNumber || 0) >= 17 ? 'error' : (l.severityNumber || 0) >= 13 ? 'warning' : '';
    const fields = Object.entries(l.attributes || {}).filter(([k]) => k !== 'trace_id' && k !== 'span_id');
    const text = [fmtTime(l.time), l.severity, l.body, ...fields.map(([k, v]) => `${k}=${v}`)].filter(Boolean).join('  ');
    const at = Math.min(100, Math.max(0, ((toMs(l.time) - tree.t0) / total) * 100));
    return h('div', {class: ['wf-log-row', sev], role: 'none', title: text, dataset: {spanId: e.node.span.spanID}, style: {top: i * ROW + 'px'},
      onclick: () => select(e.node)},
    h('div', {class: 'wf-name', style: {paddingLeft: 6 + (e.node.depth + 1) * indent + 'px'}},
      h('time', {class: 'mono muted', datetime: l.time}, fmtTime(l.time).slice(11)),
      l.severity ? h('strong', {class: 'log-sev'}, l.severity) : null,
      h('span', {class: 'log-body'}, l.body)),
    h('div', {class: 'wf-time'},
      h('span', {class: ['wf-log-tick', sev === 'error' && 'error'], style: {left: at + '%'}}),
      h('span', {class: 'wf-log-fields mono'}, fields.map(([k, v]) => h('span', {}, h('span', {class: 'muted'}, k + '='), v)))));
  }

  function countBelow(n) {
    let c = 0;
    const st = [...n.children];
    while (st.length) {
      const x = st.pop();
      c++;
      st.push(...x.children);
    }
    return c;
  }

  let lastFrom = -1, lastTo = -1;
  function draw(force) {
    inner.style.height = lines.length * ROW + 'px';
    const from = Math.max(0, Math.floor(body.scrollTop / ROW) - OVERSCAN);
    const to = Math.min(lines.length, Math.ceil((body.scrollTop + body.clientHeight) / ROW) + OVERSCAN);
    if (!force && from === lastFrom && to === lastTo) return;
    lastFrom = from;
    lastTo = to;
    const els = [];
    for (let i = from; i < to; i++) els.push(lines[i].log ? logRowEl(lines[i], i) : rowEl(lines[i], i));
    inner.replaceChildren(...els);
    body.setAttribute('aria-activedescendant', selected && rows.includes(selected) ? 'span-' + selected.span.spanID : '');
  }

  let scheduled = false;
  body.addEventListener('scroll', () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => { scheduled = false; draw(false); });
  });

  function reveal(n) {
    let changed = false;
    for (let p = n.parent; p; p = p.parent) if (collapsed.delete(p.span.spanID)) changed = true;
    if (changed) relayout();
    const i = lines.indexOf(n);
    if (i < 0) return;
    const top = i * ROW;
    if (top < body.scrollTop) body.scrollTop = top;
    else if (top + ROW > body.scrollTop + body.clientHeight) body.scrollTop = top + ROW - body.clientHeight;
  }

  function select(n) {
    selected = n;
    ctx.setParams({span: n ? n.span.spanID : ''});
    if (n) {
      reveal(n);
      replace(detail, spanDetails(ctx, n, tree, logs));
      layout.classList.add('with-detail');
    } else {
      detail.replaceChildren();
      layout.classList.remove('with-detail');
    }
    draw(true);
  }
  ctx.select = (n) => { select(n); body.focus(); };
  ctx.colors = colors;

  body.addEventListener('keydown', (ev) => {
    const i = selected ? rows.indexOf(selected) : -1;
    let next = null;
    switch (ev.key) {
    case 'ArrowDown': next = rows[Math.min(rows.length - 1, i + 1)]; break;
    case 'ArrowUp': next = rows[Math.max(0, i - 1)]; break;
    case 'Home': next = rows[0]; break;
    case 'End': next = rows[rows.length - 1]; break;
    case 'PageDown': next = rows[Math.min(rows.length - 1, i + Math.floor(body.clientHeight / ROW))]; break;
    case 'PageUp': next = rows[Math.max(0, i - Math.floor(body.clientHeight / ROW))]; break;
    case 'ArrowRight':
      if (selected && collapsed.has(selected.span.spanID)) toggle(selected);
      else if (selected && selected.children.length) next = selected.children[0];
      break;
    case 'ArrowLeft':
      if (selected && selected.children.length && !collapsed.has(selected.span.spanID)) toggle(selected);
      else if (selected && selected.parent) next = selected.parent;
      break;
    case 'l':
      // The selected span's log lines, shown or hidden under it.
      if (selected && logsBySpan.has(selected.span.spanID)) toggleLogs(selected);
      break;
    case 'Enter': case ' ': if (selected) toggle(selected); break;
    case 'Escape': if (selected) select(null); break;
    default: return;
    }
    ev.preventDefault();
    if (next) select(next);
  });
  detail.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') ctx.select(null);
  });

  const find = h('input', {type: 'search', placeholder: 'Find in trace (name, service, attribute)', 'aria-label': 'Find spans', class: 'find'});
  const findCount = h('span', {class: 'muted small', 'aria-live': 'polite'});
  let matchOrder = [];
  find.addEventListener('input', () => {
    const q = find.value.trim().toLowerCase();
    matches = new Set();
    if (q) {
      for (const n of tree.nodes.values()) {
        const sp = n.span;
        const hay = [sp.name, sp.service, sp.spanID, sp.statusMessage || '', ...Object.entries(sp.attributes || {}).map(([k, v]) => k + '=' + fmtValue(v))].join('\n').toLowerCase();
        if (hay.includes(q)) matches.add(n);
      }
    }
    matchOrder = [...matches].sort((a, b) => a.start - b.start);
    findCount.textContent = q ? `${matches.size} match${matches.size === 1 ? '' : 'es'}` : '';
    draw(true);
  });
  find.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || matchOrder.length === 0) return;
    ev.preventDefault();
    const at = selected ? matchOrder.indexOf(selected) : -1;
    select(matchOrder[(at + 1) % matchOrder.length]);
  });

  const expandAll = h('button', {type: 'button', class: 'small', onclick: () => { collapsed.clear(); relayout(); draw(true); }}, 'Expand all');
  const collapseAll = h('button', {type: 'button', class: 'small', onclick: () => {
    for (const n of tree.nodes.values()) if (n.children.length && n.depth >= 1) collapsed.add(n.span.spanID);
    relayout();
    if (selected && !rows.includes(selected)) selected = null;
    draw(true);
  }}, 'Collapse all');

  const services = [...new Set(data.spans.map((x) => x.service))];
  // The trace's logs, newest last; a log naming a span of the trace selects it.
  const logsBox = h('section', {class: 'trace-logs', hidden: true, 'aria-label': 'Logs of this trace'},
    h('h2', {}, 'Logs'), h('ol', {class: 'events'}, [...logs].sort((a, b) => toMs(a.time) - toMs(b.time)).map((l) => {
      const n = l.spanID && tree.nodes.get(l.spanID);
      return h('li', {class: /error|fatal/i.test(l.severity || '') ? 'error' : ''},
        h('div', {}, h('span', {class: 'muted'}, '+' + fmtMs(toMs(l.time) - tree.t0), ' '), serviceChip(l.service, colors.get(l.service)), ' ',
          l.severity ? h('strong', {}, l.severity + ' ') : null, l.body),
        n ? h('button', {type: 'button', class: 'small', onclick: () => ctx.select(n)}, 'Show span ' + n.span.name) : null);
    })));
  const logsToggle = h('button', {type: 'button', class: 'small', 'aria-expanded': 'false', onclick: () => {
    logsBox.hidden = !logsBox.hidden;
    logsToggle.setAttribute('aria-expanded', String(!logsBox.hidden));
    if (!logsBox.hidden) logsBox.scrollIntoView({block: 'nearest'});
  }}, `${logs.length} log${logs.length === 1 ? '' : 's'}`);
  const head = h('div', {class: 'trace-header'},
    h('div', {class: 'page-head'},
      h('h1', {}, h('span', {class: 'muted'}, sum.rootService + ': '), sum.rootOperation || '(no root span yet)'),
      sum.error ? h('span', {class: 'tag error'}, 'error') : null),
    h('div', {class: 'trace-facts'},
      h('span', {}, 'Trace ', h('code', {id: 'trace-id'}, data.traceID), ' ', copyButton(data.traceID, 'Copy ID')),
      h('span', {}, fmtTime(tree.t0)),
      h('span', {}, 'Duration ', h('strong', {}, fmtMs(tree.duration))),
      h('span', {}, h('strong', {}, data.spans.length), ' spans'),
      h('span', {}, h('strong', {}, services.length), ' services'),
      sum.errorCount ? h('span', {class: 'err-text'}, h('strong', {}, sum.errorCount), ' errors') : null,
      logs.length ? logsToggle : null,
      h('a', {href: `/api/v1/traces/${encodeURIComponent(data.traceID)}`, target: '_blank', rel: 'noopener'}, 'JSON')),
    tree.rootCause ? h('div', {class: 'message error root-cause'}, h('strong', {}, 'Root cause: '),
      serviceChip(tree.rootCause.span.service, colors.get(tree.rootCause.span.service)), ' ',
      h('button', {type: 'button', class: 'linklike op', title: 'Show this span', onclick: () => ctx.select(tree.rootCause)}, tree.rootCause.span.name),
      ': ', h('span', {class: 'cause-message'}, tree.rootCause.span.statusMessage || errorMessage(tree.rootCause.span) || 'failed, without a message'),
      h('span', {class: 'muted small'}, ' (the deepest failing span)')) : null,
    h('div', {class: 'chips'}, services.map((name) => serviceChip(name, colors.get(name))),
      h('span', {class: 'legend muted small'}, h('span', {class: 'crit-key'}), ' critical path')),
    h('div', {class: 'wf-tools'}, find, findCount, expandAll, collapseAll,
      h('span', {class: 'muted small'}, `Keys: ↑ ↓ move, ← → collapse/expand, Enter toggle,${logsBySpan.size ? ' l log lines,' : ''} Esc close`)));

  layout.append(h('div', {class: 'wf'}, ruler, body), detail);
  // The other views of the same spans: a sortable table of every span, and
  // statistics by service and operation; the choice is in the URL.
  const other = h('section', {class: 'trace-other'});
  const tabs = h('div', {class: 'view-tabs', role: 'tablist', 'aria-label': 'Trace views'});
  const showView = (v) => {
    for (const b of tabs.children) b.setAttribute('aria-selected', String(b.dataset.view === v));
    layout.hidden = v !== 'waterfall';
    head.querySelector('.wf-tools').hidden = v !== 'waterfall';
    other.hidden = v === 'waterfall';
    if (v === 'table') replace(other, spanTable(tree, colors, (n) => { showView('waterfall'); ctx.setParams({view: ''}); ctx.select(n); }));
    else if (v === 'logs') replace(other, logs.length ? logList([...logs].sort((a, b) => toMs(a.time) - toMs(b.time))) : h('p', {class: 'muted'}, 'No log lines of this trace are stored.'));
    else if (v === 'stats') replace(other, h('p', {class: 'muted small'}, 'By service and operation, most own time first: where the trace\'s time goes.'), statsTable(tree, colors));
    if (v === 'waterfall') draw(true);
  };
  for (const [v, label] of [['waterfall', 'Waterfall'], ['table', 'Span table'], ['stats', 'Statistics'], ['logs', `Logs (${logs.length})`]]) {
    tabs.append(h('button', {type: 'button', role: 'tab', class: 'small', dataset: {view: v}, onclick: () => { ctx.setParams({view: v === 'waterfall' ? '' : v}); showView(v); }}, label));
  }
  const compareInput = h('input', {type: 'search', placeholder: 'another trace ID', 'aria-label': 'Trace ID to compare with', spellcheck: 'false'});
  const compare = h('form', {class: 'compare-form', onsubmit: (ev) => {
    ev.preventDefault();
    const other = compareInput.value.trim();
    if (other) ctx.navigate(ctx.link('/compare', {a: data.traceID, b: other}));
  }}, compareInput, h('button', {type: 'submit', class: 'small'}, 'Compare'));
  replace(root, head, h('div', {class: 'view-bar'}, tabs, compare), logsBox, layout, other);
  const view = ['table', 'stats', 'logs'].includes(params.get('view')) ? params.get('view') : 'waterfall';
  showView(view);
  if (selected) select(selected);
  else draw(true);
}
