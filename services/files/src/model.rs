//! File rows and who may see them. A file belongs to an owning object (`owner_kind`,
//! `owner_id`: a notice, a leave request…) or, until it is attached, only to its uploader.
//! The files service does not know what a notice is: each owning module registers an
//! [`OwnerAccess`] for its kind and is asked "may this person see object X?".

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use campus_identity::CurrentUser;
use campus_tenant::{ObjectKey, SchoolTx};
use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use crate::error::Fail;
use crate::quota;
use crate::sniff::{Detected, Kind};

/// An owning module's answer to "may this person see object `owner_id`?".
#[async_trait::async_trait]
pub trait OwnerAccess: Send + Sync {
    async fn may_see(
        &self,
        tx: &mut SchoolTx,
        user: &CurrentUser,
        owner_id: i64,
    ) -> sqlx::Result<bool>;
}

/// The owning kinds known to this platform and how to ask each.
#[derive(Clone, Default)]
pub struct Owners(HashMap<&'static str, Arc<dyn OwnerAccess>>);

impl fmt::Debug for Owners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl Owners {
    pub fn with(mut self, kind: &'static str, access: Arc<dyn OwnerAccess>) -> Self {
        self.0.insert(kind, access);
        self
    }

    pub fn knows(&self, kind: &str) -> bool {
        self.0.contains_key(kind)
    }
}

/// One file of the school.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FileRow {
    pub id: i64,
    #[serde(skip)]
    pub object_key: String,
    pub file_name: String,
    /// Told from the bytes.
    pub content_type: String,
    /// `image`, `pdf`, `office` or `other`.
    pub kind: String,
    pub size: i64,
    #[serde(skip)]
    pub uploaded_by: i64,
    pub owner_kind: Option<String>,
    pub owner_id: Option<i64>,
    /// `none` (not previewable), `pending`, `working`, `ready` or `unavailable`.
    pub preview_status: String,
    pub preview_pages: Option<i32>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl FileRow {
    pub fn key(&self) -> Result<ObjectKey, Fail> {
        ObjectKey::parse(&self.object_key).map_err(|e| Fail::Unavailable(e.to_string()))
    }

    pub fn kind(&self) -> Kind {
        Kind::parse(&self.kind)
    }
}

const COLUMNS: &str =
    "id, object_key, file_name, content_type, kind, size, uploaded_by, owner_kind,
                       owner_id, preview_status, preview_pages, created_at";

fn row(r: sqlx::postgres::PgRow) -> FileRow {
    FileRow {
        id: r.get("id"),
        object_key: r.get("object_key"),
        file_name: r.get("file_name"),
        content_type: r.get("content_type"),
        kind: r.get("kind"),
        size: r.get("size"),
        uploaded_by: r.get("uploaded_by"),
        owner_kind: r.get("owner_kind"),
        owner_id: r.get("owner_id"),
        preview_status: r.get("preview_status"),
        preview_pages: r.get("preview_pages"),
        created_at: r.get("created_at"),
    }
}

/// The file, if it exists in this school.
pub async fn find(tx: &mut SchoolTx, id: i64) -> sqlx::Result<Option<FileRow>> {
    Ok(
        sqlx::query(&format!("select {COLUMNS} from files where id = $1"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?
            .map(row),
    )
}

/// The newest files `account` uploaded.
pub async fn by_uploader(
    tx: &mut SchoolTx,
    account: i64,
    limit: i64,
) -> sqlx::Result<Vec<FileRow>> {
    Ok(sqlx::query(&format!(
        "select {COLUMNS} from files where uploaded_by = $1 order by created_at desc, id desc limit $2"
    ))
    .bind(account)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(row)
    .collect())
}

/// The file if `user` may see it: its uploader, or whoever its owning module lets see the
/// owning object. Everything else — including ids of another school, which name nothing
/// in this school's schema — is [`Fail::NotFound`].
pub async fn visible(
    tx: &mut SchoolTx,
    owners: &Owners,
    user: &CurrentUser,
    id: i64,
) -> Result<FileRow, Fail> {
    let f = find(tx, id).await?.ok_or(Fail::NotFound)?;
    if f.uploaded_by == user.account_id {
        return Ok(f);
    }
    if let (Some(kind), Some(owner)) = (&f.owner_kind, f.owner_id) {
        if let Some(access) = owners.0.get(kind.as_str()) {
            if access.may_see(tx, user, owner).await? {
                return Ok(f);
            }
        }
    }
    Err(Fail::NotFound)
}

/// A file to record: already stored at `key`.
pub struct NewFile<'a> {
    pub key: &'a ObjectKey,
    pub file_name: &'a str,
    pub detected: &'a Detected,
    pub size: i64,
    pub uploaded_by: i64,
    pub owner: Option<(&'a str, i64)>,
}

/// Records a stored file in `tx`: charges the school's quota (refused when full), adds the
/// row and, for previewable kinds, queues its preview. Everything commits with `tx`.
pub async fn record(tx: &mut SchoolTx, f: NewFile<'_>) -> Result<FileRow, Fail> {
    quota::charge(tx, f.size).await?;
    let status = if f.detected.kind.previewable() {
        "pending"
    } else {
        "none"
    };
    let saved = sqlx::query(&format!(
        "insert into files (object_key, file_name, content_type, kind, size, uploaded_by,
                            owner_kind, owner_id, preview_status)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         returning {COLUMNS}"
    ))
    .bind(f.key.as_str())
    .bind(f.file_name)
    .bind(&f.detected.content_type)
    .bind(f.detected.kind.code())
    .bind(f.size)
    .bind(f.uploaded_by)
    .bind(f.owner.map(|o| o.0))
    .bind(f.owner.map(|o| o.1))
    .bind(status)
    .fetch_one(&mut **tx)
    .await
    .map(row)?;
    if status == "pending" {
        sqlx::query("select public.preview_ring()")
            .execute(&mut **tx)
            .await?;
    }
    Ok(saved)
}

/// Gives an unattached file of `user`'s to an owning object (in the owner's transaction).
/// Only the uploader may attach, and only once; anything else is [`Fail::NotFound`].
pub async fn attach(
    tx: &mut SchoolTx,
    user: &CurrentUser,
    file_id: i64,
    owner_kind: &str,
    owner_id: i64,
) -> Result<FileRow, Fail> {
    sqlx::query(&format!(
        "update files set owner_kind = $3, owner_id = $4
          where id = $1 and uploaded_by = $2 and owner_kind is null
         returning {COLUMNS}"
    ))
    .bind(file_id)
    .bind(user.account_id)
    .bind(owner_kind)
    .bind(owner_id)
    .fetch_optional(&mut **tx)
    .await?
    .map(row)
    .ok_or(Fail::NotFound)
}

/// A new random key under `files/` for an upload; the client's name never enters it.
pub fn new_key() -> ObjectKey {
    ObjectKey::parse(&format!(
        "files/{}/{}",
        chrono::Utc::now().format("%Y/%m"),
        hex::encode(rand::random::<[u8; 16]>())
    ))
    .expect("generated keys are valid")
}

/// Where page `n` (from 1) of a file's preview is stored.
pub fn page_key(file_id: i64, n: i32) -> ObjectKey {
    ObjectKey::parse(&format!("previews/{file_id}/{n}.jpg")).expect("generated keys are valid")
}

/// Where a file's thumbnail is stored.
pub fn thumb_key(file_id: i64) -> ObjectKey {
    ObjectKey::parse(&format!("previews/{file_id}/thumb.jpg")).expect("generated keys are valid")
}
