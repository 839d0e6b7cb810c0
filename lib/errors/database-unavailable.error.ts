import { DurableError } from './durable.error.js';

/** PostgreSQL could not be reached or dropped the connection. The call changed nothing it did not commit; retry it once the database is back. */
export class DatabaseUnavailableError extends DurableError {}
