// Pieces several pages share: the empty state that teaches how to send
// data, service figures, and the trace list.
import {h, fmtMs, fmtTime, serviceColor} from './dom.js';
import {link} from './links.js';
import {api} from './api.js';

// emptyState is what a page shows before any data arrives: how to send it,
// to the addresses this server really listens on (/api/v1/status; the
// defaults until it answers, or when it is not served), and the
// `skytrail doctor` line that checks the path.
export function emptyState(what = 'No data yet') {
  const code = (cls) => h('pre', {class: ['code', cls]});
  const otel = code('otel'), sw = code('sw'), doctor = code('doctor');
  const section = h('section', {class: 'empty', 'aria-labelledby': 'empty-title'},
    h('h2', {id: 'empty-title'}, what),
    h('p', {}, 'SkyTrail has not received any spans in this time range. Point your services at it and they appear here within seconds.'),
    h('div', {class: 'empty-grid'},
      h('div', {}, h('h3', {}, 'OpenTelemetry SDKs, agents and collectors'), otel),
      h('div', {}, h('h3', {}, 'SkyWalking agents'), sw)),
    h('h3', {}, 'Nothing arrives? Ask doctor'),
    h('p', {class: 'muted'}, 'Run it where the service runs, with its environment: it checks the address, TLS, tokens and sampler, sends a probe span and says what to fix.'),
    doctor,
    h('p', {class: 'muted listen-note'}, 'These are the default ports. Already sending? Widen the time range above.'));
  const fill = (listeners, real) => {
    const at = (name, port) => hostPort(listeners[name], port);
    const grpc = at('OTLP gRPC', 4317), http = at('OTLP HTTP', 4318), swGRPC = at('SkyWalking gRPC', 11800);
    otel.textContent = [`export OTEL_EXPORTER_OTLP_ENDPOINT=http://${grpc}   # OTLP/gRPC`,
      `# or, for OTLP/HTTP:`,
      `export OTEL_EXPORTER_OTLP_ENDPOINT=http://${http}`,
      `export OTEL_SERVICE_NAME=checkout`].join('\n');
    sw.textContent = [`# Java, Python, Node.js agents`,
      `SW_AGENT_COLLECTOR_BACKEND_SERVICES=${swGRPC}`,
      `# skywalking-go`,
      `SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE=${swGRPC}`,
      `# go2sky`,
      `reporter.NewGRPCReporter("${swGRPC}")`].join('\n');
    doctor.textContent = `skytrail doctor --endpoint http://${grpc} --server ${location.origin} --service-name checkout`;
    if (real) {
      section.querySelector('.listen-note').textContent = 'The addresses this server listens on, as it reports them (/api/v1/status). Already sending? Widen the time range above.';
      section.dataset.listening = 'true';
    }
  };
  fill({}, false);
  api.status().then((st) => { if (st && st.listeners) fill(st.listeners, true); }).catch(() => { /* keep the defaults */ });
  return section;
}

// hostPort is where a client reaches a listener bound to addr: a wildcard
// bind (0.0.0.0, [::], no host) is reached at the host the browser used.
// Without addr, the default port on that host.
function hostPort(addr, defaultPort) {
  const host = location.hostname || 'localhost';
  if (!addr) return `${host}:${defaultPort}`;
  const i = addr.lastIndexOf(':');
  const bound = addr.slice(0, i), port = addr.slice(i + 1);
  if (bound === '' || bound === '0.0.0.0' || bound === '[::]' || bound === '::') return `${host.includes(':') ? `[${host}]` : host}:${port}`;
  return addr;
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
    // A search with conditions names the span that met them; the link
    // opens the trace at it.
    const m = t.matched;
    return h('li', {class: ['trace-row', t.error && 'has-error']},
      h('a', {href: link('/traces/' + t.traceID, {span: m && m.spanID}), class: 'trace-link'},
        h('div', {class: 'trace-head'},
          h('span', {class: 'trace-name'}, h('strong', {}, t.rootService), ': ', t.rootOperation || '(no root yet)'),
          h('span', {class: 'trace-dur'}, fmtMs(ms))),
        m ? h('div', {class: 'matched small'}, h('span', {class: 'muted'}, 'matched '), serviceChip(m.service), ' ', h('span', {class: 'op'}, m.name)) : null,
        h('div', {class: 'bar-track'}, h('div', {class: ['bar', t.error && 'error'], style: {width: Math.max(0.5, (t.durationMicros / max) * 100) + '%'}})),
        h('div', {class: 'trace-meta'},
          h('span', {}, fmtTime(t.start)),
          h('span', {}, `${t.spanCount} span${t.spanCount === 1 ? '' : 's'}`),
          t.errorCount > 0 ? h('span', {class: 'err-text'}, `${t.errorCount} error${t.errorCount === 1 ? '' : 's'}`) : null,
          h('span', {class: 'mono'}, t.traceID.slice(0, 16)),
          h('span', {class: 'chips'}, (t.services || []).map((name) => serviceChip(name))))));
  }));
}
