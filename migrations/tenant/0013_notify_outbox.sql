-- Notification fan-out beyond the in-app inbox. A send writes its inbox rows and, when the
-- school delivers by email, SMS or WeChat, one outbox job — both in the transaction of the
-- change that caused it. Workers expand a job into one delivery per (recipient, channel)
-- set-based, then send, retry with back-off and, after the last attempt, leave the
-- delivery dead for an admin to retry.

alter table staff add column email text check (email is null or email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$');
alter table guardians add column email text check (email is null or email ~ '^[^@[:space:]]+@[^@[:space:]]+\.[^@[:space:]]+$');

create table notify_settings (
    id              bigint primary key default 1 check (id = 1),
    email_enabled   boolean not null default false,
    sms_enabled     boolean not null default false,
    wechat_enabled  boolean not null default false,
    -- Everything but safety alerts waits for the end of quiet hours (local time).
    quiet_start     time not null default '21:00',
    quiet_end       time not null default '07:00',
    -- The school's own SMS/WeChat provider; unset means the county's.
    webhook_url     text check (webhook_url ~ '^https?://'),
    -- AES-256-GCM under the platform key: 12-byte nonce followed by the ciphertext.
    webhook_secret  bytea,
    updated_at      timestamptz not null default now()
);

insert into notify_settings default values;

-- The school's wording per kind of message and channel; {school}, {title}, {body} and
-- {link} are replaced. Without a row the platform's wording is used.
create table notify_templates (
    category    text not null check (category in ('safety', 'attendance', 'notices', 'messages', 'general')),
    channel     text not null check (channel in ('email', 'sms', 'wechat')),
    subject     text not null default '' check (length(subject) <= 200),
    body        text not null check (length(body) between 1 and 1000),
    updated_at  timestamptz not null default now(),
    primary key (category, channel)
);

-- A person's choice of channels per kind of message (without a row: the defaults).
create table notify_preferences (
    recipient_kind  text not null check (recipient_kind in ('staff', 'guardian')),
    recipient_id    bigint not null,
    category        text not null check (category in ('safety', 'attendance', 'notices', 'messages', 'general')),
    channels        text[] not null check (channels <@ array['email', 'sms', 'wechat']),
    updated_at      timestamptz not null default now(),
    primary key (recipient_kind, recipient_id, category)
);

create table notify_jobs (
    id               bigint generated always as identity primary key,
    -- The sender's key: the same send twice is one job.
    idempotency_key  text not null unique,
    category         text not null check (category in ('safety', 'attendance', 'notices', 'messages', 'general')),
    -- 0 is served first: safety, attendance, messages, then bulk.
    lane             smallint not null check (lane between 0 and 3),
    audience         jsonb not null,
    title            text not null,
    body             text not null default '',
    link             text,
    source           text,
    created_at       timestamptz not null default now(),
    expanded_at      timestamptz,
    recipients       integer
);

create index notify_jobs_unexpanded_idx on notify_jobs (lane, id) where expanded_at is null;
create index notify_jobs_source_idx on notify_jobs (source);

create table notify_deliveries (
    id               bigint generated always as identity primary key,
    job_id           bigint not null references notify_jobs (id) on delete cascade,
    recipient_kind   text not null check (recipient_kind in ('staff', 'guardian')),
    recipient_id     bigint not null,
    channel          text not null check (channel in ('email', 'sms', 'wechat')),
    address          text not null,
    lane             smallint not null,
    status           text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'dead')),
    attempts         integer not null default 0,
    next_attempt_at  timestamptz not null default now(),
    -- While 'sending': a worker that has not reported by then is presumed dead.
    lease_until      timestamptz,
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz not null default now(),
    -- One delivery per recipient and channel, however often the job is expanded.
    unique (job_id, recipient_kind, recipient_id, channel)
);

create index notify_deliveries_due_idx on notify_deliveries (lane, next_attempt_at) where status = 'pending';
create index notify_deliveries_leased_idx on notify_deliveries (lane, lease_until) where status = 'sending';
create index notify_deliveries_dead_idx on notify_deliveries (id) where status = 'dead';
