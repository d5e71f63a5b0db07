//! The school's home page (name, badge, headline figures), its badge, and its profile as JSON.

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::MaybeUser;
use campus_tenant::{CurrentSchool, ObjectKey, SchoolTx, Tenant, TenantError};
use serde::Serialize;
use sqlx::Row;

use std::sync::Arc;
use std::time::Duration;

use campus_tenant::TenantId;

use crate::SchoolState;

pub(crate) const BADGE_KEY: &str = "branding/badge.svg";

#[derive(Clone, Serialize)]
pub(crate) struct GradeRow {
    name: String,
    classes: i64,
    students: i64,
}

/// A link on the home page to something the signed-in person may do here.
pub(crate) struct Task {
    href: &'static str,
    label: &'static str,
}

/// What the person may do here, by permission: the home page differs per role.
fn tasks(user: &MaybeUser, lang: campus_web::Lang) -> Vec<Task> {
    use campus_identity::Permission as P;
    let Some(u) = &user.0 else {
        return Vec::new();
    };
    let all: [(P, &'static str, &'static str, &'static str); 23] = [
        (P::OwnChildren, "/today", "今日", "Today"),
        (P::GateScan, "/gate", "出入校登记", "Gate"),
        (P::TakeAttendance, "/attendance", "考勤点名", "Attendance"),
        (P::SendNotices, "/notices/new", "发通知", "Send a notice"),
        (P::StaffArea, "/messages", "家校消息", "Messages"),
        (P::OwnChildren, "/messages", "家校消息", "Messages"),
        (P::StaffArea, "/mailbox", "校长信箱", "Principal's mailbox"),
        (
            P::OwnChildren,
            "/mailbox",
            "校长信箱",
            "Principal's mailbox",
        ),
        (P::ApproveLeave, "/leave", "请假审批", "Leave requests"),
        (P::OwnChildren, "/leave", "请假", "Leave"),
        (P::PupilRecords, "/classes", "班级", "Classes"),
        (P::PupilRecords, "/pupils", "学生档案", "Pupils"),
        (P::OwnChildren, "/pupils", "我的孩子", "My children"),
        (P::ManageUsers, "/admin/users", "用户管理", "Users"),
        (P::ManageUsers, "/admin/roles", "角色与权限", "Roles"),
        (P::ManageUsers, "/admin/join", "加入审核", "Join requests"),
        (
            P::ManageRoster,
            "/admin/roster",
            "花名册导入导出",
            "Roster import and export",
        ),
        (
            P::ManageRoster,
            "/admin/calendar",
            "校历",
            "School calendar",
        ),
        (
            P::ManageUsers,
            "/admin/notify",
            "消息推送设置",
            "Message delivery",
        ),
        (P::ViewAudit, "/admin/audit", "审计日志", "Audit log"),
        (
            P::StaffArea,
            "/settings/notifications",
            "提醒方式",
            "How I am notified",
        ),
        (
            P::OwnChildren,
            "/settings/notifications",
            "提醒方式",
            "How I am notified",
        ),
        (P::StaffArea, "/me", "我的身份", "My identities"),
    ];
    let mut out: Vec<Task> = Vec::new();
    for (p, href, zh, en) in all {
        if u.can(p) && !out.iter().any(|t: &Task| t.href == href) {
            out.push(Task {
                href,
                label: lang.pick(zh, en),
            });
        }
    }
    if !out.iter().any(|t| t.href == "/me") {
        out.push(Task {
            href: "/me",
            label: lang.pick("我的身份", "My identities"),
        });
    }
    out
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home<'a> {
    lang: campus_web::Lang,
    tasks: Vec<Task>,
    name: &'a str,
    motto: Option<String>,
    kind: &'static str,
    township: Option<String>,
    students: i64,
    classes: i64,
    staff: i64,
    attendance: String,
    grades: Vec<GradeRow>,
    /// Unread inbox items of the signed-in person.
    unread: Option<i64>,
}

fn kind_name(kind: &str, lang: campus_web::Lang) -> &'static str {
    match kind {
        "junior" => lang.pick("初级中学", "Junior secondary school"),
        "nine_year" => lang.pick("九年一贯制学校", "Nine-year school"),
        "senior" => lang.pick("高级中学", "Senior secondary school"),
        "complete" => lang.pick("完全中学", "Complete secondary school"),
        _ => lang.pick("小学", "Primary school"),
    }
}

#[derive(Serialize)]
pub(crate) struct Profile {
    name: String,
    short_name: Option<String>,
    kind: Option<String>,
    township: Option<String>,
    motto: Option<String>,
    theme_color: Option<String>,
    students: i64,
    classes: i64,
    staff: i64,
    /// Present pupil-days ÷ enrolled pupil-days over the registers of the last 30 days.
    attendance_rate: Option<f64>,
    grades: Vec<GradeRow>,
}

