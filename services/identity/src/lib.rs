//! County-wide identity: accounts, memberships in schools, built-in roles and their module
//! permissions, sign-in with Argon2id and lockout, and server-side sessions bound to the
//! host they were issued for.
//!
//! Sign-in security: a lockout that decays ([`account`]), password change and reset by
//! a mailed link ([`passwords`]), TOTP second factors ([`second_factor`]) and single
//! sign-on bound to the browser ([`sso`]).
//!
//! Handlers learn who is asking through the [`CurrentUser`] extractor and ask it for a
//! [`Permission`]; nothing else in the platform reads session cookies or compares roles.

pub mod account;
pub mod admin;
pub mod cookies;
pub mod invitations;
pub mod limits;
pub mod login;
pub mod member;
pub mod otp;
mod pages;
pub mod password;
mod passwords;
pub mod permission;
mod reset;
pub mod second_factor;
pub mod session;
pub mod sso;
pub mod totp;
mod ui;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use campus_tenant::lifecycle::SchoolUrls;
use campus_tenant::{Hostname, Site};
use sqlx::PgPool;

pub use member::Members;
pub use password::Hasher;
pub use permission::{Permission, PermissionSet};
pub use session::SessionStore;

/// What the identity routes and the extractor need.
#[derive(Clone, Debug)]
pub struct IdentityState {
    /// Shared tables (`public`): accounts, memberships, sessions.
    pub pool: PgPool,
    pub hasher: Hasher,
    pub sessions: SessionStore,
    /// Members' roles and permissions per school (cached).
    pub members: Members,
    /// Sign-in attempts per client address and per login name.
    pub login_limits: limits::LoginLimits,
    /// Whose `X-Forwarded-For` is believed when telling a client's address.
    pub proxies: campus_limits::TrustedProxies,
    /// Mark cookies `Secure` (the platform is served over TLS).
    pub secure_cookies: bool,
    pub urls: SchoolUrls,
    /// The county's SMS channel for one-time codes and invitations (`None`: not configured).
    pub sms: Option<otp::Sms>,
    /// Mails links (email confirmation, password reset); `None` without `smtp_url`.
    pub mail: Option<campus_notify::channels::Email>,
    /// Seals TOTP secrets (`notify_secret_key`); without it they are stored unsealed but
    /// never shown after enrolment.
    pub sealing: Option<campus_notify::secret::SealingKey>,
    /// The county requires a second factor from bureau accounts.
    pub require_second_factor_bureau: bool,
}

/// Sign-in pages, served on school hosts and the county host.
pub fn router() -> Router<IdentityState> {
    Router::new()
        .route("/login", get(pages::login_form).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route(
            "/login/2fa",
            get(second_factor::pending_form).post(second_factor::pending_submit),
        )
        .route("/me", get(pages::me))
        .route(
            "/me/invitations/{id}/accept",
            post(invitations::accept_signed_in),
        )
        .route(
            "/me/invitations/{id}/decline",
            post(invitations::decline_signed_in),
        )
        .route("/password/reset", get(reset::form).post(reset::submit))
        .route(
            "/me/password",
            get(passwords::change_form).post(passwords::change_submit),
        )
        .route("/me/email", post(passwords::email_submit))
        .route("/me/email/confirm", get(passwords::email_confirm))
        .route(
            "/me/2fa",
            get(second_factor::me_form).post(second_factor::me_submit),
        )
        .route(
            "/password/reset/email",
            get(passwords::reset_form).post(passwords::reset_submit),
        )
        .route("/sso/callback", get(sso::callback))
        .route("/sso/central", get(sso::central))
}

/// User and role management, served on school hosts only.
pub fn school_admin_router() -> Router<IdentityState> {
    admin::router().route(
        "/invitation",
        get(invitations::open).post(invitations::respond),
    )
}

/// Routes of the central sign-in host `login.<base domain>`.
pub fn login_host_router() -> Router<IdentityState> {
    Router::new()
        .route("/sso/start", get(sso::start))
        .route("/sso/bind", get(sso::bind))
        .route("/sso/establish", get(sso::establish))
        .route("/password/reset", get(reset::form).post(reset::submit))
}

/// The normalised host of a request (sessions are bound to it).
pub(crate) fn request_host(parts: &Parts) -> Option<String> {
    let raw = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())?;
    Hostname::parse(raw).ok().map(|h| h.as_str().to_owned())
}

