//! The education bureau's dashboard (教育局数据看板): every school in one place, as
//! aggregates only.
//!
//! `rollup` keeps `public.metric_*` current: triggers in each school's schema mark the days
//! a change touches, and a pass recomputes those days inside the school's own scope and
//! writes counts per day, class and category — never a pupil's row. `indicators` defines
//! what is shown as numerator ÷ denominator with how it aggregates; `query` and `report`
//! read the rollups (and nothing else) into tables with small cells withheld for the
//! bureau; `web`, `export` and `api` serve them as pages, .xlsx/.csv and JSON on the county
//! host, and the same pages for a school's own leaders on the school's host.
//!
//! This crate never opens a school's scope to answer a request: bureau requests read only
//! shared tables, so a bureau account can never obtain a school's search_path.

pub mod access;
pub mod api;
pub mod assets;
pub mod export;
pub mod indicators;
pub mod query;
pub mod report;
pub mod rollup;
pub mod suppress;
pub mod web;

use axum::extract::FromRef;
use axum::routing::get;
use axum::Router;
use campus_identity::IdentityState;
use campus_tenant::Db;

/// What the dashboard's handlers need.
#[derive(Clone, Debug)]
pub struct CountyState {
    /// Only `db.shared()` is used by handlers (rollup tables in `public`).
    pub db: Db,
    pub identity: IdentityState,
    /// Pupil counts below this (but above zero) are withheld from the bureau; 0 shows all.
    pub min_cell: i64,
}

impl FromRef<CountyState> for IdentityState {
    fn from_ref(s: &CountyState) -> Self {
        s.identity.clone()
    }
}

/// Routes of the county host: the dashboard, its exports and JSON API (bureau only).
pub fn county_router() -> Router<CountyState> {
    Router::new()
        .route("/dashboard", get(web::overview))
        .route("/dashboard/schools/{slug}", get(web::school_page))
        .route("/dashboard/export/{file}", get(web::county_export))
        .route(
            "/dashboard/export/{slug}/{file}",
            get(web::county_school_export),
        )
        .route("/api/v1/county/overview", get(api::overview))
        .route("/api/v1/county/schools/{slug}", get(api::school))
}

/// Routes of a school's host: the same school page for the school's own leaders.
pub fn school_router() -> Router<CountyState> {
    Router::new()
        .route("/dashboard", get(web::own_school_page))
        .route("/dashboard/export/{file}", get(web::own_school_export))
        .route("/api/v1/dashboard", get(api::own_school))
}

/// Static assets, served on any host (the chart library).
pub fn assets_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    assets::router()
}

pub use api::ApiDoc;
