//! External Postgres client tools the platform runs (`pg_dump` for exports).

use std::path::PathBuf;

/// `pg_dump`, preferring the newest server installation (a dump tool older than the server
/// refuses to run), then `$CAMPUS_PG_BINDIR`, then the PATH.
pub fn pg_dump() -> anyhow::Result<PathBuf> {
    if let Ok(bins) = campus_devstack::PgBinaries::find() {
        let p = bins.tool("pg_dump");
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(p) = std::env::split_paths(&path)
            .map(|d| d.join("pg_dump"))
            .find(|p| p.is_file())
        {
            return Ok(p);
        }
    }
    anyhow::bail!("pg_dump was not found: install the PostgreSQL client (`sudo apt-get install -y postgresql-client`)")
}
