//! Reading the rollups: element totals per school (or class) and day from
//! `public.metric_values`, turned into indicator values that aggregate correctly across
//! the tree (values are computed per school or class first, then added up the tree) and
//! over periods (sums, time-weighted means, end-of-period stocks).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row as _};
use utoipa::ToSchema;

use crate::indicators::{Indicator, Over, Value, CHECKS, INDICATORS};

/// Element totals of one unit (school, grade or class) per day.
#[derive(Clone, Debug, Default)]
pub struct Series(pub BTreeMap<NaiveDate, HashMap<String, f64>>);

impl Series {
    fn add(&mut self, day: NaiveDate, element: &str, value: f64) {
        *self
            .0
            .entry(day)
            .or_default()
            .entry(element.to_owned())
            .or_default() += value;
    }

    fn on(&self, day: &NaiveDate, elements: &[&str]) -> Option<f64> {
        let d = self.0.get(day)?;
        let mut any = false;
        let mut sum = 0.0;
        for e in elements {
            if let Some(v) = d.get(*e) {
                any = true;
                sum += v;
            }
        }
        any.then_some(sum)
    }

    /// The indicator over every day of the series.
    pub fn value(&self, ind: &Indicator) -> Value {
        let den: Vec<&str> = ind.denominator.into_iter().collect();
        match ind.over {
            Over::Sum => Value {
                numerator: self
                    .0
                    .keys()
                    .filter_map(|d| self.on(d, ind.numerator))
                    .sum(),
                denominator: ind
                    .denominator
                    .map(|_| self.0.keys().filter_map(|d| self.on(d, &den)).sum()),
            },
            Over::Mean => {
                let mean = |els: &[&str]| {
                    let vals: Vec<f64> = self.0.keys().filter_map(|d| self.on(d, els)).collect();
                    if vals.is_empty() {
                        0.0
                    } else {
                        vals.iter().sum::<f64>() / vals.len() as f64
                    }
                };
                Value {
                    numerator: mean(ind.numerator),
                    denominator: ind.denominator.map(|_| mean(&den)),
                }
            }
            Over::Last => {
                let last =
                    self.0.keys().rev().find(|d| {
                        self.on(d, ind.numerator).is_some() || self.on(d, &den).is_some()
                    });
                match last {
                    Some(d) => Value {
                        numerator: self.on(d, ind.numerator).unwrap_or(0.0),
                        denominator: ind.denominator.map(|_| self.on(d, &den).unwrap_or(0.0)),
                    },
                    None => Value {
                        numerator: 0.0,
                        denominator: ind.denominator.map(|_| 0.0),
                    },
                }
            }
        }
    }

    /// The indicator day by day over `days`.
    pub fn daily(&self, ind: &Indicator, days: &[NaiveDate]) -> Vec<Value> {
        days.iter()
            .map(|d| {
                let mut one = Series::default();
                if let Some(v) = self.0.get(d) {
                    one.0.insert(*d, v.clone());
                }
                one.value(ind)
            })
            .collect()
    }
}

/// Adds values of units computed separately (up the tree).
pub fn total(values: impl IntoIterator<Item = Value>) -> Value {
    values.into_iter().fold(Value::default(), |acc, v| Value {
        numerator: acc.numerator + v.numerator,
        denominator: match (acc.denominator, v.denominator) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        },
    })
}

/// The period and which schools, as parsed from a query string.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FilterParams {
    /// First day, YYYY-MM-DD (default: 29 days before `to`).
    pub from: Option<String>,
    /// Last day, YYYY-MM-DD (default: today in China).
    pub to: Option<String>,
    /// Only schools of this township (学区).
    pub township: Option<String>,
    /// Only schools of this kind: primary, junior, nine_year, senior, complete.
    pub kind: Option<String>,
    /// Only urban or rural schools.
    pub locality: Option<String>,
    /// The indicator schools are ranked by (default attendance_rate).
    pub metric: Option<String>,
}

/// A checked filter.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Filter {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub township: Option<String>,
    pub kind: Option<String>,
    pub locality: Option<String>,
}

/// Longest period one request may cover.
pub const MAX_DAYS: i64 = 400;

/// Why a filter was refused: (Chinese, English).
#[derive(Debug)]
pub struct BadFilter(pub &'static str, pub &'static str);

