//! The send interface. One call writes the in-app inbox rows — set-based, one
//! `INSERT … SELECT` whatever the number of recipients — and, when the school delivers
//! by email, SMS or WeChat, one outbox job for the workers, both in the caller's
//! transaction: a notification exists exactly when the change that caused it commits.

use campus_tenant::SchoolTx;

use crate::model::{Audience, Message, Recipient};

/// Puts `msg` in the inbox of everyone in `audience` and, if the school delivers on other
/// channels, queues it for them (a repeated `dedupe_key` is the same job) and rings the
/// workers' doorbell: one statement. Returns how many inbox rows were added.
pub async fn send(tx: &mut SchoolTx, audience: &Audience, msg: &Message<'_>) -> sqlx::Result<u64> {
    let key = match msg.dedupe_key {
        Some(k) => format!("k:{k}"),
        None => format!("u:{}", hex::encode(rand::random::<[u8; 16]>())),
    };
    let lane = msg.category.lane();
    let audience = serde_json::to_value(audience).expect("an audience serialises");
    let (added, rang): (i64, Option<i32>) = sqlx::query_as(
        "with inbox as (
           insert into inbox_items (recipient_kind, recipient_id, category, priority, title, body, link, source, dedupe_key, title_en, body_en)
           select r.k, r.i, $1, $2, $3, $4, $5, $6, $8, $9, $10
             from notify_audience($7) as r(k, i)
           on conflict (recipient_kind, recipient_id, dedupe_key) do nothing
           returning 1),
         j as (
           insert into notify_jobs (idempotency_key, category, lane, audience, title, body, link, source, title_en, body_en)
           select $11, $1, $12, $7, $3, $4, $5, $6, $9, $10
             from notify_settings where id = 1 and (email_enabled or sms_enabled or wechat_enabled)
           on conflict (idempotency_key) do nothing
           returning id)
         select (select count(*) from inbox),
                (select public.notify_ring($13, $12, now()) from (select 1 from j limit 1) rung)",
    )
    .bind(msg.category.code())
    .bind(msg.category.priority())
    .bind(msg.title)
    .bind(msg.body)
    .bind(msg.link)
    .bind(msg.source)
    .bind(audience)
    .bind(msg.dedupe_key)
    .bind(msg.en.map(|e| e.0))
    .bind(msg.en.map(|e| e.1))
    .bind(&key)
    .bind(lane.0)
    .bind(tx.tenant_id().0)
    .fetch_one(&mut **tx)
    .await?;
    if rang == Some(1) {
        tx.wake_after_commit();
    }
    Ok(added as u64)
}

/// One message about one pupil, for that pupil's guardians (see [`send_each_to_guardians`]).
#[derive(Clone, Debug)]
pub struct PupilMessage<'a> {
    pub student_id: i64,
    pub title: &'a str,
    pub body: &'a str,
    pub link: Option<&'a str>,
    pub source: &'a str,
    /// Required: a batch is retried as a whole, and the key keeps each message single.
    pub dedupe_key: &'a str,
    /// English title and body (see [`Message::en`](crate::Message)).
    pub en: Option<(&'a str, &'a str)>,
}

/// Many messages of one category, each to the guardians of its own pupil — a gate
/// device's batch of arrivals — in one statement whatever the batch size: the inbox rows
/// and, when the school delivers on other channels, one outbox job per message (exactly
/// what [`send`] with [`Audience::GuardiansOfStudents`] writes for each), then one
/// doorbell, rung by the same statement. Returns how many inbox rows were added.
pub async fn send_each_to_guardians(
    tx: &mut SchoolTx,
    category: crate::model::Category,
    messages: &[PupilMessage<'_>],
) -> sqlx::Result<u64> {
    if messages.is_empty() {
        return Ok(0);
    }
    let students: Vec<i64> = messages.iter().map(|m| m.student_id).collect();
    let t = Columns::of(
        messages
            .iter()
            .map(|m| (m.title, m.body, m.link, m.source, m.dedupe_key, m.en)),
    );
    let lane = category.lane();
    // Each pupil's guardians by a sub-select rather than a join: an index lookup per pupil
    // whatever the batch's size, so the plan Postgres keeps for the statement (the gate's
    // transactions force generic plans) is as good as one made for the values.
    let (added, rang): (i64, Option<i32>) = sqlx::query_as(
        "with m as (
           select * from unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $10::text[], $11::text[])
                      as m(sid, title, body, link, source, dedupe, title_en, body_en)),
         inbox as (
           insert into inbox_items (recipient_kind, recipient_id, category, priority, title, body, link, source, dedupe_key, title_en, body_en)
           select distinct 'guardian', g.id, $1, $2, m.title, m.body, m.link, m.source, m.dedupe, m.title_en, m.body_en
             from m cross join lateral unnest(array(
                    select sg.guardian_id from student_guardians sg where sg.student_id = m.sid)) as g(id)
           on conflict (recipient_kind, recipient_id, dedupe_key) do nothing
           returning 1),
         jobs as (
           insert into notify_jobs (idempotency_key, category, lane, audience, title, body, link, source, title_en, body_en)
           select 'k:' || m.dedupe, $1, $9,
                  jsonb_build_object('to', 'guardians_of_students', 'ids', jsonb_build_array(m.sid)),
                  m.title, m.body, m.link, m.source, m.title_en, m.body_en
             from m join notify_settings ns on ns.id = 1
            where ns.email_enabled or ns.sms_enabled or ns.wechat_enabled
           on conflict (idempotency_key) do nothing
           returning 1)
         select (select count(*) from inbox),
                (select public.notify_ring($12, $9, now()) from (select 1 from jobs limit 1) rung)",
    )
    .bind(category.code())
    .bind(category.priority())
    .bind(&students)
    .bind(&t.titles)
    .bind(&t.bodies)
    .bind(&t.links)
    .bind(&t.sources)
    .bind(&t.keys)
    .bind(lane.0)
    .bind(&t.titles_en)
    .bind(&t.bodies_en)
    .bind(tx.tenant_id().0)
    .fetch_one(&mut **tx)
    .await?;
    if rang == Some(1) {
        tx.wake_after_commit();
    }
    Ok(added as u64)
}

