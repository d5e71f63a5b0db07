//! The school's organisation: grades with their classes, each class's head teacher,
//! subject teachers and pupils, as pages (`/classes`, `/classes/{id}`) and JSON
//! (`/api/v1/classes…`, `/api/v1/grades…`). Staff with `PupilRecords` read them; holders of
//! `ManageRoster` also create, rename and retire grades and classes and set who teaches
//! them (`edit`).

mod edit;

use askama::Template;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Form, Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, SchoolTx, Tenant};
use campus_web::Lang;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::SchoolState;
use edit::{refuse, Change, Refusal};

/// The routes of the organisation pages and API.
pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/classes", get(classes).post(create_class_page))
        .route("/classes/{id}", get(class))
        .route("/classes/{id}/rename", post(rename_class_page))
        .route("/classes/{id}/head-teacher", post(head_teacher_page))
        .route("/classes/{id}/teachers", post(add_teacher_page))
        .route("/classes/{id}/teachers/remove", post(remove_teacher_page))
        .route("/classes/{id}/retire", post(retire_page))
        .route("/grades", post(create_grade_page))
        .route("/grades/{id}/rename", post(rename_grade_page))
        .route("/grades/{id}/leader", post(grade_leader_page))
        .route("/api/v1/classes", get(classes_json).post(create_class_json))
        .route(
            "/api/v1/classes/{id}",
            get(class_json).patch(rename_class_json),
        )
        .route("/api/v1/classes/{id}/head-teacher", put(head_teacher_json))
        .route(
            "/api/v1/classes/{id}/teachers",
            post(add_teacher_json).delete(remove_teacher_json),
        )
        .route("/api/v1/classes/{id}/retire", post(retire_json))
        .route("/api/v1/grades", post(create_grade_json))
        .route(
            "/api/v1/grades/{id}",
            axum::routing::patch(rename_grade_json),
        )
        .route("/api/v1/grades/{id}/leader", put(grade_leader_json))
}

impl Refusal {
    fn page(&self, school: &Tenant) -> Response {
        let (zh, en) = match self.status {
            StatusCode::FORBIDDEN => ("没有权限", "Forbidden"),
            StatusCode::NOT_FOUND => ("找不到", "Not found"),
            StatusCode::CONFLICT => ("无法办理", "Conflict"),
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => {
                ("填写有误", "Invalid input")
            }
            _ => ("服务暂时不可用", "Temporarily unavailable"),
        };
        campus_web::message_page(self.status, &school.name, (zh, &self.zh), (en, &self.en))
    }

    fn json(&self) -> Response {
        let code = match self.status {
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "invalid",
            _ => "unavailable",
        };
        (
            self.status,
            Json(serde_json::json!({"code": code, "message": self.zh, "message_en": self.en})),
        )
            .into_response()
    }
}

fn may_read(user: &CurrentUser) -> Result<(), Refusal> {
    if user.can(Permission::PupilRecords) || user.can(Permission::ManageRoster) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "您的身份不能查看班级名单。",
            "Your identity here cannot see class lists.",
        ))
    }
}

fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn check_csrf(user: &CurrentUser, token: Option<&str>) -> Result<(), Refusal> {
    if token.is_some_and(|t| same_token(t.trim(), &user.csrf_token)) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "页面已过期，请刷新后重试。",
            "The form has expired; reload and try again.",
        ))
    }
}

// ---------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------

/// A member of staff, as shown and as chosen.
#[derive(Clone, Debug, Serialize)]
pub struct StaffRef {
    pub id: i64,
    pub name: String,
}

fn staff_ref(id: Option<i64>, name: Option<String>) -> Option<StaffRef> {
    Some(StaffRef {
        id: id?,
        name: name?,
    })
}

#[derive(Debug, Serialize)]
struct GradeRow {
    id: i64,
    level: i16,
    name: String,
    leader: Option<StaffRef>,
}

#[derive(Debug, Serialize)]
struct ClassRow {
    id: i64,
    grade_id: i64,
    grade: String,
    number: i16,
    name: String,
    head_teacher: Option<StaffRef>,
    pupils: i64,
    retired: bool,
}

#[derive(Debug, Serialize)]
struct Overview {
    grades: Vec<GradeRow>,
    classes: Vec<ClassRow>,
}

