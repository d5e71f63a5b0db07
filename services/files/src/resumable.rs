//! Resumable uploads for large files over unreliable phone connections, a small tus-like
//! protocol:
//!
//! 1. `POST /api/v1/files/uploads` `{"file_name", "size"}` → 201 `{id, chunk_size, offset}`
//!    (413 at once when the size is over the plan's limit or the school's remaining quota).
//! 2. `PATCH /api/v1/files/uploads/{id}` with `Upload-Offset: <offset>` and the next chunk
//!    as the raw body: exactly `chunk_size` bytes, except the last. Each chunk is stored at
//!    once as one part of an S3 multipart upload, so nothing is kept in memory between
//!    requests. A wrong offset is 409 with the expected `Upload-Offset`; after a broken
//!    connection the client asks `HEAD`/`GET` for the offset and carries on from there.
//!    The chunk that completes the file answers 201 with the recorded file.
//! 3. `DELETE` abandons the upload.
//!
//! Sessions belong to the person who opened them (404 for anyone else) and expire after
//! a day. Chunks of one session are taken one at a time (the row is locked).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::CurrentUser;
use campus_tenant::{CurrentSchool, Db, ObjectKey, ObjectStore, Tenant};
use serde::Deserialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::error::{mb, Fail};
use crate::model::{self, FileRow, NewFile};
use crate::sniff::{self, Detected, Kind};
use crate::upload::file_json;
use crate::{check_csrf, header_token, quota, FilesState};

/// Bytes per chunk (and per S3 part).
pub const CHUNK_SIZE: usize = crate::writer::PART_SIZE;
/// Hours an unfinished session is kept.
const SESSION_HOURS: i64 = 24;

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUpload {
    pub file_name: String,
    /// The whole file's size in bytes.
    pub size: i64,
}

fn offset_headers(offset: i64, size: i64) -> [(&'static str, HeaderValue); 3] {
    [
        ("upload-offset", HeaderValue::from(offset)),
        ("upload-length", HeaderValue::from(size)),
        ("cache-control", HeaderValue::from_static("no-store")),
    ]
}

/// `POST /api/v1/files/uploads`: opens a session.
#[utoipa::path(post, path = "/api/v1/files/uploads", tag = "files", request_body = NewUpload,
    responses((status = 201, description = "`{id, chunk_size, offset, size, expires_at}`"), (status = 413), (status = 422)))]
pub(crate) async fn create(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    body: Result<Json<NewUpload>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let result = async {
        check_csrf(&user, header_token(&headers))?;
        let Json(req) = body.map_err(|e| {
            Fail::invalid(
                &format!("请求格式无效：{e}"),
                &format!("Send JSON {{\"file_name\", \"size\"}}: {e}"),
            )
        })?;
        if req.size <= 0 {
            return Err(Fail::invalid(
                "文件大小必须大于 0。",
                "size must be positive.",
            ));
        }
        let usage = quota::usage(&state.db, school.id).await?;
        usage.check(req.size)?;
        let id = hex::encode(rand::random::<[u8; 16]>());
        let key = model::new_key();
        let mut tx = state.db.school(&school).await?;
        let expires: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
            "insert into file_uploads (id, object_key, file_name, size, created_by, expires_at)
             values ($1, $2, $3, $4, $5, now() + make_interval(hours => $6)) returning expires_at",
        )
        .bind(&id)
        .bind(key.as_str())
        .bind(sniff::clean_name(&req.file_name))
        .bind(req.size)
        .bind(user.account_id)
        .bind(SESSION_HOURS as i32)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, Fail>(serde_json::json!({
            "id": id,
            "chunk_size": CHUNK_SIZE,
            "offset": 0,
            "size": req.size,
            "expires_at": expires,
            "url": format!("/api/v1/files/uploads/{id}"),
        }))
    }
    .await;
    match result {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(e) => e.json(),
    }
}

struct Session {
    s3_upload_id: Option<String>,
    object_key: String,
    file_name: String,
    size: i64,
    received: i64,
    parts: Vec<String>,
    content_type: Option<String>,
    kind: Option<String>,
}

