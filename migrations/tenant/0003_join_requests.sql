-- Joining a school by link or QR code (seed 000 用户加入): the school shows one link for
-- parents and one for staff; people who open it apply, and the school reviews each
-- application (待审核 → 成功加入 / 已拒绝). Accounts live in `public`; the ids of the
-- account and of the rows created here are kept on the request.

create table join_links (
    id          bigint generated always as identity primary key,
    kind        text not null check (kind in ('parent', 'staff')),
    token       text not null unique check (token ~ '^[0-9a-f]{32}$'),
    active      boolean not null default true,
    created_at  timestamptz not null default now(),
    disabled_at timestamptz,
    check (active = (disabled_at is null))
);

-- Rotating a link disables the old one: at most one active link per kind.
create unique index join_links_one_active_idx on join_links (kind) where active;

create table join_requests (
    id                  bigint generated always as identity primary key,
    link_id             bigint not null references join_links (id),
    kind                text not null check (kind in ('parent', 'staff')),
    -- The applicant's own link to the status page.
    status_token        text not null unique check (status_token ~ '^[0-9a-f]{32}$'),
    name                text not null check (length(name) between 1 and 50),
    phone               text not null check (phone ~ '^1[3-9][0-9]{9}$'),
    relation            text check (relation in ('father', 'mother', 'grandfather', 'grandmother',
                                                 'maternal_grandfather', 'maternal_grandmother', 'other')),
    child_name          text check (length(child_name) between 1 and 50),
    class_id            bigint references classes (id),
    staff_title         text check (length(staff_title) between 1 and 30),
    staff_subject       text check (length(staff_subject) between 1 and 30),
    note                text check (length(note) <= 500),
    status              text not null default 'pending'
                        check (status in ('pending', 'approved', 'rejected')),
    reviewer_account_id bigint,
    reviewer_name       text,
    reviewed_at         timestamptz,
    reject_reason       text check (length(reject_reason) between 1 and 200),
    student_id          bigint references students (id),
    guardian_id         bigint references guardians (id),
    staff_id            bigint references staff (id),
    -- Role codes the reviewer granted in this school.
    granted_roles       text[],
    account_id          bigint,
    -- Argon2id hash of the password chosen for a new account; null when the phone already
    -- had an account (its password was proven instead). Cleared once the account exists
    -- or the request is rejected.
    password_hash       text,
    existing_account    boolean not null default false,
    created_at          timestamptz not null default now(),
    check (kind <> 'parent' or (relation is not null and child_name is not null and class_id is not null)),
    check (kind <> 'staff' or staff_title is not null),
    check ((status = 'pending') = (reviewed_at is null)),
    check ((status = 'rejected') = (reject_reason is not null)),
    check (status <> 'approved' or kind <> 'parent' or (student_id is not null and guardian_id is not null)),
    check (status <> 'approved' or kind <> 'staff' or staff_id is not null)
);

-- One application waiting per phone and kind; a second one is refused (409).
create unique index join_requests_one_pending_idx on join_requests (phone, kind) where status = 'pending';
create index join_requests_status_idx on join_requests (status, created_at desc);
