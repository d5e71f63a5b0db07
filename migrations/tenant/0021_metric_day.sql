-- The local day of a timestamp in a given time zone, for the rollup queries. Unlike
-- metric_local_day (which looks the zone up itself), it has no sub-select, so Postgres
-- inlines it into the query instead of calling a function per row: the rollup pass binds
-- the school's zone once.
create function metric_day(tz text, ts timestamptz) returns date
    language sql immutable parallel safe
    as $$ select (ts at time zone tz)::date $$;