async fn load_overview(tx: &mut SchoolTx) -> sqlx::Result<Overview> {
    let grades = sqlx::query(
        "select g.id, g.level, g.name, g.leader_staff_id, st.name as leader
           from grades g left join staff st on st.id = g.leader_staff_id order by g.level",
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| GradeRow {
        id: r.get("id"),
        level: r.get("level"),
        name: r.get("name"),
        leader: staff_ref(r.get("leader_staff_id"), r.get("leader")),
    })
    .collect();
    let classes = sqlx::query(
        "select c.id, c.grade_id, g.name as grade, c.number, c.name, c.head_teacher_id, st.name as head_teacher,
                c.retired_at is not null as retired,
                (select count(*) from students s where s.class_id = c.id and s.left_on is null) as pupils
           from classes c join grades g on g.id = c.grade_id
           left join staff st on st.id = c.head_teacher_id
          order by c.retired_at is not null, g.level, c.number",
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| ClassRow {
        id: r.get("id"),
        grade_id: r.get("grade_id"),
        grade: r.get("grade"),
        number: r.get("number"),
        name: r.get("name"),
        head_teacher: staff_ref(r.get("head_teacher_id"), r.get("head_teacher")),
        pupils: r.get("pupils"),
        retired: r.get("retired"),
    })
    .collect();
    Ok(Overview { grades, classes })
}

/// Active staff to choose from, by name.
async fn load_staff(tx: &mut SchoolTx) -> sqlx::Result<Vec<StaffRef>> {
    Ok(sqlx::query_as::<_, (i64, String)>(
        "select id, name from staff where active order by name, staff_no",
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|(id, name)| StaffRef { id, name })
    .collect())
}

#[derive(Debug, Serialize)]
struct Teacher {
    staff_id: i64,
    name: String,
    subject: String,
}

#[derive(Debug, Serialize)]
struct Pupil {
    id: i64,
    student_no: String,
    name: String,
}

#[derive(Debug, Serialize)]
struct ClassDetail {
    id: i64,
    grade_id: i64,
    grade: String,
    number: i16,
    name: String,
    retired: bool,
    head_teacher: Option<StaffRef>,
    grade_leader: Option<StaffRef>,
    teachers: Vec<Teacher>,
    pupils: Vec<Pupil>,
}

async fn load_class(tx: &mut SchoolTx, id: i64) -> sqlx::Result<Option<ClassDetail>> {
    let Some(c) = sqlx::query(
        "select c.id, c.grade_id, c.number, c.name, g.name as grade, c.retired_at is not null as retired,
                c.head_teacher_id, st.name as head_teacher, g.leader_staff_id, gl.name as grade_leader
           from classes c join grades g on g.id = c.grade_id
           left join staff st on st.id = c.head_teacher_id
           left join staff gl on gl.id = g.leader_staff_id
          where c.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let teachers = sqlx::query(
        "select ct.staff_id, st.name, ct.subject from class_teachers ct join staff st on st.id = ct.staff_id
          where ct.class_id = $1 order by ct.subject = '', ct.subject, st.name",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| Teacher {
        staff_id: r.get("staff_id"),
        name: r.get("name"),
        subject: r.get("subject"),
    })
    .collect();
    let pupils = sqlx::query(
        "select id, student_no, name from students where class_id = $1 and left_on is null order by student_no",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| Pupil {
        id: r.get("id"),
        student_no: r.get("student_no"),
        name: r.get("name"),
    })
    .collect();
    Ok(Some(ClassDetail {
        id: c.get("id"),
        grade_id: c.get("grade_id"),
        grade: c.get("grade"),
        number: c.get("number"),
        name: c.get("name"),
        retired: c.get("retired"),
        head_teacher: staff_ref(c.get("head_teacher_id"), c.get("head_teacher")),
        grade_leader: staff_ref(c.get("leader_staff_id"), c.get("grade_leader")),
        teachers,
        pupils,
    }))
}

