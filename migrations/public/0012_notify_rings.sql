-- Ringing never waits. A school's transaction used to upsert its row of notify_queue, and
-- so waited for the lock a worker's turn held on that row while the turn, on another
-- connection, could be waiting for a lock the ringing transaction held: a cycle Postgres
-- cannot see, which stopped the county's morning load. Now a ring only appends to
-- notify_rings (no unique index, nothing to wait for); workers fold the rings into
-- notify_queue in short transactions of their own, and a turn holds its row by a lease
-- (leased_until, lease) instead of a lock, so no transaction of a school ever waits on a
-- worker.

create table notify_rings (
    -- No foreign key: a ring must not lock the school's registry row. The fold drops rings
    -- of schools that are gone.
    tenant_id   bigint not null,
    lane        smallint not null check (lane between 0 and 3),
    due_at      timestamptz not null
);

-- For the ring's own look-up, which stays cheap even when no worker folds for a while.
create index notify_rings_school_idx on notify_rings (tenant_id, lane);

alter table notify_queue
    add column leased_until timestamptz not null default '-infinity',
    -- Bumped by every claim, so a turn whose lease ran out cannot finish another's.
    add column lease bigint not null default 0;

-- Returns 1, so that a school's statement can ring as a column of its own result (one
-- round trip for the outbox row and the ring).
--
-- NOTIFY only when the workers may not know yet: every transaction that notifies takes
-- one database-wide lock for the whole of its commit, so a notifying gate batch per
-- request made every school's commits queue behind each other. An earlier ring of this
-- school and lane not yet folded has woken the workers already, and a row already due in
-- notify_queue is one they serve before they next sleep. In the rare race where that row
-- is cleared before this transaction commits, the ring waits for the workers' next poll.
drop function notify_ring(bigint, smallint, timestamptz);
create function notify_ring(p_tenant bigint, p_lane smallint, p_due timestamptz) returns integer
language sql security definer set search_path = pg_catalog, public as $$
    select pg_notify('campus_notify', p_lane::text)
     where not exists (select 1 from public.notify_queue q
                        where q.tenant_id = p_tenant and q.lane = p_lane and q.due_at <= p_due)
       and not exists (select 1 from public.notify_rings r
                        where r.tenant_id = p_tenant and r.lane = p_lane and r.due_at <= p_due);
    insert into public.notify_rings (tenant_id, lane, due_at) values (p_tenant, p_lane, p_due);
    select 1;
$$;
