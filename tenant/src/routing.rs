//! Host → school routing: a tower layer that turns the `Host` of every request into a
//! [`Site`] — a school, the county dashboard, or the platform itself — before any handler
//! runs.
//!
//! Resolutions (including "no such school") are cached with moka for a TTL, so a known or
//! unknown host costs no database round trip once cached. Every change to the registry
//! fires `pg_notify('campus_tenant_changed')` from a trigger; each instance listens and
//! drops its cache, so a suspension or a new hostname is seen everywhere within moments.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use futures::future::Either;
use http::request::Parts;
use http::{Request, StatusCode};
use sqlx::postgres::{PgListener, PgPool};
use tokio::task::JoinHandle;
use tower::{Layer, Service};

use crate::registry::{self, SharedTenant, TenantStatus};
use crate::slug::Hostname;

/// The Postgres channel the registry triggers notify on.
pub const CHANNEL: &str = "campus_tenant_changed";

/// What a request's host names.
#[derive(Clone, Debug)]
pub enum Site {
    School(SharedTenant),
    /// `county.<base domain>`: the education bureau's dashboard. Never a school.
    County,
    /// The base domain itself, `admin.<base domain>`, bare IPs and `localhost`: the admin
    /// API, health checks and the platform's landing page. Never a school.
    Platform,
    /// `login.<base domain>`: the central sign-in host that hands each school's host its
    /// own session (single sign-on). Never a school.
    Login,
}

#[derive(Clone, Debug)]
enum Resolution {
    Site(Site),
    Suspended(SharedTenant),
    Unknown,
}

impl Resolution {
    fn into_site(self, host: Hostname) -> Result<Site, Rejection> {
        match self {
            Self::Site(site) => Ok(site),
            Self::Suspended(t) => Err(Rejection::Suspended(t)),
            Self::Unknown => Err(Rejection::UnknownHost(host)),
        }
    }
}

/// Why a request was answered by the router itself.
#[derive(Debug)]
pub enum Rejection {
    /// Missing, non-UTF-8, oversized or malformed `Host`.
    BadHost(String),
    UnknownHost(Hostname),
    Suspended(SharedTenant),
    /// The registry could not be read.
    Unavailable,
}

/// Turns a [`Rejection`] into a response (the web crate supplies friendly pages).
pub type RenderRejection = Arc<dyn Fn(Rejection) -> Response + Send + Sync>;

/// Plain-text answers, used where no page renderer is configured.
pub fn plain_rejection(r: Rejection) -> Response {
    match r {
        Rejection::BadHost(why) => {
            (StatusCode::BAD_REQUEST, format!("bad Host header: {why}")).into_response()
        }
        Rejection::UnknownHost(h) => {
            (StatusCode::NOT_FOUND, format!("no school at {h}")).into_response()
        }
        Rejection::Suspended(t) => {
            (StatusCode::FORBIDDEN, format!("{} is suspended", t.name)).into_response()
        }
        Rejection::Unavailable => {
            (StatusCode::SERVICE_UNAVAILABLE, "try again shortly").into_response()
        }
    }
}

/// Resolves hosts to sites, with a cache in front of the registry.
pub struct Resolver {
    pool: PgPool,
    base_domain: String,
    county_host: String,
    admin_host: String,
    login_host: String,
    /// Read synchronously on the hot path, so a cached request costs no extra future.
    cache: moka::sync::Cache<Hostname, Resolution>,
    /// Bumped by every invalidation; a lookup that raced with one does not cache its
    /// (possibly stale) answer.
    generation: AtomicU64,
    db_lookups: AtomicU64,
    /// School hosts answered from the cache (with `db_lookups`, the cache hit rate).
    cache_hits: AtomicU64,
    listening: AtomicBool,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("base_domain", &self.base_domain)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// `ttl` bounds how stale an entry can be if a notification is ever missed;
    /// `capacity` bounds memory when someone sprays random host names at us.
    pub fn new(pool: PgPool, base_domain: &str, ttl: Duration, capacity: u64) -> Arc<Self> {
        let base_domain = base_domain.trim_end_matches('.').to_ascii_lowercase();
        Arc::new(Self {
            pool,
            county_host: format!("county.{base_domain}"),
            admin_host: format!("admin.{base_domain}"),
            login_host: format!("login.{base_domain}"),
            base_domain,
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            generation: AtomicU64::new(0),
            db_lookups: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        })
    }

