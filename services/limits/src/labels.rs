//! What a request turned out to be — its school and its route template — for the metrics
//! recorded around the whole stack. The outermost layer puts an empty [`RequestLabels`]
//! into the request; the limits layer fills in the school once the host is resolved, and
//! each site router fills in the matched route (axum's `MatchedPath`), because only inside
//! the routers is the template known.

use std::sync::{Arc, OnceLock};

#[derive(Debug, Default)]
pub struct Labels {
    school: OnceLock<String>,
    route: OnceLock<String>,
}

/// Shared between the outer metrics layer and the inner layers of one request.
#[derive(Clone, Debug, Default)]
pub struct RequestLabels(pub Arc<Labels>);

impl RequestLabels {
    pub fn set_school(&self, slug: &str) {
        let _ = self.0.school.set(slug.to_owned());
    }

    pub fn set_route(&self, template: &str) {
        let _ = self.0.route.set(template.to_owned());
    }

    /// The school's slug, or `-` for requests to no school.
    pub fn school(&self) -> &str {
        self.0.school.get().map_or("-", String::as_str)
    }

    /// The route template, or `unmatched` (never the raw path: it would make a new series
    /// for every URL anyone tries).
    pub fn route(&self) -> &str {
        self.0.route.get().map_or("unmatched", String::as_str)
    }
}
