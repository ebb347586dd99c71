// Alerts: what is firing or pending now (firing first), each with its value,
// since when and links to the traces that show it; silencing one in two
// clicks; the active silences; and what resolved recently.
import {h, replace, message, loading, fmtAgo, fmtTime, fmtNumber, serviceColor} from '../dom.js';
import {api, APIError} from '../api.js';

const DURATIONS = [['1h', '1 hour'], ['2h', '2 hours'], ['4h', '4 hours'], ['24h', '1 day'], ['15m', '15 minutes']];

// path keeps the path and query of a link the server made with its
// --external-url, so the link stays inside this UI whatever host served it.
function path(u) {
  try {
    const url = new URL(u, location.href);
    return url.pathname + url.search;
  } catch {
    return null;
  }
}

function value(a) {
  const v = a.value;
  if (!Number.isFinite(v)) return '–';
  const thr = a.annotations && a.annotations.threshold;
  return fmtNumber(v, 3) + (thr ? ` (threshold ${thr})` : '');
}

function links(ctx, a) {
  const ann = a.annotations || {}, lab = a.labels || {};
  const out = [];
  if (ann.example_trace_id) out.push(h('a', {href: ctx.link('/traces/' + encodeURIComponent(ann.example_trace_id)), class: 'alert-trace'}, 'example trace'));
  const traces = ann.traces_url && path(ann.traces_url);
  if (traces) out.push(h('a', {href: traces}, 'traces'));
  if (lab.service) out.push(h('a', {href: ctx.link('/services/' + encodeURIComponent(lab.service))}, 'service'));
  if (ann.health_url) out.push(h('a', {href: ctx.link('/health')}, 'health'));
  return out.flatMap((x, i) => (i ? [' · ', x] : [x]));
}

// silenceForm silences one alert by all its labels: the first click opens
// it, the second (with the default hour) silences.
function silenceForm(ctx, a, done) {
  const duration = h('select', {'aria-label': 'Silence for'}, DURATIONS.map(([v, label]) => h('option', {value: v}, label)));
  const comment = h('input', {type: 'text', placeholder: 'Comment (optional)', 'aria-label': 'Comment', maxlength: 500});
  const status = h('span', {class: 'muted', role: 'status'});
  const form = h('form', {class: 'silence-form', onsubmit: async (ev) => {
    ev.preventDefault();
    const matchers = Object.entries(a.labels || {}).map(([name, v]) => ({name, value: v, isRegex: false}));
    try {
      await api.setSilence({matchers, duration: duration.value, createdBy: 'SkyTrail UI',
        comment: comment.value.trim() || `silenced from the Alerts page: ${a.name}`});
      done();
    } catch (e) {
      status.textContent = e instanceof APIError && e.status === 403 ? 'Your sign-in may only read: silencing needs a read-write user or token.' : e.message;
      status.className = 'err-text';
    }
  }}, duration, comment, h('button', {type: 'submit', class: 'primary'}, 'Silence'), status);
  return form;
}

function alertRow(ctx, a, refresh) {
  const lab = a.labels || {}, ann = a.annotations || {};
  const since = a.firedAt || a.activeAt;
  const actions = h('td', {class: 'actions'});
  const muted = (a.silencedBy && a.silencedBy.length) ? h('span', {class: 'flag'}, 'silenced') : a.inhibited ? h('span', {class: 'flag'}, 'inhibited') : null;
  if (a.state !== 'resolved' && !muted) {
    actions.append(h('button', {type: 'button', onclick: (ev) => {
      ev.currentTarget.replaceWith(silenceForm(ctx, a, refresh));
      actions.querySelector('select').focus();
    }}, 'Silence…'));
  }
  return h('tr', {class: ['alert-row', a.state], dataset: {alert: a.name, service: lab.service || ''}},
    h('td', {}, h('span', {class: ['alert-state', a.state]}, a.state)),
    h('td', {}, h('strong', {}, a.name), lab.severity ? h('span', {class: 'muted'}, ' ', lab.severity) : null,
      h('div', {class: 'muted alert-desc'}, ann.description || ann.summary || '')),
    h('td', {}, lab.service ? [h('span', {class: 'dot', style: {background: serviceColor(lab.service)}}), lab.service] : '–',
      lab.endpoint ? h('div', {class: 'mono'}, lab.endpoint) : null, lab.instance ? h('div', {class: 'mono'}, lab.instance) : null),
    h('td', {class: 'num'}, value(a)),
    h('td', {title: since ? fmtTime(since) : ''}, a.state === 'resolved' && a.resolvedAt ? 'resolved ' + fmtAgo(a.resolvedAt) : since ? fmtAgo(since) : '–'),
    h('td', {}, links(ctx, a)),
    h('td', {}, muted),
    actions);
}

