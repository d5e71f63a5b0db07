//! The county IT centre's admin API (`/admin/v1`), guarded by bearer tokens stored hashed,
//! described by the OpenAPI document at `/api/openapi.json`. Terraform's `restapi`
//! provider drives `PUT/GET/PATCH/DELETE /admin/v1/tenants/{slug}`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use campus_tenant::lifecycle::{Invitation, Onboarded, SchoolPatch, SchoolSpec};
use campus_tenant::registry::{self, Plan};
use campus_tenant::{Hostname, Slug, Tenant, TenantError, TenantStatus};
use serde::{Deserialize, Deserializer};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::{ApiError, ErrorBody};
use crate::runtime::Services;

/// The name of the token that authorised a request, recorded in the audit log.
#[derive(Debug)]
pub struct AdminActor(pub String);

impl FromRequestParts<Services> for AdminActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Services) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <admin token>`; create one with `campus admin-token create`"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 200)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <admin token>`")
            })?;
        match crate::admin_tokens::verify(&state.pool, token).await? {
            Some(name) => Ok(Self(format!("token:{name}"))),
            None => Err(ApiError::unauthorized(
                "this admin token is unknown or revoked",
            )),
        }
    }
}

/// Body of `PUT /admin/v1/tenants/{slug}`: the whole desired state of a school.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutTenant {
    /// Full name, e.g. 青川县信义小学.
    pub name: String,
    /// Plan code (`small`, `standard`, `large`); defaults to `standard`.
    #[serde(default = "default_plan")]
    pub plan: String,
    /// Extra host names, e.g. `www.xinyi-school.cn`.
    #[serde(default)]
    pub hostnames: Vec<String>,
}

fn default_plan() -> String {
    "standard".into()
}

/// `Some(None)` for an explicit JSON `null`, `None` for an absent field.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WantedStatus {
    Active,
    Suspended,
}

/// Body of `PATCH /admin/v1/tenants/{slug}`: only the fields present change.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchTenant {
    pub name: Option<String>,
    pub plan: Option<String>,
    pub hostnames: Option<Vec<String>>,
    /// Requests per second override; `null` returns to the plan's value.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub requests_per_second: Option<Option<i32>>,
    /// Burst override; `null` returns to the plan's value.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub burst: Option<Option<i32>>,
    /// Concurrent database transactions per instance override (1–1000; at most the pool
    /// size less one is used); `null` returns to the plan's value.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>)]
    pub db_concurrency: Option<Option<i32>>,
    /// `suspended` to suspend, `active` to resume.
    pub status: Option<WantedStatus>,
    pub suspended_reason: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// Include soft-deleted schools.
    #[serde(default)]
    pub include_deleted: bool,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SuspendBody {
    pub reason: Option<String>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct TenantList {
    pub tenants: Vec<Tenant>,
}

fn path_slug(raw: &str) -> Result<Slug, ApiError> {
    Slug::parse(raw).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no school with slug {raw:?}"),
        )
    })
}

fn hostnames(raw: &[String]) -> Result<Vec<Hostname>, ApiError> {
    if raw.len() > 20 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_hostname",
            "at most 20 extra hostnames per school",
        ));
    }
    raw.iter()
        .map(|h| {
            if h.contains(':') {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_hostname",
                    format!("hostname {h:?} must not include a port"),
                ));
            }
            Hostname::parse(h).map_err(|e| {
                TenantError::Hostname {
                    host: h.clone(),
                    source: e,
                }
                .into()
            })
        })
        .collect()
}

#[utoipa::path(get, path = "/admin/v1/tenants", tag = "tenants", params(ListQuery),
    responses((status = 200, body = TenantList), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn list_tenants(
    State(s): State<Services>,
    _actor: AdminActor,
    Query(q): Query<ListQuery>,
) -> Result<Json<TenantList>, ApiError> {
    let tenants = registry::list(&s.pool)
        .await?
        .into_iter()
        .filter(|t| q.include_deleted || t.status != TenantStatus::Deleted)
        .collect();
    Ok(Json(TenantList { tenants }))
}

#[utoipa::path(get, path = "/admin/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path, description = "The school's slug")),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn get_tenant(
    State(s): State<Services>,
    _actor: AdminActor,
    Path(slug): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    let slug = path_slug(&slug)?;
    Ok(Json(registry::get(&s.pool, &slug).await?))
}

