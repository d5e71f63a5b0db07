//! Everything that keeps schools apart.
//!
//! - [`slug`]: the validated names that become schemas, roles, prefixes and hosts;
//! - [`registry`]: the `public.tenants` registry;
//! - [`migrate`]: versioned, checksummed migrations for `public` and every school schema;
//! - [`lifecycle`]: onboarding, suspension, soft deletion, purge, invitations;
//! - [`scope`]: the school-scoped transaction, the only door to a school's tables;
//! - [`affinity`]: connections kept for the school they last served;
//! - [`routing`]: host → school resolution as a tower layer, cached and invalidated by
//!   Postgres notifications;
//! - [`store`]: per-school object storage that refuses keys outside the school's prefix;
//! - [`export`]: a school's schema dump and files, written to a folder.

pub mod affinity;
pub mod error;
pub mod export;
pub mod lifecycle;
pub mod migrate;
pub mod registry;
pub mod routing;
pub mod scope;
pub mod slug;
pub mod store;

pub use error::{Result, TenantError};
pub use registry::{SharedTenant, Tenant, TenantId, TenantStatus};
pub use routing::{CurrentSchool, Site};
pub use scope::{Db, Plans, SchoolTx, Wake};
pub use slug::{Hostname, RolePrefix, Slug};
pub use store::{ObjectKey, ObjectStore, TenantStore};
