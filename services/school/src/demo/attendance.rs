//! Demo data for attendance and leave: subject teachers of every class, a grade leader for
//! every grade, and a few leave requests in the first class (whose head teacher and first
//! guardian get demo logins) — pending, approved and one long enough to need the grade
//! leader.

use campus_tenant::SchoolTx;
use chrono::NaiveDate;

/// Adds the attendance and leave demo rows inside the seeding transaction.
pub(super) async fn seed(tx: &mut SchoolTx, today: NaiveDate) -> sqlx::Result<()> {
    // Two subject teachers per class, taken in turn from the ordinary teachers.
    sqlx::query(
        "with t as (select id, subject, row_number() over (order by id) - 1 as n, count(*) over () as total
                      from staff where title = 'teacher'),
              c as (select id, row_number() over (order by id) - 1 as n from classes)
         insert into class_teachers (class_id, staff_id, subject)
         select c.id, t.id, coalesce(t.subject, '')
           from c cross join generate_series(0, 1) k
           join t on t.n = (c.n * 2 + k) % t.total
         on conflict do nothing",
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "update grades g set leader_staff_id = l.id
           from (select id, row_number() over (order by id) as n from staff where title = 'grade_leader') l,
                (select id, row_number() over (order by level) as n from grades) o
          where o.id = g.id and l.n = o.n",
    )
    .execute(&mut **tx)
    .await?;
    // The first three pupils of the first class, each with their first guardian.
    sqlx::query(
        "with p as (
            select s.id as student_id,
                   (select min(sg.guardian_id) from student_guardians sg where sg.student_id = s.id) as guardian_id,
                   row_number() over (order by s.id) as n
              from students s where s.class_id = (select min(id) from classes)
         ), tz as (select coalesce((select timezone from school_profile where id = 1), 'Asia/Shanghai') as z)
         insert into leave_requests (student_id, guardian_id, kind, starts_at, ends_at, reason, status, steps)
         select p.student_id, p.guardian_id, x.kind,
                ($1::date + x.from_day + time '08:00') at time zone tz.z,
                ($1::date + x.to_day + time '17:00') at time zone tz.z,
                x.reason, x.status, x.steps
           from p cross join tz
           join (values (1, 'sick', 1, 1, '发烧，需在家休息一天', 'pending', '{head_teacher}'::text[]),
                        (2, 'personal', -2, -2, '参加亲属婚礼', 'approved', '{head_teacher}'::text[]),
                        (3, 'personal', 3, 8, '随父母回老家探亲', 'pending', '{head_teacher,grade_leader}'::text[]))
                as x(n, kind, from_day, to_day, reason, status, steps) on x.n = p.n",
    )
    .bind(today)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "insert into leave_approvals (leave_id, step, decision, by_staff_id, by_account, note)
         select l.id, 'head_teacher', 'approved', c.head_teacher_id, 0, '同意'
           from leave_requests l join students s on s.id = l.student_id join classes c on c.id = s.class_id
          where l.status = 'approved'",
    )
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "insert into attendance_marks (register_id, student_id, status, note)
         select r.id, l.student_id, 'leave', 'leave:' || l.id
           from leave_requests l join students s on s.id = l.student_id
           join attendance_registers r on r.class_id = s.class_id
          where l.status = 'approved' and r.day = $1::date - 2
         on conflict (register_id, student_id) do update set status = 'leave', note = excluded.note",
    )
    .bind(today)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
