-- Custom roles a school admin defines on top of the built-in ones: a code used in
-- memberships.roles and the module permissions it grants. The identity extractor resolves
-- a member's permissions from both in one query.
create table school_roles (
    tenant_id   bigint not null references tenants (id) on delete cascade,
    code        text not null check (code ~ '^x_[a-z0-9_]{1,30}$'),
    name        text not null check (length(name) between 1 and 30),
    permissions text[] not null default '{}',
    created_at  timestamptz not null default now(),
    updated_at  timestamptz not null default now(),
    primary key (tenant_id, code)
);

-- The identity audit trail also records who changed whose roles, status or validity:
-- account_id is the person concerned, actor_account_id the person who acted.
alter table auth_events
    add column actor_account_id bigint references accounts (id) on delete set null,
    add column detail jsonb;

create index auth_events_tenant_event_idx on auth_events (tenant_id, event, at desc);
