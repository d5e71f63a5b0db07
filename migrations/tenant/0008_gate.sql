-- Gate entry and exit (门禁): the school's gate devices with their signing secrets, every
-- entry or exit a device reports (a device's own event id makes a resent event a no-op),
-- and the arrival cut-off after which pupils who have not come in are reported absent.

create table gate_devices (
    id          bigint generated always as identity primary key,
    name        text not null check (length(name) between 1 and 100),
    key_id      text not null unique,
    -- HMAC-SHA256 key, hex; shown once when the device is created.
    secret      text not null,
    active      boolean not null default true,
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);

create table gate_events (
    id               bigint generated always as identity primary key,
    device_id        bigint not null references gate_devices (id),
    device_event_id  text not null check (length(device_event_id) between 1 and 100),
    student_id       bigint not null references students (id),
    direction        text not null check (direction in ('in', 'out')),
    at               timestamptz not null,
    received_at      timestamptz not null default now(),
    unique (device_id, device_event_id)
);

create index gate_events_student_at_idx on gate_events (student_id, at);
create index gate_events_at_idx on gate_events (at);

alter table attendance_settings add column gate_arrival_cutoff time not null default '08:10';

-- One absence alert per pupil per day.
create table gate_absence_alerts (
    student_id  bigint not null references students (id),
    day         date not null,
    at          timestamptz not null default now(),
    primary key (student_id, day)
);

-- Visitor passes: a visitor applies online, the host teacher decides, the guard checks the
-- pass code at the gate. The visitor follows the application with a private token.
create table gate_visits (
    id            bigint generated always as identity primary key,
    token         text not null unique,
    visitor_name  text not null check (length(visitor_name) between 1 and 50),
    phone         text not null check (length(phone) between 5 and 20),
    host_staff_id bigint not null references staff (id),
    visit_at      timestamptz not null,
    purpose       text not null default '' check (length(purpose) <= 200),
    status        text not null default 'pending' check (status in ('pending', 'approved', 'rejected')),
    pass_code     text unique,
    decided_at    timestamptz,
    checked_in_at timestamptz,
    created_at    timestamptz not null default now()
);

create index gate_visits_host_idx on gate_visits (host_staff_id, status);
