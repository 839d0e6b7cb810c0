import { CHARTS_SCRIPT } from './dashboard-charts.script.js';
import { DOM_SCRIPT } from './dashboard-dom.script.js';
import { PAGES_SCRIPT } from './dashboard-pages.script.js';

/**
 * The dashboard's script (served as `assets/dashboard.js`), one file made of three parts that
 * share one scope: it renders each page from the JSON routes. User data (params, results,
 * errors, names, event payloads) only ever reaches the page as text nodes and attribute values
 * set through the DOM, never as markup.
 */
export const DASHBOARD_SCRIPT = `(function () {
'use strict';
${DOM_SCRIPT}
${CHARTS_SCRIPT}
${PAGES_SCRIPT}
})();
`;
