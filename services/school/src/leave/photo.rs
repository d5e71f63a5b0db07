//! The optional photo of a leave request (a doctor's note, say): at most 5 MB, a JPEG, PNG,
//! WebP or HEIC image as told by its bytes (the name and declared type are ignored), stored
//! under the school's prefix at `leave/<id>/<random>` and served only to the people who may
//! see the request, with `Cache-Control: private`.
//!
//! The photo is a file of the files service owned by the request (`photo_file_id`): the
//! plan's size limit and the school's quota count it and the preview worker makes its
//! thumbnail (metadata such as GPS stripped). The object is written after the request's rows
//! and before the commit; when the write or the commit fails the object is deleted again, so
//! a request and its photo exist together or not at all. A replaced photo's file row goes in
//! the same transaction and its old object after the commit.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::CurrentUser;
use campus_tenant::{CurrentSchool, ObjectKey, SchoolTx, Tenant};

use super::{detail_json_of, header_token, load};
use crate::attendance::{check_csrf, refuse, Refusal};
use crate::SchoolState;

/// The largest photo accepted.
pub(crate) const PHOTO_MAX: usize = 5 * 1024 * 1024;
/// The largest request body on leave routes: a photo plus the form's text fields.
pub(crate) const BODY_LIMIT: usize = PHOTO_MAX + 256 * 1024;

/// A checked photo.
pub(crate) struct Photo {
    pub bytes: Bytes,
    pub content_type: &'static str,
}

pub(crate) fn too_large() -> Refusal {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "照片不能超过 5 MB，请压缩后重新上传。",
        "The photo may be at most 5 MB.",
    )
}

/// The image type the bytes really are, if it is one we take.
pub(crate) fn sniff(b: &[u8]) -> Option<&'static str> {
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
        Some("image/webp")
    } else if b.len() >= 12
        && &b[4..8] == b"ftyp"
        && matches!(
            &b[8..12],
            b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1"
        )
    {
        Some("image/heic")
    } else {
        None
    }
}

/// Checks an upload; `None` when no file was chosen.
pub(crate) fn accept(bytes: Bytes) -> Result<Option<Photo>, Refusal> {
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.len() > PHOTO_MAX {
        return Err(too_large());
    }
    let content_type = sniff(&bytes).ok_or_else(|| {
        refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "照片只能是 JPEG、PNG、WebP 或 HEIC 格式的图片（按文件内容识别，改扩展名无效）。",
            "The photo must be a JPEG, PNG, WebP or HEIC image.",
        )
    })?;
    Ok(Some(Photo {
        bytes,
        content_type,
    }))
}

/// What an attached photo replaced: its object (deleted after the commit).
pub(crate) struct Replaced(Option<String>);

/// Stores the photo as a file of request `id` through the files service in `tx` (the
/// plan's size limit and the school's quota apply, a preview is queued) and records it on
/// the request; returns the new object's key and what it replaced. A replaced photo's file
/// row goes in the same transaction and its bytes leave the school's usage.
pub(crate) async fn attach(
    state: &SchoolState,
    school: &Tenant,
    uploaded_by: i64,
    tx: &mut SchoolTx,
    id: i64,
    photo: &Photo,
) -> Result<(ObjectKey, Replaced), Refusal> {
    let ext = match photo.content_type {
        "image/png" => "png",
        "image/webp" => "webp",
        "image/heic" => "heic",
        _ => "jpg",
    };
    let stored = campus_files::ingest(
        &state.db,
        &state.store,
        school,
        tx,
        campus_files::Incoming {
            file_name: &format!("请假照片-{id}.{ext}"),
            bytes: photo.bytes.clone(),
            uploaded_by,
            owner: ("leave", id),
        },
    )
    .await
    .map_err(file_refusal)?;
    let written = async {
        let (old_key, old_file): (Option<String>, Option<i64>) = sqlx::query_as(
            "with old as (select photo_key, photo_file_id from leave_requests where id = $1)
             update leave_requests set photo_key = $2, photo_type = $3, photo_file_id = $4, updated_at = now()
              where id = $1
             returning (select photo_key from old), (select photo_file_id from old)",
        )
        .bind(id)
        .bind(stored.key.as_str())
        .bind(photo.content_type)
        .bind(stored.file.id)
        .fetch_one(&mut **tx)
        .await?;
        if let Some(old) = old_file {
            let size: Option<i64> =
                sqlx::query_scalar("delete from files where id = $1 returning size")
                    .bind(old)
                    .fetch_optional(&mut **tx)
                    .await?;
            if let Some(size) = size {
                campus_files::quota::release(tx, size)
                    .await
                    .map_err(file_refusal)?;
            }
        }
        Ok::<_, Refusal>(Replaced(old_key))
    }
    .await;
    match written {
        Ok(replaced) => Ok((stored.key, replaced)),
        Err(e) => {
            remove(state, school, &stored.key).await;
            Err(e)
        }
    }
}

