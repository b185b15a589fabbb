// app.js: sluice's dashboard. Plain DOM (a tiny h() helper), uPlot for charts. Every number
// comes from the admin API, called with the bearer token the operator typed (kept in
// sessionStorage, sent as `Authorization: Bearer`). Endpoints a gateway does not have answer
// 404: their section says "not available" and the rest of the page works.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

const TOKEN_KEY = 'sluice.admin_token';
const POLL_MS = 2000;
const KEEP_POINTS = 600; // 20 minutes of 2 s samples per rollout

// ------------------------------------------------------------------ DOM helper

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const fmt = (v, digits = 4) => {
  if (v === null || v === undefined) return '–';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(+v.toPrecision(digits));
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
};
const time = (ms) => (ms ? new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–');

// ------------------------------------------------------------------ API

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  who: null, // {actor, role}
  tab: (location.hash || '#rollouts').slice(1),
  rollouts: new Map(), // route -> {samples: [...], status, charts: Map}
  series: new Map(), // route -> last /admin/v1/series answer (or {unavailable})
  timer: null,
};

async function api(method, path, body) {
  const headers = { authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    return { status: 0, ok: false, json: null, error: `network error: ${e.message}` };
  }
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  if (res.status === 401 && path !== '/admin/v1/whoami') logout('Your token was refused (401): log in again.');
  const error = res.ok ? '' : json?.error?.message || text || `HTTP ${res.status}`;
  return { status: res.status, ok: res.ok, json, text, error };
}

const canAct = () => state.who && (state.who.role === 'operator' || state.who.role === 'admin');

// ------------------------------------------------------------------ login

function logout(message) {
  state.token = '';
  state.who = null;
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  state.timer = null;
  renderLogin(message);
}

function renderLogin(message) {
  const input = h('input', { type: 'password', id: 'token', testid: 'token-input', autocomplete: 'off', placeholder: 'admin bearer token', required: true });
  const err = h('p', { class: 'error', testid: 'login-error' }, message || '');
  const form = h(
    'form',
    {
      class: 'login',
      testid: 'login-form',
      onsubmit: async (e) => {
        e.preventDefault();
        state.token = input.value.trim();
        const r = await api('GET', '/admin/v1/whoami');
        if (!r.ok) {
          state.token = '';
          err.textContent = r.status === 401 ? 'This token is not valid.' : r.error;
          return;
        }
        sessionStorage.setItem(TOKEN_KEY, state.token);
        state.who = r.json;
        renderShell();
      },
    },
    h('h1', {}, 'sluice'),
    h('label', { for: 'token' }, 'Admin token'),
    input,
    h('button', { type: 'submit', testid: 'login-button' }, 'Log in'),
    err,
    h('p', { class: 'muted' }, 'The token stays in this tab (sessionStorage) and is sent only to this gateway.'),
  );
  document.getElementById('app').replaceChildren(form);
  input.focus();
}

// ------------------------------------------------------------------ shell and tabs

const TABS = [
  ['rollouts', 'Rollouts'],
  ['routes', 'Routes'],
  ['evals', 'Evals'],
  ['upstreams', 'Upstreams'],
  ['tenants', 'Tenants'],
  ['flags', 'Flags'],
  ['alarms', 'Alarms'],
  ['timeline', 'Timeline'],
  ['spend', 'Spend'],
  ['audit', 'Audit'],
];

function renderShell() {
  const nav = h(
    'nav',
    {},
    TABS.map(([id, label]) =>
      h('a', { href: `#${id}`, testid: `nav-${id}`, class: state.tab === id ? 'active' : '' }, label),
    ),
  );
  const who = h(
    'span',
    { class: 'who', testid: 'whoami', 'data-role': state.who.role },
    `${state.who.actor} (${state.who.role})`,
  );
  const header = h(
    'header',
    {},
    h('strong', {}, 'sluice'),
    nav,
    who,
    h('button', { class: 'small', testid: 'logout', onclick: () => logout('') }, 'Log out'),
  );
  const main = h('main', { id: 'main', testid: `page-${state.tab}` });
  const toast = h('div', { id: 'toast', testid: 'toast', role: 'status' });
  document.getElementById('app').replaceChildren(header, main, toast);
  refresh();
  clearInterval(state.timer);
  state.timer = setInterval(tick, POLL_MS);
}

