/**
 * Part of the dashboard's script: the three pages (queues, task list, task) and the router that
 * picks one from the URL.
 */
export const PAGES_SCRIPT = String.raw`// ---- queues: counts per state, oldest pending, throughput and lag over the last hour
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
    // The browser reconnects by itself after a dropped stream; a refused one (the guard) it gives up.
    var mine = source;
    source.addEventListener('error', function () {
      if (mine.readyState === 2 && source === mine) { source = null; render(); }
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
      d.children.length ? [tree(d.children), h('a', { href: base + '/tasks?parent=' + enc(t.taskId) }, 'All children in the task list')] : h('p', { class: 'muted' }, 'None.'));
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

var rest = location.pathname.slice(base.length).replace(/\/+$/, '');
var m = /^\/tasks\/([^/]+)$/.exec(rest);
if (rest === '') queuesPage(); else if (rest === '/tasks') tasksPage(); else if (m) taskPage(decodeURIComponent(m[1])); else fail(new Error('no such page'));
`;