/// The overview, and the active staff to choose from when `with_staff`.
async fn overview(
    state: &SchoolState,
    school: &Tenant,
    with_staff: bool,
) -> Result<(Overview, Vec<StaffRef>), Refusal> {
    let mut tx = state.db.school(school).await?;
    let o = load_overview(&mut tx).await?;
    let staff = if with_staff {
        load_staff(&mut tx).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    Ok((o, staff))
}

/// One class, and the active staff to choose from when `with_staff`.
async fn detail(
    state: &SchoolState,
    school: &Tenant,
    id: i64,
    with_staff: bool,
) -> Result<(Option<ClassDetail>, Vec<StaffRef>), Refusal> {
    let mut tx = state.db.school(school).await?;
    let c = load_class(&mut tx, id).await?;
    let staff = if with_staff && c.is_some() {
        load_staff(&mut tx).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    Ok((c, staff))
}

#[derive(Debug, Default, Deserialize)]
struct Saved {
    #[serde(default)]
    saved: Option<String>,
}

#[derive(Template)]
#[template(path = "classes.html")]
struct ClassesPage<'a> {
    lang: Lang,
    csrf: &'a str,
    may_edit: bool,
    saved: bool,
    any_retired: bool,
    o: Overview,
    staff: Vec<StaffRef>,
}

/// `GET /classes`: every grade and class, with forms for school admins.
async fn classes(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(q): Query<Saved>,
) -> Response {
    if let Err(r) = may_read(&user) {
        return r.page(&school);
    }
    let may_edit = user.can(Permission::ManageRoster);
    match overview(&state, &school, may_edit).await {
        Ok((o, staff)) => {
            let body = ClassesPage {
                lang,
                csrf: &user.csrf_token,
                may_edit,
                saved: q.saved.is_some(),
                any_retired: o.classes.iter().any(|c| c.retired),
                o,
                staff,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(lang, &school, &user, lang.pick("班级", "Classes"), &body)
        }
        Err(r) => r.page(&school),
    }
}

#[derive(Template)]
#[template(path = "class.html")]
struct ClassPage<'a> {
    lang: Lang,
    csrf: &'a str,
    may_edit: bool,
    saved: bool,
    c: ClassDetail,
    staff: Vec<StaffRef>,
    subject_max: usize,
    name_max: usize,
}

/// `GET /classes/{id}`: one class's teachers and pupils, with forms for school admins.
async fn class(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<Saved>,
) -> Response {
    if let Err(r) = may_read(&user) {
        return r.page(&school);
    }
    let may_edit = user.can(Permission::ManageRoster);
    match detail(&state, &school, id, may_edit).await {
        Ok((Some(c), staff)) => {
            let title = c.name.clone();
            let body = ClassPage {
                lang,
                csrf: &user.csrf_token,
                may_edit: may_edit && !c.retired,
                saved: q.saved.is_some(),
                c,
                staff,
                subject_max: edit::SUBJECT_MAX,
                name_max: edit::NAME_MAX,
            }
            .render()
            .unwrap_or_default();
            crate::ui::page(lang, &school, &user, &title, &body)
        }
        Ok((None, _)) => edit::class_not_found().page(&school),
        Err(r) => r.page(&school),
    }
}

/// `GET /api/v1/classes`: grades with their leaders, and every class.
async fn classes_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
) -> Response {
    if let Err(r) = may_read(&user) {
        return r.json();
    }
    match overview(&state, &school, false).await {
        Ok((o, _)) => Json(o).into_response(),
        Err(r) => r.json(),
    }
}

async fn class_detail_json(state: &SchoolState, school: &Tenant, id: i64) -> Response {
    match detail(state, school, id, false).await {
        Ok((Some(c), _)) => Json(c).into_response(),
        Ok((None, _)) => edit::class_not_found().json(),
        Err(r) => r.json(),
    }
}

/// `GET /api/v1/classes/{id}`.
async fn class_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = may_read(&user) {
        return r.json();
    }
    class_detail_json(&state, &school, id).await
}

// ---------------------------------------------------------------------------------------
// Changing: pages (forms with `csrf`, redirect back) and JSON (`X-CSRF-Token`)
// ---------------------------------------------------------------------------------------

/// Every field any organisation form sends; each handler reads the ones it needs.
#[derive(Debug, Default, Deserialize)]
struct EditForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    grade_id: String,
    #[serde(default)]
    number: String,
    #[serde(default)]
    staff_id: String,
    #[serde(default)]
    subject: String,
}

type FormResult = Result<Form<EditForm>, FormRejection>;