async fn load_profile(tx: &mut SchoolTx, fallback_name: &str) -> Result<Profile, sqlx::Error> {
    let p = sqlx::query(
        "select name, short_name, kind, township, motto, theme_color from school_profile",
    )
    .fetch_optional(&mut **tx)
    .await?;
    let counts = sqlx::query(
        "select (select count(*) from students where left_on is null) as students,
                (select count(*) from classes) as classes,
                (select count(*) from staff where active) as staff,
                (select 1 - coalesce(sum(m.n), 0)::float8 / nullif(sum(r.enrolled), 0)
                   from attendance_registers r
                   left join lateral (select count(*) as n from attendance_marks am
                                      where am.register_id = r.id and am.status in ('absent', 'leave')) m on true
                  where r.day > current_date - 45) as rate",
    )
    .fetch_one(&mut **tx)
    .await?;
    let grades = sqlx::query(
        "select g.name, count(distinct c.id) as classes, count(s.id) as students
           from grades g left join classes c on c.grade_id = g.id
           left join students s on s.class_id = c.id and s.left_on is null
          group by g.id, g.level, g.name order by g.level",
    )
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| GradeRow {
        name: r.get("name"),
        classes: r.get("classes"),
        students: r.get("students"),
    })
    .collect();
    Ok(Profile {
        name: p
            .as_ref()
            .map_or_else(|| fallback_name.to_owned(), |r| r.get("name")),
        short_name: p.as_ref().map(|r| r.get("short_name")),
        kind: p.as_ref().map(|r| r.get("kind")),
        township: p.as_ref().and_then(|r| r.get("township")),
        motto: p.as_ref().and_then(|r| r.get("motto")),
        theme_color: p.as_ref().map(|r| r.get("theme_color")),
        students: counts.get("students"),
        classes: counts.get("classes"),
        staff: counts.get("staff"),
        attendance_rate: counts.get("rate"),
        grades,
    })
}

/// Schools' profiles and figures, kept for [`PROFILE_TTL`]: every visitor of a school's
/// home page sees them, and the attendance rate adds up six weeks of registers, which is
/// far too much work to repeat for each page view of a busy morning.
#[derive(Clone)]
pub struct ProfileCache(moka::future::Cache<TenantId, Arc<Profile>>);

/// How stale the home page's figures may be.
pub const PROFILE_TTL: Duration = Duration::from_secs(30);

impl Default for ProfileCache {
    fn default() -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(PROFILE_TTL)
                .build(),
        )
    }
}

impl std::fmt::Debug for ProfileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileCache")
            .field("entries", &self.0.entry_count())
            .finish()
    }
}

/// The profile, from the cache or in one school-scoped transaction; concurrent requests
/// of one school wait for a single load.
async fn fetch_profile(
    state: &SchoolState,
    school: &Tenant,
) -> Result<Arc<Profile>, Arc<TenantError>> {
    state
        .profiles
        .0
        .try_get_with(school.id, async {
            let mut tx = state.db.school(school).await?;
            let profile = load_profile(&mut tx, &school.name).await?;
            tx.commit().await?;
            Ok::<_, TenantError>(Arc::new(profile))
        })
        .await
}

async fn unread_count(
    state: &SchoolState,
    school: &Tenant,
    user: &campus_identity::CurrentUser,
) -> Result<i64, TenantError> {
    let mut tx = state.db.school(school).await?;
    let n = crate::notify::unread(
        &mut tx,
        &crate::notify::Recipient::all_of(user.staff_id, user.guardian_id),
    )
    .await?;
    tx.commit().await?;
    Ok(n)
}

pub(crate) async fn home(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: campus_web::Lang,
    user: MaybeUser,
) -> Response {
    let profile = match fetch_profile(&state, &school).await {
        Ok(p) => p,
        Err(e) => return crate::ui::unavailable("school home page", e),
    };
    let unread = match &user.0 {
        Some(u) if u.staff_id.is_some() || u.guardian_id.is_some() => {
            unread_count(&state, &school, u).await.ok()
        }
        _ => None,
    };
    let body = Home {
        unread,
        lang,
        tasks: tasks(&user, lang),
        name: &school.name,
        motto: profile.motto.clone(),
        kind: kind_name(profile.kind.as_deref().unwrap_or("primary"), lang),
        township: profile.township.clone(),
        students: profile.students,
        classes: profile.classes,
        staff: profile.staff,
        attendance: profile
            .attendance_rate
            .map_or_else(|| "—".into(), |r| format!("{:.1}%", r * 100.0)),
        grades: profile.grades.clone(),
    }
    .render()
    .unwrap_or_default();
    campus_web::Shell {
        title: lang.pick("首页", "Home"),
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: profile.theme_color.as_deref(),
        body: &body,
        who: user.who(),
        lang,
    }
    .into_page(StatusCode::OK)
}

pub(crate) async fn profile_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
) -> Response {
    match fetch_profile(&state, &school).await {
        Ok(p) => Json(p).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "school profile failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"code": "unavailable", "message": "try again shortly"})),
            )
                .into_response()
        }
    }
}

/// The school's badge from its own storage prefix, or a neutral one if none was uploaded.
pub(crate) async fn badge(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
) -> Response {
    let key = ObjectKey::parse(BADGE_KEY).expect("constant key is valid");
    let svg = match state.store.for_tenant(&school).get(&key).await {
        Ok(Some((bytes, _))) => bytes.to_vec(),
        Ok(None) => crate::demo::badge_svg(&school.name, "#1f6feb").into_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "badge could not be read from storage");
            crate::demo::badge_svg(&school.name, "#1f6feb").into_bytes()
        }
    };
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        svg,
    )
        .into_response()
}
