//! A school's export: `pg_dump` of its schema plus every object under its prefix, written to
//! a folder with a manifest. Enough to archive a school, hand its data over, or restore it
//! into an empty school schema. The database password never reaches `pg_dump`'s command
//! line (which `ps` shows to every user): the URL goes without it, and the password in a
//! private (0600) temporary password file named by `PGPASSFILE`, removed afterwards.

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

/// A connection URL without its password (in the user-info part or a `password` query
/// parameter), and the password it had.
fn split_password(database_url: &str) -> Result<(String, Option<String>)> {
    let bad = || TenantError::Export("the database URL is not a valid postgres:// URL".into());
    let mut url = url::Url::parse(database_url).map_err(|_| bad())?;
    let mut password = url
        .password()
        .map(|p| {
            percent_encoding::percent_decode_str(p)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|p| !p.is_empty());
    url.set_password(None).map_err(|_| bad())?;
    if url.query_pairs().any(|(k, _)| k == "password") {
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(k, v)| {
                if k == "password" {
                    password.get_or_insert_with(|| v.into_owned());
                    None
                } else {
                    Some((k.into_owned(), v.into_owned()))
                }
            })
            .collect();
        url.set_query(None);
        if !kept.is_empty() {
            url.query_pairs_mut().extend_pairs(kept);
        }
    }
    Ok((url.to_string(), password))
}

/// The `pg_dump` command for a school's schema, and the password file it reads (kept alive
/// by the caller until `pg_dump` has finished; removed when dropped). Its arguments hold
/// no password.
fn pg_dump_command(
    pg_dump: &Path,
    schema: &str,
    schema_dump: &Path,
    database_url: &str,
) -> Result<(tokio::process::Command, Option<tempfile::NamedTempFile>)> {
    let (url, password) = split_password(database_url)?;
    let mut cmd = tokio::process::Command::new(pg_dump);
    cmd.arg("--schema")
        .arg(schema)
        .args(["--no-owner", "--no-privileges", "--quote-all-identifiers"])
        .arg("--no-password")
        .arg("--file")
        .arg(schema_dump)
        .arg("--dbname")
        .arg(url)
        .env_remove("PGPASSWORD")
        .kill_on_drop(true);
    let passfile = match password {
        Some(password) => {
            use std::io::Write;
            // hostname:port:database:username:password; this file serves one connection.
            let escaped = password.replace('\\', "\\\\").replace(':', "\\:");
            // tempfile creates the file with mode 0600, as libpq demands.
            let mut file = tempfile::Builder::new()
                .prefix("campus-pgpass-")
                .tempfile()
                .map_err(|e| TenantError::Export(format!("writing the password file: {e}")))?;
            writeln!(file, "*:*:*:*:{escaped}")
                .and_then(|()| file.flush())
                .map_err(|e| TenantError::Export(format!("writing the password file: {e}")))?;
            cmd.env("PGPASSFILE", file.path());
            Some(file)
        }
        None => None,
    };
    Ok((cmd, passfile))
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
    let (mut cmd, _passfile) =
        pg_dump_command(pg_dump, tenant.schema_name(), &schema_dump, database_url)?;
    let output = cmd
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_password_file() {
        let cases = [
            (
                "postgres://campus:s%3Acret%40x@db.internal:5432/campus?sslmode=require",
                "postgres://campus@db.internal:5432/campus?sslmode=require",
                Some("s:cret@x"),
            ),
            (
                "postgres://campus@db/campus?password=hunter2&sslmode=disable",
                "postgres://campus@db/campus?sslmode=disable",
                Some("hunter2"),
            ),
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/postgres",
                None,
            ),
        ];
        for (url, bare, password) in cases {
            let (got, pw) = split_password(url).unwrap();
            assert_eq!(got, bare);
            assert_eq!(pw.as_deref(), password);
        }
        assert!(split_password("not a url").is_err());
    }

    #[test]
    fn pg_dump_gets_no_password_in_its_arguments() {
        use std::os::unix::fs::PermissionsExt;
        let (cmd, passfile) = pg_dump_command(
            Path::new("/usr/bin/pg_dump"),
            "school_alpha",
            Path::new("/tmp/schema.sql"),
            "postgres://campus:Sup3r%3Asecret%5C@db:5432/campus?sslmode=require",
        )
        .unwrap();
        let cmd = cmd.as_std();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            args.iter()
                .all(|a| !a.contains("Sup3r") && !a.contains("secret")),
            "{args:?}"
        );
        assert!(args.contains(&"postgres://campus@db:5432/campus?sslmode=require".to_owned()));
        assert!(args.contains(&"--no-password".to_owned()));
        let passfile = passfile.expect("a password file");
        let env: Vec<(String, Option<String>)> = cmd
            .get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect();
        assert!(env.contains(&(
            "PGPASSFILE".to_owned(),
            Some(passfile.path().display().to_string())
        )));
        assert!(env.contains(&("PGPASSWORD".to_owned(), None)), "{env:?}");
        let meta = std::fs::metadata(passfile.path()).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(passfile.path()).unwrap(),
            "*:*:*:*:Sup3r\\:secret\\\\\n"
        );
        let path = passfile.path().to_owned();
        drop(passfile);
        assert!(!path.exists(), "the password file goes with the export");
    }
}
