//! The shared files service of a school's site: uploads streamed into the school's prefix
//! (multipart forms, and resumable sessions for large files), storage quotas per plan,
//! downloads only for the people allowed to see the owning object, and previews (images,
//! PDF, Word/WPS/Excel/PowerPoint) made asynchronously by the `preview` worker role in
//! sandboxed subprocesses, shown on a phone-friendly page with an optional watermark.
//!
//! Modules attach files to their own objects through [`model::attach`] or [`ingest`] and
//! register an [`OwnerAccess`] per kind of object, so this crate never needs to know what a
//! notice is. Every query runs inside a [`campus_tenant::SchoolTx`].

pub mod admin;
mod api_doc;
pub mod disposition;
mod download;
pub mod error;
pub mod model;
pub mod preview;
pub mod quota;
mod resumable;
pub mod sniff;
mod upload;
pub mod writer;

use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;
use bytes::Bytes;
use campus_identity::{CurrentUser, IdentityState};
use campus_tenant::{Db, ObjectStore, SchoolTx, Tenant};

pub use api_doc::FilesApi;
pub use error::Fail;
pub use model::{FileRow, OwnerAccess, Owners};
pub use resumable::sweep_expired;

/// What the files handlers need.
#[derive(Clone, Debug)]
pub struct FilesState {
    pub db: Db,
    pub store: ObjectStore,
    pub identity: IdentityState,
    /// The owning modules' permission checks, by owner kind.
    pub owners: Owners,
}

impl FromRef<FilesState> for IdentityState {
    fn from_ref(s: &FilesState) -> Self {
        s.identity.clone()
    }
}

/// Routes served on a school's own host.
pub fn router() -> Router<FilesState> {
    Router::new()
        .route("/files", get(upload::list_page))
        .route(
            "/files/upload",
            post(upload::upload_page).layer(DefaultBodyLimit::disable()),
        )
        .route("/files/{id}", get(preview::page::open))
        .route("/files/{id}/download", get(download::download))
        .route("/files/{id}/preview", get(preview::page::preview_page))
        .route("/files/{id}/pages/{n}", get(preview::page::page_image))
        .route("/files/{id}/thumb", get(preview::page::thumbnail))
        .route(
            "/api/v1/files",
            post(upload::upload_api).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/api/v1/files/{id}",
            get(download::metadata).delete(download::delete),
        )
        .route("/api/v1/files/uploads", post(resumable::create))
        .route(
            "/api/v1/files/uploads/{id}",
            get(resumable::status)
                .head(resumable::status)
                .patch(resumable::append)
                .delete(resumable::cancel)
                .layer(DefaultBodyLimit::max(resumable::CHUNK_SIZE + 1024)),
        )
        .route("/admin/files", get(admin::page).post(admin::save_settings))
        .route("/api/v1/files/usage", get(admin::usage_json))
}

fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session's CSRF token, sent as a form field or the `X-CSRF-Token` header.
pub(crate) fn check_csrf(user: &CurrentUser, token: Option<&str>) -> Result<(), Fail> {
    if token.is_some_and(|t| same_token(t.trim(), &user.csrf_token)) {
        Ok(())
    } else {
        Err(Fail::Csrf)
    }
}

pub(crate) fn header_token(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-csrf-token").and_then(|v| v.to_str().ok())
}

/// A file that was stored by [`ingest`] and must be deleted again if the caller's
/// transaction does not commit.
#[derive(Debug)]
pub struct Stored {
    pub file: FileRow,
    pub key: campus_tenant::ObjectKey,
}

/// A file already in memory (a small form attachment) for an owning object.
#[derive(Debug)]
pub struct Incoming<'a> {
    pub file_name: &'a str,
    pub bytes: Bytes,
    pub uploaded_by: i64,
    /// The owning object: kind and id.
    pub owner: (&'a str, i64),
}

/// Stores an [`Incoming`] file as a file of its owner, in the owner's transaction `tx`:
/// sniffs it, checks the plan's size limit, writes the object, charges the quota and
/// queues its preview. If `tx` does not commit, the caller deletes [`Stored::key`].
pub async fn ingest(
    db: &Db,
    store: &ObjectStore,
    school: &Tenant,
    tx: &mut SchoolTx,
    file: Incoming<'_>,
) -> Result<Stored, Fail> {
    let Incoming {
        file_name,
        bytes,
        uploaded_by,
        owner,
    } = file;
    let usage = quota::usage(db, school.id).await?;
    if bytes.len() as i64 > usage.max_upload_bytes {
        return Err(quota::too_big(usage.max_upload_bytes));
    }
    let detected = sniff::detect(&bytes[..bytes.len().min(sniff::SNIFF_LEN)])
        .map_err(|_| Fail::Unsupported("不能上传可执行程序。", "Programs may not be uploaded."))?;
    let key = model::new_key();
    let name = sniff::clean_name(file_name);
    let size = bytes.len() as i64;
    store
        .for_tenant(school)
        .put(&key, bytes, &detected.content_type)
        .await?;
    let recorded = model::record(
        tx,
        model::NewFile {
            key: &key,
            file_name: &name,
            detected: &detected,
            size,
            uploaded_by,
            owner: Some(owner),
        },
    )
    .await;
    match recorded {
        Ok(file) => Ok(Stored { file, key }),
        Err(e) => {
            if let Err(d) = store.for_tenant(school).delete(&key).await {
                tracing::warn!(error = %d, key = key.as_str(), "refused file not removed");
            }
            Err(e)
        }
    }
}
