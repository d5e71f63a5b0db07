//! Realistic demo data for one school: profile and badge, grades, classes with head
//! teachers, staff, pupils with guardians, and 30 school days of morning registers.
//!
//! Names are generated in Rust from a seeded RNG (the same school gets the same people on
//! every machine) and sent in a handful of set-based statements, so a 3,000-pupil school
//! is seeded in well under a second.

mod attendance;
mod join;
mod names;
mod notices;
pub mod schools;

use std::collections::HashSet;

use anyhow::Context;
use chrono::{Datelike, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sqlx::Row;

use campus_tenant::{Db, ObjectKey, ObjectStore, Tenant};
pub use join::seed_join_requests;
pub use notices::{seed_notices, DemoSender};
pub use schools::{DemoSchool, SCHOOLS};

/// What was created.
#[derive(Debug, Default, Clone, Copy)]
pub struct SeedStats {
    pub students: usize,
    pub staff: usize,
    pub classes: usize,
    pub guardians: usize,
    pub registers: u64,
    pub marks: u64,
}

const SUBJECTS: &[&str] = &[
    "语文",
    "数学",
    "英语",
    "科学",
    "道德与法治",
    "音乐",
    "体育",
    "美术",
    "信息技术",
];
const CLASS_SIZE: u32 = 45;

fn grade_levels(kind: &str) -> std::ops::RangeInclusive<i16> {
    match kind {
        "junior" => 7..=9,
        "nine_year" => 1..=9,
        _ => 1..=6,
    }
}

fn grade_name(level: i16) -> &'static str {
    [
        "一年级",
        "二年级",
        "三年级",
        "四年级",
        "五年级",
        "六年级",
        "七年级",
        "八年级",
        "九年级",
        "高一",
        "高二",
        "高三",
    ][usize::try_from(level - 1).unwrap_or(0)]
}

fn class_name(level: i16, number: i16) -> String {
    format!("{}（{}）班", grade_name(level), number)
}

/// An 18-character resident ID number with a valid GB 11643 check character.
fn id_number(rng: &mut impl Rng, birth: NaiveDate) -> String {
    let body = format!(
        "511823{}{:03}",
        birth.format("%Y%m%d"),
        rng.random_range(1..999)
    );
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body}{}", CHECK[(sum % 11) as usize] as char)
}

/// A round badge with the school's short name, as SVG.
pub fn badge_svg(name: &str, color: &str) -> String {
    let short: String = name.trim_start_matches("青川县").chars().take(2).collect();
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let color = if color.starts_with('#')
        && color.len() == 7
        && color[1..].bytes().all(|b| b.is_ascii_hexdigit())
    {
        color
    } else {
        "#1f6feb"
    };
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 120 120" role="img" aria-label="{label}"><circle cx="60" cy="60" r="58" fill="{color}"/><circle cx="60" cy="60" r="50" fill="none" stroke="#fff" stroke-width="3"/><text x="60" y="72" font-size="34" text-anchor="middle" fill="#fff" font-family="sans-serif" font-weight="bold">{short}</text></svg>"##,
        label = esc(name),
        short = esc(&short),
    )
}

