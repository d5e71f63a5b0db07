-- Per-school fair share of the database, sane bounds on every limit, and plan changes
-- pushed to every instance's cache of schools (which carries the limits in force).

-- Concurrent school transactions per instance for this school (null = the plan's value).
alter table tenants add column db_concurrency integer;

alter table tenants
    add constraint tenants_limits_sane check (
        (requests_per_second is null or requests_per_second between 1 and 100000)
        and (burst is null or burst between 1 and 100000)
        and (db_concurrency is null or db_concurrency between 1 and 1000));

alter table plans
    add constraint plans_limits_sane check (
        requests_per_second <= 100000 and burst <= 100000 and db_concurrency <= 1000);

-- Instances cache each school with its plan's limits resolved; a plan change must reach
-- them like a change to the school itself.
create function notify_plan_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('campus_tenant_changed', 'plan:' || new.code);
    return null;
end $$;

create trigger plans_changed after update on plans
    for each row execute function notify_plan_changed();
