import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TASK_STATES } from '../../../interfaces/task-snapshot.interface.js';
import { quoteSchema } from '../schema-name.js';
import { PINNED_SEARCH_PATH, pinSearchPath } from './0004-execution-fencing.js';
import { claimCte, claimSql, type LimitedPath } from './0008-flow-control.claim.js';

/**
 * The limited claim, set-based (issue 15: limits cost a no-op drain two thirds of its speed).
 *
 * 0008's limited path decided row by row in PL/pgSQL, counted each group's running runs in a
 * query of its own, recorded a rate-limited start as one `flow_starts` row each, and read a held
 * backlog to its end in every claim. Now each pass over a priority level is a few statements:
 * 1. the next runs of the level in claim order, not of a group or name known to be held, with
 *    their concurrency group (name and key) and rate-limited name (read, not locked: a claim
 *    locks only the runs it takes, not the held ones it reads past);
 * 2. the advisory try-lock of each group and name new to this claim (the same locks as 0008, so
 *    that 0008's and 0012's claims exclude each other during an upgrade);
 * 3. in a statement of their own, whose snapshot is taken after those locks: the running runs of
 *    all the new groups in one grouped count, and the starts in each new name's window (a sum);
 * 4. which runs to take, in claim order: each group's first runs while it has room, of those each
 *    name's first while its window has room, and the first that the claim still wants;
 * 5. those runs locked (SKIP LOCKED, state checked again), one `flow_starts` row per name and
 *    claim (`n` starts), and the claim of the locked runs by id. A run another claim took
 *    meanwhile is skipped, so a claim may take less than the room, never more.
 *
 * Past its first pass (the head of the level, what it wants and a few more), a claim reads at
 * most `SCAN_BUDGET` more runs of the level, from a hand (`flow_hands`, unlogged: per queue and
 * level, where the last claim's budget ended) when the hand is further on; a claim that spends
 * its budget moves the hand there, and one that reads to the end of the level removes it. So a
 * claim behind a held backlog reads a bounded number of rows, whatever the backlog, and a
 * runnable run behind it is reached within (backlog / SCAN_BUDGET) claims of its queue.
 */
export class DurableSetBasedFlowClaim1764000000012 implements MigrationInterface {
  readonly name = 'DurableSetBasedFlowClaim1764000000012';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
alter table ${s}.flow_starts add column if not exists n integer not null default 1;
create unlogged table if not exists ${s}.flow_hands (
  queue    text not null,
  priority integer not null,
  after_at timestamptz not null,
  after_id uuid not null,
  primary key (queue, priority)
);
${claimSql(s, setBasedPath(s))}
${claimRunsSql(s)}
${pinSearchPath(this.schema)}`);
  }

  /** Back to 0008's claim (one `flow_starts` row per start again). */
  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
${claimSql(s)}
insert into ${s}.flow_starts (queue, name, started_at)
  select fs.queue, fs.name, fs.started_at from ${s}.flow_starts fs, pg_catalog.generate_series(2, fs.n);
alter table ${s}.flow_starts drop column if exists n;
drop table if exists ${s}.flow_hands;`);
  }
}

const [PENDING, RUNNING, SLEEPING] = TASK_STATES.map((state) => `'${state}'`);
/** Runs of a level a claim reads at most after its first pass; then it leaves a hand. */
const SCAN_BUDGET = 1000;
/** The same for a claim that has taken runs already (the drain of a held queue: claims follow each other). */
const BUSY_SCAN_BUDGET = 100;
/** Extra rows the first pass reads past what the claim wants. */
const PASS_SLACK = 16;

