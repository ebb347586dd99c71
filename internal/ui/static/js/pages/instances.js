// Instances: the registry with liveness, last seen, properties and
// duplicate flags, for every service or one.
import {h, replace, message, loading, fmtAgo, fmtTime, fmtNumber, fmtMs, serviceColor, appendRows, compareText} from '../dom.js';
import {api} from '../api.js';
import {emptyState} from '../common.js';

function flags(inst) {
  const out = [];
  if (inst.duplicateOf) out.push(h('span', {class: 'flag warn', title: inst.duplicateReason || 'the same host reporting under a new instance ID'}, 'replaces ', inst.duplicateOf));
  if (inst.sameProcessAs && inst.sameProcessAs.length) out.push(h('span', {class: 'flag warn', title: 'the same host and process reported under several instance IDs'}, 'same process as ', inst.sameProcessAs.join(', ')));
  return out;
}

function properties(inst) {
  const props = Object.entries(inst.properties || {}).sort((a, b) => compareText(a[0], b[0]));
  if (props.length === 0) return h('span', {class: 'muted'}, '–');
  return h('details', {}, h('summary', {}, `${props.length} propert${props.length === 1 ? 'y' : 'ies'}`),
    h('dl', {class: 'kv'}, props.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
}

// PAGE is how many instances the table draws before "Show all": a server
// with hundreds still shows its first screen at once.
const PAGE = 200;

// instanceRows renders instances as a table; withService adds a service column.
export function instanceRows(ctx, list, withService) {
  const sorted = [...list].sort((a, b) => (b.alive - a.alive) || compareText(a.service || '', b.service || '') || compareText(a.name, b.name));
  const tbody = h('tbody');
  const more = h('p', {class: 'more-rows'});
  let drawn = 0;
  const draw = (n) => {
    appendRows(tbody, sorted.slice(drawn, n), {all: ctx.refreshing}, (inst) => instanceRow(ctx, inst, withService));
    drawn = Math.min(n, sorted.length);
    replace(more, sorted.length > n ? [`${n} of ${sorted.length} instances shown. `,
      h('button', {type: 'button', class: 'small', onclick: () => draw(sorted.length)}, `Show all ${sorted.length}`)] : null);
  };
  draw(PAGE);
  return h('div', {class: 'table-wrap'}, h('table', {class: 'grid instances'},
    h('thead', {}, h('tr', {},
      withService ? h('th', {}, 'Service') : null,
      h('th', {}, 'Instance'), h('th', {}, 'Status'), h('th', {}, 'Last seen'), h('th', {}, 'Protocol'),
      h('th', {}, 'Host / PID'), h('th', {class: 'num'}, 'Calls/min'), h('th', {class: 'num'}, 'p99'), h('th', {}, 'Flags'), h('th', {}, 'Properties'))),
    tbody), more);
}

function instanceRow(ctx, inst, withService) {
  return h('tr', {class: !inst.alive && 'dead'},
    withService ? h('td', {}, h('span', {class: 'dot', style: {background: serviceColor(inst.service)}}),
      h('a', {href: ctx.link('/services/' + encodeURIComponent(inst.service))}, inst.service)) : null,
    h('td', {class: 'mono'}, h('a', {href: ctx.link(`/instances/${encodeURIComponent(inst.service)}/${encodeURIComponent(inst.name)}`)}, inst.name)),
    h('td', {}, h('span', {class: ['status', inst.alive ? 'alive' : 'gone']}, inst.alive ? 'alive' : 'not seen')),
    h('td', {title: inst.lastSeen ? fmtTime(inst.lastSeen) : ''}, inst.lastSeen && !inst.lastSeen.startsWith('0001') ? fmtAgo(inst.lastSeen) : '–'),
    h('td', {}, [inst.protocol, inst.layer].filter(Boolean).join(' · ') || '–'),
    h('td', {class: 'mono'}, [inst.host, inst.pid].filter(Boolean).join(' / ') || '–'),
    h('td', {class: 'num'}, inst.figures ? fmtNumber(inst.figures.callsPerMinute) : '–'),
    h('td', {class: 'num'}, inst.figures ? fmtMs(inst.figures.p99Ms) : '–'),
    h('td', {}, flags(inst)),
    h('td', {}, properties(inst)));
}

// pool runs fn over items with at most n at once.
async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({length: Math.min(n, items.length)}, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  }));
  return out;
}

export async function render(ctx) {
  const {root, range: r, signal, params} = ctx;
  ctx.title('Instances');
  const only = params.get('service') || '';
  if (!ctx.refreshing) replace(root, h('h1', {}, 'Instances'), loading());
  // The service list (for the picker) and every instance, side by side.
  const [{services}, allAnswer] = await Promise.all([api.serviceNames(r, signal), only ? null : api.allInstances(r, signal)]);
  if (services.length === 0) {
    replace(root, h('h1', {}, 'Instances'), emptyState());
    return;
  }
  // One answer for all services; a server without it is asked service by service.
  let answers = only ? null : [allAnswer];
  if (!answers || answers[0] === null) {
    const names = only ? [only] : services.map((x) => x.name);
    answers = await pool(names, 6, (name) => api.instances(name, r, signal));
  }
  if (!ctx.current()) return;
  const select = h('select', {id: 'instances-service', 'aria-label': 'Service', onchange: () => ctx.navigate(ctx.link('/instances', {service: select.value}))},
    h('option', {value: ''}, 'All services'), services.map((x) => h('option', {value: x.name, selected: x.name === only}, x.name)));
  const head = h('div', {class: 'page-head'}, h('h1', {}, 'Instances'), select);
  if (answers.every((a) => a === null)) {
    replace(root, head, message('info', 'The instance registry is served by the analysis API (/api/v1/services/{service}/instances), which this server does not serve.'));
    return;
  }
  const all = answers.flatMap((a) => (a ? a.instances : []));
  const alive = all.filter((i) => i.alive).length;
  const dups = all.filter((i) => i.duplicateOf || (i.sameProcessAs && i.sameProcessAs.length)).length;
  const timeout = answers.find((a) => a && a.aliveTimeout);
  replace(root, head,
    h('p', {class: 'muted'}, `${all.length} instance${all.length === 1 ? '' : 's'}, ${alive} alive`,
      dups ? `, ${dups} flagged as duplicates` : '',
      timeout ? ` (alive: a sign of life within ${timeout.aliveTimeout})` : ''),
    all.length ? instanceRows(ctx, all, true) : h('p', {class: 'muted'}, 'No instance has reported.'));
}
