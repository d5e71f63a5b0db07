//! Deciding an application. Approval writes the school's rows (guardian and pupil link, or
//! staff row) in one school transaction and marks the request approved, then gives the
//! county-wide account its membership here. Approving an approved request runs the second
//! half again, so a failure between the two is repaired by simply retrying.

use campus_identity::account::{self, NewAccount};
use campus_identity::login::Login;
use campus_identity::permission::BUILTIN_ROLES;
use campus_identity::CurrentUser;
use campus_tenant::{SchoolTx, Tenant};
use serde_json::json;

use super::requests::{self, Candidate, Request};
use super::{Failure, Kind};
use crate::audit::{self, Action};
use crate::SchoolState;

/// Why an approval did not happen.
#[derive(Debug)]
pub(crate) enum ApproveError {
    Failed(Failure),
    /// The child's name matched no pupil or several: the reviewer must pick one of these.
    ChooseStudent(Vec<Candidate>),
}

impl From<Failure> for ApproveError {
    fn from(f: Failure) -> Self {
        Self::Failed(f)
    }
}

impl From<sqlx::Error> for ApproveError {
    fn from(e: sqlx::Error) -> Self {
        Self::Failed(e.into())
    }
}

impl From<campus_tenant::TenantError> for ApproveError {
    fn from(e: campus_tenant::TenantError) -> Self {
        Self::Failed(e.into())
    }
}

/// Role codes a reviewer may grant to staff: the built-in ones except parent and supplier.
pub(crate) fn staff_roles(
) -> impl Iterator<Item = &'static campus_identity::permission::BuiltinRole> {
    BUILTIN_ROLES
        .iter()
        .filter(|r| !matches!(r.code, "parent" | "supplier"))
}

fn check_roles(kind: Kind, asked: &[String]) -> Result<Vec<String>, Failure> {
    if kind == Kind::Parent {
        return Ok(vec!["parent".to_owned()]);
    }
    let mut roles: Vec<String> = Vec::new();
    for r in asked.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        if !staff_roles().any(|b| b.code == r) {
            return Err(Failure::Invalid(format!("角色“{r}”不能授予教职工。")));
        }
        if !roles.iter().any(|x| x == r) {
            roles.push(r.to_owned());
        }
    }
    if roles.is_empty() {
        roles.push("teacher".to_owned());
    }
    // The built-in order, whatever order they were asked in.
    roles.sort_by_key(|r| BUILTIN_ROLES.iter().position(|b| b.code == r));
    Ok(roles)
}

/// Who decided, and where.
pub(crate) struct Reviewer<'a> {
    pub user: &'a CurrentUser,
    pub host: &'a str,
}

/// Approves application `id`. For a parent, `student_id` is the reviewer's pick (needed when
/// the child's name does not match exactly one pupil of the class); for staff, `roles` are
/// the roles granted (default teacher).
pub(crate) async fn approve(
    state: &SchoolState,
    school: &Tenant,
    by: &Reviewer<'_>,
    id: i64,
    student_id: Option<i64>,
    roles: &[String],
) -> Result<Request, ApproveError> {
    let known = known_links(state, school, id).await?;
    let mut tx = state.db.school(school).await?;
    let r = requests::get(&mut tx, id, true)
        .await?
        .ok_or(Failure::NotFound)?;
    let kind = Kind::parse(&r.kind).ok_or(Failure::NotFound)?;
    match r.status.as_str() {
        "rejected" => {
            return Err(Failure::Conflict("该申请已被拒绝，不能再通过。".into()).into());
        }
        "pending" => {
            let roles = check_roles(kind, roles)?;
            match kind {
                Kind::Parent => approve_parent(&mut tx, &r, by.user, student_id, known.1).await?,
                Kind::Staff => approve_staff(&mut tx, &r, by.user, &roles, known.0).await?,
            }
            tx.commit().await?;
        }
        // Approved before: only the account side is (re)done below.
        _ => tx.commit().await?,
    }
    let mut tx = state.db.school(school).await?;
    let r = requests::get(&mut tx, id, false)
        .await?
        .ok_or(Failure::NotFound)?;
    tx.commit().await?;
    let account_id = grant_membership(state, school, &r).await?;
    let mut tx = state.db.school(school).await?;
    sqlx::query("update join_requests set account_id = $2, password_hash = null where id = $1")
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    let r = requests::get(&mut tx, id, false)
        .await?
        .ok_or(Failure::NotFound)?;
    tx.commit().await?;
    account::audit(
        &state.identity.pool,
        Some(account_id),
        Some(school.id.0),
        &r.phone,
        "join_approved",
        by.host,
    )
    .await;
    Ok(r)
}