export function setBasedPath(s: string): LimitedPath {
  const group = (t: string) => `json_build_array(${t}.name, ${t}.concurrency_key)::text`;
  return {
    declare: `
  -- Limited path: per group and per rate-limited name, the room left (decided once per claim);
  -- groups and names full, or decided by another claim.
  v_room jsonb := '{}';
  v_blocked text[] := '{}';
  v_rate_room jsonb := '{}';
  v_rate_blocked text[] := '{}';
  v_after_at timestamptz;
  v_after_id uuid;
  v_lim integer;
  v_want integer;
  v_pass integer;
  v_last_at timestamptz;
  v_last_id uuid;
  v_bound_at timestamptz;
  v_bound_id uuid;
  v_hand boolean;
  v_hand_at timestamptz;
  v_hand_id uuid;
  v_ids uuid[];
  v_groups text[];
  v_names text[];
  v_new text[];
  v_lost text[];
  v_take uuid[];
  v_took_groups jsonb;
  v_took_names jsonb;
`,
    // An index range: a limited queue's runs due now are held or locked (accounted for above).
    laterDue: `r.available_at > case when v_queue = any(v_limited_queues) then v_now else '-infinity'::timestamptz end`,
    body: `        v_after_at := '-infinity';
        v_after_id := '00000000-0000-0000-0000-000000000000';
        v_bound_at := 'infinity';
        v_bound_id := 'ffffffff-ffff-ffff-ffff-ffffffffffff';
        v_hand := false;
        v_lim := v_quota - v_got + ${PASS_SLACK};
        loop
          v_want := v_quota - v_got;
          exit when v_want <= 0;
          if not v_hand and (v_after_at > '-infinity' or cardinality(v_blocked) + cardinality(v_rate_blocked) > 0) then
            -- Past the head of the level, or skipping held groups from the start: on from the
            -- hand if it is further, and at most SCAN_BUDGET runs.
            v_hand := true;
            select h.after_at, h.after_id into v_hand_at, v_hand_id from ${s}.flow_hands h
            where h.queue = v_queue and h.priority = v_prio;
            if found and (v_hand_at, v_hand_id) > (v_after_at, v_after_id) then
              v_after_at := v_hand_at;
              v_after_id := v_hand_id;
            end if;
            select r.available_at, r.id into v_bound_at, v_bound_id from ${s}.runs r
            where r.queue = v_queue and r.priority = v_prio and r.state in (${PENDING}, ${SLEEPING})
              and r.available_at <= v_now and (r.available_at, r.id) > (v_after_at, v_after_id)
            order by r.available_at, r.id
            -- A claim that took something is followed by another as soon as those runs end.
            offset case when v_claimed + v_got > 0 then ${BUSY_SCAN_BUDGET} else ${SCAN_BUDGET} end limit 1;
            if not found then
              v_bound_at := 'infinity';
              v_bound_id := 'ffffffff-ffff-ffff-ffff-ffffffffffff';
            end if;
          end if;
          -- 1. The next runs of the level after the cursor (up to the bound), not of a group or
          --    name known to be held, with their group and rate-limited name (read, not locked).
          select count(*), (array_agg(c.available_at order by c.available_at desc, c.id desc))[1],
            (array_agg(c.id order by c.available_at desc, c.id desc))[1],
            coalesce(array_agg(c.id order by c.available_at, c.id), '{}'),
            coalesce(array_agg(c.grp order by c.available_at, c.id), '{}'),
            coalesce(array_agg(c.rname order by c.available_at, c.id), '{}')
          into v_pass, v_last_at, v_last_id, v_ids, v_groups, v_names
          from (
            select r.id, r.available_at,
              case when l.concurrency is not null then ${group('t')} end as grp,
              case when l.rate_max is not null then t.name end as rname
            from ${s}.runs r join ${s}.tasks t on t.id = r.task_id
              left join ${s}.flow_limits l on l.queue = r.queue and l.name = t.name
            where r.queue = v_queue and r.priority = v_prio and r.state in (${PENDING}, ${SLEEPING})
              and r.available_at <= v_now and t.state in (${PENDING}, ${SLEEPING})
              and (r.available_at, r.id) > (v_after_at, v_after_id) and (r.available_at, r.id) <= (v_bound_at, v_bound_id)
              and not (t.name = any(v_rate_blocked)) and not (${group('t')} = any(v_blocked))
            order by r.available_at, r.id
            limit v_lim) c;

          -- 2. Groups and names new to this claim: their advisory locks, tried.
          ${tryLocks(s, 'concurrency', 'v_groups', 'v_room', 'v_blocked')}
          if cardinality(v_new) > 0 then
            -- 3. Their running runs with an unexpired lease, in one pass over the queue's running runs.
            select v_room || coalesce(jsonb_object_agg(g.grp, coalesce(l.concurrency - coalesce(c.n, 0), 0)), '{}')
            into v_room
            from unnest(v_new) g(grp)
              left join ${s}.flow_limits l on l.queue = v_queue and l.name = g.grp::json->>0
              left join (select ${group('t2')} as grp, count(*) as n
                from ${s}.runs r2 join ${s}.tasks t2 on t2.id = r2.task_id
                where r2.queue = v_queue and r2.state = ${RUNNING} and r2.lease_expires_at > v_now
                  and t2.name = any(select x::json->>0 from unnest(v_new) x)
                group by 1) c on c.grp = g.grp;
          end if;
          ${tryLocks(s, 'rate', 'v_names', 'v_rate_room', 'v_rate_blocked')}
          ${rateWindows(s)}

          -- 4. What to take: each group's first runs while it has room, of those each name's
          -- first while its window has room, and the first v_want of what is left, in claim order.
          with c as (
            select x.id, x.grp, x.rname, x.ord from unnest(v_ids, v_groups, v_names) with ordinality x(id, grp, rname, ord)
          ), by_group as (
            select c.*, c.grp is null
              or coalesce(row_number() over (partition by c.grp order by c.ord) <= (v_room->>c.grp)::integer, false) as group_ok
            from c
          ), by_rate as (
            select b.*, b.rname is null
              or coalesce(row_number() over (partition by b.rname order by b.ord) <= (v_rate_room->>b.rname)::integer, false) as rate_ok
            from by_group b where b.group_ok
          )
          select coalesce(array_agg(b.id order by b.ord), '{}') into v_take
          from (select b.id, b.ord from by_rate b where b.rate_ok order by b.ord limit v_want) b;
          -- Locked (SKIP LOCKED: a run another claim is taking, or a task being cancelled, is
          -- left alone), and what they take of each group and window.
          v_take := array(select r.id from unnest(v_take) x(id) join ${s}.runs r on r.id = x.id join ${s}.tasks t on t.id = r.task_id
            where r.state in (${PENDING}, ${SLEEPING}) and r.available_at <= v_now and t.state in (${PENDING}, ${SLEEPING})
            for update of r, t skip locked);
          select coalesce((select jsonb_object_agg(k.grp, k.n) from (select x.grp, count(*) as n from unnest(v_ids, v_groups) x(id, grp)
              where x.grp is not null and x.id = any(v_take) group by x.grp) k), '{}'),
            coalesce((select jsonb_object_agg(k.rname, k.n) from (select x.rname, count(*) as n from unnest(v_ids, v_names) x(id, rname)
              where x.rname is not null and x.id = any(v_take) group by x.rname) k), '{}')
          into v_took_groups, v_took_names;

          -- 5. The starts (one row per name), and the claim.
          if cardinality(v_take) > 0 then
            select v_room || coalesce(jsonb_object_agg(e.key, (v_room->>e.key)::integer - e.value::integer), '{}')
            into v_room from jsonb_each_text(v_took_groups) e;
            if v_took_names <> '{}' then
              select v_rate_room || jsonb_object_agg(e.key, (v_rate_room->>e.key)::integer - e.value::integer)
              into v_rate_room from jsonb_each_text(v_took_names) e;
              insert into ${s}.flow_starts (queue, name, started_at, n)
              select v_queue, e.key, v_now, e.value::integer from jsonb_each_text(v_took_names) e;
            end if;
            return query select * from ${s}._claim_runs(v_queue, v_prio, v_take, cardinality(v_take), p_worker, v_now, v_lease_until);
            get diagnostics v_count = row_count;
            v_got := v_got + v_count;
          end if;

          -- Groups and names full now: skipped from here on, and when they may open.
          v_new := array(select e.key from jsonb_each_text(v_room) e where e.value::integer <= 0 and not (e.key = any(v_blocked)));
          if cardinality(v_new) > 0 then
            v_blocked := v_blocked || v_new;
            -- A run that ends wakes its own worker; other workers look again at the earliest lease expiry.
            v_next := least(v_next, (select min(r2.lease_expires_at) from ${s}.runs r2 join ${s}.tasks t2 on t2.id = r2.task_id
              where r2.queue = v_queue and r2.state = ${RUNNING} and r2.lease_expires_at > v_now
                and t2.name = any(select x::json->>0 from unnest(v_new) x) and ${group('t2')} = any(v_new)));
          end if;
          v_new := array(select e.key from jsonb_each_text(v_rate_room) e where e.value::integer <= 0 and not (e.key = any(v_rate_blocked)));
          if cardinality(v_new) > 0 then
            v_rate_blocked := v_rate_blocked || v_new;
            -- A window opens when enough of its starts (oldest first) have left it for one more.
            v_next := least(v_next, (select min(o.at) from unnest(v_new) g(name)
              join ${s}.flow_limits l on l.queue = v_queue and l.name = g.name
              cross join lateral (select w.started_at + ${s}._ms(l.rate_per_ms) as at
                from (select fs.started_at, sum(fs.n) over (order by fs.started_at) as upto
                  from ${s}.flow_starts fs where fs.queue = v_queue and fs.name = g.name) w
                where w.upto >= 1 - (v_rate_room->>g.name)::integer
                order by w.started_at limit 1) o));
          end if;

          if v_pass < v_lim then
            -- Read to the bound: to the end of the level (a hand this claim went on from starts
            -- again at the head), or to where its budget ends (the next claim goes on from there).
            if v_bound_at = 'infinity' then
              if v_hand then delete from ${s}.flow_hands h where h.queue = v_queue and h.priority = v_prio; end if;
            else
              insert into ${s}.flow_hands as h (queue, priority, after_at, after_id) values (v_queue, v_prio, v_bound_at, v_bound_id)
              on conflict on constraint flow_hands_pkey do update set after_at = excluded.after_at, after_id = excluded.after_id;
            end if;
            exit;
          end if;
          v_after_at := v_last_at;
          v_after_id := v_last_id;
          v_lim := v_lim * 2;
        end loop;
`,
  };
}

