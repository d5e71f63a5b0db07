//! The `campus` binary's library: configuration, the CLI, the admin API, the demo, and the
//! composition of every service into one HTTP application and its workers.

pub mod admin;
pub mod admin_tokens;
pub mod app;
pub mod cli;
pub mod config;
mod county_notice_pages;
pub mod county_notices;
mod dashboard_api;
pub mod demo;
pub mod error;
pub mod logging;
pub mod metrics;
pub mod notify_queues;
mod pages;
pub mod runtime;
pub mod security_headers;
pub mod tools;

pub use config::Config;
pub use runtime::Services;
