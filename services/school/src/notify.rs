//! The one interface every module sends notifications through, provided by the
//! notification service (`campus-notify`): in-app inbox rows written in the caller's
//! transaction, and an outbox job for email, SMS and WeChat when the school uses them.

pub use campus_notify::{
    send, send_each_to_guardians, send_each_to_people, unread, Audience, Category, Channel,
    Message, PersonMessage, PupilMessage, Recipient,
};
