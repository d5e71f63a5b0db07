//! Composition of the HTTP application: health probes on any host, then the tenant router
//! sends each request to the school, county or platform router according to its host.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use campus_school::SchoolState;
use campus_tenant::routing::SiteLayer;
use campus_tenant::Site;
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Role;
use crate::runtime::Services;
use crate::{admin, pages};

/// `GET /healthz`: the process is alive.
async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: Postgres and object storage both answer.
async fn readyz(State(s): State<Services>) -> Response {
    let db = sqlx::query("select 1")
        .execute(&s.pool)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let store = s.store.ping().await.map_err(|e| e.to_string());
    let ok = db.is_ok() && store.is_ok();
    let body = serde_json::json!({
        "postgres": db.err().unwrap_or_else(|| "ok".into()),
        "s3": store.err().unwrap_or_else(|| "ok".into()),
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `GET /metrics` on the platform host (scrapers address the instance by IP): every
/// instrument of this instance in Prometheus text format. Not served on school hosts.
async fn metrics(State(s): State<Services>) -> Response {
    use prometheus::Encoder;
    let mut out = Vec::new();
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode(&s.metrics.gather(), &mut out) {
        Ok(()) => (
            [(http::header::CONTENT_TYPE, encoder.format_type().to_owned())],
            out,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn with_not_found(router: Router<Services>, site_name: &'static str) -> Router<Services> {
    router.fallback(move || async move { campus_web::not_found_page(site_name) })
}

/// The routers of the three kinds of site, dispatched by the [`Site`] the tenant layer
/// found for the request's host.
pub fn router(services: Services) -> Router {
    let identity = campus_identity::router().with_state(services.identity.clone());
    let school = campus_school::router()
        .with_state(SchoolState {
            db: services.db.clone(),
            store: services.store.clone(),
            identity: services.identity.clone(),
            sealing: services.sealing_key(),
        })
        .merge(identity.clone())
        .merge(campus_identity::school_admin_router().with_state(services.identity.clone()))
        .fallback(|req: Request<Body>| async move {
            let name = match req.extensions().get::<Site>() {
                Some(Site::School(t)) => t.name.clone(),
                _ => campus_web::PLATFORM_NAME.to_owned(),
            };
            campus_web::not_found_page(&name)
        });
    let county = with_not_found(
        Router::new()
            .route("/", get(pages::county_home))
            .merge(admin::router()),
        campus_web::PLATFORM_NAME,
    )
    .with_state(services.clone())
    .merge(identity);
    let platform = with_not_found(
        Router::new()
            .route("/", get(pages::platform_home))
            .route("/metrics", get(metrics))
            .merge(admin::router()),
        campus_web::PLATFORM_NAME,
    )
    .with_state(services.clone());

    let login = campus_identity::login_host_router()
        .with_state(services.identity.clone())
        .fallback(|| async { campus_web::not_found_page(campus_web::PLATFORM_NAME) });

    let dispatch = tower::service_fn(move |req: Request<Body>| {
        let target = match req.extensions().get::<Site>() {
            Some(Site::School(_)) => school.clone(),
            Some(Site::County) => county.clone(),
            Some(Site::Login) => login.clone(),
            Some(Site::Platform) | None => platform.clone(),
        };
        async move { Ok::<_, Infallible>(target.oneshot(req).await.into_response()) }
    });
    let sites = tower::ServiceBuilder::new()
        .layer(SiteLayer::new(
            Arc::clone(&services.resolver),
            Arc::new(campus_web::render_rejection),
        ))
        .service(dispatch);

    // Probes and static assets answer on any host, before routing: load balancers probe by
    // IP, and the "unknown" and "suspended" pages need their stylesheet too.
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(campus_web::static_router())
        .with_state(services)
        .fallback_service(sites)
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
                    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    let host = req.headers().get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), host, request_id)
                }))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// Runs the configured roles until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    services: Services,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen_pool = services.listen_pool().await?;
    let invalidator = services.resolver.spawn_invalidator(listen_pool);
    let sweeper = services.identity.login_limits.spawn_sweeper();
    let maintenance = services.cfg.roles.contains(&Role::Maintenance).then(|| {
        (
            spawn_maintenance(services.clone()),
            spawn_schedule(services.clone()),
        )
    });
    let notifier = if services.cfg.roles.contains(&Role::Notify) {
        tracing::info!(
            workers = services.cfg.notify_workers,
            "notification delivery: {}",
            services.notifier.describe()
        );
        services
            .notifier
            .spawn(services.cfg.notify_workers, services.listen_pool().await?)
    } else {
        Vec::new()
    };
    let result = if services.cfg.roles.contains(&Role::Web) {
        let app = router(services.clone());
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(Into::into)
    } else {
        shutdown.await;
        Ok(())
    };
    invalidator.abort();
    sweeper.abort();
    if let Some((purge, schedule)) = maintenance {
        purge.abort();
        schedule.abort();
    }
    for n in notifier {
        n.abort();
    }
    result
}

fn spawn_maintenance(s: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick =
            tokio::time::interval(Duration::from_secs(s.cfg.maintenance_interval_secs.max(1)));
        loop {
            tick.tick().await;
            match s.platform.purge_due("maintenance").await {
                Ok(purged) if !purged.is_empty() => {
                    tracing::info!(?purged, "purged schools past their deletion grace period")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging deleted schools failed; will retry"),
            }
        }
    })
}

/// Schools' daily jobs, every `schedule_interval_secs`. Safe on any number of instances:
/// each job runs once per school and day (see `campus_school::schedule`).
fn spawn_schedule(s: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let scheduler = campus_school::schedule::Scheduler::new();
        let period = Duration::from_secs(s.cfg.schedule_interval_secs.max(1));
        // The first look one period after start, not at once: a fleet restarting together
        // does not look at every school in the same instant.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = scheduler.tick(&s.db, chrono::Utc::now()).await {
                tracing::warn!(error = %e, "reading the school registry for scheduled jobs failed; will retry");
            }
        }
    })
}
