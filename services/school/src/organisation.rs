//! The school's organisation for staff: grades with their classes, each class's head
//! teacher, subject teachers and pupils. Read-only here; the roster import fills it.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, Tenant, TenantError};
use campus_web::Lang;
use sqlx::Row;

use crate::SchoolState;

struct ClassRow {
    id: i64,
    grade: String,
    name: String,
    head_teacher: Option<String>,
    pupils: i64,
}

#[derive(Template)]
#[template(path = "classes.html")]
struct ClassesPage {
    lang: Lang,
    rows: Vec<ClassRow>,
}

struct Member {
    id: i64,
    no: String,
    name: String,
}

#[derive(Template)]
#[template(path = "class.html")]
struct ClassPage {
    lang: Lang,
    name: String,
    grade: String,
    head_teacher: Option<String>,
    grade_leader: Option<String>,
    teachers: Vec<(String, Option<String>)>,
    pupils: Vec<Member>,
}

fn forbidden() -> Response {
    campus_web::message_page(
        StatusCode::FORBIDDEN,
        campus_web::PLATFORM_NAME,
        ("没有权限", "您的身份不能查看班级名单。"),
        ("Forbidden", "Your identity here cannot see class lists."),
    )
}

async fn load_classes(state: &SchoolState, school: &Tenant) -> Result<Vec<ClassRow>, TenantError> {
    let mut tx = state.db.school(school).await?;
    let rows = sqlx::query(
        "select c.id, g.name as grade, c.name, st.name as head_teacher,
                (select count(*) from students s where s.class_id = c.id and s.left_on is null) as pupils
           from classes c join grades g on g.id = c.grade_id
           left join staff st on st.id = c.head_teacher_id
          order by g.level, c.number",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| ClassRow {
            id: r.get("id"),
            grade: r.get("grade"),
            name: r.get("name"),
            head_teacher: r.get("head_teacher"),
            pupils: r.get("pupils"),
        })
        .collect())
}

/// `GET /classes`: every class by grade, with head teacher and size.
pub(crate) async fn classes(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    if !user.can(Permission::PupilRecords) {
        return forbidden();
    }
    match load_classes(&state, &school).await {
        Ok(rows) => {
            let body = ClassesPage { lang, rows }.render().unwrap_or_default();
            crate::ui::page(lang, &school, &user, lang.pick("班级", "Classes"), &body)
        }
        Err(e) => crate::ui::unavailable("organisation pages", e),
    }
}

async fn load_class(
    state: &SchoolState,
    school: &Tenant,
    lang: Lang,
    id: i64,
) -> Result<Option<ClassPage>, TenantError> {
    let mut tx = state.db.school(school).await?;
    let Some(c) = sqlx::query(
        "select c.name, g.name as grade, st.name as head_teacher, gl.name as grade_leader
           from classes c join grades g on g.id = c.grade_id
           left join staff st on st.id = c.head_teacher_id
           left join staff gl on gl.id = g.leader_staff_id
          where c.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?
    else {
        tx.commit().await?;
        return Ok(None);
    };
    let teachers = sqlx::query(
        "select st.name, nullif(ct.subject, '') as subject from class_teachers ct join staff st on st.id = ct.staff_id
          where ct.class_id = $1 order by ct.subject nulls last, st.name",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| (r.get("name"), r.get("subject")))
    .collect();
    let pupils = sqlx::query(
        "select id, student_no, name from students where class_id = $1 and left_on is null order by student_no",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|r| Member {
        id: r.get("id"),
        no: r.get("student_no"),
        name: r.get("name"),
    })
    .collect();
    tx.commit().await?;
    Ok(Some(ClassPage {
        lang,
        name: c.get("name"),
        grade: c.get("grade"),
        head_teacher: c.get("head_teacher"),
        grade_leader: c.get("grade_leader"),
        teachers,
        pupils,
    }))
}

/// `GET /classes/{id}`: one class's teachers and pupils.
pub(crate) async fn class(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    if !user.can(Permission::PupilRecords) {
        return forbidden();
    }
    match load_class(&state, &school, lang, id).await {
        Ok(Some(p)) => {
            let title = p.name.clone();
            let body = p.render().unwrap_or_default();
            crate::ui::page(lang, &school, &user, &title, &body)
        }
        Ok(None) => campus_web::message_page(
            StatusCode::NOT_FOUND,
            &school.name,
            ("找不到该班级", "本校没有这个班级。"),
            ("Class not found", "This school has no such class."),
        ),
        Err(e) => crate::ui::unavailable("organisation pages", e),
    }
}
