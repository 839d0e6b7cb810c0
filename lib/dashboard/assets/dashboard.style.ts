/** The dashboard's stylesheet (served as `assets/dashboard.css`). */
export const DASHBOARD_STYLE = String.raw`
:root{--fg:#1d232b;--muted:#6a7380;--line:#e2e6eb;--bg:#f7f8fa;--accent:#2358c8;--ok:#1f8a4c;--bad:#c5312b;--warn:#b7791f;--run:#2d7fd3;--sleep:#7a5bc7}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:24px;align-items:center;padding:10px 24px;background:#1d232b}
header a{color:#dfe6ee;text-decoration:none}header .brand{font-weight:600;color:#fff}
nav{display:flex;gap:16px}
main{padding:16px 24px;max-width:1200px}
h1{font-size:20px;margin:8px 0}h2{font-size:15px;margin:22px 0 8px}
a{color:var(--accent)}
table.grid{border-collapse:collapse;background:#fff;border:1px solid var(--line);width:100%}
.grid th,.grid td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
.grid th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.grid td.t{white-space:nowrap}
.num{text-align:right!important;font-variant-numeric:tabular-nums}
.mono,pre,code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:#fff;border:1px solid var(--line);padding:8px;overflow:auto;max-height:320px;margin:0;white-space:pre-wrap;word-break:break-word}
pre.error{color:var(--bad)}
.muted{color:var(--muted)}.small{font-size:12px}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;font-size:12px;font-weight:600;color:#fff;background:var(--muted);vertical-align:middle}
.badge.running{background:var(--run)}.badge.completed{background:var(--ok)}.badge.failed{background:var(--bad)}
.badge.cancelled{background:#8a8f98}.badge.sleeping{background:var(--sleep)}.badge.pending{background:var(--warn)}
.live{margin-left:8px;font-size:12px;color:var(--ok);font-weight:600;vertical-align:middle}
.waiting{color:var(--warn)}
p.waiting{background:#fff8e6;border:1px solid #f0dca8;padding:6px 10px}
.error-text{color:var(--bad)}
form.filters{display:flex;gap:10px;flex-wrap:wrap;align-items:end;margin:8px 0 12px}
form.filters label{display:flex;flex-direction:column;font-size:12px;color:var(--muted)}
input,select,button{font:inherit;padding:4px 8px;border:1px solid #c9ced6;border-radius:4px;background:#fff}
button{cursor:pointer;background:var(--accent);color:#fff;border-color:var(--accent)}
button.danger{background:var(--bad);border-color:var(--bad)}button.small{padding:0 6px;font-size:12px;background:#fff;color:var(--fg);border-color:#c9ced6}
.actions{display:flex;gap:8px;margin:8px 0}
.pager{display:flex;gap:16px;margin:10px 0}
dl.kv{display:grid;grid-template-columns:120px 1fr;gap:4px 12px;margin:8px 0}dl.kv dt{color:var(--muted)}dl.kv dd{margin:0}
svg{background:#fff;border:1px solid var(--line);max-width:100%;height:auto;font-size:11px;font-family:system-ui,sans-serif}
svg text{fill:var(--muted)}svg .grid{stroke:var(--line)}
svg rect.rate{fill:#8fb3ea}svg polyline.lag{fill:none;stroke:var(--warn);stroke-width:2}
svg text.rate{fill:#3d6fc4}svg text.lag{fill:var(--warn)}
svg .lane text{fill:var(--fg)}
svg rect.bar{rx:2}svg .queued{fill:#e3e7ee}svg .run{fill:var(--run)}svg .run-failed{fill:var(--bad)}svg .run-completed{fill:var(--ok)}
svg .run-cancelled{fill:#8a8f98}svg .step{fill:#5aa2e6}svg .sleep{fill:#b9a6e8}svg .event,svg .wait{fill:#f3c76b}
svg .other{fill:#9aa5b4}svg .now{stroke:var(--bad);stroke-dasharray:3 3}
ul.tree{list-style:none;padding-left:18px;margin:4px 0}ul.tree li{margin:3px 0}
progress{vertical-align:middle;width:160px}td progress{width:80px}
`;
