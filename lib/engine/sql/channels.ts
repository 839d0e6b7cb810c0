/**
 * The NOTIFY channels of a schema, defined once: the notifier LISTENs on them and the SQL
 * functions (see migrations/) `pg_notify` them. The schema name is a checked identifier, so the
 * names are safe inside a SQL string literal.
 */
export function channelsOf(schema: string) {
  return {
    /** A queue has work that is due now; the payload is the queue. */
    wakeup: `${schema}_wakeup`,
    /** A run was cancelled; the payload is the run's id (not the task's: a retried task runs again under another run). */
    cancel: `${schema}_cancel`,
    /** A watched task's state, attempts or progress changed; the payload is the task's id. */
    watch: `${schema}_watch`,
  } as const;
}

export type Channels = ReturnType<typeof channelsOf>;
