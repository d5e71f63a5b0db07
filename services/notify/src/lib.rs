//! Notification fan-out: the one send interface every module uses ([`send`]), the in-app
//! inbox it writes in the caller's transaction, the transactional outbox for the other
//! channels (email over SMTP, SMS and WeChat through a provider webhook), and the workers
//! that deliver them durably, fairly between schools, and at most once per recipient and
//! channel.
//!
//! Like the school crate, everything school-side runs inside a [`campus_tenant::SchoolTx`];
//! the only shared tables are the workers' doorbell, `public.notify_rings` (appended by the
//! schools' transactions) and `public.notify_queue` (kept by the workers).

pub mod admin;
pub mod channels;
pub mod guard;
pub mod metrics;
mod model;
pub mod queue;
pub mod render;
pub mod secret;
mod send;
pub mod smtp;
pub mod worker;

pub use model::{Audience, Category, Channel, Lane, Language, Message, Recipient};
pub use send::{
    send, send_each_to_guardians, send_each_to_people, unread, PersonMessage, PupilMessage,
};
