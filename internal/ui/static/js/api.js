// Calls to SkyTrail's HTTP APIs (docs/api.md, docs/metrics.md).

export class APIError extends Error {
  constructor(status, msg, url) {
    super(msg);
    this.status = status;
    this.url = url;
  }
}

async function getJSON(url, signal) {
  const resp = await fetch(url, {signal, headers: {Accept: 'application/json'}});
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      const body = await resp.json();
      msg = body.error || (body.errors && body.errors[0] && body.errors[0].msg) || msg;
    } catch { /* not JSON: keep the status line */ }
    throw new APIError(resp.status, msg, url);
  }
  return resp.json();
}

// optional answers null when the API is not served (404 on the route
// itself), so a page can show what it has instead of failing.
async function optional(url, signal) {
  try {
    return await getJSON(url, signal);
  } catch (e) {
    if (e instanceof APIError && e.status === 404) return null;
    throw e;
  }
}

async function send(method, url, body) {
  const resp = await fetch(url, {method, headers: {'Content-Type': 'application/json', Accept: 'application/json'},
    body: body === undefined ? undefined : JSON.stringify(body)});
  if (!resp.ok) {
    let msg = `${resp.status} ${resp.statusText}`;
    try {
      msg = (await resp.json()).error || msg;
    } catch { /* not JSON: keep the status line */ }
    throw new APIError(resp.status, msg, url);
  }
  return resp.status === 204 ? null : resp.json();
}

function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.set(k, v);
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

const seg = encodeURIComponent;

export const api = {
  services: (r, signal) => getJSON('/api/v1/services' + qs({start: r.start, end: r.end}), signal),
  // One service with its figures (a list of it alone, or of none).
  service: (service, r, signal) => getJSON('/api/v1/services' + qs({start: r.start, end: r.end, service}), signal),
  // The services' names alone (for a picker): the server skips their figures.
  serviceNames: (r, signal) => getJSON('/api/v1/services' + qs({start: r.start, end: r.end, figures: 'false'}), signal),
  operations: (service, signal) => getJSON(`/api/v1/services/${seg(service)}/operations`, signal),
  // A service's own longest spans in r, longest first.
  slowestSpans: (service, r, limit, signal) => getJSON(`/api/v1/services/${seg(service)}/spans/slowest` + qs({start: r.start, end: r.end, limit}), signal),
  traces: (params, signal) => getJSON('/api/v1/traces' + qs(params), signal),
  trace: (id, signal) => getJSON(`/api/v1/traces/${seg(id)}`, signal),
  logs: (traceID, signal) => optional(`/api/v1/traces/${seg(traceID)}/logs`, signal),
  logSearch: (params, signal) => getJSON('/api/v1/logs' + qs(params), signal),
  topology: (r, signal) => optional('/api/v1/topology' + qs({start: r.start, end: r.end}), signal),
  // Every service's instances in one answer; null when not served.
  allInstances: (r, signal) => optional('/api/v1/instances' + qs({start: r.start, end: r.end}), signal),
  instances: (service, r, signal) => optional(`/api/v1/services/${seg(service)}/instances` + qs({start: r.start, end: r.end}), signal),
  // The server's integrity findings, about one service (and the server as
  // a whole) or all; not bound to the time range: findings last 15 minutes.
  diagnostics: (service, signal) => optional('/api/v1/diagnostics' + qs({service}), signal),
  // Where the server listens, and since when; null when not served.
  status: (signal) => optional('/api/v1/status', signal),
  endpoints: (service, r, signal) => optional(`/api/v1/services/${seg(service)}/endpoints` + qs({start: r.start, end: r.end}), signal),
  // Alerting (docs/alarms.md); alerts is null when it is not served.
  alerts: (signal, state) => optional('/api/v1/alerts' + qs({state}), signal),
  silences: (state, signal) => optional('/api/v1/silences' + qs({state}), signal),
  setSilence: (silence) => send('POST', '/api/v1/silences', silence),
  expireSilence: (id) => send('DELETE', `/api/v1/silences/${seg(id)}`),
  // PromQL over the embedded metric store; null when it is not served.
  // Charts pass chartRange(r): one point a step, at its end.
  promRange: (query, r, step, signal) => queryRange(query, Math.ceil(r.start / step) * step, r.end, step, signal),
  // promGauge is promRange for gauges: the points are a step apart back
  // from r.end itself, so the last one sees the newest sample (aligned to
  // whole steps, the last point could fall up to a step before it).
  promGauge: (query, r, step, signal) => queryRange(query, r.end - Math.floor((r.end - r.start) / step) * step, r.end, step, signal),
};

async function queryRange(query, start, end, step, signal) {
  const body = await optional('/prometheus/api/v1/query_range' +
    qs({query, start: start / 1000, end: end / 1000, step: step / 1000}), signal);
  return body && body.data.result;
}

// perMinute names a per-minute series (docs/metrics.md): what each minute
// added, stamped at its end, exact under sum_over_time. family is service,
// instance, endpoint, edge_client or edge_server; field calls, errors,
// apdex_satisfied, apdex_tolerating or duration_seconds.
export function perMinute(family, field) {
  return `skytrail_${family}_${field}:increase1m`;
}

// stepFor picks the chart resolution for a range: whole minutes (the
// metrics are per minute), about 60 points.
export function stepFor(r) {
  const minutes = Math.max(1, Math.ceil((r.end - r.start) / 60000 / 60));
  return minutes * 60000;
}

// chartRange is the part of r a chart draws: up to the end of the last
// complete minute. The running minute is left out: its figures are still
// coming in, and drawn as a point it would drop every line towards zero at
// the right edge. (Its calls are in the figures beside the charts.)
export function chartRange(r, now = Date.now()) {
  return {start: r.start, end: Math.max(r.start, Math.min(r.end, Math.floor(now / 60000) * 60000))};
}

// zeroFill gives a count series a point at every step of r: a minute
// without calls is a zero, not a gap to draw a line across.
export function zeroFill(points, r, step) {
  const have = new Map((points || []).map((p) => [p[0], p[1]]));
  const out = [];
  for (let t = Math.ceil(r.start / step) * step; t <= r.end; t += step) out.push([t, have.get(t) || 0]);
  return out;
}

// matrixBy turns a range query result into label value → [[ms, value]].
export function matrixBy(result, label) {
  const out = new Map();
  for (const series of result || []) {
    const pts = [];
    for (const [t, v] of series.values || []) {
      const f = parseFloat(v);
      if (Number.isFinite(f)) pts.push([t * 1000, f]);
    }
    out.set(series.metric[label] || '', pts);
  }
  return out;
}

export function promString(s) {
  return JSON.stringify(s);
}

// promRangeLit renders a duration in ms as a PromQL range, e.g. 3600000 → "60m".
export function promRangeLit(ms) {
  return Math.max(1, Math.round(ms / 60000)) + 'm';
}
