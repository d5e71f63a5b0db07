//! The school's audit log (`audit_log` in the school's schema): reads of sensitive pupil
//! fields, roster imports and exports, gate devices added and revoked, calendar and
//! attendance-time changes, organisation changes. Rows are written in the same
//! transaction as the
//! read or change they record, so there is never an unlogged read.

use campus_identity::CurrentUser;
use campus_tenant::SchoolTx;

/// Sensitive pupil fields whose every read is logged.
pub const SENSITIVE_FIELDS: &[&str] = &["id_number", "blood_type", "medical_notes"];

/// What happened, as stored in `audit_log.action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Someone was shown a pupil's ID number, blood type or medical notes.
    SensitiveRead,
    RosterImport,
    RosterExport,
    JoinApproved,
    JoinRejected,
    NoticeSent,
    GateDeviceAdded,
    GateDeviceRevoked,
    /// Days off, make-up school days or terms changed.
    CalendarChanged,
    /// The register deadline or the gate arrival cut-off changed.
    AttendanceSettingsChanged,
    /// A grade or class created, renamed or retired, or a teaching assignment changed
    /// (`detail.change` says which).
    OrganisationChanged,
    NotifySettingsChanged,
    NotifyRetried,
}

impl Action {
    pub fn code(self) -> &'static str {
        match self {
            Self::SensitiveRead => "sensitive_read",
            Self::RosterImport => "roster_import",
            Self::RosterExport => "roster_export",
            Self::JoinApproved => "join_approved",
            Self::JoinRejected => "join_rejected",
            Self::NoticeSent => "notice_sent",
            Self::GateDeviceAdded => "gate_device_added",
            Self::GateDeviceRevoked => "gate_device_revoked",
            Self::CalendarChanged => "calendar_changed",
            Self::AttendanceSettingsChanged => "attendance_settings_changed",
            Self::OrganisationChanged => "organisation_changed",
            Self::NotifySettingsChanged => "notify_settings_changed",
            Self::NotifyRetried => "notify_retried",
        }
    }
}

/// Appends one row to the school's audit log inside `tx`.
pub async fn record(
    tx: &mut SchoolTx,
    actor: &CurrentUser,
    action: Action,
    subject: Option<&str>,
    detail: serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into audit_log (actor_account_id, actor_name, action, subject, detail)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(actor.account_id)
    .bind(&actor.display_name)
    .bind(action.code())
    .bind(subject)
    .bind(detail)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
