//! The tenant crate's errors. Each variant says what a person can do about it; the API
//! layer maps them to HTTP statuses.

use crate::slug::{HostnameError, SlugError};

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error(transparent)]
    Slug(#[from] SlugError),
    #[error("hostname {host:?}: {source}")]
    Hostname { host: String, source: HostnameError },
    #[error("no school with slug {0:?}")]
    NotFound(String),
    #[error("hostname {host:?} already belongs to school {owner:?}")]
    HostnameTaken { host: String, owner: String },
    #[error("hostname {0:?} is inside the platform's base domain; a school's own subdomain is added automatically")]
    HostnameInBaseDomain(String),
    #[error("unknown plan {0:?}; see `campus tenant plans` for the plans available")]
    UnknownPlan(String),
    #[error("{0}")]
    Invalid(String),
    #[error("school {slug:?} is {status}; {hint}")]
    WrongState {
        slug: String,
        status: String,
        hint: &'static str,
    },
    #[error("school {slug:?}: migration {migration} failed: {message}")]
    Migration {
        slug: String,
        migration: String,
        message: String,
    },
    #[error("migration {name} was changed after it was applied (checksum {applied} in the database, {embedded} in this build); applied migrations must never be edited")]
    ChecksumMismatch {
        name: String,
        applied: String,
        embedded: String,
    },
    #[error("export failed: {0}")]
    Export(String),
    #[error("object storage: {0}")]
    Storage(String),
    #[error(transparent)]
    Key(#[from] crate::store::KeyError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl TenantError {
    /// True for errors caused by the caller's input rather than by the platform.
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Self::Database(_)
                | Self::Storage(_)
                | Self::Export(_)
                | Self::Migration { .. }
                | Self::ChecksumMismatch { .. }
        )
    }
}

pub type Result<T, E = TenantError> = std::result::Result<T, E>;
