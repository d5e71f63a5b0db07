-- The files service's shared state: each school's storage usage (so the county IT centre
-- reads every school's figure in one query, and the quota is enforced in the transaction
-- that records a file), and the preview workers' doorbell.
--
-- A school's role may not touch these tables; it goes through the SECURITY DEFINER
-- functions below, which find the school from the role the transaction runs as
-- (current_setting('role'), set by the school scope), so one school cannot charge or
-- ring for another.

create table storage_usage (
    tenant_id   bigint primary key references tenants (id) on delete cascade,
    bytes       bigint not null default 0 check (bytes >= 0),
    files       bigint not null default 0 check (files >= 0),
    updated_at  timestamptz not null default now()
);

-- The school of the current school scope (null outside one).
create function school_of_current_role() returns bigint
language sql stable security definer set search_path = pg_catalog, public as $$
    select id from public.tenants where db_role = current_setting('role', true);
$$;

-- Adds (or, with negative values, removes) bytes and files to the current school's usage.
-- An increase that would take the school over its plan's quota changes nothing and
-- answers ok = false. Row-locks the school's usage until the caller's transaction ends,
-- so concurrent uploads are charged one after the other.
create function storage_charge(p_bytes bigint, p_files bigint)
returns table (ok boolean, used bigint, quota bigint)
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
    t bigint;
    q bigint;
    u bigint;
begin
    select tn.id, p.storage_quota_bytes into t, q
      from public.tenants tn join public.plans p on p.code = tn.plan
     where tn.db_role = current_setting('role', true);
    if t is null then
        raise exception 'storage_charge outside a school scope';
    end if;
    insert into public.storage_usage (tenant_id) values (t) on conflict do nothing;
    if p_bytes > 0 then
        update public.storage_usage s
           set bytes = s.bytes + p_bytes, files = s.files + p_files, updated_at = now()
         where s.tenant_id = t and s.bytes + p_bytes <= q
        returning s.bytes into u;
        if not found then
            select s.bytes into u from public.storage_usage s where s.tenant_id = t;
            return query select false, u, q;
            return;
        end if;
    else
        update public.storage_usage s
           set bytes = greatest(s.bytes + p_bytes, 0), files = greatest(s.files + p_files, 0),
               updated_at = now()
         where s.tenant_id = t
        returning s.bytes into u;
    end if;
    return query select true, u, q;
end;
$$;

-- Preview work waiting per school. A school's transaction that adds a file to preview
-- rings through preview_ring (the row lock it takes is held until that transaction ends,
-- so a worker never sees the ring without the file); workers take the least recently
-- served school with work due.
create table preview_queue (
    tenant_id   bigint primary key references tenants (id) on delete cascade,
    due_at      timestamptz not null default now(),
    served_at   timestamptz not null default '-infinity'
);

create index preview_queue_due_idx on preview_queue (due_at);

create function preview_ring() returns void
language plpgsql security definer set search_path = pg_catalog, public as $$
declare
    t bigint := public.school_of_current_role();
begin
    if t is null then
        raise exception 'preview_ring outside a school scope';
    end if;
    insert into public.preview_queue as q (tenant_id) values (t)
    on conflict (tenant_id) do update set due_at = least(q.due_at, now());
    perform pg_notify('campus_preview', t::text);
end;
$$;