/// Checks the form's token, builds the change, applies it, and redirects to `back` (or
/// shows why not).
async fn submit(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    form: FormResult,
    change: impl FnOnce(&EditForm) -> Result<Change, Refusal>,
    back: impl FnOnce(edit::Applied) -> String,
) -> Response {
    let result = async {
        let Form(form) = form.map_err(|_| {
            refuse(
                StatusCode::BAD_REQUEST,
                "表单无效。",
                "The form could not be read.",
            )
        })?;
        check_csrf(user, Some(&form.csrf))?;
        let change = change(&form)?;
        edit::apply(state, school, user, change).await
    }
    .await;
    match result {
        Ok(applied) => Redirect::to(&back(applied)).into_response(),
        Err(r) => r.page(school),
    }
}

fn class_back(applied: edit::Applied) -> String {
    format!("/classes/{}?saved=1", applied.class.unwrap_or_default())
}

fn grades_back(_: edit::Applied) -> String {
    "/classes?saved=1#grades".into()
}

fn staff_id(form: &EditForm) -> Result<i64, Refusal> {
    edit::optional_id(&form.staff_id)?.ok_or_else(|| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "请选择教师。",
            "Choose a teacher.",
        )
    })
}

/// `POST /grades`: a new grade (`level`, `name`).
async fn create_grade_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            let level = edit::number(
                &f.level,
                "年级序号须在 1 到 12 之间。",
                "The grade level must be between 1 and 12.",
            )?;
            Ok(Change::CreateGrade {
                level: edit::check_level(level)?,
                name: f.name.clone(),
            })
        },
        grades_back,
    )
    .await
}

/// `POST /grades/{id}/rename`.
async fn rename_grade_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            Ok(Change::RenameGrade {
                grade: id,
                name: f.name.clone(),
            })
        },
        grades_back,
    )
    .await
}

/// `POST /grades/{id}/leader`: sets (`staff_id`) or clears (empty) the grade leader.
async fn grade_leader_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            Ok(Change::SetGradeLeader {
                grade: id,
                staff: edit::optional_id(&f.staff_id)?,
            })
        },
        grades_back,
    )
    .await
}

/// `POST /classes`: a new class (`grade_id`, `number`, optional `name`).
async fn create_class_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            let grade = edit::number(&f.grade_id, "请选择年级。", "Choose a grade.")?;
            let number = edit::number(
                &f.number,
                "班号须在 1 到 99 之间。",
                "The class number must be between 1 and 99.",
            )?;
            Ok(Change::CreateClass {
                grade,
                number: edit::check_number(number)?,
                name: Some(f.name.clone()),
            })
        },
        class_back,
    )
    .await
}

/// `POST /classes/{id}/rename`.
async fn rename_class_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            Ok(Change::RenameClass {
                class: id,
                name: f.name.clone(),
            })
        },
        class_back,
    )
    .await
}

/// `POST /classes/{id}/head-teacher`: sets (`staff_id`) or clears (empty) the head teacher.
async fn head_teacher_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            Ok(Change::SetHeadTeacher {
                class: id,
                staff: edit::optional_id(&f.staff_id)?,
            })
        },
        class_back,
    )
    .await
}

/// `POST /classes/{id}/teachers`: adds a subject teacher (`staff_id`, `subject`).
async fn add_teacher_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            Ok(Change::AddTeacher {
                class: id,
                staff: staff_id(f)?,
                subject: f.subject.clone(),
            })
        },
        class_back,
    )
    .await
}

/// `POST /classes/{id}/teachers/remove` (`staff_id`, `subject`).
async fn remove_teacher_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |f| {
            Ok(Change::RemoveTeacher {
                class: id,
                staff: staff_id(f)?,
                subject: f.subject.clone(),
            })
        },
        class_back,
    )
    .await
}

/// `POST /classes/{id}/retire`: only a class without current pupils (409 otherwise).
async fn retire_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    form: FormResult,
) -> Response {
    submit(
        &state,
        &school,
        &user,
        form,
        |_| Ok(Change::RetireClass { class: id }),
        class_back,
    )
    .await
}

