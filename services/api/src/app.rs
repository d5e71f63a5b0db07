//! Composition of the HTTP application: health probes on any host, then the tenant router
//! sends each request to the school, county or platform router according to its host.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
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
use crate::security_headers::{self, SecurityHeaders};
use crate::{admin, metrics, pages};

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

pub(crate) fn county_state(s: &Services) -> campus_county::CountyState {
    campus_county::CountyState {
        db: s.db.clone(),
        identity: s.identity.clone(),
        min_cell: s.cfg.dashboard_min_cell,
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
            webhook_guard: services.webhook_guard(),
            gate_devices: Default::default(),
            profiles: Default::default(),
        })
        .merge(identity.clone())
        .merge(campus_identity::school_admin_router().with_state(services.identity.clone()))
        .merge(campus_files::router().with_state(campus_files::FilesState {
            db: services.db.clone(),
            store: services.store.clone(),
            identity: services.identity.clone(),
            owners: campus_school::file_owners(),
        }))
        .merge(campus_county::school_router().with_state(county_state(&services)))
        .route_layer(from_fn(metrics::record_route))
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
            .merge(crate::county_notice_pages::router())
            .merge(admin::router()),
        campus_web::PLATFORM_NAME,
    )
    .with_state(services.clone())
    .merge(campus_county::county_router().with_state(county_state(&services)))
    .merge(identity)
    .route_layer(from_fn(metrics::record_route));
    let platform = with_not_found(
        Router::new()
            .route("/", get(pages::platform_home))
            .route("/metrics", get(metrics))
            .merge(admin::router())
            .route_layer(from_fn(metrics::record_route)),
        campus_web::PLATFORM_NAME,
    )
    .with_state(services.clone());

    let login = campus_identity::login_host_router()
        .with_state(services.identity.clone())
        .route_layer(from_fn(metrics::record_route))
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
        // After the host is known (limits are per school), before any router runs.
        .layer(campus_limits::LimitLayer::new(services.limits.clone()))
        .service(dispatch);

    // Probes and static assets answer on any host, before routing: load balancers probe by
    // IP, and the "unknown" and "suspended" pages need their stylesheet too.
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(campus_web::static_router())
        .merge(campus_county::assets_router())
        .route_layer(from_fn(metrics::record_route))
        .with_state(services.clone())
        .fallback_service(sites)
        .layer(
            tower::ServiceBuilder::new()
                .layer(from_fn_with_state(
                    services.http_metrics.clone(),
                    metrics::track,
                ))
                .layer(from_fn_with_state(
                    Arc::new(SecurityHeaders::new(
                        &services.identity.urls.login(),
                        services.cfg.public_scheme == "https",
                    )),
                    security_headers::add,
                ))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
}

/// What an instance without the `web` role serves on its address: the probes and the
/// Prometheus metrics of the roles it runs (notification counters, preview and rollup
/// figures), which a web instance would otherwise be the only one to show.
pub fn worker_router(services: Services) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(services)
}

