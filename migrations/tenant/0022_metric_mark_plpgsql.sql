-- metric_mark and metric_local_day were SQL functions Postgres cannot inline (one is an
-- INSERT, the other has a sub-select), so every call parsed and planned their bodies
-- again: each insert into a counted table (every gate event, every inbox row) paid for
-- that in its statement trigger, about a fifth of Postgres's time under gate ingest. As
-- PL/pgSQL they are planned once per connection and the plans are kept.

create or replace function metric_mark(p_days date[]) returns void language plpgsql as $$
begin
    insert into metric_dirty (day, shard, seq)
    select d, (pg_backend_pid() % 16)::smallint, nextval('metric_dirty_seq')
      from (select distinct unnest(p_days) as d) x
     where d is not null
     -- The same order in every transaction, so two that share a shard cannot deadlock.
     order by d
    on conflict (day, shard) do update set seq = excluded.seq;
end $$;

create or replace function metric_local_day(ts timestamptz) returns date language plpgsql stable as $$
begin
    return (ts at time zone coalesce((select timezone from school_profile where id = 1), 'Asia/Shanghai'))::date;
end $$;
