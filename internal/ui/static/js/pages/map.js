// The service map: services and the virtual nodes they call (database,
// cache, queue, external, user) in layers from callers to callees, edges
// labelled with their call rate and drawn red when calls failed. A click
// on a node or edge shows its figures and leads to its traces.
import {h, s, replace, message, loading, fmtNumber, fmtPercent, fmtMs, serviceColor} from '../dom.js';
import {api} from '../api.js';
import {emptyState} from '../common.js';

const COL = 230, SUBCOL = 170, ROWH = 96, PAD = 70, R = 22;
const TYPE_LABEL = {service: 'service', database: 'database', cache: 'cache', mq: 'message queue', external: 'external', user: 'user'};

// layout puts each node in a column by its longest call path from a
// caller-less node, then orders each column by the mean row of its callers
// so edges cross less.
export function layout(nodes, edges) {
  if (edges.length === 0) {
    // Nothing connects the nodes: a grid reads better than one long column.
    const per = Math.ceil(Math.sqrt(nodes.length * 2));
    const pos = new Map([...nodes].sort((a, b) => a.name.localeCompare(b.name))
      .map((n, i) => [n.name, {x: PAD + (i % per) * COL, y: PAD + Math.floor(i / per) * ROWH}]));
    const cols = Math.min(per, nodes.length);
    return {pos, width: PAD * 2 + (cols - 1) * COL, height: PAD * 2 + (Math.ceil(nodes.length / per) - 1) * ROWH};
  }
  const out = new Map(nodes.map((n) => [n.name, []]));
  const indeg = new Map(nodes.map((n) => [n.name, 0]));
  for (const e of edges) {
    if (e.client === e.server || !out.has(e.client) || !out.has(e.server)) continue;
    out.get(e.client).push(e.server);
    indeg.set(e.server, indeg.get(e.server) + 1);
  }
  // Kahn's algorithm; nodes left in a cycle are placed after their callers seen so far.
  const layer = new Map(nodes.map((n) => [n.name, 0]));
  const queue = nodes.filter((n) => indeg.get(n.name) === 0).map((n) => n.name);
  const done = new Set();
  while (queue.length || done.size < nodes.length) {
    if (!queue.length) {
      const rest = nodes.find((n) => !done.has(n.name));
      queue.push(rest.name);
      indeg.set(rest.name, 0);
    }
    const name = queue.shift();
    if (done.has(name)) continue;
    done.add(name);
    for (const next of out.get(name)) {
      if (done.has(next)) continue;
      layer.set(next, Math.max(layer.get(next), layer.get(name) + 1));
      indeg.set(next, indeg.get(next) - 1);
      if (indeg.get(next) === 0) queue.push(next);
    }
  }
  const cols = [];
  for (const n of nodes) {
    const l = layer.get(n.name);
    (cols[l] = cols[l] || []).push(n.name);
  }
  const pos = new Map();
  const callers = new Map(nodes.map((n) => [n.name, []]));
  for (const [from, tos] of out) for (const to of tos) callers.get(to).push(from);
  // A layer taller than maxRows wraps into sub-columns (a hundred services
  // called by "user" would otherwise make one very long column); nodes
  // that call others go in the sub-column nearest the next layer.
  const maxRows = Math.max(8, Math.ceil(Math.sqrt(nodes.length) * 1.2));
  let x = PAD, height = 0;
  cols.forEach((col, ci) => {
    if (!col) return;
    const mean = (name) => {
      const ys = callers.get(name).map((c) => pos.get(c)).filter(Boolean).map((p) => p.row);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
    };
    const calls = (name) => (out.get(name).length ? 0 : 1);
    col.sort((a, b) => calls(a) - calls(b) || (ci > 0 ? mean(a) - mean(b) : 0) || a.localeCompare(b));
    const rows = Math.min(maxRows, col.length), subs = Math.ceil(col.length / rows);
    col.forEach((name, i) => {
      const sub = subs - 1 - Math.floor(i / rows);
      pos.set(name, {x: x + sub * SUBCOL, row: i % rows, rows: Math.min(rows, col.length - Math.floor(i / rows) * rows)});
    });
    x += (subs - 1) * SUBCOL + COL;
    height = Math.max(height, rows);
  });
  for (const [name, p] of pos) pos.set(name, {x: p.x, y: PAD + (p.row + (height - p.rows) / 2) * ROWH});
  return {pos, width: x - COL + PAD, height: PAD * 2 + (height - 1) * ROWH};
}