/// Seeds `school` into `tenant` unless it already has a profile. `today` anchors the 30
/// school days of history.
pub async fn seed(
    db: &Db,
    store: &ObjectStore,
    tenant: &Tenant,
    school: &DemoSchool,
    today: NaiveDate,
) -> anyhow::Result<Option<SeedStats>> {
    let mut rng = StdRng::seed_from_u64(
        school
            .slug
            .bytes()
            .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
    );
    let mut tx = db.school(tenant).await?;
    let seeded: bool = sqlx::query_scalar("select exists(select 1 from school_profile)")
        .fetch_one(&mut *tx)
        .await?;
    if seeded {
        return Ok(None);
    }
    let mut stats = SeedStats::default();

    // Badge first: if storage fails, the transaction is never committed.
    let badge_key = ObjectKey::parse(crate::home::BADGE_KEY)?;
    store
        .for_tenant(tenant)
        .put(
            &badge_key,
            badge_svg(school.name, school.color).into_bytes().into(),
            "image/svg+xml",
        )
        .await
        .context("storing the badge")?;
    sqlx::query(
        "insert into school_profile (name, short_name, kind, township, locality, motto, badge_key, theme_color)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(school.name)
    .bind(school.short_name)
    .bind(school.kind)
    .bind(school.township)
    .bind(school.locality)
    .bind(school.motto)
    .bind(crate::home::BADGE_KEY)
    .bind(school.color)
    .execute(&mut *tx)
    .await?;

    let levels: Vec<i16> = grade_levels(school.kind).collect();
    let grade_names: Vec<&str> = levels.iter().map(|l| grade_name(*l)).collect();
    let grade_ids: Vec<i64> = sqlx::query_scalar(
        "insert into grades (level, name) select * from unnest($1::int2[], $2::text[]) returning id",
    )
    .bind(&levels)
    .bind(&grade_names)
    .fetch_all(&mut *tx)
    .await?;

    // Staff: roughly one per 13 pupils, as in the county's schools.
    let n_staff = (school.students / 13 + 8) as usize;
    let mut phones = HashSet::new();
    let mut unique_phone = |rng: &mut StdRng| loop {
        let p = names::phone(rng);
        if phones.insert(p.clone()) {
            break p;
        }
    };
    let mut staff_no = Vec::with_capacity(n_staff);
    let mut staff_name = Vec::with_capacity(n_staff);
    let mut staff_gender = Vec::with_capacity(n_staff);
    let mut staff_phone = Vec::with_capacity(n_staff);
    let mut staff_subject = Vec::with_capacity(n_staff);
    let mut staff_title = Vec::with_capacity(n_staff);
    for i in 0..n_staff {
        let female = rng.random_bool(0.7);
        staff_no.push(format!("T{:04}", i + 1));
        staff_name.push(names::person(&mut rng, female));
        staff_gender.push(if female { "female" } else { "male" });
        staff_phone.push(unique_phone(&mut rng));
        staff_subject.push(SUBJECTS[i % SUBJECTS.len()]);
        staff_title.push(match i {
            0 => "principal",
            1 | 2 => "vice_principal",
            _ if i < 2 + levels.len() + 1 => "grade_leader",
            _ if i > n_staff - 4 => "guard",
            _ => "teacher",
        });
    }
    let staff_ids: Vec<i64> = sqlx::query_scalar(
        "insert into staff (staff_no, name, gender, phone, subject, title)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
         returning id",
    )
    .bind(&staff_no)
    .bind(&staff_name)
    .bind(&staff_gender)
    .bind(&staff_phone)
    .bind(&staff_subject)
    .bind(&staff_title)
    .fetch_all(&mut *tx)
    .await?;
    stats.staff = staff_ids.len();

    // Classes: pupils spread evenly over the grades, 45 to a class; teachers from the
    // fourth onward become head teachers.
    let per_grade = school.students / levels.len() as u32;
    let mut class_grade = Vec::new();
    let mut class_number = Vec::new();
    let mut class_names = Vec::new();
    let mut class_head = Vec::new();
    let mut class_level = Vec::new();
    for (gi, level) in levels.iter().enumerate() {
        let n = per_grade.div_ceil(CLASS_SIZE).max(1);
        for number in 1..=n as i16 {
            class_grade.push(grade_ids[gi]);
            class_number.push(number);
            class_names.push(class_name(*level, number));
            class_head.push(staff_ids[(3 + class_head.len()) % staff_ids.len()]);
            class_level.push(*level);
        }
    }
    let class_ids: Vec<i64> = sqlx::query_scalar(
        "insert into classes (grade_id, number, name, head_teacher_id)
         select * from unnest($1::int8[], $2::int2[], $3::text[], $4::int8[]) returning id",
    )
    .bind(&class_grade)
    .bind(&class_number)
    .bind(&class_names)
    .bind(&class_head)
    .fetch_all(&mut *tx)
    .await?;
    stats.classes = class_ids.len();

    // Pupils, and one guardian each (two for about a third of them).
    let year = today.year() - i32::from(today.month() < 9);
    let mut s_no = Vec::new();
    let mut s_name = Vec::new();
    let mut s_gender = Vec::new();
    let mut s_birth = Vec::new();
    let mut s_class = Vec::new();
    let mut s_id = Vec::new();
    let mut s_enrolled = Vec::new();
    let mut g_name = Vec::new();
    let mut g_phone = Vec::new();
    let mut g_student = Vec::new();
    let mut g_relation = Vec::new();
    for (ci, class_id) in class_ids.iter().enumerate() {
        let level = class_level[ci];
        let in_grade = class_level.iter().filter(|l| **l == level).count() as u32;
        let size = per_grade / in_grade + u32::from(rng.random_bool(0.5));
        for _ in 0..size {
            let female = rng.random_bool(0.48);
            let name = names::person(&mut rng, female);
            let birth_year = year - 6 - i32::from(level) + 1;
            let birth = NaiveDate::from_ymd_opt(
                birth_year,
                rng.random_range(1..=12),
                rng.random_range(1..=28),
            )
            .expect("valid date");
            let enrolled =
                NaiveDate::from_ymd_opt(year - i32::from(level) + 1, 9, 1).expect("valid date");
            let no = format!("{}{:05}", enrolled.year(), s_no.len() + 1);
            let surname = names::surname_of(&name).to_owned();
            let father = names::person(&mut rng, false);
            g_name.push(format!(
                "{surname}{}",
                father
                    .chars()
                    .skip(surname.chars().count())
                    .collect::<String>()
            ));
            g_phone.push(unique_phone(&mut rng));
            g_student.push(no.clone());
            g_relation.push(if rng.random_bool(0.55) {
                "mother"
            } else {
                "father"
            });
            if rng.random_bool(0.33) {
                let female = rng.random_bool(0.5);
                g_name.push(names::person(&mut rng, female));
                g_phone.push(unique_phone(&mut rng));
                g_student.push(no.clone());
                g_relation.push(if rng.random_bool(0.5) {
                    "grandparent"
                } else {
                    "parent"
                });
            }
            s_id.push(id_number(&mut rng, birth));
            s_no.push(no);
            s_name.push(name);
            s_gender.push(if female { "female" } else { "male" });
            s_birth.push(birth);
            s_class.push(*class_id);
            s_enrolled.push(enrolled);
        }
    }
    let inserted = sqlx::query(
        "insert into students (student_no, name, gender, birth_date, class_id, id_number, enrolled_on)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::date[], $5::int8[], $6::text[], $7::date[])",
    )
    .bind(&s_no)
    .bind(&s_name)
    .bind(&s_gender)
    .bind(&s_birth)
    .bind(&s_class)
    .bind(&s_id)
    .bind(&s_enrolled)
    .execute(&mut *tx)
    .await?;
    stats.students = inserted.rows_affected() as usize;
    // Blood types for everyone, medical notes for a few (seed 000 学生档案).
    sqlx::query(
        "update students set blood_type = (array['A', 'B', 'AB', 'O'])[1 + id % 4],
                medical_notes = case when id % 17 = 0 then '哮喘，体育课前需备药'
                                     when id % 23 = 0 then '青霉素过敏' end",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "with g as (
            insert into guardians (name, phone) select * from unnest($1::text[], $2::text[]) returning id, phone
         )
         insert into student_guardians (student_id, guardian_id, relation)
         select s.id, g.id, x.relation
           from unnest($3::text[], $2::text[], $4::text[]) as x(student_no, phone, relation)
           join students s on s.student_no = x.student_no
           join g on g.phone = x.phone",
    )
    .bind(&g_name)
    .bind(&g_phone)
    .bind(&g_student)
    .bind(&g_relation)
    .execute(&mut *tx)
    .await?;
    stats.guardians = g_name.len();

    // 30 school days (Monday to Friday) of morning registers, with about 4% exceptions.
    let registers = sqlx::query(
        "with days as (
            select d::date as day from generate_series($1::date - 60, $1::date - 1, interval '1 day') d
             where extract(isodow from d) < 6 order by d desc limit 30
         ), sizes as (select class_id, count(*) as n from students group by class_id)
         insert into attendance_registers (class_id, day, period, taken_by, taken_at, enrolled)
         select c.id, days.day, 'morning', c.head_teacher_id,
                (days.day + time '07:50' + random() * interval '40 minutes') at time zone 'Asia/Shanghai',
                coalesce(sizes.n, 0)
           from classes c cross join days left join sizes on sizes.class_id = c.id",
    )
    .bind(today)
    .execute(&mut *tx)
    .await?;
    stats.registers = registers.rows_affected();
    let marks = sqlx::query(
        "insert into attendance_marks (register_id, student_id, status)
         select register_id, student_id,
                case when x < 0.012 then 'absent' when x < 0.022 then 'leave' when x < 0.035 then 'late' else 'early_leave' end
           from (select r.id as register_id, s.id as student_id, random() as x
                   from attendance_registers r join students s on s.class_id = r.class_id) pairs
          where x < 0.04",
    )
    .execute(&mut *tx)
    .await?;
    stats.marks = marks.rows_affected();

    attendance::seed(&mut tx, today).await?;

    let check: i64 = sqlx::query("select count(*) as n from students")
        .fetch_one(&mut *tx)
        .await?
        .get("n");
    anyhow::ensure!(
        check as usize == stats.students,
        "student count mismatch after seeding"
    );
    tx.commit().await?;
    Ok(Some(stats))
}