window.addEventListener('hashchange', () => {
  state.tab = (location.hash || '#rollouts').slice(1);
  if (state.who) renderShell();
});

let ticking = false;
async function tick() {
  if (ticking) return;
  ticking = true;
  try {
    await sampleRollouts(); // evidence accumulates whatever tab is open
    if (LIVE.has(state.tab)) await refresh();
  } finally {
    ticking = false;
  }
}

const LIVE = new Set(['rollouts', 'upstreams', 'tenants', 'alarms', 'timeline']);

async function refresh() {
  const main = document.getElementById('main');
  if (!main) return;
  const page = PAGES[state.tab] || PAGES.rollouts;
  const content = await page();
  if (document.getElementById('main') === main) main.replaceChildren(...[content].flat());
}

function toast(message, isError = false) {
  const t = document.getElementById('toast');
  if (!t) return;
  t.textContent = message;
  t.className = isError ? 'show error' : 'show';
  clearTimeout(t._timer);
  t._timer = setTimeout(() => (t.className = ''), 6000);
}

// A section whose endpoint may not exist on this gateway (yet).
function unavailable(title, r) {
  const why = r.status === 404 ? 'not available on this gateway' : `error: ${r.error}`;
  return h('section', { class: 'unavailable', testid: `unavailable-${title.toLowerCase().replace(/\W+/g, '-')}` }, h('h2', {}, title), h('p', { class: 'muted' }, why));
}

// A table of objects: columns are the union of their keys; nested values as compact JSON.
function table(rows, { testid, columns } = {}) {
  if (!rows || rows.length === 0) return h('p', { class: 'muted', testid }, 'none');
  const cols = columns || [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return h(
    'table',
    { testid },
    h('thead', {}, h('tr', {}, cols.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cols.map((c) => h('td', {}, cell(r[c])))))),
  );
}
function cell(v) {
  if (v instanceof Node) return v;
  const s = fmt(v);
  return s.length > 160 ? h('details', {}, h('summary', {}, s.slice(0, 60) + '…'), h('pre', {}, s)) : s;
}

// ------------------------------------------------------------------ actions

// Asks for a reason (required) and any extra fields, calls the API, shows its error text.
function act({ title, method = 'POST', path, body = {}, fields = [], done }) {
  const dlg = h('dialog', { testid: 'action-dialog' });
  const reason = h('textarea', { testid: 'reason-input', rows: 3, placeholder: 'why (recorded in the audit log)' });
  const err = h('p', { class: 'error', testid: 'dialog-error' });
  const inputs = fields.map((f) =>
    f.options
      ? h('select', { 'data-field': f.name, testid: `field-${f.name}` }, f.options.map((o) => h('option', { value: o }, o)))
      : h('input', { 'data-field': f.name, testid: `field-${f.name}`, value: f.value || '' }),
  );
  const confirm = h('button', { testid: 'dialog-confirm', class: 'danger' }, 'Confirm');
  confirm.addEventListener('click', async (e) => {
    e.preventDefault();
    if (!reason.value.trim()) {
      err.textContent = 'A reason is required.';
      return;
    }
    const payload = { ...body, reason: reason.value.trim() };
    for (const i of inputs) payload[i.dataset.field] = i.value;
    confirm.disabled = true;
    const r = await api(method, path, payload);
    confirm.disabled = false;
    if (!r.ok) {
      err.textContent = `${r.status}: ${r.error}`;
      return;
    }
    dlg.close();
    dlg.remove();
    toast(`${title}: done`);
    if (done) done(r);
    refresh();
  });
  dlg.append(
    h('h2', {}, title),
    h('p', { class: 'muted' }, `${method} ${path}`),
    fields.map((f, i) => h('label', {}, f.label || f.name, inputs[i])),
    h('label', {}, 'Reason (required)', reason),
    err,
    h('div', { class: 'buttons' }, h('button', { testid: 'dialog-cancel', onclick: () => (dlg.close(), dlg.remove()) }, 'Cancel'), confirm),
  );
  document.body.append(dlg);
  dlg.showModal();
  reason.focus();
}

function button(label, testid, onclick, cls = '') {
  if (!canAct()) return null; // viewers see no buttons; the API refuses them anyway (403)
  return h('button', { testid, onclick, class: cls }, label);
}

// ------------------------------------------------------------------ rollouts

