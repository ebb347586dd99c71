// Health: the server's integrity findings (/api/v1/diagnostics), ranked as
// served (errors first, then the most frequent), each with its remedy:
// what lost a trace's context, which agents went silent, what was refused.
import {h, replace, message, loading, fmtAgo, fmtTime, fmtNumber, fmtPercent} from '../dom.js';
import {api} from '../api.js';

// KINDS names each kind of finding in plain words (docs/troubleshooting.md §6).
const KINDS = {
  no_spans: 'No span received, ever',
  unknown_service: 'Service never sent a span',
  silent_service: 'Service stopped sending spans',
  lost_propagation: 'Trace context lost between services',
  propagator_mismatch: 'Propagators do not match (sw8 and W3C)',
  broken_trace: 'Spans whose parent never arrived',
  detached_root: 'Spans started outside any request',
  uninstrumented_peer: 'Called address sends no spans',
  silent_instance: 'Instance connected but sends no spans',
  stopped_instance: 'Instance stopped sending spans',
  duplicate_instance: 'One process under several instance IDs',
  clock_skew: 'Clocks disagree between caller and callee',
  exit_without_peer: 'Client spans that do not say what they called',
  rejected_data: 'Data refused by the server',
  analysis_overflow: 'Traces not judged: the buffer was full',
};

// SEVERITY marks each severity with a symbol and a word, so it does not
// rest on colour alone.
const SEVERITY = {error: ['✖', 'Error'], warning: ['▲', 'Warning'], info: ['ℹ', 'Info']};

// SILENCE are the findings about spans that never arrived or stopped:
// the answer to "why does it have no traces?".
export const SILENCE = new Set(['no_spans', 'unknown_service', 'silent_service']);

export function kindText(kind) {
  return KINDS[kind] || kind.replace(/_/g, ' ');
}

// attention counts the findings someone should act on.
export function attention(findings) {
  return findings.filter((f) => f.severity === 'error' || f.severity === 'warning').length;
}

function plural(n, one, many = one + 's') {
  return `${fmtNumber(n)} ${n === 1 ? one : many}`;
}

function serviceLink(ctx, name) {
  return h('a', {href: ctx.link('/services/' + encodeURIComponent(name))}, name);
}

// who says which services (or instance, or receiver) a finding is about,
// in the direction the kind means: peer is the callee for calls, the
// caller for broken traces and clock skew.
function who(ctx, f) {
  const svc = f.service ? serviceLink(ctx, f.service) : null;
  const arrow = h('span', {class: 'arrow'}, ' → ');
  switch (f.kind) {
    case 'lost_propagation':
    case 'propagator_mismatch':
      return [svc, arrow, serviceLink(ctx, f.peer)];
    case 'uninstrumented_peer':
      return [svc, arrow, h('span', {class: 'mono'}, f.peer)];
    case 'broken_trace':
    case 'clock_skew':
      return f.peer ? [serviceLink(ctx, f.peer), arrow, svc] : [svc];
    case 'duplicate_instance':
      return [svc, ' · instance ', h('span', {class: 'mono'}, f.instance), f.peer ? [' replaces ', h('span', {class: 'mono'}, f.peer)] : null];
    case 'rejected_data':
      return ['the server', f.peer ? [', receiver ', h('span', {class: 'mono'}, f.peer)] : null];
    case 'analysis_overflow':
    case 'no_spans':
      return ['the server'];
    case 'unknown_service':
      return [h('span', {class: 'mono'}, f.service), f.peer ? [' · did you mean ', serviceLink(ctx, f.peer), '?'] : null];
  }
  return [svc || 'the server', f.instance ? [' · instance ', h('span', {class: 'mono'}, f.instance)] : null];
}

// howMany says how often it happened, out of what.
function howMany(f) {
  if (SILENCE.has(f.kind)) return null;
  if (f.kind === 'rejected_data') return plural(f.count, 'span') + ' refused';
  if (f.kind === 'analysis_overflow') return plural(f.count, 'trace') + ' not judged';
  if (f.instance) return null;
  if (f.traces > 0) return `${fmtNumber(f.count)} of ${plural(f.traces, 'trace')}, ${fmtPercent(f.share)}`;
  return plural(f.count, 'trace');
}

function when(label, t) {
  if (!t || t.startsWith('0001')) return null;
  return h('span', {}, label + ' ', h('time', {datetime: t, title: fmtTime(t)}, fmtAgo(t)));
}

function clientsTable(clients) {
  return h('div', {class: 'table-wrap'}, h('table', {class: 'grid', 'aria-label': 'Clients whose data was refused'},
    h('thead', {}, h('tr', {}, h('th', {}, 'Client address'), h('th', {}, 'Reason'), h('th', {class: 'num'}, 'Requests'), h('th', {}, 'Last refused'))),
    h('tbody', {}, clients.map((c) => h('tr', {},
      h('td', {class: 'mono'}, c.client),
      h('td', {}, c.reason),
      h('td', {class: 'num'}, fmtNumber(c.requests)),
      h('td', {}, when('', c.lastSeen) || '–'))))));
}

