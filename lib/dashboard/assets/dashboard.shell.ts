/** `&`, `<`, `>`, `"` and `'` as entities, for text and attribute values of the shell. */
function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The one HTML page of the dashboard: no data in it, only where it is mounted (`base`, the URL
 * path as the browser sees it, global prefix included); its script renders the page from the
 * JSON routes. Script and style are files of their own, so a strict Content-Security-Policy holds.
 */
export function renderShell(base: string): string {
  const b = escapeHtml(base);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Durable</title><link rel="icon" href="data:,"><link rel="stylesheet" href="${b}/assets/dashboard.css"></head>
<body data-base="${b}"><header><a class="brand" href="${b}">nestjs-durable</a><nav><a href="${b}">Queues</a><a href="${b}/tasks">Tasks</a></nav></header>
<main id="main"><p class="muted">Loading...</p><noscript>The dashboard needs JavaScript.</noscript></main>
<script src="${b}/assets/dashboard.js" defer></script></body></html>
`;
}

/** The path the page was requested at, less the page's own part: where the dashboard is mounted for this browser. */
export function mountedAt(url: string, route: string): string {
  const path = url.split('?')[0].replace(/\/+$/, '');
  const page = /\/tasks(\/[^/]+)?$/.exec(path);
  const base = page ? path.slice(0, page.index) : path;
  return base.endsWith(`/${route}`) || base === `/${route}` ? base : `/${route}`;
}
