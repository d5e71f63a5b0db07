//! Writing validated rosters: one batched statement per roster and step, inside the
//! caller's school transaction, matched by natural key (工号, 年级+班号, 学号, 手机号+学号)
//! so that importing the same file twice changes nothing the second time.

use std::collections::{BTreeMap, HashSet};

use campus_tenant::SchoolTx;
use chrono::NaiveDate;
use sqlx::Row;

use super::schema::{Field, Kind};
use super::validate::{default_class_name, grade_name, Batch, Known};
use super::Counts;

/// First key of the advisory lock that serialises roster imports of one school.
const LOCK_KEY: i32 = 0x524f_5354; // "ROST"

/// Waits for any other roster import of this school to finish (released at commit or
/// rollback), so two imports never race to insert the same key.
pub async fn lock(tx: &mut SchoolTx) -> sqlx::Result<()> {
    // Advisory locks are cluster-wide; the second key keeps schools from waiting on each other.
    let school = tx.tenant_id().0 as i32;
    sqlx::query("select pg_advisory_xact_lock($1, $2)")
        .bind(LOCK_KEY)
        .bind(school)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The keys the school already has.
pub async fn known(tx: &mut SchoolTx) -> sqlx::Result<Known> {
    let staff = sqlx::query_scalar::<_, String>("select staff_no from staff")
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    let mut classes = HashSet::new();
    let mut retired = HashSet::new();
    for r in sqlx::query(
        "select g.level, c.number, c.retired_at is not null as retired
           from classes c join grades g on g.id = c.grade_id",
    )
    .fetch_all(&mut **tx)
    .await?
    {
        let key = (r.get::<i16, _>("level"), r.get::<i16, _>("number"));
        if r.get::<bool, _>("retired") {
            retired.insert(key);
        } else {
            classes.insert(key);
        }
    }
    let students = sqlx::query_scalar::<_, String>("select student_no from students")
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect();
    Ok(Known {
        staff,
        classes,
        retired,
        students,
    })
}

fn counts(total: usize, inserted: u64, updated: u64) -> Counts {
    Counts {
        inserted,
        updated,
        unchanged: (total as u64).saturating_sub(inserted + updated),
    }
}

/// Writes the batch's valid rows, staff first so that classes may name their head
/// teachers, then classes, pupils and guardians.
pub async fn apply(tx: &mut SchoolTx, batch: &Batch) -> sqlx::Result<BTreeMap<Kind, Counts>> {
    let mut out = BTreeMap::new();
    if !batch.staff.rows.is_empty() {
        out.insert(Kind::Staff, staff(tx, batch).await?);
    }
    if !batch.classes.rows.is_empty() {
        out.insert(Kind::Classes, classes(tx, batch).await?);
    }
    if !batch.students.rows.is_empty() {
        out.insert(Kind::Students, students(tx, batch).await?);
    }
    if !batch.guardians.rows.is_empty() {
        out.insert(Kind::Guardians, guardians(tx, batch).await?);
    }
    Ok(out)
}

async fn staff(tx: &mut SchoolTx, batch: &Batch) -> sqlx::Result<Counts> {
    let part = &batch.staff;
    let rows = &part.rows;
    let no: Vec<&str> = rows.iter().map(|r| r.staff_no.as_str()).collect();
    let name: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let gender: Vec<Option<&str>> = rows.iter().map(|r| r.gender).collect();
    let phone: Vec<Option<&str>> = rows.iter().map(|r| r.phone.as_deref()).collect();
    let title: Vec<&str> = rows.iter().map(|r| r.title).collect();
    let subject: Vec<Option<&str>> = rows.iter().map(|r| r.subject.as_deref()).collect();
    const X: &str = "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
                     as x(staff_no, name, gender, phone, title, subject)";
    let updated = sqlx::query(&format!(
        "update staff s
            set name = n.name, gender = n.gender, phone = n.phone, title = n.title, subject = n.subject
           from (select t.id, x.name,
                        case when $7 then x.gender else t.gender end as gender,
                        case when $8 then x.phone else t.phone end as phone,
                        case when $9 then x.title else t.title end as title,
                        case when $10 then x.subject else t.subject end as subject
                   from {X} join staff t on t.staff_no = x.staff_no) n
          where s.id = n.id
            and (s.name, s.gender, s.phone, s.title, s.subject)
                is distinct from (n.name, n.gender, n.phone, n.title, n.subject)"
    ))
    .bind(&no)
    .bind(&name)
    .bind(&gender)
    .bind(&phone)
    .bind(&title)
    .bind(&subject)
    .bind(part.has(Field::Gender))
    .bind(part.has(Field::Phone))
    .bind(part.has(Field::Title))
    .bind(part.has(Field::Subject))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let inserted = sqlx::query(&format!(
        "insert into staff (staff_no, name, gender, phone, title, subject)
         select x.staff_no, x.name, x.gender, x.phone, x.title, x.subject from {X}
          where not exists (select 1 from staff s where s.staff_no = x.staff_no)"
    ))
    .bind(&no)
    .bind(&name)
    .bind(&gender)
    .bind(&phone)
    .bind(&title)
    .bind(&subject)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(counts(rows.len(), inserted, updated))
}

async fn classes(tx: &mut SchoolTx, batch: &Batch) -> sqlx::Result<Counts> {
    let part = &batch.classes;
    let rows = &part.rows;
    let levels: HashSet<i16> = rows.iter().map(|r| r.level).collect();
    let (grade_levels, grade_names): (Vec<i16>, Vec<&str>) =
        levels.iter().map(|l| (*l, grade_name(*l))).unzip();
    sqlx::query(
        "insert into grades (level, name)
         select x.level, x.name from unnest($1::int2[], $2::text[]) as x(level, name)
          where not exists (select 1 from grades g where g.level = x.level)",
    )
    .bind(&grade_levels)
    .bind(&grade_names)
    .execute(&mut **tx)
    .await?;

    let level: Vec<i16> = rows.iter().map(|r| r.level).collect();
    let number: Vec<i16> = rows.iter().map(|r| r.number).collect();
    let name: Vec<Option<&str>> = rows.iter().map(|r| r.name.as_deref()).collect();
    let head: Vec<Option<&str>> = rows.iter().map(|r| r.head_teacher.as_deref()).collect();
    let default_name: Vec<String> = rows
        .iter()
        .map(|r| default_class_name(r.level, r.number))
        .collect();
    const X: &str = "unnest($1::int2[], $2::int2[], $3::text[], $4::text[], $5::text[])
                     as x(level, number, name, head_no, default_name)";
    let updated = sqlx::query(&format!(
        "update classes c set name = n.name, head_teacher_id = n.head
           from (select t.id, coalesce(x.name, t.name) as name,
                        case when $6 then h.id else t.head_teacher_id end as head
                   from {X}
                   join grades g on g.level = x.level
                   join classes t on t.grade_id = g.id and t.number = x.number
                   left join staff h on h.staff_no = x.head_no) n
          where c.id = n.id and (c.name, c.head_teacher_id) is distinct from (n.name, n.head)"
    ))
    .bind(&level)
    .bind(&number)
    .bind(&name)
    .bind(&head)
    .bind(&default_name)
    .bind(part.has(Field::HeadTeacher))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let inserted = sqlx::query(&format!(
        "insert into classes (grade_id, number, name, head_teacher_id)
         select g.id, x.number, coalesce(x.name, x.default_name), h.id
           from {X}
           join grades g on g.level = x.level
           left join staff h on h.staff_no = x.head_no
          where not exists (select 1 from classes c where c.grade_id = g.id and c.number = x.number)"
    ))
    .bind(&level)
    .bind(&number)
    .bind(&name)
    .bind(&head)
    .bind(&default_name)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(counts(rows.len(), inserted, updated))
}

async fn students(tx: &mut SchoolTx, batch: &Batch) -> sqlx::Result<Counts> {
    let part = &batch.students;
    let rows = &part.rows;
    let no: Vec<&str> = rows.iter().map(|r| r.student_no.as_str()).collect();
    let name: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let gender: Vec<Option<&str>> = rows.iter().map(|r| r.gender).collect();
    let birth: Vec<Option<NaiveDate>> = rows.iter().map(|r| r.birth_date).collect();
    let level: Vec<i16> = rows.iter().map(|r| r.level).collect();
    let number: Vec<i16> = rows.iter().map(|r| r.number).collect();
    let id_number: Vec<Option<&str>> = rows.iter().map(|r| r.id_number.as_deref()).collect();
    let blood: Vec<Option<&str>> = rows.iter().map(|r| r.blood_type).collect();
    let notes: Vec<Option<&str>> = rows.iter().map(|r| r.medical_notes.as_deref()).collect();
    const X: &str = "unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::int2[], $6::int2[],
                            $7::text[], $8::text[], $9::text[])
                     as x(student_no, name, gender, birth_date, level, number, id_number, blood_type, medical_notes)
                     join grades g on g.level = x.level
                     join classes c on c.grade_id = g.id and c.number = x.number";
    let updated = sqlx::query(&format!(
        "update students s
            set name = n.name, gender = n.gender, birth_date = n.birth_date, class_id = n.class_id,
                id_number = n.id_number, blood_type = n.blood_type, medical_notes = n.medical_notes
           from (select t.id, x.name, c.id as class_id,
                        case when $10 then x.gender else t.gender end as gender,
                        case when $11 then x.birth_date else t.birth_date end as birth_date,
                        case when $12 then x.id_number else t.id_number end as id_number,
                        case when $13 then x.blood_type else t.blood_type end as blood_type,
                        case when $14 then x.medical_notes else t.medical_notes end as medical_notes
                   from {X} join students t on t.student_no = x.student_no) n
          where s.id = n.id
            and (s.name, s.gender, s.birth_date, s.class_id, s.id_number, s.blood_type, s.medical_notes)
                is distinct from
                (n.name, n.gender, n.birth_date, n.class_id, n.id_number, n.blood_type, n.medical_notes)"
    ))
    .bind(&no)
    .bind(&name)
    .bind(&gender)
    .bind(&birth)
    .bind(&level)
    .bind(&number)
    .bind(&id_number)
    .bind(&blood)
    .bind(&notes)
    .bind(part.has(Field::Gender))
    .bind(part.has(Field::BirthDate))
    .bind(part.has(Field::IdNumber))
    .bind(part.has(Field::BloodType))
    .bind(part.has(Field::MedicalNotes))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let inserted = sqlx::query(&format!(
        "insert into students (student_no, name, gender, birth_date, class_id, id_number, blood_type, medical_notes)
         select x.student_no, x.name, x.gender, x.birth_date, c.id, x.id_number, x.blood_type, x.medical_notes
           from {X}
          where not exists (select 1 from students s where s.student_no = x.student_no)"
    ))
    .bind(&no)
    .bind(&name)
    .bind(&gender)
    .bind(&birth)
    .bind(&level)
    .bind(&number)
    .bind(&id_number)
    .bind(&blood)
    .bind(&notes)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(counts(rows.len(), inserted, updated))
}

