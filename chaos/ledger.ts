/**
 * The `ledger` task's evidence (chaos/worker.ts) and its audit, shared by the suspend storm
 * (part 5) and the statement-timeout storm (part 7). It does not rely on durable's bookkeeping:
 * - chaos_executions: one row per execution of a handler, under its own random id: when it
 *   started and ended, how (returned, or the error it threw), the step values the library
 *   resolved to it, the steps it failed (with the error), the steps still in flight, and what
 *   those steps got later;
 * - chaos_step_runs: one row per run of a step function, by execution;
 * - chaos_run_log: a trigger's record of every change of a run's state (each claim, with its
 *   epoch, suspension, failure, lease expiry, release), on the database clock;
 * with installChaosTables' logs of checkpoint writes and completions (chaos/database.ts).
 */
import type pg from 'pg';

export async function installLedgerTables(pool: pg.Pool): Promise<void> {
  await pool.query(`
    create table if not exists public.chaos_executions (
      exec uuid primary key, task_id uuid not null, run_id uuid not null, attempt integer not null, pid integer not null,
      worker_id text not null, started_at timestamptz not null default clock_timestamp(), ended_at timestamptz, ending text,
      seen jsonb not null default '[]', refused jsonb not null default '[]', in_flight jsonb, late jsonb not null default '[]'
    );
    create table if not exists public.chaos_step_runs (
      task_id uuid not null, step integer not null, exec uuid not null, pid integer not null,
      recorded_at timestamptz not null default clock_timestamp()
    );
    create table if not exists public.chaos_run_log (
      run_id uuid not null, task_id uuid not null, old_state text not null, new_state text not null, old_worker text,
      new_worker text, epoch integer not null, error_name text, at timestamptz not null default clock_timestamp()
    );
    create or replace function public.chaos_log_run() returns trigger language plpgsql as $$
    begin
      insert into public.chaos_run_log (run_id, task_id, old_state, new_state, old_worker, new_worker, epoch, error_name)
      values (new.id, new.task_id, old.state, new.state, old.worker_id, new.worker_id,
        coalesce((to_jsonb(new)->>'claim_epoch')::integer, 0), new.error->>'name');
      return new;
    end $$;
    drop trigger if exists chaos_log_run on durable.runs;
    create trigger chaos_log_run after update on durable.runs for each row
      when (old.state is distinct from new.state) execute function public.chaos_log_run();
  `);
}

export interface Execution {
  exec: string;
  task_id: string;
  run_id: string;
  pid: number;
  worker_id: string;
  started_at: Date;
  ended_at: Date | null;
  ending: string | null;
  seen: [number, string][];
  refused: [number, string][];
  in_flight: number[] | null;
  late: { step: number; by?: string; error?: string }[];
}

/** A timestamptz column as microseconds since the epoch, in text (exact in a JS number until 2255). */
const US = (column: string) => `(extract(epoch from ${column}) * 1000000)::bigint::text`;

interface LogRow {
  run_id: string;
  old_state: string;
  new_state: string;
  new_worker: string | null;
  epoch: number;
  error_name: string | null;
  at: Date;
  /** `at` in microseconds since the epoch (a Date keeps milliseconds only). */
  at_us: string;
}

/** One claim of a run (a transition to `running`), how it ended, and the executions it had. */
export interface Claim {
  runId: string;
  worker: string;
  epoch: number;
  at: Date;
  atUs: number;
  end?: LogRow;
  executions: Execution[];
}

export interface LedgerRules {
  /** Processes SIGKILLed: their executions may end unrecorded, their steps run again. */
  killed: Set<number>;
  /** Handlers per process: a killed one explains at most this many re-run steps. */
  concurrency: number;
  /** Whether an execution may fail (a database error) so that its step runs again in the next attempt. */
  failures: boolean;
  /** Errors after which a step's write may still have committed (default OutcomeUnknownError and DatabaseUnavailableError). */
  mayHaveCommitted?: string[];
  /** Whether a claim that ended by lease expiry is explained. */
  expiry(claim: Claim): boolean;
  /** Whether a claim that no handler executed is explained. */
  unexecuted(claim: Claim): boolean;
}

