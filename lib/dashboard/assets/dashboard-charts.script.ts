/**
 * Part of the dashboard's script: the SVG pictures, the queue page's throughput and lag chart and
 * a task's timeline.
 */
export const CHARTS_SCRIPT = String.raw`function chart(data) {
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

`;