/// The value of cookie `name` in the request, if present.
pub(crate) fn cookie_value(parts_headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    parts_headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The signed-in person acting in this site: their roles here and their session.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub account_id: i64,
    pub display_name: String,
    /// Role codes in this school (or `bureau` on the county host).
    pub roles: Vec<String>,
    /// What those roles allow here (built-in and the school's custom roles).
    pub permissions: PermissionSet,
    /// Role names for display: (Chinese, English).
    pub role_names: (String, String),
    pub tenant_id: Option<i64>,
    /// The staff or guardian record in this school the membership is linked to.
    pub staff_id: Option<i64>,
    pub guardian_id: Option<i64>,
    pub csrf_token: String,
}

impl CurrentUser {
    pub fn can(&self, permission: Permission) -> bool {
        self.permissions.contains(permission)
    }

    /// `Ok` if one of the person's roles here grants `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), AuthRejection> {
        if self.can(permission) {
            Ok(())
        } else {
            Err(AuthRejection::Forbidden("您的身份没有此项权限。"))
        }
    }
}

impl CurrentUser {
    /// The header badge: name and the roles acted as here.
    pub fn badge(&self) -> campus_web::UserBadge {
        campus_web::UserBadge {
            name: self.display_name.clone(),
            roles: self.role_names.0.clone(),
            roles_en: self.role_names.1.clone(),
        }
    }
}

/// The signed-in person if there is one; pages that anyone may see use it to show who is
/// signed in (or a sign-in link).
#[derive(Clone, Debug)]
pub struct MaybeUser(pub Option<CurrentUser>);

impl MaybeUser {
    pub fn who(&self) -> campus_web::Who {
        match &self.0 {
            Some(u) => campus_web::Who::User(u.badge()),
            None => campus_web::Who::SignIn,
        }
    }
}

impl<S> FromRequestParts<S> for MaybeUser
where
    IdentityState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            CurrentUser::from_request_parts(parts, state).await.ok(),
        ))
    }
}

/// Why a request was not let through.
#[derive(Debug)]
pub enum AuthRejection {
    NotSignedIn,
    Forbidden(&'static str),
    Unavailable,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::NotSignedIn => Redirect::to("/login").into_response(),
            Self::Forbidden(why) => campus_web::message_page(
                StatusCode::FORBIDDEN,
                campus_web::PLATFORM_NAME,
                ("没有权限", why),
                ("Forbidden", "Your identity here does not allow this."),
            ),
            Self::Unavailable => campus_web::message_page(
                StatusCode::SERVICE_UNAVAILABLE,
                campus_web::PLATFORM_NAME,
                ("服务暂时不可用", "请稍后刷新重试。"),
                ("Temporarily unavailable", "Please try again in a moment."),
            ),
        }
    }
}

impl<S> FromRequestParts<S> for CurrentUser
where
    IdentityState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthRejection> {
        let st = IdentityState::from_ref(state);
        let token =
            cookie_value(&parts.headers, session::COOKIE).ok_or(AuthRejection::NotSignedIn)?;
        let host = request_host(parts).ok_or(AuthRejection::NotSignedIn)?;
        let session = st
            .sessions
            .find(&token, &host)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "session lookup failed");
                AuthRejection::Unavailable
            })?
            .ok_or(AuthRejection::NotSignedIn)?;
        // Every log line of the rest of the request names the person (the request span
        // declares the field).
        tracing::Span::current().record("person", session.account_id);
        let user = |standing: member::Standing, tenant_id| Self {
            account_id: session.account_id,
            display_name: session.display_name.clone(),
            roles: standing.roles,
            permissions: standing.permissions,
            role_names: standing.names,
            tenant_id,
            staff_id: standing.staff_id,
            guardian_id: standing.guardian_id,
            csrf_token: session.csrf_token.clone(),
        };
        match parts.extensions.get::<Site>() {
            Some(Site::School(t)) => {
                let standing = st
                    .members
                    .standing(session.account_id, t.id.0)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "membership lookup failed");
                        AuthRejection::Unavailable
                    })?
                    .ok_or(AuthRejection::Forbidden("您在本校没有身份，或身份已停用。"))?;
                Ok(user((*standing).clone(), Some(t.id.0)))
            }
            Some(Site::County) => {
                let roles: Vec<String> = session.county_role.clone().into_iter().collect();
                let names = (
                    permission::role_names(&roles),
                    permission::role_names_en(&roles),
                );
                let standing = member::Standing {
                    permissions: PermissionSet::default(),
                    names,
                    roles,
                    staff_id: None,
                    guardian_id: None,
                };
                Ok(user(standing, None))
            }
            _ => Err(AuthRejection::NotSignedIn),
        }
    }
}
