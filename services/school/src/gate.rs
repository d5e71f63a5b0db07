//! Gate entry and exit (门禁/出入校): gate devices report batches of entries and exits to
//! `POST /api/v1/gate/events`, signed with their own secret; each new event tells the pupil's
//! guardians at once. Admins add and revoke devices; guards see today's traffic; after the
//! arrival cut-off, pupils who have not come in and are not on approved leave are reported
//! to their guardians and head teacher once a day.
//!
//! A request is signed with three headers: `X-Gate-Key` (the device's key id),
//! `X-Gate-Timestamp` (unix seconds, within [`REPLAY_WINDOW_SECS`] of the server's clock)
//! and `X-Gate-Signature`, the hex HMAC-SHA256 of `"{timestamp}\n{body}"` keyed with the
//! device's secret exactly as shown when the device was created. A device's own event id
//! makes a resent event a no-op.

use std::collections::HashSet;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use campus_identity::{CurrentUser, Permission};
use campus_tenant::{CurrentSchool, Plans, SchoolTx};
use campus_web::Lang;
use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::Row;

use crate::attendance::{check_csrf, refuse, today, Refusal, TZ_SQL};
use crate::notify::{self, Category};
use crate::ui::page;
use crate::SchoolState;

/// Gate devices' ids and secrets by (school, key id), so a device's request needs no
/// lookup round trip of its own before its events are stored. A key's secret never
/// changes; whether the device is still active is checked by the statement that stores
/// the events, so a revoked device is refused at once whatever the cache holds.
#[derive(Clone)]
pub struct DeviceCache(moka::sync::Cache<(i64, String), (i64, std::sync::Arc<str>)>);

impl Default for DeviceCache {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(std::time::Duration::from_secs(600))
                .build(),
        )
    }
}

impl std::fmt::Debug for DeviceCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCache")
            .field("entries", &self.0.entry_count())
            .finish()
    }
}

/// How far a request's timestamp may be from the server's clock.
pub const REPLAY_WINDOW_SECS: i64 = 300;
/// Most events in one batch.
pub const MAX_BATCH: usize = 500;

pub(crate) fn routes() -> Router<SchoolState> {
    Router::new()
        .route("/api/v1/gate/events", post(ingest))
        .route("/gate", get(guard_page))
        .route("/admin/gate/devices", get(devices).post(create_device))
        .route("/admin/gate/devices/{id}/revoke", post(revoke_device))
        .route("/admin/gate/absence-check", post(absence_check_now))
}

// ---------------------------------------------------------------------------------------
// Ingest

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Direction {
    In,
    Out,
}

impl Direction {
    fn code(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventIn {
    id: String,
    student_no: String,
    direction: Direction,
    at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct BatchIn {
    events: Vec<EventIn>,
}

#[derive(Debug, Serialize)]
struct Rejected {
    id: String,
    reason: &'static str,
}

#[derive(Debug, Serialize)]
struct BatchOut {
    accepted: u64,
    duplicates: u64,
    rejected: Vec<Rejected>,
}

fn unauthorized(message: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({"code": "unauthorized", "message": message})),
    )
        .into_response()
}

fn invalid(message: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(serde_json::json!({"code": "invalid", "message": message})),
    )
        .into_response()
}

/// The hex HMAC-SHA256 a device sends for `body` at `timestamp`.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Constant-time check of a hex signature.
fn signature_ok(secret: &str, timestamp: &str, body: &[u8], sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex.trim()) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

