// Pieces several pages share: the empty state that teaches how to send
// data, service figures, and the trace list.
import {h, fmtMs, fmtTime, serviceColor} from './dom.js';
import {api, vectorBy, promRangeLit} from './api.js';
import {link} from './app.js';

// emptyState is what a page shows before any data arrives: how to send it.
// The ports are SkyTrail's defaults (docs/configuration.md).
export function emptyState(what = 'No data yet') {
  const host = location.hostname || 'localhost';
  const code = (...lines) => h('pre', {class: 'code'}, lines.join('\n'));
  return h('section', {class: 'empty', 'aria-labelledby': 'empty-title'},
    h('h2', {id: 'empty-title'}, what),
    h('p', {}, 'SkyTrail has not received any spans in this time range. Point your services at it and they appear here within seconds.'),
    h('div', {class: 'empty-grid'},
      h('div', {},
        h('h3', {}, 'OpenTelemetry SDKs, agents and collectors'),
        code(`export OTEL_EXPORTER_OTLP_ENDPOINT=http://${host}:4317   # OTLP/gRPC`,
          `# or, for OTLP/HTTP:`,
          `export OTEL_EXPORTER_OTLP_ENDPOINT=http://${host}:4318`,
          `export OTEL_SERVICE_NAME=checkout`)),
      h('div', {},
        h('h3', {}, 'SkyWalking agents'),
        code(`# Java, Python, Node.js agents`,
          `SW_AGENT_COLLECTOR_BACKEND_SERVICES=${host}:11800`,
          `# skywalking-go`,
          `SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE=${host}:11800`,
          `# go2sky`,
          `reporter.NewGRPCReporter("${host}:11800")`))),
    h('p', {class: 'muted'}, 'These are the default ports; a server started with other addresses (--otlp-grpc, --sw-grpc) listens there instead. Already sending? Widen the time range above.'));
}

function figuresOf(entry) {
  if (entry.figures) return entry.figures;
  if (entry.callsPerMinute !== undefined || entry.calls !== undefined) return entry;
  return null;
}

// serviceFigures returns service name → figures over r: from
// /api/v1/services when it carries them, else computed with PromQL from
// the metric store; null when neither is served.
export async function serviceFigures(list, r, signal) {
  const out = new Map();
  for (const e of list) {
    const f = figuresOf(e);
    if (f) out.set(e.name, f);
  }
  if (out.size > 0) return out;
  const rng = promRangeLit(r.end - r.start);
  const minutes = Math.max(1, Math.round((r.end - r.start) / 60000));
  const sum = (m) => `sum by (service) (sum_over_time(skytrail_service_${m}[${rng}]))`;
  const [calls, errors, sat, tol, p99] = await Promise.all([
    api.promInstant(sum('calls'), r.end, signal),
    api.promInstant(sum('errors'), r.end, signal),
    api.promInstant(sum('apdex_satisfied'), r.end, signal),
    api.promInstant(sum('apdex_tolerating'), r.end, signal),
    api.promInstant(`histogram_quantile(0.99, ${sum('duration_seconds')})`, r.end, signal),
  ]);
  if (calls === null) return null;
  const c = vectorBy(calls, 'service'), e = vectorBy(errors, 'service'), sa = vectorBy(sat, 'service'),
    to = vectorBy(tol, 'service'), p = vectorBy(p99, 'service');
  for (const [name, n] of c) {
    if (!(n > 0)) continue;
    const errs = e.get(name) || 0;
    out.set(name, {
      calls: n, errors: errs, callsPerMinute: n / minutes, successRate: 1 - errs / n,
      apdex: ((sa.get(name) || 0) + (to.get(name) || 0) / 2) / n, p99Ms: (p.get(name) || 0) * 1000,
    });
  }
  return out;
}

// lookback turns the shared range into the trace search's parameters.
export function searchRange(r) {
  return {start: Math.floor(r.start), end: Math.floor(r.end)};
}

export function serviceChip(name, color = serviceColor(name)) {
  return h('span', {class: 'chip', style: {'--c': color}}, name);
}

// traceList shows trace summaries with bars scaled to the longest one.
export function traceList(list, {empty = 'No traces match.'} = {}) {
  if (list.length === 0) return h('p', {class: 'muted'}, empty);
  const max = Math.max(...list.map((t) => t.durationMicros), 1);
  return h('ol', {class: 'trace-list'}, list.map((t) => {
    const ms = t.durationMicros / 1000;
    return h('li', {class: ['trace-row', t.error && 'has-error']},
      h('a', {href: link('/traces/' + t.traceID), class: 'trace-link'},
        h('div', {class: 'trace-head'},
          h('span', {class: 'trace-name'}, h('strong', {}, t.rootService), ': ', t.rootOperation || '(no root yet)'),
          h('span', {class: 'trace-dur'}, fmtMs(ms))),
        h('div', {class: 'bar-track'}, h('div', {class: ['bar', t.error && 'error'], style: {width: Math.max(0.5, (t.durationMicros / max) * 100) + '%'}})),
        h('div', {class: 'trace-meta'},
          h('span', {}, fmtTime(t.start)),
          h('span', {}, `${t.spanCount} span${t.spanCount === 1 ? '' : 's'}`),
          t.errorCount > 0 ? h('span', {class: 'err-text'}, `${t.errorCount} error${t.errorCount === 1 ? '' : 's'}`) : null,
          h('span', {class: 'mono'}, t.traceID.slice(0, 16)),
          h('span', {class: 'chips'}, (t.services || []).map((name) => serviceChip(name))))));
  }));
}