/// The staff and guardian rows the applicant's account is already linked to here (a person
/// who is already a parent here keeps one guardian row for all their children).
async fn known_links(
    state: &SchoolState,
    school: &Tenant,
    id: i64,
) -> Result<(Option<i64>, Option<i64>), Failure> {
    let mut tx = state.db.school(school).await?;
    let phone: Option<String> = sqlx::query_scalar("select phone from join_requests where id = $1")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    tx.commit().await?;
    let Some(phone) = phone else {
        return Ok((None, None));
    };
    let pool = &state.identity.pool;
    let mut conn = pool.acquire().await?;
    let Some(account_id) = account::id_by_login(&mut conn, &Login::Phone(phone)).await? else {
        return Ok((None, None));
    };
    drop(conn);
    Ok(account::links_in(pool, account_id, school.id.0)
        .await?
        .unwrap_or((None, None)))
}

async fn approve_parent(
    tx: &mut SchoolTx,
    r: &Request,
    user: &CurrentUser,
    picked: Option<i64>,
    known_guardian: Option<i64>,
) -> Result<(), ApproveError> {
    let (class_id, child) = match (r.class_id, r.child_name.as_deref()) {
        (Some(c), Some(n)) => (c, n),
        _ => return Err(Failure::Invalid("申请缺少孩子信息。".into()).into()),
    };
    let student_id = match picked {
        Some(sid) => {
            let ok: bool = sqlx::query_scalar(
                "select exists(select 1 from students where id = $1 and left_on is null)",
            )
            .bind(sid)
            .fetch_one(&mut **tx)
            .await?;
            if !ok {
                return Err(Failure::Invalid("所选学生不存在或已离校。".into()).into());
            }
            sid
        }
        None => {
            let (found, exact) = requests::candidates(tx, class_id, child).await?;
            match found.as_slice() {
                [one] if exact => one.id,
                _ => return Err(ApproveError::ChooseStudent(found)),
            }
        }
    };
    let existing: Option<i64> = sqlx::query_scalar(
        "select id from guardians where id = $1 or phone = $2 order by id = $1 desc, id limit 1",
    )
    .bind(known_guardian)
    .bind(&r.phone)
    .fetch_optional(&mut **tx)
    .await?;
    let guardian_id = match existing {
        Some(g) => g,
        None => {
            sqlx::query_scalar("insert into guardians (name, phone) values ($1, $2) returning id")
                .bind(&r.name)
                .bind(&r.phone)
                .fetch_one(&mut **tx)
                .await?
        }
    };
    sqlx::query(
        "insert into student_guardians (student_id, guardian_id, relation) values ($1, $2, $3)
         on conflict (student_id, guardian_id) do update set relation = excluded.relation",
    )
    .bind(student_id)
    .bind(guardian_id)
    .bind(r.relation.as_deref().unwrap_or("other"))
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "update join_requests set status = 'approved', reviewed_at = now(), reviewer_account_id = $2,
                reviewer_name = $3, student_id = $4, guardian_id = $5, granted_roles = '{parent}'
          where id = $1",
    )
    .bind(r.id)
    .bind(user.account_id)
    .bind(&user.display_name)
    .bind(student_id)
    .bind(guardian_id)
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        user,
        Action::JoinApproved,
        Some(&format!("join:{}", r.id)),
        json!({"kind": "parent", "student_id": student_id, "guardian_id": guardian_id,
               "relation": r.relation}),
    )
    .await?;
    Ok(())
}

