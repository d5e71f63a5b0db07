-- Sensitive pupil fields (seed 000 学生档案: 血型, 特殊病史) and the school's own audit log.
-- Every read of id_number, blood_type or medical_notes through the platform writes a row
-- here; so do roster imports and exports. Pupil ids never leave this schema.

alter table students
    add column blood_type    text check (blood_type in ('A', 'B', 'AB', 'O')),
    add column medical_notes text check (length(medical_notes) <= 500);

create table audit_log (
    id               bigint generated always as identity primary key,
    at               timestamptz not null default now(),
    actor_account_id bigint,
    actor_name       text not null,
    action           text not null check (action ~ '^[a-z_]{3,40}$'),
    -- What was touched, e.g. 'student:42' or 'import:3' (null for whole-school actions).
    subject          text,
    detail           jsonb not null default '{}'
);

create index audit_log_at_idx on audit_log (at desc);
create index audit_log_action_idx on audit_log (action, at desc);
create index audit_log_actor_idx on audit_log (actor_account_id, at desc);
