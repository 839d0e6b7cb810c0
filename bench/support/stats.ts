/** Small statistics helpers: nearest-rank percentiles, medians and the spread of repeated runs. */

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export function median(values: number[]): number {
  const finite = values.filter((value) => Number.isFinite(value));
  if (finite.length === 0) return Number.NaN;
  const sorted = [...finite].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export interface Spread {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent: how noisy the repeated runs were. */
  spreadPct: number;
  values: number[];
}

export function spread(values: number[]): Spread {
  const finite = values.filter((value) => Number.isFinite(value));
  const med = median(finite);
  const min = finite.length ? Math.min(...finite) : Number.NaN;
  const max = finite.length ? Math.max(...finite) : Number.NaN;
  return { median: med, min, max, spreadPct: med ? ((max - min) / med) * 100 : Number.NaN, values };
}

/** Formats a number for the table: '-' when absent, thousands separated, a few significant digits. */
export function fmt(value: number | undefined | null, digits = 0): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '-';
  if (digits === 0) return Math.round(value).toLocaleString('en-US');
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A value with at most `significant` significant digits (for ms latencies and per-task costs). */
export function fmtSig(value: number | undefined | null, significant = 3): string {
  if (value === undefined || value === null || !Number.isFinite(value)) return '-';
  if (value === 0) return '0';
  const magnitude = Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.max(0, significant - 1 - magnitude);
  return value.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}
