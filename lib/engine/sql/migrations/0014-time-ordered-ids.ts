import type { MigrationInterface, QueryRunner } from 'typeorm';
import { quoteSchema } from '../schema-name.js';
import { pinSearchPath } from './0004-execution-fencing.js';

/**
 * Time-ordered ids for tasks and runs (issue 18: WAL per task, and the drain with a million
 * finished tasks kept).
 *
 * Task and run ids were random (`gen_random_uuid()`, version 4), so each new task's entry went to
 * a random leaf page of every index keyed by an id (`tasks`, `runs` and `checkpoints` primary
 * keys, `runs (task_id)`): once those indexes outgrow memory, a drain touches a different page
 * per task, each written whole to the WAL the first time after a checkpoint. `_uuid7()` makes
 * version 7 ids (RFC 9562: the first 48 bits are the Unix time in milliseconds of the wall clock,
 * the rest random), so new entries land on the last pages of those indexes.
 *
 * Every function of the schema that called `gen_random_uuid()` is recreated from its own
 * definition with `_uuid7()` instead; `down` does the reverse.
 */
export class DurableTimeOrderedIds1764000000014 implements MigrationInterface {
  readonly name = 'DurableTimeOrderedIds1764000000014';

  constructor(private readonly schema = 'durable') {}

  async up(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
create or replace function ${s}._uuid7() returns uuid language sql volatile as $$
  -- The 48-bit millisecond time over the first 6 bytes of a random (v4) id, then the version
  -- nibble from 0100 to 0111 (bits 52 and 53 set); the variant bits stay as v4 has them.
  select encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    placing substring(int8send(floor(date_part('epoch', clock_timestamp()) * 1000)::bigint) from 3)
    from 1 for 6), 52, 1), 53, 1), 'hex')::uuid
$$;
${replaceInFunctions(this.schema, 'gen_random_uuid()', `${s}._uuid7()`)}
${pinSearchPath(this.schema)}`);
  }

  async down(runner: QueryRunner): Promise<void> {
    const s = quoteSchema(this.schema);
    await runner.query(`
${replaceInFunctions(this.schema, `${s}._uuid7()`, 'gen_random_uuid()')}
drop function if exists ${s}._uuid7();`);
  }
}

/** Recreates every function of the schema whose body holds `from`, with `to` in its place (but `_uuid7` itself). */
function replaceInFunctions(schema: string, from: string, to: string): string {
  const s = quoteSchema(schema);
  const literal = (text: string) => `'${text.replace(/'/g, "''")}'`;
  return `
do $replace$
declare
  v_fn oid;
begin
  for v_fn in
    select p.oid from pg_catalog.pg_proc p
    where p.pronamespace = '${s}'::regnamespace and p.proname <> '_uuid7'
      and pg_catalog.strpos(p.prosrc, ${literal(from)}) > 0
  loop
    execute pg_catalog.replace(pg_catalog.pg_get_functiondef(v_fn), ${literal(from)}, ${literal(to)});
  end loop;
end $replace$;`;
}