// neighbourhood keeps focus, its callers and its callees up to depth hops
// in each direction (not its callers' other callees: on a map where "user"
// calls a hundred services those would be everything).
export function neighbourhood(nodes, edges, focus, depth) {
  const keep = new Set([focus]);
  for (const [from, to] of [['server', 'client'], ['client', 'server']]) {
    let frontier = [focus];
    for (let d = 0; d < depth && frontier.length; d++) {
      const next = [];
      for (const e of edges) {
        if (frontier.includes(e[from]) && !keep.has(e[to])) {
          keep.add(e[to]);
          next.push(e[to]);
        }
      }
      frontier = next;
    }
  }
  return {nodes: nodes.filter((n) => keep.has(n.name)), edges: edges.filter((e) => keep.has(e.client) && keep.has(e.server))};
}

// zoomBar scales the map: in, out, and to fit the canvas.
function zoomBar(svg, w, h0) {
  let scale = 1;
  const set = (k) => {
    scale = Math.min(4, Math.max(0.1, k));
    svg.setAttribute('width', w * scale);
    svg.setAttribute('height', h0 * scale);
  };
  const fit = () => {
    const canvas = svg.parentElement;
    set(Math.min(1, (canvas.clientWidth - 4) / w, (canvas.clientHeight - 40) / h0));
  };
  return h('div', {class: 'zoom', role: 'toolbar', 'aria-label': 'Zoom'},
    h('button', {type: 'button', class: 'small', 'aria-label': 'Zoom out', title: 'Zoom out', onclick: () => set(scale / 1.25)}, '−'),
    h('button', {type: 'button', class: 'small', 'aria-label': 'Zoom in', title: 'Zoom in', onclick: () => set(scale * 1.25)}, '+'),
    h('button', {type: 'button', class: 'small', title: 'Fit the map in view', onclick: fit}, 'Fit'));
}

function nodeShape(n) {
  const c = n.type === 'service' ? serviceColor(n.name) : 'var(--node-virtual)';
  switch (n.type) {
  case 'database':
    return s('g', {class: 'shape'},
      s('path', {d: `M${-R},-14 v28 a${R},7 0 0 0 ${2 * R},0 v-28 a${R},7 0 0 0 ${-2 * R},0 a${R},7 0 0 0 ${2 * R},0`, fill: 'var(--surface)', stroke: c, 'stroke-width': 2.5}));
  case 'cache':
    return s('polygon', {class: 'shape', points: `0,${-R} ${R},0 0,${R} ${-R},0`, fill: 'var(--surface)', stroke: c, 'stroke-width': 2.5});
  case 'mq':
    return s('g', {class: 'shape'}, s('rect', {x: -R, y: -15, width: 2 * R, height: 30, rx: 4, fill: 'var(--surface)', stroke: c, 'stroke-width': 2.5}),
      s('path', {d: `M${-R + 10},-15 v30 M${-R + 20},-15 v30 M${-R + 30},-15 v30`, stroke: c, 'stroke-width': 1.5}));
  case 'external':
    return s('circle', {class: 'shape', r: R, fill: 'var(--surface)', stroke: c, 'stroke-width': 2.5, 'stroke-dasharray': '5 4'});
  case 'user':
    return s('g', {class: 'shape'}, s('circle', {r: R, fill: 'var(--surface)', stroke: c, 'stroke-width': 2.5}),
      s('circle', {cy: -6, r: 6, fill: c}), s('path', {d: 'M-11,13 a11,10 0 0 1 22,0 z', fill: c}));
  default:
    return s('circle', {class: 'shape', r: R, fill: c, 'fill-opacity': 0.18, stroke: c, 'stroke-width': 3});
  }
}

