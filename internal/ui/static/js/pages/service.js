// Service detail: calls, errors and latency over time; instances;
// endpoints; slowest traces and recent errors.
import {h, replace, message, loading, fmtNumber, fmtPercent, fmtMs, fmtTime, serviceColor} from '../dom.js';
import {firingByService, alertBadge} from './alerts.js';
import {api, stepFor, chartRange, matrixBy, promRangeLit, promString, perMinute, zeroFill} from '../api.js';
import {lineChart} from '../charts.js';
import {traceList, searchRange} from '../common.js';
import {apdexClass, rateTitle} from './services.js';
import {instanceRows} from './instances.js';
import {recentErrorLogs} from '../logview.js';
import {attention, SILENCE} from './health.js';

function stat(label, value, cls, title) {
  return h('div', {class: ['stat', cls], title}, h('div', {class: 'stat-value'}, value), h('div', {class: 'stat-label'}, label));
}

// charts draws the service's per-minute figures over the complete minutes
// of r (chartRange), a point a step.
async function charts(service, range, signal) {
  const step = stepFor(range), r = chartRange(range), w = promRangeLit(step), per = step / 60000, sel = `{service=${promString(service)}}`;
  const q = (m) => `sum(sum_over_time(${perMinute('service', m)}${sel}[${w}]))`;
  const hist = q('duration_seconds');
  const [calls, errors, p50, p90, p99] = await Promise.all([
    api.promRange(`${q('calls')} / ${per}`, r, step, signal),
    api.promRange(`${q('errors')} / ${per}`, r, step, signal),
    ...[0.5, 0.9, 0.99].map((p) => api.promRange(`histogram_quantile(${p}, ${hist}) * 1000`, r, step, signal)),
  ]);
  if (calls === null) return message('info', 'Charts need the metric store\'s PromQL API (/prometheus), which this server does not serve.');
  const pts = (res) => matrixBy(res, 'service').get('') || [];
  const counts = pts(calls).length ? (res) => zeroFill(pts(res), r, step) : pts;
  return h('div', {class: 'charts'},
    lineChart({title: 'Calls and errors per minute', r, step, fmt: (v) => fmtNumber(v), series: [
      {name: 'calls/min', color: serviceColor(service), points: counts(calls)},
      {name: 'errors/min', color: 'var(--err)', points: counts(errors)}]}),
    lineChart({title: 'Latency percentiles', r, step, fmt: fmtMs, series: [
      {name: 'p50', color: 'var(--ok)', points: pts(p50)},
      {name: 'p90', color: 'var(--warn)', points: pts(p90)},
      {name: 'p99', color: 'var(--err)', points: pts(p99)}]}));
}

