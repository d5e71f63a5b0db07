//! Black-box and integration tests of the platform: real Postgres (the server on
//! 127.0.0.1:5432, or `CAMPUS_TEST_DATABASE_URL`), real PgBouncer, the embedded S3 server
//! through the real AWS SDK, and the real `campus` binary. Each test gets its own database
//! and its own Postgres role prefix, so tests run in parallel without seeing each other.

mod helpers;

mod admin_api;
mod attendance;
mod browser;
mod calendar;
mod cli;
mod county;
mod county_notices;
mod demo;
mod fanout;
mod files;
mod gate;
mod identity;
mod isolation;
mod join;
mod leave;
mod limits;
mod mailbox;
mod messages;
mod migrations;
mod notices;
mod notify;
mod observability;
mod organisation;
mod passwords;
mod pgbouncer;
mod phones;
mod postgres_tls;
mod preview_sandbox;
mod pupils;
mod roster;
mod routing;
mod schedule;
mod second_factor;
mod sso;
mod storage;
mod tidy;
mod today;
mod users;
mod webdriver;