export interface LedgerFigures {
  tasks: number;
  lost: number;
  doubleCompletions: number;
  wrongResults: number;
  /** UPDATEs of a checkpoint (first writer wins: there must be none). */
  checkpointsReplaced: number;
  /** Steps without exactly one checkpoint of the right value, inserted once. */
  badCheckpoints: number;
  /** Step values resolved to an execution that are not the stored checkpoint. */
  seenNotStored: number;
  /** Checkpoints written after their writer's claim had ended (a stale execution's write accepted). */
  staleWrites: number;
  /**
   * Steps whose write the library failed (in the execution that wrote it) and that committed all
   * the same, by error: fine for OutcomeUnknownError (it may have committed), a violation for
   * DatabaseTimeoutError (a rollback) or a refusal by the fence.
   */
  committedAfterError: Record<string, number>;
  executions: number;
  claims: number;
  /** Claims of a run by the worker id whose execution of it had just suspended. */
  sameWorkerResumes: number;
  /** Steps of executions that had ended (suspended, failed) whose checkpoint was refused later: in all, and by the database (lease-lost). */
  lateRefused: number;
  lateRefusedByDatabase: number;
  reExecutedSteps: number;
  bySuspension: number;
  byKill: number;
  byFailure: number;
  unexplained: number;
  /** Executions whose claim ended in a failed attempt (each explains at most one re-run). */
  failedExecutions: number;
  leaseExpiries: number;
  /** Claims no handler executed: put back, or otherwise explained; and those left to expire unexplained. */
  unexecutedClaims: number;
  putBack: number;
  stranded: number;
}

