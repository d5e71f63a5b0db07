//! How long a leave lasts: whole days, the morning or afternoon of one day, or a start and
//! an end time. Whole and half days are stored as the school's session times
//! (`attendance_settings`), so a register is covered exactly when the leave overlaps its
//! session ([`covers_register`]).

use axum::http::StatusCode;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::attendance::{refuse, Refusal, TZ_SQL};
use campus_tenant::SchoolTx;

/// What the parent asked for, before it is turned into times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asked {
    Days(NaiveDate, NaiveDate),
    Morning(NaiveDate),
    Afternoon(NaiveDate),
    Time(NaiveDateTime, NaiveDateTime),
}

/// The school's morning and afternoon sessions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sessions {
    pub morning: (NaiveTime, NaiveTime),
    pub afternoon: (NaiveTime, NaiveTime),
}

impl Default for Sessions {
    fn default() -> Self {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default();
        Self {
            morning: (t(8, 0), t(12, 0)),
            afternoon: (t(14, 0), t(17, 30)),
        }
    }
}

pub(crate) async fn sessions(tx: &mut SchoolTx) -> sqlx::Result<Sessions> {
    let row: Option<(NaiveTime, NaiveTime, NaiveTime, NaiveTime)> = sqlx::query_as(
        "select morning_start, morning_end, afternoon_start, afternoon_end
           from attendance_settings where id = 1",
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map_or_else(Sessions::default, |(a, b, c, d)| Sessions {
        morning: (a, b),
        afternoon: (c, d),
    }))
}

fn date(s: &str) -> Result<NaiveDate, Refusal> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "日期格式不正确，应为 年-月-日。",
            "Bad date; use YYYY-MM-DD.",
        )
    })
}

pub(crate) fn time(s: &str) -> Result<NaiveDateTime, Refusal> {
    let s = s.trim();
    [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .ok_or_else(|| {
        refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "开始和结束时间格式不正确，应为 年-月-日 时:分。",
            "Bad start or end time; use YYYY-MM-DD HH:MM.",
        )
    })
}

/// The fields of a form or JSON body that say when.
pub(crate) struct When<'a> {
    pub span: &'a str,
    pub start_date: &'a str,
    pub end_date: &'a str,
    pub date: &'a str,
    pub starts_at: &'a str,
    pub ends_at: &'a str,
}

impl Asked {
    /// Reads the fields of the chosen span; an end before the start is 422.
    pub(crate) fn parse(w: &When<'_>) -> Result<Self, Refusal> {
        let asked = match w.span.trim() {
            "days" => Self::Days(date(w.start_date)?, date(w.end_date)?),
            "morning" => Self::Morning(date(w.date)?),
            "afternoon" => Self::Afternoon(date(w.date)?),
            // Without a span the request names its start and end (the original form).
            "time" | "" => Self::Time(time(w.starts_at)?, time(w.ends_at)?),
            _ => {
                return Err(refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "请假时长不正确（整天、上午、下午或按时间）。",
                    "Unknown span; use days, morning, afternoon or time.",
                ))
            }
        };
        match asked {
            Self::Days(a, b) if b < a => Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "结束日期不能早于开始日期。",
                "The last day cannot be before the first.",
            )),
            Self::Time(a, b) if b <= a => Err(refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                "结束时间必须晚于开始时间。",
                "The end must be after the start.",
            )),
            _ => Ok(asked),
        }
    }

    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Days(..) => "days",
            Self::Morning(_) => "morning",
            Self::Afternoon(_) => "afternoon",
            Self::Time(..) => "time",
        }
    }

    /// Local start and end times under the school's sessions.
    pub(crate) fn times(self, s: &Sessions) -> (NaiveDateTime, NaiveDateTime) {
        match self {
            Self::Days(a, b) => (a.and_time(s.morning.0), b.and_time(s.afternoon.1)),
            Self::Morning(d) => (d.and_time(s.morning.0), d.and_time(s.morning.1)),
            Self::Afternoon(d) => (d.and_time(s.afternoon.0), d.and_time(s.afternoon.1)),
            Self::Time(a, b) => (a, b),
        }
    }
}

