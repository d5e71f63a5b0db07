//! Join requests in the school's schema: storing an application, listing them for review,
//! and the pupils a parent's application may refer to.

use campus_tenant::SchoolTx;
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{random_token, Kind};

/// One application as the reviewer and the API see it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub(crate) struct Request {
    pub id: i64,
    pub kind: String,
    pub name: String,
    pub phone: String,
    pub relation: Option<String>,
    pub child_name: Option<String>,
    pub class_id: Option<i64>,
    pub class_name: Option<String>,
    pub staff_title: Option<String>,
    pub staff_subject: Option<String>,
    pub note: Option<String>,
    pub status: String,
    pub reviewer_name: Option<String>,
    pub reviewed_at: Option<DateTime<Utc>>,
    pub reject_reason: Option<String>,
    pub student_id: Option<i64>,
    pub guardian_id: Option<i64>,
    pub staff_id: Option<i64>,
    pub granted_roles: Option<Vec<String>>,
    pub account_id: Option<i64>,
    /// The phone already had an account when the person applied (and proved the phone).
    pub existing_account: bool,
    /// When the applicant proved the phone with an SMS code.
    pub phone_proven_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    #[serde(skip)]
    pub password_hash: Option<String>,
}

const SELECT: &str = "select r.id, r.kind, r.name, r.phone, r.relation, r.child_name, r.class_id,
        c.name as class_name, r.staff_title, r.staff_subject, r.note, r.status, r.reviewer_name,
        r.reviewed_at, r.reject_reason, r.student_id, r.guardian_id, r.staff_id, r.granted_roles, r.account_id,
        r.existing_account, r.phone_proven_at, r.created_at, r.password_hash
   from join_requests r left join classes c on c.id = r.class_id";

/// A validated application, ready to store.
#[derive(Debug)]
pub(crate) struct NewRequest<'a> {
    pub link_id: i64,
    pub kind: Kind,
    pub name: &'a str,
    pub phone: &'a str,
    pub relation: Option<&'a str>,
    pub child_name: Option<&'a str>,
    pub class_id: Option<i64>,
    pub staff_title: Option<&'a str>,
    pub staff_subject: Option<&'a str>,
    pub note: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    /// The account the phone already has (the applicant proved the phone).
    pub account_id: Option<i64>,
    /// The phone was proven with a code.
    pub phone_proven: bool,
}

/// Stores the application; `None` if the phone already has one waiting for this kind.
pub(crate) async fn insert(tx: &mut SchoolTx, r: &NewRequest<'_>) -> sqlx::Result<Option<String>> {
    let token = random_token();
    let stored = sqlx::query(
        "insert into join_requests (link_id, kind, status_token, name, phone, relation, child_name,
                class_id, staff_title, staff_subject, note, password_hash, existing_account,
                account_id, phone_proven_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 case when $15 then now() end)
         on conflict (phone, kind) where status = 'pending' do nothing",
    )
    .bind(r.link_id)
    .bind(r.kind.code())
    .bind(&token)
    .bind(r.name)
    .bind(r.phone)
    .bind(r.relation)
    .bind(r.child_name)
    .bind(r.class_id)
    .bind(r.staff_title)
    .bind(r.staff_subject)
    .bind(r.note)
    .bind(r.password_hash)
    .bind(r.account_id.is_some())
    .bind(r.account_id)
    .bind(r.phone_proven)
    .execute(&mut **tx)
    .await?;
    Ok((stored.rows_affected() == 1).then_some(token))
}

/// Applications in `status`, oldest first (pending) or newest first (decided).
pub(crate) async fn list(tx: &mut SchoolTx, status: &str) -> sqlx::Result<Vec<Request>> {
    let order = if status == "pending" {
        "r.created_at, r.id"
    } else {
        "r.reviewed_at desc, r.id desc"
    };
    sqlx::query_as(&format!(
        "{SELECT} where r.status = $1 order by {order} limit 500"
    ))
    .bind(status)
    .fetch_all(&mut **tx)
    .await
}

/// How many applications are in each state.
pub(crate) async fn counts(tx: &mut SchoolTx) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("select status, count(*) from join_requests group by status")
        .fetch_all(&mut **tx)
        .await
}

/// One application; with `lock`, held until the transaction ends (decisions serialise).
pub(crate) async fn get(tx: &mut SchoolTx, id: i64, lock: bool) -> sqlx::Result<Option<Request>> {
    let lock = if lock { " for update of r" } else { "" };
    sqlx::query_as(&format!("{SELECT} where r.id = $1{lock}"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

pub(crate) async fn by_status_token(
    tx: &mut SchoolTx,
    token: &str,
) -> sqlx::Result<Option<Request>> {
    sqlx::query_as(&format!("{SELECT} where r.status_token = $1"))
        .bind(token)
        .fetch_optional(&mut **tx)
        .await
}

/// A pupil the reviewer may link a parent to.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub(crate) struct Candidate {
    pub id: i64,
    pub name: String,
    pub student_no: String,
    pub class_name: String,
}

/// Pupils of the class with exactly the child's name; if there is none, every pupil of the
/// class, so the reviewer can find a misspelt name.
pub(crate) async fn candidates(
    tx: &mut SchoolTx,
    class_id: i64,
    child_name: &str,
) -> sqlx::Result<(Vec<Candidate>, bool)> {
    const Q: &str = "select s.id, s.name, s.student_no, c.name as class_name
                       from students s join classes c on c.id = s.class_id
                      where s.class_id = $1 and s.left_on is null";
    let exact: Vec<Candidate> = sqlx::query_as(&format!("{Q} and s.name = $2 order by s.id"))
        .bind(class_id)
        .bind(child_name)
        .fetch_all(&mut **tx)
        .await?;
    if !exact.is_empty() {
        return Ok((exact, true));
    }
    let all = sqlx::query_as(&format!("{Q} order by s.name, s.id limit 200"))
        .bind(class_id)
        .fetch_all(&mut **tx)
        .await?;
    Ok((all, false))
}

/// Every class, in grade order, for the parent's form.
pub(crate) async fn classes(tx: &mut SchoolTx) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as(
        "select c.id, c.name from classes c join grades g on g.id = c.grade_id
          where c.retired_at is null order by g.level, c.number",
    )
    .fetch_all(&mut **tx)
    .await
}

pub(crate) async fn class_exists(tx: &mut SchoolTx, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar("select exists(select 1 from classes where id = $1 and retired_at is null)")
        .bind(id)
        .fetch_one(&mut **tx)
        .await
}