/// A files-service refusal in the leave request's terms.
fn file_refusal(e: campus_files::Fail) -> Refusal {
    match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "学校的存储空间已满或照片超过了单个文件上限，请联系学校管理员。",
            "The school's storage is full or the photo is over the plan's file size limit.",
        ),
        StatusCode::SERVICE_UNAVAILABLE => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "服务暂时不可用，请稍后重试。",
            "Temporarily unavailable.",
        ),
        status => {
            let (zh, en) = e.texts();
            tracing::warn!(%status, zh, en, "leave photo refused by the files service");
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "照片无法保存，请换一张照片重试。",
                "The photo could not be stored; try another one.",
            )
        }
    }
}

async fn remove(state: &SchoolState, school: &Tenant, key: &ObjectKey) {
    if let Err(d) = state.store.for_tenant(school).delete(key).await {
        tracing::warn!(error = %d, key = key.as_str(), "photo of an unsaved leave request not removed");
    }
}

/// Commits; deletes the new object again if the commit fails, and the replaced object once
/// it succeeded.
pub(crate) async fn commit(
    state: &SchoolState,
    school: &Tenant,
    tx: SchoolTx,
    key: &ObjectKey,
    replaced: Replaced,
) -> Result<(), Refusal> {
    if let Err(e) = tx.commit().await {
        remove(state, school, key).await;
        return Err(e.into());
    }
    if let Some(old) = replaced.0.and_then(|k| ObjectKey::parse(&k).ok()) {
        if let Err(e) = state.store.for_tenant(school).delete(&old).await {
            tracing::warn!(error = %e, key = old.as_str(), "replaced leave photo not removed");
        }
    }
    Ok(())
}

/// Who may see a leave request's files: whoever may open the request.
pub struct LeaveFiles;

#[async_trait::async_trait]
impl campus_files::OwnerAccess for LeaveFiles {
    async fn may_see(&self, tx: &mut SchoolTx, user: &CurrentUser, id: i64) -> sqlx::Result<bool> {
        Ok(load(tx, user, id, false).await.is_ok())
    }
}

/// `GET /leave/{id}/photo`: for the pupil's guardians, the head teacher, the grade leader
/// and school leaders; 404 for everyone else.
pub(crate) async fn serve(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(&school).await?;
        let l = load(&mut tx, &user, id, false).await?;
        tx.commit().await?;
        let none = || refuse(StatusCode::NOT_FOUND, "该请假没有照片。", "No photo.");
        let (Some(key), Some(kind)) = (l.photo_key, l.photo_type) else {
            return Err(none());
        };
        let key = ObjectKey::parse(&key).map_err(|_| none())?;
        let (bytes, _) = state
            .store
            .for_tenant(&school)
            .get(&key)
            .await?
            .ok_or_else(none)?;
        Ok::<_, Refusal>((kind, bytes))
    }
    .await;
    match result {
        Ok((kind, bytes)) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CONTENT_DISPOSITION, "inline".to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                (header::CACHE_CONTROL, "private, max-age=300".to_owned()),
            ],
            bytes,
        )
            .into_response(),
        Err(r) => r.page(&school),
    }
}

/// `PUT /api/v1/leave/{id}/photo` (raw image body, `X-CSRF-Token`): a guardian of the pupil
/// adds or replaces the photo of a pending or approved request.
pub(crate) async fn put_json(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        check_csrf(&user, header_token(&headers))?;
        let bytes = body.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "没有收到照片。",
                    "The photo did not arrive.",
                )
            }
        })?;
        let photo = accept(bytes)?.ok_or_else(|| {
            refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "请上传照片。",
                "Send the photo as the body.",
            )
        })?;
        let mut tx = state.db.school(&school).await?;
        let l = load(&mut tx, &user, id, true).await?;
        if !l.is_parent {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "只有学生家长可以上传请假照片。",
                "Only the pupil's guardians add a photo.",
            ));
        }
        if !matches!(l.status.as_str(), "pending" | "approved") {
            return Err(refuse(
                StatusCode::CONFLICT,
                "该请假已结束，不能再上传照片。",
                "This request is closed.",
            ));
        }
        let (key, replaced) = attach(&state, &school, user.account_id, &mut tx, id, &photo).await?;
        commit(&state, &school, tx, &key, replaced).await?;
        detail_json_of(&state, &school, &user, id).await
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r.json(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_told_by_the_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0"), Some("image/heic"));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\0\0"), None, "an MP4 video");
        assert_eq!(sniff(b"GIF89a"), None);
        assert_eq!(sniff("医生证明.jpg".as_bytes()), None);
    }

    #[test]
    fn empty_is_no_photo_and_big_is_refused() {
        assert!(accept(Bytes::new()).unwrap().is_none());
        let mut big = vec![0xFF, 0xD8, 0xFF];
        big.resize(PHOTO_MAX + 1, 0);
        let r = accept(Bytes::from(big)).err().unwrap();
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        let r = accept(Bytes::from_static(b"hello")).err().unwrap();
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
}