function figureRows(f) {
  if (!f) return h('p', {class: 'muted small'}, 'No figures in this time range.');
  return h('table', {class: 'kvtable'}, h('tbody', {},
    h('tr', {}, h('th', {}, 'Calls/min'), h('td', {}, fmtNumber(f.callsPerMinute))),
    h('tr', {}, h('th', {}, 'Calls'), h('td', {}, fmtNumber(f.calls))),
    h('tr', {}, h('th', {}, 'Errors'), h('td', {class: f.errors ? 'err-text' : ''}, fmtNumber(f.errors))),
    h('tr', {}, h('th', {}, 'Success rate'), h('td', {}, fmtPercent(f.successRate))),
    h('tr', {}, h('th', {}, 'p50 / p99'), h('td', {}, `${fmtMs(f.p50Ms)} / ${fmtMs(f.p99Ms)}`)),
    f.apdex !== undefined ? h('tr', {}, h('th', {}, 'Apdex'), h('td', {}, f.apdex.toFixed(2))) : null));
}

// errorRate is the larger of the two sides' failure shares: a server may
// fail calls its client reports as fine, and the other way round.
function errorRate(e) {
  return Math.max(...[e.clientSide, e.serverSide].filter(Boolean).map((f) => 1 - f.successRate), 0);
}

function edgeCalls(e) {
  const f = e.clientSide || e.serverSide;
  return f ? f : null;
}

