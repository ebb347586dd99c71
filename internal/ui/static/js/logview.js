// Log lines as every page shows them: time, service, severity, message,
// fields, and a link to the trace of a line that has one.
import {h, fmtTime, message} from './dom.js';
import {serviceChip} from './common.js';
import {api} from './api.js';
import {link} from './links.js';

// parseLogQuery reads the search box: `name:value` (or name="a b") pairs
// are field filters, the rest are words to find in the message.
export function parseLogQuery(text) {
  const fields = [];
  const re = /([^\s:="]+):("([^"]*)"|\S+)/g;
  const words = text.replace(re, (_, k, v, quoted) => {
    fields.push(`${k}:${quoted !== undefined ? quoted : v}`);
    return ' ';
  });
  return {fields, q: words.replace(/\s+/g, ' ').trim()};
}

// formatLogQuery writes the search box back from the URL's parameters.
export function formatLogQuery(q, fields) {
  const parts = fields.map((f) => {
    const i = f.indexOf(':');
    const k = f.slice(0, i), v = f.slice(i + 1);
    return /\s/.test(v) ? `${k}:"${v}"` : `${k}:${v}`;
  });
  if (q) parts.push(q);
  return parts.join(' ');
}

function severityClass(l) {
  const n = l.severityNumber || 0;
  if (n >= 17) return 'error';
  if (n >= 13) return 'warning';
  return '';
}

// logRow is one line; fields open under it. onField, when given, makes a
// field a filter (the Logs page's "search for this").
export function logRow(l, {onField} = {}) {
  const attrs = Object.entries(l.attributes || {});
  const fields = h('dl', {class: 'log-fields', hidden: true},
    attrs.map(([k, v]) => [h('dt', {}, k), h('dd', {}, onField ? h('button', {type: 'button', class: 'linkish', title: 'Search for ' + k + ':' + v, onclick: () => onField(k, v)}, v) : v)]),
    Object.entries(l.resource || {}).map(([k, v]) => [h('dt', {class: 'muted'}, k), h('dd', {class: 'muted'}, v)]));
  const toggle = attrs.length ? h('button', {type: 'button', class: 'small', 'aria-expanded': 'false', onclick: () => {
    fields.hidden = !fields.hidden;
    toggle.setAttribute('aria-expanded', String(!fields.hidden));
  }}, `${attrs.length} field${attrs.length === 1 ? '' : 's'}`) : null;
  return h('li', {class: ['log-line', severityClass(l)].filter(Boolean).join(' '), dataset: {trace: l.traceID || ''}},
    h('div', {class: 'log-head'},
      h('time', {class: 'muted mono', datetime: l.time}, fmtTime(l.time)), ' ',
      serviceChip(l.service), ' ',
      l.severity ? h('strong', {class: 'log-sev'}, l.severity) : null, ' ',
      h('span', {class: 'log-body'}, l.body),
      ' ', toggle,
      l.traceID ? h('a', {class: 'log-trace small', href: link('/traces/' + l.traceID, l.spanID ? {span: l.spanID} : {})}, 'trace →') : null),
    fields);
}

export function logList(lines, opts) {
  return h('ol', {class: 'log-list'}, lines.map((l) => logRow(l, opts)));
}

// recentErrorLogs is a service page's section: its newest error lines in
// the range, or nothing when the server keeps no logs for it.
export async function recentErrorLogs(service, r, signal) {
  let ans;
  try {
    ans = await api.logSearch({service, severity: 'error', start: Math.floor(r.start), end: Math.floor(r.end), limit: 10}, signal);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    return h('section', {}, h('h2', {}, 'Recent error logs'), message('error', 'Could not read the logs: ' + e.message));
  }
  return h('section', {class: 'recent-error-logs'}, h('h2', {}, 'Recent error logs'),
    ans.logs.length ? logList(ans.logs) : h('p', {class: 'muted'}, 'No error lines in this time range.'),
    h('a', {href: link('/logs', {service, severity: 'error'})}, 'All logs of ' + service + ' →'));
}