const ACTIVE = new Set(['starting', 'running', 'paused', 'awaiting_approval', 'shadow', 'warming']);

// The latest rollout of every route, its status polled and its evidence kept client-side.
async function sampleRollouts() {
  const list = await api('GET', '/admin/v1/rollouts');
  if (!list.ok) return list;
  const latest = new Map();
  for (const r of list.json.data || []) {
    const cur = latest.get(r.route);
    if (!cur || r.created_at > cur.created_at) latest.set(r.route, r);
  }
  await Promise.all(
    [...latest.keys()].map(async (route) => {
      const r = await api('GET', `/admin/v1/rollouts/${encodeURIComponent(route)}`);
      if (!r.ok) return;
      let ro = state.rollouts.get(route);
      if (!ro || ro.id !== r.json.id) {
        ro = { id: r.json.id, samples: [], charts: new Map(), seriesCharts: new Map() };
        state.rollouts.set(route, ro);
      }
      ro.status = r.json;
      const st = r.json;
      ro.samples.push({
        t: Date.now() / 1000,
        stable: st.live?.stable || {},
        candidate: st.live?.candidate || {},
        shadow: st.shadow || {},
        weight: st.weight,
      });
      if (ro.samples.length > KEEP_POINTS) ro.samples.shift();
      const s = await api('GET', `/admin/v1/series?route=${encodeURIComponent(route)}&window_s=600`);
      state.series.set(route, s.ok ? s.json : { unavailable: s });
    }),
  );
  return list;
}

const EVIDENCE = [
  ['error_rate', 'error rate'],
  ['ttft_p99_ms', 'TTFT p99 (ms)'],
  ['latency_p50_ms', 'latency p50 (ms)'],
  ['latency_p99_ms', 'latency p99 (ms)'],
  ['cost_per_call', 'cost per call (USD)'],
  ['refusal_rate', 'refusal rate'],
  ['schema_valid_rate', 'schema validity'],
  ['feedback_mean', 'feedback'],
];

function chart(store, key, title, xs, series) {
  const width = Math.max(260, Math.min(420, (document.getElementById('main')?.clientWidth || 900) / 2 - 40));
  const data = [xs, ...series.map((s) => s.values)];
  let c = store.get(key);
  if (!c || c.series.length !== series.length + 1) {
    c?.destroy();
    c = new uPlot(
      {
        title,
        width,
        height: 160,
        legend: { show: true },
        scales: { x: { time: true } },
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.5, spanGaps: true }))],
      },
      data,
    );
    store.set(key, c);
  } else {
    c.setData(data);
  }
  return c.root;
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

