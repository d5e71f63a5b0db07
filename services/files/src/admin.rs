//! The school admin's view of files (`/admin/files`, `ManageUsers`): storage used against
//! the plan's quota, preview figures, and the watermark setting; the same figures as JSON
//! at `/api/v1/files/usage`. The county IT centre reads every school's usage through
//! [`crate::quota::usage_all`] (served on `/admin/v1/storage`).

use askama::Template;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::CurrentSchool;
use campus_web::Lang;
use serde::Deserialize;

use crate::error::Fail;
use crate::preview::page::{shell, watermark_on};
use crate::quota::{self, Usage};
use crate::upload::human_size;
use crate::{check_csrf, FilesState};

fn require_admin(user: &CurrentUser) -> Result<(), Fail> {
    user.require(Permission::ManageUsers).map_err(|_| {
        Fail::Forbidden(
            "只有学校管理员可以查看存储情况。",
            "Only the school's administrators see storage.",
        )
    })
}

#[derive(Template)]
#[template(path = "files_admin.html")]
struct AdminPage<'a> {
    lang: Lang,
    csrf: &'a str,
    usage: Usage,
    used: String,
    quota: String,
    max_upload: String,
    watermark: bool,
    saved: bool,
    previews: Vec<(String, i64)>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Saved {
    saved: Option<String>,
}

/// `GET /admin/files`.
pub(crate) async fn page(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(q): Query<Saved>,
) -> Response {
    let loaded = async {
        require_admin(&user)?;
        let usage = quota::usage(&state.db, school.id).await?;
        let mut tx = state.db.school(&school).await?;
        let watermark = watermark_on(&mut tx).await?;
        let previews: Vec<(String, i64)> = sqlx::query_as(
            "select preview_status, count(*) from files group by preview_status order by preview_status",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, Fail>((usage, watermark, previews))
    }
    .await;
    let (usage, watermark, previews) = match loaded {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let body = AdminPage {
        lang,
        csrf: &user.csrf_token,
        used: human_size(usage.used_bytes),
        quota: human_size(usage.quota_bytes),
        max_upload: human_size(usage.max_upload_bytes),
        usage,
        watermark,
        saved: q.saved.is_some(),
        previews,
    }
    .render()
    .unwrap_or_default();
    shell(
        lang,
        &school,
        &user,
        lang.pick("文件与存储", "Files and storage"),
        &body,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct SettingsForm {
    #[serde(default)]
    csrf: String,
    watermark: Option<String>,
}

/// `POST /admin/files`: the watermark switch.
pub(crate) async fn save_settings(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Form(form): Form<SettingsForm>,
) -> Response {
    let result = async {
        require_admin(&user)?;
        check_csrf(&user, Some(&form.csrf))?;
        let mut tx = state.db.school(&school).await?;
        sqlx::query("update file_settings set watermark = $1, updated_at = now()")
            .bind(form.watermark.is_some())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok::<_, Fail>(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin/files?saved=1").into_response(),
        Err(e) => e.page(),
    }
}

/// `GET /api/v1/files/usage`: the school's storage and plan limits (administrators).
#[utoipa::path(get, path = "/api/v1/files/usage", tag = "files",
    responses((status = 200, body = Usage), (status = 403)))]
pub(crate) async fn usage_json(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
) -> Response {
    let result = async {
        require_admin(&user)?;
        quota::usage(&state.db, school.id).await
    }
    .await;
    match result {
        Ok(u) => Json(u).into_response(),
        Err(e) => e.json(),
    }
}