/// A person in a school's demo data who gets a demo account.
#[derive(Debug, Clone)]
pub struct DemoPerson {
    pub id: i64,
    pub name: String,
    pub phone: Option<String>,
}

/// The principal (first staff member) of a seeded school.
pub async fn principal(db: &Db, tenant: &Tenant) -> anyhow::Result<DemoPerson> {
    let mut tx = db.school(tenant).await?;
    let (id, name, phone): (i64, String, Option<String>) = sqlx::query_as(
        "select id, name, phone from staff where title = 'principal' order by id limit 1",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(DemoPerson { id, name, phone })
}

/// The head teacher of the school's first class.
pub async fn head_teacher(db: &Db, tenant: &Tenant) -> anyhow::Result<DemoPerson> {
    let mut tx = db.school(tenant).await?;
    let (id, name, phone): (i64, String, Option<String>) = sqlx::query_as(
        "select s.id, s.name, s.phone from classes c join staff s on s.id = c.head_teacher_id order by c.id limit 1",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(DemoPerson { id, name, phone })
}

/// A guardian of a pupil in the school's first class. With `as_person`, that guardian
/// becomes this person (name and phone), so one human holds identities in two schools.
pub async fn guardian(
    db: &Db,
    tenant: &Tenant,
    as_person: Option<&DemoPerson>,
) -> anyhow::Result<DemoPerson> {
    let mut tx = db.school(tenant).await?;
    let (id, name, phone): (i64, String, Option<String>) = sqlx::query_as(
        "select g.id, g.name, g.phone from classes c join students s on s.class_id = c.id
           join student_guardians sg on sg.student_id = s.id join guardians g on g.id = sg.guardian_id
          order by c.id, s.id, g.id limit 1",
    )
    .fetch_one(&mut *tx)
    .await?;
    let person = match as_person {
        Some(p) => {
            sqlx::query("update guardians set name = $2, phone = $3 where id = $1")
                .bind(id)
                .bind(&p.name)
                .bind(&p.phone)
                .execute(&mut *tx)
                .await?;
            DemoPerson {
                id,
                name: p.name.clone(),
                phone: p.phone.clone(),
            }
        }
        None => DemoPerson { id, name, phone },
    };
    tx.commit().await?;
    Ok(person)
}

/// Gives the demo school's staff and guardians a mail address under `demo.invalid` where
/// they have none and switches email delivery on, so that the demo's mail sink shows what
/// the platform sends. Running it again changes nothing.
pub async fn enable_mail(db: &Db, tenant: &Tenant) -> anyhow::Result<()> {
    let mut tx = db.school(tenant).await?;
    let domain = format!("{}.demo.invalid", tenant.slug);
    sqlx::query("update staff set email = 'staff' || id || '@' || $1 where email is null")
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update guardians set email = 'parent' || id || '@' || $1 where email is null")
        .bind(&domain)
        .execute(&mut *tx)
        .await?;
    sqlx::query("update notify_settings set email_enabled = true where id = 1")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_carry_a_valid_check_character() {
        let mut rng = StdRng::seed_from_u64(3);
        let birth = NaiveDate::from_ymd_opt(2015, 3, 9).unwrap();
        for _ in 0..100 {
            let id = id_number(&mut rng, birth);
            assert_eq!(id.len(), 18);
            assert!(id.contains("20150309"));
        }
        // A published example: 11010519491231002X.
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = "11010519491231002"
            .bytes()
            .zip(WEIGHTS)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        assert_eq!(b"10X98765432"[(sum % 11) as usize], b'X');
    }

    #[test]
    fn demo_county_has_32_distinct_valid_schools() {
        let slugs: HashSet<_> = SCHOOLS.iter().map(|s| s.slug).collect();
        assert_eq!(slugs.len(), 32);
        for s in SCHOOLS {
            assert!(campus_tenant::Slug::parse(s.slug).is_ok(), "{}", s.slug);
            assert!((800..=3000).contains(&s.students), "{}", s.slug);
        }
    }

    #[test]
    fn badges_escape_names() {
        let svg = badge_svg("<script>", "red\"");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("#1f6feb"));
    }

    #[test]
    fn class_names_read_naturally() {
        assert_eq!(class_name(3, 2), "三年级（2）班");
    }
}
