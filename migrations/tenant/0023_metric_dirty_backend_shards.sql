-- A day's mark per backend instead of per 16 shards. Marking holds its row's lock until the
-- transaction ends, and with a school's web requests, gate devices and delivery workers on
-- dozens of backends, `pid % 16` made unrelated transactions share a row: a gate batch
-- waited for a delivery worker's claim to commit. Live backends' pids differ, so with
-- `pid % 32768` two transactions share a row only when their pids are 32,768 apart. The
-- rollup pass still removes a row only if its seq is unchanged, and a day has at most as
-- many rows as backends marked it since the last pass.

create or replace function metric_mark(p_days date[]) returns void language plpgsql as $$
begin
    insert into metric_dirty (day, shard, seq)
    select d, (pg_backend_pid() % 32768)::smallint, nextval('metric_dirty_seq')
      from (select distinct unnest(p_days) as d) x
     where d is not null
     -- The same order in every transaction, so two that share a row cannot deadlock.
     order by d
    on conflict (day, shard) do update set seq = excluded.seq;
end $$;
