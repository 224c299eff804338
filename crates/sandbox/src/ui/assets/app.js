// The sandbox's web view: reads the control API once a second and draws it. Every value
// is placed with textContent (names and metadata are user input); the one piece of
// markup inserted, the timeline picture, is escaped by the sandbox.
'use strict';
(function () {
  const API = '/_sandbox';
  const POLL_MS = 1000;
  const TICK_MS = 200;
  // The last reading of the clock: virtual now at a real instant, and the clock's rate
  // (virtual ms per real ms; 0 on the manual clock), to count down between readings.
  let clock = null;
  let lastSvg = '';
  let timer = null;

  function $(id) { return document.getElementById(id); }

  function el(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null) continue;
      if (k === 'class') e.className = v;
      else if (k.startsWith('data-')) e.setAttribute(k, String(v));
      else e[k] = v;
    }
    for (const c of children || []) {
      e.append(c instanceof Node ? c : String(c === undefined || c === null ? '' : c));
    }
    return e;
  }

  function table(headers, rows, empty) {
    if (rows.length === 0) return el('p', { class: 'empty', textContent: empty });
    return el('table', {}, [
      el('thead', {}, [el('tr', {}, headers.map(function (h) { return el('th', { textContent: h }); }))]),
      el('tbody', {}, rows),
    ]);
  }

  function stateBadge(s) {
    return el('span', { class: 'state st-' + String(s).replace(/:/g, '-'), textContent: s });
  }

  function rateOf(mode) {
    if (mode === 'real') return 1;
    const m = /^fast:([0-9.]+)$/.exec(mode);
    return m ? Number(m[1]) : 0;
  }

  function virtualNow() {
    if (!clock) return 0;
    return clock.nowMs + (performance.now() - clock.at) * clock.rate;
  }

  function fmtLeft(ms) {
    if (ms <= 0) return 'due';
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const sec = s % 60;
    const pad = function (n) { return String(n).padStart(2, '0'); };
    if (h > 0) return h + 'h ' + pad(m) + 'm ' + pad(sec) + 's';
    if (m > 0) return m + 'm ' + pad(sec) + 's';
    return sec + 's';
  }

  function fmtTime(ms) {
    return ms === null || ms === undefined ? '' : new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
  }

  function countdown(deadlineMs, cls) {
    return el('span', { class: 'countdown ' + cls, 'data-deadline': deadlineMs, title: 'at ' + fmtTime(deadlineMs) });
  }

  function tick() {
    const now = virtualNow();
    $('now').textContent = clock ? fmtTime(now) : '…';
    for (const c of document.querySelectorAll('.countdown')) {
      const left = Number(c.getAttribute('data-deadline')) - now;
      c.textContent = fmtLeft(left);
      c.classList.toggle('soon', left < 30000);
    }
  }

  async function getJSON(path) {
    const r = await fetch(API + path, { cache: 'no-store' });
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
    return r.json();
  }

  async function getText(path) {
    const r = await fetch(API + path, { cache: 'no-store' });
    if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
    return r.text();
  }

  function regionsOf(state) {
    return Object.entries(state.regions || {});
  }

  function render(state, clk, faults, svg) {
    const multi = regionsOf(state).length > 1;
    const where = function (region, name) { return multi ? name + ' (' + region + ')' : name; };

    $('mode').textContent = clk.mode === 'manual' ? 'manual clock' : clk.mode + ' clock';
    $('advance').hidden = clk.mode !== 'manual';

    const actions = [];
    const instances = [];
    const groups = [];
    const activities = [];
    const queues = [];
    for (const [region, r] of regionsOf(state)) {
      for (const a of r.actions || []) {
        actions.push(el('tr', { 'data-token': a.token, 'data-instance': a.instance }, [
          el('td', { class: 'mono', textContent: a.instance }),
          el('td', { textContent: where(region, a.group) }),
          el('td', { textContent: a.hook }),
          el('td', { textContent: a.transition.replace('autoscaling:EC2_INSTANCE_', '') }),
          el('td', {}, [el('code', { textContent: a.token })]),
          el('td', { class: 'heartbeats', textContent: a.heartbeats }),
          el('td', {}, [countdown(a.heartbeat_deadline_ms, 'hb-left')]),
          el('td', {}, [countdown(a.global_deadline_ms, 'global-left')]),
          el('td', { textContent: a.default_result }),
        ]));
      }
      const sorted = (r.instances || []).slice().sort(function (x, y) {
        return (y.in_group - x.in_group) || x.group.localeCompare(y.group) || x.launched.localeCompare(y.launched);
      });
      for (const i of sorted) {
        instances.push(el('tr', { 'data-instance': i.id }, [
          el('td', { class: 'mono', textContent: i.id }),
          el('td', { textContent: where(region, i.group) }),
          el('td', { class: 'lifecycle-state', 'data-state': i.lifecycle_state }, [stateBadge(i.lifecycle_state)]),
          el('td', { textContent: i.health }),
          el('td', { textContent: i.az }),
          el('td', { textContent: i.protected ? 'yes' : '' }),
          el('td', { textContent: i.launched }),
        ]));
      }
      for (const g of r.groups || []) {
        const hooks = (g.hooks || []).map(function (h) {
          return el('div', {}, [
            el('strong', { textContent: h.name }), ' ',
            h.transition.replace('autoscaling:EC2_INSTANCE_', '').toLowerCase(),
            ', heartbeat ' + h.heartbeat_timeout + ' s, global ' + h.global_timeout + ' s, default ' + h.default_result,
            h.notification_target_arn ? el('div', { class: 'mono', textContent: '→ ' + h.notification_target_arn }) : '',
            h.notification_metadata ? el('div', { class: 'mono', textContent: 'metadata: ' + h.notification_metadata }) : '',
          ]);
        });
        groups.push(el('tr', { 'data-group': g.name }, [
          el('td', { textContent: where(region, g.name) }),
          el('td', { textContent: g.min + ' / ' + g.desired + ' / ' + g.max }),
          el('td', { textContent: g.counted }),
          el('td', {}, hooks.length ? hooks : ['none']),
        ]));
      }
      for (const a of r.recent_activities || []) {
        activities.push(el('tr', {}, [
          el('td', { class: 'mono', textContent: fmtTime(a.start_ms) }),
          el('td', { textContent: where(region, a.group) }),
          el('td', { textContent: a.status }),
          el('td', { textContent: a.description, title: a.cause + (a.message ? '\n' + a.message : '') }),
        ]));
      }
      for (const [name, q] of Object.entries(r.sqs || {})) {
        queues.push(el('tr', { 'data-queue': name }, [
          el('td', { textContent: where(region, name) }),
          el('td', { class: 'depth', textContent: q.visible }),
          el('td', { class: 'in-flight', textContent: q.in_flight }),
          el('td', { textContent: q.delayed }),
        ]));
      }
    }
    $('actions').replaceChildren(table(
      ['instance', 'group', 'hook', 'transition', 'token', 'heartbeats', 'heartbeat deadline in', 'global deadline in', 'default result'],
      actions, 'No instance is waiting on a hook.'));
    $('instances').replaceChildren(table(
      ['instance', 'group', 'lifecycle state', 'health', 'zone', 'protected', 'launched'], instances, 'No instance.'));
    $('groups').replaceChildren(table(
      ['group', 'min / desired / max', 'counted', 'hooks'], groups, 'No Auto Scaling group.'));
    $('activities').replaceChildren(table(
      ['started', 'group', 'status', 'description'], activities, 'No scaling activity yet.'));
    $('queues').replaceChildren(table(
      ['queue', 'visible', 'in flight', 'delayed'], queues, 'No queue.'));
    $('faults').replaceChildren(table(
      ['service', 'operation', 'kind', 'rate', 'count', 'hits'],
      (faults.rules || []).map(function (f) {
        return el('tr', {}, [
          el('td', { textContent: f.service || 'every service' }),
          el('td', { textContent: f.operation || 'every operation' }),
          el('td', { textContent: f.kind + (f.kind === 'latency' ? ' ' + f.latency_ms + ' ms' : '') + (f.status ? ' ' + f.status : '') }),
          el('td', { textContent: f.rate }),
          el('td', { textContent: f.count === null || f.count === undefined ? 'no limit' : f.count }),
          el('td', { textContent: f.hits }),
        ]);
      }), 'No fault injected.'));
    if (svg !== lastSvg) {
      // Escaped by the sandbox (ui/render.rs); parsed as SVG, so no script can run.
      const doc = new DOMParser().parseFromString(svg, 'image/svg+xml');
      const root = doc.documentElement;
      if (root && root.nodeName === 'svg') {
        $('timeline').replaceChildren(document.importNode(root, true));
        lastSvg = svg;
      }
    }
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const [state, clk, faults, svg] = await Promise.all([
        getJSON('/state'), getJSON('/clock'), getJSON('/faults'), getText('/timeline.svg'),
      ]);
      clock = { nowMs: clk.now_ms, at: performance.now(), rate: rateOf(clk.mode) };
      render(state, clk, faults, svg);
      tick();
      $('status').textContent = '';
    } catch (e) {
      // The sandbox stopped or is restarting: say so and keep trying (not a page error).
      $('status').textContent = 'cannot reach the sandbox (' + e.message + '); retrying';
    }
    timer = setTimeout(refresh, POLL_MS);
  }

  for (const b of document.querySelectorAll('#advance button')) {
    b.addEventListener('click', async function () {
      const seconds = Number(b.getAttribute('data-seconds'));
      try {
        const r = await fetch(API + '/clock/advance', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ seconds: seconds }),
        });
        if (!r.ok) throw new Error('HTTP ' + r.status);
      } catch (e) {
        $('status').textContent = 'could not advance the clock: ' + e.message;
      }
      refresh();
    });
  }
  setInterval(tick, TICK_MS);
  refresh();
})();
