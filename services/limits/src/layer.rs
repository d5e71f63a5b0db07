//! The tower layer that applies the limits. It sits behind the tenant layer (it needs the
//! [`Site`]) and in front of the site routers; a refused request costs a cached host
//! lookup and a few atomic operations, never a database round trip.

use std::task::{Context, Poll};

use axum::body::Body;
use axum::response::Response;
use futures::future::{Either, Ready};
use http::Request;
use tower::{Layer, Service};

use campus_tenant::{Site, TenantId};

use crate::keyed::Rate;
use crate::labels::RequestLabels;
use crate::reject::{too_many, Limit};
use crate::{person_key, Limits, RouteClass};

#[derive(Clone, Debug)]
pub struct LimitLayer {
    limits: Limits,
}

impl LimitLayer {
    pub fn new(limits: Limits) -> Self {
        Self { limits }
    }
}

impl<S> Layer<S> for LimitLayer {
    type Service = LimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LimitService {
            inner,
            limits: self.limits.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LimitService<S> {
    inner: S,
    limits: Limits,
}

fn session_token<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

impl Limits {
    /// `Err` with the refusing limit when `req` is over one of them. Order: the address
    /// limit of sensitive routes (aimed at attackers), the person's, then the school's.
    fn admit(&self, req: &Request<Body>) -> Result<(), (Limit, crate::Denied)> {
        let inner = &self.inner;
        let school = match req.extensions().get::<Site>() {
            Some(Site::School(t)) => Some(t),
            _ => None,
        };
        let site_id = school.map_or(0, |t| t.id.0);
        if let Some(class) = RouteClass::of(req.method(), req.uri().path()) {
            let ip = inner
                .settings
                .proxies
                .client_ip_of(req.headers(), req.extensions());
            if let Some(ip) = ip {
                let (rate, limit) = match class {
                    RouteClass::Forms => (inner.settings.forms, Limit::Forms),
                    RouteClass::Gate => (inner.settings.gate, Limit::Gate),
                };
                inner
                    .addresses
                    .check(&(site_id, ip, class), rate)
                    .map_err(|d| (limit, d))?;
            }
        }
        let Some(school) = school else {
            return Ok(());
        };
        if let Some(token) = session_token(req.headers(), inner.settings.session_cookie) {
            inner
                .people
                .check(&(school.id, person_key(token)), inner.settings.person)
                .map_err(|d| (Limit::Person, d))?;
        }
        let own = Rate::per_second(
            u32::try_from(school.limits.requests_per_second).unwrap_or(1),
            u32::try_from(school.limits.burst).unwrap_or(1),
        );
        inner
            .schools
            .check(&TenantId(school.id.0), own)
            .map_err(|d| (Limit::School, d))
    }
}

impl<S> Service<Request<Body>> for LimitService<S>
where
    S: Service<Request<Body>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let (slug, name) = match req.extensions().get::<Site>() {
            Some(Site::School(t)) => (Some(t.slug.as_str().to_owned()), t.name.clone()),
            _ => (None, campus_web::PLATFORM_NAME.to_owned()),
        };
        if let Some(slug) = &slug {
            tracing::Span::current().record("school", slug.as_str());
            if let Some(labels) = req.extensions().get::<RequestLabels>() {
                labels.set_school(slug);
            }
        }
        match self.limits.admit(&req) {
            Ok(()) => Either::Right(self.inner.call(req)),
            Err((limit, denied)) => {
                self.limits
                    .inner
                    .rejected
                    .with_label_values(&[slug.as_deref().unwrap_or("-"), limit.as_str()])
                    .inc();
                tracing::debug!(
                    limit = limit.as_str(),
                    wait_ms = denied.wait.as_millis() as u64,
                    "rate limited"
                );
                let resp = too_many(limit, denied, &name, req.headers(), req.uri().path());
                Either::Left(futures::future::ready(Ok(resp)))
            }
        }
    }
}
