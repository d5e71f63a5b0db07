-- Who an audience is, in SQL: the recipients `(kind, id)` of an audience as the outbox
-- stores it (`campus_notify::Audience` serialised: {"to": …, "ids": …}). The send interface
-- and the delivery workers both expand audiences through it, so they cannot disagree, and
-- a worker expands a whole turn's jobs in one statement (a lateral call per job) instead of
-- one statement per job. An audience it does not know has no recipients.

-- The ids of a JSON array, skipping anything that is not an integer: an unreadable audience
-- must expand to no one, not fail the statement (and with it a worker's whole turn).
create function notify_ids(v jsonb) returns bigint[] language sql immutable as $$
    select array(select e::bigint
                   from jsonb_array_elements_text(case jsonb_typeof(v) when 'array' then v else '[]' end) e
                  where e ~ '^-?[0-9]{1,18}$')
$$;

create function notify_audience(a jsonb) returns table (k text, i bigint)
language plpgsql stable as $$
declare
    list bigint[] := notify_ids(a->'ids');
begin
    case a->>'to'
    when 'people' then
        return query
            select distinct p->>'kind', (p->>'id')::bigint
              from jsonb_array_elements(case jsonb_typeof(a->'ids') when 'array' then a->'ids' else '[]' end) p
             where jsonb_typeof(p) = 'object' and p->>'kind' in ('staff', 'guardian')
               and p->>'id' ~ '^-?[0-9]{1,18}$';
    when 'guardians_of_students' then
        return query
            select distinct 'guardian'::text, sg.guardian_id from student_guardians sg
             where sg.student_id = any(list);
    when 'guardians_of_classes' then
        return query
            select distinct 'guardian'::text, sg.guardian_id from student_guardians sg
              join students s on s.id = sg.student_id
             where s.class_id = any(list) and s.left_on is null;
    when 'guardians_of_grades' then
        return query
            select distinct 'guardian'::text, sg.guardian_id from student_guardians sg
              join students s on s.id = sg.student_id join classes c on c.id = s.class_id
             where c.grade_id = any(list) and s.left_on is null;
    when 'all_guardians' then
        return query
            select distinct 'guardian'::text, sg.guardian_id from student_guardians sg
              join students s on s.id = sg.student_id where s.left_on is null;
    when 'head_teachers_of_classes' then
        return query
            select distinct 'staff'::text, c.head_teacher_id from classes c
             where c.id = any(list) and c.head_teacher_id is not null;
    when 'all_staff' then
        return query select 'staff'::text, s.id from staff s where s.active;
    when 'role_holders' then
        return query
            select 'staff'::text, s.id from staff s
             where s.id = any(notify_ids(a->'ids'->'staff')) and s.active
            union all
            select 'guardian'::text, g.id from guardians g
             where g.id = any(notify_ids(a->'ids'->'guardians'));
    else
        return;
    end case;
end $$;
