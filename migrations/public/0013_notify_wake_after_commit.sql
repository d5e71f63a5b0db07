-- A ring no longer notifies inside the school's transaction: it says whether the workers
-- need waking (1) or know already (0), and the instance sends the wake-up after the commit
-- (`campus_notify::queue::Doorbell`). A transaction that notifies takes one database-wide
-- lock at commit and keeps it through its WAL flush, so every school's notifying commits
-- queued behind each other; the wake-up is now a transaction of its own that writes no WAL
-- and holds that lock for a moment. A ring whose wake-up is lost (the instance stops right
-- after the commit) is found by the workers' next poll.
create or replace function notify_ring(p_tenant bigint, p_lane smallint, p_due timestamptz) returns integer
language sql security definer set search_path = pg_catalog, public as $$
    -- One statement: the check sees the rings and queue rows committed before it, not the
    -- ring it adds.
    with known as (
      select exists (select 1 from public.notify_queue q
                      where q.tenant_id = p_tenant and q.lane = p_lane and q.due_at <= p_due)
          or exists (select 1 from public.notify_rings r
                      where r.tenant_id = p_tenant and r.lane = p_lane and r.due_at <= p_due) as yes),
    rung as (
      insert into public.notify_rings (tenant_id, lane, due_at) values (p_tenant, p_lane, p_due))
    select case when yes then 0 else 1 end from known;
$$;
