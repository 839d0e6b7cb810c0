// Text for people: one line per value, control characters made visible, dates in UTC.

/** Characters a terminal would act on or that reorder text: shown as escapes, never sent raw. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` on one line, with control, bidi and line-breaking characters escaped (user data may hold any). */
export function oneLine(text: string): string {
  return text.replace(UNSAFE, (c) => (c === '\n' ? '\\n' : c === '\t' ? '\\t' : c === '\r' ? '\\r' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** At most `width` characters, the last one an ellipsis when cut. */
export function cut(text: string, width: number): string {
  const chars = [...text];
  if (chars.length <= width) return text;
  return width <= 0 ? '' : `${chars.slice(0, width - 1).join('')}…`;
}

/** A JSON value as one line of JSON (`undefined` as empty). */
export function json(value: unknown): string {
  if (value === undefined) return '';
  try {
    return oneLine(JSON.stringify(value) ?? '');
  } catch {
    return '(not JSON)';
  }
}

/** `2026-12-07 00:43:33Z`; '-' for none. */
export function time(date: Date | null | undefined): string {
  return date ? `${date.toISOString().slice(0, 19).replace('T', ' ')}Z` : '-';
}

/** `12-07 00:43:33` (UTC, for table cells); '-' for none. */
export function shortTime(date: Date | null | undefined): string {
  return date ? date.toISOString().slice(5, 19).replace('T', ' ') : '-';
}

/** `850ms`, `12s`, `3m12s`, `2h05m`, `3d04h`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d${String(Math.floor(s / 3600) % 24).padStart(2, '0')}h`;
}
