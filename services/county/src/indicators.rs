//! What the dashboard shows, defined the way DHIS2 defines it for ministries: *data
//! elements* are the counts the rollup stores (`metric_values.element`), *indicators* are a
//! numerator over a denominator of elements, each with the way it aggregates over days.
//!
//! Aggregating ratios correctly across levels and periods means summing numerators and
//! denominators first and dividing last (never averaging percentages), using the
//! time-weighted average for head counts (pupils enrolled each day) and the value at the
//! end of the period for rolling stocks (chronic absence over the last 30 days).

use serde::Serialize;

/// How an element's daily values combine over a period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Over {
    /// Events: the sum of the days.
    Sum,
    /// Head counts: the mean over the days that have a value (time-weighted average).
    Mean,
    /// Rolling stocks: the value on the last day of the period that has one.
    Last,
}

/// How a value is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Count,
    Percent,
    Minutes,
}

/// One indicator: `factor × numerator ÷ denominator` (no denominator: the numerator).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Indicator {
    pub code: &'static str,
    pub zh: &'static str,
    pub en: &'static str,
    /// Elements summed for the numerator (and, for `sensitive_complement`, what is left).
    pub numerator: &'static [&'static str],
    pub denominator: Option<&'static str>,
    pub over: Over,
    pub unit: Unit,
    /// Counts of pupils: a cell whose count of pupils is below the threshold could name a
    /// pupil and is suppressed for the bureau. `Some(true)`: the count is the numerator;
    /// `Some(false)`: the count is denominator − numerator (e.g. absences behind an
    /// attendance rate); `None`: not about individual pupils.
    pub pupils: Option<bool>,
    /// Higher is better (ranking and colouring).
    pub higher_is_better: bool,
}

// One row per indicator in the table below reads best with positional arguments.
#[allow(clippy::too_many_arguments)]
const fn ind(
    code: &'static str,
    zh: &'static str,
    en: &'static str,
    numerator: &'static [&'static str],
    denominator: Option<&'static str>,
    over: Over,
    unit: Unit,
    pupils: Option<bool>,
    higher_is_better: bool,
) -> Indicator {
    Indicator {
        code,
        zh,
        en,
        numerator,
        denominator,
        over,
        unit,
        pupils,
        higher_is_better,
    }
}

use Over::*;
use Unit::*;

/// Every indicator, in the order pages list them.
pub const INDICATORS: &[Indicator] = &[
    ind(
        "attendance_rate",
        "出勤率",
        "Attendance rate",
        &["present"],
        Some("enrolled"),
        Sum,
        Percent,
        Some(false),
        true,
    ),
    ind(
        "register_completeness",
        "按时点名率",
        "Registers taken on time",
        &["registers_on_time"],
        Some("registers_expected"),
        Sum,
        Percent,
        None,
        true,
    ),
    ind(
        "absent",
        "缺勤人次",
        "Absences",
        &["absent"],
        None,
        Sum,
        Count,
        Some(true),
        false,
    ),
    ind(
        "late",
        "迟到人次",
        "Lates",
        &["late"],
        None,
        Sum,
        Count,
        Some(true),
        false,
    ),
    ind(
        "leave_marks",
        "请假人次",
        "Pupil-sessions on leave",
        &["leave"],
        None,
        Sum,
        Count,
        Some(true),
        false,
    ),
    ind(
        "chronic_absence",
        "长期缺勤率（<90%）",
        "Chronic absence (<90%)",
        &["chronic_90"],
        Some("chronic_base"),
        Last,
        Percent,
        Some(true),
        false,
    ),
    ind(
        "chronic_warning",
        "缺勤预警（<88%）",
        "Absence warning (<88%)",
        &["chronic_88"],
        None,
        Last,
        Count,
        Some(true),
        false,
    ),
    ind(
        "chronic_risk",
        "缺勤高危（<80%）",
        "Absence at risk (<80%)",
        &["chronic_80"],
        None,
        Last,
        Count,
        Some(true),
        false,
    ),
    ind(
        "leave_requests",
        "请假申请",
        "Leave requests",
        &["leave_requests"],
        None,
        Sum,
        Count,
        Some(true),
        false,
    ),
    ind(
        "leave_not_returned",
        "假满未返校",
        "Not back after leave",
        &["leave_not_returned"],
        None,
        Sum,
        Count,
        Some(true),
        false,
    ),
    ind(
        "notices_sent",
        "发布通知",
        "Notices sent",
        &["notices_sent"],
        None,
        Sum,
        Count,
        None,
        true,
    ),
    ind(
        "notice_read_rate",
        "通知阅读率",
        "Notice read rate",
        &["notices_read"],
        Some("notice_recipients"),
        Sum,
        Percent,
        None,
        true,
    ),
    ind(
        "receipt_rate",
        "回执签收率",
        "Signed-receipt rate",
        &["receipts_signed"],
        Some("receipts_required"),
        Sum,
        Percent,
        None,
        true,
    ),
    ind(
        "minutes_to_read",
        "平均阅读用时（分钟）",
        "Mean minutes to read",
        &["read_minutes"],
        Some("notices_read"),
        Sum,
        Minutes,
        None,
        false,
    ),
    ind(
        "minutes_to_sign",
        "平均签收用时（分钟）",
        "Mean minutes to sign",
        &["sign_minutes"],
        Some("receipts_signed"),
        Sum,
        Minutes,
        None,
        false,
    ),
    ind(
        "gate_in",
        "入校人次",
        "Gate entries",
        &["gate_in"],
        None,
        Sum,
        Count,
        None,
        true,
    ),
    ind(
        "gate_out",
        "离校人次",
        "Gate exits",
        &["gate_out"],
        None,
        Sum,
        Count,
        None,
        true,
    ),
    ind(
        "absence_alerts",
        "未到校预警",
        "Absence alerts",
        &["absence_alerts"],
        None,
        Sum,
        Count,
        Some(true),
        false,
    ),
    ind(
        "active_users",
        "日均活跃用户",
        "Active users per day",
        &["active_users"],
        None,
        Mean,
        Count,
        None,
        true,
    ),
    ind(
        "join_approved",
        "加入审核通过",
        "Join requests approved",
        &["join_approved"],
        None,
        Sum,
        Count,
        None,
        true,
    ),
    ind(
        "messages",
        "家校消息",
        "Messages",
        &["messages"],
        None,
        Sum,
        Count,
        None,
        true,
    ),
    ind(
        "deliveries_failed",
        "推送失败",
        "Deliveries failed",
        &["deliveries_failed"],
        None,
        Sum,
        Count,
        None,
        false,
    ),
    ind(
        "pupils",
        "在籍学生（日均）",
        "Pupils enrolled (daily mean)",
        &["pupils"],
        None,
        Mean,
        Count,
        None,
        true,
    ),
];

