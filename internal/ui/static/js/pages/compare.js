// Trace compare: two traces side by side (as Jaeger offers), and what
// differs between them by service and operation: spans, time and own time,
// the biggest change first. /compare?a=<trace ID>&b=<trace ID>.
import {h, replace, message, loading, fmtMs, fmtNumber, fmtTime, distinctColors} from '../dom.js';
import {api, APIError} from '../api.js';
import {serviceChip} from '../common.js';
import {buildTree} from './trace.js';
import {opStats, sortable} from '../spanstats.js';

export const live = false;

function side(ctx, label, id, t) {
  if (t instanceof Error) return h('section', {class: 'compare-side'}, h('h2', {}, label), message('error', `Trace ${id}: ${t.message}`));
  const {data, tree} = t;
  const sum = data.summary, cause = tree.rootCause;
  return h('section', {class: 'compare-side', dataset: {side: label}},
    h('h2', {}, label, ': ', h('a', {class: 'mono', href: ctx.link('/traces/' + encodeURIComponent(data.traceID))}, data.traceID.slice(0, 16))),
    h('p', {}, h('strong', {}, sum.rootService), ': ', sum.rootOperation || '(no root span yet)'),
    h('table', {class: 'kvtable'}, h('tbody', {},
      h('tr', {}, h('th', {}, 'Start'), h('td', {}, fmtTime(tree.t0))),
      h('tr', {}, h('th', {}, 'Duration'), h('td', {class: 'cmp-duration'}, fmtMs(tree.duration))),
      h('tr', {}, h('th', {}, 'Spans'), h('td', {}, fmtNumber(data.spans.length, 0))),
      h('tr', {}, h('th', {}, 'Errors'), h('td', {class: sum.errorCount ? 'err-text' : ''}, fmtNumber(sum.errorCount, 0))),
      cause ? h('tr', {}, h('th', {}, 'Root cause'), h('td', {class: 'err-text'}, `${cause.span.service} ${cause.span.name}: ${cause.span.statusMessage || 'failed'}`)) : null)));
}

async function load(id, signal) {
  try {
    const data = await api.trace(id, signal);
    return {data, tree: buildTree(data.spans)};
  } catch (e) {
    if (e instanceof APIError && (e.status === 404 || e.status === 400)) return new Error(e.status === 404 ? 'not found' : e.message);
    throw e;
  }
}

export async function render(ctx) {
  const {root, signal, params} = ctx;
  const a = (params.get('a') || '').trim(), b = (params.get('b') || '').trim();
  ctx.title('Compare traces');
  const head = h('h1', {}, 'Compare traces');
  if (!a || !b) {
    replace(root, head, message('info', 'Give two trace IDs: /compare?a=<trace ID>&b=<trace ID>, or use Compare on a trace\'s page.'));
    return;
  }
  replace(root, head, loading());
  const [ta, tb] = await Promise.all([load(a, signal), load(b, signal)]);
  if (!ctx.current()) return;
  const body = [h('div', {class: 'two-col compare'}, side(ctx, 'A', a, ta), side(ctx, 'B', b, tb))];
  if (!(ta instanceof Error) && !(tb instanceof Error)) {
    const colors = distinctColors([...ta.data.spans, ...tb.data.spans].map((x) => x.service));
    const sa = new Map(opStats(ta.tree.nodes).map((s) => [s.key, s])), sb = new Map(opStats(tb.tree.nodes).map((s) => [s.key, s]));
    const rows = [...new Set([...sa.keys(), ...sb.keys()])].map((k) => {
      const x = sa.get(k), y = sb.get(k), any = x || y;
      return {key: k, service: any.service, name: any.name, countA: x ? x.count : 0, countB: y ? y.count : 0,
        selfA: x ? x.self : 0, selfB: y ? y.self : 0, delta: (y ? y.self : 0) - (x ? x.self : 0), only: !x ? 'B' : !y ? 'A' : ''};
    });
    rows.forEach((r) => { r.change = Math.abs(r.delta); });
    const d = tb.tree.duration - ta.tree.duration;
    body.push(h('h2', {}, 'What differs'),
      h('p', {class: 'muted compare-summary'}, `B took ${fmtMs(Math.abs(d))} ${d >= 0 ? 'longer' : 'less'} than A. By service and operation, the biggest change in own time first:`),
      sortable(rows, [
        {key: 'service', label: 'Service', cell: (r) => serviceChip(r.service, colors.get(r.service))},
        {key: 'name', label: 'Operation', cell: (r) => [r.name, r.only ? h('span', {class: 'tag'}, 'only in ' + r.only) : null]},
        {key: 'countA', label: 'Spans A', num: true, cell: (r) => fmtNumber(r.countA, 0)},
        {key: 'countB', label: 'Spans B', num: true, cell: (r) => fmtNumber(r.countB, 0)},
        {key: 'selfA', label: 'Own time A', num: true, cell: (r) => fmtMs(r.selfA)},
        {key: 'selfB', label: 'Own time B', num: true, cell: (r) => fmtMs(r.selfB)},
        {key: 'change', label: 'Change', num: true, cell: (r) => h('span', {class: r.delta > 0 ? 'err-text' : r.delta < 0 ? 'ok-text' : ''}, (r.delta > 0 ? '+' : r.delta < 0 ? '−' : '') + fmtMs(Math.abs(r.delta)))},
      ], {key: 'change', dir: 'desc'}, 'compare-table'));
  }
  replace(root, head, body);
}