function rolloutCard(route, ro) {
  const st = ro.status;
  const active = ACTIVE.has(st.status);
  const xs = ro.samples.map((s) => s.t);
  const evidence = EVIDENCE.filter(([k]) => ro.samples.some((s) => typeof s.candidate[k] === 'number' || typeof s.stable[k] === 'number'));
  const charts = evidence.map(([k, label]) =>
    chart(ro.charts, k, label, xs, [
      { label: `stable ${st.stable}`, color: COLORS[0], values: ro.samples.map((s) => s.stable[k] ?? null) },
      { label: `candidate ${st.candidate}`, color: COLORS[1], values: ro.samples.map((s) => s.candidate[k] ?? null) },
    ]),
  );
  if (ro.samples.some((s) => s.shadow.pairs > 0))
    charts.push(chart(ro.charts, 'agreement', 'shadow agreement', xs, [{ label: 'agreement', color: COLORS[2], values: ro.samples.map((s) => (s.shadow.pairs > 0 ? s.shadow.agreement : null)) }]));
  charts.push(chart(ro.charts, 'weight', 'candidate weight (%)', xs, [{ label: 'weight', color: COLORS[3], values: ro.samples.map((s) => s.weight ?? null) }]));

  const cand = st.live?.candidate || {};
  const stab = st.live?.stable || {};
  const enc = encodeURIComponent(route);
  const buttons = active
    ? ['promote', 'approve', 'pause', 'resume', 'abort'].map((verb) =>
        button(verb, `btn-${verb}-${route}`, () => act({ title: `${verb} the rollout on ${route}`, path: `/admin/v1/rollouts/${enc}/${verb}` })),
      )
    : [];
  buttons.push(button('rollback', `btn-rollback-${route}`, () => act({ title: `Roll back ${route}`, path: `/admin/v1/routes/${enc}/rollback` }), 'danger'));

  return h(
    'section',
    { class: 'card', testid: `rollout-${route}` },
    h('h2', {}, `${route} `, h('span', { class: `badge ${st.status}`, testid: `rollout-status-${route}` }, st.status)),
    h('p', {}, `${st.id}: stable ${st.stable} → candidate ${st.candidate} (${st.strategy}), step ${st.step + 1}/${(st.steps || []).length}`, st.steps?.[st.step] ? ` (${st.steps[st.step]})` : '', `, candidate weight ${fmt(st.weight)}%`, st.shadow_share ? `, ${fmt(st.shadow_share * 100)}% mirrored` : '', st.reason ? ` — ${st.reason}` : ''),
    h(
      'p',
      { class: 'muted' },
      'samples: ',
      h('span', { testid: `rollout-points-${route}` }, String(ro.samples.length)),
      ' · requests stable ',
      h('span', { testid: `rollout-stable-requests-${route}` }, fmt(stab.requests)),
      ', candidate ',
      h('span', { testid: `rollout-candidate-requests-${route}` }, fmt(cand.requests)),
    ),
    h('div', { class: 'buttons' }, buttons),
    h('h3', {}, 'Evidence per arm (polled every 2 s)'),
    h('div', { class: 'charts', testid: `rollout-chart-${route}` }, charts),
    h('h3', {}, 'Per-release series (last 10 minutes)'),
    seriesCharts(route, ro),
    h('h3', {}, 'Gates'),
    table(
      (st.gates || []).map((g) => ({
        check: g.check,
        verdict: h('span', { class: `badge ${g.verdict}` }, g.verdict),
        estimate: fmt(g.estimate),
        interval: `[${fmt(g.lo)}, ${fmt(g.hi)}]`,
        threshold: fmt(g.threshold),
        candidate: fmt(g.candidate),
        stable: fmt(g.stable),
        n: `${fmt(g.n_candidate)} / ${fmt(g.n_stable)}`,
        confidence: fmt(g.confidence),
        guardrail: g.guardrail ? 'yes' : '',
      })),
      { testid: `gates-${route}` },
    ),
    h('h3', {}, 'Decisions'),
    table(
      (st.events || []).slice().reverse().map((e) => ({ at: time(e.at), kind: e.kind, detail: e.detail?.message ?? e.detail })),
      { testid: `events-${route}` },
    ),
  );
}

function seriesCharts(route, ro) {
  const s = state.series.get(route);
  if (!s) return h('p', { class: 'muted' }, 'loading');
  if (s.unavailable) return h('p', { class: 'muted', testid: `series-unavailable-${route}` }, s.unavailable.status === 404 ? 'not available on this gateway' : `error: ${s.unavailable.error}`);
  const releases = s.series || [];
  const ts = [...new Set(releases.flatMap((r) => (r.points || []).map((p) => p.t)))].sort((a, b) => a - b);
  if (ts.length === 0) return h('p', { class: 'muted' }, 'no points yet');
  const xs = ts.map((t) => (t > 1e11 ? t / 1000 : t));
  const metrics = [
    ['error_rate', 'error rate'],
    ['ttft_p50_ms', 'TTFT p50 (ms)'],
    ['ttft_p99_ms', 'TTFT p99 (ms)'],
    ['latency_p99_ms', 'latency p99 (ms)'],
    ['cost_per_call_usd', 'cost per call (USD)'],
    ['refusal_rate', 'refusal rate'],
    ['requests', 'requests per step'],
  ];
  return h(
    'div',
    { class: 'charts', testid: `series-chart-${route}` },
    metrics.map(([k, label]) =>
      chart(
        ro.seriesCharts,
        k,
        label,
        xs,
        releases.map((r, i) => {
          const by = new Map((r.points || []).map((p) => [p.t, p[k]]));
          return { label: r.release, color: COLORS[i % COLORS.length], values: ts.map((t) => by.get(t) ?? null) };
        }),
      ),
    ),
  );
}

// ------------------------------------------------------------------ pages