/// The indicator with this code.
pub fn by_code(code: &str) -> Option<&'static Indicator> {
    INDICATORS.iter().find(|i| i.code == code)
}

/// Elements that aggregate as head counts (mean over days) or stocks (last day).
pub fn element_over(element: &str) -> Over {
    match element {
        "pupils" | "active_users" => Mean,
        "chronic_base" | "chronic_90" | "chronic_88" | "chronic_80" => Last,
        _ => Sum,
    }
}

/// Current-state checks per school (`metric_snapshots`).
pub const CHECKS: &[(&str, &str, &str, bool)] = &[
    // (element, zh, en, about individual pupils)
    (
        "classes_without_head",
        "无班主任的班级",
        "Classes without a head teacher",
        false,
    ),
    (
        "pupils_without_guardian",
        "无家长的学生",
        "Pupils without a guardian",
        true,
    ),
    (
        "duplicate_id_numbers",
        "身份证号重复的学生",
        "Pupils with a duplicate ID number",
        true,
    ),
];

/// Rolling window of the chronic-absence counts, in calendar days ending on the day.
pub const CHRONIC_WINDOW_DAYS: i64 = 30;

/// A value of an indicator from its aggregated parts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Value {
    pub numerator: f64,
    /// `None` for indicators without a denominator.
    pub denominator: Option<f64>,
}

impl Value {
    /// The number shown: percent or minutes or a count; `None` when the denominator is 0.
    pub fn shown(&self, ind: &Indicator) -> Option<f64> {
        match (ind.denominator, self.denominator) {
            (None, _) => Some(self.numerator),
            (Some(_), Some(d)) if d > 0.0 => Some(match ind.unit {
                Percent => 100.0 * self.numerator / d,
                _ => self.numerator / d,
            }),
            _ => None,
        }
    }

    /// The number of pupils behind the cell, for small-cell suppression.
    pub fn pupil_count(&self, ind: &Indicator) -> Option<f64> {
        match ind.pupils? {
            true => Some(self.numerator),
            false => Some(self.denominator.unwrap_or(0.0) - self.numerator),
        }
    }
}

/// Formats a shown value for a table cell.
pub fn format(ind: &Indicator, v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(x) => match ind.unit {
            Percent => format!("{x:.1}%"),
            Minutes => format!("{x:.0}"),
            Count if ind.over == Mean => format!("{x:.0}"),
            Count => format!("{x:.0}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_every_denominator_is_an_element_that_sums_like_its_numerator() {
        let mut codes: Vec<_> = INDICATORS.iter().map(|i| i.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), INDICATORS.len());
        for i in INDICATORS {
            if let Some(d) = i.denominator {
                assert_eq!(element_over(d), i.over, "{}", i.code);
            }
            for n in i.numerator {
                assert_eq!(element_over(n), i.over, "{}", i.code);
            }
        }
    }

    #[test]
    fn rates_are_ratios_of_sums_and_empty_denominators_show_nothing() {
        let rate = by_code("attendance_rate").unwrap();
        let v = Value {
            numerator: 95.0,
            denominator: Some(100.0),
        };
        assert_eq!(v.shown(rate), Some(95.0));
        assert_eq!(v.pupil_count(rate), Some(5.0));
        let none = Value {
            numerator: 0.0,
            denominator: Some(0.0),
        };
        assert_eq!(none.shown(rate), None);
        assert_eq!(format(rate, Some(95.0)), "95.0%");
    }
}
