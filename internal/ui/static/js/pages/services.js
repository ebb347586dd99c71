// Services: every service with calls/min, success rate, p99 and Apdex,
// sparklines over the shared range, sortable.
import {h, replace, loading, fmtNumber, fmtPercent, fmtMs, sortHeader, serviceColor, appendRows, afterPaint, compareText} from '../dom.js';
import {firingByService, alertBadge} from './alerts.js';
import {api, stepFor, chartRange, matrixBy, promRangeLit, perMinute, zeroFill} from '../api.js';
import {sparkline} from '../charts.js';
import {emptyState} from '../common.js';

// PAGE is how many services the list draws before "Show all".
const PAGE = 200;

const COLUMNS = [
  {key: 'name', label: 'Service'},
  {key: 'cpm', label: 'Calls/min', num: true},
  {key: 'success', label: 'Success rate', num: true},
  {key: 'p99', label: 'p99 latency', num: true},
  {key: 'apdex', label: 'Apdex', num: true},
];

// sparkQueries are range queries answering one series per service, from
// the per-minute series: each point sums the minutes of its step.
function sparkQueries(step) {
  const w = promRangeLit(step), per = step / 60000;
  const calls = `sum by (service) (sum_over_time(${perMinute('service', 'calls')}[${w}]))`;
  const errors = `sum by (service) (sum_over_time(${perMinute('service', 'errors')}[${w}]))`;
  return {
    cpm: `${calls} / ${per}`,
    success: `1 - ((${errors} / ${calls}) or (${calls} * 0))`,
    p99: `histogram_quantile(0.99, sum by (service) (sum_over_time(${perMinute('service', 'duration_seconds')}[${w}]))) * 1000`,
  };
}

// rateTitle says what a calls/min figure is the rate over.
export function rateTitle(f) {
  if (!f || !f.minutes) return undefined;
  if (f.minutes < 1) return `${fmtNumber(f.calls)} calls in the running minute's first ${Math.round(f.minutes * 60)} s`;
  return `${fmtNumber(f.calls)} calls; the rate over the ${fmtNumber(f.minutes)} complete minute${f.minutes === 1 ? '' : 's'} with calls`;
}

export function apdexClass(v) {
  if (v === undefined || v === null) return '';
  return v >= 0.94 ? 'good' : v >= 0.7 ? 'fair' : 'poor';
}

