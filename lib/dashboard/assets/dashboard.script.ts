/**
 * The dashboard's script (served as `assets/dashboard.js`): renders each page from the JSON
 * routes. User data (params, results, errors, names, event payloads) only ever reaches the page
 * as text nodes and attribute values set through the DOM, never as markup.
 */
export const DASHBOARD_SCRIPT = String.raw`(function () {
'use strict';
var base = document.body.getAttribute('data-base');
var main = document.getElementById('main');
var STATES = ['pending', 'running', 'sleeping', 'completed', 'failed', 'cancelled'];
var ACTIVE = ['pending', 'running', 'sleeping'];
var SVGNS = 'http://www.w3.org/2000/svg';

function build(node, attrs, kids) {
  Object.keys(attrs || {}).forEach(function (k) {
    var v = attrs[k];
    if (v === null || v === undefined || v === false) return;
    if (k.slice(0, 2) === 'on') node.addEventListener(k.slice(2), v); else node.setAttribute(k, String(v));
  });
  add(node, kids);
  return node;
}
function add(node, kids) {
  kids.forEach(function (k) {
    if (k === null || k === undefined || k === false) return;
    if (Array.isArray(k)) add(node, k); else node.append(k instanceof Node ? k : String(k));
  });
}
function h(tag, attrs) { return build(document.createElement(tag), attrs, [].slice.call(arguments, 2)); }
function s(tag, attrs) { return build(document.createElementNS(SVGNS, tag), attrs, [].slice.call(arguments, 2)); }
var enc = encodeURIComponent;

function api(path, init) {
  return fetch(base + '/api' + path, Object.assign({ headers: { accept: 'application/json' }, credentials: 'same-origin' }, init))
    .then(function (res) {
      return res.json().catch(function () { return null; }).then(function (body) {
        if (!res.ok) throw new Error((body && body.message ? [].concat(body.message).join('; ') : '') || res.status + ' ' + res.statusText);
        return body;
      });
    });
}
function fill() { main.replaceChildren(); add(main, [].slice.call(arguments)); }
function fail(error) { fill(h('p', { class: 'error-text', id: 'failure' }, 'Error: ' + (error && error.message || error))); }
function json(v) { return v === undefined ? '(none)' : JSON.stringify(v, null, 2); }
function time(iso) { return iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 23) + 'Z' : '-'; }
function dur(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return Math.round(ms) + ' ms';
  if (ms < 60000) return (ms / 1000).toFixed(1) + ' s';
  if (ms < 3600000) return (ms / 60000).toFixed(1) + ' min';
  return (ms / 3600000).toFixed(1) + ' h';
}
function badge(state) { return h('span', { class: 'badge ' + state }, state); }
function taskLink(id, text) { return h('a', { href: base + '/tasks/' + enc(id), class: 'mono', title: id }, text || id); }
function nice(v) { var p = Math.pow(10, Math.floor(Math.log10(v))); return [1, 2, 5, 10].map(function (k) { return k * p; }).filter(function (n) { return n >= v; })[0]; }
function table(headers, rows, attrs) {
  return h('table', Object.assign({ class: 'grid' }, attrs || {}),
    h('thead', null, h('tr', null, headers.map(function (x) { return h('th', { class: x[1] || null }, x[0]); }))),
    h('tbody', null, rows));
}

// ---- queues: counts per state, oldest pending, throughput and lag over the last hour
function queuesPage() {
  document.title = 'Queues - Durable';
  function render() {
    return api('/queues').then(function (data) {
      fill(
        h('h1', null, 'Queues'),
        data.queues.length === 0 ? h('p', { class: 'muted' }, 'No queues yet.') :
          table([['Queue']].concat(STATES.map(function (x) { return [x, 'num']; }), [['Oldest pending', 'num']]),
            data.queues.map(function (q) {
              var at = base + '/tasks?queue=' + enc(q.queue);
              return h('tr', { 'data-queue': q.queue }, h('td', null, h('a', { href: at }, q.queue)),
                STATES.map(function (x) { return h('td', { class: 'num' }, q[x] ? h('a', { href: at + '&state=' + x }, q[x]) : '0'); }),
                h('td', { class: 'num' }, dur(q.oldestPendingAgeMs)));
            }), { id: 'queues' }),
        h('h2', null, 'Throughput and lag, last hour'),
        chart(data),
        h('p', { class: 'muted small' }, 'Bars: tasks finished per minute, all queues. Line: the oldest due pending task\'s wait (lag), the largest of the queues. ' +
          'Sampled every ' + dur(data.sampleIntervalMs) + ' by this server process, since it started.'));
    });
  }
  render().catch(fail);
  setInterval(function () { render().catch(function () {}); }, 5000);
}

function chart(data) {
  var W = 760, H = 200, L = 70, R = 64, T = 14, B = 26;
  // The last hour, or as much of it as this process has sampled (at least a minute).
  var now = Date.parse(data.now), ss = data.samples;
  var window_ = Math.min(3600000, Math.max(60000, ss.length ? now - ss[0].at : 0)), from = now - window_;
  var x = function (t) { return L + (t - from) / window_ * (W - L - R); };
  var pts = [];
  for (var i = 1; i < ss.length; i++) {
    var a = ss[i - 1], b = ss[i], done = 0, lag = 0;
    Object.keys(b.queues).forEach(function (q) {
      if (a.queues[q]) done += Math.max(0, b.queues[q].finished - a.queues[q].finished);
      lag = Math.max(lag, b.queues[q].lagMs);
    });
    if (b.at >= from) pts.push({ t: b.at, rate: done / ((b.at - a.at) / 60000), lag: lag, dt: b.at - a.at });
  }
  var maxRate = nice(Math.max.apply(null, [1].concat(pts.map(function (p) { return p.rate; }))));
  var maxLag = nice(Math.max.apply(null, [1000].concat(pts.map(function (p) { return p.lag; }))));
  var y0 = H - B, span = H - B - T;
  var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, id: 'throughput', role: 'img', 'aria-label': 'throughput and lag over the last hour' });
  for (var m = 0; m <= 4; m++) {
    var gx = x(from + m * window_ / 4);
    svg.append(s('line', { x1: gx, x2: gx, y1: T, y2: y0, class: 'grid' }), s('text', { x: gx, y: y0 + 16, 'text-anchor': 'middle' }, m === 4 ? 'now' : '-' + dur(window_ * (4 - m) / 4)));
  }
  svg.append(s('line', { x1: L, x2: W - R, y1: y0, y2: y0, class: 'grid' }), s('line', { x1: L, x2: W - R, y1: T, y2: T, class: 'grid' }),
    s('text', { x: L - 6, y: T + 4, 'text-anchor': 'end', class: 'rate' }, maxRate + '/min'),
    s('text', { x: L - 6, y: y0, 'text-anchor': 'end', class: 'rate' }, '0'),
    s('text', { x: W - R + 6, y: T + 4, class: 'lag' }, 'lag ' + dur(maxLag)),
    s('text', { x: W - R + 6, y: y0, class: 'lag' }, '0'));
  pts.forEach(function (p) {
    var bw = Math.max(1, p.dt / window_ * (W - L - R) - 1), hgt = p.rate / maxRate * span;
    if (hgt > 0) svg.append(s('rect', { x: x(p.t) - bw, y: y0 - hgt, width: bw, height: hgt, class: 'rate' }, s('title', null, p.rate.toFixed(1) + ' tasks/min at ' + time(new Date(p.t).toISOString()))));
  });
  if (pts.length > 0) {
    svg.append(s('polyline', { class: 'lag', points: pts.map(function (p) { return x(p.t).toFixed(1) + ',' + (y0 - p.lag / maxLag * span).toFixed(1); }).join(' ') }));
  } else {
    svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle' }, 'Collecting samples: the chart starts with the second one.'));
  }
  return svg;
}

// ---- the task list: filters and keyset paging
function tasksPage() {
  document.title = 'Tasks - Durable';
  var q = new URLSearchParams(location.search);
  var filters = new URLSearchParams();
  ['queue', 'state', 'name', 'parent'].forEach(function (k) { if (q.get(k)) filters.set(k, q.get(k)); });
  var cursor = q.get('cursor');
  var listed = '/tasks?' + filters + (cursor ? '&cursor=' + enc(cursor) : '');
  Promise.all([api(listed), api('/queues')]).then(function (r) {
    var page = r[0], queues = r[1].queues.map(function (x) { return x.queue; });
    var field = function (label, input) { return h('label', null, label, input); };
    var select = function (name, values) {
      return h('select', { name: name }, h('option', { value: '' }, 'any'), values.map(function (v) { return h('option', { value: v, selected: q.get(name) === v }, v); }));
    };
    fill(
      h('h1', null, 'Tasks'),
      h('form', { class: 'filters', method: 'get', action: base + '/tasks' },
        field('Queue', select('queue', queues)), field('State', select('state', STATES)),
        field('Name', h('input', { name: 'name', value: q.get('name') || '', size: 16 })),
        field('Parent task', h('input', { name: 'parent', value: q.get('parent') || '', size: 36, class: 'mono' })),
        h('button', { type: 'submit' }, 'Filter'), h('a', { href: base + '/tasks' }, 'Clear')),
      page.tasks.length === 0 ? h('p', { class: 'muted' }, 'No tasks.') :
        table([['Task'], ['Name'], ['Queue'], ['State'], ['Attempt', 'num'], ['Created'], ['Updated'], ['Waiting for / progress']],
          page.tasks.map(function (t) {
            return h('tr', { 'data-task': t.taskId },
              h('td', null, taskLink(t.taskId, t.taskId.slice(0, 8))), h('td', null, t.name), h('td', null, t.queue),
              h('td', null, badge(t.state)), h('td', { class: 'num' }, t.attempts), h('td', { class: 't' }, time(t.createdAt)), h('td', { class: 't' }, time(t.updatedAt)),
              h('td', null, t.waitingFor ? h('span', { class: 'waiting' }, t.waitingFor.message) : progressBar(t.progress)));
          }), { id: 'tasks' }),
      h('div', { class: 'pager' }, cursor ? h('a', { href: base + '/tasks?' + filters }, 'First page') : null,
        page.nextCursor ? h('a', { id: 'next', href: base + '/tasks?' + filters + (String(filters) ? '&' : '') + 'cursor=' + enc(page.nextCursor) }, 'Next page') : null));
  }).catch(fail);
}

function fraction(p) {
  if (typeof p === 'number' && p >= 0 && p <= 1) return p;
  if (p && typeof p === 'object' && typeof p.total === 'number' && p.total > 0) {
    var done = [p.done, p.current, p.completed].filter(function (v) { return typeof v === 'number'; })[0];
    if (done !== undefined) return Math.min(1, Math.max(0, done / p.total));
  }
  return null;
}
function progressBar(p) { var f = fraction(p); return [f !== null ? h('progress', { max: 1, value: f }) : null, ' ', progressText(p)]; }
function progressText(p) { return p === null || p === undefined ? '' : h('span', { class: 'mono' }, JSON.stringify(p).slice(0, 120)); }

// ---- a task: detail, timeline, live updates, actions
function taskPage(id) {
  document.title = 'Task ' + id + ' - Durable';
  var detail = null, source = null, timer = null;
  function load() { return api('/tasks/' + enc(id)).then(function (d) { detail = d; follow(); render(); }); }
  function reload() { clearTimeout(timer); timer = setTimeout(function () { load().catch(fail); }, 80); }
  function follow() {
    if (ACTIVE.indexOf(detail.task.state) < 0 || source) return;
    source = new EventSource(base + '/api/tasks/' + enc(id) + '/watch');
    source.addEventListener('task', function (e) {
      var t = JSON.parse(e.data);
      if (ACTIVE.indexOf(t.state) < 0) { source.close(); source = null; }
      reload();
    });
  }
  function act(what, question) {
    if (!window.confirm(question)) return;
    api('/tasks/' + enc(id) + '/' + what, { method: 'POST', headers: { accept: 'application/json', 'x-durable-dashboard': '1' } })
      .then(load).catch(function (e) { window.alert(what + ' failed: ' + e.message); });
  }
  function render() {
    var d = detail, t = d.task;
    var buttons = [];
    if (t.state === 'failed' || t.state === 'cancelled') buttons.push(h('button', { id: 'retry', onclick: function () { act('retry', 'Retry task ' + t.name + ' (' + t.taskId + ')? It starts attempt ' + (t.attempts + 1) + '; its checkpoints are kept.'); } }, 'Retry'));
    if (ACTIVE.indexOf(t.state) >= 0) buttons.push(h('button', { id: 'cancel', class: 'danger', onclick: function () { act('cancel', 'Cancel task ' + t.name + ' (' + t.taskId + ')? Running code stops at its next step.'); } }, 'Cancel'));
    var events = d.checkpoints.filter(function (c) { return c.kind === 'event' || c.kind === 'emit'; });
    fill(
      h('p', { class: 'small' }, h('a', { href: base + '/tasks?queue=' + enc(t.queue) }, 'queue ' + t.queue), ' / ', h('a', { href: base + '/tasks?name=' + enc(t.name) + '&queue=' + enc(t.queue) }, t.name)),
      h('h1', null, t.name, ' ', h('span', { id: 'state' }, badge(t.state)), source ? h('span', { class: 'live', title: 'updates live' }, '\u25cf live') : null),
      h('div', { class: 'mono muted' }, t.taskId),
      buttons.length ? h('div', { class: 'actions' }, buttons) : null,
      t.waitingFor ? h('p', { class: 'waiting', id: 'waiting' }, 'Waiting for: ' + t.waitingFor.message) : null,
      h('dl', { class: 'kv' },
        h('dt', null, 'Queue'), h('dd', null, t.queue), h('dt', null, 'Attempt'), h('dd', null, t.attempts),
        h('dt', null, 'Created'), h('dd', null, time(t.createdAt)), h('dt', null, 'Updated'), h('dd', null, time(t.updatedAt)),
        h('dt', null, 'Parent'), h('dd', null, t.parentTaskId ? taskLink(t.parentTaskId) : '-'),
        h('dt', null, 'Progress'), h('dd', { id: 'progress' }, t.progress === null || t.progress === undefined ? '-' : progressBar(t.progress))),
      h('h2', null, 'Timeline'), timeline(d),
      h('h2', null, 'Params'), h('pre', { id: 'params' }, json(t.params)),
      t.state === 'completed' ? [h('h2', null, 'Result'), h('pre', { id: 'result' }, json(t.result))] : null,
      t.error ? [h('h2', null, t.state === 'failed' || t.state === 'cancelled' ? 'Error' : 'Last error'),
        h('pre', { class: 'error', id: 'error' }, t.error.stack || (t.error.name + ': ' + t.error.message))] : null,
      Object.keys(t.headers || {}).length ? [h('h2', null, 'Headers'), h('pre', null, json(t.headers))] : null,
      h('h2', null, 'Runs (' + d.runs.length + ')'),
      table([['#', 'num'], ['State'], ['Worker'], ['Created'], ['Started'], ['Finished'], ['Claims', 'num'], ['Error']], d.runs.map(function (r) {
        return h('tr', null, h('td', { class: 'num' }, r.attempt), h('td', null, badge(r.state)), h('td', { class: 'mono' }, r.workerId || '-'),
          h('td', null, time(r.createdAt)), h('td', null, time(r.startedAt)), h('td', null, time(r.finishedAt)), h('td', { class: 'num' }, r.claims),
          h('td', { class: 'error-text' }, r.error ? r.error.name + ': ' + r.error.message : ''));
      }), { id: 'runs' }),
      h('h2', null, 'Steps and checkpoints, in order (' + d.checkpoints.length + ')'),
      d.checkpoints.length === 0 ? h('p', { class: 'muted' }, 'None yet.') :
        table([['#', 'num'], ['Kind'], ['Name'], ['Attempt', 'num'], ['At'], ['Value']], d.checkpoints.map(function (c, i) {
          return h('tr', null, h('td', { class: 'num' }, i + 1), h('td', null, c.kind), h('td', { class: 'mono' }, c.name), h('td', { class: 'num' }, c.attempt),
            h('td', null, time(c.createdAt)), h('td', null, h('pre', null, c.value === undefined ? '(undefined)' : JSON.stringify(c.value))));
        }), { id: 'checkpoints' }),
      h('h2', null, 'Events (' + d.eventWaits.length + ' waiting, ' + events.length + ' done)'),
      h('ul', { id: 'events' }, d.eventWaits.map(function (w) {
        return h('li', null, 'waits for ', h('b', null, w.eventName), ' on queue ' + w.queue + (w.timeoutAt ? ', times out ' + time(w.timeoutAt) : ', no timeout') +
          (w.emittedAt ? ', emitted ' + time(w.emittedAt) + ' (resumes at the next claim)' : ''));
      }), events.map(function (c) {
        var v = c.value || {};
        return h('li', null, h('span', { class: 'mono' }, c.name), ': ', c.kind === 'emit' ? 'emitted' : v.timedOut ? 'timed out' : ['received ', h('code', null, JSON.stringify(v.payload))]);
      })),
      h('h2', null, 'Children (' + d.childCount + (d.childCount > d.children.length ? ', first ' + d.children.length + ' shown' : '') + ')'),
      d.children.length ? tree(d.children) : h('p', { class: 'muted' }, 'None.'));
  }
  load().catch(fail);
}

function tree(children) {
  return h('ul', { class: 'tree' }, children.map(function (c) {
    var li = h('li', null);
    var open = h('button', { class: 'small', title: 'show its children', onclick: function () {
      open.disabled = true;
      api('/tasks?parent=' + enc(c.taskId)).then(function (page) {
        li.append(page.tasks.length ? tree(page.tasks) : h('div', { class: 'muted small' }, 'no children'));
      }).catch(function (e) { li.append(h('div', { class: 'error-text' }, e.message)); });
    } }, '+');
    add(li, [open, ' ', taskLink(c.taskId, c.taskId.slice(0, 8)), ' ', badge(c.state), ' ', c.name, h('span', { class: 'muted' }, ' (queue ' + c.queue + ', attempt ' + (c.attempts) + ')')]);
    return li;
  }));
}

// The runs, steps, sleeps and waits of a task on one time axis. A step's bar runs from the
// previous checkpoint of its attempt (or the attempt's start) to its commit; a sleep's from its
// start to its wake time; a live event wait from its start to its timeout (or now).
function timeline(d) {
  var now = Date.now(), T = function (v) { return v ? Date.parse(v) : null; };
  var lanes = [], starts = {}, marks = {};
  d.runs.forEach(function (r) {
    var started = T(r.startedAt), end = T(r.finishedAt) || now;
    starts[r.attempt] = started;
    var bars = [{ cls: 'queued', from: T(r.createdAt), to: started || end, tip: 'attempt ' + r.attempt + ' waiting to start' }];
    if (started) bars.push({ cls: r.state === 'completed' || r.state === 'failed' || r.state === 'cancelled' ? 'run-' + r.state : 'run', from: started, to: end,
      tip: 'attempt ' + r.attempt + ' ' + r.state + (r.workerId ? ' on ' + r.workerId : '') + (r.error ? ': ' + r.error.message : '') });
    lanes.push({ label: 'attempt ' + r.attempt, bars: bars });
  });
  var shown = d.checkpoints.slice(0, 40);
  shown.forEach(function (c) {
    var at = T(c.createdAt), prev = marks[c.attempt] || starts[c.attempt] || at;
    if (c.kind === 'sleep' && c.value && c.value.wakeAt) {
      var wake = T(c.value.wakeAt);
      lanes.push({ label: c.name, bars: [{ cls: 'sleep', from: at, to: Math.max(at, Math.min(wake, now)), tip: 'sleep until ' + time(c.value.wakeAt) }] });
      marks[c.attempt] = Math.max(at, wake);
    } else {
      var cls = c.kind === 'step' ? 'step' : c.kind === 'event' || c.kind === 'join' ? 'event' : 'other';
      lanes.push({ label: c.name, bars: [{ cls: cls, from: Math.min(prev, at), to: at, tip: c.name + ' committed ' + time(c.createdAt) + ' (attempt ' + c.attempt + ')' }] });
      marks[c.attempt] = at;
    }
  });
  d.eventWaits.forEach(function (w) {
    lanes.push({ label: 'wait ' + w.eventName, bars: [{ cls: 'wait', from: T(w.createdAt), to: T(w.emittedAt) || now, tip: 'waiting for event ' + w.eventName + (w.timeoutAt ? ', times out ' + time(w.timeoutAt) : '') }] });
  });
  var all = [];
  lanes.forEach(function (l) { l.bars.forEach(function (b) { all.push(b.from, b.to); }); });
  if (all.length === 0) return h('p', { class: 'muted' }, 'Nothing yet.');
  var t0 = Math.min.apply(null, all), t1 = Math.max.apply(null, all), range = Math.max(1, t1 - t0);
  var W = 900, L = 170, R = 20, LH = 20, top = 22, H = top + lanes.length * LH + 8;
  var x = function (t) { return L + (t - t0) / range * (W - L - R); };
  var svg = s('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, id: 'timeline', role: 'img', 'aria-label': 'timeline of the task' },
    s('text', { x: 6, y: 12 }, 'from ' + time(new Date(t0).toISOString()).slice(11)));
  for (var i = 0; i <= 4; i++) {
    var gx = L + i / 4 * (W - L - R);
    svg.append(s('line', { x1: gx, x2: gx, y1: top - 4, y2: H - 4, class: 'grid' }), s('text', { x: gx, y: 12, 'text-anchor': i === 4 ? 'end' : 'middle' }, i === 0 ? '0' : '+' + dur(range * i / 4)));
  }
  lanes.forEach(function (l, n) {
    var y = top + n * LH;
    var g = s('g', { class: 'lane' }, s('text', { x: 6, y: y + 13 }, l.label.length > 26 ? l.label.slice(0, 25) + '\u2026' : l.label));
    l.bars.forEach(function (b) {
      g.append(s('rect', { class: 'bar ' + b.cls, x: x(b.from), y: y + 3, width: Math.max(2, x(b.to) - x(b.from)), height: LH - 6 }, s('title', null, b.tip + ' (' + dur(b.to - b.from) + ')')));
    });
    svg.append(g);
  });
  if (d.checkpoints.length > shown.length) svg.append(s('text', { x: W - R, y: H - 2, 'text-anchor': 'end' }, (d.checkpoints.length - shown.length) + ' more checkpoints not drawn'));
  return svg;
}

var rest = location.pathname.slice(base.length).replace(/\/+$/, '');
var m = /^\/tasks\/([^/]+)$/.exec(rest);
if (rest === '') queuesPage(); else if (rest === '/tasks') tasksPage(); else if (m) taskPage(decodeURIComponent(m[1])); else fail(new Error('no such page'));
})();
`;
