//! Changes to the school's organisation: grades and classes created, renamed and retired,
//! head teachers (班主任), subject teachers and grade leaders (年级组长) set and cleared.
//! Each change is one school transaction with its `audit_log` row; a person told of a new
//! duty hears it through [`crate::notify`] in the same transaction.
//!
//! Who teaches what is read from these tables on every attendance and leave request (the
//! identity standing cache holds only roles and links), so a change takes effect at once.

use axum::http::StatusCode;
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{SchoolTx, Tenant, TenantError};
use serde::Deserialize;
use sqlx::Row;

use crate::audit::{self, Action};
use crate::notify::{self, Audience, Category, Message, Recipient};
use crate::SchoolState;

/// Longest grade or class name, in characters.
pub const NAME_MAX: usize = 30;
/// Longest subject name, in characters.
pub const SUBJECT_MAX: usize = 20;

/// Why a change was refused, in Chinese and English.
#[derive(Debug)]
pub struct Refusal {
    pub status: StatusCode,
    pub zh: String,
    pub en: String,
}

pub(crate) fn refuse(status: StatusCode, zh: impl Into<String>, en: impl Into<String>) -> Refusal {
    Refusal {
        status,
        zh: zh.into(),
        en: en.into(),
    }
}

fn unavailable(e: impl std::fmt::Display) -> Refusal {
    tracing::error!(error = %e, "organisation change failed");
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "服务暂时不可用，请稍后重试。",
        "Temporarily unavailable; try again shortly.",
    )
}

impl From<sqlx::Error> for Refusal {
    fn from(e: sqlx::Error) -> Self {
        unavailable(e)
    }
}

impl From<TenantError> for Refusal {
    fn from(e: TenantError) -> Self {
        unavailable(e)
    }
}

fn invalid(zh: impl Into<String>, en: impl Into<String>) -> Refusal {
    refuse(StatusCode::UNPROCESSABLE_ENTITY, zh, en)
}

fn conflict(zh: impl Into<String>, en: impl Into<String>) -> Refusal {
    refuse(StatusCode::CONFLICT, zh, en)
}

pub(crate) fn class_not_found() -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        "本校没有这个班级。",
        "This school has no such class.",
    )
}

fn grade_not_found() -> Refusal {
    refuse(
        StatusCode::NOT_FOUND,
        "本校没有这个年级。",
        "This school has no such grade.",
    )
}

/// One change to the organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    CreateGrade {
        level: i16,
        name: String,
    },
    RenameGrade {
        grade: i64,
        name: String,
    },
    SetGradeLeader {
        grade: i64,
        staff: Option<i64>,
    },
    CreateClass {
        grade: i64,
        number: i16,
        /// Defaults to `<grade name>（<number>）班`.
        name: Option<String>,
    },
    RenameClass {
        class: i64,
        name: String,
    },
    SetHeadTeacher {
        class: i64,
        staff: Option<i64>,
    },
    AddTeacher {
        class: i64,
        staff: i64,
        subject: String,
    },
    RemoveTeacher {
        class: i64,
        staff: i64,
        subject: String,
    },
    RetireClass {
        class: i64,
    },
}

/// A grade or class name: trimmed, 1 to [`NAME_MAX`] characters.
pub fn clean_name(name: &str) -> Result<String, Refusal> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(invalid(
            format!("名称不能为空，且不超过 {NAME_MAX} 字。"),
            format!("A name of 1 to {NAME_MAX} characters is required."),
        ));
    }
    Ok(name.to_owned())
}

/// A subject: trimmed, 1 to [`SUBJECT_MAX`] characters of free text (语文, 数学, …).
pub fn clean_subject(subject: &str) -> Result<String, Refusal> {
    let subject = subject.trim();
    if subject.is_empty()
        || subject.chars().count() > SUBJECT_MAX
        || subject.chars().any(char::is_control)
    {
        return Err(invalid(
            format!("请填写任教科目（不超过 {SUBJECT_MAX} 字）。"),
            format!("Give the subject taught (at most {SUBJECT_MAX} characters)."),
        ));
    }
    Ok(subject.to_owned())
}

