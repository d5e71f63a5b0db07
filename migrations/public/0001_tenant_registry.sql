-- The county-wide registry of schools. Everything here lives in `public`; a school's own
-- tables live in its own schema and never reference these rows by foreign key, so whole
-- school schemas can later be distributed across Citus nodes unchanged.

create table plans (
    code                 text primary key,
    name                 text not null,
    requests_per_second  integer not null check (requests_per_second > 0),
    burst                integer not null check (burst > 0),
    storage_quota_bytes  bigint not null check (storage_quota_bytes > 0),
    max_upload_bytes     bigint not null check (max_upload_bytes > 0),
    notify_per_minute    integer not null check (notify_per_minute > 0),
    db_concurrency       integer not null check (db_concurrency > 0),
    created_at           timestamptz not null default now(),
    updated_at           timestamptz not null default now()
);

insert into plans (code, name, requests_per_second, burst, storage_quota_bytes, max_upload_bytes, notify_per_minute, db_concurrency) values
    ('small',    '小规模学校 (≤ 1,000 名学生)', 50,  100,  53687091200,   104857600,  2000,  4),
    ('standard', '标准学校 (≤ 3,000 名学生)',   150, 300,  214748364800,  209715200,  6000,  8),
    ('large',    '大规模学校 (> 3,000 名学生)', 400, 800,  536870912000,  524288000, 15000, 16);

create table tenants (
    id              bigint generated always as identity primary key,
    slug            text not null unique,
    name            text not null check (length(name) between 1 and 100),
    schema_name     text not null unique,
    db_role         text not null unique,
    s3_prefix       text not null unique,
    status          text not null default 'provisioning'
                    check (status in ('provisioning', 'active', 'suspended', 'deleted')),
    plan            text not null references plans (code),
    -- Per-school overrides of the plan's rate limit (null = the plan's value).
    requests_per_second integer check (requests_per_second > 0),
    burst               integer check (burst > 0),
    suspended_reason    text,
    deleted_at      timestamptz,
    purge_after     timestamptz,
    -- The last tenant migration applied and a digest of every applied checksum, so that
    -- `campus migrate` can skip up-to-date schools without visiting their schemas.
    schema_version  integer not null default 0,
    schema_digest   text not null default '',
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    check ((status = 'deleted') = (deleted_at is not null and purge_after is not null))
);

create index tenants_plan_idx on tenants (plan);
create index tenants_purge_idx on tenants (purge_after) where status = 'deleted';

-- Extra hostnames a school is reachable on besides `<slug>.<base domain>`.
create table tenant_hostnames (
    hostname    text primary key check (hostname = lower(hostname) and length(hostname) <= 253),
    tenant_id   bigint not null references tenants (id) on delete cascade,
    created_at  timestamptz not null default now()
);

create index tenant_hostnames_tenant_idx on tenant_hostnames (tenant_id);

-- County IT centre API tokens. Only a SHA-256 of the token is stored: tokens are 256-bit
-- random values, so a slow password hash would add latency without adding safety.
create table admin_tokens (
    id           bigint generated always as identity primary key,
    name         text not null,
    token_hash   bytea not null unique,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Invitations into a school (the first admin's is created at onboarding). Only the hash of
-- the token is kept; the link is shown once.
create table tenant_invitations (
    id           bigint generated always as identity primary key,
    tenant_id    bigint not null references tenants (id) on delete cascade,
    role         text not null,
    token_hash   bytea not null unique,
    note         text,
    expires_at   timestamptz not null,
    accepted_at  timestamptz,
    created_at   timestamptz not null default now()
);

create index tenant_invitations_tenant_idx on tenant_invitations (tenant_id);

-- What the county IT centre did to which school, and when.
create table admin_audit (
    id          bigint generated always as identity primary key,
    tenant_id   bigint,
    tenant_slug text,
    actor       text not null,
    action      text not null,
    detail      jsonb not null default '{}'::jsonb,
    at          timestamptz not null default now()
);

create index admin_audit_tenant_idx on admin_audit (tenant_slug, at desc);

-- Every instance caches host -> school; any change to the registry tells all of them.
create function notify_tenant_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('campus_tenant_changed', coalesce(new.tenant_id, old.tenant_id)::text);
    return null;
end $$;

create function notify_tenant_row_changed() returns trigger language plpgsql as $$
begin
    perform pg_notify('campus_tenant_changed', coalesce(new.id, old.id)::text);
    return null;
end $$;

create trigger tenants_changed after insert or update or delete on tenants
    for each row execute function notify_tenant_row_changed();
create trigger tenant_hostnames_changed after insert or update or delete on tenant_hostnames
    for each row execute function notify_tenant_changed();
