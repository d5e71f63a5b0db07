//! A school's own pages and data. For now: the school's home page and badge, pupil
//! records with audited reveals of sensitive fields, the audit log, roster import and
//! export, joining the school by link or QR code with review (`join`), attendance
//! (`attendance`) and leave (`leave`), notices with signed receipts (`notices`), the in-app
//! inbox (`inbox`), home–school messages (`messages`), the principal's mailbox (`mailbox`),
//! gate entry and exit with absence alerts (`gate`), visitor passes (`visits`), the school
//! calendar (`calendar`), the daily scheduled jobs (`schedule`), the parent's "today"
//! page (`today`), and the demo data generator.
//!
//! Every query in this crate runs inside a [`campus_tenant::SchoolTx`]: this crate never
//! builds a search_path or names a schema.

mod attendance;
pub mod audit;
mod audit_search;
pub mod calendar;
mod delivery;
pub mod demo;
pub mod gate;
mod home;
pub use home::ProfileCache;
mod inbox;
pub mod join;
mod leave;
mod mailbox;
mod messages;
pub mod notices;
pub mod notify;
mod organisation;
mod pupils;
pub mod roster;
pub mod schedule;
mod today;
mod ui;
mod visits;

use axum::extract::FromRef;
use axum::routing::{get, post};
use axum::Router;
use campus_identity::IdentityState;
use campus_tenant::{Db, ObjectStore};

/// What the school's handlers need.
#[derive(Clone, Debug)]
pub struct SchoolState {
    pub db: Db,
    pub store: ObjectStore,
    /// Who is asking (sessions, memberships, permissions).
    pub identity: IdentityState,
    /// Seals a school's own SMS/WeChat provider secret (None: not configured).
    pub sealing: Option<campus_notify::secret::SealingKey>,
    /// What a school's own SMS/WeChat provider address may be (no internal addresses).
    pub webhook_guard: campus_notify::guard::WebhookGuard,
    /// Gate devices' keys, so a device's request skips a lookup.
    pub gate_devices: gate::DeviceCache,
    /// Schools' home-page profiles and figures, kept for half a minute.
    pub profiles: ProfileCache,
}

impl FromRef<SchoolState> for IdentityState {
    fn from_ref(s: &SchoolState) -> Self {
        s.identity.clone()
    }
}

/// The school's kinds of object that own files, and who may see each (for the files
/// service's downloads and previews).
pub fn file_owners() -> campus_files::Owners {
    campus_files::Owners::default()
        .with("notice", std::sync::Arc::new(notices::NoticeFiles))
        .with("leave", std::sync::Arc::new(leave::LeaveFiles))
}

/// Routes served on a school's own host.
pub fn router() -> Router<SchoolState> {
    Router::new()
        .route("/", get(home::home))
        .route("/badge.svg", get(home::badge))
        .route("/api/v1/school", get(home::profile_json))
        .route("/pupils", get(pupils::list))
        .route("/pupils/{id}", get(pupils::record))
        .route("/api/v1/pupils/{id}", get(pupils::record_json))
        .route("/admin/audit", get(audit_search::page))
        .route("/api/v1/audit", get(audit_search::json))
        .route("/attendance", get(attendance::index))
        .route("/attendance/summary", get(attendance::summary))
        .route("/attendance/missing", get(attendance::missing))
        .route("/attendance/missing/remind", post(attendance::remind))
        .route(
            "/attendance/{class_id}",
            get(attendance::roll_call).post(attendance::save),
        )
        .route("/api/v1/attendance/summary", get(attendance::summary_json))
        .route(
            "/api/v1/attendance/{class_id}/{day}/{period}",
            get(attendance::register_json).put(attendance::put_register_json),
        )
        .merge(organisation::routes())
        .merge(leave::routes())
        .merge(delivery::routes())
        .merge(roster::router())
        .merge(join::routes())
        .merge(notices::router())
        .merge(inbox::router())
        .merge(messages::router())
        .merge(mailbox::router())
        .merge(gate::routes())
        .merge(visits::routes())
        .merge(calendar::routes())
        .merge(today::routes())
}
