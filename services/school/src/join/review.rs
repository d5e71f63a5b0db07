//! The administrator's review page: the two join links with their QR codes (and a button
//! to replace each), applications by state with counts, and the approve/reject forms.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Form, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, Tenant};
use serde::Deserialize;

use super::approve::{self, ApproveError, Reviewer};
use super::requests::{self, Candidate, Request};
use super::{links, page, qr, Failure, Kind, STATUSES};
use crate::SchoolState;

struct LinkView {
    kind: &'static str,
    kind_name: &'static str,
    url: String,
    qr: String,
}

struct Tab {
    code: &'static str,
    name: &'static str,
    count: i64,
    current: bool,
}

struct RoleChoice {
    code: &'static str,
    name: &'static str,
    checked: bool,
}

struct Row {
    r: Request,
    kind_name: &'static str,
    relation: String,
    created_at: String,
    reviewed_at: String,
    /// The one pupil the child's name matches exactly (approve needs no pick).
    matched: Option<Candidate>,
    /// Pupils to pick from when there is no single exact match.
    candidates: Vec<Candidate>,
}

#[derive(Template)]
#[template(path = "join/admin.html")]
struct AdminPage<'a> {
    lang: campus_web::Lang,
    csrf: &'a str,
    links: Vec<LinkView>,
    tabs: Vec<Tab>,
    status: &'a str,
    rows: Vec<Row>,
    roles: Vec<RoleChoice>,
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) status: Option<String>,
}

pub(crate) fn host(headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The school's own address for a join link.
pub(crate) fn link_url(state: &SchoolState, school: &Tenant, token: &str) -> String {
    format!("{}/join/{token}", state.identity.urls.school(&school.slug))
}

async fn load(
    state: &SchoolState,
    school: &Tenant,
    status: &str,
    lang: campus_web::Lang,
) -> Result<(Vec<LinkView>, Vec<(String, i64)>, Vec<Row>), Failure> {
    let mut tx = state.db.school(school).await?;
    let mut views = Vec::new();
    for kind in [Kind::Parent, Kind::Staff] {
        let token = links::ensure_active(&mut tx, kind).await?;
        let url = link_url(state, school, &token);
        views.push(LinkView {
            kind: kind.code(),
            kind_name: kind.name(lang),
            qr: qr::svg(&url),
            url,
        });
    }
    let counts = requests::counts(&mut tx).await?;
    let mut rows = Vec::new();
    for r in requests::list(&mut tx, status).await? {
        let (mut matched, mut candidates) = (None, Vec::new());
        if let (true, Some(class_id), Some(child)) =
            (r.status == "pending", r.class_id, r.child_name.as_deref())
        {
            let (found, exact) = requests::candidates(&mut tx, class_id, child).await?;
            if exact && found.len() == 1 {
                matched = found.into_iter().next();
            } else {
                candidates = found;
            }
        }
        rows.push(Row {
            kind_name: Kind::parse(&r.kind).map_or("", |k| k.name(lang)),
            relation: r
                .relation
                .as_deref()
                .map(super::relation_name)
                .unwrap_or_default()
                .to_owned(),
            created_at: super::local_time(r.created_at),
            reviewed_at: r.reviewed_at.map(super::local_time).unwrap_or_default(),
            matched,
            candidates,
            r,
        });
    }
    tx.commit().await?;
    Ok((views, counts, rows))
}

/// `GET /admin/join[?status=pending|approved|rejected]`.
pub(crate) async fn show(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: campus_web::Lang,
    user: CurrentUser,
    Query(q): Query<ListQuery>,
) -> Response {
    if let Err(e) = user.require(Permission::ManageUsers) {
        return e.into_response();
    }
    let status = q
        .status
        .as_deref()
        .filter(|s| STATUSES.iter().any(|x| x.0 == *s))
        .unwrap_or("pending");
    let (links, counts, rows) = match load(&state, &school, status, lang).await {
        Ok(x) => x,
        Err(f) => return f.page(&school.name),
    };
    let body = AdminPage {
        lang,
        csrf: &user.csrf_token,
        links,
        tabs: STATUSES
            .iter()
            .map(|(code, zh, en)| Tab {
                code,
                name: lang.pick(zh, en),
                count: counts
                    .iter()
                    .find(|(c, _)| c == code)
                    .map_or(0, |(_, n)| *n),
                current: *code == status,
            })
            .collect(),
        status,
        rows,
        roles: approve::staff_roles()
            .map(|r| RoleChoice {
                code: r.code,
                name: lang.pick(r.name_zh, r.name_en),
                checked: r.code == "teacher",
            })
            .collect(),
    }
    .render()
    .unwrap_or_default();
    page(
        &school,
        lang.pick("用户加入审核", "Join requests"),
        &body,
        campus_web::Who::User(user.badge()),
        lang,
        StatusCode::OK,
    )
}

/// Checks the reviewer's right and the session's CSRF token.
fn authorise(user: &CurrentUser, csrf: Option<&String>) -> Result<(), Box<Response>> {
    user.require(Permission::ManageUsers)
        .map_err(|e| Box::new(e.into_response()))?;
    if csrf.map(String::as_str) != Some(user.csrf_token.as_str()) {
        return Err(Box::new(
            (StatusCode::FORBIDDEN, "missing or wrong CSRF token").into_response(),
        ));
    }
    Ok(())
}

/// `POST /admin/join/links/{kind}/rotate`: the old link and QR code stop working.
pub(crate) async fn rotate(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(kind): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorise(&user, form.get("csrf")) {
        return *r;
    }
    let Some(kind) = Kind::parse(&kind) else {
        return campus_web::not_found_page(&school.name);
    };
    let done = async {
        let mut tx = state.db.school(&school).await?;
        links::rotate(&mut tx, kind).await?;
        tx.commit().await?;
        Ok::<_, Failure>(())
    }
    .await;
    match done {
        Ok(()) => Redirect::to("/admin/join").into_response(),
        Err(f) => f.page(&school.name),
    }
}

/// `POST /admin/join/{id}/approve` with `csrf`, for a parent optionally `student_id`, for
/// staff `role.<code>` checkboxes.
pub(crate) async fn approve(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorise(&user, form.get("csrf")) {
        return *r;
    }
    let student_id = match form.get("student_id").map(|s| s.trim()) {
        None | Some("") => None,
        Some(s) => match s.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return Failure::Invalid("所选学生无效。".into()).page(&school.name),
        },
    };
    let roles: Vec<String> = form
        .keys()
        .filter_map(|k| k.strip_prefix("role."))
        .map(str::to_owned)
        .collect();
    let host = host(&headers);
    let by = Reviewer {
        user: &user,
        host: &host,
    };
    match approve::approve(&state, &school, &by, id, student_id, &roles).await {
        Ok(_) => Redirect::to("/admin/join").into_response(),
        Err(ApproveError::ChooseStudent(_)) => Failure::Conflict(
            "孩子姓名与所选班级的学生不是唯一匹配，请在审核列表中选择对应的学生后再通过。".into(),
        )
        .page(&school.name),
        Err(ApproveError::Failed(f)) => f.page(&school.name),
    }
}

/// `POST /admin/join/{id}/reject` with `csrf` and `reason`.
pub(crate) async fn reject(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = authorise(&user, form.get("csrf")) {
        return *r;
    }
    let host = host(&headers);
    let by = Reviewer {
        user: &user,
        host: &host,
    };
    let reason = form.get("reason").map_or("", String::as_str);
    match approve::reject(&state, &school, &by, id, reason).await {
        Ok(_) => Redirect::to("/admin/join").into_response(),
        Err(f) => f.page(&school.name),
    }
}
