import type { Pool, QueryConfig } from 'pg';
import type { EntityManager } from 'typeorm';
import { translateDatabaseError } from './database-errors.js';
import { timerMs } from '../support/wakeable.js';
import { buildStatements, type Statement, type Statements } from '../sql/statements.js';

export type Row = Record<string, unknown>;

/** How long durable's statements may take, from the `queryTimeoutMs` option. */
export interface StoreTimeouts {
  /** `statement_timeout` of durable's own connections: the server cancels (rolls back) a longer statement. */
  statementMs: number;
  /** `lock_timeout` of durable's own connections: a wait for another transaction's lock, half as long. */
  lockMs: number;
  /**
   * When the client gives up on a server that has not answered at all (OutcomeUnknownError):
   * later than the server's own timeout, so that a timeout the server reported is never taken
   * for a silence.
   */
  backstopMs: number;
}

/** Postgres takes timeouts in whole milliseconds up to 2^31-1; 0 would mean "none". */
const serverMs = (ms: number) => Math.min(Math.max(1, Math.round(ms)), 2 ** 31 - 1);

export function timeoutsFor(queryTimeoutMs: number): StoreTimeouts {
  // Room for the server's own answer to a timeout to arrive: a tenth, at least 1 s, at most 5 s.
  const margin = Math.min(Math.max(queryTimeoutMs / 10, 1000), 5000);
  return {
    statementMs: serverMs(queryTimeoutMs),
    lockMs: serverMs(queryTimeoutMs / 2),
    backstopMs: timerMs(Math.ceil(queryTimeoutMs + margin)),
  };
}

/**
 * The engine's only door to Postgres: runs the statements of `sql/statements.ts` and turns
 * driver errors into typed ones with secrets removed.
 */
export class Store {
  readonly sql: Statements;

  constructor(
    private readonly pool: Pool,
    readonly schema: string,
    private readonly password?: string,
    private readonly timeouts?: StoreTimeouts,
  ) {
    this.sql = buildStatements(schema);
  }

  /**
   * Runs a statement on the pool (durable's, or the app's DataSource's), or in the caller's
   * transaction when `manager` is given. On the pool, a statement with no answer after the
   * backstop rejects with OutcomeUnknownError (on the app's pool too, whose server-side
   * timeouts are the app's); in the caller's transaction the caller's settings apply.
   */
  async query({ text, values }: Statement, manager?: EntityManager): Promise<Row[]> {
    try {
      if (manager) return (await manager.query(text, values)) as Row[];
      const config = { text, values, query_timeout: this.timeouts?.backstopMs } as QueryConfig;
      return (await this.pool.query(config)).rows as Row[];
    } catch (error) {
      throw translateDatabaseError(error, this.password);
    }
  }

  /** The first row, or an empty one. */
  async one(statement: Statement, manager?: EntityManager): Promise<Row> {
    const rows = await this.query(statement, manager);
    return rows[0] ?? {};
  }
}
