-- English wording of a message next to the Chinese one, and each person's language for
-- the messages sent to them (email, SMS, WeChat); the in-app inbox follows the language
-- of the page. Messages without English wording are sent in Chinese to everyone.

alter table inbox_items add column title_en text, add column body_en text;
alter table notify_jobs add column title_en text, add column body_en text;

-- Decided when the job is expanded, from the recipient's choice below.
alter table notify_deliveries add column lang text not null default 'zh' check (lang in ('zh', 'en'));

create table notify_languages (
    recipient_kind  text not null check (recipient_kind in ('staff', 'guardian')),
    recipient_id    bigint not null,
    lang            text not null check (lang in ('zh', 'en')),
    updated_at      timestamptz not null default now(),
    primary key (recipient_kind, recipient_id)
);
