import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Everything the sample app reads from the environment. */
export interface SampleConfig {
  /** `PORT`. @default 3000 */
  port: number;
  /** `DURABLE_DATABASE_URL`; when unset, an embedded PostgreSQL is started. */
  databaseUrl?: string;
  /** `SAMPLE_DATA_DIR`: where the embedded PostgreSQL keeps its data. @default sample-app/data */
  dataDir: string;
  /** `ORDER_PACK_TIMEOUT_MS`: how long an order waits to be packed before it is refunded. @default 300000 */
  packTimeoutMs: number;
  /** `ORDER_CONFIRM_DELAY_MS`: the pause between packing and the confirmation email. @default 5000 */
  confirmDelayMs: number;
  /** `FAIL_FIRST_PAYMENT=1`: the first attempt of every payment step fails. @default false */
  failFirstPayment: boolean;
}

/** A problem with the setup that the user fixes (a variable, a folder): its message says how. */
export class SetupError extends Error {
  override readonly name = 'SetupError';
}

/** `sample-app/data`, whether this file runs from `src/` (tests) or `dist/` (npm start). */
const DEFAULT_DATA_DIR = fileURLToPath(new URL('../data', import.meta.url));

/** Reads and checks the configuration; a bad value is an error naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): SampleConfig {
  const databaseUrl = env.DURABLE_DATABASE_URL?.trim();
  return {
    port: integer(env, 'PORT', 3000, 0, 65535),
    databaseUrl: databaseUrl ? databaseUrl : undefined,
    dataDir: env.SAMPLE_DATA_DIR ? resolve(env.SAMPLE_DATA_DIR) : DEFAULT_DATA_DIR,
    packTimeoutMs: integer(env, 'ORDER_PACK_TIMEOUT_MS', 300_000, 1, 2 ** 31 - 1),
    confirmDelayMs: integer(env, 'ORDER_CONFIRM_DELAY_MS', 5_000, 0, 2 ** 31 - 1),
    failFirstPayment: flag(env, 'FAIL_FIRST_PAYMENT'),
  };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new SetupError(`${name} must be a whole number from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function flag(env: NodeJS.ProcessEnv, name: string): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (!raw || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw new SetupError(`${name} must be 1 or 0 (or true or false), got "${env[name]}"`);
}
