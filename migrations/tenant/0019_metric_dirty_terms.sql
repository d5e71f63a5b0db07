-- A term added, moved or removed changes which days owed registers: with terms defined,
-- only days inside a term are school days, so even the first term changes every day around
-- it. Term changes are rare (a few a year), so each marks every day of the last year for
-- the rollups.

create function metric_dirty_terms() returns trigger language plpgsql as $$
begin
    perform metric_mark(array(select generate_series(
        metric_local_day(now()) - 366, metric_local_day(now()), interval '1 day')::date));
    return null;
end $$;

create trigger metric_dirty_ins after insert on school_terms
    for each statement execute function metric_dirty_terms();
create trigger metric_dirty_upd after update on school_terms
    for each statement execute function metric_dirty_terms();
create trigger metric_dirty_del after delete on school_terms
    for each statement execute function metric_dirty_terms();