function table(ctx, list, refresh) {
  return h('div', {class: 'table-wrap'}, h('table', {class: 'grid alerts'},
    h('thead', {}, h('tr', {}, ['State', 'Alert', 'Service', 'Value', 'Since', 'Links', '', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, list.map((a) => alertRow(ctx, a, refresh)))));
}

function silencesTable(list, refresh) {
  return h('div', {class: 'table-wrap'}, h('table', {class: 'grid silences'},
    h('thead', {}, h('tr', {}, ['Matches', 'Until', 'By', 'Comment', ''].map((t) => h('th', {}, t)))),
    h('tbody', {}, list.map((s) => h('tr', {dataset: {silence: s.id}},
      h('td', {class: 'mono'}, s.matchers.map((m) => `${m.name}${m.isEqual === false ? '!' : ''}${m.isRegex ? '=~' : '='}"${m.value}"`).join(', ')),
      h('td', {title: fmtTime(s.endsAt)}, fmtTime(s.endsAt)),
      h('td', {}, s.createdBy),
      h('td', {}, s.comment),
      h('td', {}, h('button', {type: 'button', onclick: async (ev) => {
        ev.currentTarget.disabled = true;
        try {
          await api.expireSilence(s.id);
        } finally {
          refresh();
        }
      }}, 'Expire')))))));
}

export async function render(ctx) {
  const {root, signal} = ctx;
  ctx.title('Alerts');
  if (!ctx.refreshing) replace(root, h('h1', {}, 'Alerts'), loading());
  const [alerts, silences] = await Promise.all([api.alerts(signal), api.silences('active', signal)]);
  if (!ctx.current()) return;
  if (alerts === null) {
    replace(root, h('h1', {}, 'Alerts'), message('info', 'This server does not evaluate alert rules (/api/v1/alerts is not served).'));
    return;
  }
  const refresh = () => ctx.navigate(location.pathname + location.search, {replace: true});
  const active = [...alerts.alerts].sort((a, b) => (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1) ||
    new Date(a.activeAt) - new Date(b.activeAt));
  const firing = active.filter((a) => a.state === 'firing').length;
  const sil = (silences && silences.silences) || [];
  replace(root,
    h('div', {class: 'page-head'}, h('h1', {}, 'Alerts'),
      h('span', {class: 'muted'}, `${firing} firing, ${active.length - firing} pending`),
      h('a', {href: '/api/v1/rules'}, 'rules (JSON)')),
    active.length ? table(ctx, active, refresh) : message('info', 'Nothing is firing or pending. The default rules watch every service\'s error rate and p99, silent instances and lost context (docs/alarms.md).'),
    h('h2', {}, 'Silences'),
    sil.length ? silencesTable(sil, refresh) : h('p', {class: 'muted'}, 'No active silence.'),
    h('h2', {}, 'Recently resolved'),
    alerts.resolved.length ? table(ctx, alerts.resolved, refresh) : h('p', {class: 'muted'}, 'Nothing resolved since the server started.'));
}

// firingByService counts the firing alerts of each service, for the
// badges on the services list, the service page and the header; null when
// alerting is not served.
export async function firingByService(signal) {
  let body = null;
  try {
    body = await api.alerts(signal, 'firing');
  } catch { /* a page shows its own failures; a badge stays away */ }
  if (!body) return null;
  const out = new Map();
  for (const a of body.alerts) {
    const s = (a.labels && a.labels.service) || '';
    out.set(s, (out.get(s) || 0) + 1);
  }
  return out;
}

// alertBadge links to the Alerts page when service has firing alerts.
export function alertBadge(ctx, firing, service) {
  const n = firing && firing.get(service);
  if (!n) return null;
  return h('a', {class: 'alert-badge', href: ctx.link('/alerts'), title: `${n} alert${n === 1 ? '' : 's'} firing`}, `${n} firing`);
}
