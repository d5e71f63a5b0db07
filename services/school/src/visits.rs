//! Visitor passes (访客预约): a visitor applies at `/visit` naming the teacher they visit and
//! when; the host teacher approves or rejects at `/visits`; the visitor follows the
//! application at `/visit/{token}` and, once approved, sees the pass code; the guard checks
//! the code at `/gate/visitor` (valid only on the day of the visit, checked in once).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, Tenant};
use campus_web::Lang;
use chrono::NaiveDateTime;
use serde::Deserialize;
use sqlx::Row;

use crate::attendance::{check_csrf, refuse, Refusal, TZ_SQL};
use crate::notify::{self, Audience, Category, Message, Recipient};
use crate::ui::page;
use crate::SchoolState;

pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/visit", get(apply_form).post(apply))
        .route("/visit/{token}", get(status))
        .route("/visits", get(host_list))
        .route("/visits/{id}/{action}", post(decide))
        .route("/gate/visitor", get(check_form).post(check))
}

fn public_page(school: &Tenant, lang: Lang, title: &str, body: &str) -> Response {
    campus_web::Shell {
        title,
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body,
        who: campus_web::Who::SignIn,
        lang,
    }
    .into_page(StatusCode::OK)
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<section class="card"><h1>{{ lang.pick("访客预约", "Visitor pass") }}</h1>
<form method="post" action="/visit">
<label>{{ lang.pick("姓名", "Name") }} <input name="name" required maxlength="50"></label>
<label>{{ lang.pick("手机号", "Phone") }} <input name="phone" required maxlength="20"></label>
<label>{{ lang.pick("被访教师姓名", "Teacher visited") }} <input name="host" required maxlength="50"></label>
<label>{{ lang.pick("来访时间", "Time") }} <input type="datetime-local" name="at" required></label>
<label>{{ lang.pick("事由", "Purpose") }} <input name="purpose" maxlength="200"></label>
<button>{{ lang.pick("提交", "Apply") }}</button></form></section>"#
)]
struct ApplyPage {
    lang: Lang,
}

/// `GET /visit`.
pub(crate) async fn apply_form(CurrentSchool(school): CurrentSchool, lang: Lang) -> Response {
    let body = ApplyPage { lang }.render().unwrap_or_default();
    public_page(&school, lang, lang.pick("访客预约", "Visitor pass"), &body)
}

#[derive(Debug, Deserialize)]
pub(crate) struct ApplyForm {
    name: Option<String>,
    phone: Option<String>,
    host: Option<String>,
    at: Option<String>,
    purpose: Option<String>,
}

fn bad(zh: &'static str, en: &'static str) -> Refusal {
    refuse(StatusCode::UNPROCESSABLE_ENTITY, zh, en)
}

/// `POST /visit`: stores the application and tells the host teacher.
pub(crate) async fn apply(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    Form(form): Form<ApplyForm>,
) -> Response {
    let result = async {
        let name = form.name.as_deref().unwrap_or("").trim().to_owned();
        let phone = form.phone.as_deref().unwrap_or("").trim().to_owned();
        let host = form.host.as_deref().unwrap_or("").trim().to_owned();
        let purpose = form.purpose.as_deref().unwrap_or("").trim().to_owned();
        if name.is_empty() || name.chars().count() > 50 {
            return Err(bad("请填写姓名。", "Give your name."));
        }
        if !(5..=20).contains(&phone.len())
            || !phone
                .chars()
                .all(|c| c.is_ascii_digit() || c == '+' || c == '-')
        {
            return Err(bad("手机号格式不正确。", "Bad phone number."));
        }
        if purpose.chars().count() > 200 {
            return Err(bad(
                "事由不超过 200 字。",
                "Purpose: at most 200 characters.",
            ));
        }
        let at = form.at.as_deref().unwrap_or("").trim();
        let at = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(at, f).ok())
            .ok_or_else(|| bad("来访时间格式不正确。", "Bad visit time."))?;
        let mut tx = state.db.school(&school).await?;
        let hosts: Vec<i64> =
            sqlx::query_scalar("select id from staff where name = $1 and active order by id")
                .bind(&host)
                .fetch_all(&mut *tx)
                .await?;
        let [host_id] = hosts[..] else {
            return Err(bad(
                "找不到这位教师，请核对姓名。",
                "No single teacher of that name.",
            ));
        };
        let token = hex::encode(rand::random::<[u8; 16]>());
        let id: i64 = sqlx::query_scalar(&format!(
            "insert into gate_visits (token, visitor_name, phone, host_staff_id, visit_at, purpose)
             values ($1, $2, $3, $4, $5::timestamp at time zone {TZ_SQL}, $6) returning id"
        ))
        .bind(&token)
        .bind(&name)
        .bind(&phone)
        .bind(host_id)
        .bind(at)
        .bind(&purpose)
        .fetch_one(&mut *tx)
        .await?;
        let title = format!("访客预约：{name}");
        let body = format!(
            "{name} 预约于 {} 来访。{purpose}",
            at.format("%Y-%m-%d %H:%M")
        );
        let source = format!("visit:{id}");
        notify::send(
            &mut tx,
            &Audience::People(vec![Recipient::Staff(host_id)]),
            &Message {
                category: Category::General,
                title: &title,
                body: &body,
                link: Some("/visits"),
                source: &source,
                dedupe_key: Some(&source),
                en: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }
    .await;
    match result {
        Ok(token) => Redirect::to(&format!("/visit/{token}")).into_response(),
        Err(r) => r.page(&school),
    }
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<section class="card"><h1>{{ lang.pick("访客预约", "Visitor pass") }}</h1>
<p>{{ name }} · {{ at }}</p>
<p id="status">{% if status == "approved" %}{{ lang.pick("已同意", "Approved") }}{% else if status == "rejected" %}{{ lang.pick("未同意", "Rejected") }}{% else %}{{ lang.pick("待教师确认", "Waiting for the teacher") }}{% endif %}</p>
{% if let Some(c) = code %}<p>{{ lang.pick("通行码", "Pass code") }}：<strong id="code">{{ c }}</strong></p>{% endif %}
</section>"#
)]
struct StatusPage {
    lang: Lang,
    name: String,
    at: String,
    status: String,
    code: Option<String>,
}

