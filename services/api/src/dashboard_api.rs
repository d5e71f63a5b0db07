//! The county dashboard's JSON for other systems (a provincial platform, a report
//! generator) with an admin token instead of a bureau account's session: the same
//! aggregates, the same small-cell rule, the same filters as `/api/v1/county/…` on the
//! county host.

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use campus_county::query::FilterParams;
use campus_county::report::{Overview, SchoolReport};
use utoipa::OpenApi;

use crate::admin::AdminActor;
use crate::error::ErrorBody;
use crate::runtime::Services;

#[utoipa::path(get, path = "/admin/v1/dashboard/overview", tag = "dashboard",
    params(FilterParams),
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn overview(
    State(s): State<Services>,
    _actor: AdminActor,
    Query(p): Query<FilterParams>,
) -> Response {
    campus_county::api::overview_json(&crate::app::county_state(&s), &p).await
}

#[utoipa::path(get, path = "/admin/v1/dashboard/schools/{slug}", tag = "dashboard",
    params(("slug" = String, Path, description = "The school's code"), FilterParams),
    responses((status = 200, body = SchoolReport), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn school(
    State(s): State<Services>,
    _actor: AdminActor,
    Path(slug): Path<String>,
    Query(p): Query<FilterParams>,
) -> Response {
    campus_county::api::school_json(&crate::app::county_state(&s), &slug, &p).await
}

#[derive(OpenApi)]
#[openapi(paths(overview, school))]
pub struct DashboardDoc;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/admin/v1/dashboard/overview", get(overview))
        .route("/admin/v1/dashboard/schools/{slug}", get(school))
}
