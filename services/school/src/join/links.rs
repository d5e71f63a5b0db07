//! The school's join links: one active link per kind, created when first needed; rotating
//! a link disables the old one, so a leaked QR code can be withdrawn.

use campus_tenant::{Db, SchoolTx, Tenant};

use super::{random_token, Kind};

/// An active link as found by its token.
#[derive(Clone, Debug)]
pub(crate) struct Link {
    pub id: i64,
    pub kind: Kind,
}

/// The active link of `kind`, created if the school has none yet.
pub(crate) async fn ensure_active(tx: &mut SchoolTx, kind: Kind) -> sqlx::Result<String> {
    let existing: Option<String> =
        sqlx::query_scalar("select token from join_links where kind = $1 and active")
            .bind(kind.code())
            .fetch_optional(&mut **tx)
            .await?;
    if let Some(token) = existing {
        return Ok(token);
    }
    let created: Option<String> = sqlx::query_scalar(
        "insert into join_links (kind, token) values ($1, $2)
         on conflict (kind) where active do nothing returning token",
    )
    .bind(kind.code())
    .bind(random_token())
    .fetch_optional(&mut **tx)
    .await?;
    match created {
        Some(token) => Ok(token),
        // Another request created it at the same moment.
        None => {
            sqlx::query_scalar("select token from join_links where kind = $1 and active")
                .bind(kind.code())
                .fetch_one(&mut **tx)
                .await
        }
    }
}

/// Disables the active link of `kind` and issues a new one.
pub(crate) async fn rotate(tx: &mut SchoolTx, kind: Kind) -> sqlx::Result<String> {
    sqlx::query(
        "update join_links set active = false, disabled_at = now() where kind = $1 and active",
    )
    .bind(kind.code())
    .execute(&mut **tx)
    .await?;
    sqlx::query_scalar("insert into join_links (kind, token) values ($1, $2) returning token")
        .bind(kind.code())
        .bind(random_token())
        .fetch_one(&mut **tx)
        .await
}

/// The active link with this token; a disabled or unknown token finds nothing.
pub(crate) async fn by_token(tx: &mut SchoolTx, token: &str) -> sqlx::Result<Option<Link>> {
    let row: Option<(i64, String)> =
        sqlx::query_as("select id, kind from join_links where token = $1 and active")
            .bind(token)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.and_then(|(id, kind)| Kind::parse(&kind).map(|kind| Link { id, kind })))
}

/// The path of the school's active link of `kind` (e.g. `/join/3f…`), created if needed;
/// the demo prints it.
pub async fn active_link(db: &Db, tenant: &Tenant, kind: Kind) -> anyhow::Result<String> {
    let mut tx = db.school(tenant).await?;
    let token = ensure_active(&mut tx, kind).await?;
    tx.commit().await?;
    Ok(format!("/join/{token}"))
}
