//! The doorbell in `public.notify_queue`: which school has work due in which lane.
//!
//! A school's transaction rings through `public.notify_ring`, which waits for the row
//! lock a worker holds while it serves that school and lane. That ordering is what makes
//! clearing the row safe: a worker checks the school for remaining work and clears the row
//! while holding the lock, so a job committed after the check rings again afterwards.

use campus_tenant::{SchoolTx, TenantId};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, Transaction};

use crate::model::Lane;

/// The channel workers LISTEN on; the payload is the lane.
pub const CHANNEL: &str = "campus_notify";

/// Marks `lane` of the transaction's school as having work due now.
pub(crate) async fn ring(tx: &mut SchoolTx, lane: Lane) -> sqlx::Result<()> {
    ring_at(tx, lane, Utc::now()).await
}

pub(crate) async fn ring_at(tx: &mut SchoolTx, lane: Lane, due: DateTime<Utc>) -> sqlx::Result<()> {
    let tenant = tx.tenant_id();
    sqlx::query("select public.notify_ring($1, $2, $3)")
        .bind(tenant.0)
        .bind(lane.0)
        .bind(due)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One school's lane, claimed by a worker: the row stays locked until [`Turn::finish`].
pub(crate) struct Turn {
    pub tenant: TenantId,
    pub lane: Lane,
    rung: i64,
    tx: Transaction<'static, Postgres>,
}

/// Claims the least recently served school with work due in `lane`, skipping those other
/// workers hold.
pub(crate) async fn claim(pool: &PgPool, lane: Lane) -> sqlx::Result<Option<Turn>> {
    let mut tx = pool.begin().await?;
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select tenant_id, rung from public.notify_queue
          where lane = $1 and due_at <= now()
          order by served_at, tenant_id
          limit 1
          for update skip locked",
    )
    .bind(lane.0)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|(tenant, rung)| Turn {
        tenant: TenantId(tenant),
        lane,
        rung,
        tx,
    }))
}

impl Turn {
    /// Ends the turn: `next` is when the school's lane next has work (None: nothing left,
    /// the row is removed unless something rang meanwhile).
    pub async fn finish(mut self, next: Option<DateTime<Utc>>) -> sqlx::Result<()> {
        match next {
            Some(at) => {
                sqlx::query(
                    "update public.notify_queue set due_at = $3, served_at = now()
                      where tenant_id = $1 and lane = $2",
                )
                .bind(self.tenant.0)
                .bind(self.lane.0)
                .bind(at)
                .execute(&mut *self.tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "delete from public.notify_queue where tenant_id = $1 and lane = $2 and rung = $3",
                )
                .bind(self.tenant.0)
                .bind(self.lane.0)
                .bind(self.rung)
                .execute(&mut *self.tx)
                .await?;
            }
        }
        self.tx.commit().await
    }

    /// Puts the school back for later without looking at its work (e.g. it is over its
    /// send rate, or the school could not be reached).
    pub async fn defer(self, until: DateTime<Utc>) -> sqlx::Result<()> {
        self.finish(Some(until)).await
    }
}

/// Schools and lanes with work queued, for the admin view.
#[derive(Clone, Debug, serde::Serialize)]
pub struct QueuedSchool {
    pub tenant_id: i64,
    pub lane: i16,
    pub due_at: DateTime<Utc>,
    pub served_at: Option<DateTime<Utc>>,
}

pub async fn queued(pool: &PgPool) -> sqlx::Result<Vec<QueuedSchool>> {
    use sqlx::Row;
    let rows = sqlx::query(
        "select tenant_id, lane, due_at, case when served_at = '-infinity' then null else served_at end as served_at
           from public.notify_queue order by lane, due_at",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| QueuedSchool {
            tenant_id: r.get("tenant_id"),
            lane: r.get("lane"),
            due_at: r.get("due_at"),
            served_at: r.get("served_at"),
        })
        .collect())
}