/// The span every log line of a request is written in. `school` is filled in once the
/// host is resolved, `route` when a router matches, `person` when the handler learns who
/// is signed in; sqlx's query events (`RUST_LOG=sqlx=debug`) fall inside it too.
fn request_span(req: &Request<Body>) -> tracing::Span {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    };
    let request_id = header("x-request-id");
    let host = header(http::header::HOST.as_str());
    tracing::info_span!(
        "request",
        method = %req.method(),
        uri = %crate::logging::loggable_path(req.uri().path()),
        host,
        request_id,
        school = tracing::field::Empty,
        route = tracing::field::Empty,
        person = tracing::field::Empty,
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
    let limit_sweeper = services.limits.spawn_sweeper(Duration::from_secs(60));
    let sampler = match metrics::spawn_queue_sampler(&services.metrics, services.pool.clone()) {
        Ok(task) => Some(task),
        Err(e) => {
            tracing::warn!(error = %e, "notification queue gauges not registered");
            None
        }
    };
    let maintenance = services.cfg.roles.contains(&Role::Maintenance).then(|| {
        (
            spawn_maintenance(services.clone()),
            spawn_schedule(services.clone()),
            spawn_rollups(services.clone()),
        )
    });
    let notifier = if services.cfg.roles.contains(&Role::Notify) {
        tracing::info!(
            workers = services.cfg.notify_workers,
            "notification delivery: {}",
            services.notifier.describe()
        );
        let mut handles = services
            .notifier
            .spawn(services.cfg.notify_workers, services.listen_pool().await?);
        handles.extend(crate::county_notices::spawn(
            services.clone(),
            services.cfg.notify_workers.min(2),
            services.listen_pool().await?,
        ));
        handles
    } else {
        Vec::new()
    };
    let previewers = if services.cfg.roles.contains(&Role::Preview) {
        spawn_previews(&services).await?
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
        tracing::info!(
            address = %listener.local_addr()?,
            "no web role: serving /healthz, /readyz and /metrics only"
        );
        axum::serve(listener, worker_router(services.clone()))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Into::into)
    };
    invalidator.abort();
    sweeper.abort();
    limit_sweeper.abort();
    if let Some(s) = sampler {
        s.abort();
    }
    if let Some((purge, schedule, rollups)) = maintenance {
        purge.abort();
        schedule.abort();
        rollups.abort();
    }
    for n in notifier.into_iter().chain(previewers) {
        n.abort();
    }
    result
}

/// The preview workers, after saying which kinds of file this instance can preview.
async fn spawn_previews(s: &Services) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    use campus_files::preview::{sandbox::Sandbox, worker::Previewer, Tools};
    let settings = s.cfg.preview_settings();
    let isolation = settings.sandbox;
    // Trying bwrap starts a process: off the async threads.
    let tools = tokio::task::spawn_blocking(move || Tools::detect(isolation)).await?;
    let line = tools.describe();
    match &tools.sandbox {
        Sandbox::Unusable(_) => tracing::warn!(
            workers = settings.workers,
            "{line} (install bubblewrap and allow user namespaces: see README)"
        ),
        Sandbox::Off => tracing::warn!(workers = settings.workers, "{line}"),
        Sandbox::Bwrap(_) if !tools.can(campus_files::sniff::Kind::Office) => tracing::warn!(
            workers = settings.workers,
            "{line} (install poppler-utils and LibreOffice: see README)"
        ),
        Sandbox::Bwrap(_) => tracing::info!(workers = settings.workers, "{line}"),
    }
    let previewer = Arc::new(Previewer::new(
        s.db.clone(),
        s.store.clone(),
        tools,
        settings,
    )?);
    Ok(previewer.spawn(s.listen_pool().await?))
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
            sweep_uploads(&s).await;
        }
    })
}

/// Abandoned resumable uploads of every active school (see `campus_files::sweep_expired`).
async fn sweep_uploads(s: &Services) {
    let schools = match campus_tenant::registry::list(&s.pool).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "listing schools to sweep abandoned uploads failed; will retry");
            return;
        }
    };
    for school in schools
        .iter()
        .filter(|t| t.status == campus_tenant::TenantStatus::Active)
    {
        match campus_files::sweep_expired(&s.db, &s.store, school).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(school = %school.slug, swept = n, "abandoned uploads removed"),
            Err(e) => {
                tracing::warn!(school = %school.slug, error = ?e, "sweeping abandoned uploads failed; will retry")
            }
        }
    }
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

/// The county dashboard's rollups, every `metrics_interval_secs`: each school's days
/// changed since the last pass are recomputed (see `campus_county::rollup`). Safe on any
/// number of instances: a school is passed by one of them at a time.
fn spawn_rollups(s: Services) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs(s.cfg.metrics_interval_secs.max(1));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match campus_county::rollup::tick(&s.db).await {
                Ok(passes) => {
                    for p in passes {
                        match p.result {
                            Ok(pass) if pass.days > 0 => {
                                tracing::debug!(school = %p.school.slug, days = pass.days, lag_ms = ?pass.lag_ms, "dashboard rollups updated")
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(school = %p.school.slug, error = %e, "dashboard rollups failed; other schools go on, this one is retried")
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the school registry for the dashboard rollups failed; will retry")
                }
            }
        }
    })
}