/// "2026-03-10 上午", "2026-03-10 至 2026-03-12（全天）" or "start — end", from the stored
/// span and the local times formatted `YYYY-MM-DD HH:MI`.
pub(crate) fn describe(span: &str, starts: &str, ends: &str) -> String {
    let day = |s: &str| s.get(..10).unwrap_or(s).to_owned();
    let hm = |s: &str| s.get(11..).unwrap_or("").to_owned();
    match span {
        "days" if day(starts) == day(ends) => format!("{}（全天）", day(starts)),
        "days" => format!("{} 至 {}（全天）", day(starts), day(ends)),
        "morning" => format!("{} 上午（{}–{}）", day(starts), hm(starts), hm(ends)),
        "afternoon" => format!("{} 下午（{}–{}）", day(starts), hm(starts), hm(ends)),
        _ => format!("{starts} 至 {ends}"),
    }
}

/// SQL that is true when the leave aliased `l` covers the register of `day` (a date
/// expression) and `period` (a text expression): the leave overlaps the period's session.
/// The evening register counts as covered when the leave lasts to the end of the afternoon
/// or into the evening (a pupil who went home for the afternoon is not back for it).
pub(crate) fn covers_register(day: &str, period: &str) -> String {
    let at = |t: &str| {
        format!(
            "(({day})::date + (select {t} from attendance_settings where id = 1)) at time zone {TZ_SQL}"
        )
    };
    format!(
        "(case {period}
            when 'morning' then l.starts_at < {me} and l.ends_at > {ms}
            when 'afternoon' then l.starts_at < {ae} and l.ends_at > {as_}
            else l.starts_at < ((({day})::date + 1)::timestamp at time zone {TZ_SQL}) and l.ends_at >= {ae}
         end)",
        ms = at("morning_start"),
        me = at("morning_end"),
        as_ = at("afternoon_start"),
        ae = at("afternoon_end"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn when<'a>(span: &'a str, a: &'a str, b: &'a str) -> When<'a> {
        When {
            span,
            start_date: a,
            end_date: b,
            date: a,
            starts_at: a,
            ends_at: b,
        }
    }

    #[test]
    fn whole_and_half_days_follow_the_sessions() {
        let s = Sessions::default();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let days = Asked::parse(&when("days", "2026-03-10", "2026-03-12")).unwrap();
        assert_eq!(days, Asked::Days(d("2026-03-10"), d("2026-03-12")));
        let (a, b) = days.times(&s);
        assert_eq!(a.to_string(), "2026-03-10 08:00:00");
        assert_eq!(b.to_string(), "2026-03-12 17:30:00");
        let (a, b) = Asked::parse(&when("afternoon", "2026-03-10", ""))
            .unwrap()
            .times(&s);
        assert_eq!(
            (a.to_string(), b.to_string()),
            ("2026-03-10 14:00:00".into(), "2026-03-10 17:30:00".into())
        );
        assert_eq!(
            Asked::parse(&when("", "2026-03-10T09:00", "2026-03-10T10:00"))
                .unwrap()
                .code(),
            "time"
        );
    }

    #[test]
    fn backwards_or_unknown_spans_are_refused() {
        for (span, a, b) in [
            ("days", "2026-03-12", "2026-03-10"),
            ("time", "2026-03-10T10:00", "2026-03-10T09:00"),
            ("morning", "2026-02-30", ""),
            ("week", "2026-03-10", "2026-03-11"),
        ] {
            let r = Asked::parse(&when(span, a, b)).unwrap_err();
            assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{span}");
        }
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            describe("morning", "2026-03-10 08:00", "2026-03-10 12:00"),
            "2026-03-10 上午（08:00–12:00）"
        );
        assert_eq!(
            describe("days", "2026-03-10 08:00", "2026-03-10 17:30"),
            "2026-03-10（全天）"
        );
        assert_eq!(
            describe("time", "2026-03-10 08:00", "2026-03-11 09:00"),
            "2026-03-10 08:00 至 2026-03-11 09:00"
        );
    }
}
