-- Day marks spread over 16 rows per day. One row per day made every change of a school
-- on that day (each gate event, each read receipt) wait for the previous one to commit,
-- because marking takes the day's row lock until the transaction ends. A transaction now
-- marks the row of its own backend's shard; the rollup pass reads every shard of a day and
-- removes each row only if its seq is unchanged, exactly as before.

alter table metric_dirty add column shard smallint not null default 0;
alter table metric_dirty drop constraint metric_dirty_pkey;
alter table metric_dirty add primary key (day, shard);

create or replace function metric_mark(p_days date[]) returns void language sql as $$
    insert into metric_dirty (day, shard, seq)
    select d, (pg_backend_pid() % 16)::smallint, nextval('metric_dirty_seq')
      from (select distinct unnest(p_days) as d) x
     where d is not null
     -- The same order in every transaction, so two that share a shard cannot deadlock.
     order by d
    on conflict (day, shard) do update set seq = excluded.seq
$$;
