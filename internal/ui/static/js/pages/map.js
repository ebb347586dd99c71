// The service map: services and the virtual nodes they call (database,
// cache, queue, external, user) in layers from callers to callees (laid out
// by dagre, vendored under static/vendor), edges routed around the nodes,
// labelled with their call rate and drawn red when calls failed; a call
// from "user" into a service whose trace context was lost (the Health
// page's lost_propagation) is drawn as the broken propagation it is. It
// opens fitted to the canvas; a click on a node highlights its edges and
// shows its figures, on an edge its figures, both leading to traces.
import {h, s, replace, message, loading, fmtNumber, fmtPercent, fmtMs, serviceColor, compareText, afterFirstFrame} from '../dom.js';
import {api} from '../api.js';
import {emptyState} from '../common.js';
import dagre from '../../vendor/dagre/dagre.esm.js';

const PAD = 40, R = 22;
const TYPE_LABEL = {service: 'service', database: 'database', cache: 'cache', mq: 'message queue', external: 'external', user: 'user'};

// NODE_W and NODE_H are a node's box for the layout: its shape with the
// name and figures under it, so edges and other nodes keep clear of both.
const NODE_W = 150, NODE_H = 2 * R + 34;

// layout lays the map out as a layered graph with dagre: callers left of
// what they call (layers by call depth), crossings reduced, and every edge
// routed between the layers around the nodes, its label given room of its
// own. pos holds each node's shape centre; routes each edge's points.
export function layout(nodes, edges, keepFromUser = new Set()) {
  // Nodes that call and are called by nothing, and services called only
  // from outside ("user") and calling nothing, are laid out in a grid under
  // the graph: in dagre they would stand in one layer as tall as there are
  // of them (a hundred entry services make a map a hundred rows high).
  // Their edges from "user" are left undrawn, but for those into
  // keepFromUser (services whose incoming trace context is lost: that edge
  // is the finding).
  const userNode = new Set(nodes.filter((n) => n.type === 'user').map((n) => n.name));
  const inner = edges.filter((e) => !userNode.has(e.client) || keepFromUser.has(e.server));
  const busy = new Set();
  for (const e of inner) {
    busy.add(e.client);
    busy.add(e.server);
  }
  edges = edges.filter((e) => !userNode.has(e.client) || busy.has(e.server));
  const joined = new Set();
  for (const e of edges) {
    joined.add(e.client);
    joined.add(e.server);
  }
  const alone = nodes.filter((n) => !joined.has(n.name)).sort((a, b) => compareText(a.name, b.name));
  nodes = nodes.filter((n) => joined.has(n.name));
  const g = new dagre.graphlib.Graph({multigraph: false});
  g.setGraph({rankdir: 'LR', nodesep: 28, ranksep: 110, edgesep: 14, marginx: PAD / 2, marginy: PAD / 2});
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of nodes) g.setNode(n.name, {width: NODE_W, height: NODE_H});
  for (const e of edges) {
    if (!g.hasNode(e.client) || !g.hasNode(e.server)) continue;
    g.setEdge(e.client, e.server, {width: 70, height: 14, labelpos: 'c'});
  }
  dagre.layout(g);
  const pos = new Map(), routes = new Map();
  for (const n of nodes) {
    const p = g.node(n.name);
    // The shape sits at the top of the box; its labels fill the rest.
    pos.set(n.name, {x: p.x, y: p.y - NODE_H / 2 + R + 2, box: {x: p.x - NODE_W / 2, y: p.y - NODE_H / 2, w: NODE_W, h: NODE_H}});
  }
  for (const e of edges) {
    const ge = g.hasNode(e.client) && g.hasNode(e.server) && g.edge(e.client, e.server);
    if (ge) routes.set(`${e.client}>${e.server}`, {points: ge.points, label: {x: ge.x, y: ge.y}});
  }
  const gr = nodes.length ? g.graph() : {width: 0, height: 0};
  let width = Math.ceil(gr.width), height = Math.ceil(gr.height);
  if (alone.length) {
    const per = Math.max(1, Math.min(alone.length, Math.max(Math.floor(width / NODE_W), Math.ceil(Math.sqrt(alone.length * 2)))));
    const top = height + (nodes.length ? 10 : PAD / 2);
    alone.forEach((n, i) => {
      const x = PAD / 2 + (i % per) * NODE_W + NODE_W / 2, y = top + Math.floor(i / per) * (NODE_H + 16);
      pos.set(n.name, {x, y: y + R + 2, box: {x: x - NODE_W / 2, y, w: NODE_W, h: NODE_H}});
    });
    width = Math.max(width, PAD + per * NODE_W);
    height = top + Math.ceil(alone.length / per) * (NODE_H + 16) + PAD / 2;
  }
  return {pos, routes, width, height};
}