/** Accounts for every `ledger` task, checkpoint, execution, step run and claim (see the file's comment). */
export async function auditLedger(pool: pg.Pool, rules: LedgerRules): Promise<{ figures: LedgerFigures; violations: string[] }> {
  const violations: string[] = [];
  const note = (what: string, examples: unknown[]) => {
    if (examples.length > 0) violations.push(`${what}: ${examples.length} (e.g. ${JSON.stringify(examples.slice(0, 3))})`);
  };
  const rows = async <T>(sql: string) => (await pool.query(sql)).rows as T[];
  const tasks = await rows<{ id: string; state: string; params: { seed: number; rounds: number }; result: { seed: number; values: { v: number; by: string }[] } | null }>(
    `select id, state, params, result from durable.tasks where name = 'ledger'`,
  );
  const ledger = new Set(tasks.map((t) => t.id));
  const checkpoints = new Map((await rows<{ key: string; value: { v?: number; by?: string } }>(
    `select task_id || '/' || name as key, value from durable.checkpoints`,
  )).map((c) => [c.key, c.value]));
  // Times compared with each other are read in microseconds: a step's checkpoint and the
  // suspension that ends its claim can fall in one millisecond.
  const writes = (await rows<{ task_id: string; key: string; op: string; written_at: Date; written_us: string }>(
    `select task_id, task_id || '/' || name as key, op, written_at, ${US('written_at')} as written_us
     from public.chaos_checkpoint_writes order by written_at`,
  )).filter((w) => ledger.has(w.task_id));
  const executions = await rows<Execution>(`select * from public.chaos_executions`);
  const stepRuns = await rows<{ task_id: string; step: number; exec: string; pid: number }>(`select task_id, step, exec, pid from public.chaos_step_runs`);
  const log = await rows<LogRow>(`select *, ${US('at')} as at_us from public.chaos_run_log order by run_id, at`);
  const doubles = await rows<unknown>(
    `select task_id from public.chaos_completions group by task_id having count(*) > 1
     union select task_id from durable.runs where state = 'completed' group by task_id having count(*) > 1`,
  );

  // Claims, and the claim of each execution: the last one by its worker id before it started.
  const claimsOf = new Map<string, Claim[]>();
  for (const row of log) {
    const list = claimsOf.get(row.run_id) ?? [];
    claimsOf.set(row.run_id, list);
    const open = list.at(-1);
    if (row.old_state === 'running' && open && !open.end) open.end = row;
    if (row.new_state === 'running') list.push({ runId: row.run_id, worker: row.new_worker ?? '', epoch: row.epoch, at: row.at, atUs: Number(row.at_us), executions: [] });
  }
  const execById = new Map(executions.map((e) => [e.exec, e]));
  const claimOf = new Map<string, Claim>();
  const unclaimed: Execution[] = [];
  for (const e of executions) {
    const claim = (claimsOf.get(e.run_id) ?? []).filter((c) => c.worker === e.worker_id && c.at <= e.started_at).at(-1);
    if (!claim) unclaimed.push(e);
    else {
      claimOf.set(e.exec, claim);
      claim.executions.push(e);
    }
  }
  note('executions of a run their worker had not claimed', unclaimed);

  note('tasks not completed (lost)', tasks.filter((t) => t.state !== 'completed').map((t) => ({ id: t.id, state: t.state })));
  note('tasks completed more than once', doubles);
  const replaced = writes.filter((w) => w.op !== 'INSERT');
  note('checkpoints replaced after they were first written', replaced);

  const inserts = new Map<string, { n: number; at: Date; us: number }>();
  for (const w of writes.filter((w) => w.op === 'INSERT')) {
    const first = inserts.get(w.key);
    inserts.set(w.key, { n: (first?.n ?? 0) + 1, at: first?.at ?? w.written_at, us: first?.us ?? Number(w.written_us) });
  }
  const badCheckpoints: unknown[] = [];
  const wrong: unknown[] = [];
  for (const t of tasks.filter((task) => task.state === 'completed')) {
    for (let r = 1; r <= t.params.rounds; r++) {
      const key = `${t.id}/step:s${r}`;
      const stored = checkpoints.get(key);
      if (stored?.v !== t.params.seed * 100 + r || inserts.get(key)?.n !== 1) badCheckpoints.push({ key, stored, inserts: inserts.get(key)?.n });
      const got = t.result?.values[r - 1];
      if (got?.v !== t.params.seed * 100 + r || got.by !== stored?.by) wrong.push({ task: t.id, step: r, got, stored });
    }
    if (t.result?.seed !== t.params.seed || t.result.values.length !== t.params.rounds) wrong.push({ task: t.id, result: t.result });
  }
  note('steps without exactly one right checkpoint inserted once', badCheckpoints);
  note('tasks completed with a wrong result (or values that are not the stored checkpoints)', wrong);

  // Every value the library resolved to user code is the stored one.
  const seenNotStored: unknown[] = [];
  for (const e of executions) {
    const values = [...e.seen, ...e.late.filter((l) => l.by).map((l) => [l.step, l.by] as [number, string])];
    for (const [step, by] of values) {
      const stored = checkpoints.get(`${e.task_id}/step:s${step}`);
      if (stored?.by !== by) seenNotStored.push({ exec: e.exec, step, saw: by, stored: stored?.by ?? null });
    }
  }
  note('step values returned to user code that are not the stored checkpoint', seenNotStored);

  // Each stored checkpoint was written while its writer's claim was live.
  const staleWrites: unknown[] = [];
  for (const [key, value] of checkpoints) {
    if (!ledger.has(key.slice(0, 36)) || !key.includes('/step:') || !value?.by) continue;
    const claim = claimOf.get(value.by);
    const written = inserts.get(key);
    if (!claim || !written || written.us < claim.atUs || (claim.end && written.us >= Number(claim.end.at_us))) {
      staleWrites.push({ key, writer: value.by, writtenAt: written?.at, claimedAt: claim?.at, claimEnded: claim?.end?.at, endedAs: claim?.end?.new_state });
    }
  }
  note('checkpoints written outside their writer\'s claim (a stale execution\'s write accepted)', staleWrites);

  // A step write the library reported failed did not commit, unless its outcome was unknown.
  const committedAfterError: Record<string, number> = {};
  const wronglyFailed: unknown[] = [];
  for (const e of executions) {
    const failures = [...e.refused, ...e.late.filter((l) => l.error).map((l) => [l.step, l.error!] as [number, string])];
    for (const [step, error] of failures) {
      if (checkpoints.get(`${e.task_id}/step:s${step}`)?.by !== e.exec) continue;
      const name = /^(\w+):/.exec(error)?.[1] ?? error;
      committedAfterError[name] = (committedAfterError[name] ?? 0) + 1;
      if (!(rules.mayHaveCommitted ?? ['OutcomeUnknownError', 'DatabaseUnavailableError']).includes(name)) wronglyFailed.push({ exec: e.exec, task: e.task_id, step, error });
    }
  }
  note('step writes the library reported failed (a rollback, a refusal) that committed', wronglyFailed);

  // Every run of a step function beyond the committed one is explained.
  const byStep = new Map<string, typeof stepRuns>();
  for (const run of stepRuns) byStep.set(`${run.task_id}/step:s${run.step}`, [...(byStep.get(`${run.task_id}/step:s${run.step}`) ?? []), run]);
  let reExecutedSteps = 0, bySuspension = 0, byKill = 0, byFailure = 0;
  const unexplained: unknown[] = [], notOnce: unknown[] = [];
  const perPid = new Map<number, number>(), perExec = new Map<string, number>();
  for (const [key, list] of byStep) {
    const committed = checkpoints.get(key)?.by;
    if (committed === undefined) continue; // its task did not complete: reported as lost
    if (list.filter((run) => run.exec === committed).length !== 1) notOnce.push({ key, committed, runs: list });
    for (const run of list.filter((r) => r.exec !== committed)) {
      reExecutedSteps += 1;
      const e = execById.get(run.exec);
      const end = e && claimOf.get(e.exec)?.end?.new_state;
      // Its execution suspended with it in flight; or its process was killed (its claim then
      // expired or was put back); or its execution failed (an error, never a return) as an attempt.
      if (end === 'sleeping') bySuspension += 1;
      else if (rules.killed.has(run.pid) && (end === undefined || end === 'failed' || end === 'pending')) {
        byKill += 1;
        perPid.set(run.pid, (perPid.get(run.pid) ?? 0) + 1);
      } else if (rules.failures && e && e.ending !== 'returned' && end === 'failed') {
        byFailure += 1;
        perExec.set(e.exec, (perExec.get(e.exec) ?? 0) + 1);
      } else {
        const claim = e && claimOf.get(e.exec);
        unexplained.push({ key, exec: run.exec, pid: run.pid, ending: e?.ending ?? null, claim: claim ? brief(claim) : null });
      }
    }
  }
  note('checkpointed steps whose committing execution did not run them exactly once', notOnce);
  note('re-run steps nothing explains', unexplained);
  note(`killed processes with more than ${rules.concurrency} re-run step(s)`, [...perPid].filter(([, n]) => n > rules.concurrency));
  note('failed executions with more than one re-run step', [...perExec].filter(([, n]) => n > 1));

  // Claims: each lease expiry and each claim no handler executed is explained.
  const claims = [...claimsOf.values()].flat();
  const expiries = claims.filter((c) => c.end?.new_state === 'failed' && c.end.error_name === 'LeaseExpired');
  const unexecuted = claims.filter((c) => c.executions.length === 0);
  note('claims that ended by lease expiry, unexplained', expiries.filter((c) => !rules.expiry(c)).map(brief));
  const stranded = unexecuted.filter((c) => !rules.unexecuted(c));
  note('claims no handler executed, not put back (stranded)', stranded.map(brief));
  let sameWorkerResumes = 0;
  for (const list of claimsOf.values()) {
    list.forEach((c, i) => {
      if (i > 0 && list[i - 1].end?.new_state === 'sleeping' && list[i - 1].worker === c.worker) sameWorkerResumes += 1;
    });
  }

  return {
    figures: {
      tasks: tasks.length, lost: tasks.filter((t) => t.state !== 'completed').length, doubleCompletions: doubles.length, wrongResults: wrong.length,
      checkpointsReplaced: replaced.length, badCheckpoints: badCheckpoints.length, seenNotStored: seenNotStored.length, staleWrites: staleWrites.length,
      committedAfterError,
      executions: executions.length, claims: claims.length, sameWorkerResumes,
      lateRefused: executions.reduce((n, e) => n + e.late.filter((l) => l.error).length, 0),
      lateRefusedByDatabase: executions.reduce((n, e) => n + e.late.filter((l) => l.error?.includes('(lease-lost)')).length, 0),
      reExecutedSteps, bySuspension, byKill, byFailure, unexplained: unexplained.length,
      failedExecutions: claims.filter((c) => c.end?.new_state === 'failed' && c.executions.length > 0).length,
      leaseExpiries: expiries.length, unexecutedClaims: unexecuted.length,
      putBack: unexecuted.filter((c) => c.end?.new_state === 'pending').length, stranded: stranded.length,
    },
    violations,
  };
}

function brief(claim: Claim) {
  return { run: claim.runId, worker: claim.worker, epoch: claim.epoch, at: claim.at, end: claim.end?.new_state, error: claim.end?.error_name };
}
