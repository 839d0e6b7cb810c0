/**
 * Part of the dashboard's script: the page's element builders (user data only ever becomes text
 * nodes and attribute values, never markup), the JSON client and the formats.
 */
export const DOM_SCRIPT = String.raw`var base = document.body.getAttribute('data-base');
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

`;
