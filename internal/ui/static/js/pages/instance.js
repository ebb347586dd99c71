// One instance, as SkyWalking users know it: its calls, errors and latency
// beside its Go runtime (heap, GC, goroutines, CPU), from what its agent
// reports into the metric store: skywalking-go's runtime meters
// (agent_instance_golang_*, over the SkyWalking meter protocol) or
// OpenTelemetry's runtime and host instrumentation (over OTLP metrics:
// agent_go_*, agent_process_*). Each figure reads whichever the instance
// sends; a figure its agent does not send at all says so.
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
// labels) for each agent: otel, OpenTelemetry's instrumentation
// (go.opentelemetry.io/contrib/instrumentation/runtime, and host for the
// CPU); sw, skywalking-go's runtime meters (plugins/runtimemetrics, the
// names its agent sends). null where that agent sends nothing to draw it
// from: the page says so rather than leave the figure out silently.
export const RUNTIME = [
  {key: 'heap', title: 'Heap in use', fmt: fmtBytes,
    // go.memory.used (other): the heap and runtime memory beside stacks.
    otel: (sel) => `sum(agent_go_memory_used_bytes{${sel},go_memory_type="other"})`,
    sw: (sel) => `sum(agent_instance_golang_memory_heap_labeled{${sel},type="objects"})`},
  {key: 'goroutines', title: 'Goroutines', fmt: (v) => fmtNumber(v, 0),
    otel: (sel) => `sum(agent_go_goroutine_count{${sel}})`,
    sw: (sel) => `sum(agent_instance_golang_live_goroutines_num{${sel}})`},
  {key: 'gc-pause', title: 'GC pause p99', fmt: fmtMs,
    otel: null,
    // A histogram of every stop-the-world pause, in nanoseconds.
    sw: (sel) => `histogram_quantile(0.99, sum by (le) (rate(agent_instance_golang_gc_pauses_bucket{${sel}}[1m]))) / 1e6`},
  {key: 'gc-goal', title: 'GC heap goal', fmt: fmtBytes,
    otel: (sel) => `sum(agent_go_memory_gc_goal_bytes{${sel}})`,
    sw: (sel) => `sum(agent_instance_golang_gc_heap_goal{${sel}})`},
  {key: 'cpu', title: 'CPU', fmt: (v) => fmtNumber(v, 1) + '%',
    // process.cpu.time, from the host instrumentation beside the runtime's.
    otel: (sel) => `sum(rate(agent_process_cpu_time_seconds_total{${sel}}[1m])) * 100`,
    sw: null},
];

// NOT_SENT says, for each agent, why a figure it does not send is absent.
const NOT_SENT = {
  otel: {
    'gc-pause': 'GC pauses: not sent by the OpenTelemetry Go runtime instrumentation (go.opentelemetry.io/contrib/instrumentation/runtime reports no pause times; only its deprecated metrics, behind OTEL_GO_X_DEPRECATED_RUNTIME_METRICS=true, did, and SkyTrail does not read those).',
    'cpu': 'CPU: not sent by the OpenTelemetry Go runtime instrumentation; start go.opentelemetry.io/contrib/instrumentation/host beside it (process.cpu.time).',
  },
  sw: {
    'cpu': 'CPU: not sent by skywalking-go (its runtime meters carry memory, GC and goroutines, no CPU time).',
  },
};

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
  // Their last point is now, so the stats show the newest sample (an
  // instance that had just started showed no runtime figures before).
  const gr = {start: r.start, end: Math.min(r.end, Date.now())};
  const gstep = Math.max(15000, Math.ceil((gr.end - gr.start) / 120 / 1000) * 1000);
  const q = (m) => `sum(sum_over_time(${perMinute('instance', m)}{${sel}}[${w}]))`;
  // Each figure from each agent: both are asked, and the page shows what
  // answers (an instance sends one of them, rarely both).
  const asks = RUNTIME.flatMap((x) => ['otel', 'sw'].map((agent) => (x[agent] ? api.promGauge(x[agent](sel), gr, gstep, signal).catch(() => []) : [])));
  const [reg, calls, errors, p50, p99, ...answers] = await Promise.all([
    api.instances(service, r, signal).catch(() => null),
    api.promRange(`${q('calls')} / ${per}`, cr, step, signal),
    api.promRange(`${q('errors')} / ${per}`, cr, step, signal),
    ...[0.5, 0.99].map((p) => api.promRange(`histogram_quantile(${p}, ${q('duration_seconds')}) * 1000`, cr, step, signal)),
    ...asks,
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
  // runtime[i]: figure i's points from whichever agent sent them.
  const sent = {otel: false, sw: false};
  const runtime = RUNTIME.map((x, i) => {
    const otel = pts(answers[2 * i]), sw = pts(answers[2 * i + 1]);
    if (otel.length) sent.otel = true;
    if (sw.length) sent.sw = true;
    return otel.length ? otel : sw;
  });
  const latest = runtime.map((p) => (p.length ? p[p.length - 1][1] : null));
  const sending = sent.otel || sent.sw;
  // The figures this instance's agent does not send, and why.
  const notSent = RUNTIME.filter((x, i) => latest[i] === null).flatMap((x) =>
    ['otel', 'sw'].filter((agent) => sent[agent] && NOT_SENT[agent][x.key]).map((agent) => ({key: x.key, agent, why: NOT_SENT[agent][x.key]})));
  replace(root, head,
    h('p', {class: 'muted instance-facts'}, inst ? [inst.alive ? 'alive' : 'not seen lately', ' · last seen ',
      h('time', {datetime: inst.lastSeen, title: fmtTime(inst.lastSeen)}, fmtAgo(inst.lastSeen)), inst.protocol ? ' · ' + inst.protocol : '',
      inst.host ? ` · ${inst.host}${inst.pid ? ' / ' + inst.pid : ''}` : ''] : 'Not in the instance registry in this time range.'),
    h('div', {class: 'stats'},
      stat('calls/min', f ? fmtNumber(f.callsPerMinute) : '–'),
      stat('errors', f ? fmtNumber(f.errors) : '–', f && f.errors ? 'bad' : ''),
      stat('p99 latency', f ? fmtMs(f.p99Ms) : '–'),
      RUNTIME.map((x, i) => (latest[i] === null ? null : stat(x.key, x.fmt(latest[i]))))),
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
      series: [{name: x.key, color: serviceColor(service), points: runtime[i]}]})))),
    notSent.length ? h('ul', {class: 'muted small not-sent'}, notSent.map((n) => h('li', {dataset: {figure: n.key, agent: n.agent}}, n.why))) : null);
}