function endpointsTable(ctx, service, data) {
  if (data === null) return message('info', 'Endpoint figures need the analysis API (/api/v1/services/{service}/endpoints), which this server does not serve.');
  if (data.endpoints.length === 0) return h('p', {class: 'muted'}, 'No calls into this service in this time range.');
  return h('div', {class: 'table-wrap'}, h('table', {class: 'grid'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Endpoint'), ['Calls/min', 'Success rate', 'p50', 'p99', 'Apdex'].map((x) => h('th', {class: 'num'}, x)))),
    h('tbody', {}, data.endpoints.map((e) => h('tr', {},
      h('td', {}, h('a', {href: ctx.link('/traces', {service, operation: e.name})}, e.name)),
      h('td', {class: 'num'}, fmtNumber(e.figures.callsPerMinute)),
      h('td', {class: ['num', e.figures.successRate < 0.99 && 'bad']}, fmtPercent(e.figures.successRate)),
      h('td', {class: 'num'}, fmtMs(e.figures.p50Ms)),
      h('td', {class: 'num'}, fmtMs(e.figures.p99Ms)),
      h('td', {class: 'num'}, e.figures.apdex === undefined ? '–' : h('span', {class: ['apdex', apdexClass(e.figures.apdex)]}, e.figures.apdex.toFixed(2))))))),
  data.overflowed ? message('warn', `More than ${data.endpointCap} endpoints: the rest are counted as <overflow>.`) : null);
}

// silence says in red, above everything, that the service never sent a
// span (with the name it may have meant) or has stopped sending.
function silence(ctx, rep) {
  if (!rep || rep instanceof Error) return null;
  const found = (rep.findings || []).filter((f) => SILENCE.has(f.kind) && f.kind !== 'no_spans');
  if (found.length === 0) return null;
  return found.map((f) => h('div', {class: 'message error silence', role: 'alert', dataset: {kind: f.kind}},
    h('strong', {}, f.summary),
    f.kind === 'unknown_service' && f.peer ? [' ', h('a', {href: ctx.link('/services/' + encodeURIComponent(f.peer))}, 'Go to ' + f.peer + ' →')] : null,
    h('div', {class: 'muted'}, f.remedy)));
}

// slowSpans lists the service's longest spans, each opening its trace at
// the span, bars scaled to the longest.
function slowSpans(ctx, service, spans) {
  if (spans.length === 0) return h('p', {class: 'muted'}, 'No spans in this time range.');
  const max = Math.max(...spans.map((x) => x.durationMicros), 1);
  return h('ol', {class: 'trace-list slow-spans'}, spans.map((x) => h('li', {class: ['trace-row', 'slow-span', x.error && 'has-error']},
    h('a', {href: ctx.link('/traces/' + x.traceID, {span: x.spanID}), class: 'trace-link'},
      h('div', {class: 'trace-head'},
        h('span', {class: 'trace-name'}, h('span', {class: 'op'}, x.name), ' ', h('span', {class: 'tag'}, x.kind)),
        h('span', {class: 'trace-dur'}, fmtMs(x.durationMicros / 1000))),
      h('div', {class: 'bar-track'}, h('div', {class: ['bar', x.error && 'error'], style: {width: Math.max(0.5, (x.durationMicros / max) * 100) + '%', background: x.error ? null : serviceColor(service)}})),
      h('div', {class: 'trace-meta'}, h('span', {}, fmtTime(x.start)), x.error ? h('span', {class: 'err-text'}, x.statusMessage || 'error') : null,
        h('span', {class: 'mono'}, x.traceID.slice(0, 16)))))));
}

// slowEndpoints ranks the service's endpoints by p99 (the analysis'
// figures over the range).
function slowEndpoints(ctx, service, data) {
  if (!data || data instanceof Error || data.endpoints.length === 0) return null;
  const top = [...data.endpoints].filter((e) => e.figures.p99Ms !== undefined).sort((a, b) => b.figures.p99Ms - a.figures.p99Ms).slice(0, 5);
  return [h('h3', {}, 'Slowest endpoints (p99)'), h('table', {class: 'grid slow-endpoints'},
    h('tbody', {}, top.map((e) => h('tr', {},
      h('td', {}, h('a', {href: ctx.link('/traces', {service, operation: e.name, order: 'longest'})}, e.name)),
      h('td', {class: 'num'}, fmtMs(e.figures.p99Ms))))))];
}

// healthLine sums up the server's findings about the service (and the
// server as a whole) with a link to them on the Health page.
function healthLine(ctx, service, rep) {
  if (rep === null) return null; // the diagnostics API is not served
  const more = h('a', {href: ctx.link('/health', {service})}, 'Health of ' + service + ' →');
  if (rep instanceof Error) return h('p', {class: 'health-line'}, h('span', {class: 'muted'}, 'Could not read the findings: ' + rep.message), more);
  const findings = rep.findings || [];
  if (findings.length === 0) {
    return h('p', {class: 'health-line'}, h('span', {}, h('strong', {}, 'Health: '), 'no findings, every trace judged so far is whole.'), more);
  }
  const errors = findings.filter((f) => f.severity === 'error').length, act = attention(findings);
  const parts = [[errors, 'error'], [act - errors, 'warning'], [findings.length - act, 'info']]
    .filter(([n]) => n > 0).map(([n, s]) => `${n} ${s === 'info' || n === 1 ? s : s + 's'}`);
  return h('p', {class: ['health-line', errors ? 'error' : act ? 'warning' : '']},
    h('span', {}, h('strong', {}, 'Health: '), `${findings.length} finding${findings.length === 1 ? '' : 's'} (${parts.join(', ')})`), more);
}

export async function render(ctx) {
  const {root, range: r, signal, match} = ctx;
  const service = decodeURIComponent(match[1]);
  ctx.title(service);
  const head = h('div', {class: 'page-head'},
    h('h1', {}, h('span', {class: 'dot big', style: {background: serviceColor(service)}}), service),
    h('a', {class: 'button', href: ctx.link('/traces', {service})}, 'Search its traces'),
    h('a', {class: 'button', href: ctx.link('/map', {focus: service, node: service})}, 'On the map'));
  if (!ctx.refreshing) replace(root, head, loading());
  const sr = searchRange(r);
  const firingP = firingByService(signal);
  const [all, chartBox, instances, endpoints, slow, errors, diagnostics, errorLogs] = await Promise.all([
    api.service(service, r, signal),
    charts(service, r, signal).catch((e) => message('error', 'Could not draw the charts: ' + e.message)),
    api.instances(service, r, signal).catch((e) => e),
    api.endpoints(service, r, signal).catch((e) => e),
    api.slowestSpans(service, sr, 10, signal).catch((e) => e),
    api.traces({service, errors: 'true', ...sr, limit: 10}, signal),
    api.diagnostics(service, signal).catch((e) => e),
    recentErrorLogs(service, r, signal),
  ]);
  const firing = await firingP;
  if (!ctx.current()) return;
  const badge = alertBadge(ctx, firing, service);
  if (badge) head.querySelector('h1').append(badge);
  const entry = all.services.find((x) => x.name === service);
  const f = entry && entry.figures;
  const stats = f ? h('div', {class: 'stats'},
    stat('calls/min', fmtNumber(f.callsPerMinute), '', rateTitle(f)),
    stat('success rate', fmtPercent(f.successRate), f.successRate < 0.99 ? 'bad' : ''),
    stat('p99 latency', fmtMs(f.p99Ms)),
    stat('Apdex', f.apdex === undefined ? '–' : f.apdex.toFixed(2), apdexClass(f.apdex)),
    stat('calls', fmtNumber(f.calls)), stat('errors', fmtNumber(f.errors), f.errors > 0 ? 'bad' : '')) : null;
  let instBox;
  if (instances instanceof Error) instBox = message('error', 'Could not read the instances: ' + instances.message);
  else if (instances === null) instBox = message('info', 'Instances need the analysis API (/api/v1/services/{service}/instances), which this server does not serve.');
  else if (instances.instances.length === 0) instBox = h('p', {class: 'muted'}, 'No instance has reported.');
  else instBox = instanceRows(ctx, instances.instances, false);
  const none = !(slow instanceof Error) && slow.spans.length === 0;
  replace(root, head,
    silence(ctx, diagnostics),
    stats || (none ? message('info', 'No spans from this service in this time range.') : null),
    healthLine(ctx, service, diagnostics),
    chartBox,
    h('section', {}, h('h2', {}, 'Instances', instances && instances.instances ? h('span', {class: 'count'}, instances.instances.length) : null), instBox),
    h('section', {}, h('h2', {}, 'Endpoints'), endpoints instanceof Error ? message('error', 'Could not read the endpoints: ' + endpoints.message) : endpointsTable(ctx, service, endpoints)),
    h('div', {class: 'two-col'},
      h('section', {}, h('h2', {}, 'Slowest spans'),
        h('p', {class: 'muted small'}, `${service}'s own spans, longest first: where its time goes, not the traces around them.`),
        slow instanceof Error ? message('error', 'Could not rank the spans: ' + slow.message) : slowSpans(ctx, service, slow.spans),
        slowEndpoints(ctx, service, endpoints),
        h('a', {href: ctx.link('/traces', {service})}, 'All traces of ' + service + ' →')),
      h('section', {}, h('h2', {}, 'Recent errors'), traceList(errors.traces, {empty: 'No errors in this time range.'}),
        h('a', {href: ctx.link('/traces', {service, errors: 'true'})}, 'All failed traces →'))),
    errorLogs);
}