impl Filter {
    pub fn parse(p: &FilterParams, today: NaiveDate) -> Result<Self, BadFilter> {
        let date = |raw: &Option<String>| -> Result<Option<NaiveDate>, BadFilter> {
            match raw.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                    .map(Some)
                    .map_err(|_| {
                        BadFilter(
                            "日期格式不正确，应为 年-月-日，例如 2026-03-01。",
                            "Dates are written YYYY-MM-DD, e.g. 2026-03-01.",
                        )
                    }),
            }
        };
        let to = date(&p.to)?.unwrap_or(today);
        let from = date(&p.from)?.unwrap_or(to - chrono::Duration::days(29));
        if from > to {
            return Err(BadFilter(
                "开始日期不能晚于结束日期。",
                "The first day must not be after the last day.",
            ));
        }
        if (to - from).num_days() >= MAX_DAYS {
            return Err(BadFilter(
                "一次最多查看 400 天，请缩短日期范围。",
                "At most 400 days at a time; choose a shorter period.",
            ));
        }
        let opt = |s: &Option<String>| {
            s.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let kind = opt(&p.kind);
        if kind
            .as_deref()
            .is_some_and(|k| !["primary", "junior", "nine_year", "senior", "complete"].contains(&k))
        {
            return Err(BadFilter(
                "学校类型只能是 primary、junior、nine_year、senior 或 complete。",
                "kind is one of primary, junior, nine_year, senior, complete.",
            ));
        }
        let locality = opt(&p.locality);
        if locality
            .as_deref()
            .is_some_and(|l| l != "urban" && l != "rural")
        {
            return Err(BadFilter(
                "城乡只能是 urban 或 rural。",
                "locality is urban or rural.",
            ));
        }
        Ok(Self {
            from,
            to,
            township: opt(&p.township),
            kind,
            locality,
        })
    }

    pub fn days(&self) -> Vec<NaiveDate> {
        self.from
            .iter_days()
            .take_while(|d| *d <= self.to)
            .collect()
    }

    /// The query string that reproduces this filter (for links and exports).
    pub fn query(&self) -> String {
        let mut q = format!("from={}&to={}", self.from, self.to);
        for (k, v) in [
            ("township", &self.township),
            ("kind", &self.kind),
            ("locality", &self.locality),
        ] {
            if let Some(v) = v {
                q.push_str(&format!("&{k}={}", urlencode(v)));
            }
        }
        q
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A school on the dashboard: registry data and its place in the tree.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct School {
    #[serde(skip)]
    pub tenant_id: i64,
    pub slug: String,
    pub name: String,
    pub township: String,
    pub kind: String,
    pub locality: String,
}

/// Active schools matching the filter's group sets, in township and name order.
pub async fn schools(pool: &PgPool, f: &Filter) -> sqlx::Result<Vec<School>> {
    let rows = sqlx::query(
        "select t.id, t.slug, t.name, coalesce(m.township, '') as township,
                coalesce(m.kind, 'primary') as kind, coalesce(m.locality, 'urban') as locality
           from public.tenants t left join public.metric_schools m on m.tenant_id = t.id
          where t.status = 'active'
            and ($1::text is null or m.township = $1)
            and ($2::text is null or m.kind = $2)
            and ($3::text is null or m.locality = $3)
          order by 4, t.name",
    )
    .bind(&f.township)
    .bind(&f.kind)
    .bind(&f.locality)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| School {
            tenant_id: r.get("id"),
            slug: r.get("slug"),
            name: r.get("name"),
            township: r.get("township"),
            kind: r.get("kind"),
            locality: r.get("locality"),
        })
        .collect())
}

/// The townships that have schools (for the filter).
pub async fn townships(pool: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select distinct m.township from public.metric_schools m join public.tenants t on t.id = m.tenant_id
          where t.status = 'active' and m.township <> '' order by 1",
    )
    .fetch_all(pool)
    .await
}

/// Whole-school element totals per school and day.
pub async fn school_series(
    pool: &PgPool,
    tenants: &[i64],
    f: &Filter,
) -> sqlx::Result<HashMap<i64, Series>> {
    let rows = sqlx::query(
        "select tenant_id, day, element, value from public.metric_school_values
          where tenant_id = any($1) and day between $2 and $3",
    )
    .bind(tenants)
    .bind(f.from)
    .bind(f.to)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<i64, Series> = HashMap::new();
    for r in rows {
        out.entry(r.get("tenant_id")).or_default().add(
            r.get("day"),
            r.get::<String, _>("element").as_str(),
            r.get("value"),
        );
    }
    Ok(out)
}

/// A class of one school with its element totals per day.
#[derive(Clone, Debug)]
pub struct ClassSeries {
    pub class_id: i64,
    pub grade_level: i16,
    pub class_name: String,
    pub series: Series,
}

/// Per-class element totals of one school (class rows only; whole-school elements such as
/// notices have no class).
pub async fn class_series(
    pool: &PgPool,
    tenant: i64,
    f: &Filter,
) -> sqlx::Result<Vec<ClassSeries>> {
    let rows = sqlx::query(
        "select class_id, grade_level, day, element, sum(value) as value,
                (array_agg(class_name order by day desc))[1] as class_name
           from public.metric_values
          where tenant_id = $1 and class_id <> 0 and day between $2 and $3
          group by 1, 2, 3, 4",
    )
    .bind(tenant)
    .bind(f.from)
    .bind(f.to)
    .fetch_all(pool)
    .await?;
    let mut by: BTreeMap<(i16, i64), ClassSeries> = BTreeMap::new();
    for r in rows {
        let grade: i16 = r.get("grade_level");
        let id: i64 = r.get("class_id");
        let c = by.entry((grade, id)).or_insert_with(|| ClassSeries {
            class_id: id,
            grade_level: grade,
            class_name: r.get("class_name"),
            series: Series::default(),
        });
        c.series.add(
            r.get("day"),
            r.get::<String, _>("element").as_str(),
            r.get("value"),
        );
    }
    let mut out: Vec<ClassSeries> = by.into_values().collect();
    out.sort_by(|a, b| {
        (a.grade_level, &a.class_name, a.class_id).cmp(&(b.grade_level, &b.class_name, b.class_id))
    });
    Ok(out)
}

