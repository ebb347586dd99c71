// Span tables and statistics of a trace (the trace page's other views,
// and trace compare): each span's time and self time, and per service and
// operation where a trace's time goes.
import {h, fmtMs, fmtNumber, sortHeader, compareText} from './dom.js';
import {serviceChip} from './common.js';

// opStats groups a trace's spans (buildTree's nodes) by service and
// operation: count, errors, total, self total, mean and longest, most self
// time first.
export function opStats(nodes) {
  const by = new Map();
  for (const n of nodes.values()) {
    const k = n.span.service + '\u0000' + n.span.name;
    let s = by.get(k);
    if (!s) by.set(k, s = {key: k, service: n.span.service, name: n.span.name, count: 0, errors: 0, total: 0, self: 0, max: 0});
    s.count++;
    if (n.error) s.errors++;
    s.total += n.dur;
    s.self += n.self;
    s.max = Math.max(s.max, n.dur);
  }
  const out = [...by.values()];
  for (const s of out) s.mean = s.total / s.count;
  return out.sort((a, b) => b.self - a.self || compareText(a.key, b.key));
}

// sortable draws rows as a table whose headers sort it; cols are
// {key, label, num, cell(row)}.
export function sortable(rows, cols, initial, cls) {
  const state = {...initial};
  const thead = h('thead'), tbody = h('tbody');
  const draw = () => {
    const dir = state.dir === 'asc' ? 1 : -1;
    const sorted = [...rows].sort((a, b) => {
      const va = a[state.key], vb = b[state.key];
      return dir * (typeof va === 'string' ? compareText(va, vb) : va - vb);
    });
    thead.replaceChildren(h('tr', {}, cols.map((c) => sortHeader(c.label, c.key, state, (k) => {
      if (state.key === k) state.dir = state.dir === 'asc' ? 'desc' : 'asc';
      else {
        state.key = k;
        state.dir = cols.find((x) => x.key === k).num ? 'desc' : 'asc';
      }
      draw();
    }, c.num ? 'num' : ''))));
    tbody.replaceChildren(...sorted.map((r) => h('tr', {}, cols.map((c) => h('td', {class: c.num ? 'num' : ''}, c.cell(r))))));
  };
  draw();
  return h('div', {class: 'table-wrap'}, h('table', {class: ['grid', cls]}, thead, tbody));
}

// spanTable lists every span: service, operation, kind, start, duration,
// self time; onPick(node) opens one.
export function spanTable(tree, colors, onPick) {
  const rows = [...tree.nodes.values()].map((n) => ({n, service: n.span.service, name: n.span.name, kind: n.span.kind,
    start: n.start - tree.t0, dur: n.dur, self: n.self, error: n.error ? 1 : 0}));
  return sortable(rows, [
    {key: 'service', label: 'Service', cell: (r) => serviceChip(r.service, colors.get(r.service))},
    {key: 'name', label: 'Operation', cell: (r) => h('button', {type: 'button', class: ['linklike', r.error && 'err-text'], onclick: () => onPick(r.n)}, r.name)},
    {key: 'kind', label: 'Kind', cell: (r) => r.kind},
    {key: 'start', label: 'Start', num: true, cell: (r) => '+' + fmtMs(r.start)},
    {key: 'dur', label: 'Duration', num: true, cell: (r) => fmtMs(r.dur)},
    {key: 'self', label: 'Self time', num: true, cell: (r) => fmtMs(r.self)},
  ], {key: 'dur', dir: 'desc'}, 'span-table');
}

// statsTable is opStats as a table.
export function statsTable(tree, colors) {
  return sortable(opStats(tree.nodes), [
    {key: 'service', label: 'Service', cell: (r) => serviceChip(r.service, colors.get(r.service))},
    {key: 'name', label: 'Operation', cell: (r) => r.name},
    {key: 'count', label: 'Spans', num: true, cell: (r) => fmtNumber(r.count, 0)},
    {key: 'errors', label: 'Errors', num: true, cell: (r) => (r.errors ? h('span', {class: 'err-text'}, fmtNumber(r.errors, 0)) : '0')},
    {key: 'total', label: 'Total', num: true, cell: (r) => fmtMs(r.total)},
    {key: 'self', label: 'Self total', num: true, cell: (r) => fmtMs(r.self)},
    {key: 'mean', label: 'Mean', num: true, cell: (r) => fmtMs(r.mean)},
    {key: 'max', label: 'Longest', num: true, cell: (r) => fmtMs(r.max)},
  ], {key: 'self', dir: 'desc'}, 'span-stats');
}