// pathThrough draws a smooth curve through dagre's points: straight at
// the ends, quadratic bends at the inner points (each bend's control point
// the dagre point itself, so the curve stays inside the channel dagre left
// between the nodes).
export function pathThrough(pts) {
  if (pts.length < 2) return '';
  let d = `M${pts[0].x},${pts[0].y}`;
  if (pts.length === 2) return d + ` L${pts[1].x},${pts[1].y}`;
  for (let i = 1; i < pts.length - 1; i++) {
    const p = pts[i], n = pts[i + 1];
    const mx = i === pts.length - 2 ? n.x : (p.x + n.x) / 2, my = i === pts.length - 2 ? n.y : (p.y + n.y) / 2;
    d += ` Q${p.x},${p.y} ${mx},${my}`;
  }
  return d;
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

// MIN_READABLE is the smallest scale the map opens at: its 12.5 px names
// stay above 8 px. A map too big for the canvas at that scale scrolls;
// Fit shrinks it further on request.
const MIN_READABLE = 0.65;

// zoomBar scales the map: in, out, and to fit the canvas.
function zoomBar(svg, w, h0) {
  let scale = 1;
  const set = (k) => {
    scale = Math.min(4, Math.max(0.02, k));
    svg.setAttribute('width', w * scale);
    svg.setAttribute('height', h0 * scale);
  };
  const fit = (floor = 0.02) => {
    const canvas = svg.parentElement;
    set(Math.max(floor, Math.min(1, (canvas.clientWidth - 4) / w, (canvas.clientHeight - 40) / h0)));
  };
  svg.fitOnLoad = () => fit(MIN_READABLE);
  return h('div', {class: 'zoom', role: 'toolbar', 'aria-label': 'Zoom'},
    h('button', {type: 'button', class: 'small', 'aria-label': 'Zoom out', title: 'Zoom out', onclick: () => set(scale / 1.25)}, '−'),
    h('button', {type: 'button', class: 'small', 'aria-label': 'Zoom in', title: 'Zoom in', onclick: () => set(scale * 1.25)}, '+'),
    h('button', {type: 'button', class: 'small', title: 'Fit the map in view', onclick: () => fit()}, 'Fit'));
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
  const [topo, diag] = await Promise.all([api.topology(r, signal), api.diagnostics('', signal).catch(() => null)]);
  // The service list only matters without a map to draw (it is the second
  // largest answer, and computing it competes with the topology's).
  const svc = topo === null || topo.nodes.length === 0 ? await api.serviceNames(r, signal) : null;
  // Services whose incoming trace context is lost: their calls appear to
  // come from "user" (a new trace), an edge to show as broken, not faded.
  const lost = new Set(((diag && diag.findings) || []).filter((f) => f.kind === 'lost_propagation' || f.kind === 'propagator_mismatch').map((f) => f.peer));
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
  const {pos, routes, width, height} = layout(nodes, edges, lost);
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
    for (const el of els.values()) el.classList.remove('selected', 'linked', 'dimmed');
    const el = els.get(key);
    if (el) el.classList.add('selected');
    // A node's own edges stand out, the rest step back.
    if (key.startsWith('n:')) {
      const name = key.slice(2);
      for (const [k, g] of els) {
        if (!k.startsWith('e:')) continue;
        g.classList.add(g.dataset.client === name || g.dataset.server === name ? 'linked' : 'dimmed');
      }
    }
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
    const route = routes.get(`${e.client}>${e.server}`);
    if (!route && e.client !== e.server) continue; // a service called only from outside: in the grid, undrawn
    if (e.client === e.server) {
      d = `M${a.x - 8},${a.y - R} C${a.x - 40},${a.y - 80} ${a.x + 40},${a.y - 80} ${a.x + 8},${a.y - R}`;
      lx = a.x;
      ly = a.y - 66;
    } else {
      d = pathThrough(route.points);
      lx = route.label.x;
      ly = route.label.y + 4;
    }
    const key = `e:${e.client}>${e.server}`;
    const broken = e.clientType === 'user' && lost.has(e.server);
    const label = `${e.client} calls ${e.server}: ${fmtNumber(rate)} per minute${failed ? `, ${fmtNumber(failed)} errors` : ''}${broken ? '; the trace context is lost on the way in' : ''}`;
    const quiet = !failed && !broken && !labelled.has(e);
    const g = s('g', {class: ['edge', failed && 'failed', quiet && 'quiet', e.clientType === 'user' && 'from-user', broken && 'broken'].filter(Boolean).join(' '), tabindex: '0', role: 'button', 'aria-label': label, dataset: {client: e.client, server: e.server}},
      s('path', {d, class: 'edge-hit'}),
      s('path', {d, class: 'edge-line', 'stroke-width': 1.5 + 3 * (rate / maxRate), 'marker-end': failed || broken ? 'url(#arrow-err)' : 'url(#arrow)'}),
      s('text', {x: lx, y: ly, class: 'edge-label', 'text-anchor': 'middle'}, broken ? 'context lost' : `${fmtNumber(rate)}/min`, failed ? ` · ${fmtPercent(errorRate(e))} err` : ''),
      s('title', {}, label));
    const act = () => selectEl(key, () => showEdge(e));
    g.addEventListener('click', act);
    g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); act(); } });
    els.set(key, g);
    edgeLayer.append(g);
  }
  const drawNode = (n) => {
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
  };
  // What the first frame can show is built before it, the rest of a big map
  // just after it, as long tables build their first screen first (a crowd
  // of services called only from outside fills a grid under the graph, most
  // of it beyond the canvas): first the nodes within the window's size at
  // the smallest scale the map opens at, and the one the URL selects.
  const inFirstView = (n) => {
    const b = pos.get(n.name).box;
    return b.x * MIN_READABLE < innerWidth && b.y * MIN_READABLE < innerHeight;
  };
  const later = [];
  for (const n of nodes) {
    if (ctx.refreshing || inFirstView(n) || n.name === params.get('node')) drawNode(n);
    else later.push(n);
  }
  afterFirstFrame(later, (chunk) => {
    if (ctx.current()) chunk.forEach(drawNode);
  });
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
  svg.fitOnLoad();
  const wantNode = params.get('node'), wantEdge = params.get('edge');
  if (wantNode && byName.has(wantNode)) selectEl('n:' + wantNode, () => showNode(byName.get(wantNode)));
  else if (wantEdge) {
    const e = edges.find((x) => `${x.client}>${x.server}` === wantEdge);
    if (e) selectEl('e:' + wantEdge, () => showEdge(e));
  }
}
