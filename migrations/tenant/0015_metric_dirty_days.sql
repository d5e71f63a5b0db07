-- Days whose county-dashboard rollups are out of date. Statement-level triggers on the
-- tables the dashboard counts mark the (school-local) days a change touches, in the same
-- transaction as the change; the maintenance role's rollup ticker recomputes each marked
-- day from these tables and removes the mark only if nobody marked the day again meanwhile
-- (seq changed). Nothing here leaves the school's schema: the ticker reads aggregates.

create sequence metric_dirty_seq;

create table metric_dirty (
    day        date primary key,
    -- A fresh value on every mark: the ticker deletes the row only if it is unchanged.
    seq        bigint not null,
    -- The first unprocessed mark, for the rollup lag.
    marked_at  timestamptz not null default now()
);

create function metric_local_day(ts timestamptz) returns date language sql stable as $$
    select (ts at time zone coalesce((select timezone from school_profile where id = 1), 'Asia/Shanghai'))::date
$$;

create function metric_mark(p_days date[]) returns void language sql as $$
    insert into metric_dirty (day, seq)
    select d, nextval('metric_dirty_seq') from (select distinct unnest(p_days) as d) x where d is not null
    on conflict (day) do update set seq = excluded.seq
$$;

-- Today and every day from `since` (at most 31 days back): changes to enrolment or to the
-- organisation touch the head counts of those days.
create function metric_days_since(since date) returns date[] language sql stable as $$
    select array(select generate_series(
        greatest(least(coalesce(since, metric_local_day(now())), metric_local_day(now())), metric_local_day(now()) - 31),
        metric_local_day(now()), interval '1 day')::date)
$$;

create function metric_dirty_registers() returns trigger language plpgsql as $$
begin
    if tg_op in ('INSERT', 'UPDATE') then perform metric_mark(array(select day from nt)); end if;
    if tg_op in ('UPDATE', 'DELETE') then perform metric_mark(array(select day from ot)); end if;
    return null;
end $$;

create function metric_dirty_marks() returns trigger language plpgsql as $$
begin
    if tg_op in ('INSERT', 'UPDATE') then
        perform metric_mark(array(select r.day from attendance_registers r where r.id in (select register_id from nt)));
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        perform metric_mark(array(select r.day from attendance_registers r where r.id in (select register_id from ot)));
    end if;
    return null;
end $$;

-- A leave request counts on the day it was asked for; its span (and the three days after,
-- for pupils not back from leave) changes the leave columns of those days.
create function metric_dirty_leave() returns trigger language plpgsql as $$
begin
    perform metric_mark(array(
        select metric_local_day(created_at) from nt
        union
        select generate_series(metric_local_day(starts_at),
                               least(metric_local_day(ends_at) + 3, metric_local_day(starts_at) + 62),
                               interval '1 day')::date from nt));
    return null;
end $$;

create function metric_dirty_created() returns trigger language plpgsql as $$
begin
    perform metric_mark(array(select metric_local_day(created_at) from nt));
    return null;
end $$;

create function metric_dirty_recipients() returns trigger language plpgsql as $$
begin
    perform metric_mark(array(select metric_local_day(n.created_at) from notices n where n.id in (select notice_id from nt)));
    return null;
end $$;

create function metric_dirty_gate() returns trigger language plpgsql as $$
begin
    perform metric_mark(array(select metric_local_day(at) from nt));
    return null;
end $$;

create function metric_dirty_alerts() returns trigger language plpgsql as $$
begin
    perform metric_mark(array(select day from nt));
    return null;
end $$;

create function metric_dirty_join() returns trigger language plpgsql as $$
begin
    perform metric_mark(array(
        select metric_local_day(created_at) from nt
        union select metric_local_day(reviewed_at) from nt where reviewed_at is not null));
    return null;
end $$;

