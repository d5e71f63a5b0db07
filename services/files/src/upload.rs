//! Uploads from a multipart form (`POST /api/v1/files`, and the `/files` page), streamed
//! into the school's prefix as they arrive: the body is never held whole in memory, bytes
//! are counted against the plan's per-file limit and the school's remaining quota while
//! they stream (the upload stops with 413 the moment either is passed), the type is told
//! from the first bytes, and the file row is written, and the quota charged, in one
//! transaction after the object is complete. A refused or failed upload leaves no object.

use askama::Template;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use campus_identity::CurrentUser;
use campus_tenant::{CurrentSchool, Tenant};
use campus_web::Lang;

use crate::error::Fail;
use crate::model::{self, FileRow, NewFile};
use crate::quota::{self, Usage};
use crate::sniff;
use crate::writer::ObjectWriter;
use crate::{check_csrf, header_token, FilesState};

/// Multipart framing and small fields allowed on top of the file itself.
const FORM_SLACK: i64 = 64 * 1024;

fn declared_length(headers: &HeaderMap) -> Option<i64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Reads the form: a `csrf` field (or the header) must come before the `file` field,
/// which is streamed to storage and recorded. Returns the recorded file.
async fn receive(
    state: &FilesState,
    school: &Tenant,
    user: &CurrentUser,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<FileRow, Fail> {
    let header_ok = check_csrf(user, header_token(headers)).is_ok();
    let usage = quota::usage(&state.db, school.id).await?;
    // A declared length over the limit is refused before a byte is read.
    if let Some(len) = declared_length(headers) {
        usage.check((len - FORM_SLACK).max(0))?;
    }
    let mut mp = multipart.map_err(|_| {
        Fail::invalid(
            "请用表单（multipart/form-data）上传文件。",
            "Send the file as multipart/form-data.",
        )
    })?;
    let mut csrf_ok = header_ok;
    while let Some(field) = mp.next_field().await.map_err(form_error)? {
        match field.name().unwrap_or_default() {
            "csrf" => {
                let value = field.text().await.map_err(form_error)?;
                csrf_ok = csrf_ok || check_csrf(user, Some(&value)).is_ok();
            }
            "file" => {
                if !csrf_ok {
                    return Err(Fail::Csrf);
                }
                return stream_file(state, school, user, &usage, field).await;
            }
            _ => {}
        }
    }
    Err(Fail::invalid(
        "请选择要上传的文件。",
        "Choose a file to upload.",
    ))
}

fn form_error(e: axum::extract::multipart::MultipartError) -> Fail {
    Fail::invalid(
        &format!("上传中断或表单无效：{e}"),
        &format!("The upload broke off or the form is invalid: {e}"),
    )
}

async fn stream_file(
    state: &FilesState,
    school: &Tenant,
    user: &CurrentUser,
    usage: &Usage,
    mut field: Field<'_>,
) -> Result<FileRow, Fail> {
    let name = sniff::clean_name(field.file_name().unwrap_or_default());
    let store = state.store.for_tenant(school);
    let mut writer = ObjectWriter::new(store.clone(), model::new_key());
    let limit = usage.max_upload_bytes.min(usage.remaining());
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                writer.abort().await;
                return Err(form_error(e));
            }
        };
        let total = writer.written() as i64 + chunk.len() as i64;
        if total > limit {
            writer.abort().await;
            return Err(usage
                .check(total)
                .err()
                .unwrap_or_else(|| quota::over_quota(usage.quota_bytes)));
        }
        if let Err(e) = writer.write(chunk).await {
            writer.abort().await;
            return Err(e);
        }
    }
    let size = writer.written() as i64;
    if size == 0 {
        writer.abort().await;
        return Err(Fail::invalid("文件是空的。", "The file is empty."));
    }
    let key = writer.key().clone();
    let detected = writer.finish().await?;
    let recorded = async {
        let mut tx = state.db.school(school).await?;
        let f = model::record(
            &mut tx,
            NewFile {
                key: &key,
                file_name: &name,
                detected: &detected,
                size,
                uploaded_by: user.account_id,
                owner: None,
            },
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Fail>(f)
    }
    .await;
    if recorded.is_err() {
        if let Err(e) = store.delete(&key).await {
            tracing::warn!(error = %e, key = key.as_str(), "object of a refused upload not removed");
        }
    }
    recorded
}

/// The file and where to find it, as the API answers.
pub(crate) fn file_json(f: &FileRow) -> serde_json::Value {
    let mut v = serde_json::to_value(f).unwrap_or_default();
    v["links"] = serde_json::json!({
        "download": format!("/files/{}/download", f.id),
        "preview": format!("/files/{}/preview", f.id),
        "metadata": format!("/api/v1/files/{}", f.id),
    });
    v
}

/// `POST /api/v1/files`: multipart with a `file` field (`X-CSRF-Token` header). 201 with
/// the file; 413 over the plan's size or the school's quota; 415 for programs.
#[utoipa::path(post, path = "/api/v1/files", tag = "files",
    request_body(content_type = "multipart/form-data", description = "a `file` field"),
    responses((status = 201, body = FileRow), (status = 403), (status = 413), (status = 415), (status = 422)))]
pub(crate) async fn upload_api(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match receive(&state, &school, &user, &headers, multipart).await {
        Ok(f) => (StatusCode::CREATED, Json(file_json(&f))).into_response(),
        Err(e) => e.json(),
    }
}

/// `POST /files/upload` from the page's form: on to the file's preview.
pub(crate) async fn upload_page(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match receive(&state, &school, &user, &headers, multipart).await {
        Ok(f) => Redirect::to(&format!("/files/{}/preview", f.id)).into_response(),
        Err(e) => e.page(),
    }
}

#[derive(Template)]
#[template(path = "files_list.html")]
struct ListPage<'a> {
    lang: Lang,
    csrf: &'a str,
    files: Vec<FileRow>,
    usage: Usage,
}

impl ListPage<'_> {
    fn size(&self, bytes: &i64) -> String {
        human_size(*bytes)
    }
}

/// Bytes for people: `512 KB`, `3.4 MB`, `1.2 GB`.
pub fn human_size(bytes: i64) -> String {
    let b = bytes as f64;
    if b < 1024.0 * 1024.0 {
        format!("{} KB", (b / 1024.0).ceil() as i64)
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} MB", b / 1024.0 / 1024.0)
    } else {
        format!("{:.1} GB", b / 1024.0 / 1024.0 / 1024.0)
    }
}

/// `GET /files`: the person's own uploads (newest first) and the upload form.
pub(crate) async fn list_page(
    State(state): State<FilesState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let loaded = async {
        let usage = quota::usage(&state.db, school.id).await?;
        let mut tx = state.db.school(&school).await?;
        let files = model::by_uploader(&mut tx, user.account_id, 100).await?;
        tx.commit().await?;
        Ok::<_, Fail>((usage, files))
    }
    .await;
    let (usage, files) = match loaded {
        Ok(x) => x,
        Err(e) => return e.page(),
    };
    let body = ListPage {
        lang,
        csrf: &user.csrf_token,
        files,
        usage,
    }
    .render()
    .unwrap_or_default();
    crate::preview::page::shell(
        lang,
        &school,
        &user,
        lang.pick("我的文件", "My files"),
        &body,
    )
}