/// A guardian is one person per phone number (the oldest row with that number); the link
/// to the pupil carries the relation.
async fn guardians(tx: &mut SchoolTx, batch: &Batch) -> sqlx::Result<Counts> {
    let part = &batch.guardians;
    let rows = &part.rows;
    let no: Vec<&str> = rows.iter().map(|r| r.student_no.as_str()).collect();
    let name: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let phone: Vec<&str> = rows.iter().map(|r| r.phone.as_str()).collect();
    let relation: Vec<&str> = rows.iter().map(|r| r.relation).collect();
    let keep_relation = !part.has(Field::Relation);

    // What each row finds today: the guardian's name and the link's relation, if any.
    let before = sqlx::query(
        "select x.i, g.name, sg.relation
           from unnest($1::text[], $2::text[]) with ordinality as x(student_no, phone, i)
           left join lateral (select id, name from guardians where phone = x.phone order by id limit 1) g on true
           left join students s on s.student_no = x.student_no
           left join student_guardians sg on sg.student_id = s.id and sg.guardian_id = g.id
          order by x.i",
    )
    .bind(&no)
    .bind(&phone)
    .fetch_all(&mut **tx)
    .await?;
    let mut c = Counts::default();
    for (r, b) in rows.iter().zip(&before) {
        let existing_name: Option<String> = b.get("name");
        let existing_relation: Option<String> = b.get("relation");
        match existing_relation {
            None => c.inserted += 1,
            Some(rel) => {
                let same_relation = keep_relation || rel == r.relation;
                if same_relation && existing_name.as_deref() == Some(r.name.as_str()) {
                    c.unchanged += 1;
                } else {
                    c.updated += 1;
                }
            }
        }
    }

    sqlx::query(
        "insert into guardians (name, phone)
         select distinct x.name, x.phone from unnest($1::text[], $2::text[]) as x(name, phone)
          where not exists (select 1 from guardians g where g.phone = x.phone)",
    )
    .bind(&name)
    .bind(&phone)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "update guardians g set name = x.name
           from (select distinct name, phone from unnest($1::text[], $2::text[]) as u(name, phone)) x
          where g.id = (select min(id) from guardians where phone = x.phone) and g.name <> x.name",
    )
    .bind(&name)
    .bind(&phone)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "insert into student_guardians (student_id, guardian_id, relation)
         select s.id, g.id, x.relation
           from unnest($1::text[], $2::text[], $3::text[]) as x(student_no, phone, relation)
           join students s on s.student_no = x.student_no
           join lateral (select id from guardians where phone = x.phone order by id limit 1) g on true
         on conflict (student_id, guardian_id) do update set relation = excluded.relation
          where not $4 and student_guardians.relation is distinct from excluded.relation",
    )
    .bind(&no)
    .bind(&phone)
    .bind(&relation)
    .bind(keep_relation)
    .execute(&mut **tx)
    .await?;
    Ok(c)
}
