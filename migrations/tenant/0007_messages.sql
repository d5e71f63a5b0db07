-- Home–school messages and the principal's mailbox (校长信箱).
--
-- A thread has members (staff or guardian rows of this school); a member's unread
-- messages are those newer than their last_read_at and not written by them. A head
-- teacher's message to all parents of a class opens one thread per guardian
-- (kind class_broadcast), so replies stay private between that parent and the teacher.
-- A message to all staff is one shared thread (kind staff_broadcast).

create table threads (
    id         bigint generated always as identity primary key,
    subject    text not null check (length(subject) between 1 and 200),
    kind       text not null check (kind in ('direct', 'class_broadcast', 'staff_broadcast')),
    class_id   bigint references classes (id) on delete set null,
    created_at timestamptz not null default now()
);

create table thread_members (
    thread_id    bigint not null references threads (id) on delete cascade,
    member_kind  text not null check (member_kind in ('staff', 'guardian')),
    member_id    bigint not null,
    last_read_at timestamptz,
    primary key (thread_id, member_kind, member_id)
);

create index thread_members_member_idx on thread_members (member_kind, member_id);

create table messages (
    id          bigint generated always as identity primary key,
    thread_id   bigint not null references threads (id) on delete cascade,
    author_kind text not null check (author_kind in ('staff', 'guardian')),
    author_id   bigint not null,
    author_name text not null,
    -- Plain text.
    body        text not null check (length(body) between 1 and 2000),
    created_at  timestamptz not null default now()
);

create index messages_thread_idx on messages (thread_id, created_at);

create table letter_types (
    id     bigint generated always as identity primary key,
    name   text not null unique check (length(name) between 1 and 50),
    active boolean not null default true
);

insert into letter_types (name) values ('建议'), ('投诉'), ('表扬'), ('咨询');

create table letters (
    id          bigint generated always as identity primary key,
    type_id     bigint not null references letter_types (id),
    author_kind text not null check (author_kind in ('staff', 'guardian')),
    author_id   bigint not null,
    author_name text not null,
    -- The writer's name is hidden from readers; the writer still sees the letter and replies.
    anonymous   boolean not null default false,
    subject     text not null check (length(subject) between 1 and 200),
    body        text not null check (length(body) between 1 and 2000),
    status      text not null default 'open' check (status in ('open', 'answered')),
    created_at  timestamptz not null default now()
);

create index letters_created_idx on letters (created_at desc);
create index letters_author_idx on letters (author_kind, author_id);

create table letter_replies (
    id              bigint generated always as identity primary key,
    letter_id       bigint not null references letters (id) on delete cascade,
    author_staff_id bigint references staff (id),
    author_name     text not null,
    body            text not null check (length(body) between 1 and 2000),
    created_at      timestamptz not null default now()
);

create index letter_replies_letter_idx on letter_replies (letter_id, created_at);
