-- One-time codes for single sign-on. A code is bound to the one host that may redeem it,
-- lives a minute, and works once. Only its SHA-256 is stored.
create table sso_codes (
    code_hash   bytea primary key,
    account_id  bigint not null references accounts (id) on delete cascade,
    target_host text not null,
    -- 'central': lets the login host open its own session after a school's sign-in form;
    -- 'site': lets a school's host open a session for someone signed in centrally.
    purpose     text not null check (purpose in ('central', 'site')),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    created_at  timestamptz not null default now()
);

create index sso_codes_expiry_idx on sso_codes (expires_at);