/// `POST /api/v1/gate/events`: a signed batch of entries and exits from one device.
pub(crate) async fn ingest(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (Some(key), Some(ts), Some(sig)) = (
        header(&headers, "x-gate-key"),
        header(&headers, "x-gate-timestamp"),
        header(&headers, "x-gate-signature"),
    ) else {
        return unauthorized("missing signature headers");
    };
    let Ok(ts_secs) = ts.parse::<i64>() else {
        return unauthorized("bad timestamp");
    };
    if (Utc::now().timestamp() - ts_secs).abs() > REPLAY_WINDOW_SECS {
        return unauthorized("timestamp outside the replay window");
    }
    let result = async {
        // A device posts the same two statements all day: plan them once per connection.
        let mut tx = state.db.school_planned(&school, Plans::Generic).await?;
        let cache_key = (school.id.0, key.to_owned());
        let (device_id, secret) = match state.gate_devices.0.get(&cache_key) {
            Some(known) => known,
            None => {
                let device: Option<(i64, String)> = sqlx::query_as(
                    "select id, secret from gate_devices where key_id = $1 and active and revoked_at is null",
                )
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((id, secret)) = device else {
                    return Ok(unauthorized("unknown or revoked device"));
                };
                let known = (id, std::sync::Arc::<str>::from(secret));
                state.gate_devices.0.insert(cache_key.clone(), known.clone());
                known
            }
        };
        if !signature_ok(&secret, ts, &body, sig) {
            return Ok(unauthorized("bad signature"));
        }
        let batch: BatchIn = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return Ok(invalid(format!("malformed body: {e}"))),
        };
        if batch.events.len() > MAX_BATCH {
            return Ok(invalid(format!("at most {MAX_BATCH} events per batch")));
        }
        if batch
            .events
            .iter()
            .any(|e| e.id.is_empty() || e.id.chars().count() > 100)
        {
            return Ok(invalid("event ids must have 1 to 100 characters".into()));
        }
        let Some(out) = store_batch(&mut tx, device_id, &batch.events).await? else {
            state.gate_devices.0.invalidate(&cache_key);
            return Ok(unauthorized("unknown or revoked device"));
        };
        tx.commit().await?;
        Ok::<_, Refusal>(Json(out).into_response())
    }
    .await;
    result.unwrap_or_else(|r| r.json())
}

/// Stores the batch and tells the guardians; None if the device is no longer active
/// (nothing is stored then).
async fn store_batch(
    tx: &mut SchoolTx,
    device_id: i64,
    events: &[EventIn],
) -> Result<Option<BatchOut>, Refusal> {
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let nos: Vec<&str> = events.iter().map(|e| e.student_no.as_str()).collect();
    let dirs: Vec<&str> = events.iter().map(|e| e.direction.code()).collect();
    let ats: Vec<DateTime<Utc>> = events.iter().map(|e| e.at).collect();
    // One statement: check that the device is still active, match the pupils, store the
    // new events (a device's retry of an event it already sent changes nothing), and name
    // the events whose pupil is unknown — or, for a revoked device, one row saying so.
    let rows = sqlx::query(&format!(
        "with dev as (
           select id from gate_devices where id = $1 and active and revoked_at is null),
         e as (
           select * from unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[]) as e(id, no, dir, at)
            where exists (select 1 from dev)),
         k as (
           select e.id, e.dir, e.at, s.id as sid
             from e left join students s on s.student_no = e.no and s.left_on is null),
         new as (
           insert into gate_events (device_id, device_event_id, student_id, direction, at)
           select $1, k.id, k.sid, k.dir, k.at from k where k.sid is not null
           on conflict (device_id, device_event_id) do nothing
           returning id, device_event_id, student_id, direction, at)
         select new.id, new.device_event_id, new.student_id, new.direction, s.name,
                to_char(new.at at time zone {TZ_SQL}, 'HH24:MI') as hm, true as active
           from new join students s on s.id = new.student_id
         union all
         select null, k.id, null, null, null, null, true from k where k.sid is null
         union all
         select null, null, null, null, null, null, false where not exists (select 1 from dev)"
    ))
    .bind(device_id)
    .bind(&ids)
    .bind(&nos)
    .bind(&dirs)
    .bind(&ats)
    .fetch_all(&mut **tx)
    .await?;
    if rows.iter().any(|r| !r.get::<bool, _>("active")) {
        return Ok(None);
    }
    let (inserted, unknown): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|r| r.get::<Option<i64>, _>("id").is_some());
    let unknown: HashSet<String> = unknown.iter().map(|r| r.get("device_event_id")).collect();
    // In the order the device sent them.
    let rejected: Vec<Rejected> = events
        .iter()
        .filter(|e| unknown.contains(&e.id))
        .map(|e| Rejected {
            id: e.id.clone(),
            reason: "unknown_student",
        })
        .collect();
    let known = events.len() - rejected.len();
    // Guardians hear of every stored event at once, in one statement for the batch.
    let texts: Vec<[String; 6]> = inserted
        .iter()
        .map(|row| {
            let event_id: i64 = row.get("id");
            let device_event_id: String = row.get("device_event_id");
            let direction: String = row.get("direction");
            let name: String = row.get("name");
            let hm: String = row.get("hm");
            let (verb, verb_en) = if direction == "in" {
                ("到校", "Arrived at school")
            } else {
                ("离校", "Left school")
            };
            [
                format!("{verb} {hm}"),
                format!("{name} {hm} {verb}。"),
                format!("gate:{event_id}"),
                format!("gate:{device_id}:{device_event_id}"),
                format!("{verb_en} {hm}"),
                format!("{name}: {} at {hm}.", verb_en.to_lowercase()),
            ]
        })
        .collect();
    let messages: Vec<notify::PupilMessage> = inserted
        .iter()
        .zip(&texts)
        .map(
            |(row, [title, body, source, dedupe, title_en, body_en])| notify::PupilMessage {
                student_id: row.get("student_id"),
                title,
                body,
                link: None,
                source,
                dedupe_key: dedupe,
                en: Some((title_en, body_en)),
            },
        )
        .collect();
    notify::send_each_to_guardians(tx, Category::Safety, &messages).await?;
    let accepted = inserted.len() as u64;
    Ok(Some(BatchOut {
        accepted,
        duplicates: known as u64 - accepted,
        rejected,
    }))
}

