//! The doorbell in `public.notify_queue`: which school has work due in which lane.
//!
//! A school's transaction rings through `public.notify_ring`, which only appends a row to
//! `public.notify_rings`: ringing never waits for anything a worker holds. Workers fold the
//! rings into `notify_queue` in short transactions of their own ([`fold`]), and a turn holds
//! its `(school, lane)` row by a lease, not a lock, so no transaction of a school ever waits
//! on a worker. The workers are woken after the commit ([`doorbell`]), not by the ringing
//! transaction itself.
//!
//! Clearing a row stays safe: every fold bumps the row's `rung`, and a turn removes its row
//! only if the rung is the one it claimed, after folding once more. A job committed before
//! that last fold has bumped the rung (the row stays); one committed after it leaves a ring
//! that the next fold turns into a new row.

use campus_tenant::{SchoolTx, TenantId};
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres};

use crate::model::Lane;

/// The channel workers LISTEN on; the payload is the lane.
pub const CHANNEL: &str = "campus_notify";

/// Marks `lane` of the transaction's school as having work due now.
pub(crate) async fn ring(tx: &mut SchoolTx, lane: Lane) -> sqlx::Result<()> {
    ring_at(tx, lane, Utc::now()).await
}

pub(crate) async fn ring_at(tx: &mut SchoolTx, lane: Lane, due: DateTime<Utc>) -> sqlx::Result<()> {
    let tenant = tx.tenant_id();
    let wake: i32 = sqlx::query_scalar("select public.notify_ring($1, $2, $3)")
        .bind(tenant.0)
        .bind(lane.0)
        .bind(due)
        .fetch_one(&mut **tx)
        .await?;
    if wake == 1 {
        tx.wake_after_commit();
    }
    Ok(())
}

/// The workers' wake-up for [`Db::with_wake`](campus_tenant::Db::with_wake): after a commit
/// that rang, `NOTIFY` on [`CHANNEL`] from a task of its own, in a transaction of its own
/// (public migration 0013 says why). Rings that come while one wake-up is being sent make
/// one more, not one each.
pub fn doorbell(pool: PgPool) -> campus_tenant::Wake {
    let bell = std::sync::Arc::new(tokio::sync::Notify::new());
    let rung = bell.clone();
    tokio::spawn(async move {
        loop {
            rung.notified().await;
            if let Err(e) = sqlx::query("select pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&pool)
                .await
            {
                // The workers' poll finds the work a little later.
                tracing::warn!(error = %e, "cannot wake the notification workers");
            }
        }
    });
    campus_tenant::Wake(std::sync::Arc::new(move |_| bell.notify_one()))
}

/// Moves the committed rings into `notify_queue`: one row per school and lane, due at the
/// earliest ring, its rung bumped. Rings another worker is folding are skipped, so two
/// workers never wait for each other here.
pub(crate) async fn fold<'e, E: sqlx::Executor<'e, Database = Postgres>>(
    e: E,
) -> sqlx::Result<u64> {
    let r = sqlx::query(
        "with r as (
           delete from public.notify_rings
            where ctid = any(array(select ctid from public.notify_rings for update skip locked))
           returning tenant_id, lane, due_at),
         g as (
           select r.tenant_id, r.lane, min(r.due_at) as due from r
            where exists (select 1 from public.tenants t where t.id = r.tenant_id)
            group by 1, 2)
         insert into public.notify_queue as q (tenant_id, lane, due_at)
         select tenant_id, lane, due from g order by tenant_id, lane
         on conflict (tenant_id, lane) do update
            set due_at = least(q.due_at, excluded.due_at), rung = q.rung + 1",
    )
    .execute(e)
    .await?;
    Ok(r.rows_affected())
}

/// One school's lane, claimed by a worker until [`Turn::finish`] or until the lease runs
/// out (the worker crashed), when another worker may claim it again.
pub(crate) struct Turn {
    pub tenant: TenantId,
    pub lane: Lane,
    rung: i64,
    lease: i64,
    pool: PgPool,
}

/// Claims the least recently served school with work due in `lane` whose row no other
/// worker holds, for `lease_secs` (call [`fold`] first to see the latest rings).
pub(crate) async fn claim(
    pool: &PgPool,
    lane: Lane,
    lease_secs: u64,
) -> sqlx::Result<Option<Turn>> {
    let row: Option<(i64, i64, i64)> = sqlx::query_as(
        "update public.notify_queue q
            set leased_until = now() + make_interval(secs => $2), lease = q.lease + 1, served_at = now()
          where (q.tenant_id, q.lane) = (
                 select tenant_id, lane from public.notify_queue
                  where lane = $1 and due_at <= now() and leased_until < now()
                  order by served_at, tenant_id
                  limit 1
                  for update skip locked)
          returning q.tenant_id, q.rung, q.lease",
    )
    .bind(lane.0)
    .bind(lease_secs as f64)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(tenant, rung, lease)| Turn {
        tenant: TenantId(tenant),
        lane,
        rung,
        lease,
        pool: pool.clone(),
    }))
}

impl Turn {
    /// Ends the turn: `next` is when the school's lane next has work (None: nothing left,
    /// the row is removed unless something rang meanwhile).
    pub async fn finish(self, next: Option<DateTime<Utc>>) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        fold(&mut *tx).await?;
        let removed = match next {
            Some(_) => 0,
            None => sqlx::query(
                "delete from public.notify_queue
                  where tenant_id = $1 and lane = $2 and lease = $3 and rung = $4",
            )
            .bind(self.tenant.0)
            .bind(self.lane.0)
            .bind(self.lease)
            .bind(self.rung)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
        };
        if removed == 0 {
            // Something rang during the turn (the rung moved): that work is due now, not
            // at the turn's own next time.
            sqlx::query(
                "update public.notify_queue
                    set due_at = case when rung = $4 then coalesce($5, due_at) else least($5, due_at) end,
                        leased_until = '-infinity'
                  where tenant_id = $1 and lane = $2 and lease = $3",
            )
            .bind(self.tenant.0)
            .bind(self.lane.0)
            .bind(self.lease)
            .bind(self.rung)
            .bind(next)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
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
        "select tenant_id, lane, min(due_at) as due_at, max(served_at) as served_at from (
           select tenant_id, lane, due_at, case when served_at = '-infinity' then null else served_at end as served_at
             from public.notify_queue
           union all
           -- Rung, not yet folded by a worker.
           select tenant_id, lane, due_at, null from public.notify_rings) q
          group by tenant_id, lane
          order by lane, due_at",
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
