// Logs: search every line by words, fields (order_id:1001), service and
// severity over the shared time range, newest first, older pages on
// demand, and a live tail that polls for new lines. The search lives in
// the URL.
import {h, replace, message, loading} from '../dom.js';
import {api} from '../api.js';
import {logList, logRow, parseLogQuery, formatLogQuery} from '../logview.js';

const SEVERITIES = ['', 'debug', 'info', 'warn', 'error', 'fatal'];
const TAIL_EVERY = 2000;

// Live tail is a poll on a timer; the page stops it when it is left.
let tailTimer = null;
export const live = false; // the app's auto-refresh would rebuild the list under the reader

export async function render(ctx) {
  const {root, range: r, signal, params} = ctx;
  ctx.title('Logs');
  clearInterval(tailTimer);
  const service = params.get('service') || '';
  const severity = params.get('severity') || '';
  const q = params.get('q') || '';
  const fields = params.getAll('field');
  const tail = params.get('tail') === 'true';
  if (!ctx.refreshing) replace(root, h('h1', {}, 'Logs'), loading());
  const search = {service, severity, q, field: fields, limit: 100};
  const [svc, first] = await Promise.all([
    api.services(r, signal).catch(() => ({services: []})),
    api.logSearch({...search, start: Math.floor(r.start), end: Math.floor(r.end)}, signal).catch((e) => e),
  ]);
  if (!ctx.current()) return;

  const serviceSel = h('select', {name: 'service', id: 'l-service'}, h('option', {value: ''}, 'Any service'),
    [...new Set([...svc.services.map((x) => x.name), service].filter(Boolean))].map((n) => h('option', {value: n, selected: n === service}, n)));
  const sevSel = h('select', {name: 'severity', id: 'l-severity'}, SEVERITIES.map((s) => h('option', {value: s, selected: s === severity}, s ? s + ' and above' : 'Any level')));
  const box = h('input', {type: 'search', id: 'l-query', name: 'q', value: formatLogQuery(q, fields), placeholder: 'order_id:1001 declined', spellcheck: 'false', 'aria-label': 'Search logs: words, or name:value for a field'});
  const tailBox = h('input', {type: 'checkbox', id: 'l-tail', checked: tail});
  const go = (extra = {}) => {
    const parsed = parseLogQuery(box.value);
    ctx.navigate(ctx.link('/logs', {service: serviceSel.value, severity: sevSel.value, q: parsed.q, field: parsed.fields, tail: tailBox.checked ? 'true' : '', ...extra}));
  };
  tailBox.addEventListener('change', () => go());
  const form = h('form', {class: 'search', role: 'search', onsubmit: (ev) => { ev.preventDefault(); go(); }},
    h('label', {for: 'l-query', class: 'grow'}, 'Search', box),
    h('label', {for: 'l-service'}, 'Service', serviceSel),
    h('label', {for: 'l-severity'}, 'Level', sevSel),
    h('label', {for: 'l-tail', class: 'check'}, tailBox, 'Live tail'),
    h('button', {type: 'submit', class: 'primary'}, 'Search'));
  const onField = (k, v) => { box.value = (box.value + ' ' + formatLogQuery('', [`${k}:${v}`])).trim(); go(); };

  if (first instanceof Error) {
    replace(root, h('h1', {}, 'Logs'), form, message('error', 'The search failed: ' + first.message));
    return;
  }
  const list = logList(first.logs, {onField});
  list.id = 'log-results';
  const status = h('p', {class: 'muted small', id: 'log-status', 'aria-live': 'polite'});
  const count = () => { status.textContent = `${list.children.length} line${list.children.length === 1 ? '' : 's'}` + (tail ? ', live' : ''); };
  count();
  let next = first.next;
  const more = h('button', {type: 'button', id: 'log-more', hidden: !next, onclick: async () => {
    more.disabled = true;
    try {
      const page = await api.logSearch({...search, start: Math.floor(r.start), end: Math.floor(r.end), cursor: next}, signal);
      list.append(...page.logs.map((l) => logRow(l, {onField})));
      next = page.next;
      more.hidden = !next;
      count();
    } catch (e) {
      if (e.name !== 'AbortError') status.textContent = 'Could not read older lines: ' + e.message;
    } finally {
      more.disabled = false;
    }
  }}, 'Older lines');

  replace(root, h('h1', {}, 'Logs'), form, status,
    first.logs.length ? null : message('info', 'No lines match in this time range. Widen the time range or remove a condition.'),
    list, more);

  if (tail) {
    // Poll for lines newer than the newest shown; the newest first.
    let newest = first.logs.length ? new Date(first.logs[0].time).getTime() : Date.now() - 60000;
    const seen = new Set(first.logs.filter((l) => new Date(l.time).getTime() === newest).map((l) => l.time + l.body));
    tailTimer = setInterval(async () => {
      if (!ctx.current()) { clearInterval(tailTimer); return; }
      if (document.visibilityState !== 'visible') return;
      try {
        const page = await api.logSearch({...search, start: newest, end: Date.now() + 1000, limit: 500}, signal);
        const fresh = page.logs.filter((l) => !seen.has(l.time + l.body));
        if (!fresh.length) return;
        list.prepend(...fresh.map((l) => logRow(l, {onField})));
        newest = Math.max(newest, ...fresh.map((l) => new Date(l.time).getTime()));
        seen.clear();
        for (const l of page.logs) if (new Date(l.time).getTime() === newest) seen.add(l.time + l.body);
        count();
      } catch { /* the next poll tries again */ }
    }, TAIL_EVERY);
  }
}
