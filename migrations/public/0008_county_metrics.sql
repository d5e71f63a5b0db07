-- The county dashboard's rollups: aggregates only, never a pupil's row. The rollup job
-- computes them inside each school's own scope and writes what it computed here; the
-- education bureau's pages read nothing else.

-- A school's place in the organisation tree (county → township/学区 → school) and its
-- classifications (group sets: kind of school, urban or rural), copied from its profile.
create table metric_schools (
    tenant_id   bigint primary key references tenants (id) on delete cascade,
    township    text not null default '',
    kind        text not null default 'primary',
    locality    text not null default 'urban',
    -- The school's time zone: its days are local days.
    timezone    text not null default 'Asia/Shanghai',
    updated_at  timestamptz not null default now()
);

-- Data values per school, day and unit: class_id 0 is the whole school, otherwise a class
-- (with its grade level and name, so the tree school → grade → class needs no school
-- table). element names what is counted, category its disaggregation (leave kind and
-- outcome, notice mode, channel, role, …; '' when none).
create table metric_values (
    tenant_id   bigint not null references tenants (id) on delete cascade,
    day         date not null,
    class_id    bigint not null default 0,
    grade_level smallint not null default 0,
    class_name  text not null default '',
    element     text not null,
    category    text not null default '',
    value       double precision not null,
    primary key (tenant_id, day, element, class_id, category)
);

create index metric_values_day_idx on metric_values (day, element);

-- Current-state checks per school (data quality, guardians bound): one value each.
create table metric_snapshots (
    tenant_id   bigint not null references tenants (id) on delete cascade,
    element     text not null,
    value       double precision not null,
    computed_at timestamptz not null default now(),
    primary key (tenant_id, element)
);

-- When each school's rollups were last brought up to date, and how far behind the oldest
-- change it picked up was (the dashboard shows it; the benchmark measures it).
create table metric_rollup_runs (
    tenant_id    bigint primary key references tenants (id) on delete cascade,
    finished_at  timestamptz not null,
    days         integer not null,
    lag_ms       bigint
);
