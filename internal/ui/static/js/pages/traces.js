// Trace search: service, operation, tags, duration range, errors only,
// over the shared time range; results as a scatter plot and a list with
// duration bars. The search lives in the URL.
import {h, s, replace, message, loading, fmtMs, fmtTime, fmtClock} from '../dom.js';
import {api} from '../api.js';
import {emptyState, traceList, searchRange} from '../common.js';

// ORDERS are the ways the results can be listed.
const ORDERS = {
  newest: {label: 'Newest first', cmp: (a, b) => new Date(b.start) - new Date(a.start)},
  longest: {label: 'Longest first', cmp: (a, b) => b.durationMicros - a.durationMicros},
  shortest: {label: 'Shortest first', cmp: (a, b) => a.durationMicros - b.durationMicros},
  spans: {label: 'Most spans', cmp: (a, b) => b.spanCount - a.spanCount},
  errors: {label: 'Most errors', cmp: (a, b) => b.errorCount - a.errorCount},
};

// parseTags reads `k=v k2="v with spaces"` into ["k=v", "k2=v with spaces"].
export function parseTags(text) {
  const out = [];
  const re = /([^\s=:]+)[=:]("([^"]*)"|\S*)/g;
  let m;
  while ((m = re.exec(text)) !== null) out.push(`${m[1]}=${m[3] !== undefined ? m[3] : m[2]}`);
  return out;
}

function formatTags(tags) {
  return tags.map((t) => {
    const i = t.search(/[=:]/);
    const k = t.slice(0, i), v = t.slice(i + 1);
    return /\s/.test(v) ? `${k}="${v}"` : `${k}=${v}`;
  }).join(' ');
}