async fn lock(
    tx: &mut campus_tenant::SchoolTx,
    user: &CurrentUser,
    id: &str,
) -> Result<Session, Fail> {
    let r = sqlx::query(
        "select s3_upload_id, object_key, file_name, size, received, parts, content_type, kind
           from file_uploads where id = $1 and created_by = $2 and expires_at > now() for update",
    )
    .bind(id)
    .bind(user.account_id)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(Fail::NotFound)?;
    Ok(Session {
        s3_upload_id: r.get("s3_upload_id"),
        object_key: r.get("object_key"),
        file_name: r.get("file_name"),
        size: r.get("size"),
        received: r.get("received"),
        parts: r.get("parts"),
        content_type: r.get("content_type"),
        kind: r.get("kind"),
    })
}

/// `GET|HEAD /api/v1/files/uploads/{id}`: how much has arrived (`Upload-Offset`).
pub(crate) async fn status(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<String>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let s = lock(&mut tx, &user, &id).await?;
        tx.commit().await?;
        Ok::<_, Fail>(s)
    }
    .await;
    match result {
        Ok(s) => (
            offset_headers(s.received, s.size),
            Json(serde_json::json!({"id": id, "offset": s.received, "size": s.size, "chunk_size": CHUNK_SIZE})),
        )
            .into_response(),
        Err(e) => e.json(),
    }
}

fn upload_offset(headers: &HeaderMap) -> Result<i64, Fail> {
    headers
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|o| *o >= 0)
        .ok_or_else(|| {
            Fail::invalid(
                "缺少 Upload-Offset 请求头。",
                "Send the chunk's position in the Upload-Offset header.",
            )
        })
}

enum Appended {
    /// The chunk was not the next one; the offset expected.
    WrongOffset(i64),
    More {
        offset: i64,
        size: i64,
    },
    Done(Box<FileRow>),
}

/// `PATCH /api/v1/files/uploads/{id}`: the next chunk.
#[utoipa::path(patch, path = "/api/v1/files/uploads/{id}", tag = "files",
    params(("id" = String, Path), ("Upload-Offset" = i64, Header)),
    request_body(content_type = "application/offset+octet-stream", description = "the chunk"),
    responses((status = 204, description = "stored; `Upload-Offset` says how much has arrived"),
        (status = 201, body = FileRow, description = "the last chunk: the file is recorded"),
        (status = 409, description = "wrong offset; `Upload-Offset` says the expected one"), (status = 413), (status = 422)))]
