-- One school's own tables. This file runs inside the school's schema as the school's own
-- role, so every object below belongs to that role and nothing else can reach it.
-- Keys are BIGINT and nothing references another schema (Citus schema-based sharding).

create table school_profile (
    id          bigint primary key default 1 check (id = 1),
    name        text not null,
    short_name  text not null,
    kind        text not null default 'primary'
                check (kind in ('primary', 'junior', 'nine_year', 'senior', 'complete')),
    township    text,
    locality    text not null default 'urban' check (locality in ('urban', 'rural')),
    motto       text,
    badge_key   text,
    theme_color text not null default '#1f6feb',
    timezone    text not null default 'Asia/Shanghai',
    updated_at  timestamptz not null default now()
);

create table grades (
    id          bigint generated always as identity primary key,
    level       smallint not null unique check (level between 1 and 12),
    name        text not null,
    created_at  timestamptz not null default now()
);

create table staff (
    id          bigint generated always as identity primary key,
    staff_no    text not null unique,
    name        text not null,
    gender      text check (gender in ('male', 'female')),
    phone       text,
    title       text not null default 'teacher',
    subject     text,
    active      boolean not null default true,
    created_at  timestamptz not null default now()
);

create table classes (
    id              bigint generated always as identity primary key,
    grade_id        bigint not null references grades (id),
    number          smallint not null check (number > 0),
    name            text not null,
    head_teacher_id bigint references staff (id),
    created_at      timestamptz not null default now(),
    unique (grade_id, number)
);

create index classes_head_teacher_idx on classes (head_teacher_id);

create table students (
    id          bigint generated always as identity primary key,
    student_no  text not null unique,
    name        text not null,
    gender      text check (gender in ('male', 'female')),
    birth_date  date,
    class_id    bigint not null references classes (id),
    -- Sensitive fields: later modules audit every read of these.
    id_number   text,
    enrolled_on date not null default current_date,
    left_on     date,
    created_at  timestamptz not null default now()
);

create index students_class_idx on students (class_id);

create table guardians (
    id          bigint generated always as identity primary key,
    name        text not null,
    phone       text,
    created_at  timestamptz not null default now()
);

create table student_guardians (
    student_id  bigint not null references students (id) on delete cascade,
    guardian_id bigint not null references guardians (id) on delete cascade,
    relation    text not null default 'parent',
    primary key (student_id, guardian_id)
);

create index student_guardians_guardian_idx on student_guardians (guardian_id);

-- One roll call: a class register for a date and period. Pupils are present unless a mark
-- says otherwise, so a register is one row plus its exceptions.
create table attendance_registers (
    id          bigint generated always as identity primary key,
    class_id    bigint not null references classes (id),
    day         date not null,
    period      text not null default 'morning',
    taken_by    bigint references staff (id),
    taken_at    timestamptz not null default now(),
    enrolled    integer not null check (enrolled >= 0),
    unique (class_id, day, period)
);

create index attendance_registers_day_idx on attendance_registers (day);

create table attendance_marks (
    register_id bigint not null references attendance_registers (id) on delete cascade,
    student_id  bigint not null references students (id),
    status      text not null check (status in ('late', 'absent', 'leave', 'early_leave')),
    note        text,
    primary key (register_id, student_id)
);

create index attendance_marks_student_idx on attendance_marks (student_id);
