-- The school calendar and the daily scheduled jobs: days off and make-up school days
-- (holidays, 调休 Saturdays), the school's terms, and one row per job and day that ran, so
-- several maintenance instances run each job exactly once.

create table calendar_days (
    day         date primary key,
    -- 'off': no school that day (holiday); 'school': a school day even on a weekend (调休).
    kind        text not null check (kind in ('off', 'school')),
    name        text not null check (length(name) between 1 and 50),
    updated_at  timestamptz not null default now()
);

create table school_terms (
    id          bigint generated always as identity primary key,
    name        text not null check (length(name) between 1 and 50),
    starts_on   date not null,
    ends_on     date not null,
    created_at  timestamptz not null default now(),
    check (ends_on >= starts_on)
);

create index school_terms_dates_idx on school_terms (starts_on, ends_on);

-- A job that ran for a school day; inserted in the same transaction as the job's work.
create table scheduled_runs (
    job         text not null check (job in ('register_reminders', 'gate_absence')),
    day         date not null,
    ran_at      timestamptz not null default now(),
    -- Classes reminded or pupils alerted.
    affected    bigint not null default 0,
    primary key (job, day)
);
