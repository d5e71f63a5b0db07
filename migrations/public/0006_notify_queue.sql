-- The notification workers' doorbell: one row per (school, lane) with work due. A school's
-- transaction rings it through notify_ring (the school's role may not touch the table
-- itself); workers take the least recently served school of the highest lane with work
-- due, so one school's bulk notice cannot hold up another school's safety alert.

create table notify_queue (
    tenant_id   bigint not null references tenants (id) on delete cascade,
    lane        smallint not null check (lane between 0 and 3),
    due_at      timestamptz not null default now(),
    -- Bumped by every ring, so a worker clears the row only if nothing rang meanwhile.
    rung        bigint not null default 0,
    served_at   timestamptz not null default '-infinity',
    primary key (tenant_id, lane)
);

create index notify_queue_due_idx on notify_queue (lane, due_at);

create function notify_ring(p_tenant bigint, p_lane smallint, p_due timestamptz) returns void
language sql security definer set search_path = pg_catalog, public as $$
    insert into public.notify_queue as q (tenant_id, lane, due_at) values (p_tenant, p_lane, p_due)
    on conflict (tenant_id, lane) do update set due_at = least(q.due_at, excluded.due_at), rung = q.rung + 1;
    select pg_notify('campus_notify', p_lane::text);
$$;