export async function render(ctx) {
  const {root, range: r, signal, params} = ctx;
  ctx.title('Services');
  if (!ctx.refreshing) replace(root, h('h1', {}, 'Services'), loading());
  // The firing alerts are asked for beside the list, not after it: the
  // first draw waits for one round trip, not two.
  const firingP = firingByService(signal);
  const {services: list} = await api.services(r, signal);
  if (list.length === 0) {
    replace(root, h('h1', {}, 'Services'), emptyState());
    return;
  }
  const step = stepFor(r), cr = chartRange(r);
  const q = sparkQueries(step);
  // The sparklines' range queries over every service take longest: the
  // first draw shows the figures without them and they follow (a refresh
  // waits for them instead, so the lines do not blink).
  const sparksP = Promise.all([
    api.promRange(q.cpm, cr, step, signal).catch(() => null),
    api.promRange(q.success, cr, step, signal).catch(() => null),
    api.promRange(q.p99, cr, step, signal).catch(() => null),
  ]).then(([cpm, success, p99]) => ({cpm: matrixBy(cpm, 'service'), success: matrixBy(success, 'service'), p99: matrixBy(p99, 'service')}));
  const firing = await firingP;
  let sparks = ctx.refreshing ? await sparksP : {cpm: new Map(), success: new Map(), p99: new Map()};
  if (!ctx.current()) return;
  // Figures come with each service (absent when it had no calls); the
  // rate is over the complete minutes with calls, as the sparkline's points.
  const rows = list.map((s) => {
    const f = s.figures;
    return {name: s.name, f, cpm: f ? f.callsPerMinute : null, success: f ? f.successRate : null,
      p99: f ? f.p99Ms : null, apdex: f && f.apdex !== undefined ? f.apdex : null};
  });

  const state = {key: params.get('sort') || 'name', dir: params.get('dir') || (params.get('sort') && params.get('sort') !== 'name' ? 'desc' : 'asc')};
  const filter = h('input', {type: 'search', id: 'service-filter', placeholder: 'Filter services', 'aria-label': 'Filter services', value: params.get('q') || ''});
  const tbody = h('tbody');
  const thead = h('thead');
  const table = h('table', {class: 'grid services'}, thead, tbody);

  // The first page draws PAGE rows (a server with hundreds of services
  // still shows its list at once); the rest on request.
  let showAll = false;
  const more = h('p', {class: 'more-rows'});
  const draw = () => {
    const needle = filter.value.trim().toLowerCase();
    const dir = state.dir === 'asc' ? 1 : -1;
    const shown = rows.filter((x) => !needle || x.name.toLowerCase().includes(needle)).sort((a, b) => {
      const va = a[state.key], vb = b[state.key];
      if (state.key === 'name') return dir * compareText(va, vb);
      if (va === null && vb === null) return compareText(a.name, b.name);
      if (va === null) return 1;
      if (vb === null) return -1;
      return dir * (va - vb) || compareText(a.name, b.name);
    });
    replace(thead, h('tr', {}, COLUMNS.map((c) => sortHeader(c.label, c.key, state, onSort, c.num ? 'num' : ''))));
    const total = shown.length;
    if (!showAll && total > PAGE) shown.length = PAGE;
    replace(more, total > shown.length ? [`${shown.length} of ${total} services shown. `,
      h('button', {type: 'button', class: 'small', onclick: () => { showAll = true; draw(); }}, `Show all ${total}`)] : null);
    stopRows();
    tbody.replaceChildren();
    // A refresh draws every row at once: the reader's scroll position stays.
    stopRows = appendRows(tbody, shown, {all: ctx.refreshing}, (x) => h('tr', {dataset: {service: x.name}},
      h('td', {}, h('span', {class: 'dot', style: {background: serviceColor(x.name)}}),
        h('a', {href: ctx.link('/services/' + encodeURIComponent(x.name))}, x.name), alertBadge(ctx, firing, x.name)),
      h('td', {class: 'num'}, h('span', {class: 'figure', title: rateTitle(x.f)}, fmtNumber(x.cpm)), spark(x.name, 0)),
      h('td', {class: ['num', x.success !== null && x.success < 0.99 && 'bad']}, h('span', {class: 'figure'}, fmtPercent(x.success)), spark(x.name, 1)),
      h('td', {class: 'num'}, h('span', {class: 'figure'}, fmtMs(x.p99)), spark(x.name, 2)),
      h('td', {class: 'num'}, x.apdex === null ? '–' : h('span', {class: ['apdex', apdexClass(x.apdex)]}, x.apdex.toFixed(2)))));
    if (shown.length === 0) tbody.append(h('tr', {}, h('td', {colspan: COLUMNS.length, class: 'muted'}, 'No service matches the filter.')));
  };
  // spark draws a row's sparkline in column i (calls, success, p99).
  const spark = (name, i) => (i === 0 ? sparkline(sparks.cpm.has(name) ? zeroFill(sparks.cpm.get(name), cr, step) : null, cr, {label: 'calls per minute', step})
    : i === 1 ? sparkline(sparks.success.get(name), cr, {color: 'var(--ok)', label: 'success rate', step})
      : sparkline(sparks.p99.get(name), cr, {color: 'var(--warn)', label: 'p99 latency', step}));
  let stopRows = () => {};
  function onSort(key) {
    if (state.key === key) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
    else {
      state.key = key;
      state.dir = key === 'name' ? 'asc' : 'desc';
    }
    ctx.setParams({sort: state.key, dir: state.dir});
    draw();
    thead.querySelector(`[aria-sort="${state.dir === 'asc' ? 'ascending' : 'descending'}"] button`).focus();
  }
  filter.addEventListener('input', () => {
    ctx.setParams({q: filter.value.trim()});
    draw();
  });
  draw();
  replace(root,
    h('div', {class: 'page-head'}, h('h1', {}, 'Services'), h('span', {class: 'muted'}, `${list.length} service${list.length === 1 ? '' : 's'}`), filter),
    h('div', {class: 'table-wrap'}, table), more);
  if (!ctx.refreshing) {
    // The sparklines replace their placeholders in the rows drawn (rows
    // still to come draw them themselves), after the figures are painted.
    sparksP.then((got) => afterPaint(() => {
      if (!ctx.current()) return;
      sparks = got;
      for (const tr of tbody.rows) {
        const name = tr.dataset.service;
        if (name === undefined) continue;
        tr.querySelectorAll('svg.spark').forEach((old, i) => old.replaceWith(spark(name, i)));
      }
      table.dataset.sparklines = 'drawn';
    })).catch(() => { /* aborted by the next view */ });
  } else {
    table.dataset.sparklines = 'drawn';
  }
}