// ---------------------------------------------------------------------------------------
// Devices

struct Device {
    id: i64,
    name: String,
    key_id: String,
    active: bool,
}

struct NewDevice {
    name: String,
    key_id: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "gate_devices.html")]
struct DevicesPage<'a> {
    lang: Lang,
    devices: Vec<Device>,
    created: Option<NewDevice>,
    alerted: Option<u64>,
    csrf: &'a str,
}

fn admin_or_refuse(user: &CurrentUser) -> Result<(), Refusal> {
    if user.can(Permission::ManageUsers) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "只有学校管理员可以管理门禁设备。",
            "Only school admins manage gate devices.",
        ))
    }
}

async fn devices_page(
    state: &SchoolState,
    school: &campus_tenant::Tenant,
    lang: Lang,
    user: &CurrentUser,
    created: Option<NewDevice>,
    alerted: Option<u64>,
) -> Response {
    let result = async {
        let mut tx = state.db.school(school).await?;
        let devices = sqlx::query(
            "select id, name, key_id, active and revoked_at is null as active from gate_devices order by id",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| Device {
            id: r.get("id"),
            name: r.get("name"),
            key_id: r.get("key_id"),
            active: r.get("active"),
        })
        .collect();
        tx.commit().await?;
        Ok::<_, Refusal>(
            DevicesPage {
                lang,
                devices,
                created,
                alerted,
                csrf: &user.csrf_token,
            }
            .render()
            .unwrap_or_default(),
        )
    }
    .await;
    match result {
        Ok(body) => page(
            lang,
            school,
            user,
            lang.pick("门禁设备", "Gate devices"),
            &body,
        ),
        Err(r) => r.page(school),
    }
}