/// A grade level: 1 (一年级) to 12 (高三).
pub fn check_level(level: i64) -> Result<i16, Refusal> {
    if (1..=12).contains(&level) {
        Ok(level as i16)
    } else {
        Err(invalid(
            "年级序号须在 1 到 12 之间。",
            "The grade level must be between 1 and 12.",
        ))
    }
}

/// A class number within its grade: 1 to 99.
pub fn check_number(number: i64) -> Result<i16, Refusal> {
    if (1..=99).contains(&number) {
        Ok(number as i16)
    } else {
        Err(invalid(
            "班号须在 1 到 99 之间。",
            "The class number must be between 1 and 99.",
        ))
    }
}

/// The active member of staff with this id in this school, by name; anything else (another
/// school's id, a stopped member of staff) is refused before anything is written.
async fn active_staff(tx: &mut SchoolTx, id: i64) -> Result<String, Refusal> {
    sqlx::query_scalar("select name from staff where id = $1 and active")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| {
            invalid(
                "所选教职工不在本校或已停用。",
                "The chosen member of staff is not an active member of this school.",
            )
        })
}

/// A class that exists and is not retired, locked for the rest of the transaction:
/// (name, head teacher id).
async fn open_class(tx: &mut SchoolTx, id: i64) -> Result<(String, Option<i64>), Refusal> {
    let row = sqlx::query(
        "select name, head_teacher_id, retired_at is not null as retired from classes where id = $1 for update",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(class_not_found)?;
    if row.get::<bool, _>("retired") {
        return Err(conflict(
            "该班级已撤销，不能再修改。",
            "This class has been retired and can no longer be changed.",
        ));
    }
    Ok((row.get("name"), row.get("head_teacher_id")))
}

/// The grade, locked: (name, leader id).
async fn grade(tx: &mut SchoolTx, id: i64) -> Result<(String, Option<i64>), Refusal> {
    let row = sqlx::query("select name, leader_staff_id from grades where id = $1 for update")
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(grade_not_found)?;
    Ok((row.get("name"), row.get("leader_staff_id")))
}

/// Tells a member of staff of a new duty, in the caller's transaction.
async fn tell(tx: &mut SchoolTx, staff: i64, title: &str, link: &str) -> Result<(), Refusal> {
    notify::send(
        tx,
        &Audience::People(vec![Recipient::Staff(staff)]),
        &Message {
            category: Category::General,
            title,
            body: "学校管理员更新了您的任教安排。",
            link: Some(link),
            source: "organisation",
            dedupe_key: None,
            en: None,
        },
    )
    .await?;
    Ok(())
}

/// What a change did: the class it concerned (none for grade changes).
#[derive(Clone, Copy, Debug)]
pub struct Applied {
    pub class: Option<i64>,
}

/// Only holders of `ManageRoster` (the permission that edits classes) change the
/// organisation.
pub fn require_editor(user: &CurrentUser) -> Result<(), Refusal> {
    if user.can(Permission::ManageRoster) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "只有学校管理员可以调整年级和班级。",
            "Only school admins may change grades and classes.",
        ))
    }
}

