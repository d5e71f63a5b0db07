-- Sign-in security: a lockout that decays, a proven email for password resets by link,
-- TOTP second factors with recovery codes, sign-ins waiting for their second factor, and
-- single sign-on codes bound to the browser that asked for them.

-- Failures older than the decay window no longer count toward a lock.
alter table accounts add column last_failed_at timestamptz;

-- An email the person proved by opening a link mailed to it (only proven emails get
-- reset links).
alter table accounts add column email text check (email is null or (length(email) <= 254 and email like '%_@_%'));
alter table accounts add column email_confirmed_at timestamptz;

-- TOTP (RFC 6238): the secret (sealed with the platform key when one is configured),
-- a secret being enrolled, and the last time step accepted (a code works once).
alter table accounts add column totp_secret bytea;
alter table accounts add column totp_enabled_at timestamptz;
alter table accounts add column totp_pending bytea;
alter table accounts add column totp_last_step bigint;

-- One-use recovery codes of a second factor; only their SHA-256 is stored.
create table recovery_codes (
    account_id  bigint not null references accounts (id) on delete cascade,
    code_hash   bytea not null,
    used_at     timestamptz,
    primary key (account_id, code_hash)
);

-- Single-use links mailed to a person: confirm an email, or choose a new password.
-- Only the SHA-256 of the token is stored.
create table account_tokens (
    token_hash  bytea primary key,
    account_id  bigint not null references accounts (id) on delete cascade,
    purpose     text not null check (purpose in ('confirm_email', 'reset_password')),
    email       text not null,
    host        text not null,
    expires_at  timestamptz not null,
    used_at     timestamptz,
    created_at  timestamptz not null default now()
);

create index account_tokens_account_idx on account_tokens (account_id, purpose);

-- A password checked, the second factor not yet: no session until it is. Bound to the
-- browser by a cookie holding the token (only its SHA-256 here) and to the host.
create table pending_signins (
    token_hash  bytea primary key,
    account_id  bigint not null references accounts (id) on delete cascade,
    host        text not null,
    tenant_id   bigint references tenants (id) on delete cascade,
    login       text not null,
    -- Required but not enrolled: the person enrols before any session exists.
    must_enrol  boolean not null,
    csrf_token  text not null,
    attempts    integer not null default 0,
    expires_at  timestamptz not null,
    created_at  timestamptz not null default now()
);

-- Whether the sign-in behind a session passed a second factor.
alter table sessions add column second_factor boolean not null default false;

-- A central code is redeemable only by the browser holding the nonce cookie it was
-- issued for; codes carry whether the second factor was passed.
alter table sso_codes add column nonce_hash bytea;
alter table sso_codes add column second_factor boolean not null default false;

-- Plans may make the second factor mandatory for the school's user managers.
alter table plans add column require_second_factor boolean not null default false;
