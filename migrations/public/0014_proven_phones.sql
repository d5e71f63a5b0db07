-- Proven phones: an account's phone counts as its owner's only once a one-time code sent to
-- it was typed back (`phone_verified_at`). Nobody chooses a password for somebody else: a
-- school admin adding a person creates an invitation the person accepts with a code (or,
-- for an account whose phone is proven, signed in).

alter table accounts add column phone_verified_at timestamptz;

-- SMS one-time codes. Only a salted SHA-256 of the code is kept. A code is bound to one
-- purpose, lives 5 minutes, allows 5 tries, and once typed correctly yields a proof (also
-- kept only hashed) that the next step redeems once.
create table phone_codes (
    id          bigint generated always as identity primary key,
    phone       text not null check (phone ~ '^1[3-9][0-9]{9}$'),
    purpose     text not null check (purpose in ('join', 'invite', 'reset', 'link')),
    salt        bytea not null,
    code_hash   bytea not null,
    tries       integer not null default 0,
    client_ip   text,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    verified_at timestamptz,
    proof_hash  bytea unique,
    used_at     timestamptz
);

create index phone_codes_phone_idx on phone_codes (phone, created_at desc);
create index phone_codes_ip_idx on phone_codes (client_ip, created_at desc);

-- A school's invitation of one person: by phone (the person proves it with a code, or
-- accepts signed in once the account's phone is proven), or of an existing username-only
-- account (accepted by its owner signed in). Roles and links are granted on acceptance.
create table member_invitations (
    id                  bigint generated always as identity primary key,
    tenant_id           bigint not null references tenants (id) on delete cascade,
    token_hash          bytea not null unique,
    phone               text check (phone ~ '^1[3-9][0-9]{9}$'),
    account_id          bigint references accounts (id) on delete cascade,
    display_name        text not null check (length(display_name) between 1 and 50),
    roles               text[] not null check (cardinality(roles) > 0),
    staff_id            bigint,
    guardian_id         bigint,
    valid_until         date,
    invited_by          bigint references accounts (id) on delete set null,
    status              text not null default 'pending'
                        check (status in ('pending', 'accepted', 'declined', 'cancelled')),
    accepted_account_id bigint references accounts (id) on delete set null,
    created_at          timestamptz not null default now(),
    expires_at          timestamptz not null,
    decided_at          timestamptz,
    check ((phone is null) <> (account_id is null)),
    check ((status = 'pending') = (decided_at is null))
);

create unique index member_invitations_one_phone_idx
    on member_invitations (tenant_id, phone) where status = 'pending';
create unique index member_invitations_one_account_idx
    on member_invitations (tenant_id, account_id) where status = 'pending';
create index member_invitations_phone_idx on member_invitations (phone) where status = 'pending';
create index member_invitations_tenant_idx on member_invitations (tenant_id, created_at desc);