/// `GET /visit/{token}`: the visitor's own view of the application.
pub(crate) async fn status(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    Path(token): Path<String>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let row = sqlx::query(&format!(
            "select visitor_name, to_char(visit_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as at,
                    status, pass_code from gate_visits where token = $1"
        ))
        .bind(&token)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let row = row.ok_or_else(|| refuse(StatusCode::NOT_FOUND, "没有这个预约。", "No such visit."))?;
        Ok::<_, Refusal>(
            StatusPage {
                lang,
                name: row.get("visitor_name"),
                at: row.get("at"),
                status: row.get("status"),
                code: row.get("pass_code"),
            }
            .render()
            .unwrap_or_default(),
        )
    }
    .await;
    match result {
        Ok(body) => public_page(&school, lang, lang.pick("访客预约", "Visitor pass"), &body),
        Err(r) => r.page(&school),
    }
}

struct Visit {
    id: i64,
    name: String,
    phone: String,
    at: String,
    purpose: String,
    status: String,
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<section class="card"><h1>{{ lang.pick("我的访客", "My visitors") }}</h1>
<table id="visits" class="list">{% for v in visits %}<tr><td>{{ v.name }}</td><td>{{ v.phone }}</td><td>{{ v.at }}</td><td>{{ v.purpose }}</td><td>{{ v.status }}</td>
<td>{% if v.status == "pending" %}<form method="post" action="/visits/{{ v.id }}/approve"><input type="hidden" name="csrf" value="{{ csrf }}"><button>{{ lang.pick("同意", "Approve") }}</button></form>
<form method="post" action="/visits/{{ v.id }}/reject"><input type="hidden" name="csrf" value="{{ csrf }}"><button>{{ lang.pick("拒绝", "Reject") }}</button></form>{% endif %}</td></tr>{% endfor %}</table>
{% if visits.is_empty() %}<p>{{ lang.pick("没有访客预约。", "No visitors.") }}</p>{% endif %}</section>"#
)]
struct HostPage<'a> {
    lang: Lang,
    visits: Vec<Visit>,
    csrf: &'a str,
}

fn host_of(user: &CurrentUser) -> Result<i64, Refusal> {
    match (user.can(Permission::StaffArea), user.staff_id) {
        (true, Some(id)) => Ok(id),
        _ => Err(refuse(
            StatusCode::FORBIDDEN,
            "只有教职工可以接待访客。",
            "Only staff host visitors.",
        )),
    }
}

