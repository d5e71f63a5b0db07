//! The school admin's audit log page: sign-ins and role changes from the shared identity
//! trail, and reads of sensitive pupil fields, imports and exports from the school's own
//! `audit_log`, merged newest first and searchable by kind, person and date.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::account::{self, EventFilter};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, Tenant};
use campus_web::Lang;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::SchoolState;

/// Entries shown at most; narrow the dates to see older ones.
const LIMIT: i64 = 200;

#[derive(Debug, Default, Deserialize)]
pub(crate) struct Search {
    /// `signin`, `roles`, `data` or empty for all.
    #[serde(default)]
    kind: String,
    #[serde(default)]
    who: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Entry {
    at: DateTime<Utc>,
    kind: &'static str,
    event: String,
    /// Who acted.
    actor: String,
    /// What or whom it concerned.
    subject: String,
    detail: String,
}

fn event_name(event: &str, lang: Lang) -> String {
    let (zh, en) = match event {
        "signed_in" => ("登录成功", "signed in"),
        "wrong_password" => ("密码错误", "wrong password"),
        "unknown_login" => ("账号不存在", "unknown login"),
        "locked_out" => ("账号锁定中", "locked out"),
        "rate_limited" => ("尝试过于频繁", "rate limited"),
        "no_membership" => ("无本校身份", "no identity here"),
        "disabled" => ("账号已停用", "account disabled"),
        "wrong_second_factor" => ("两步验证码错误", "wrong second-factor code"),
        "second_factor_on" => ("启用两步验证", "two-step verification on"),
        "second_factor_off" => ("关闭两步验证", "two-step verification off"),
        "password_changed" => ("修改密码", "password changed"),
        "password_reset_email" => ("通过邮箱重设密码", "password reset by email"),
        "reset_link_sent" => ("发送密码重设邮件", "reset link mailed"),
        "role_changed" => ("角色变更", "roles changed"),
        "membership_changed" => ("状态或有效期变更", "status or validity changed"),
        "member_added" => ("添加成员", "member added"),
        "role_created" => ("新建角色", "role created"),
        "role_updated" => ("修改角色", "role updated"),
        "role_deleted" => ("删除角色", "role deleted"),
        "sensitive_read" => ("查看敏感信息", "sensitive fields read"),
        "roster_import" => ("导入花名册", "roster imported"),
        "roster_export" => ("导出花名册", "roster exported"),
        "join_approved" => ("通过加入申请", "join approved"),
        "join_rejected" => ("拒绝加入申请", "join rejected"),
        "gate_device_added" => ("添加门禁设备", "gate device added"),
        "gate_device_revoked" => ("停用门禁设备", "gate device revoked"),
        "calendar_changed" => ("修改校历", "calendar changed"),
        "attendance_settings_changed" => ("修改点名与到校时间", "attendance times changed"),
        "organisation_changed" => ("调整年级班级", "organisation changed"),
        "notify_settings_changed" => ("修改消息推送设置", "message delivery settings changed"),
        "notify_retried" => ("重试失败的投递", "failed deliveries retried"),
        other => return other.to_owned(),
    };
    lang.pick(zh, en).to_owned()
}

fn date(s: &str) -> Result<Option<NaiveDate>, ()> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}

/// Why a search is refused.
enum Refused {
    Auth(campus_identity::AuthRejection),
    BadDate,
    Unavailable(String),
}

