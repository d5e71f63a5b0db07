//! Pupil records: a searchable list for staff, a parent's own children, and one pupil's
//! record. ID number, blood type and medical notes are masked until someone allowed to see
//! them asks to reveal them; every reveal is written to the audit log in the same
//! transaction that read the fields.
//!
//! Who may see what (by permission, never by role name):
//! - `PupilRecords`: the records of the school's pupils;
//! - `OwnChildren`: the records of the pupils the person is a guardian of;
//! - `PupilSensitive`: reveal the sensitive fields — school-wide with `ManageRoster` or
//!   `ViewAudit` as well, otherwise only for pupils of classes the person heads; a parent
//!   may always reveal their own child's.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant};
use campus_web::Lang;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::audit::{self, Action};
use crate::SchoolState;

#[derive(Debug, Deserialize, Default)]
pub(crate) struct ListQuery {
    #[serde(default)]
    q: String,
}

struct ListRow {
    id: i64,
    student_no: String,
    name: String,
    class_name: String,
}

#[derive(Template)]
#[template(path = "pupils.html")]
struct ListPage<'a> {
    lang: Lang,
    q: &'a str,
    rows: Vec<ListRow>,
    own_children: bool,
}

/// The pupil ids a person may open: `None` = every pupil of the school.
enum Reach {
    All,
    Guardian(i64),
}

fn reach(user: &CurrentUser) -> Option<Reach> {
    if user.can(Permission::PupilRecords) {
        Some(Reach::All)
    } else if user.can(Permission::OwnChildren) {
        user.guardian_id.map(Reach::Guardian)
    } else {
        None
    }
}

fn forbidden() -> Response {
    campus_web::message_page(
        StatusCode::FORBIDDEN,
        campus_web::PLATFORM_NAME,
        ("没有权限", "您的身份不能查看学生档案。"),
        ("Forbidden", "Your identity here cannot see pupil records."),
    )
}

