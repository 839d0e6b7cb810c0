// Server URLs go into logs and reports: without their password (the package's own helper).
export { redactUrl } from '../lib/engine/support/redact.js';
