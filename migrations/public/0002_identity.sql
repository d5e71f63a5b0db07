-- County-wide identity: one account per person, memberships in schools, server-side
-- sessions bound to the host they were issued for, and the sign-in audit trail.

create table accounts (
    id              bigint generated always as identity primary key,
    username        text unique check (username ~ '^[a-z][a-z0-9_.-]{2,31}$'),
    phone           text unique check (phone ~ '^1[3-9][0-9]{9}$'),
    display_name    text not null check (length(display_name) between 1 and 50),
    password_hash   text not null,
    status          text not null default 'active' check (status in ('active', 'disabled')),
    -- County-level role: the education bureau sees the dashboard; never a school's data.
    county_role     text check (county_role in ('bureau')),
    failed_logins   integer not null default 0,
    locked_until    timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    check (username is not null or phone is not null)
);

-- A person's place in one school. Role codes name the school's roles; staff_id and
-- guardian_id point into the school's own schema (no foreign key across schemas).
create table memberships (
    id              bigint generated always as identity primary key,
    account_id      bigint not null references accounts (id) on delete cascade,
    tenant_id       bigint not null references tenants (id) on delete cascade,
    roles           text[] not null check (cardinality(roles) > 0),
    staff_id        bigint,
    guardian_id     bigint,
    status          text not null default 'active' check (status in ('active', 'disabled')),
    valid_from      date,
    valid_until     date,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    unique (account_id, tenant_id)
);

create index memberships_tenant_idx on memberships (tenant_id);

-- Only a SHA-256 of the session token is stored. A session belongs to exactly one host:
-- a cookie presented on any other host is not a session there.
create table sessions (
    token_hash      bytea primary key,
    account_id      bigint not null references accounts (id) on delete cascade,
    host            text not null,
    tenant_id       bigint references tenants (id) on delete cascade,
    csrf_token      text not null,
    created_at      timestamptz not null default now(),
    last_seen_at    timestamptz not null default now(),
    expires_at      timestamptz not null,
    revoked_at      timestamptz
);

create index sessions_account_idx on sessions (account_id) where revoked_at is null;

create table auth_events (
    id              bigint generated always as identity primary key,
    account_id      bigint references accounts (id) on delete set null,
    tenant_id       bigint references tenants (id) on delete set null,
    login           text,
    event           text not null,
    host            text,
    ip              text,
    at              timestamptz not null default now()
);

create index auth_events_account_idx on auth_events (account_id, at desc);
create index auth_events_tenant_idx on auth_events (tenant_id, at desc);