function card(ctx, f, i) {
  const [mark, word] = SEVERITY[f.severity] || ['•', f.severity];
  const titleID = `finding-${i}`;
  const examples = f.exampleTraceIDs || [];
  return h('li', {class: ['finding', 'sev-' + f.severity], 'aria-labelledby': titleID, dataset: {kind: f.kind}},
    h('div', {class: 'finding-head'},
      h('span', {class: ['sev', f.severity]}, h('span', {'aria-hidden': 'true'}, mark), ' ', word),
      h('h2', {id: titleID}, kindText(f.kind)),
      h('code', {class: 'kind muted', title: 'kind, as in /api/v1/diagnostics and /metrics'}, f.kind)),
    h('div', {class: 'finding-meta'},
      h('span', {class: 'who'}, who(ctx, f)),
      howMany(f) ? h('span', {class: 'how-many'}, howMany(f)) : null,
      when('first seen', f.firstSeen),
      when('last seen', f.lastSeen)),
    h('p', {class: 'summary'}, f.summary),
    f.detail ? h('p', {class: 'muted detail'}, f.detail) : null,
    f.remedy ? h('div', {class: 'remedy'}, h('strong', {}, 'What to do: '), f.remedy) : null,
    examples.length ? h('div', {class: 'examples'}, h('span', {class: 'muted'}, examples.length === 1 ? 'Example trace: ' : 'Example traces: '),
      examples.map((id) => h('a', {class: 'mono', href: ctx.link('/traces/' + encodeURIComponent(id)), title: 'Open trace ' + id}, id.slice(0, 16)))) : null,
    f.clients && f.clients.length ? clientsTable(f.clients) : null);
}

// facts is the header line: how much was judged, what still waits.
function facts(rep) {
  const parts = [plural(rep.judgedTraces, 'trace') + ' judged',
    `${fmtNumber(rep.pendingTraces)} waiting for their ${rep.grace} grace period`];
  if (rep.sampled > 0 && rep.sampled < 1) parts.push(`${fmtPercent(rep.sampled)} of new traces sampled for judging (the server is busy)`);
  return h('p', {class: 'muted health-facts'}, parts.join(' · '),
    rep.generatedAt ? [' · as of ', h('time', {datetime: rep.generatedAt, title: fmtTime(rep.generatedAt)}, fmtAgo(rep.generatedAt))] : null);
}

export async function render(ctx) {
  const {root, range: r, signal, params} = ctx;
  ctx.title('Health');
  const only = params.get('service') || '';
  if (!ctx.refreshing) replace(root, h('h1', {}, 'Health'), loading());
  const [rep, list] = await Promise.all([api.diagnostics(only, signal), api.serviceNames(r, signal).catch(() => ({services: []}))]);
  if (!ctx.current()) return;
  const names = list.services.map((x) => x.name);
  if (only && !names.includes(only)) names.unshift(only);
  const select = h('select', {id: 'health-service', 'aria-label': 'Service', onchange: () => ctx.navigate(ctx.link('/health', {service: select.value}))},
    h('option', {value: ''}, 'All services'), names.map((n) => h('option', {value: n, selected: n === only}, n)));
  const head = h('div', {class: 'page-head'}, h('h1', {}, 'Health'), select);
  if (rep === null) {
    replace(root, head, message('info', 'Findings need the diagnostics API (/api/v1/diagnostics), which this server does not serve.'));
    return;
  }
  const findings = rep.findings || [];
  let body;
  if (findings.length === 0) {
    body = h('section', {class: 'health-empty'},
      h('p', {class: 'ok-text'}, h('span', {'aria-hidden': 'true'}, '✔ '), 'No findings: every trace judged so far is whole.'),
      h('p', {class: 'muted'}, rep.judgedTraces > 0
        ? `${plural(rep.judgedTraces, 'trace')} judged${only ? ` (findings about ${only} and the server as a whole)` : ''}.`
        : `No trace judged yet: each is judged ${rep.grace} after its last span arrived.`));
  } else {
    const counts = ['error', 'warning', 'info'].map((s) => [s, findings.filter((f) => f.severity === s).length]).filter(([, n]) => n > 0);
    body = [
      h('p', {class: 'health-counts'}, plural(findings.length, 'finding'), ': ', counts.map(([s, n], i) => [i ? ', ' : '', h('span', {class: ['sev-text', s]}, `${n} ${s === 'info' || n === 1 ? s : s + 's'}`)]),
        only ? ` (about ${only}, its calls, and the server as a whole)` : ''),
      h('ol', {class: 'findings'}, findings.map((f, i) => card(ctx, f, i))),
    ];
  }
  replace(root, head, facts(rep), body);
}