#[utoipa::path(put, path = "/admin/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path, description = "3–30 of a–z, 0–9 and single hyphens, starting with a letter")),
    request_body = PutTenant,
    responses(
        (status = 201, description = "Created: the school's schema, role, storage prefix and first admin invitation exist", body = Onboarded),
        (status = 200, description = "Already existed; brought in line with the body", body = Onboarded),
        (status = 409, description = "A hostname belongs to another school, or the school is deleted", body = ErrorBody),
        (status = 422, description = "Invalid slug, name, plan or hostname", body = ErrorBody),
        (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn put_tenant(
    State(s): State<Services>,
    AdminActor(actor): AdminActor,
    Path(slug): Path<String>,
    body: Result<Json<PutTenant>, JsonRejection>,
) -> Result<Response, ApiError> {
    let slug = Slug::parse(&slug).map_err(TenantError::from)?;
    let Json(body) = body?;
    let spec = SchoolSpec {
        slug,
        name: body.name,
        plan: body.plan,
        hostnames: hostnames(&body.hostnames)?,
    };
    let done = s.platform.onboard(&spec, &actor).await?;
    let status = if done.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(done)).into_response())
}

#[utoipa::path(patch, path = "/admin/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path)), request_body = PatchTenant,
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn patch_tenant(
    State(s): State<Services>,
    AdminActor(actor): AdminActor,
    Path(slug): Path<String>,
    body: Result<Json<PatchTenant>, JsonRejection>,
) -> Result<Json<Tenant>, ApiError> {
    let slug = path_slug(&slug)?;
    let Json(body) = body?;
    let patch = SchoolPatch {
        name: body.name,
        plan: body.plan,
        hostnames: body.hostnames.as_deref().map(hostnames).transpose()?,
        requests_per_second: body.requests_per_second,
        burst: body.burst,
        db_concurrency: body.db_concurrency,
    };
    let has_fields = patch.name.is_some()
        || patch.plan.is_some()
        || patch.hostnames.is_some()
        || patch.requests_per_second.is_some()
        || patch.burst.is_some()
        || patch.db_concurrency.is_some();
    let mut tenant = if has_fields {
        s.platform.update(&slug, &patch, &actor).await?
    } else {
        registry::get(&s.pool, &slug).await?
    };
    match body.status {
        Some(WantedStatus::Suspended) => {
            tenant = s
                .platform
                .suspend(&slug, body.suspended_reason, &actor)
                .await?
        }
        Some(WantedStatus::Active) if tenant.status != TenantStatus::Active => {
            tenant = s.platform.resume(&slug, &actor).await?
        }
        _ => {}
    }
    Ok(Json(tenant))
}