const PAGES = {
  async rollouts() {
    if (state.rollouts.size === 0) {
      const r = await sampleRollouts();
      if (!r.ok) return unavailable('Rollouts', r);
    }
    if (state.rollouts.size === 0) return h('p', { class: 'muted', testid: 'no-rollouts' }, 'No rollouts yet.');
    const cards = [...state.rollouts.entries()]
      .sort(([, a], [, b]) => ACTIVE.has(b.status.status) - ACTIVE.has(a.status.status))
      .map(([route, ro]) => rolloutCard(route, ro));
    return cards;
  },

  async routes() {
    const r = await api('GET', '/admin/v1/routes');
    if (!r.ok) return unavailable('Routes', r);
    const out = [];
    for (const route of r.json.routes || []) {
      const enc = encodeURIComponent(route.name);
      const [ready, rels] = await Promise.all([api('GET', `/admin/v1/routes/${enc}/readiness`), api('GET', `/admin/v1/releases?route=${enc}`)]);
      const ids = (rels.json?.releases || []).map((x) => x.id);
      const a = h('select', { testid: `diff-a-${route.name}` }, ids.map((id) => h('option', { value: id }, id)));
      const b = h('select', { testid: `diff-b-${route.name}` }, ids.map((id) => h('option', { value: id, selected: id === route.stable_release }, id)));
      const diffOut = h('pre', { testid: `diff-${route.name}`, class: 'diff' });
      out.push(
        h(
          'section',
          { class: 'card', testid: `route-${route.name}` },
          h('h2', {}, route.name),
          h('p', {}, 'stable release: ', h('code', { testid: `stable-${route.name}` }, route.stable_release || '–'), route.rolled_back?.length ? ` · rolled back: ${route.rolled_back.join(', ')}` : ''),
          h(
            'p',
            { testid: `readiness-${route.name}` },
            'rollback readiness: ',
            ready.ok
              ? h('span', { class: `badge ${ready.json.healthy ? 'pass' : 'fail'}` }, ready.json.healthy ? 'ready' : 'NOT ready', ` — target ${ready.json.target_release || '–'} on ${ready.json.upstream || '–'}, checked ${time(ready.json.checked_ms)}${ready.json.detail ? ': ' + ready.json.detail : ''}`)
              : ready.status === 404 ? 'not available' : `error: ${ready.error}`,
          ),
          h(
            'div',
            { class: 'buttons' },
            button('rollback', `btn-route-rollback-${route.name}`, () => act({ title: `Roll back ${route.name}`, path: `/admin/v1/routes/${enc}/rollback` }), 'danger'),
            button('promote…', `btn-route-promote-${route.name}`, () => act({ title: `Promote a release on ${route.name}`, path: `/admin/v1/routes/${enc}/promote`, fields: [{ name: 'release', options: ids }] })),
            button('kill switch…', `btn-kill-${route.name}`, () => act({ title: `Kill switch on ${route.name}`, path: '/admin/v1/kill/route', body: { route: route.name }, fields: [{ name: 'mode', label: 'mode', options: ['block', 'fallback', 'static'] }] }), 'danger'),
          ),
          h('h3', {}, 'Release diff'),
          h(
            'div',
            { class: 'buttons' },
            a,
            ' → ',
            b,
            h('button', {
              testid: `diff-button-${route.name}`,
              onclick: async () => {
                const d = await api('GET', `/admin/v1/releases/${encodeURIComponent(a.value)}/diff/${encodeURIComponent(b.value)}`);
                diffOut.textContent = d.ok ? d.json.diff : d.status === 404 && !d.json?.error ? 'not available' : d.error;
              },
            }, 'diff'),
          ),
          diffOut,
          h('h3', {}, 'History'),
          table(route.history, { testid: `history-${route.name}` }),
          h('h3', {}, 'Releases'),
          table((rels.json?.releases || []).map((x) => ({ id: x.id, created_at: x.created_at, created_by: x.created_by, parent: x.parent, eval_pass_id: x.eval_pass_id, model: x.tuple?.model }))),
        ),
      );
    }
    return out.length ? out : h('p', { class: 'muted' }, 'No routes with releases.');
  },

  async evals() {
    const rels = await api('GET', '/admin/v1/releases');
    if (!rels.ok) return unavailable('Evals', rels);
    const out = [h('h2', {}, 'Eval runs behind each release')];
    for (const rel of rels.json.releases || []) {
      const ev = await api('GET', `/admin/v1/evals?release=${encodeURIComponent(rel.id)}`);
      out.push(h('section', { class: 'card' }, h('h3', {}, `${rel.id} (${rel.route})`), ev.ok ? table(ev.json.eval_runs) : h('p', { class: 'muted' }, ev.status === 404 ? 'not available' : ev.error)));
    }
    return out;
  },

  async upstreams() {
    const r = await api('GET', '/admin/v1/upstreams');
    if (!r.ok) return unavailable('Upstreams', r);
    const ups = (r.json.upstreams || []).map((u) => ({ ...u, state: h('span', { class: `badge ${u.state}` }, u.state) }));
    return [h('h2', {}, 'Upstreams and breakers'), table(ups, { testid: 'upstreams' }), h('h2', {}, 'Pools'), table(r.json.pools), h('h2', {}, 'Retry budget'), h('pre', {}, JSON.stringify(r.json.retry_budget ?? null, null, 1))];
  },

  async tenants() {
    const r = await api('GET', '/admin/v1/tenants');
    if (!r.ok) return unavailable('Tenants', r);
    const rows = [...(r.json.tenants || r.json.data || []), ...(r.json.file_tenants || [])].map((t) => {
      const u = t.usage || {};
      const util = (x) => (x && x.limit ? `${fmt(100 * (1 - x.remaining / x.limit), 3)}% of ${fmt(x.limit)}` : '–');
      return { name: t.name, source: t.source, in_flight: u.in_flight, requests: util(u.requests), tokens: util(u.tokens), spend_usd: u.spend_usd, budget_usd: u.budget_usd };
    });
    return [h('h2', {}, "Tenants' limit utilization"), table(rows, { testid: 'tenants' })];
  },

  async flags() {
    const [f, k] = await Promise.all([api('GET', '/admin/v1/flags'), api('GET', '/admin/v1/kill')]);
    const out = [];
    if (k.ok) {
      const kills = (k.json.kills || []).map((x) => ({
        ...x,
        on: x.on ? h('span', { class: 'badge fail' }, 'ON') : 'off',
        action: x.on ? button('clear', `btn-clear-${x.key}`, () => act({ title: `Clear kill switch ${x.key}`, path: '/admin/v1/kill/clear', body: { key: x.key } })) : '',
      }));
      out.push(h('h2', {}, 'Kill switches'), table(kills, { testid: 'kills' }));
    } else out.push(unavailable('Kill switches', k));
    if (f.ok) out.push(h('h2', {}, 'Flags'), table(f.json.flags || f.json.data || [], { testid: 'flags' }));
    else out.push(unavailable('Flags', f));
    return out;
  },

  async alarms() {
    const r = await api('GET', '/admin/v1/alarms');
    if (!r.ok) return unavailable('Alarms', r);
    const list = r.json.alarms || r.json.data || (Array.isArray(r.json) ? r.json : []);
    return [h('h2', {}, 'Alarms'), table(list, { testid: 'alarms' })];
  },

  async timeline() {
    const r = await api('GET', '/admin/v1/timeline?since=24h');
    if (!r.ok) return unavailable('Timeline', r);
    const rows = (r.json.events || []).map((e) => ({ time: time(e.t_ms), kind: e.kind, route: e.route, summary: e.summary, detail: e.detail }));
    return [h('h2', {}, 'Incident timeline (last 24 h)'), table(rows, { testid: 'timeline' })];
  },

  async spend() {
    const r = await api('GET', '/admin/v1/spend');
    if (!r.ok) return unavailable('Spend', r);
    const out = [h('h2', {}, 'Spend')];
    for (const [k, v] of Object.entries(r.json)) {
      out.push(h('h3', {}, k), Array.isArray(v) ? table(v) : h('pre', {}, JSON.stringify(v, null, 1)));
    }
    return out;
  },

  async audit() {
    const r = await api('GET', '/admin/v1/audit?limit=200');
    if (!r.ok) return unavailable('Audit', r);
    return [h('h2', {}, 'Audit log'), table(r.json.audit, { testid: 'audit' })];
  },
};

// ------------------------------------------------------------------ start

(async () => {
  if (!state.token) return renderLogin('');
  const r = await api('GET', '/admin/v1/whoami');
  if (!r.ok) return logout(r.status === 401 ? '' : r.error);
  state.who = r.json;
  renderShell();
})();