/** The room left in the window of each rate-limited name just locked (`v_new`), into `v_rate_room`. */
export function rateWindows(s: string): string {
  return `if cardinality(v_new) > 0 then
            -- 3. Their starts in the window (rows older than the window pruned first).
            delete from ${s}.flow_starts fs using ${s}.flow_limits l
            where fs.queue = v_queue and fs.name = any(v_new) and l.queue = fs.queue and l.name = fs.name
              and fs.started_at <= v_now - ${s}._ms(l.rate_per_ms);
            select v_rate_room || coalesce(jsonb_object_agg(g.name, coalesce(l.rate_max - coalesce((select sum(fs.n) from ${s}.flow_starts fs
                where fs.queue = v_queue and fs.name = g.name), 0), 0)), '{}')
            into v_rate_room
            from unnest(v_new) g(name) left join ${s}.flow_limits l on l.queue = v_queue and l.name = g.name;
          end if;`;
}

/**
 * Tries the advisory lock of each group (or name) of `keys` not decided in this claim yet (not
 * in `room`): `v_new` gets those locked, `blocked` those another claim is deciding (looked at
 * again in 5 ms).
 */
export function tryLocks(s: string, kind: 'concurrency' | 'rate', keys: string, room: string, blocked: string): string {
  return `select coalesce(array_agg(g.k) filter (where g.got), '{}'), coalesce(array_agg(g.k) filter (where not g.got), '{}')
          into v_new, v_lost
          from (select d.k, pg_try_advisory_xact_lock(${s}._flow_lock('${kind}', v_queue, d.k)) as got
            from (select distinct x.k from unnest(${keys}) x(k) where x.k is not null and not ${room} ? x.k) d) g;
          if cardinality(v_lost) > 0 then
            ${blocked} := ${blocked} || v_lost;
            v_next := least(v_next, v_now + interval '5 milliseconds');
          end if;`;
}

