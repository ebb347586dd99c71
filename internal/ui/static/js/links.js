// In-app links: every view is a shareable URL, and links carry the
// parameters all pages share. A module of its own so pages and shared
// widgets can build links without importing the app shell (which imports
// them).

// GLOBAL are the query parameters every page shares.
export const GLOBAL = ['range', 'from', 'to', 'refresh'];

// link builds an in-app URL carrying the shared parameters.
export function link(path, params = {}) {
  const cur = new URLSearchParams(location.search);
  const u = new URLSearchParams();
  for (const k of GLOBAL) if (cur.get(k)) u.set(k, cur.get(k));
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === '' || v === false) continue;
    if (Array.isArray(v)) v.forEach((x) => u.append(k, x));
    else u.set(k, v);
  }
  const q = u.toString();
  return path + (q ? '?' + q : '');
}