/// `GET /pupils?q=`: staff search by name or number; parents see their children.
pub(crate) async fn list(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> Response {
    let Some(reach) = reach(&user) else {
        return forbidden();
    };
    let rows = async {
        let mut tx = state.db.school(&school).await?;
        let q = query.q.trim();
        let pattern = format!("%{}%", q.replace(['%', '_', '\\'], ""));
        let guardian = match reach {
            Reach::All => None,
            Reach::Guardian(g) => Some(g),
        };
        let rows = sqlx::query(
            "select s.id, s.student_no, s.name, c.name as class_name
               from students s join classes c on c.id = s.class_id
              where s.left_on is null
                and ($1::bigint is null or s.id in (select student_id from student_guardians where guardian_id = $1))
                and ($2 = '' or s.name like $3 or s.student_no like $3)
              order by c.grade_id, c.number, s.student_no limit 200",
        )
        .bind(guardian)
        .bind(q)
        .bind(&pattern)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, campus_tenant::TenantError>(
            rows.into_iter()
                .map(|r| ListRow {
                    id: r.get("id"),
                    student_no: r.get("student_no"),
                    name: r.get("name"),
                    class_name: r.get("class_name"),
                })
                .collect::<Vec<_>>(),
        )
    }
    .await;
    let rows = match rows {
        Ok(r) => r,
        Err(e) => return crate::ui::unavailable("pupil records", e),
    };
    let body = ListPage {
        lang,
        q: &query.q,
        rows,
        own_children: !user.can(Permission::PupilRecords),
    }
    .render()
    .unwrap_or_default();
    crate::ui::page(lang, &school, &user, lang.pick("学生档案", "Pupils"), &body)
}

#[derive(Debug, Deserialize, Default)]
pub(crate) struct RecordQuery {
    #[serde(default)]
    reveal: Option<String>,
}

/// One pupil's record; the sensitive fields are `None` unless revealed.
#[derive(Debug, Serialize)]
pub(crate) struct Record {
    id: i64,
    student_no: String,
    name: String,
    gender: Option<String>,
    birth_date: Option<chrono::NaiveDate>,
    class_name: String,
    guardians: Vec<(String, Option<String>, String)>,
    /// Whether the viewer may reveal the sensitive fields.
    may_reveal: bool,
    revealed: bool,
    id_number: Option<String>,
    blood_type: Option<String>,
    medical_notes: Option<String>,
    /// The ID number with all but the first 3 and last 4 characters hidden.
    id_number_masked: Option<String>,
}

/// All but the first 3 and last 4 characters hidden (everything when that would show
/// it all); also used for phone numbers on admin pages.
pub(crate) fn mask(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

enum Lookup {
    Found(Box<Record>),
    /// No such pupil, or not one this person may open (the same answer for both).
    NotFound,
    /// Asked to reveal without the right to.
    MayNotReveal,
}

async fn load(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    id: i64,
    reveal: bool,
) -> Result<Lookup, sqlx::Error> {
    let Some(reach) = reach(user) else {
        return Ok(Lookup::NotFound);
    };
    let guardian = match reach {
        Reach::All => None,
        Reach::Guardian(g) => Some(g),
    };
    let Some(r) = sqlx::query(
        "select s.id, s.student_no, s.name, s.gender, s.birth_date, c.name as class_name,
                s.id_number, s.blood_type, s.medical_notes, c.head_teacher_id
           from students s join classes c on c.id = s.class_id
          where s.id = $1
            and ($2::bigint is null or exists (select 1 from student_guardians sg where sg.student_id = s.id and sg.guardian_id = $2))",
    )
    .bind(id)
    .bind(guardian)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(Lookup::NotFound);
    };
    let heads_class =
        user.staff_id.is_some() && r.get::<Option<i64>, _>("head_teacher_id") == user.staff_id;
    let may_reveal = guardian.is_some()
        || (user.can(Permission::PupilSensitive)
            && (user.can(Permission::ManageRoster)
                || user.can(Permission::ViewAudit)
                || heads_class));
    if reveal && !may_reveal {
        return Ok(Lookup::MayNotReveal);
    }
    let guardians = sqlx::query(
        "select g.name, g.phone, sg.relation from student_guardians sg join guardians g on g.id = sg.guardian_id
          where sg.student_id = $1 order by g.id",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|g| (g.get("name"), g.get("phone"), g.get("relation")))
    .collect();
    let id_number: Option<String> = r.get("id_number");
    let record = Record {
        id,
        student_no: r.get("student_no"),
        name: r.get("name"),
        gender: r.get("gender"),
        birth_date: r.get("birth_date"),
        class_name: r.get("class_name"),
        guardians,
        may_reveal,
        revealed: reveal,
        id_number_masked: id_number.as_deref().map(mask),
        id_number: reveal.then_some(id_number).flatten(),
        blood_type: if reveal { r.get("blood_type") } else { None },
        medical_notes: if reveal { r.get("medical_notes") } else { None },
    };
    if reveal {
        audit::record(
            tx,
            user,
            Action::SensitiveRead,
            Some(&format!("student:{id}")),
            serde_json::json!({"fields": audit::SENSITIVE_FIELDS, "pupil": record.student_no}),
        )
        .await?;
    }
    Ok(Lookup::Found(Box::new(record)))
}

async fn lookup(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
    reveal: bool,
) -> Result<Lookup, campus_tenant::TenantError> {
    let mut tx = state.db.school(school).await?;
    let found = load(&mut tx, user, id, reveal).await?;
    tx.commit().await?;
    Ok(found)
}

#[derive(Template)]
#[template(path = "pupil.html")]
struct RecordPage<'a> {
    lang: Lang,
    p: &'a Record,
}

fn not_found(school: &Tenant) -> Response {
    campus_web::message_page(
        StatusCode::NOT_FOUND,
        &school.name,
        ("找不到该学生", "没有这名学生，或您无权查看。"),
        (
            "Pupil not found",
            "There is no such pupil, or you may not see them.",
        ),
    )
}

fn may_not_reveal() -> Response {
    campus_web::message_page(
        StatusCode::FORBIDDEN,
        campus_web::PLATFORM_NAME,
        ("没有权限", "您不能查看该学生的身份证号、血型和病史。"),
        (
            "Forbidden",
            "You may not see this pupil's sensitive fields.",
        ),
    )
}

/// `GET /pupils/{id}[?reveal=1]`.
pub(crate) async fn record(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<RecordQuery>,
) -> Response {
    match lookup(&state, &school, &user, id, q.reveal.is_some()).await {
        Ok(Lookup::Found(p)) => {
            let body = RecordPage { lang, p: &p }.render().unwrap_or_default();
            crate::ui::page(lang, &school, &user, &p.name, &body)
        }
        Ok(Lookup::NotFound) => not_found(&school),
        Ok(Lookup::MayNotReveal) => may_not_reveal(),
        Err(e) => crate::ui::unavailable("pupil records", e),
    }
}

/// `GET /api/v1/pupils/{id}[?reveal=1]`: the same record as JSON.
pub(crate) async fn record_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<RecordQuery>,
) -> Response {
    let json_error = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            Json(serde_json::json!({"code": code, "message": message})),
        )
            .into_response()
    };
    match lookup(&state, &school, &user, id, q.reveal.is_some()).await {
        Ok(Lookup::Found(p)) => Json(p).into_response(),
        Ok(Lookup::NotFound) => json_error(StatusCode::NOT_FOUND, "not_found", "no such pupil"),
        Ok(Lookup::MayNotReveal) => json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you may not see this pupil's sensitive fields",
        ),
        Err(e) => {
            tracing::error!(error = %e, "pupil record failed");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again shortly",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn id_numbers_are_masked_to_their_ends() {
        assert_eq!(super::mask("510122201509091234"), "510***********1234");
        assert_eq!(super::mask("12345"), "*****");
    }
}