export async function render(ctx) {
  const {root, range: r, signal, params} = ctx;
  ctx.title('Service map');
  if (!ctx.refreshing) replace(root, h('h1', {}, 'Service map'), loading());
  const [topo, svc] = await Promise.all([api.topology(r, signal), api.services(r, signal)]);
  if (!ctx.current()) return;
  let nodes, edges, note = null;
  if (topo === null) {
    // Without the analysis API the map can still show every service.
    nodes = svc.services.map((x) => ({name: x.name, type: 'service'}));
    edges = [];
    note = message('info', 'Calls between services come from the metric analysis (/api/v1/topology), which this server does not serve; only the services are shown.');
  } else {
    nodes = topo.nodes;
    edges = topo.edges;
  }
  if (nodes.length === 0) {
    replace(root, h('h1', {}, 'Service map'), svc.services.length ? message('info', 'No calls in this time range.') : emptyState());
    return;
  }
  const allNodes = nodes;
  const focus = params.get('focus') || '';
  if (focus && nodes.some((n) => n.name === focus)) ({nodes, edges} = neighbourhood(nodes, edges, focus, 2));
  const {pos, width, height} = layout(nodes, edges);
  const panel = h('aside', {class: 'map-panel', 'aria-live': 'polite'});
  const svg = s('svg', {class: 'map', viewBox: `0 0 ${Math.max(width, 400)} ${Math.max(height, 200)}`,
    width: Math.max(width, 400), height: Math.max(height, 200), role: 'group', 'aria-label': 'Service map'});
  svg.append(s('defs', {},
    s('marker', {id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
      s('path', {d: 'M0,0 L10,5 L0,10 z', fill: 'var(--edge)'})),
    s('marker', {id: 'arrow-err', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse'},
      s('path', {d: 'M0,0 L10,5 L0,10 z', fill: 'var(--err)'}))));
  const maxRate = Math.max(1, ...edges.map((e) => (edgeCalls(e) || {}).callsPerMinute || 0));
  // On a busy map only the busiest edges and the failing ones carry a
  // label; the others show it on hover, focus or selection.
  const labelled = new Set([...edges].sort((a, b) => ((edgeCalls(b) || {}).callsPerMinute || 0) - ((edgeCalls(a) || {}).callsPerMinute || 0)).slice(0, 24));
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const els = new Map();

  function showNode(n) {
    const isService = n.type === 'service';
    const callers = edges.filter((e) => e.server === n.name && e.client !== n.name).map((e) => e.client);
    replace(panel,
      h('h2', {}, n.name), h('p', {class: 'muted'}, TYPE_LABEL[n.type] || n.type, n.system ? ` · ${n.system}` : ''),
      n.type === 'user' ? h('p', {class: 'small'}, 'Calls that arrived from outside the traced system.') : figureRows(n.figures),
      isService ? h('p', {}, h('a', {class: 'button primary', href: ctx.link('/traces', {service: n.name})}, 'Traces of ' + n.name),
        ' ', h('a', {class: 'button', href: ctx.link('/services/' + encodeURIComponent(n.name))}, 'Service details')) : null,
      !isService && callers.length ? [h('p', {class: 'small'}, 'Traces of its callers:'),
        h('ul', {}, callers.map((c) => h('li', {}, h('a', {href: ctx.link('/traces', {service: c})}, c))))] : null);
  }

  function showEdge(e) {
    const svcSide = byName.get(e.server) && byName.get(e.server).type === 'service' ? e.server : null;
    const clientSvc = byName.get(e.client) && byName.get(e.client).type === 'service' ? e.client : null;
    replace(panel,
      h('h2', {}, e.client, ' → ', e.server), h('p', {class: 'muted'}, `${TYPE_LABEL[e.clientType] || e.clientType} → ${TYPE_LABEL[e.serverType] || e.serverType}`, e.system ? ` · ${e.system}` : ''),
      e.clientSide ? [h('h3', {}, 'As the client saw it'), figureRows(e.clientSide)] : null,
      e.serverSide ? [h('h3', {}, 'As the server saw it'), figureRows(e.serverSide)] : null,
      h('p', {}, clientSvc ? h('a', {class: 'button primary', href: ctx.link('/traces', {service: clientSvc, tag: 'span.kind=client'})}, 'Calls from ' + clientSvc) : null,
        ' ', svcSide ? h('a', {class: 'button', href: ctx.link('/traces', {service: svcSide})}, 'Traces of ' + svcSide) : null));
  }

  function selectEl(key, show) {
    for (const el of els.values()) el.classList.remove('selected');
    const el = els.get(key);
    if (el) el.classList.add('selected');
    show();
    ctx.setParams({node: key.startsWith('n:') ? key.slice(2) : '', edge: key.startsWith('e:') ? key.slice(2) : ''});
  }

  const edgeLayer = s('g', {class: 'edges'});
  const nodeLayer = s('g', {class: 'nodes'});
  for (const e of edges) {
    const a = pos.get(e.client), b = pos.get(e.server);
    if (!a || !b) continue;
    const f = edgeCalls(e);
    const failed = (e.clientSide && e.clientSide.errors) || (e.serverSide && e.serverSide.errors);
    const rate = f ? f.callsPerMinute : 0;
    let d, lx, ly;
    if (e.client === e.server) {
      d = `M${a.x - 8},${a.y - R} C${a.x - 40},${a.y - 80} ${a.x + 40},${a.y - 80} ${a.x + 8},${a.y - R}`;
      lx = a.x;
      ly = a.y - 66;
    } else if (b.x > a.x) {
      const x1 = a.x + R + 2, x2 = b.x - R - 4, mx = (x1 + x2) / 2;
      d = `M${x1},${a.y} C${mx},${a.y} ${mx},${b.y} ${x2},${b.y}`;
      lx = mx;
      ly = (a.y + b.y) / 2 - 6;
    } else {
      // A call back to an earlier column: arc above the nodes.
      const top = Math.min(a.y, b.y) - ROWH * 0.6;
      d = `M${a.x},${a.y - R} C${a.x},${top} ${b.x},${top} ${b.x},${b.y - R - 4}`;
      lx = (a.x + b.x) / 2;
      ly = top + 8;
    }
    const key = `e:${e.client}>${e.server}`;
    const label = `${e.client} calls ${e.server}: ${fmtNumber(rate)} per minute${failed ? `, ${fmtNumber(failed)} errors` : ''}`;
    const quiet = !failed && !labelled.has(e);
    const g = s('g', {class: ['edge', failed && 'failed', quiet && 'quiet', e.clientType === 'user' && 'from-user'].filter(Boolean).join(' '), tabindex: '0', role: 'button', 'aria-label': label, dataset: {client: e.client, server: e.server}},
      s('path', {d, class: 'edge-hit'}),
      s('path', {d, class: 'edge-line', 'stroke-width': 1.5 + 3 * (rate / maxRate), 'marker-end': failed ? 'url(#arrow-err)' : 'url(#arrow)'}),
      s('text', {x: lx, y: ly, class: 'edge-label', 'text-anchor': 'middle'}, `${fmtNumber(rate)}/min`, failed ? ` · ${fmtPercent(errorRate(e))} err` : ''));
    const act = () => selectEl(key, () => showEdge(e));
    g.addEventListener('click', act);
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); act(); } });
    els.set(key, g);
    edgeLayer.append(g);
  }
  for (const n of nodes) {
    const p = pos.get(n.name);
    const key = 'n:' + n.name;
    const f = n.figures;
    const failed = f && f.errors > 0;
    const g = s('g', {class: ['node', 'type-' + n.type, failed && 'failed'].filter(Boolean).join(' '), transform: `translate(${p.x},${p.y})`,
      tabindex: '0', role: 'button', 'aria-label': `${n.name}, ${TYPE_LABEL[n.type] || n.type}`, dataset: {node: n.name, type: n.type}},
    nodeShape(n),
    s('text', {y: R + 16, class: 'node-label', 'text-anchor': 'middle'}, n.name.length > 28 ? n.name.slice(0, 27) + '…' : n.name),
    s('text', {y: R + 30, class: 'node-sub', 'text-anchor': 'middle'},
      n.type === 'service' ? (f ? `${fmtNumber(f.callsPerMinute)}/min · ${fmtMs(f.p99Ms)} p99` : '') : (n.system || TYPE_LABEL[n.type] || n.type)),
    s('title', {}, n.name));
    const act = () => selectEl(key, () => showNode(n));
    g.addEventListener('click', act);
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); act(); } });
    els.set(key, g);
    nodeLayer.append(g);
  }
  svg.append(edgeLayer, nodeLayer);

  const legend = h('div', {class: 'map-legend'}, ['service', 'database', 'cache', 'mq', 'external', 'user'].map((t) => {
    const mini = s('svg', {width: 30, height: 30, viewBox: '-26 -26 52 52', 'aria-hidden': 'true'}, nodeShape({type: t, name: 'legend'}));
    return h('span', {}, mini, TYPE_LABEL[t]);
  }), h('span', {}, h('span', {class: 'legend-line err'}), 'calls with errors'));
  replace(panel, h('p', {class: 'muted'}, 'Select a node or an edge to see its figures and its traces.'));
  const focusSel = h('select', {id: 'map-focus', 'aria-label': 'Focus on a service', onchange: () => ctx.navigate(ctx.link('/map', {focus: focusSel.value}))},
    h('option', {value: ''}, 'Whole map'),
    allNodes.filter((n) => n.type === 'service').map((n) => h('option', {value: n.name, selected: n.name === focus}, 'Around ' + n.name)));
  replace(root, h('div', {class: 'page-head'}, h('h1', {}, 'Service map'), h('span', {class: 'muted'}, `${nodes.length} nodes, ${edges.length} edges`), focusSel),
    note, legend, h('div', {class: 'map-layout'}, h('div', {class: 'map-canvas'}, zoomBar(svg, Math.max(width, 400), Math.max(height, 200)), svg), panel));
  const wantNode = params.get('node'), wantEdge = params.get('edge');
  if (wantNode && byName.has(wantNode)) selectEl('n:' + wantNode, () => showNode(byName.get(wantNode)));
  else if (wantEdge) {
    const e = edges.find((x) => `${x.client}>${x.server}` === wantEdge);
    if (e) selectEl('e:' + wantEdge, () => showEdge(e));
  }
}
