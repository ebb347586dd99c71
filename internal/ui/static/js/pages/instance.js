// One instance, as SkyWalking users know it: its calls, errors and latency
// beside its Go runtime (heap, GC, goroutines, CPU), from what its agent
// reports into the metric store: skywalking-go's meters
// (agent_instance_golang_*) and OpenTelemetry's Go runtime instrumentation
// (go.opentelemetry.io/contrib/instrumentation/runtime, over OTLP metrics:
// agent_go_*). Each figure reads whichever of the two the instance sends.
import {h, replace, message, loading, fmtNumber, fmtMs, fmtAgo, fmtTime, serviceColor} from '../dom.js';
import {api, stepFor, chartRange, matrixBy, promRangeLit, promString, perMinute, zeroFill} from '../api.js';
import {lineChart} from '../charts.js';

// fmtBytes shows a byte count in binary units.
export function fmtBytes(v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? v.toFixed(0) : v.toFixed(v < 10 ? 2 : 1)) + ' ' + units[i];
}

// RUNTIME names each runtime figure's query over sel (the instance's
// labels), the OpenTelemetry series first, then skywalking-go's: PromQL's
// "or" answers whichever the instance sends.
export const RUNTIME = [
  {key: 'heap', title: 'Heap in use', fmt: fmtBytes,
    q: (sel) => `sum(agent_go_memory_used_bytes{${sel},go_memory_type="other"}) or sum(agent_instance_golang_heap_alloc{${sel}})`},
  {key: 'goroutines', title: 'Goroutines', fmt: (v) => fmtNumber(v, 0),
    q: (sel) => `sum(agent_go_goroutine_count{${sel}}) or sum(agent_instance_golang_goroutine_num{${sel}})`},
  {key: 'gc', title: 'GC pause time (skywalking-go)', fmt: fmtMs,
    q: (sel) => `sum(agent_instance_golang_gc_pause_time{${sel}})`},
  {key: 'gcgoal', title: 'GC heap goal (OpenTelemetry)', fmt: fmtBytes,
    q: (sel) => `sum(agent_go_memory_gc_goal_bytes{${sel}})`},
  {key: 'cpu', title: 'CPU', fmt: (v) => fmtNumber(v, 1) + '%',
    q: (sel) => `sum(agent_instance_golang_cpu_used_rate{${sel}}) or sum(rate(agent_process_cpu_time_seconds_total{${sel}}[1m])) * 100`},
];

function stat(label, value, cls) {
  return h('div', {class: ['stat', cls], dataset: {figure: label}}, h('div', {class: 'stat-value'}, value), h('div', {class: 'stat-label'}, label));
}

export async function render(ctx) {
  const {root, range: r, signal, match} = ctx;
  const service = decodeURIComponent(match[1]), instance = decodeURIComponent(match[2]);
  ctx.title(instance + ' · ' + service);
  const head = h('div', {class: 'page-head'},
    h('h1', {}, h('span', {class: 'dot big', style: {background: serviceColor(service)}}), h('span', {class: 'mono'}, instance)),
    h('a', {class: 'button', href: ctx.link('/services/' + encodeURIComponent(service))}, service),
    h('a', {class: 'button', href: ctx.link('/instances', {service})}, 'All instances of ' + service));
  if (!ctx.refreshing) replace(root, head, loading());
  const sel = `service=${promString(service)},instance=${promString(instance)}`;
  const step = stepFor(r), cr = chartRange(r), w = promRangeLit(step), per = step / 60000;
  // Gauges are drawn up to now (their latest value is the point), finer
  // than the per-minute figures: about 120 points, at least 15 s apart.
  const gr = {start: r.start, end: Math.min(r.end, Date.now())};
  const gstep = Math.max(15000, Math.ceil((gr.end - gr.start) / 120 / 1000) * 1000);
  const q = (m) => `sum(sum_over_time(${perMinute('instance', m)}{${sel}}[${w}]))`;
  const [reg, calls, errors, p50, p99, ...runtime] = await Promise.all([
    api.instances(service, r, signal).catch(() => null),
    api.promRange(`${q('calls')} / ${per}`, cr, step, signal),
    api.promRange(`${q('errors')} / ${per}`, cr, step, signal),
    ...[0.5, 0.99].map((p) => api.promRange(`histogram_quantile(${p}, ${q('duration_seconds')}) * 1000`, cr, step, signal)),
    ...RUNTIME.map((x) => api.promRange(x.q(sel), gr, gstep, signal).catch(() => [])),
  ]);
  if (!ctx.current()) return;
  if (calls === null) {
    replace(root, head, message('info', 'Instance figures need the metric store\'s PromQL API (/prometheus), which this server does not serve.'));
    return;
  }
  const inst = reg && reg.instances.find((x) => x.name === instance);
  const pts = (res) => matrixBy(res, '').get('') || [];
  const counts = pts(calls).length ? (res) => zeroFill(pts(res), cr, step) : pts;
  const f = inst && inst.figures;
  const latest = RUNTIME.map((x, i) => {
    const p = pts(runtime[i]);
    return p.length ? p[p.length - 1][1] : null;
  });
  const sending = latest.some((v) => v !== null);
  replace(root, head,
    h('p', {class: 'muted instance-facts'}, inst ? [inst.alive ? 'alive' : 'not seen lately', ' · last seen ',
      h('time', {datetime: inst.lastSeen, title: fmtTime(inst.lastSeen)}, fmtAgo(inst.lastSeen)), inst.protocol ? ' · ' + inst.protocol : '',
      inst.host ? ` · ${inst.host}${inst.pid ? ' / ' + inst.pid : ''}` : ''] : 'Not in the instance registry in this time range.'),
    h('div', {class: 'stats'},
      stat('calls/min', f ? fmtNumber(f.callsPerMinute) : '–'),
      stat('errors', f ? fmtNumber(f.errors) : '–', f && f.errors ? 'bad' : ''),
      stat('p99 latency', f ? fmtMs(f.p99Ms) : '–'),
      RUNTIME.map((x, i) => (latest[i] === null ? null : stat(x.key === 'heap' ? 'heap' : x.key === 'goroutines' ? 'goroutines' : x.title, x.fmt(latest[i]))))),
    h('h2', {}, 'Requests'),
    h('div', {class: 'charts'},
      lineChart({title: 'Calls and errors per minute', r: cr, step, fmt: (v) => fmtNumber(v), series: [
        {name: 'calls/min', color: serviceColor(service), points: counts(calls)},
        {name: 'errors/min', color: 'var(--err)', points: counts(errors)}]}),
      lineChart({title: 'Latency', r: cr, step, fmt: fmtMs, series: [
        {name: 'p50', color: 'var(--ok)', points: pts(p50)},
        {name: 'p99', color: 'var(--err)', points: pts(p99)}]})),
    h('h2', {}, 'Go runtime'),
    sending ? null : message('info', 'This instance reports no runtime metrics. skywalking-go sends them by itself; with OpenTelemetry, start go.opentelemetry.io/contrib/instrumentation/runtime with an OTLP metric exporter pointed at SkyTrail (see docs/metrics.md).'),
    h('div', {class: 'charts runtime'}, RUNTIME.map((x, i) => (latest[i] === null ? null : lineChart({title: x.title, r: gr, step: gstep, fmt: x.fmt,
      series: [{name: x.key, color: serviceColor(service), points: pts(runtime[i])}]})))));
}
