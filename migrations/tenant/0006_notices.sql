-- Notices (通知) with receipts. A notice's audience is expanded once, when it is sent, into
-- notice_recipients by one INSERT … SELECT, so its receipts keep the people it reached even
-- when pupils change class later. class_id groups the receipts per class (a guardian with
-- children in several classes is listed under the lowest class id; staff under none).

create table notices (
    id                bigint generated always as identity primary key,
    sender_account_id bigint not null,
    sender_name       text not null,
    sender_staff_id   bigint,
    title             text not null check (length(title) between 1 and 200),
    -- Sanitised HTML (no scripts, no event handlers).
    body_html         text not null check (length(body_html) <= 40000),
    -- What the sender chose, e.g. {"kind": "classes", "ids": [3, 4]}.
    audience          jsonb not null,
    mode              text not null check (mode in ('read', 'confirm', 'signature')),
    deadline          timestamptz,
    created_at        timestamptz not null default now()
);

create index notices_sender_idx on notices (sender_account_id, created_at desc);

create table notice_attachments (
    notice_id    bigint not null references notices (id) on delete cascade,
    n            smallint not null check (n > 0),
    -- Relative to the school's prefix in object storage.
    object_key   text not null,
    file_name    text not null,
    content_type text not null,
    size         bigint not null check (size >= 0),
    primary key (notice_id, n)
);

create table notice_recipients (
    notice_id      bigint not null references notices (id) on delete cascade,
    recipient_kind text not null check (recipient_kind in ('staff', 'guardian')),
    recipient_id   bigint not null,
    class_id       bigint,
    read_at        timestamptz,
    confirmed_at   timestamptz,
    signature_name text,
    -- A drawn signature (PNG) relative to the school's prefix in object storage.
    signature_key  text,
    primary key (notice_id, recipient_kind, recipient_id)
);

create index notice_recipients_person_idx on notice_recipients (recipient_kind, recipient_id);
create index notice_recipients_unread_idx on notice_recipients (notice_id) where read_at is null;
