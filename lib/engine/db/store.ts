import type { Pool } from 'pg';
import type { EntityManager } from 'typeorm';
import { translateDatabaseError } from './database-errors.js';
import { buildStatements, type Statement, type Statements } from '../sql/statements.js';

export type Row = Record<string, unknown>;

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
  ) {
    this.sql = buildStatements(schema);
  }

  /** Runs a statement on durable's pool, or in the caller's transaction when `manager` is given. */
  async query({ text, values }: Statement, manager?: EntityManager): Promise<Row[]> {
    try {
      if (manager) return (await manager.query(text, values)) as Row[];
      return (await this.pool.query(text, values)).rows as Row[];
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