/// Applies one change; anyone but an editor gets 403 and nothing is read.
pub async fn apply(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    change: Change,
) -> Result<Applied, Refusal> {
    require_editor(user)?;
    let mut tx = state.db.school(school).await?;
    let (applied, subject, detail) = match change {
        Change::CreateGrade { level, name } => {
            let name = clean_name(&name)?;
            let id: i64 = sqlx::query_scalar(
                "insert into grades (level, name) values ($1, $2) on conflict (level) do nothing returning id",
            )
            .bind(level)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                conflict(
                    format!("本校已有第 {level} 年级。"),
                    format!("This school already has grade level {level}."),
                )
            })?;
            (
                Applied { class: None },
                format!("grade:{id}"),
                serde_json::json!({"change": "grade_created", "level": level, "name": name}),
            )
        }
        Change::RenameGrade { grade: id, name } => {
            let name = clean_name(&name)?;
            let (old, _) = grade(&mut tx, id).await?;
            sqlx::query("update grades set name = $2 where id = $1")
                .bind(id)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            (
                Applied { class: None },
                format!("grade:{id}"),
                serde_json::json!({"change": "grade_renamed", "from": old, "to": name}),
            )
        }
        Change::SetGradeLeader { grade: id, staff } => {
            let (name, old) = grade(&mut tx, id).await?;
            if let Some(s) = staff {
                active_staff(&mut tx, s).await?;
            }
            sqlx::query("update grades set leader_staff_id = $2 where id = $1")
                .bind(id)
                .bind(staff)
                .execute(&mut *tx)
                .await?;
            if let Some(s) = staff.filter(|s| Some(*s) != old) {
                tell(&mut tx, s, &format!("您已被设为{name}年级组长"), "/classes").await?;
            }
            (
                Applied { class: None },
                format!("grade:{id}"),
                serde_json::json!({"change": "grade_leader", "from": old, "to": staff}),
            )
        }
        Change::CreateClass {
            grade: grade_id,
            number,
            name,
        } => {
            let (grade_name, _) = grade(&mut tx, grade_id).await.map_err(|e| {
                if e.status == StatusCode::NOT_FOUND {
                    invalid("所选年级不存在。", "The chosen grade does not exist.")
                } else {
                    e
                }
            })?;
            let name = match name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
                Some(n) => clean_name(n)?,
                None => format!("{grade_name}（{number}）班"),
            };
            let id: i64 = sqlx::query_scalar(
                "insert into classes (grade_id, number, name) values ($1, $2, $3)
                 on conflict (grade_id, number) do nothing returning id",
            )
            .bind(grade_id)
            .bind(number)
            .bind(&name)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| {
                conflict(
                    format!("{grade_name}已有 {number} 班（撤销的班级也占用班号）。"),
                    format!("{grade_name} already has class {number} (retired classes keep their number)."),
                )
            })?;
            (
                Applied { class: Some(id) },
                format!("class:{id}"),
                serde_json::json!({"change": "class_created", "grade_id": grade_id, "number": number, "name": name}),
            )
        }
        Change::RenameClass { class, name } => {
            let name = clean_name(&name)?;
            let (old, _) = open_class(&mut tx, class).await?;
            sqlx::query("update classes set name = $2 where id = $1")
                .bind(class)
                .bind(&name)
                .execute(&mut *tx)
                .await?;
            (
                Applied { class: Some(class) },
                format!("class:{class}"),
                serde_json::json!({"change": "class_renamed", "from": old, "to": name}),
            )
        }
        Change::SetHeadTeacher { class, staff } => {
            let (name, old) = open_class(&mut tx, class).await?;
            if let Some(s) = staff {
                active_staff(&mut tx, s).await?;
            }
            sqlx::query("update classes set head_teacher_id = $2 where id = $1")
                .bind(class)
                .bind(staff)
                .execute(&mut *tx)
                .await?;
            if let Some(s) = staff.filter(|s| Some(*s) != old) {
                let link = format!("/classes/{class}");
                tell(&mut tx, s, &format!("您已被设为{name}班主任"), &link).await?;
            }
            (
                Applied { class: Some(class) },
                format!("class:{class}"),
                serde_json::json!({"change": "head_teacher", "from": old, "to": staff}),
            )
        }
        Change::AddTeacher {
            class,
            staff,
            subject,
        } => {
            let subject = clean_subject(&subject)?;
            let (name, _) = open_class(&mut tx, class).await?;
            active_staff(&mut tx, staff).await?;
            let added = sqlx::query(
                "insert into class_teachers (class_id, staff_id, subject) values ($1, $2, $3) on conflict do nothing",
            )
            .bind(class)
            .bind(staff)
            .bind(&subject)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added == 0 {
                return Err(conflict(
                    format!("该教师已是本班{subject}任课教师。"),
                    format!("This teacher already teaches {subject} in this class."),
                ));
            }
            let link = format!("/classes/{class}");
            tell(
                &mut tx,
                staff,
                &format!("您已被设为{name}{subject}任课教师"),
                &link,
            )
            .await?;
            (
                Applied { class: Some(class) },
                format!("class:{class}"),
                serde_json::json!({"change": "subject_teacher_added", "staff_id": staff, "subject": subject}),
            )
        }
        Change::RemoveTeacher {
            class,
            staff,
            subject,
        } => {
            open_class(&mut tx, class).await?;
            let removed = sqlx::query(
                "delete from class_teachers where class_id = $1 and staff_id = $2 and subject = $3",
            )
            .bind(class)
            .bind(staff)
            .bind(subject.trim())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed == 0 {
                return Err(refuse(
                    StatusCode::NOT_FOUND,
                    "该教师不是本班这一科的任课教师。",
                    "This teacher does not teach that subject in this class.",
                ));
            }
            (
                Applied { class: Some(class) },
                format!("class:{class}"),
                serde_json::json!({"change": "subject_teacher_removed", "staff_id": staff, "subject": subject.trim()}),
            )
        }
        Change::RetireClass { class } => {
            let (name, head) = open_class(&mut tx, class).await?;
            let pupils: i64 = sqlx::query_scalar(
                "select count(*) from students where class_id = $1 and left_on is null",
            )
            .bind(class)
            .fetch_one(&mut *tx)
            .await?;
            if pupils > 0 {
                return Err(conflict(
                    format!("{name}还有 {pupils} 名在读学生，请先为他们调班或办理离校，再撤销班级。"),
                    format!("{name} still has {pupils} current pupils; move them or record their leaving first."),
                ));
            }
            // A retired class grants nobody attendance or leave rights any more.
            let teachers: Vec<(i64, String)> = sqlx::query_as(
                "delete from class_teachers where class_id = $1 returning staff_id, subject",
            )
            .bind(class)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(
                "update classes set retired_at = now(), head_teacher_id = null where id = $1",
            )
            .bind(class)
            .execute(&mut *tx)
            .await?;
            (
                Applied { class: Some(class) },
                format!("class:{class}"),
                serde_json::json!({"change": "class_retired", "name": name, "head_teacher": head, "teachers": teachers}),
            )
        }
    };
    audit::record(
        &mut tx,
        user,
        Action::OrganisationChanged,
        Some(&subject),
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(applied)
}