async fn search(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    s: &Search,
    lang: Lang,
) -> Result<Vec<Entry>, Refused> {
    user.require(Permission::ViewAudit).map_err(Refused::Auth)?;
    let from = date(&s.from).map_err(|()| Refused::BadDate)?;
    let to = date(&s.to).map_err(|()| Refused::BadDate)?;
    let unavailable = |e: &dyn std::fmt::Display| Refused::Unavailable(e.to_string());
    let mut entries = Vec::new();
    if matches!(s.kind.as_str(), "" | "signin" | "roles") {
        let filter = EventFilter {
            kind: &s.kind,
            who: s.who.trim(),
            from,
            to,
            limit: LIMIT,
        };
        let events = account::school_events(&state.identity.pool, school.id.0, &filter)
            .await
            .map_err(|e| unavailable(&e))?;
        entries.extend(events.into_iter().map(|e| {
            let roles = e.actor.is_some() || e.event.starts_with("role_");
            Entry {
                at: e.at,
                kind: if roles { "roles" } else { "signin" },
                actor: e.actor.unwrap_or_else(|| e.subject.clone()),
                subject: e.subject,
                detail: e
                    .detail
                    .map(|d| d.to_string())
                    .or(e.host)
                    .unwrap_or_default(),
                event: event_name(&e.event, lang),
            }
        }));
    }
    if matches!(s.kind.as_str(), "" | "data") {
        let who = format!("%{}%", s.who.trim().replace(['%', '_', '\\'], ""));
        let mut tx = state.db.school(school).await.map_err(|e| unavailable(&e))?;
        let rows = sqlx::query(
            "select at, actor_name, action, coalesce(subject, '') as subject, detail::text as detail from audit_log
              where ($1 = '%%' or actor_name like $1)
                and ($2::date is null or at >= $2::date)
                and ($3::date is null or at < $3::date + 1)
              order by at desc, id desc limit $4",
        )
        .bind(&who)
        .bind(from)
        .bind(to)
        .bind(LIMIT)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| unavailable(&e))?;
        tx.commit().await.map_err(|e| unavailable(&e))?;
        entries.extend(rows.into_iter().map(|r| Entry {
            at: r.get("at"),
            kind: "data",
            event: event_name(r.get("action"), lang),
            actor: r.get("actor_name"),
            subject: r.get("subject"),
            detail: r.get("detail"),
        }));
    }
    entries.sort_by_key(|e| std::cmp::Reverse(e.at));
    entries.truncate(LIMIT as usize);
    Ok(entries)
}

struct AuditRow {
    at: String,
    kind: &'static str,
    event: String,
    actor: String,
    subject: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage<'a> {
    lang: Lang,
    s: &'a Search,
    rows: Vec<AuditRow>,
    error: Option<&'static str>,
    limit: i64,
}

fn refused_page(r: Refused) -> Result<Response, &'static str> {
    match r {
        Refused::Auth(a) => Ok(a.into_response()),
        Refused::BadDate => Err("日期格式应为 2026-09-01。(Dates look like 2026-09-01.)"),
        Refused::Unavailable(e) => {
            tracing::error!(error = %e, "audit search failed");
            Ok(campus_web::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                campus_web::PLATFORM_NAME,
                ("服务暂时不可用", "请稍后刷新重试。"),
                ("Temporarily unavailable", "Please try again in a moment."),
            ))
        }
    }
}

/// `GET /admin/audit?kind=&who=&from=&to=`.
pub(crate) async fn page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(s): Query<Search>,
) -> Response {
    let (entries, error, status) = match search(&state, &school, &user, &s, lang).await {
        Ok(e) => (e, None, StatusCode::OK),
        Err(r) => match refused_page(r) {
            Ok(resp) => return resp,
            Err(msg) => (Vec::new(), Some(msg), StatusCode::UNPROCESSABLE_ENTITY),
        },
    };
    let kind_name = |k: &str| match k {
        "signin" => lang.pick("登录", "sign-in"),
        "roles" => lang.pick("角色", "roles"),
        _ => lang.pick("数据", "data"),
    };
    let rows = entries
        .into_iter()
        .map(|e| AuditRow {
            at: e
                .at
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8"))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            kind: kind_name(e.kind),
            event: e.event,
            actor: e.actor,
            subject: e.subject,
            detail: e.detail,
        })
        .collect();
    let body = AuditPage {
        lang,
        s: &s,
        rows,
        error,
        limit: LIMIT,
    }
    .render()
    .unwrap_or_default();
    campus_web::Shell {
        title: lang.pick("审计日志", "Audit log"),
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body: &body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(status)
}

/// `GET /api/v1/audit`: the same search as JSON.
pub(crate) async fn json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Query(s): Query<Search>,
) -> Response {
    match search(&state, &school, &user, &s, Lang::Zh).await {
        Ok(entries) => Json(serde_json::json!({"entries": entries})).into_response(),
        Err(r) => match refused_page(r) {
            Ok(resp) => resp,
            Err(msg) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json::json!({"code": "bad_date", "message": msg})),
            )
                .into_response(),
        },
    }
}
