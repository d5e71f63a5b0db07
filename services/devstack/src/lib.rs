//! Real infrastructure on one machine, for `campus demo` and for tests: a private Postgres
//! cluster started from the machine's own Postgres binaries, an S3 server embedded in the
//! process, PgBouncer in transaction-pooling mode, an SMTP server and an SMS provider sink on loopback.
//!
//! Nothing here stands in for a component: the platform talks to these exactly as it talks
//! to managed Postgres, AWS S3 and a production PgBouncer.

pub mod pgbouncer;
pub mod postgres;
pub mod s3;
pub mod sms;
pub mod smtp;
mod user;

pub use pgbouncer::PgBouncer;
pub use postgres::{PgBinaries, PrivatePostgres};
pub use s3::EmbeddedS3;
pub use sms::SmsSink;
pub use smtp::{Mail, SmtpSink};

/// Picks a free TCP port on 127.0.0.1 by binding port 0 and releasing it.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}
