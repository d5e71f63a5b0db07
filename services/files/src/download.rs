//! Downloads, proxied and streamed from the school's prefix (a 100 MB file is never held in
//! memory) only to people who may see the owning object, as an attachment with the real
//! name (RFC 5987) and `nosniff`; file metadata; deleting one's own unattached upload.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::CurrentUser;
use campus_tenant::CurrentSchool;
use tokio_util::io::ReaderStream;

use crate::error::Fail;
use crate::model::{self, FileRow};
use crate::upload::file_json;
use crate::{check_csrf, disposition, header_token, quota, FilesState};

/// `GET /files/{id}/download`.
pub(crate) async fn download(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let f = model::visible(&mut tx, &state.owners, &user, id).await?;
        tx.commit().await?;
        let (body, len) = state
            .store
            .for_tenant(&school)
            .get_stream(&f.key()?)
            .await?
            .ok_or(Fail::NotFound)?;
        Ok::<_, Fail>((f, body, len))
    }
    .await;
    let (f, body, len) = match result {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let stream = ReaderStream::with_capacity(body.into_async_read(), 64 * 1024);
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name, value: String| {
        if let Ok(v) = value.parse() {
            h.insert(name, v);
        }
    };
    set(h, header::CONTENT_TYPE, f.content_type.clone());
    set(
        h,
        header::CONTENT_DISPOSITION,
        disposition::header("attachment", &f.file_name),
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff".into());
    set(h, header::CACHE_CONTROL, "private, no-store".into());
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox".into(),
    );
    if let Some(len) = len {
        set(h, header::CONTENT_LENGTH, len.to_string());
    }
    resp
}

/// `GET /api/v1/files/{id}`: the file's name, type, size and preview state.
#[utoipa::path(get, path = "/api/v1/files/{id}", tag = "files", params(("id" = i64, Path)),
    responses((status = 200, body = FileRow), (status = 404)))]
pub(crate) async fn metadata(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let f = model::visible(&mut tx, &state.owners, &user, id).await?;
        tx.commit().await?;
        Ok::<_, Fail>(f)
    }
    .await;
    match result {
        Ok(f) => Json(file_json(&f)).into_response(),
        Err(e) => e.json(),
    }
}

/// `DELETE /api/v1/files/{id}`: the uploader removes a file that is not attached to
/// anything (attached files go with their owning object). Frees the quota.
#[utoipa::path(delete, path = "/api/v1/files/{id}", tag = "files", params(("id" = i64, Path)),
    responses((status = 204), (status = 404), (status = 409)))]
pub(crate) async fn delete(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        check_csrf(&user, header_token(&headers))?;
        let mut tx = state.db.school(&school).await?;
        let f = model::find(&mut tx, id)
            .await?
            .filter(|f| f.uploaded_by == user.account_id)
            .ok_or(Fail::NotFound)?;
        if f.owner_kind.is_some() {
            return Err(Fail::Conflict(
                "该文件已用于通知等内容，不能单独删除。".into(),
                "The file belongs to a notice or similar and goes with it.".into(),
            ));
        }
        sqlx::query("delete from files where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        quota::release(&mut tx, f.size).await?;
        tx.commit().await?;
        remove_objects(&state, &school, &f).await;
        Ok::<_, Fail>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.json(),
    }
}

/// Deletes a file's original and preview objects (after its row is gone).
async fn remove_objects(state: &FilesState, school: &campus_tenant::Tenant, f: &FileRow) {
    let store = state.store.for_tenant(school);
    let mut keys = vec![model::thumb_key(f.id)];
    if let Ok(k) = f.key() {
        keys.push(k);
    }
    keys.extend((1..=f.preview_pages.unwrap_or(0)).map(|n| model::page_key(f.id, n)));
    for key in keys {
        if let Err(e) = store.delete(&key).await {
            tracing::warn!(error = %e, key = key.as_str(), "object of a deleted file not removed");
        }
    }
}