// scatter plots each trace's start against its duration; a dot opens it.
function scatter(ctx, list, r) {
  const W = 900, H = 150, L = 56, R = 10, T = 10, B = 22;
  const max = Math.max(...list.map((t) => t.durationMicros), 1) / 1000;
  const span = Math.max(1, r.end - r.start);
  const x = (t) => L + ((new Date(t).getTime() - r.start) / span) * (W - L - R);
  const y = (ms) => T + (1 - ms / max) * (H - T - B);
  const svg = s('svg', {viewBox: `0 0 ${W} ${H}`, class: 'scatter', role: 'img', 'aria-label': 'Trace durations over time'});
  for (let i = 0; i <= 2; i++) {
    const v = (max * i) / 2;
    svg.append(s('line', {x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid'}),
      s('text', {x: L - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end'}, fmtMs(v)));
  }
  for (let i = 0; i <= 4; i++) {
    const t = r.start + (span * i) / 4;
    svg.append(s('text', {x: x(t), y: H - 5, class: 'axis', 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}, fmtClock(t)));
  }
  for (const t of list) {
    const a = s('a', {href: ctx.link('/traces/' + t.traceID), tabindex: '-1'},
      s('circle', {cx: x(t.start), cy: y(t.durationMicros / 1000), r: Math.min(9, 3 + Math.sqrt(t.spanCount)), class: ['dot-trace', t.error && 'error'].filter(Boolean).join(' ')},
        s('title', {}, `${t.rootService}: ${t.rootOperation}\n${fmtMs(t.durationMicros / 1000)}, ${t.spanCount} spans\n${fmtTime(t.start)}`)));
    svg.append(a);
  }
  return h('div', {class: 'scatter-wrap'}, svg);
}

export async function render(ctx) {
  const {root, range: r, signal, params} = ctx;
  ctx.title('Traces');
  const service = params.get('service') || '';
  const operation = params.get('operation') || '';
  const tags = params.getAll('tag');
  const minDuration = params.get('minDuration') || '';
  const maxDuration = params.get('maxDuration') || '';
  const errors = params.get('errors') === 'true';
  const limit = params.get('limit') || '20';

  if (!ctx.refreshing) replace(root, h('h1', {}, 'Traces'), loading());
  const [svc, ops, result] = await Promise.all([
    api.serviceNames(r, signal),
    service ? api.operations(service, signal).catch(() => ({operations: []})) : {operations: []},
    api.traces({service, operation, tag: tags, minDuration, maxDuration, errors: errors ? 'true' : '', ...searchRange(r), limit}, signal).catch((e) => e),
  ]);
  if (!ctx.current()) return;

  const serviceSel = h('select', {name: 'service', id: 'f-service'}, h('option', {value: ''}, 'Any service'),
    svc.services.map((x) => h('option', {value: x.name, selected: x.name === service}, x.name)));
  const opSel = h('select', {name: 'operation', id: 'f-operation'}, h('option', {value: ''}, 'Any operation'),
    ops.operations.map((o) => h('option', {value: o.name, selected: o.name === operation}, o.name + (o.spanKind ? `  (${o.spanKind})` : ''))));
  serviceSel.addEventListener('change', async () => {
    const list = serviceSel.value ? (await api.operations(serviceSel.value).catch(() => ({operations: []}))).operations : [];
    replace(opSel, h('option', {value: ''}, 'Any operation'), list.map((o) => h('option', {value: o.name}, o.name + (o.spanKind ? `  (${o.spanKind})` : ''))));
  });
  const tagInput = h('input', {name: 'tags', id: 'f-tags', type: 'text', value: formatTags(tags), placeholder: 'order_id=1001 http.status_code=500', spellcheck: 'false'});
  const minInput = h('input', {name: 'minDuration', id: 'f-min', type: 'text', value: minDuration, placeholder: 'e.g. 100ms', size: 8, pattern: '\\d+(\\.\\d+)?(ns|us|µs|ms|s|m|h)', title: 'a duration such as 250ms or 1.5s'});
  const maxInput = h('input', {name: 'maxDuration', id: 'f-max', type: 'text', value: maxDuration, placeholder: 'e.g. 2s', size: 8, pattern: '\\d+(\\.\\d+)?(ns|us|µs|ms|s|m|h)', title: 'a duration such as 250ms or 1.5s'});
  const errBox = h('input', {type: 'checkbox', name: 'errors', id: 'f-errors', checked: errors});
  const limitSel = h('select', {name: 'limit', id: 'f-limit'}, ['20', '50', '100', '500'].map((n) => h('option', {value: n, selected: n === limit}, n)));
  const form = h('form', {class: 'search', role: 'search', onsubmit: (ev) => {
    ev.preventDefault();
    ctx.navigate(ctx.link('/traces', {service: serviceSel.value, operation: opSel.value, tag: parseTags(tagInput.value),
      minDuration: minInput.value.trim(), maxDuration: maxInput.value.trim(), errors: errBox.checked ? 'true' : '', limit: limitSel.value === '20' ? '' : limitSel.value}));
  }},
  h('label', {for: 'f-service'}, 'Service', serviceSel),
  h('label', {for: 'f-operation'}, 'Operation', opSel),
  h('label', {for: 'f-tags', class: 'grow'}, 'Tags', tagInput),
  h('label', {for: 'f-min'}, 'Min duration', minInput),
  h('label', {for: 'f-max'}, 'Max duration', maxInput),
  h('label', {for: 'f-limit'}, 'Limit', limitSel),
  h('label', {for: 'f-errors', class: 'check'}, errBox, 'Errors only'),
  h('button', {type: 'submit', class: 'primary'}, 'Search'));

  if (svc.services.length === 0 && !(result instanceof Error) && result.traces.length === 0) {
    replace(root, h('h1', {}, 'Traces'), emptyState());
    return;
  }
  let body;
  if (result instanceof Error) body = message('error', 'The search failed: ' + result.message);
  else if (result.traces.length === 0) body = message('info', 'No traces match in this time range. Widen the time range or remove a condition.');
  else {
    const list = h('div');
    const order = h('select', {id: 'sort-traces', 'aria-label': 'Order of the traces', onchange: () => {
      ctx.setParams({order: order.value === 'newest' ? '' : order.value});
      drawList();
    }}, Object.entries(ORDERS).map(([k, o]) => h('option', {value: k, selected: k === (params.get('order') || 'newest')}, o.label)));
    const drawList = () => replace(list, traceList([...result.traces].sort(ORDERS[order.value].cmp)));
    drawList();
    body = [
      scatter(ctx, result.traces, r),
      h('div', {class: 'results-head'},
        h('span', {class: 'muted'}, `${result.traces.length} trace${result.traces.length === 1 ? '' : 's'}`,
          result.traces.length >= Number(limit) ? ' (the limit; raise it to see more)' : ''), order),
      list];
  }
  replace(root, h('h1', {}, 'Traces'), form, h('div', {id: 'results', 'aria-live': 'polite'}, body));
}
