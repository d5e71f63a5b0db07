//! `GET /admin/v1/notify/queues`: the county IT centre's view of the notification queues —
//! every school with work due or waiting in a lane, and that school's deliveries by channel
//! and state (counts only). Schools' own admins see the same figures for their school on
//! `/admin/notify`.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use campus_notify::{admin, queue, Lane};
use campus_tenant::{registry, TenantId, TenantStatus};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use crate::admin::AdminActor;
use crate::error::{ApiError, ErrorBody};
use crate::runtime::Services;

#[derive(Debug, Serialize, ToSchema)]
pub struct NotifyQueues {
    /// Schools with work in a queue, safety lane first, the longest waiting first.
    pub schools: Vec<QueuedSchool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedSchool {
    pub slug: String,
    pub name: String,
    pub lanes: Vec<QueuedLane>,
    /// Jobs whose recipients are not expanded yet.
    pub jobs_waiting: i64,
    /// The oldest job or delivery not sent yet.
    pub oldest_waiting: Option<DateTime<Utc>>,
    pub channels: Vec<ChannelCounts>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedLane {
    /// 0 = safety … 3 = bulk.
    pub lane: i16,
    pub name: String,
    pub due_at: DateTime<Utc>,
    /// When a worker last served this school's lane.
    pub served_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChannelCounts {
    pub channel: String,
    pub waiting: i64,
    pub sending: i64,
    pub sent: i64,
    /// Given up after every retry; the school's admin can retry them.
    pub dead: i64,
}

#[utoipa::path(get, path = "/admin/v1/notify/queues", tag = "notify",
    responses((status = 200, body = NotifyQueues), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn queues(
    State(s): State<Services>,
    _actor: AdminActor,
) -> Result<Json<NotifyQueues>, ApiError> {
    let queued = queue::queued(&s.pool).await?;
    let mut schools: Vec<QueuedSchool> = Vec::new();
    for q in queued {
        let lane = QueuedLane {
            lane: q.lane,
            name: Lane(q.lane).name().to_owned(),
            due_at: q.due_at,
            served_at: q.served_at,
        };
        let Some(tenant) = registry::find_by_id(&s.pool, TenantId(q.tenant_id)).await? else {
            continue;
        };
        if let Some(known) = schools.iter_mut().find(|k| k.slug == tenant.slug.as_str()) {
            known.lanes.push(lane);
            continue;
        }
        let figures = if tenant.status == TenantStatus::Deleted {
            admin::QueueFigures::default()
        } else {
            let mut tx = s.db.school(&tenant).await?;
            let f = admin::figures(&mut tx).await?;
            tx.commit().await?;
            f
        };
        schools.push(QueuedSchool {
            slug: tenant.slug.to_string(),
            name: tenant.name.clone(),
            lanes: vec![lane],
            jobs_waiting: figures.jobs_waiting,
            oldest_waiting: figures.oldest_waiting,
            channels: figures
                .rows
                .into_iter()
                .map(|c| ChannelCounts {
                    channel: c.channel,
                    waiting: c.waiting,
                    sending: c.sending,
                    sent: c.sent,
                    dead: c.dead,
                })
                .collect(),
        });
    }
    Ok(Json(NotifyQueues { schools }))
}

#[derive(OpenApi)]
#[openapi(
    paths(queues),
    components(schemas(NotifyQueues, QueuedSchool, QueuedLane, ChannelCounts)),
    tags((name = "notify", description = "Notification queues across the county"))
)]
pub struct QueuesDoc;

pub fn router() -> Router<Services> {
    Router::new().route("/admin/v1/notify/queues", get(queues))
}
