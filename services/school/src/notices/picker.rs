//! The people picker of the new-notice form: staff and guardians of this school found by
//! name (a guardian also by their child's name) or phone suffix, guardians shown with their
//! children and classes. The JSON endpoint serves the page's search box; without JavaScript
//! the form's search button reloads `/notices/new?q=…` with the same results as checkboxes.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{school_wide, Fail};
use crate::notify::Recipient;
use crate::SchoolState;

/// Most people of each kind one search returns.
pub const LIMIT: i64 = 20;
/// Longest search text, in characters.
pub const QUERY_MAX: usize = 30;

/// One person to choose.
#[derive(Clone, Debug, Serialize)]
pub struct Person {
    /// The value of the form's `people` field: `staff:3`, `guardian:12`.
    pub key: String,
    pub kind: &'static str,
    pub id: i64,
    pub name: String,
    /// Staff number, or a guardian's children with their classes.
    pub detail: String,
    /// The last four digits of the phone number, if any.
    pub phone_tail: Option<String>,
}

/// Who may pick people: senders who may address the whole school (the people target is
/// theirs alone).
pub(super) fn may_pick(user: &CurrentUser) -> Result<(), Fail> {
    if user.can(Permission::SendNotices) && school_wide(user) {
        Ok(())
    } else {
        Err(Fail::Forbidden(
            "您的身份不能按人员发送通知。",
            "You may not address chosen people.",
        ))
    }
}

const STAFF: &str =
    "select s.id, s.name, s.staff_no as detail, right(s.phone, 4) as tail from staff s";

const GUARDIANS: &str = "select g.id, g.name, right(g.phone, 4) as tail,
        coalesce(string_agg(st.name || '（' || c.name || '）', '、' order by st.name), '') as detail
   from guardians g
   left join student_guardians sg on sg.guardian_id = g.id
   left join students st on st.id = sg.student_id and st.left_on is null
   left join classes c on c.id = st.class_id";

fn staff_row(r: sqlx::postgres::PgRow) -> Person {
    person("staff", r)
}

fn person(kind: &'static str, r: sqlx::postgres::PgRow) -> Person {
    let id: i64 = r.get("id");
    Person {
        key: format!("{kind}:{id}"),
        kind,
        id,
        name: r.get("name"),
        detail: r.get("detail"),
        phone_tail: r.get("tail"),
    }
}

/// Staff and guardians matching `q`: a name (or a guardian's child's name) containing it,
/// or, for three or more digits, a phone number ending in it.
pub async fn search(tx: &mut SchoolTx, q: &str) -> sqlx::Result<Vec<Person>> {
    let q: String = q.trim().chars().take(QUERY_MAX).collect();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let escaped = q
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    let name = format!("%{escaped}%");
    let tail = if q.len() >= 3 && q.bytes().all(|b| b.is_ascii_digit()) {
        format!("%{q}")
    } else {
        String::new()
    };
    let mut out: Vec<Person> = sqlx::query(&format!(
        "{STAFF} where s.active and (s.name ilike $1 or ($2 <> '' and s.phone like $2))
          order by s.name, s.id limit $3"
    ))
    .bind(&name)
    .bind(&tail)
    .bind(LIMIT)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(staff_row)
    .collect();
    out.extend(
        sqlx::query(&format!(
            "{GUARDIANS}
              where g.name ilike $1 or ($2 <> '' and g.phone like $2)
                 or exists (select 1 from student_guardians sg2 join students s2 on s2.id = sg2.student_id
                             where sg2.guardian_id = g.id and s2.left_on is null and s2.name ilike $1)
              group by g.id order by g.name, g.id limit $3"
        ))
        .bind(&name)
        .bind(&tail)
        .bind(LIMIT)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| person("guardian", r)),
    );
    Ok(out)
}

/// The chosen people as shown in the form (ids this school does not have are dropped).
pub async fn named(tx: &mut SchoolTx, chosen: &[Recipient]) -> sqlx::Result<Vec<Person>> {
    let ids = |kind: &str| -> Vec<i64> {
        chosen
            .iter()
            .filter(|r| r.kind() == kind)
            .map(|r| r.id())
            .collect()
    };
    let mut out: Vec<Person> =
        sqlx::query(&format!("{STAFF} where s.id = any($1) order by s.name"))
            .bind(ids("staff"))
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(staff_row)
            .collect();
    out.extend(
        sqlx::query(&format!(
            "{GUARDIANS} where g.id = any($1) group by g.id order by g.name"
        ))
        .bind(ids("guardian"))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| person("guardian", r)),
    );
    Ok(out)
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// `GET /api/v1/notices/people?q=`: `{"people": [{key, kind, id, name, detail, phone_tail}]}`.
pub(super) async fn people_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Query(q): Query<SearchQuery>,
) -> Response {
    let result = async {
        may_pick(&user)?;
        let mut tx = state.db.school(&school).await?;
        let people = search(&mut tx, &q.q).await?;
        tx.commit().await?;
        Ok::<_, Fail>(people)
    }
    .await;
    match result {
        Ok(people) => Json(serde_json::json!({ "people": people })).into_response(),
        Err(e) => e.json(),
    }
}