/// Checks `X-CSRF-Token` and the JSON body, applies the change; answers with the class (or
/// the organisation overview for grade changes) as it now is.
async fn submit_json<T>(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    headers: &HeaderMap,
    body: Result<Json<T>, JsonRejection>,
    created: bool,
    change: impl FnOnce(T) -> Result<Change, Refusal>,
) -> Response {
    let result = async {
        // Permission before the token, so a parent learns "forbidden", not "expired".
        edit::require_editor(user)?;
        check_csrf(
            user,
            headers.get("x-csrf-token").and_then(|v| v.to_str().ok()),
        )?;
        let Json(body) = body.map_err(|e| {
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("请求内容无效：{}", e.body_text()),
                format!("Invalid request body: {}", e.body_text()),
            )
        })?;
        edit::apply(state, school, user, change(body)?).await
    }
    .await;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    match result {
        Ok(applied) => match applied.class {
            Some(id) => {
                let mut r = class_detail_json(state, school, id).await;
                if r.status() == StatusCode::OK {
                    *r.status_mut() = status;
                }
                r
            }
            None => match overview(state, school, false).await {
                Ok((o, _)) => (status, Json(o)).into_response(),
                Err(r) => r.json(),
            },
        },
        Err(r) => r.json(),
    }
}

#[derive(Debug, Deserialize)]
struct NewGrade {
    level: i64,
    name: String,
}

#[derive(Debug, Deserialize)]
struct NewClass {
    grade_id: i64,
    number: i64,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Rename {
    name: String,
}

#[derive(Debug, Deserialize)]
struct TeacherBody {
    staff_id: i64,
    subject: String,
}

#[derive(Debug, Deserialize)]
struct Empty {}

/// `POST /api/v1/grades` `{level, name}` → 201 with the overview.
async fn create_grade_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    body: Result<Json<NewGrade>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, true, |b| {
        Ok(Change::CreateGrade {
            level: edit::check_level(b.level)?,
            name: b.name,
        })
    })
    .await
}

/// `PATCH /api/v1/grades/{id}` `{name}`.
async fn rename_grade_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<Rename>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, false, |b| {
        Ok(Change::RenameGrade {
            grade: id,
            name: b.name,
        })
    })
    .await
}

/// `PUT /api/v1/grades/{id}/leader` `{staff_id}` (`null` clears it).
async fn grade_leader_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<edit::StaffBody>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, false, |b| {
        Ok(Change::SetGradeLeader {
            grade: id,
            staff: b.staff_id,
        })
    })
    .await
}

/// `POST /api/v1/classes` `{grade_id, number, name?}` → 201 with the class.
async fn create_class_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    body: Result<Json<NewClass>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, true, |b| {
        Ok(Change::CreateClass {
            grade: b.grade_id,
            number: edit::check_number(b.number)?,
            name: b.name,
        })
    })
    .await
}

/// `PATCH /api/v1/classes/{id}` `{name}`.
async fn rename_class_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<Rename>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, false, |b| {
        Ok(Change::RenameClass {
            class: id,
            name: b.name,
        })
    })
    .await
}

/// `PUT /api/v1/classes/{id}/head-teacher` `{staff_id}` (`null` clears it).
async fn head_teacher_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<edit::StaffBody>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, false, |b| {
        Ok(Change::SetHeadTeacher {
            class: id,
            staff: b.staff_id,
        })
    })
    .await
}

/// `POST /api/v1/classes/{id}/teachers` `{staff_id, subject}` → 201 with the class.
async fn add_teacher_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<TeacherBody>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, true, |b| {
        Ok(Change::AddTeacher {
            class: id,
            staff: b.staff_id,
            subject: b.subject,
        })
    })
    .await
}

/// `DELETE /api/v1/classes/{id}/teachers` `{staff_id, subject}`.
async fn remove_teacher_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Result<Json<TeacherBody>, JsonRejection>,
) -> Response {
    submit_json(&state, &school, &user, &headers, body, false, |b| {
        Ok(Change::RemoveTeacher {
            class: id,
            staff: b.staff_id,
            subject: b.subject,
        })
    })
    .await
}

/// `POST /api/v1/classes/{id}/retire` (body `{}` or none).
async fn retire_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    submit_json(
        &state,
        &school,
        &user,
        &headers,
        Ok::<_, JsonRejection>(Json(Empty {})),
        false,
        |_| Ok(Change::RetireClass { class: id }),
    )
    .await
}
