import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quoteSchema } from '../schema-name.js';
import { pinSearchPath } from './0004-execution-fencing.js';
import { claimSql, type LimitedPath } from './0008-flow-control.claim.js';
import { claimRunsSql, rateWindows, setBasedPath, tryLocks } from './0012-set-based-flow-claim.js';

/**
 * A rate limit that does not bind costs the claim one statement (issue 18: flow control must not
 * cost more than a tenth of the drain; a rate limit with room cost a no-op drain 16-22%).
 *
 * 0012's limited path makes every claim of a limited queue read the level with each run's group
 * and name, choose, lock what it chose and claim it by id: four passes over the runs where an
 * unlimited claim makes one (a claim of 100 took 7 ms instead of 3). When a queue's limits are all
 * rates (no concurrency limit), its rate-limited names' locks are free, and each of their windows
 * has room for everything the claim still wants, no run of the level can be held: the level is
 * claimed as an unlimited one is, by `_claim_runs`, which now also records the starts of the
 * names it is given (one `flow_starts` row per name, as 0012's path writes them). Otherwise the
 * claim goes on as 0012's does, with the windows it has read.
 *
 * Also a fix: 0012's claim kept the room of each group and window it had read by task name (and
 * key) for the whole claim, across its queues. A worker of two queues that limit the same name
 * judged the second queue's runs by the first queue's room: a window of 2 in one queue let a claim
 * take 5 when the other queue's window had room for 100. What a claim knows is now forgotten when
 * it moves to another queue.
 */
export class DurableRateFastClaim1764000000016 implements MigrationInterface {
  readonly name = 'DurableRateFastClaim1764000000016';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    // claimSql brings 0008's _claim_runs along: replaced by the one with p_rate_names.
    await runner.query(`
${claimSql(s, rateFastPath(s))}
drop function if exists ${s}._claim_runs(${OLD_CLAIM_RUNS});
${claimRunsSql(s, true, true)}
alter function ${s}._claim_runs(${OLD_CLAIM_RUNS}, text[]) set enable_hashjoin = off set enable_mergejoin = off;
${pinSearchPath(this.schema)}`);
  }

  /** Back to 0015's `_claim_runs` and 0012's `claim_tasks`. */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
${claimSql(s, setBasedPath(s))}
drop function if exists ${s}._claim_runs(${OLD_CLAIM_RUNS}, text[]);
${claimRunsSql(s, true)}
alter function ${s}._claim_runs(${OLD_CLAIM_RUNS}) set enable_hashjoin = off set enable_mergejoin = off;
${pinSearchPath(this.schema)}`);
  }
}

const OLD_CLAIM_RUNS = 'text, integer, uuid[], integer, text, timestamptz, timestamptz';

/** 0012's limited path, after a shortcut for a level that no limit of its queue can hold. */
function rateFastPath(s: string): LimitedPath {
  const setBased = setBasedPath(s);
  return {
    declare: `${setBased.declare}  v_rate_names text[];
  v_any_concurrency boolean;
  v_fast boolean;
  v_limits_queue text;
`,
    laterDue: setBased.laterDue,
    body: `        -- What the claim knows of groups and windows is of one queue: a name limited in two
        -- queues has two windows (a claim coming back to a queue reads its own takes again).
        if v_limits_queue is distinct from v_queue then
          v_room := '{}';
          v_blocked := '{}';
          v_rate_room := '{}';
          v_rate_blocked := '{}';
          v_limits_queue := v_queue;
        end if;
        -- Only rates, none held by another claim, each window with room for all this level
        -- may take: claimed as an unlimited level is, its starts recorded by the same statement.
        v_fast := false;
        select coalesce(array_agg(l.name) filter (where l.rate_max is not null), '{}'), coalesce(bool_or(l.concurrency is not null), false)
        into v_rate_names, v_any_concurrency
        from ${s}.flow_limits l where l.queue = v_queue;
        if not v_any_concurrency and not (v_rate_names && v_rate_blocked) then
          ${tryLocks(s, 'rate', 'v_rate_names', 'v_rate_room', 'v_rate_blocked')}
          ${rateWindows(s)}
          if cardinality(v_lost) = 0 and coalesce((select min((v_rate_room->>x.name)::integer) from unnest(v_rate_names) x(name)),
              v_quota - v_got) >= v_quota - v_got then
            return query select * from ${s}._claim_runs(v_queue, v_prio, null, v_quota - v_got, p_worker, v_now, v_lease_until, v_rate_names);
            get diagnostics v_count = row_count;
            v_got := v_got + v_count;
            -- Their windows changed: read again if this claim comes back to them (the locks stay).
            v_rate_room := v_rate_room - v_rate_names;
            v_fast := true;
          end if;
        end if;
        if not v_fast then
${setBased.body}        end if;
`,
  };
}
