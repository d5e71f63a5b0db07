//! The dashboard as JSON for other systems, with the same tables and the same small-cell
//! rule as the pages; described in the platform's OpenAPI document.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::{AuthRejection, CurrentUser};
use campus_tenant::routing::CurrentSchool;
use utoipa::OpenApi;

use crate::access::{self, Answer};
use crate::query::{BadFilter, Filter, FilterParams, School};
use crate::report::{
    self, Cell, Comparison, Labelled, Overview, SchoolLine, SchoolReport, Trend, UnitLine,
};
use crate::web::{school_by_slug, today};
use crate::CountyState;

/// `{code, message}` as every JSON error of the platform.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(ErrorBody {
            code: code.into(),
            message: message.into(),
        }),
    )
        .into_response()
}

fn bad(b: BadFilter) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        "bad_filter",
        &format!("{} {}", b.0, b.1),
    )
}

fn unavailable(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "reading the dashboard failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "服务暂时不可用，请稍后重试。Temporarily unavailable.",
    )
}

/// Every school of the county (or of the filter's group sets) with every indicator over
/// the period, ranked by `metric`, and the county as a whole. Bureau accounts only.
#[utoipa::path(get, path = "/api/v1/county/overview", tag = "dashboard",
    params(FilterParams),
    responses((status = 200, body = Overview), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn overview(
    State(st): State<CountyState>,
    user: Result<CurrentUser, AuthRejection>,
    Query(p): Query<FilterParams>,
) -> Response {
    if let Err(r) = access::bureau(user, Answer::Json) {
        return r.into_response();
    }
    overview_json(&st, &p).await
}

/// The overview's JSON once the caller may read it (a bureau account here, an admin token
/// on `/admin/v1/dashboard/overview`).
pub async fn overview_json(st: &CountyState, p: &FilterParams) -> Response {
    let f = match Filter::parse(p, today()) {
        Ok(f) => f,
        Err(b) => return bad(b),
    };
    let metric = match p.metric.as_deref().filter(|m| !m.is_empty()) {
        None => crate::indicators::by_code("attendance_rate").expect("defined"),
        Some(m) => match crate::indicators::by_code(m) {
            Some(i) => i,
            None => {
                return error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown_metric",
                    "没有这个指标。Unknown indicator code.",
                )
            }
        },
    };
    match report::overview(st.db.shared(), &f, metric, st.min_cell).await {
        Ok(o) => Json(o).into_response(),
        Err(e) => unavailable(e),
    }
}

/// One school: indicators beside the county, trends, grades, classes, leave by kind and
/// outcome, active users by role and data-quality checks. Bureau accounts only.
#[utoipa::path(get, path = "/api/v1/county/schools/{slug}", tag = "dashboard",
    params(("slug" = String, Path, description = "The school's code"), FilterParams),
    responses((status = 200, body = SchoolReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn school(
    State(st): State<CountyState>,
    user: Result<CurrentUser, AuthRejection>,
    Path(slug): Path<String>,
    Query(p): Query<FilterParams>,
) -> Response {
    if let Err(r) = access::bureau(user, Answer::Json) {
        return r.into_response();
    }
    school_json(&st, &slug, &p).await
}

/// One school's JSON once the caller may read it (see [`overview_json`]).
pub async fn school_json(st: &CountyState, slug: &str, p: &FilterParams) -> Response {
    let f = match Filter::parse(p, today()) {
        Ok(f) => f,
        Err(b) => return bad(b),
    };
    let school = match school_by_slug(st, slug).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return error(
                StatusCode::NOT_FOUND,
                "no_school",
                "本县没有这个学校代码。No active school has this code.",
            )
        }
        Err(e) => return unavailable(e),
    };
    match report::school(st.db.shared(), school, &f, st.min_cell).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => unavailable(e),
    }
}

/// The school page's data for this host's school, for its leaders (principal, school
/// admin), without small-cell suppression.
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard",
    params(FilterParams),
    responses((status = 200, body = SchoolReport), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn own_school(
    State(st): State<CountyState>,
    school: CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    Query(p): Query<FilterParams>,
) -> Response {
    if let Err(r) = access::school_leader(user, Answer::Json) {
        return r.into_response();
    }
    let f = match Filter::parse(&p, today()) {
        Ok(f) => f,
        Err(b) => return bad(b),
    };
    match crate::web::own_report(&st, &school, &f).await {
        Ok(r) => Json(r).into_response(),
        Err(e) => unavailable(e),
    }
}

#[derive(OpenApi)]
#[openapi(
    paths(overview, school, own_school),
    components(schemas(Overview, SchoolReport, SchoolLine, UnitLine, Comparison, Labelled, Trend, Cell, School, Filter, ErrorBody)),
    tags((name = "dashboard", description = "The education bureau's dashboard: aggregates only, small pupil counts withheld. 教育局数据看板。"))
)]
pub struct ApiDoc;