async fn approve_staff(
    tx: &mut SchoolTx,
    r: &Request,
    user: &CurrentUser,
    roles: &[String],
    known_staff: Option<i64>,
) -> Result<(), ApproveError> {
    let existing: Option<i64> = sqlx::query_scalar(
        "select id from staff where (id = $1 or phone = $2) and active
          order by id = $1 desc, id limit 1",
    )
    .bind(known_staff)
    .bind(&r.phone)
    .fetch_optional(&mut **tx)
    .await?;
    let staff_id = match existing {
        Some(s) => s,
        None => {
            let title = roles.first().map_or("teacher", String::as_str);
            let mut number = format!("J{:05}", r.id);
            loop {
                let id: Option<i64> = sqlx::query_scalar(
                    "insert into staff (staff_no, name, phone, title, subject) values ($1, $2, $3, $4, $5)
                     on conflict (staff_no) do nothing returning id",
                )
                .bind(&number)
                .bind(&r.name)
                .bind(&r.phone)
                .bind(title)
                .bind(&r.staff_subject)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some(id) = id {
                    break id;
                }
                // Taken by an imported number: add a random suffix.
                number = format!("J{:05}-{}", r.id, &super::random_token()[..4]);
            }
        }
    };
    sqlx::query(
        "update join_requests set status = 'approved', reviewed_at = now(), reviewer_account_id = $2,
                reviewer_name = $3, staff_id = $4, granted_roles = $5
          where id = $1",
    )
    .bind(r.id)
    .bind(user.account_id)
    .bind(&user.display_name)
    .bind(staff_id)
    .bind(roles)
    .execute(&mut **tx)
    .await?;
    audit::record(
        tx,
        user,
        Action::JoinApproved,
        Some(&format!("join:{}", r.id)),
        json!({"kind": "staff", "staff_id": staff_id, "roles": roles}),
    )
    .await?;
    Ok(())
}

/// The account (found by phone, or created with the password the applicant chose) and its
/// membership here with the granted roles added to any it already holds.
async fn grant_membership(
    state: &SchoolState,
    school: &Tenant,
    r: &Request,
) -> Result<i64, ApproveError> {
    let roles: Vec<&str> = r
        .granted_roles
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if roles.is_empty() {
        return Err(Failure::Conflict("申请未记录授予的角色。".into()).into());
    }
    let mut tx = state.identity.pool.begin().await?;
    let known = match r.account_id {
        Some(id) => Some(id),
        None => account::id_by_login(&mut tx, &Login::Phone(r.phone.clone())).await?,
    };
    let account_id = match (known, r.password_hash.as_deref()) {
        (Some(id), _) => id,
        (None, Some(hash)) => {
            account::ensure_in(
                &mut tx,
                &NewAccount {
                    username: None,
                    phone: Some(&r.phone),
                    display_name: &r.name,
                    password_hash: hash,
                    county_role: None,
                },
            )
            .await?
        }
        (None, None) => {
            return Err(Failure::Conflict(
                "该手机号的平台账号已不存在，请让申请人重新提交申请。".into(),
            )
            .into())
        }
    };
    if r.phone_proven_at.is_some() {
        // The applicant proved the phone with a code: the account's phone is theirs.
        campus_identity::otp::mark_proven(&mut tx, account_id).await?;
    }
    account::add_roles(
        &mut tx,
        account_id,
        school.id.0,
        &roles,
        r.staff_id,
        r.guardian_id,
    )
    .await?;
    tx.commit().await?;
    Ok(account_id)
}

/// Rejects application `id` with a reason the applicant will see. Nothing else is created;
/// a stored password hash is dropped.
pub(crate) async fn reject(
    state: &SchoolState,
    school: &Tenant,
    by: &Reviewer<'_>,
    id: i64,
    reason: &str,
) -> Result<Request, Failure> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(Failure::Invalid("请填写拒绝原因。".into()));
    }
    if reason.chars().count() > 200 {
        return Err(Failure::Invalid("拒绝原因最多 200 个字。".into()));
    }
    let mut tx = state.db.school(school).await?;
    let r = requests::get(&mut tx, id, true)
        .await?
        .ok_or(Failure::NotFound)?;
    if r.status != "pending" {
        return Err(Failure::Conflict(format!(
            "该申请已处理（{}）。",
            super::status_name(&r.status, campus_web::Lang::Zh)
        )));
    }
    sqlx::query(
        "update join_requests set status = 'rejected', reviewed_at = now(), reviewer_account_id = $2,
                reviewer_name = $3, reject_reason = $4, password_hash = null
          where id = $1",
    )
    .bind(id)
    .bind(by.user.account_id)
    .bind(&by.user.display_name)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        by.user,
        Action::JoinRejected,
        Some(&format!("join:{id}")),
        json!({"kind": r.kind, "reason": reason}),
    )
    .await?;
    let r = requests::get(&mut tx, id, false)
        .await?
        .ok_or(Failure::NotFound)?;
    tx.commit().await?;
    tracing::info!(request = id, "join application rejected");
    Ok(r)
}
