-- The in-app inbox: one row per (recipient, message). Recipients are the school's own
-- people — staff rows and guardian rows — so audiences such as "guardians of class 3-2"
-- expand in one set-based INSERT … SELECT inside the school's schema. Accounts find their
-- rows through the staff_id / guardian_id of their membership. The notification service
-- (durable outbox, email, SMS) takes over delivery later behind the same interface.

create table inbox_items (
    id             bigint generated always as identity primary key,
    recipient_kind text not null check (recipient_kind in ('staff', 'guardian')),
    recipient_id   bigint not null,
    category       text not null check (category in ('safety', 'attendance', 'notices', 'messages', 'general')),
    -- Higher first: safety alerts (gate, absence) ahead of bulk notices.
    priority       smallint not null default 0,
    title          text not null check (length(title) between 1 and 200),
    body           text not null default '' check (length(body) <= 2000),
    link           text check (link like '/%'),
    -- What caused it, e.g. 'notice:12' or 'leave:7'.
    source         text,
    -- Repeating a send with the same key adds nothing for a recipient who already has it.
    dedupe_key     text,
    created_at     timestamptz not null default now(),
    read_at        timestamptz,
    unique (recipient_kind, recipient_id, dedupe_key)
);

create index inbox_items_recipient_idx on inbox_items (recipient_kind, recipient_id, created_at desc);
create index inbox_items_unread_idx on inbox_items (recipient_kind, recipient_id) where read_at is null;
create index inbox_items_source_idx on inbox_items (source);