pub(crate) async fn append(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        check_csrf(&user, header_token(&headers))?;
        let offset = upload_offset(&headers)?;
        let chunk = body.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Fail::TooLarge(
                    format!("每块不能超过 {} MB。", mb(CHUNK_SIZE as i64)),
                    format!("Chunks are at most {} MB.", mb(CHUNK_SIZE as i64)),
                )
            } else {
                Fail::invalid("没有收到数据。", "The chunk did not arrive.")
            }
        })?;
        let mut tx = state.db.school(&school).await?;
        let mut s = lock(&mut tx, &user, &id).await?;
        if offset != s.received {
            return Ok(Appended::WrongOffset(s.received));
        }
        let end = offset + chunk.len() as i64;
        let last = end == s.size;
        if chunk.is_empty() || end > s.size || (!last && chunk.len() != CHUNK_SIZE) {
            return Err(Fail::Invalid(
                format!(
                    "每块必须正好 {CHUNK_SIZE} 字节（最后一块除外），且总数不超过 {} 字节。",
                    s.size
                ),
                format!(
                    "Every chunk but the last must be exactly {CHUNK_SIZE} bytes, ending at most at byte {}.",
                    s.size
                ),
            ));
        }
        let store = state.store.for_tenant(&school);
        let key = ObjectKey::parse(&s.object_key).map_err(|e| Fail::Unavailable(e.to_string()))?;
        if offset == 0 {
            let d = sniff::detect(&chunk[..chunk.len().min(sniff::SNIFF_LEN)]).map_err(|_| {
                Fail::Unsupported("不能上传可执行程序。", "Programs may not be uploaded.")
            })?;
            let upload_id = store.create_multipart(&key, &d.content_type).await?;
            s.s3_upload_id = Some(upload_id);
            s.content_type = Some(d.content_type);
            s.kind = Some(d.kind.code().to_owned());
        }
        let upload_id = s.s3_upload_id.clone().unwrap_or_default();
        let n = s.parts.len() as i32 + 1;
        let etag = store.upload_part(&key, &upload_id, n, chunk).await?;
        s.parts.push(etag);
        if !last {
            sqlx::query(
                "update file_uploads set received = $2, parts = $3, s3_upload_id = $4,
                        content_type = $5, kind = $6 where id = $1",
            )
            .bind(&id)
            .bind(end)
            .bind(&s.parts)
            .bind(&s.s3_upload_id)
            .bind(&s.content_type)
            .bind(&s.kind)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Appended::More {
                offset: end,
                size: s.size,
            });
        }
        let parts: Vec<(i32, String)> = s
            .parts
            .iter()
            .enumerate()
            .map(|(i, e)| (i as i32 + 1, e.clone()))
            .collect();
        store.complete_multipart(&key, &upload_id, &parts).await?;
        let detected = Detected {
            content_type: s.content_type.clone().unwrap_or_default(),
            kind: Kind::parse(s.kind.as_deref().unwrap_or_default()),
        };
        let recorded = async {
            sqlx::query("delete from file_uploads where id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            let f = model::record(
                &mut tx,
                NewFile {
                    key: &key,
                    file_name: &s.file_name,
                    detected: &detected,
                    size: s.size,
                    uploaded_by: user.account_id,
                    owner: None,
                },
            )
            .await?;
            tx.commit().await?;
            Ok::<_, Fail>(f)
        }
        .await;
        match recorded {
            Ok(f) => Ok(Appended::Done(Box::new(f))),
            Err(e) => {
                // Over quota at the end (others filled it meanwhile): nothing is kept.
                if let Err(d) = store.delete(&key).await {
                    tracing::warn!(error = %d, key = key.as_str(), "object of a refused upload not removed");
                }
                if matches!(e, Fail::TooLarge(..)) {
                    let mut tx = state.db.school(&school).await?;
                    sqlx::query("delete from file_uploads where id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                }
                Err(e)
            }
        }
    }
    .await;
    match result {
        Ok(Appended::More { offset, size }) => {
            (StatusCode::NO_CONTENT, offset_headers(offset, size)).into_response()
        }
        Ok(Appended::Done(f)) => (StatusCode::CREATED, Json(file_json(&f))).into_response(),
        Ok(Appended::WrongOffset(expected)) => {
            let mut r = Fail::Conflict(
                format!("位置不对：应从第 {expected} 字节处继续。"),
                format!("Wrong offset: continue at byte {expected}."),
            )
            .json();
            r.headers_mut()
                .insert("upload-offset", HeaderValue::from(expected));
            r
        }
        Err(e) => e.json(),
    }
}

/// `DELETE /api/v1/files/uploads/{id}`: abandons the upload and frees its parts.
pub(crate) async fn cancel(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let result = async {
        check_csrf(&user, header_token(&headers))?;
        let mut tx = state.db.school(&school).await?;
        let s = lock(&mut tx, &user, &id).await?;
        sqlx::query("delete from file_uploads where id = $1")
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if let (Some(upload_id), Ok(key)) = (s.s3_upload_id, ObjectKey::parse(&s.object_key)) {
            state
                .store
                .for_tenant(&school)
                .abort_multipart(&key, &upload_id)
                .await?;
        }
        Ok::<_, Fail>(())
    }
    .await;
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.json(),
    }
}

/// Resumable uploads abandoned past their expiry: the parts already stored in S3 are freed
/// and the sessions deleted (they were never charged to the quota). Run for every school
/// by the maintenance role; returns how many were swept. Sessions another instance is
/// sweeping or a client is writing to are skipped (`SKIP LOCKED`).
pub async fn sweep_expired(db: &Db, store: &ObjectStore, school: &Tenant) -> Result<usize, Fail> {
    let mut tx = db.school(school).await?;
    let expired: Vec<(String, Option<String>, String)> = sqlx::query_as(
        "select id, s3_upload_id, object_key from file_uploads
          where expires_at < now() order by expires_at limit 100 for update skip locked",
    )
    .fetch_all(&mut *tx)
    .await?;
    let store = store.for_tenant(school);
    for (_, upload_id, key) in &expired {
        if let (Some(upload_id), Ok(key)) = (upload_id, ObjectKey::parse(key)) {
            // An upload S3 no longer knows (aborted before a crash) is already freed.
            if let Err(e) = store.abort_multipart(&key, upload_id).await {
                tracing::warn!(school = %school.slug, error = %e, "aborting an abandoned upload failed");
            }
        }
    }
    let ids: Vec<&str> = expired.iter().map(|(id, _, _)| id.as_str()).collect();
    sqlx::query("delete from file_uploads where id = any($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(expired.len())
}