create function metric_dirty_students() returns trigger language plpgsql as $$
begin
    if tg_op in ('INSERT', 'UPDATE') then
        perform metric_mark(metric_days_since((select min(least(enrolled_on, left_on)) from nt)));
    end if;
    if tg_op in ('UPDATE', 'DELETE') then
        perform metric_mark(metric_days_since((select min(least(enrolled_on, left_on)) from ot)));
    end if;
    return null;
end $$;

-- Organisation and guardians: only today's checks change.
create function metric_dirty_today() returns trigger language plpgsql as $$
begin
    perform metric_mark(array[metric_local_day(now())]);
    return null;
end $$;

create trigger metric_dirty_ins after insert on attendance_registers referencing new table as nt
    for each statement execute function metric_dirty_registers();
create trigger metric_dirty_upd after update on attendance_registers referencing old table as ot new table as nt
    for each statement execute function metric_dirty_registers();
create trigger metric_dirty_del after delete on attendance_registers referencing old table as ot
    for each statement execute function metric_dirty_registers();

create trigger metric_dirty_ins after insert on attendance_marks referencing new table as nt
    for each statement execute function metric_dirty_marks();
create trigger metric_dirty_upd after update on attendance_marks referencing old table as ot new table as nt
    for each statement execute function metric_dirty_marks();
create trigger metric_dirty_del after delete on attendance_marks referencing old table as ot
    for each statement execute function metric_dirty_marks();

create trigger metric_dirty_ins after insert on leave_requests referencing new table as nt
    for each statement execute function metric_dirty_leave();
create trigger metric_dirty_upd after update on leave_requests referencing new table as nt
    for each statement execute function metric_dirty_leave();

create trigger metric_dirty_ins after insert on notices referencing new table as nt
    for each statement execute function metric_dirty_created();
create trigger metric_dirty_ins after insert on notice_recipients referencing new table as nt
    for each statement execute function metric_dirty_recipients();
create trigger metric_dirty_upd after update on notice_recipients referencing new table as nt
    for each statement execute function metric_dirty_recipients();

create trigger metric_dirty_ins after insert on gate_events referencing new table as nt
    for each statement execute function metric_dirty_gate();
create trigger metric_dirty_ins after insert on gate_absence_alerts referencing new table as nt
    for each statement execute function metric_dirty_alerts();

create trigger metric_dirty_ins after insert on join_requests referencing new table as nt
    for each statement execute function metric_dirty_join();
create trigger metric_dirty_upd after update on join_requests referencing new table as nt
    for each statement execute function metric_dirty_join();

create trigger metric_dirty_ins after insert on messages referencing new table as nt
    for each statement execute function metric_dirty_created();

create trigger metric_dirty_ins after insert on notify_deliveries referencing new table as nt
    for each statement execute function metric_dirty_created();
create trigger metric_dirty_upd after update on notify_deliveries referencing new table as nt
    for each statement execute function metric_dirty_created();

create trigger metric_dirty_ins after insert on students referencing new table as nt
    for each statement execute function metric_dirty_students();
create trigger metric_dirty_upd after update on students referencing old table as ot new table as nt
    for each statement execute function metric_dirty_students();
create trigger metric_dirty_del after delete on students referencing old table as ot
    for each statement execute function metric_dirty_students();

create trigger metric_dirty_classes after insert or update or delete on classes
    for each statement execute function metric_dirty_today();
create trigger metric_dirty_links after insert or update or delete on student_guardians
    for each statement execute function metric_dirty_today();

-- A day marked off or made a school day changes which registers were owed that day.
create trigger metric_dirty_ins after insert on calendar_days referencing new table as nt
    for each statement execute function metric_dirty_registers();
create trigger metric_dirty_upd after update on calendar_days referencing old table as ot new table as nt
    for each statement execute function metric_dirty_registers();
create trigger metric_dirty_del after delete on calendar_days referencing old table as ot
    for each statement execute function metric_dirty_registers();
