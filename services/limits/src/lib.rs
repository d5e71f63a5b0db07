//! Protection of the schools from each other and from floods: a per-school request rate
//! from each school's plan (or its own override), a per-person rate on school hosts, and
//! per-address rates on the routes worth attacking (sign-in, join and invitation forms,
//! gate device ingest). All in memory on each instance, with governor's GCRA; rejections
//! are `429` with `Retry-After` and `RateLimit-*` headers, a friendly page for browsers
//! and JSON for API clients.
//!
//! With several web instances behind a load balancer each enforces the limits on its own
//! share of the traffic, so a school's effective limit is the plan's times the number of
//! instances; plans are written per instance (see ARCHITECTURE.md).

pub mod client;
pub mod keyed;
pub mod labels;
mod layer;
mod reject;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use campus_tenant::TenantId;
use sha2::{Digest, Sha256};

pub use client::TrustedProxies;
pub use keyed::{Denied, KeyedLimits, Rate};
pub use labels::RequestLabels;
pub use layer::{LimitLayer, LimitService};
pub use reject::Limit;

/// The limits that are the same for every school (the per-school rate comes from the
/// school's plan).
#[derive(Clone, Debug)]
pub struct Settings {
    /// Requests per second (and burst) of one signed-in person on one school host.
    pub person: Rate,
    /// Requests per minute (and burst) from one client address to one site's sign-in,
    /// join and invitation routes.
    pub forms: Rate,
    /// Requests per second (and burst) from one client address to one school's gate
    /// ingest endpoint (devices of one school often share an address).
    pub gate: Rate,
    /// Whose `X-Forwarded-For` is believed.
    pub proxies: TrustedProxies,
    /// The name of the session cookie that identifies a signed-in person.
    pub session_cookie: &'static str,
}

/// The sensitive route classes with a per-address limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RouteClass {
    Forms,
    Gate,
}

impl RouteClass {
    /// Sign-in (with its second-factor step), password resets, joining and invitations on
    /// any site; gate ingest on schools.
    pub fn of(method: &http::Method, path: &str) -> Option<Self> {
        if path == "/api/v1/gate/events" && method == http::Method::POST {
            Some(Self::Gate)
        } else if ((path == "/login"
            || path == "/login/2fa"
            || path.starts_with("/password/reset"))
            && method == http::Method::POST)
            || path.starts_with("/join/")
            || path.starts_with("/invite/")
            || path == "/invitation"
        {
            Some(Self::Forms)
        } else {
            None
        }
    }
}

type PersonKey = (TenantId, [u8; 16]);
type AddressKey = (i64, IpAddr, RouteClass);

pub(crate) struct Inner {
    pub(crate) settings: Settings,
    pub(crate) schools: KeyedLimits<TenantId>,
    pub(crate) people: KeyedLimits<PersonKey>,
    pub(crate) addresses: KeyedLimits<AddressKey>,
    pub(crate) rejected: prometheus::IntCounterVec,
}

/// Every limiter of this instance; cheap to clone.
#[derive(Clone)]
pub struct Limits {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits")
            .field("settings", &self.inner.settings)
            .field("tracked", &self.tracked())
            .finish()
    }
}

impl Limits {
    /// Creates the limiters and registers `campus_rate_limited_total` in `registry`.
    pub fn new(settings: Settings, registry: &prometheus::Registry) -> prometheus::Result<Self> {
        let rejected = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "campus_rate_limited_total",
                "Requests refused with 429, by school (slug, or - for no school) and limit (school, person, forms, gate)",
            ),
            &["school", "limit"],
        )?;
        registry.register(Box::new(rejected.clone()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                schools: KeyedLimits::default(),
                people: KeyedLimits::default(),
                addresses: KeyedLimits::default(),
                rejected,
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The per-school check on its own (used by the layer, and by benchmarks).
    pub fn check_school(&self, school: TenantId, rate: Rate) -> Result<(), Denied> {
        self.inner.schools.check(&school, rate)
    }

    /// Forgets idle keys in every limiter.
    pub fn sweep(&self) {
        self.inner.schools.sweep();
        self.inner.people.sweep();
        self.inner.addresses.sweep();
    }

    /// Sweeps every `every` for as long as the returned task runs.
    pub fn spawn_sweeper(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                me.sweep();
            }
        })
    }

    /// Keys tracked right now: (schools, people, addresses).
    pub fn tracked(&self) -> (usize, usize, usize) {
        (
            self.inner.schools.len(),
            self.inner.people.len(),
            self.inner.addresses.len(),
        )
    }
}

/// A short digest of a session token: the limiter must not keep the token itself.
pub(crate) fn person_key(token: &str) -> [u8; 16] {
    let digest = Sha256::digest(token.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_routes_are_classified() {
        use http::Method;
        assert_eq!(
            RouteClass::of(&Method::POST, "/login"),
            Some(RouteClass::Forms)
        );
        assert_eq!(RouteClass::of(&Method::GET, "/login"), None);
        assert_eq!(
            RouteClass::of(&Method::POST, "/login/2fa"),
            Some(RouteClass::Forms)
        );
        assert_eq!(
            RouteClass::of(&Method::POST, "/password/reset/email"),
            Some(RouteClass::Forms)
        );
        assert_eq!(
            RouteClass::of(&Method::GET, "/join/abc"),
            Some(RouteClass::Forms)
        );
        assert_eq!(
            RouteClass::of(&Method::POST, "/invite/abc"),
            Some(RouteClass::Forms)
        );
        assert_eq!(
            RouteClass::of(&Method::POST, "/api/v1/gate/events"),
            Some(RouteClass::Gate)
        );
        assert_eq!(
            RouteClass::of(&Method::POST, "/password/reset"),
            Some(RouteClass::Forms)
        );
        assert_eq!(
            RouteClass::of(&Method::POST, "/invitation"),
            Some(RouteClass::Forms)
        );
        assert_eq!(RouteClass::of(&Method::GET, "/notices"), None);
    }
}
