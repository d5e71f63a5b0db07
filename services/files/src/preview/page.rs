//! The preview page (`/files/{id}/preview?page=N`, phone-sized, previous/next) and the
//! page images and thumbnail it shows, with the viewer's name drawn across them when the
//! school has switched the watermark on. Only people who may see the file get anything;
//! everyone else gets 404.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use campus_identity::CurrentUser;
use campus_tenant::{CurrentSchool, ObjectKey, SchoolTx, Tenant};
use campus_web::Lang;
use serde::Deserialize;

use super::watermark;
use crate::error::Fail;
use crate::model::{self, FileRow};
use crate::upload::human_size;
use crate::FilesState;

/// `body` in the school's frame with the signed-in person's badge.
pub(crate) fn shell(
    lang: Lang,
    school: &Tenant,
    user: &CurrentUser,
    title: &str,
    body: &str,
) -> Response {
    campus_web::Shell {
        title,
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(StatusCode::OK)
}

/// Whether the school draws viewers' names on previews.
pub(crate) async fn watermark_on(tx: &mut SchoolTx) -> sqlx::Result<bool> {
    Ok(
        sqlx::query_scalar::<_, bool>("select watermark from file_settings")
            .fetch_optional(&mut **tx)
            .await?
            .unwrap_or(false),
    )
}

/// `GET /files/{id}`: to the preview page.
pub(crate) async fn open(Path(id): Path<i64>) -> Redirect {
    Redirect::to(&format!("/files/{id}/preview"))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    page: Option<String>,
}

#[derive(Template)]
#[template(path = "file_preview.html")]
struct PreviewPage<'a> {
    lang: Lang,
    f: &'a FileRow,
    size: String,
    page: i32,
    pages: i32,
    watermark: bool,
}

/// `GET /files/{id}/preview?page=N`.
pub(crate) async fn preview_page(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Response {
    let loaded = async {
        let mut tx = state.db.school(&school).await?;
        let f = model::visible(&mut tx, &state.owners, &user, id).await?;
        let watermark = watermark_on(&mut tx).await?;
        tx.commit().await?;
        Ok::<_, Fail>((f, watermark))
    }
    .await;
    let (f, watermark) = match loaded {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let pages = f.preview_pages.unwrap_or(0);
    // A page number out of range (or not a number) shows the nearest page, not an error.
    let page = q
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<i32>().ok())
        .unwrap_or(1)
        .clamp(1, pages.max(1));
    let body = PreviewPage {
        lang,
        size: human_size(f.size),
        f: &f,
        page,
        pages,
        watermark,
    }
    .render()
    .unwrap_or_default();
    let mut resp = shell(lang, &school, &user, &f.file_name, &body);
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("private, no-store"),
    );
    resp
}

/// Serves a stored preview image, watermarked with the viewer's name if the school wants.
async fn serve_image(
    state: &FilesState,
    school: &Tenant,
    user: &CurrentUser,
    id: i64,
    key_of: impl FnOnce(&FileRow) -> Option<ObjectKey>,
) -> Response {
    let loaded = async {
        let mut tx = state.db.school(school).await?;
        let f = model::visible(&mut tx, &state.owners, user, id).await?;
        let watermark = watermark_on(&mut tx).await?;
        tx.commit().await?;
        if f.preview_status != "ready" {
            return Err(Fail::NotFound);
        }
        let key = key_of(&f).ok_or(Fail::NotFound)?;
        let (bytes, _) = state
            .store
            .for_tenant(school)
            .get(&key)
            .await?
            .ok_or(Fail::NotFound)?;
        Ok::<_, Fail>((bytes, watermark))
    }
    .await;
    let (bytes, marked) = match loaded {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let body = if marked {
        let text = format!(
            "{} {}",
            user.display_name,
            chrono::Utc::now()
                .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).expect("valid offset"))
                .format("%Y-%m-%d")
        );
        let bytes = bytes.to_vec();
        let drawn = tokio::task::spawn_blocking(move || watermark::apply(&bytes, &text)).await;
        match drawn {
            Ok(Some(Ok(b))) => b,
            Ok(None) => {
                return Fail::Unavailable("no CJK font for watermarks is installed".into()).page()
            }
            Ok(Some(Err(e))) => return Fail::Unavailable(format!("watermark: {e}")).page(),
            Err(e) => return Fail::Unavailable(format!("watermark task: {e}")).page(),
        }
    } else {
        bytes.to_vec()
    };
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "private, no-store"),
        ],
        body,
    )
        .into_response()
}

/// `GET /files/{id}/pages/{n}`: page `n` (from 1) as JPEG.
pub(crate) async fn page_image(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path((id, n)): Path<(i64, i32)>,
) -> Response {
    serve_image(&state, &school, &user, id, |f| {
        (n >= 1 && n <= f.preview_pages.unwrap_or(0)).then(|| model::page_key(f.id, n))
    })
    .await
}

/// `GET /files/{id}/thumb`: the thumbnail as JPEG.
pub(crate) async fn thumbnail(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    serve_image(&state, &school, &user, id, |f| Some(model::thumb_key(f.id))).await
}
