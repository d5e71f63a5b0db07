-- Notices from the county to its schools' guardians and staff (a county-wide notice). The
-- notice is stored once here; the notification workers copy it into each school as one of
-- the school's own notices (recipients expanded set-based inside the school's schema) and
-- tick off the school here. A school's copy carries county_notice_id, unique there, so a
-- retried or repeated copy adds nothing.

create table county_notices (
    id              bigint generated always as identity primary key,
    -- The sender's key: the same request twice is one notice.
    idempotency_key text unique,
    sender_name     text not null check (length(sender_name) between 1 and 100),
    title           text not null check (length(title) between 1 and 200),
    body_html       text not null check (length(body_html) <= 40000),
    audience        text not null check (audience in ('guardians', 'staff', 'everyone')),
    mode            text not null check (mode in ('read', 'confirm')),
    deadline        timestamptz,
    created_by      text not null,
    created_at      timestamptz not null default now()
);

create table county_notice_schools (
    notice_id        bigint not null references county_notices (id) on delete cascade,
    tenant_id        bigint not null references tenants (id) on delete cascade,
    -- Null until the copy exists in the school.
    school_notice_id bigint,
    recipients       integer,
    done_at          timestamptz,
    attempts         integer not null default 0,
    next_at          timestamptz not null default now(),
    last_error       text,
    primary key (notice_id, tenant_id)
);

create index county_notice_schools_due_idx on county_notice_schools (next_at) where done_at is null;
