-- Attendance and leave: who teaches which class, the school's attendance settings, every
-- correction of a register already taken, and parents' leave requests with their approval
-- steps (head teacher, then the grade leader for long leave).

create table class_teachers (
    class_id    bigint not null references classes (id) on delete cascade,
    staff_id    bigint not null references staff (id) on delete cascade,
    subject     text not null default '',
    primary key (class_id, staff_id, subject)
);

create index class_teachers_staff_idx on class_teachers (staff_id);

alter table grades add column leader_staff_id bigint references staff (id);

create table attendance_settings (
    id                      bigint primary key default 1 check (id = 1),
    -- Registers not taken by this local time are listed as missing.
    register_deadline       time not null default '08:30',
    -- Leave longer than this many calendar days also needs the grade leader.
    leave_grade_leader_days integer not null default 3 check (leave_grade_leader_days >= 0),
    updated_at              timestamptz not null default now()
);

insert into attendance_settings default values;

create table attendance_corrections (
    id           bigint generated always as identity primary key,
    register_id  bigint not null references attendance_registers (id) on delete cascade,
    student_id   bigint not null references students (id),
    old_status   text not null check (old_status in ('present', 'late', 'absent', 'leave', 'early_leave')),
    new_status   text not null check (new_status in ('present', 'late', 'absent', 'leave', 'early_leave')),
    by_staff_id  bigint references staff (id),
    by_account   bigint not null,
    at           timestamptz not null default now(),
    reason       text check (length(reason) <= 500),
    check (old_status <> new_status)
);

create index attendance_corrections_register_idx on attendance_corrections (register_id);

create table leave_requests (
    id           bigint generated always as identity primary key,
    student_id   bigint not null references students (id),
    guardian_id  bigint references guardians (id),
    kind         text not null check (kind in ('sick', 'personal', 'other')),
    starts_at    timestamptz not null,
    ends_at      timestamptz not null,
    reason       text not null check (length(reason) between 1 and 500),
    photo_key    text,
    status       text not null default 'pending'
                 check (status in ('pending', 'approved', 'rejected', 'cancelled', 'returned')),
    -- The approval steps this request needs, in order.
    steps        text[] not null default '{head_teacher}',
    created_at   timestamptz not null default now(),
    updated_at   timestamptz not null default now(),
    check (ends_at > starts_at)
);

create index leave_requests_student_idx on leave_requests (student_id, starts_at);
create index leave_requests_pending_idx on leave_requests (status) where status = 'pending';

create table leave_approvals (
    leave_id     bigint not null references leave_requests (id) on delete cascade,
    step         text not null check (step in ('head_teacher', 'grade_leader')),
    decision     text not null check (decision in ('approved', 'rejected')),
    by_staff_id  bigint references staff (id),
    by_account   bigint not null,
    at           timestamptz not null default now(),
    note         text check (length(note) <= 500),
    primary key (leave_id, step)
);
