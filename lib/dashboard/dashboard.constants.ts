export const DASHBOARD_OPTIONS = Symbol('DURABLE_DASHBOARD_OPTIONS');

/** The header every action (POST) must carry: a cross-site form cannot set it, and a cross-site fetch that sets it needs a CORS preflight. */
export const ACTION_HEADER = 'x-durable-dashboard';