    pub fn base_domain(&self) -> &str {
        &self.base_domain
    }

    /// How many times the registry was queried (cache misses); tests and metrics use it.
    pub fn db_lookups(&self) -> u64 {
        self.db_lookups.load(Ordering::Relaxed)
    }

    /// How many school (non-fixed) hosts were answered from the cache.
    pub fn cache_hits(&self) -> u64 {
        self.cache_hits.load(Ordering::Relaxed)
    }

    /// Whether the change listener is subscribed right now.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    /// Forgets every cached resolution.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.cache.invalidate_all();
    }

    fn fixed(&self, host: &Hostname) -> Option<Site> {
        let h = host.as_str();
        if h == self.county_host {
            Some(Site::County)
        } else if h == self.login_host {
            Some(Site::Login)
        } else if h == self.base_domain || h == self.admin_host || h == "localhost" || host.is_ip()
        {
            Some(Site::Platform)
        } else {
            None
        }
    }

    /// The answer without a database round trip, if there is one: a fixed platform host or a
    /// cached resolution.
    fn cached(&self, host: &Hostname) -> Option<Resolution> {
        if let Some(site) = self.fixed(host) {
            return Some(Resolution::Site(site));
        }
        let hit = self.cache.get(host);
        if hit.is_some() {
            self.cache_hits.fetch_add(1, Ordering::Relaxed);
        }
        hit
    }

    /// Asks the registry and caches the answer (unless the registry changed meanwhile).
    async fn lookup(&self, host: &Hostname) -> Result<Resolution, Rejection> {
        let generation = self.generation.load(Ordering::SeqCst);
        self.db_lookups.fetch_add(1, Ordering::Relaxed);
        let tenant = registry::find_by_host(&self.pool, host, &self.base_domain)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, host = %host, "tenant lookup failed");
                Rejection::Unavailable
            })?;
        let resolution = match tenant {
            Some(t) if t.status == TenantStatus::Active => {
                Resolution::Site(Site::School(Arc::new(t)))
            }
            Some(t) if t.status == TenantStatus::Suspended => Resolution::Suspended(Arc::new(t)),
            _ => Resolution::Unknown,
        };
        if self.generation.load(Ordering::SeqCst) == generation {
            self.cache.insert(host.clone(), resolution.clone());
        }
        Ok(resolution)
    }

    async fn resolve(&self, host: &Hostname) -> Result<Resolution, Rejection> {
        match self.cached(host) {
            Some(hit) => Ok(hit),
            None => self.lookup(host).await,
        }
    }

    /// Resolves a request's host to a [`Site`] or the reason it cannot be served.
    pub async fn site_for(&self, parts_host: Option<&str>) -> Result<Site, Rejection> {
        let raw = parts_host.ok_or_else(|| Rejection::BadHost("the request has no Host".into()))?;
        let host = Hostname::parse(raw).map_err(|e| Rejection::BadHost(e.to_string()))?;
        self.site_for_host(host).await
    }

    /// [`Resolver::site_for`] with the host already parsed.
    pub async fn site_for_host(&self, host: Hostname) -> Result<Site, Rejection> {
        self.resolve(&host).await?.into_site(host)
    }

    /// Listens for registry changes on a dedicated connection (not through PgBouncer in
    /// transaction mode, where LISTEN does not work) and drops the cache on each one. On a
    /// lost connection it also drops the cache, since notifications may have been missed,
    /// and reconnects with back-off.
    pub fn spawn_invalidator(self: &Arc<Self>, listen_pool: PgPool) -> JoinHandle<()> {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            loop {
                match this.listen_once(&listen_pool).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %e, "tenant change listener lost its connection; reconnecting")
                    }
                }
                this.listening.store(false, Ordering::Relaxed);
                this.invalidate_all();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        })
    }

    async fn listen_once(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.ignore_pool_close_event(true);
        listener.listen(CHANNEL).await?;
        // Anything that changed while we were not listening is unknown: start clean.
        self.invalidate_all();
        self.listening.store(true, Ordering::Relaxed);
        loop {
            // `try_recv` returns Ok(None) when the connection dropped.
            match listener.try_recv().await? {
                Some(n) => {
                    tracing::debug!(
                        tenant = n.payload(),
                        "tenant registry changed; dropping host cache"
                    );
                    self.invalidate_all();
                }
                None => return Ok(()),
            }
        }
    }
}

