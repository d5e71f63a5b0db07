//! The `preview` role: worker loops (one per core by default, so at most one conversion per
//! core) that make previews of files waiting in any school.
//!
//! A school's transaction that records a previewable file rings `public.preview_ring`.
//! A turn takes the least recently served school with work due from
//! `public.preview_queue` (`FOR UPDATE SKIP LOCKED`), claims that school's oldest waiting
//! file with a lease, and releases the queue row before converting, so other workers can
//! take the school's next file at once. A worker that dies leaves the file `working`; once
//! the lease passes, the next turn retries it, and after three attempts it is marked
//! unavailable (a file that keeps killing workers is not tried for ever). A school with
//! nothing to claim leaves the queue (or stays, due when the earliest lease passes).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use campus_tenant::registry::{self, TenantStatus};
use campus_tenant::{Db, ObjectKey, ObjectStore, Tenant, TenantId};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::convert::{self, Rendered};
use super::{PreviewSettings, Tools};
use crate::model;
use crate::sniff::Kind;

/// The NOTIFY channel rung by `public.preview_ring`.
pub const CHANNEL: &str = "campus_preview";
/// Attempts before a file is given up on.
const MAX_ATTEMPTS: i16 = 3;
/// How often idle workers look even without a ring (missed notifications, leases).
const POLL: Duration = Duration::from_secs(5);

/// What the preview workers of one instance share.
#[derive(Debug)]
pub struct Previewer {
    db: Db,
    store: ObjectStore,
    pub tools: Tools,
    pub settings: PreviewSettings,
    wake: Notify,
    /// Scratch space: each job a folder of its own (its input, and a fresh folder per
    /// sandboxed step that is also LibreOffice's home and profile), removed after the job.
    scratch: tempfile::TempDir,
}

/// One claimed file.
#[derive(Debug)]
struct Job {
    id: i64,
    key: String,
    kind: Kind,
    file_name: String,
    attempts: i16,
}

/// What a turn did.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Nothing was due.
    Idle,
    /// A school was looked at (a file previewed, or the queue tidied).
    Worked,
}

impl Previewer {
    pub fn new(
        db: Db,
        store: ObjectStore,
        tools: Tools,
        settings: PreviewSettings,
    ) -> std::io::Result<Self> {
        Ok(Self {
            db,
            store,
            tools,
            settings,
            wake: Notify::new(),
            scratch: tempfile::Builder::new()
                .prefix("campus-preview-")
                .tempdir()?,
        })
    }