/// `GET /visits`: the signed-in teacher's visitors.
pub(crate) async fn host_list(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let result = async {
        let staff = host_of(&user)?;
        let mut tx = state.db.school(&school).await?;
        let visits = sqlx::query(&format!(
            "select id, visitor_name, phone, to_char(visit_at at time zone {TZ_SQL}, 'YYYY-MM-DD HH24:MI') as at,
                    purpose, status from gate_visits where host_staff_id = $1 order by visit_at desc, id desc limit 100"
        ))
        .bind(staff)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| Visit {
            id: r.get("id"),
            name: r.get("visitor_name"),
            phone: r.get("phone"),
            at: r.get("at"),
            purpose: r.get("purpose"),
            status: r.get("status"),
        })
        .collect();
        tx.commit().await?;
        Ok::<_, Refusal>(
            HostPage { lang, visits, csrf: &user.csrf_token }
                .render()
                .unwrap_or_default(),
        )
    }
    .await;
    match result {
        Ok(body) => page(
            lang,
            &school,
            &user,
            lang.pick("我的访客", "My visitors"),
            &body,
        ),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /visits/{id}/{approve|reject}`: only the host teacher; approval issues the code.
pub(crate) async fn decide(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path((id, action)): Path<(i64, String)>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let result = async {
        let staff = host_of(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        let status = match action.as_str() {
            "approve" => "approved",
            "reject" => "rejected",
            _ => return Err(refuse(StatusCode::NOT_FOUND, "找不到", "Not found")),
        };
        let mut tx = state.db.school(&school).await?;
        let mut code = None;
        if status == "approved" {
            // Codes are unique among all passes; draw again on the rare clash.
            for _ in 0..10 {
                let candidate = format!("{:08}", rand::random::<u32>() % 100_000_000);
                let taken: bool = sqlx::query_scalar(
                    "select exists(select 1 from gate_visits where pass_code = $1)",
                )
                .bind(&candidate)
                .fetch_one(&mut *tx)
                .await?;
                if !taken {
                    code = Some(candidate);
                    break;
                }
            }
            if code.is_none() {
                return Err(refuse(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "暂时无法生成通行码，请重试。",
                    "Could not issue a pass code; try again.",
                ));
            }
        }
        let n = sqlx::query(
            "update gate_visits set status = $1, pass_code = $2, decided_at = now()
              where id = $3 and host_staff_id = $4 and status = 'pending'",
        )
        .bind(status)
        .bind(code)
        .bind(id)
        .bind(staff)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "没有待您确认的这项预约。",
                "No such visit waiting for you.",
            ));
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/visits").into_response(),
        Err(r) => r.page(&school),
    }
}

#[derive(Template)]
#[template(
    ext = "html",
    source = r#"<section class="card"><h1>{{ lang.pick("访客核验", "Visitor check") }}</h1>
{% if let Some(r) = result %}<p id="visit-result" class="{% if r.0 %}ok{% else %}warn{% endif %}">{{ r.1 }}</p>{% endif %}
<form method="post" action="/gate/visitor"><input type="hidden" name="csrf" value="{{ csrf }}">
<label>{{ lang.pick("通行码", "Pass code") }} <input name="code" required maxlength="8"></label>
<button>{{ lang.pick("核验", "Check") }}</button></form></section>"#
)]
struct CheckPage<'a> {
    lang: Lang,
    result: Option<(bool, String)>,
    csrf: &'a str,
}

fn guard_or_refuse(user: &CurrentUser) -> Result<(), Refusal> {
    if user.can(Permission::GateScan) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "只有门卫可以核验访客。",
            "Only guards check visitors.",
        ))
    }
}

fn check_page(
    school: &Tenant,
    lang: Lang,
    user: &CurrentUser,
    result: Option<(bool, String)>,
) -> Response {
    let body = CheckPage {
        lang,
        result,
        csrf: &user.csrf_token,
    }
    .render()
    .unwrap_or_default();
    page(
        lang,
        school,
        user,
        lang.pick("访客核验", "Visitor check"),
        &body,
    )
}

/// `GET /gate/visitor`.
pub(crate) async fn check_form(
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    match guard_or_refuse(&user) {
        Ok(()) => check_page(&school, lang, &user, None),
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CheckForm {
    csrf: Option<String>,
    code: Option<String>,
}

/// `POST /gate/visitor`: an approved pass for today lets the visitor in (once).
pub(crate) async fn check(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Form(form): Form<CheckForm>,
) -> Response {
    let result = async {
        guard_or_refuse(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        let code = form.code.as_deref().unwrap_or("").trim().to_owned();
        let mut tx = state.db.school(&school).await?;
        let row = sqlx::query(&format!(
            "update gate_visits v set checked_in_at = now()
               from staff s
              where v.pass_code = $1 and v.status = 'approved' and v.checked_in_at is null
                and s.id = v.host_staff_id
                and (v.visit_at at time zone {TZ_SQL})::date = (now() at time zone {TZ_SQL})::date
             returning v.visitor_name, s.name as host,
                       to_char(v.visit_at at time zone {TZ_SQL}, 'HH24:MI') as at"
        ))
        .bind(&code)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, Refusal>(match row {
            Some(r) => {
                let name: String = r.get("visitor_name");
                let host: String = r.get("host");
                let at: String = r.get("at");
                (true, format!("通行：{name}，访 {host}，预约 {at}"))
            }
            None => (
                false,
                "无效：通行码不存在、未获同意、不是今天或已使用".to_owned(),
            ),
        })
    }
    .await;
    match result {
        Ok(r) => check_page(&school, lang, &user, Some(r)),
        Err(r) => r.page(&school),
    }
}