#[utoipa::path(delete, path = "/admin/v1/tenants/{slug}", tag = "tenants",
    params(("slug" = String, Path)),
    responses((status = 202, description = "Soft-deleted; purged after the grace period (`purge_after`) unless resumed", body = Tenant),
        (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn delete_tenant(
    State(s): State<Services>,
    AdminActor(actor): AdminActor,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let slug = path_slug(&slug)?;
    let current = registry::get(&s.pool, &slug).await?;
    // Deleting twice is not an error: Terraform and scripts retry.
    let tenant = if current.status == TenantStatus::Deleted {
        current
    } else {
        s.platform.delete(&slug, &actor).await?
    };
    Ok((StatusCode::ACCEPTED, Json(tenant)).into_response())
}

#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/suspend", tag = "tenants",
    params(("slug" = String, Path)), request_body = SuspendBody,
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn suspend_tenant(
    State(s): State<Services>,
    AdminActor(actor): AdminActor,
    Path(slug): Path<String>,
    body: Option<Json<SuspendBody>>,
) -> Result<Json<Tenant>, ApiError> {
    let slug = path_slug(&slug)?;
    let reason = body.and_then(|Json(b)| b.reason);
    Ok(Json(s.platform.suspend(&slug, reason, &actor).await?))
}

#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/resume", tag = "tenants",
    params(("slug" = String, Path)),
    responses((status = 200, body = Tenant), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn resume_tenant(
    State(s): State<Services>,
    AdminActor(actor): AdminActor,
    Path(slug): Path<String>,
) -> Result<Json<Tenant>, ApiError> {
    let slug = path_slug(&slug)?;
    Ok(Json(s.platform.resume(&slug, &actor).await?))
}

#[utoipa::path(post, path = "/admin/v1/tenants/{slug}/invitations", tag = "tenants",
    params(("slug" = String, Path)),
    responses((status = 201, description = "A new school-admin invitation link (shown once)", body = Invitation),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn invite(
    State(s): State<Services>,
    AdminActor(actor): AdminActor,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let slug = path_slug(&slug)?;
    let inv = s.platform.new_admin_invitation(&slug, &actor).await?;
    Ok((StatusCode::CREATED, Json(inv)).into_response())
}

#[utoipa::path(get, path = "/admin/v1/plans", tag = "plans",
    responses((status = 200, body = Vec<Plan>), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn list_plans(
    State(s): State<Services>,
    _actor: AdminActor,
) -> Result<Json<Vec<Plan>>, ApiError> {
    Ok(Json(registry::plans(&s.pool).await?))
}

/// `GET /admin/v1/storage`: every school's storage used against its plan's quota, fullest
/// first (the files service keeps the figures in `public.storage_usage`).
#[utoipa::path(get, path = "/admin/v1/storage", tag = "plans",
    responses((status = 200, body = Vec<campus_files::quota::SchoolUsage>), (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn storage(
    State(s): State<Services>,
    _actor: AdminActor,
) -> Result<Json<Vec<campus_files::quota::SchoolUsage>>, ApiError> {
    Ok(Json(
        campus_files::quota::usage_all(&s.pool)
            .await
            .map_err(TenantError::from)?,
    ))
}

/// Body of `PATCH /admin/v1/plans/{code}`: only the limits present change.
#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PatchPlan {
    /// Requests per second per school per instance (1–100000).
    pub requests_per_second: Option<i32>,
    /// Requests allowed at once above that rate (1–100000).
    pub burst: Option<i32>,
    /// Concurrent database transactions per school per instance (1–1000).
    pub db_concurrency: Option<i32>,
}

#[utoipa::path(patch, path = "/admin/v1/plans/{code}", tag = "plans",
    params(("code" = String, Path, description = "Plan code, e.g. standard")),
    request_body = PatchPlan,
    responses((status = 200, body = Plan), (status = 422, description = "Unknown plan, or a limit that is zero, negative or absurd", body = ErrorBody),
        (status = 401, body = ErrorBody)),
    security(("admin_token" = [])))]
pub async fn patch_plan(
    State(s): State<Services>,
    AdminActor(actor): AdminActor,
    Path(code): Path<String>,
    body: Result<Json<PatchPlan>, JsonRejection>,
) -> Result<Json<Plan>, ApiError> {
    let Json(body) = body?;
    if body.requests_per_second.is_none() && body.burst.is_none() && body.db_concurrency.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "give at least one of requests_per_second, burst, db_concurrency",
        ));
    }
    let patch = campus_tenant::lifecycle::PlanPatch {
        requests_per_second: body.requests_per_second,
        burst: body.burst,
        db_concurrency: body.db_concurrency,
    };
    Ok(Json(s.platform.update_plan(&code, &patch, &actor).await?))
}

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "County IT centre admin token (`campus admin-token create`)",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "County Campus Cloud admin API", description = "Onboard, change, suspend, resume and delete schools. 县域智慧校园云平台管理接口。"),
    paths(list_tenants, get_tenant, put_tenant, patch_tenant, delete_tenant, suspend_tenant, resume_tenant, invite, list_plans, patch_plan, storage),
    components(schemas(Tenant, TenantStatus, campus_tenant::registry::Limits, Onboarded, Invitation, Plan, PatchPlan, PutTenant, PatchTenant, WantedStatus, SuspendBody, TenantList, ErrorBody)),
    modifiers(&SecurityAddon),
    tags((name = "tenants", description = "Schools on the platform"), (name = "plans", description = "Plans and their limits"))
)]
pub struct ApiDoc;

pub fn router() -> Router<Services> {
    Router::new()
        .route("/admin/v1/tenants", get(list_tenants))
        .route(
            "/admin/v1/tenants/{slug}",
            get(get_tenant)
                .put(put_tenant)
                .patch(patch_tenant)
                .delete(delete_tenant),
        )
        .route("/admin/v1/tenants/{slug}/suspend", post(suspend_tenant))
        .route("/admin/v1/tenants/{slug}/resume", post(resume_tenant))
        .route("/admin/v1/tenants/{slug}/invitations", post(invite))
        .route("/admin/v1/plans", get(list_plans))
        .merge(crate::county_notices::router())
        .merge(crate::notify_queues::router())
        .merge(crate::dashboard_api::router())
        .route("/admin/v1/storage", get(storage))
        .route("/admin/v1/plans/{code}", axum::routing::patch(patch_plan))
        .route(
            "/api/openapi.json",
            get(|| async {
                let mut doc = ApiDoc::openapi()
                    .merge_from(campus_files::FilesApi::openapi())
                    .merge_from(campus_county::ApiDoc::openapi());
                doc.merge(crate::county_notices::NoticesDoc::openapi());
                doc.merge(crate::notify_queues::QueuesDoc::openapi());
                doc.merge(crate::dashboard_api::DashboardDoc::openapi());
                Json(doc)
            }),
        )
        // Admin bodies are small; anything larger is a mistake or an attack.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(64 * 1024))
}