/**
 * `_claim_runs` as in 0008, with two plans fixed (a claim of 200 took 25-30 ms on a churned
 * `runs` of 20,000 rows, 4 ms now): the updates find their rows by primary key from an array of
 * the candidates' ids (the join on the candidates hashed a sequential scan of `runs`), and a
 * claim by id starts from the ids (`id = any(ids)` was planned as a sequential scan).
 */
export function claimRunsSql(s: string, lean = false, starts = false): string {
  const SET_PATH = `set search_path = ${PINNED_SEARCH_PATH}`;
  return `
create or replace function ${s}._claim_runs(p_queue text, p_priority integer, p_ids uuid[], p_limit integer,
  p_worker text, p_now timestamptz, p_lease_until timestamptz${starts ? ', p_rate_names text[] default null' : ''})
returns table (run_id uuid, task_id uuid, attempt integer, epoch integer, first_start boolean, queue text,
  name text, params json, headers json, checkpoints json, checkpoint_bytes bigint, db_now timestamptz,
  next_due_at timestamptz)
language plpgsql ${SET_PATH} as $$
begin
  if p_ids is null then
    return query ${claimCte(s, `r.queue = p_queue and r.priority = p_priority and r.state in (${PENDING}, ${SLEEPING})
      and r.available_at <= p_now and t.state in (${PENDING}, ${SLEEPING})
    order by r.available_at, r.id
    limit p_limit
    for update of r, t skip locked`, { byIds: true, lean, starts })};
  else
    -- By id (the primary key), not by a scan of the level: the caller may have read past a held backlog.
    return query ${claimCte(s, `r.state in (${PENDING}, ${SLEEPING}) and t.state in (${PENDING}, ${SLEEPING})
    for update of r, t`, { from: `unnest(p_ids) ids(id) join ${s}.runs r on r.id = ids.id join ${s}.tasks t on t.id = r.task_id`, byIds: true, lean })};
  end if;
end $$;
`;
}