    /// Starts the worker loops and the listener that wakes them.
    pub fn spawn(self: &Arc<Self>, listen_pool: PgPool) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        let me = Arc::clone(self);
        tasks.push(tokio::spawn(async move {
            loop {
                match sqlx::postgres::PgListener::connect_with(&listen_pool).await {
                    Ok(mut l) => {
                        if l.listen(CHANNEL).await.is_ok() {
                            while l.recv().await.is_ok() {
                                me.wake.notify_waiters();
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "preview listener cannot connect; retrying")
                    }
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }));
        for _ in 0..self.settings.workers.max(1) {
            let me = Arc::clone(self);
            tasks.push(tokio::spawn(async move {
                loop {
                    match me.turn().await {
                        Ok(Turn::Worked) => continue,
                        Ok(Turn::Idle) => {}
                        Err(e) => tracing::warn!(error = %e, "preview turn failed; will retry"),
                    }
                    let _ = tokio::time::timeout(POLL, me.wake.notified()).await;
                }
            }));
        }
        tasks
    }

    /// One turn: claims one waiting file of the school served least recently and previews
    /// it. Public so tests and benchmarks can drive the worker step by step.
    pub async fn turn(&self) -> anyhow::Result<Turn> {
        let mut q = self.db.shared().begin().await?;
        let tenant: Option<i64> = sqlx::query_scalar(
            "select tenant_id from public.preview_queue where due_at <= now()
              order by served_at limit 1 for update skip locked",
        )
        .fetch_optional(&mut *q)
        .await?;
        let Some(tenant_id) = tenant else {
            return Ok(Turn::Idle);
        };
        let school = registry::find_by_id(self.db.shared(), TenantId(tenant_id))
            .await?
            .filter(|t| t.status != TenantStatus::Deleted);
        let Some(school) = school else {
            sqlx::query("delete from public.preview_queue where tenant_id = $1")
                .bind(tenant_id)
                .execute(&mut *q)
                .await?;
            q.commit().await?;
            return Ok(Turn::Worked);
        };
        let mut tx = self.db.school(&school).await?;
        let job: Option<(i64, String, String, String, i16)> = sqlx::query_as(
            "update files set preview_status = 'working', preview_attempts = preview_attempts + 1,
                    preview_lease = now() + make_interval(secs => $1)
              where id = (select id from files
                           where preview_status = 'pending'
                              or (preview_status = 'working' and preview_lease < now())
                           order by id limit 1 for update skip locked)
             returning id, object_key, kind, file_name, preview_attempts",
        )
        .bind(self.lease().as_secs_f64())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, key, kind, file_name, attempts)) = job else {
            let next: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
                "select min(preview_lease) from files where preview_status = 'working'",
            )
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            match next {
                Some(at) => {
                    sqlx::query("update public.preview_queue set due_at = $2 where tenant_id = $1")
                        .bind(tenant_id)
                        .bind(at)
                        .execute(&mut *q)
                        .await?
                }
                None => {
                    sqlx::query("delete from public.preview_queue where tenant_id = $1")
                        .bind(tenant_id)
                        .execute(&mut *q)
                        .await?
                }
            };
            q.commit().await?;
            return Ok(Turn::Worked);
        };
        tx.commit().await?;
        sqlx::query("update public.preview_queue set served_at = now() where tenant_id = $1")
            .bind(tenant_id)
            .execute(&mut *q)
            .await?;
        q.commit().await?;
        let job = Job {
            id,
            key,
            kind: Kind::parse(&kind),
            file_name,
            attempts,
        };
        self.preview(&school, job).await?;
        Ok(Turn::Worked)
    }

    /// Long enough for a conversion (LibreOffice, then pdftoppm) and the uploads.
    fn lease(&self) -> Duration {
        self.settings.timeout * 3 + Duration::from_secs(60)
    }

    async fn preview(&self, school: &Tenant, job: Job) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let outcome = if job.attempts > MAX_ATTEMPTS {
            Err("earlier attempts did not finish".to_owned())
        } else if !self.tools.can(job.kind) {
            Err(format!(
                "this server cannot preview {} files ({})",
                job.kind.code(),
                self.tools.describe()
            ))
        } else {
            self.render(school, &job).await
        };
        let store = self.store.for_tenant(school);
        let mut tx = self.db.school(school).await?;
        match outcome {
            Ok(r) => {
                let n = r.pages.len() as i32;
                for (i, page) in r.pages.into_iter().enumerate() {
                    store
                        .put(
                            &model::page_key(job.id, i as i32 + 1),
                            page.into(),
                            "image/jpeg",
                        )
                        .await?;
                }
                store
                    .put(&model::thumb_key(job.id), r.thumb.into(), "image/jpeg")
                    .await?;
                sqlx::query(
                    "update files set preview_status = 'ready', preview_pages = $2, preview_error = null,
                            preview_lease = null where id = $1",
                )
                .bind(job.id)
                .bind(n)
                .execute(&mut *tx)
                .await?;
                tracing::info!(school = %school.slug, file = job.id, pages = n, ms = started.elapsed().as_millis() as u64, "preview made");
            }
            Err(reason) => {
                sqlx::query(
                    "update files set preview_status = 'unavailable', preview_error = $2,
                            preview_lease = null where id = $1",
                )
                .bind(job.id)
                .bind(&reason)
                .execute(&mut *tx)
                .await?;
                tracing::info!(school = %school.slug, file = job.id, %reason, "preview unavailable");
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn render(&self, school: &Tenant, job: &Job) -> Result<Rendered, String> {
        let key = ObjectKey::parse(&job.key).map_err(|e| e.to_string())?;
        let store = self.store.for_tenant(school);
        let dir = tempfile::Builder::new()
            .prefix("job-")
            .tempdir_in(self.scratch.path())
            .map_err(|e| e.to_string())?;
        match job.kind {
            Kind::Image => {
                let (bytes, _) = store
                    .get(&key)
                    .await
                    .map_err(|e| e.to_string())?
                    .ok_or("the file is gone")?;
                if bytes.len() as u64 > self.settings.max_image_bytes {
                    return Err("the picture is too large to preview".into());
                }
                convert::image_pages(&self.settings, bytes.to_vec()).await
            }
            Kind::Pdf => {
                let input = dir.path().join("input.pdf");
                download(&store, &key, &input).await?;
                convert::pdf_pages(&self.tools, &self.settings, dir.path(), &input).await
            }
            Kind::Office => {
                let input = dir
                    .path()
                    .join(format!("document{}", extension(&job.file_name)));
                download(&store, &key, &input).await?;
                let pdf =
                    convert::office_to_pdf(&self.tools, &self.settings, dir.path(), &input).await?;
                convert::pdf_pages(&self.tools, &self.settings, dir.path(), &pdf).await
            }
            Kind::Other => Err("this kind of file has no preview".into()),
        }
    }
}

/// The original's extension when it is an office one LibreOffice knows (it also tells
/// formats by content, which is what counts for a file whose extension lies).
fn extension(name: &str) -> String {
    const KNOWN: &[&str] = &[
        "doc", "docx", "wps", "wpt", "xls", "xlsx", "et", "ppt", "pptx", "dps", "odt", "ods",
        "odp", "rtf",
    ];
    match name.rsplit_once('.') {
        Some((_, ext)) if KNOWN.contains(&ext.to_ascii_lowercase().as_str()) => {
            format!(".{}", ext.to_ascii_lowercase())
        }
        _ => String::new(),
    }
}

/// Streams an object into a file of the job's folder.
async fn download(
    store: &campus_tenant::TenantStore,
    key: &ObjectKey,
    to: &PathBuf,
) -> Result<(), String> {
    let (body, _) = store
        .get_stream(key)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the file is gone")?;
    let mut reader = body.into_async_read();
    let mut file = tokio::fs::File::create(to)
        .await
        .map_err(|e| e.to_string())?;
    tokio::io::copy(&mut reader, &mut file)
        .await
        .map_err(|e| e.to_string())?;
    file.flush().await.map_err(|e| e.to_string())?;
    Ok(())
}