/// `GET /admin/gate/devices`.
pub(crate) async fn devices(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    if let Err(r) = admin_or_refuse(&user) {
        return r.page(&school);
    }
    devices_page(&state, &school, lang, &user, None, None).await
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeviceForm {
    csrf: Option<String>,
    name: Option<String>,
}

/// `POST /admin/gate/devices`: adds a device and shows its secret this once.
pub(crate) async fn create_device(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Form(form): Form<DeviceForm>,
) -> Response {
    let result = async {
        admin_or_refuse(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        let name = form.name.as_deref().unwrap_or("").trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "请填写设备名称（不超过 100 字）。",
                "Give the device a name (at most 100 characters).",
            ));
        }
        let key_id = format!("gk_{}", hex::encode(rand::random::<[u8; 12]>()));
        let secret = hex::encode(rand::random::<[u8; 32]>());
        let mut tx = state.db.school(&school).await?;
        let id: i64 = sqlx::query_scalar(
            "insert into gate_devices (name, key_id, secret) values ($1, $2, $3) returning id",
        )
        .bind(&name)
        .bind(&key_id)
        .bind(&secret)
        .fetch_one(&mut *tx)
        .await?;
        crate::audit::record(
            &mut tx,
            &user,
            crate::audit::Action::GateDeviceAdded,
            Some(&format!("gate_device:{id}")),
            serde_json::json!({"name": name, "key_id": key_id}),
        )
        .await?;
        tx.commit().await?;
        Ok(NewDevice {
            name,
            key_id,
            secret,
        })
    }
    .await;
    match result {
        Ok(created) => devices_page(&state, &school, lang, &user, Some(created), None).await,
        Err(r) => r.page(&school),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /admin/gate/devices/{id}/revoke`: the device's signatures stop being accepted.
pub(crate) async fn revoke_device(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let result = async {
        admin_or_refuse(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        let mut tx = state.db.school(&school).await?;
        let n = sqlx::query(
            "update gate_devices set active = false, revoked_at = coalesce(revoked_at, now()) where id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            crate::audit::record(
                &mut tx,
                &user,
                crate::audit::Action::GateDeviceRevoked,
                Some(&format!("gate_device:{id}")),
                serde_json::json!({}),
            )
            .await?;
        }
        tx.commit().await?;
        if n == 0 {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "没有这个设备。",
                "No such device.",
            ));
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Redirect::to("/admin/gate/devices").into_response(),
        Err(r) => r.page(&school),
    }
}

// ---------------------------------------------------------------------------------------
// Guard page

struct EventRow {
    time: String,
    name: String,
    class_name: String,
    direction: String,
    device: String,
}

#[derive(Template)]
#[template(path = "gate_guard.html")]
struct GuardPage {
    lang: Lang,
    day: NaiveDate,
    ins: i64,
    outs: i64,
    events: Vec<EventRow>,
}

/// `GET /gate`: today's entries and exits.
pub(crate) async fn guard_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    let result = async {
        if !user.can(Permission::GateScan) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "您的身份不能查看出入校记录。",
                "You may not see gate entries.",
            ));
        }
        let mut tx = state.db.school(&school).await?;
        let day = today(&mut tx).await?;
        let today_sql = format!("(e.at at time zone {TZ_SQL})::date = $1");
        let (ins, outs): (i64, i64) = sqlx::query_as(&format!(
            "select count(*) filter (where direction = 'in'), count(*) filter (where direction = 'out')
               from gate_events e where {today_sql}"
        ))
        .bind(day)
        .fetch_one(&mut *tx)
        .await?;
        let events = sqlx::query(&format!(
            "select to_char(e.at at time zone {TZ_SQL}, 'HH24:MI:SS') as time, s.name, c.name as class_name,
                    e.direction, d.name as device
               from gate_events e join students s on s.id = e.student_id
               join classes c on c.id = s.class_id join gate_devices d on d.id = e.device_id
              where {today_sql} order by e.at desc, e.id desc limit 50"
        ))
        .bind(day)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| EventRow {
            time: r.get("time"),
            name: r.get("name"),
            class_name: r.get("class_name"),
            direction: r.get("direction"),
            device: r.get("device"),
        })
        .collect();
        tx.commit().await?;
        Ok(GuardPage {
            lang,
            day,
            ins,
            outs,
            events,
        }
        .render()
        .unwrap_or_default())
    }
    .await;
    match result {
        Ok(body) => page(lang, &school, &user, lang.pick("出入校", "Gate"), &body),
        Err(r) => r.page(&school),
    }
}

// ---------------------------------------------------------------------------------------
// Absence alerts

/// After the school's arrival cut-off on `day`, alerts the guardians and head teacher of
/// every current pupil with no entry that day and no approved leave covering now; each
/// pupil at most once per day. Returns how many pupils were newly alerted (0 before the
/// cut-off and on days without school).
pub async fn absence_check(tx: &mut SchoolTx, day: NaiveDate) -> sqlx::Result<u64> {
    absence_check_at(tx, day, Utc::now()).await
}

/// [`absence_check`] as of `now` (the scheduled job passes the time it runs for).
pub async fn absence_check_at(
    tx: &mut SchoolTx,
    day: NaiveDate,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    if !crate::calendar::is_school_day(tx, day).await? {
        return Ok(0);
    }
    let rows = sqlx::query(&format!(
        "with cutoff as (
           select (($1::date + gate_arrival_cutoff) at time zone {TZ_SQL}) as at, gate_arrival_cutoff as t
             from attendance_settings where id = 1),
         absent as (
           select s.id from students s, cutoff
            where $2::timestamptz >= cutoff.at
              and s.left_on is null and s.enrolled_on <= $1
              and not exists (select 1 from gate_events e
                               where e.student_id = s.id and e.direction = 'in'
                                 and (e.at at time zone {TZ_SQL})::date = $1)
              and not exists (select 1 from leave_requests l
                               where l.student_id = s.id and l.status = 'approved'
                                 and l.starts_at <= $2 and l.ends_at > $2)),
         new as (
           insert into gate_absence_alerts (student_id, day)
           select id, $1 from absent
           on conflict do nothing
           returning student_id)
         select s.id, s.name, s.class_id, c.name as class_name, c.head_teacher_id,
                to_char(cutoff.t, 'HH24:MI') as cutoff
           from new join students s on s.id = new.student_id join classes c on c.id = s.class_id, cutoff
          order by c.id, s.id"
    ))
    .bind(day)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    let absent: Vec<Absent> = rows
        .iter()
        .map(|r| Absent {
            id: r.get("id"),
            name: r.get("name"),
            class_id: r.get("class_id"),
            class_name: r.get("class_name"),
            head_teacher: r.get("head_teacher_id"),
            cutoff: r.get("cutoff"),
        })
        .collect();
    // Three statements however many pupils: the alerts above, one message per pupil to
    // that pupil's guardians, one summary per class to its head teacher.
    let pupils: Vec<[String; 5]> = absent
        .iter()
        .map(|a| {
            [
                format!("未到校 {}", a.name),
                format!(
                    "{}（{}）截至 {} 未刷卡到校，也没有已批准的请假。",
                    a.name, a.class_name, a.cutoff
                ),
                format!("gate-absence:{}:{day}", a.id),
                format!("Not at school: {}", a.name),
                format!(
                    "{} ({}) had not come through the gate by {} and has no approved leave.",
                    a.name, a.class_name, a.cutoff
                ),
            ]
        })
        .collect();
    let to_guardians: Vec<notify::PupilMessage> = absent
        .iter()
        .zip(&pupils)
        .map(
            |(a, [title, body, source, title_en, body_en])| notify::PupilMessage {
                student_id: a.id,
                title,
                body,
                link: None,
                source,
                dedupe_key: source,
                en: Some((title_en, body_en)),
            },
        )
        .collect();
    notify::send_each_to_guardians(tx, Category::Safety, &to_guardians).await?;
    let classes: Vec<(i64, [String; 5])> = absent
        .chunk_by(|a, b| a.class_id == b.class_id)
        .filter_map(|class| {
            let first = &class[0];
            let teacher = first.head_teacher?;
            let names: Vec<&str> = class.iter().map(|a| a.name.as_str()).collect();
            Some((
                teacher,
                [
                    format!("{} {} 名学生未到校", first.class_name, class.len()),
                    format!(
                        "{}截至 {} 未刷卡到校、也没有已批准请假的学生：{}。",
                        first.class_name,
                        first.cutoff,
                        names.join("、")
                    ),
                    format!("gate-absence-class:{}:{day}", first.class_id),
                    format!("{}: {} not at school", first.class_name, class.len()),
                    format!(
                        "In {}, not through the gate by {} and without approved leave: {}.",
                        first.class_name,
                        first.cutoff,
                        names.join(", ")
                    ),
                ],
            ))
        })
        .collect();
    let to_head_teachers: Vec<notify::PersonMessage> = classes
        .iter()
        .map(
            |(teacher, [title, body, source, title_en, body_en])| notify::PersonMessage {
                recipient: notify::Recipient::Staff(*teacher),
                title,
                body,
                link: None,
                source,
                dedupe_key: source,
                en: Some((title_en, body_en)),
            },
        )
        .collect();
    notify::send_each_to_people(tx, Category::Safety, &to_head_teachers).await?;
    Ok(rows.len() as u64)
}

/// A pupil newly reported absent by [`absence_check_at`].
struct Absent {
    id: i64,
    name: String,
    class_id: i64,
    class_name: String,
    head_teacher: Option<i64>,
    cutoff: String,
}

/// `POST /admin/gate/absence-check`: runs [`absence_check`] for today now.
pub(crate) async fn absence_check_now(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Form(form): Form<CsrfForm>,
) -> Response {
    let result = async {
        admin_or_refuse(&user)?;
        check_csrf(&user, form.csrf.as_deref())?;
        let mut tx = state.db.school(&school).await?;
        let day = today(&mut tx).await?;
        let n = absence_check(&mut tx, day).await?;
        tx.commit().await?;
        Ok::<_, Refusal>(n)
    }
    .await;
    match result {
        Ok(n) => devices_page(&state, &school, lang, &user, None, Some(n)).await,
        Err(r) => r.page(&school),
    }
}