/// The tower layer that puts a [`Site`] into every request's extensions.
#[derive(Clone)]
pub struct SiteLayer {
    resolver: Arc<Resolver>,
    render: RenderRejection,
}

impl SiteLayer {
    pub fn new(resolver: Arc<Resolver>, render: RenderRejection) -> Self {
        Self { resolver, render }
    }
}

impl<S> Layer<S> for SiteLayer {
    type Service = SiteService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SiteService {
            inner,
            resolver: Arc::clone(&self.resolver),
            render: Arc::clone(&self.render),
        }
    }
}

#[derive(Clone)]
pub struct SiteService<S> {
    inner: S,
    resolver: Arc<Resolver>,
    render: RenderRejection,
}

fn host_of<B>(req: &Request<B>) -> Option<&str> {
    // HTTP/2 carries the host in the URI authority; HTTP/1.1 in the Host header.
    match req.headers().get(http::header::HOST) {
        Some(v) => v.to_str().ok(),
        None => req.uri().authority().map(|a| a.as_str()),
    }
}

type Respond<E> = futures::future::Ready<Result<Response, E>>;
type Lookup<E> = Pin<Box<dyn Future<Output = Result<Response, E>> + Send>>;

impl<S> Service<Request<Body>> for SiteService<S>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    /// Cached hosts go straight to the inner service (no allocation, no extra future);
    /// only a cache miss pays for a boxed database lookup.
    type Future = Either<Respond<S::Error>, Either<S::Future, Lookup<S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let host = match host_of(&req) {
            Some(h) => Hostname::parse(h).map_err(|e| Rejection::BadHost(e.to_string())),
            None if req.headers().contains_key(http::header::HOST) => Err(Rejection::BadHost(
                "the Host header is not valid text".into(),
            )),
            None => Err(Rejection::BadHost("the request has no Host".into())),
        };
        let host = match host {
            Ok(h) => h,
            Err(rejection) => {
                return Either::Left(futures::future::ready(Ok((self.render)(rejection))))
            }
        };
        if let Some(hit) = self.resolver.cached(&host) {
            return match hit.into_site(host) {
                Ok(site) => {
                    req.extensions_mut().insert(site);
                    Either::Right(Either::Left(self.inner.call(req)))
                }
                Err(rejection) => {
                    Either::Left(futures::future::ready(Ok((self.render)(rejection))))
                }
            };
        }
        // The clone that was polled ready is the one we must call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let resolver = Arc::clone(&self.resolver);
        let render = Arc::clone(&self.render);
        Either::Right(Either::Right(Box::pin(async move {
            match resolver.site_for_host(host).await {
                Ok(site) => {
                    req.extensions_mut().insert(site);
                    inner.call(req).await
                }
                Err(rejection) => Ok(render(rejection)),
            }
        })))
    }
}

/// Extractor for handlers that serve a school: the school this request is for.
#[derive(Clone, Debug)]
pub struct CurrentSchool(pub SharedTenant);

impl<S: Send + Sync> FromRequestParts<S> for CurrentSchool {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Site>() {
            Some(Site::School(t)) => Ok(Self(Arc::clone(t))),
            _ => Err((StatusCode::NOT_FOUND, "not a school address")),
        }
    }
}