/// A staff id as submitted: empty means "nobody".
pub fn optional_id(raw: &str) -> Result<Option<i64>, Refusal> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse()
        .map(Some)
        .map_err(|_| invalid("所选教职工无效。", "Invalid member of staff."))
}

/// A whole number as submitted in a form.
pub fn number(raw: &str, zh: &str, en: &str) -> Result<i64, Refusal> {
    raw.trim().parse().map_err(|_| invalid(zh, en))
}

/// JSON body of `PUT …/head-teacher` and `PUT …/leader`: `staff_id` must be given, `null`
/// clears the post (so a misspelt field cannot clear it by accident).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffBody {
    #[serde(deserialize_with = "given")]
    pub staff_id: Option<i64>,
}

fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<i64>::deserialize(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_subjects_are_bounded() {
        assert_eq!(clean_name("  三年级 ").unwrap(), "三年级");
        assert!(clean_name("").is_err());
        assert!(clean_name(&"班".repeat(NAME_MAX + 1)).is_err());
        assert!(clean_name("a\u{0}b").is_err());
        assert_eq!(clean_subject(" 数学 ").unwrap(), "数学");
        assert!(clean_subject(" ").is_err());
        assert!(clean_subject(&"语".repeat(SUBJECT_MAX + 1)).is_err());
    }

    #[test]
    fn levels_numbers_and_ids_are_checked() {
        assert!(check_level(0).is_err() && check_level(13).is_err());
        assert_eq!(check_level(12).unwrap(), 12);
        assert!(check_number(0).is_err() && check_number(100).is_err());
        assert_eq!(optional_id(" ").unwrap(), None);
        assert_eq!(optional_id("7").unwrap(), Some(7));
        assert_eq!(
            optional_id("x").unwrap_err().status,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
}
