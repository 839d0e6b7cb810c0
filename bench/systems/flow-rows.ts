/**
 * The `flow` scenario (issue 15): N no-op tasks drained under flow control, each system with what
 * it offers, beside its own unlimited drain of the same N (the ratio is printed under the table).
 * One settings object per mode, shared by every system that offers the mode, so that the rows
 * compare like with like; `flowRow` makes a system's row for one of them.
 */
import type { RowSpec } from './types.js';

/** The rows, one per mode (the same in every system that offers the mode). */
export const FLOW_ROWS = {
  unlimited: { mode: 'none' },
  priorities: { mode: 'priorities' },
  groups: { mode: 'groups', groups: 50, perGroup: 2 },
  global: { mode: 'global', limit: 100 },
  rateFree: { mode: 'rate', max: 1_000_000, perMs: 1000 },
  rate: { mode: 'rate', max: 1000, perMs: 1000 },
} as const;

/** The row variants printed in the table. */
export const FLOW_VARIANTS: Record<keyof typeof FLOW_ROWS, string> = {
  unlimited: 'unlimited',
  priorities: 'priorities 0..4',
  groups: '50 groups x 2 at once + priorities',
  global: 'global limit 100 + priorities',
  rateFree: 'rate limit not binding (1M/s)',
  rate: 'rate limit 1000/s',
};

/** The binding rate row lasts N / 1000 s: capped so that a full run stays short. */
const RATE_MAX_N = 10_000;

/**
 * A `flow` row of one mode with the system's worker settings; several: a tuning pass picks the
 * fastest (pg-boss's groups, whose batches never come back full, so its loops wait out their
 * polling interval at large batch sizes).
 */
export function flowRow(mode: keyof typeof FLOW_ROWS, ...workers: Record<string, number>[]): RowSpec {
  return {
    scenario: 'flow', variant: FLOW_VARIANTS[mode], candidates: workers.map((worker) => ({ ...worker, ...FLOW_ROWS[mode] })),
    ...(mode === 'rate' ? { maxN: RATE_MAX_N } : {}),
  };
}