/// Category breakdown of one element for one school over the period (e.g. leave requests
/// by kind and outcome, active users by role).
pub async fn categories(
    pool: &PgPool,
    tenant: i64,
    element: &str,
    over: Over,
    f: &Filter,
) -> sqlx::Result<Vec<(String, f64)>> {
    let sql = match over {
        Over::Mean => {
            "select category, sum(value) / greatest(count(distinct day), 1) from public.metric_values
              where tenant_id = $1 and element = $2 and day between $3 and $4 group by 1 order by 1"
        }
        _ => {
            "select category, sum(value) from public.metric_values
              where tenant_id = $1 and element = $2 and day between $3 and $4 group by 1 order by 1"
        }
    };
    sqlx::query_as(sql)
        .bind(tenant)
        .bind(element)
        .bind(f.from)
        .bind(f.to)
        .fetch_all(pool)
        .await
}

/// The current checks of each school: element → value.
pub async fn checks(
    pool: &PgPool,
    tenants: &[i64],
) -> sqlx::Result<HashMap<i64, HashMap<String, f64>>> {
    let rows = sqlx::query(
        "select tenant_id, element, value from public.metric_snapshots where tenant_id = any($1)",
    )
    .bind(tenants)
    .fetch_all(pool)
    .await?;
    let mut out: HashMap<i64, HashMap<String, f64>> = HashMap::new();
    for r in rows {
        out.entry(r.get("tenant_id"))
            .or_default()
            .insert(r.get("element"), r.get("value"));
    }
    Ok(out)
}

/// When the rollups of these schools were last brought up to date (the oldest of them).
pub async fn freshness(
    pool: &PgPool,
    tenants: &[i64],
) -> sqlx::Result<Option<chrono::DateTime<chrono::Utc>>> {
    sqlx::query_scalar(
        "select min(finished_at) from public.metric_rollup_runs where tenant_id = any($1)",
    )
    .bind(tenants)
    .fetch_one(pool)
    .await
}

/// Every check's (element, zh, en, about pupils) — re-exported for pages.
pub fn check_list() -> &'static [(&'static str, &'static str, &'static str, bool)] {
    CHECKS
}

/// Indicators shown in the overview's cards and the school page's comparison.
pub fn headline() -> impl Iterator<Item = &'static Indicator> {
    INDICATORS.iter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::indicators::by_code;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn rates_sum_parts_head_counts_average_and_stocks_take_the_last_day() {
        let mut s = Series::default();
        s.add(d("2026-03-02"), "present", 90.0);
        s.add(d("2026-03-02"), "enrolled", 100.0);
        s.add(d("2026-03-03"), "present", 10.0);
        s.add(d("2026-03-03"), "enrolled", 10.0);
        s.add(d("2026-03-02"), "pupils", 100.0);
        s.add(d("2026-03-03"), "pupils", 50.0);
        s.add(d("2026-03-02"), "chronic_90", 7.0);
        s.add(d("2026-03-02"), "chronic_base", 100.0);
        s.add(d("2026-03-03"), "chronic_90", 3.0);
        s.add(d("2026-03-03"), "chronic_base", 100.0);
        let rate = s.value(by_code("attendance_rate").unwrap());
        // (90 + 10) / (100 + 10), not the mean of 90% and 100%.
        assert_eq!(rate.numerator, 100.0);
        assert_eq!(rate.denominator, Some(110.0));
        assert_eq!(s.value(by_code("pupils").unwrap()).numerator, 75.0);
        let chronic = s.value(by_code("chronic_absence").unwrap());
        assert_eq!((chronic.numerator, chronic.denominator), (3.0, Some(100.0)));
        let both = total([rate, rate]);
        assert_eq!(both.denominator, Some(220.0));
    }

    #[test]
    fn filters_refuse_reversed_or_overlong_periods_and_unknown_group_sets() {
        let today = d("2026-03-10");
        let ok = Filter::parse(&FilterParams::default(), today).unwrap();
        assert_eq!((ok.from, ok.to), (d("2026-02-09"), today));
        let p = |from: &str, to: &str| FilterParams {
            from: Some(from.into()),
            to: Some(to.into()),
            ..FilterParams::default()
        };
        assert!(Filter::parse(&p("2026-03-05", "2026-03-01"), today).is_err());
        assert!(Filter::parse(&p("2024-01-01", "2026-03-01"), today).is_err());
        assert!(Filter::parse(&p("2026-3-1x", "2026-03-01"), today).is_err());
        let bad_kind = FilterParams {
            kind: Some("college".into()),
            ..FilterParams::default()
        };
        assert!(Filter::parse(&bad_kind, today).is_err());
    }
}
