// SVG charts: sparklines for tables and line charts with a hover read-out.
import {h, s, fmtClock} from './dom.js';

// sparkline draws points [[t, v]] over the time range r in a small box.
export function sparkline(points, r, {width = 96, height = 22, color = 'var(--accent)', label = '', step = 0} = {}) {
  const svg = s('svg', {class: 'spark', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label});
  if (!points || points.length === 0) {
    svg.append(s('line', {x1: 0, x2: width, y1: height - 1, y2: height - 1, class: 'spark-none'}));
    return svg;
  }
  let max = 0;
  for (const p of points) if (p[1] > max) max = p[1];
  const span = Math.max(1, r.end - r.start);
  const x = (t) => ((t - r.start) / span) * (width - 2) + 1;
  const y = (v) => height - 2 - (max > 0 ? (v / max) * (height - 4) : 0);
  for (const seg of segments(points, step)) {
    if (seg.length === 1) {
      svg.append(s('circle', {cx: x(seg[0][0]), cy: y(seg[0][1]), r: 1.5, fill: color}));
      continue;
    }
    const line = seg.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    const first = x(seg[0][0]).toFixed(1);
    const last = x(seg[seg.length - 1][0]).toFixed(1);
    svg.append(
      s('polygon', {points: `${first},${height - 1} ${line} ${last},${height - 1}`, fill: color, 'fill-opacity': 0.15}),
      s('polyline', {points: line, fill: 'none', stroke: color, 'stroke-width': 1.5, 'stroke-linejoin': 'round'}));
  }
  return svg;
}

// segments splits points where a step has no value, so a line is not
// drawn across a time without data.
function segments(points, step) {
  const out = [];
  let cur = [];
  for (const p of points) {
    if (cur.length && step && p[0] - cur[cur.length - 1][0] > step * 1.5) {
      out.push(cur);
      cur = [];
    }
    cur.push(p);
  }
  if (cur.length) out.push(cur);
  return out;
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// lineChart draws series [{name, color, points: [[t, v]]}] over r, with y
// labels formatted by fmt. Hovering shows every series' value at that time.
export function lineChart({title, series, r, step, fmt = String, height = 180, empty = 'No data in this time range'}) {
  const W = 560, H = height, L = 56, R = 12, T = 12, B = 24;
  const box = h('figure', {class: 'chart'}, h('figcaption', {}, title));
  const hasData = series.some((x) => x.points.length > 0);
  if (!hasData) {
    box.append(h('div', {class: 'chart-empty', style: {height: H + 'px'}}, empty));
    return box;
  }
  let max = 0;
  for (const se of series) for (const p of se.points) if (p[1] > max) max = p[1];
  max = niceMax(max);
  const span = Math.max(1, r.end - r.start);
  const x = (t) => L + ((t - r.start) / span) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'linechart', role: 'img', 'aria-label': title});
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    svg.append(
      s('line', {x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid'}),
      s('text', {x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end'}, fmt(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = r.start + (span * i) / 4;
    svg.append(s('text', {x: x(t), y: H - 6, class: 'axis', 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}, fmtClock(t)));
  }
  for (const se of series) {
    for (const seg of segments(se.points, step)) {
      if (seg.length === 1) {
        svg.append(s('circle', {cx: x(seg[0][0]), cy: y(seg[0][1]), r: 3, fill: se.color}));
        continue;
      }
      const pts = seg.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
      svg.append(s('polyline', {points: pts, fill: 'none', stroke: se.color, 'stroke-width': 2, 'stroke-linejoin': 'round'}));
    }
  }
  const cursor = s('line', {y1: T, y2: H - B, class: 'cursor', visibility: 'hidden'});
  svg.append(cursor);
  const tip = h('div', {class: 'chart-tip', hidden: true});
  svg.addEventListener('mousemove', (ev) => {
    const rect = svg.getBoundingClientRect();
    const t = r.start + ((ev.clientX - rect.left) / rect.width * W - L) / (W - L - R) * span;
    let best = null;
    for (const se of series) for (const p of se.points) if (!best || Math.abs(p[0] - t) < Math.abs(best - t)) best = p[0];
    if (best === null) return;
    cursor.setAttribute('x1', x(best));
    cursor.setAttribute('x2', x(best));
    cursor.setAttribute('visibility', 'visible');
    tip.replaceChildren(h('div', {class: 'tip-time'}, fmtClock(best)),
      ...series.map((se) => {
        const p = se.points.find((q) => q[0] === best);
        return h('div', {}, h('span', {class: 'swatch', style: {background: se.color}}), `${se.name}: ${p ? fmt(p[1]) : '–'}`);
      }));
    tip.hidden = false;
    tip.style.left = Math.min(rect.width - 150, Math.max(0, (x(best) / W) * rect.width + 10)) + 'px';
  });
  svg.addEventListener('mouseleave', () => {
    cursor.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  });
  box.append(h('div', {class: 'chart-body'}, svg, tip),
    h('div', {class: 'legend'}, series.map((se) => h('span', {}, h('span', {class: 'swatch', style: {background: se.color}}), se.name))));
  return box;
}
