//! Notices from the county (教育局). The county stores a notice once; the notification
//! workers hand it to each school through [`receive`], which makes it a notice of the
//! school's own — recipients expanded set-based in the school's schema, inbox rows and the
//! outbox job written by `notify::send` — so receipts, reminders and the Excel export work
//! as for any notice. The school's copy carries the county notice's id under a unique
//! constraint: receiving the same county notice twice adds nothing.

use campus_tenant::SchoolTx;
use chrono::{DateTime, Utc};

use super::{recipient_select, Mode, Target};
use crate::notify::{self, Audience, Category, Message};

/// Who in each school a county notice reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountyAudience {
    Guardians,
    Staff,
    Everyone,
}

impl CountyAudience {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "guardians" => Some(Self::Guardians),
            "staff" => Some(Self::Staff),
            "everyone" => Some(Self::Everyone),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Guardians => "guardians",
            Self::Staff => "staff",
            Self::Everyone => "everyone",
        }
    }

    fn targets(self) -> Vec<(Target, Audience)> {
        let guardians = (Target::AllGuardians, Audience::AllGuardians);
        let staff = (Target::AllStaff, Audience::AllStaff);
        match self {
            Self::Guardians => vec![guardians],
            Self::Staff => vec![staff],
            Self::Everyone => vec![guardians, staff],
        }
    }
}

/// Confirmation a county notice may ask for (a drawn signature is a school matter).
pub fn parse_mode(s: &str) -> Option<Mode> {
    match s {
        "read" => Some(Mode::Read),
        "confirm" => Some(Mode::Confirm),
        _ => None,
    }
}

/// A county notice as the schools receive it; `body_html` is already sanitised.
#[derive(Clone, Debug)]
pub struct CountyNotice<'a> {
    pub id: i64,
    pub sender_name: &'a str,
    pub title: &'a str,
    pub body_html: &'a str,
    pub audience: CountyAudience,
    pub mode: Mode,
    pub deadline: Option<DateTime<Utc>>,
}

/// The school's copy of a county notice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    pub notice_id: i64,
    pub recipients: u64,
}

/// Makes `n` a notice of the transaction's school, or finds the copy made before.
pub async fn receive(tx: &mut SchoolTx, n: &CountyNotice<'_>) -> sqlx::Result<Received> {
    let id: Option<i64> = sqlx::query_scalar(
        "insert into notices (sender_account_id, sender_name, title, body_html, audience, mode, deadline, county_notice_id)
         values (null, $1, $2, $3, $4, $5, $6, $7)
         on conflict (county_notice_id) do nothing
         returning id",
    )
    .bind(n.sender_name)
    .bind(n.title)
    .bind(n.body_html)
    .bind(serde_json::json!({"kind": "county", "audience": n.audience.code()}))
    .bind(n.mode.code())
    .bind(n.deadline)
    .bind(n.id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = id else {
        let (notice_id, recipients): (i64, i64) = sqlx::query_as(
            "select n.id, (select count(*) from notice_recipients r where r.notice_id = n.id)
               from notices n where n.county_notice_id = $1",
        )
        .bind(n.id)
        .fetch_one(&mut **tx)
        .await?;
        return Ok(Received {
            notice_id,
            recipients: recipients as u64,
        });
    };
    let link = format!("/notices/{id}");
    let source = format!("notice:{id}");
    let preview: String = ammonia::Builder::empty()
        .clean(n.body_html)
        .to_string()
        .chars()
        .take(200)
        .collect();
    let mut recipients = 0;
    for (target, audience) in &n.audience.targets() {
        let sql = format!(
            "insert into notice_recipients (notice_id, recipient_kind, recipient_id, class_id)
             select $1, r.k, r.i, r.c from ({}) as r(k, i, c)
             on conflict do nothing",
            recipient_select(target)
        );
        recipients += sqlx::query(&sql)
            .bind(id)
            .bind(Vec::<i64>::new())
            .bind(Vec::<String>::new())
            .execute(&mut **tx)
            .await?
            .rows_affected();
        // Guardians and staff are different recipients; the keys differ only so that each
        // audience gets its own outbox job.
        let dedupe = match audience {
            Audience::AllStaff => format!("{source}:staff"),
            _ => source.clone(),
        };
        notify::send(
            tx,
            audience,
            &Message {
                category: Category::Notices,
                title: n.title,
                body: &preview,
                link: Some(&link),
                source: &source,
                dedupe_key: Some(&dedupe),
                en: None,
            },
        )
        .await?;
    }
    Ok(Received {
        notice_id: id,
        recipients,
    })
}

/// How far one school's copy has been read and confirmed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    pub recipients: i64,
    pub read: i64,
    pub confirmed: i64,
}

/// Counts of the school's copy of a county notice (aggregates only: no names leave).
pub async fn progress(tx: &mut SchoolTx, school_notice_id: i64) -> sqlx::Result<Progress> {
    let (recipients, read, confirmed): (i64, i64, i64) = sqlx::query_as(
        "select count(*), count(read_at), count(confirmed_at)
           from notice_recipients where notice_id = $1",
    )
    .bind(school_notice_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Progress {
        recipients,
        read,
        confirmed,
    })
}
