// Pieces several pages share: the empty state that teaches how to send
// data, service figures, and the trace list.
import {h, fmtMs, fmtTime, serviceColor} from './dom.js';
import {link} from './links.js';

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