/// The per-message columns of a batch, bound as arrays (`unnest`) by the `send_each_*`
/// statements.
struct Columns<'a> {
    titles: Vec<&'a str>,
    bodies: Vec<&'a str>,
    links: Vec<Option<&'a str>>,
    sources: Vec<&'a str>,
    keys: Vec<&'a str>,
    titles_en: Vec<Option<&'a str>>,
    bodies_en: Vec<Option<&'a str>>,
}

type Text<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<(&'a str, &'a str)>,
);

impl<'a> Columns<'a> {
    /// From each message's (title, body, link, source, dedupe key, English wording).
    fn of(messages: impl Iterator<Item = Text<'a>>) -> Self {
        let mut c = Columns {
            titles: Vec::new(),
            bodies: Vec::new(),
            links: Vec::new(),
            sources: Vec::new(),
            keys: Vec::new(),
            titles_en: Vec::new(),
            bodies_en: Vec::new(),
        };
        for (title, body, link, source, key, en) in messages {
            c.titles.push(title);
            c.bodies.push(body);
            c.links.push(link);
            c.sources.push(source);
            c.keys.push(key);
            c.titles_en.push(en.map(|e| e.0));
            c.bodies_en.push(en.map(|e| e.1));
        }
        c
    }
}

/// One message to one person (see [`send_each_to_people`]).
#[derive(Clone, Debug)]
pub struct PersonMessage<'a> {
    pub recipient: Recipient,
    pub title: &'a str,
    pub body: &'a str,
    pub link: Option<&'a str>,
    pub source: &'a str,
    /// Required, as for [`PupilMessage`].
    pub dedupe_key: &'a str,
    pub en: Option<(&'a str, &'a str)>,
}

/// Many messages of one category, each to its own person — a summary to each head
/// teacher — in one statement whatever their number: what [`send`] with
/// [`Audience::People`] of that one person writes for each, then one doorbell. Returns how
/// many inbox rows were added.
pub async fn send_each_to_people(
    tx: &mut SchoolTx,
    category: crate::model::Category,
    messages: &[PersonMessage<'_>],
) -> sqlx::Result<u64> {
    if messages.is_empty() {
        return Ok(0);
    }
    let kinds: Vec<&str> = messages.iter().map(|m| m.recipient.kind()).collect();
    let ids: Vec<i64> = messages.iter().map(|m| m.recipient.id()).collect();
    let t = Columns::of(
        messages
            .iter()
            .map(|m| (m.title, m.body, m.link, m.source, m.dedupe_key, m.en)),
    );
    let lane = category.lane();
    let (added, rang): (i64, Option<i32>) = sqlx::query_as(
        "with m as (
           select * from unnest($3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $11::text[], $12::text[])
                      as m(kind, id, title, body, link, source, dedupe, title_en, body_en)),
         inbox as (
           insert into inbox_items (recipient_kind, recipient_id, category, priority, title, body, link, source, dedupe_key, title_en, body_en)
           select m.kind, m.id, $1, $2, m.title, m.body, m.link, m.source, m.dedupe, m.title_en, m.body_en
             from m
           on conflict (recipient_kind, recipient_id, dedupe_key) do nothing
           returning 1),
         jobs as (
           insert into notify_jobs (idempotency_key, category, lane, audience, title, body, link, source, title_en, body_en)
           select 'k:' || m.dedupe, $1, $10,
                  jsonb_build_object('to', 'people', 'ids', jsonb_build_array(jsonb_build_object('kind', m.kind, 'id', m.id))),
                  m.title, m.body, m.link, m.source, m.title_en, m.body_en
             from m join notify_settings ns on ns.id = 1
            where ns.email_enabled or ns.sms_enabled or ns.wechat_enabled
           on conflict (idempotency_key) do nothing
           returning 1)
         select (select count(*) from inbox),
                (select public.notify_ring($13, $10, now()) from (select 1 from jobs limit 1) rung)",
    )
    .bind(category.code())
    .bind(category.priority())
    .bind(&kinds)
    .bind(&ids)
    .bind(&t.titles)
    .bind(&t.bodies)
    .bind(&t.links)
    .bind(&t.sources)
    .bind(&t.keys)
    .bind(lane.0)
    .bind(&t.titles_en)
    .bind(&t.bodies_en)
    .bind(tx.tenant_id().0)
    .fetch_one(&mut **tx)
    .await?;
    if rang == Some(1) {
        tx.wake_after_commit();
    }
    Ok(added as u64)
}

/// Unread inbox rows of these recipients.
pub async fn unread(tx: &mut SchoolTx, who: &[Recipient]) -> sqlx::Result<i64> {
    let (kinds, ids): (Vec<&str>, Vec<i64>) = who.iter().map(|p| (p.kind(), p.id())).unzip();
    sqlx::query_scalar(
        "select count(*) from inbox_items i
           join unnest($1::text[], $2::bigint[]) as r(k, id) on i.recipient_kind = r.k and i.recipient_id = r.id
          where i.read_at is null",
    )
    .bind(kinds)
    .bind(ids)
    .fetch_one(&mut **tx)
    .await
}
