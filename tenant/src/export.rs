//! A school's export: `pg_dump` of its schema plus every object under its prefix, written to
//! a folder with a manifest. Enough to archive a school, hand its data over, or restore it
//! into an empty school schema.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::Serialize;

use crate::error::{Result, TenantError};
use crate::registry::Tenant;
use crate::store::{ObjectKey, TenantStore};

#[derive(Debug, Serialize)]
pub struct ExportSummary {
    pub dir: PathBuf,
    pub schema_dump: PathBuf,
    pub files: usize,
    pub bytes: u64,
}

/// Writes `<out>/<slug>-<UTC timestamp>/{manifest.json, schema.sql, files/…}`.
pub async fn export(
    tenant: &Tenant,
    store: &TenantStore,
    pg_dump: &Path,
    database_url: &str,
    out: &Path,
) -> Result<ExportSummary> {
    let io = |what: &str, e: std::io::Error| TenantError::Export(format!("{what}: {e}"));
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let dir = out.join(format!("{}-{stamp}", tenant.slug));
    let files_dir = dir.join("files");
    tokio::fs::create_dir_all(&files_dir)
        .await
        .map_err(|e| io("creating the export folder", e))?;

    let schema_dump = dir.join("schema.sql");
    let output = tokio::process::Command::new(pg_dump)
        .arg("--schema")
        .arg(tenant.schema_name())
        .args(["--no-owner", "--no-privileges", "--quote-all-identifiers"])
        .arg("--file")
        .arg(&schema_dump)
        .arg("--dbname")
        .arg(database_url)
        .output()
        .await
        .map_err(|e| io(&format!("running {}", pg_dump.display()), e))?;
    if !output.status.success() {
        return Err(TenantError::Export(format!(
            "pg_dump exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }

    let mut files = 0;
    let mut bytes = 0u64;
    for key in store.list().await? {
        // Listing is under our prefix; parsing again keeps a stray key from writing outside
        // the export folder.
        let Ok(parsed) = ObjectKey::parse(&key) else {
            tracing::warn!(
                key,
                "skipping an object whose key is not a valid relative key"
            );
            continue;
        };
        let Some((body, _)) = store.get(&parsed).await? else {
            continue;
        };
        let path = files_dir.join(parsed.as_str());
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io("creating a folder", e))?;
        }
        tokio::fs::write(&path, &body)
            .await
            .map_err(|e| io("writing a file", e))?;
        files += 1;
        bytes += body.len() as u64;
    }

    let manifest = serde_json::json!({
        "format": "campus-school-export/1",
        "slug": tenant.slug,
        "name": tenant.name,
        "tenant_id": tenant.id,
        "schema": tenant.schema_name(),
        "schema_version": tenant.schema_version,
        "s3_prefix": tenant.s3_prefix,
        "exported_at": Utc::now(),
        "files": files,
        "bytes": bytes,
    });
    tokio::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).expect("json"),
    )
    .await
    .map_err(|e| io("writing the manifest", e))?;
    Ok(ExportSummary {
        dir,
        schema_dump,
        files,
        bytes,
    })
}
