//! The dashboard's tables, built once for pages, exports and the JSON API alike, with the
//! small-cell rule applied: for the bureau, a cell that counts fewer pupils than the
//! threshold (but some) is shown as "<5" and its numbers are withheld, so no figure can
//! single out a pupil. A school's own leaders see their school unsuppressed (they may open
//! the pupils' records anyway).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;

use crate::indicators::{self, by_code, Indicator, Over, Unit, Value, INDICATORS};
use crate::query::{self, Filter, School, Series};
use crate::suppress::{self, Group};

/// One figure as shown.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Cell {
    /// The shown number (percent, minutes or count); null when suppressed or undefined.
    pub value: Option<f64>,
    /// The numerator and denominator behind it; null when suppressed.
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    /// Fewer pupils than the threshold: withheld.
    pub suppressed: bool,
    /// The text a table shows, e.g. "96.2%", "<5" or "—".
    pub text: String,
}

/// `threshold` 0 shows everything.
pub fn cell(ind: &Indicator, v: Value, threshold: i64) -> Cell {
    let t = threshold as f64;
    let small = |n: f64| n > 0.0 && n < t;
    let suppressed = threshold > 0
        && (v.pupil_count(ind).is_some_and(small)
            || (ind.pupils.is_some() && v.denominator.is_some_and(small)));
    if suppressed {
        return Cell {
            value: None,
            numerator: None,
            denominator: None,
            suppressed: true,
            text: format!("<{threshold}"),
        };
    }
    let shown = v.shown(ind);
    Cell {
        value: shown.map(|x| (x * 10.0).round() / 10.0),
        numerator: Some(v.numerator),
        denominator: v.denominator,
        suppressed: false,
        text: indicators::format(ind, shown),
    }
}

/// A plain count that may concern pupils (checks, leave categories).
pub fn count_cell(n: f64, pupils: bool, threshold: i64) -> Cell {
    let ind = Indicator {
        code: "",
        zh: "",
        en: "",
        numerator: &[],
        denominator: None,
        over: Over::Sum,
        unit: Unit::Count,
        pupils: pupils.then_some(true),
        higher_is_better: false,
    };
    cell(
        &ind,
        Value {
            numerator: n,
            denominator: None,
        },
        threshold,
    )
}

/// What a cell withheld as a complement shows: it is not itself small, but with it shown a
/// small cell could be worked out from a total (see [`crate::suppress`]).
pub const COMPLEMENT: &str = "*";

/// Withholds `c` as a complement (a cell already withheld stays as it is).
pub fn withhold(c: &mut Cell) {
    if !c.suppressed {
        *c = Cell {
            value: None,
            numerator: None,
            denominator: None,
            suppressed: true,
            text: COMPLEMENT.into(),
        };
    }
}

/// The pupil count behind a value, for choosing which cell to withhold as a complement.
fn size(ind: &Indicator, v: &Value) -> f64 {
    v.pupil_count(ind).unwrap_or(0.0).max(0.0)
}

/// Whether `s` is among the schools `f` selects (township, kind, urban/rural).
fn selects(f: &Filter, s: &School) -> bool {
    f.township.as_ref().is_none_or(|t| *t == s.township)
        && f.kind.as_ref().is_none_or(|k| *k == s.kind)
        && f.locality.as_ref().is_none_or(|l| *l == s.locality)
}

/// The county-level cells the bureau may not see, per pupil indicator: schools' cells and
/// the totals of every selection of schools the filters can make (the county, a township,
/// a kind, urban or rural, and their combinations). Worked out over the whole county at
/// once, so that every filter shows the same cells withheld and no two views together
/// give a withheld cell away.
#[derive(Debug, Default)]
pub struct CountyWithheld {
    schools: HashMap<&'static str, HashSet<i64>>,
    totals: HashMap<&'static str, HashSet<Vec<i64>>>,
}

impl CountyWithheld {
    pub fn compute(all: &[School], series: &HashMap<i64, Series>, threshold: i64) -> Self {
        let mut out = Self::default();
        if threshold <= 0 || all.is_empty() {
            return out;
        }
        // Every selection a filter can make, once per distinct set of schools.
        let distinct = |f: fn(&School) -> &String| {
            let mut v: Vec<Option<String>> = all.iter().map(|s| Some(f(s).clone())).collect();
            v.sort();
            v.dedup();
            v.insert(0, None);
            v
        };
        let mut selections: Vec<Vec<usize>> = Vec::new();
        let mut seen: HashSet<Vec<usize>> = HashSet::new();
        for township in distinct(|s| &s.township) {
            for kind in distinct(|s| &s.kind) {
                for locality in distinct(|s| &s.locality) {
                    let f = Filter {
                        from: NaiveDate::MIN,
                        to: NaiveDate::MIN,
                        township: township.clone(),
                        kind: kind.clone(),
                        locality: locality.clone(),
                    };
                    let members: Vec<usize> =
                        (0..all.len()).filter(|&i| selects(&f, &all[i])).collect();
                    if !members.is_empty() && seen.insert(members.clone()) {
                        selections.push(members);
                    }
                }
            }
        }
        let n = all.len();
        let groups: Vec<Group> = selections
            .iter()
            .enumerate()
            .map(|(k, members)| Group {
                total: n + k,
                parts: members.clone(),
            })
            .collect();
        let empty = Series::default();
        for ind in INDICATORS.iter().filter(|i| i.pupils.is_some()) {
            let mut values: Vec<Value> = all
                .iter()
                .map(|s| series.get(&s.tenant_id).unwrap_or(&empty).value(ind))
                .collect();
            for members in &selections {
                let total = query::total(members.iter().map(|&i| values[i]));
                values.push(total);
            }
            let sizes: Vec<f64> = values.iter().map(|v| size(ind, v)).collect();
            let mut hidden: Vec<bool> = values
                .iter()
                .map(|v| cell(ind, *v, threshold).suppressed)
                .collect();
            suppress::complete(&sizes, &mut hidden, &groups);
            out.schools.insert(
                ind.code,
                (0..n)
                    .filter(|&i| hidden[i])
                    .map(|i| all[i].tenant_id)
                    .collect(),
            );
            out.totals.insert(
                ind.code,
                selections
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| hidden[n + k])
                    .map(|(_, m)| {
                        let mut ids: Vec<i64> = m.iter().map(|&i| all[i].tenant_id).collect();
                        ids.sort_unstable();
                        ids
                    })
                    .collect(),
            );
        }
        out
    }

    /// Whether a school's cell of `code` is withheld.
    pub fn school(&self, code: &str, tenant: i64) -> bool {
        self.schools.get(code).is_some_and(|s| s.contains(&tenant))
    }

    /// Whether the total of `code` over exactly these schools is withheld.
    pub fn total(&self, code: &str, tenants: &[i64]) -> bool {
        let mut ids = tenants.to_vec();
        ids.sort_unstable();
        self.totals.get(code).is_some_and(|t| t.contains(&ids))
    }
}

/// Days of a shown figure: `daily` adds up to the period's figure, so a single withheld
/// day among shown ones takes another with it; all withheld when `whole` is.
fn protect_days(ind: &Indicator, daily: &[Value], whole: bool, threshold: i64) -> Vec<Option<f64>> {
    let mut cells: Vec<Cell> = daily.iter().map(|v| cell(ind, *v, threshold)).collect();
    if threshold > 0 && ind.pupils.is_some() {
        if whole {
            cells.iter_mut().for_each(withhold);
        } else {
            let mut sizes = vec![0.0];
            sizes.extend(daily.iter().map(|v| size(ind, v)));
            let mut hidden = vec![false];
            hidden.extend(cells.iter().map(|c| c.suppressed));
            let group = Group {
                total: 0,
                parts: (1..=cells.len()).collect(),
            };
            for c in suppress::complete(&sizes, &mut hidden, &[group]) {
                if c > 0 {
                    withhold(&mut cells[c - 1]);
                }
            }
        }
    }
    cells.into_iter().map(|c| c.value).collect()
}

/// One indicator's line in a trend chart.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Trend {
    pub code: String,
    pub name: String,
    /// One value per day of the period (null: suppressed or nothing that day).
    pub points: Vec<Option<f64>>,
}

/// A school's line in the ranked table.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SchoolLine {
    pub school: School,
    /// Every indicator over the period.
    pub indicators: BTreeMap<String, Cell>,
    /// The ranked indicator day by day (sparkline).
    pub spark: Vec<Option<f64>>,
}

/// The county overview.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Overview {
    pub filter: Filter,
    pub threshold: i64,
    pub metric: String,
    pub days: Vec<NaiveDate>,
    /// The county as a whole over the period (ratios of sums over every school).
    pub county: BTreeMap<String, Cell>,
    /// Today's (the period's last day) county figures.
    pub last_day: BTreeMap<String, Cell>,
    pub trends: Vec<Trend>,
    /// Schools ranked by `metric`, best first.
    pub schools: Vec<SchoolLine>,
    /// When the least recently updated school's rollups were last brought up to date.
    pub updated_at: Option<DateTime<Utc>>,
}

/// Indicators drawn in the trend charts.
pub const TREND: &[&str] = &[
    "attendance_rate",
    "register_completeness",
    "notice_read_rate",
    "receipt_rate",
];

fn rank(lines: &mut [SchoolLine], ind: &Indicator) {
    lines.sort_by(|a, b| {
        let va = a.indicators.get(ind.code).and_then(|c| c.value);
        let vb = b.indicators.get(ind.code).and_then(|c| c.value);
        match (va, vb) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                if ind.higher_is_better {
                    o.reverse()
                } else {
                    o
                }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.school.name.cmp(&b.school.name),
        }
    });
}

pub async fn overview(
    pool: &PgPool,
    f: &Filter,
    metric: &Indicator,
    threshold: i64,
) -> sqlx::Result<Overview> {
    // The whole county is read whatever the filter: what is withheld is decided over every
    // selection of schools at once (see `CountyWithheld`).
    let all = query::schools(
        pool,
        &Filter {
            township: None,
            kind: None,
            locality: None,
            ..f.clone()
        },
    )
    .await?;
    let all_ids: Vec<i64> = all.iter().map(|s| s.tenant_id).collect();
    let series = query::school_series(pool, &all_ids, f).await?;
    let withheld = CountyWithheld::compute(&all, &series, threshold);
    let schools: Vec<School> = all.into_iter().filter(|s| selects(f, s)).collect();
    let ids: Vec<i64> = schools.iter().map(|s| s.tenant_id).collect();
    let days = f.days();
    let empty = Series::default();
    let mut county = BTreeMap::new();
    let mut last_day = BTreeMap::new();
    for ind in INDICATORS {
        let per_school = ids
            .iter()
            .map(|id| series.get(id).unwrap_or(&empty).value(ind));
        let mut total = cell(ind, query::total(per_school), threshold);
        if withheld.total(ind.code, &ids) {
            withhold(&mut total);
        }
        county.insert(ind.code.to_owned(), total);
        let last = ids.iter().map(|id| {
            let mut one = Series::default();
            if let Some(v) = series.get(id).and_then(|s| s.0.get(&f.to)) {
                one.0.insert(f.to, v.clone());
            }
            one.value(ind)
        });
        last_day.insert(
            ind.code.to_owned(),
            cell(ind, query::total(last), threshold),
        );
    }
    let trends = TREND
        .iter()
        .filter_map(|c| by_code(c))
        .map(|ind| {
            let daily: Vec<Value> = (0..days.len())
                .map(|i| {
                    query::total(
                        ids.iter()
                            .map(|id| series.get(id).unwrap_or(&empty).daily(ind, &days[i..=i])[0]),
                    )
                })
                .collect();
            Trend {
                code: ind.code.into(),
                name: ind.zh.into(),
                points: protect_days(
                    ind,
                    &daily,
                    county.get(ind.code).is_some_and(|c| c.suppressed),
                    threshold,
                ),
            }
        })
        .collect();
    let mut lines: Vec<SchoolLine> = schools
        .into_iter()
        .map(|school| {
            let s = series.get(&school.tenant_id).unwrap_or(&empty);
            let indicators: BTreeMap<String, Cell> = INDICATORS
                .iter()
                .map(|ind| {
                    let mut c = cell(ind, s.value(ind), threshold);
                    if withheld.school(ind.code, school.tenant_id) {
                        withhold(&mut c);
                    }
                    (ind.code.to_owned(), c)
                })
                .collect();
            SchoolLine {
                spark: protect_days(
                    metric,
                    &s.daily(metric, &days),
                    indicators.get(metric.code).is_some_and(|c| c.suppressed),
                    threshold,
                ),
                indicators,
                school,
            }
        })
        .collect();
    rank(&mut lines, metric);
    Ok(Overview {
        filter: f.clone(),
        threshold,
        metric: metric.code.into(),
        days,
        county,
        last_day,
        trends,
        schools: lines,
        updated_at: query::freshness(pool, &ids).await?,
    })
}

/// Indicators that have class-level values (the grade and class tables' columns).
pub const UNIT_COLUMNS: &[&str] = &[
    "pupils",
    "attendance_rate",
    "absent",
    "late",
    "leave_marks",
    "chronic_absence",
    "leave_requests",
    "leave_not_returned",
    "register_completeness",
    "gate_in",
    "absence_alerts",
];

/// A grade or class line.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct UnitLine {
    pub grade_level: i16,
    /// Class id within the school (0 for a grade line).
    pub class_id: i64,
    pub name: String,
    pub indicators: BTreeMap<String, Cell>,
}

/// One indicator of a school beside the county's.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Comparison {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub school: Cell,
    /// The county figure: the county-wide ratio for rates, the mean per school for counts.
    pub county: Cell,
    /// School minus county, in the indicator's unit (null when either is withheld).
    pub difference: Option<f64>,
    pub higher_is_better: bool,
}

/// A labelled figure (category breakdowns and checks).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Labelled {
    pub code: String,
    pub name: String,
    pub cell: Cell,
}

/// One school's page.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SchoolReport {
    pub school: School,
    pub filter: Filter,
    pub threshold: i64,
    pub days: Vec<NaiveDate>,
    pub indicators: Vec<Comparison>,
    pub trends: Vec<Trend>,
    pub grades: Vec<UnitLine>,
    pub classes: Vec<UnitLine>,
    /// Leave requests by kind and outcome.
    pub leave: Vec<Labelled>,
    /// Active users per day by role.
    pub roles: Vec<Labelled>,
    /// Data-quality checks and guardians bound, as of the last rollup.
    pub checks: Vec<Labelled>,
    pub updated_at: Option<DateTime<Utc>>,
}

fn leave_label(category: &str) -> String {
    let (kind, status) = category.split_once(':').unwrap_or((category, ""));
    let kind = match kind {
        "sick" => "病假",
        "personal" => "事假",
        _ => "其他",
    };
    let status = match status {
        "pending" => "待审批",
        "approved" => "已批准",
        "rejected" => "已驳回",
        "cancelled" => "已撤回",
        "returned" => "已销假",
        _ => status,
    };
    format!("{kind} · {status}")
}

fn role_label(role: &str) -> String {
    campus_identity::permission::role_names(&[role.to_owned()])
}

fn unit_line(series: &Series, grade: i16, class_id: i64, name: String, t: i64) -> UnitLine {
    UnitLine {
        grade_level: grade,
        class_id,
        name,
        indicators: UNIT_COLUMNS
            .iter()
            .filter_map(|c| by_code(c))
            .map(|ind| (ind.code.to_owned(), cell(ind, series.value(ind), t)))
            .collect(),
    }
}

pub async fn school(
    pool: &PgPool,
    school: School,
    f: &Filter,
    threshold: i64,
) -> sqlx::Result<SchoolReport> {
    let all = query::schools(
        pool,
        &Filter {
            township: None,
            kind: None,
            locality: None,
            ..f.clone()
        },
    )
    .await?;
    let ids: Vec<i64> = all.iter().map(|s| s.tenant_id).collect();
    let series = query::school_series(pool, &ids, f).await?;
    let withheld = CountyWithheld::compute(&all, &series, threshold);
    let empty = Series::default();
    let own = series.get(&school.tenant_id).unwrap_or(&empty);
    let n = ids.len().max(1) as f64;
    let mut indicators: Vec<Comparison> = INDICATORS
        .iter()
        .map(|ind| {
            let mut mine = cell(ind, own.value(ind), threshold);
            if withheld.school(ind.code, school.tenant_id) {
                withhold(&mut mine);
            }
            let mut county = query::total(
                ids.iter()
                    .map(|id| series.get(id).unwrap_or(&empty).value(ind)),
            );
            if ind.denominator.is_none() {
                county.numerator /= n;
            }
            let mut county = cell(ind, county, threshold);
            if withheld.total(ind.code, &ids) {
                withhold(&mut county);
            }
            let difference = match (mine.value, county.value) {
                (Some(a), Some(b)) => Some(((a - b) * 10.0).round() / 10.0),
                _ => None,
            };
            Comparison {
                code: ind.code.into(),
                name: ind.zh.into(),
                name_en: ind.en.into(),
                school: mine,
                county,
                difference,
                higher_is_better: ind.higher_is_better,
            }
        })
        .collect();
    let days = f.days();
    let trends = TREND
        .iter()
        .filter_map(|c| by_code(c))
        .map(|ind| Trend {
            code: ind.code.into(),
            name: ind.zh.into(),
            points: protect_days(
                ind,
                &own.daily(ind, &days),
                withheld.school(ind.code, school.tenant_id),
                threshold,
            ),
        })
        .collect();
    let class_series = query::class_series(pool, school.tenant_id, f).await?;
    let mut grade_series: BTreeMap<i16, Series> = BTreeMap::new();
    for c in &class_series {
        let g = grade_series.entry(c.grade_level).or_default();
        for (day, els) in &c.series.0 {
            let d = g.0.entry(*day).or_default();
            for (e, v) in els {
                *d.entry(e.clone()).or_default() += v;
            }
        }
    }
    let mut grades: Vec<UnitLine> = grade_series
        .iter()
        .map(|(level, s)| unit_line(s, *level, 0, grade_name(*level), threshold))
        .collect();
    let mut classes: Vec<UnitLine> = class_series
        .iter()
        .map(|c| {
            unit_line(
                &c.series,
                c.grade_level,
                c.class_id,
                c.class_name.clone(),
                threshold,
            )
        })
        .collect();
    if threshold > 0 {
        // Classes add up to their grade, grades (and classes) to the school.
        for ind in UNIT_COLUMNS
            .iter()
            .filter_map(|c| by_code(c))
            .filter(|i| i.pupils.is_some())
        {
            let Some(mine) = indicators.iter_mut().find(|c| c.code == ind.code) else {
                continue;
            };
            let mut sizes = vec![size(ind, &own.value(ind))];
            sizes.extend(grade_series.values().map(|s| size(ind, &s.value(ind))));
            sizes.extend(class_series.iter().map(|c| size(ind, &c.series.value(ind))));
            let hidden_of = |l: &UnitLine| l.indicators.get(ind.code).is_some_and(|c| c.suppressed);
            let mut hidden = vec![mine.school.suppressed];
            hidden.extend(grades.iter().map(hidden_of));
            hidden.extend(classes.iter().map(hidden_of));
            let g0 = 1;
            let c0 = 1 + grades.len();
            let mut groups = vec![
                Group {
                    total: 0,
                    parts: (g0..c0).collect(),
                },
                Group {
                    total: 0,
                    parts: (c0..c0 + classes.len()).collect(),
                },
            ];
            for (gi, g) in grades.iter().enumerate() {
                groups.push(Group {
                    total: g0 + gi,
                    parts: classes
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.grade_level == g.grade_level)
                        .map(|(ci, _)| c0 + ci)
                        .collect(),
                });
            }
            for c in suppress::complete(&sizes, &mut hidden, &groups) {
                let target = match c {
                    0 => &mut mine.school,
                    c if c < c0 => match grades[c - g0].indicators.get_mut(ind.code) {
                        Some(x) => x,
                        None => continue,
                    },
                    c => match classes[c - c0].indicators.get_mut(ind.code) {
                        Some(x) => x,
                        None => continue,
                    },
                };
                withhold(target);
            }
        }
    }
    let mut leave: Vec<Labelled> =
        query::categories(pool, school.tenant_id, "leave_requests", Over::Sum, f)
            .await?
            .into_iter()
            .map(|(c, v)| Labelled {
                name: leave_label(&c),
                code: c,
                cell: count_cell(v, true, threshold),
            })
            .collect();
    if threshold > 0 {
        // Leave by kind and outcome adds up to the school's leave requests.
        if let Some(mine) = indicators.iter_mut().find(|c| c.code == "leave_requests") {
            let total = by_code("leave_requests").map_or(0.0, |ind| size(ind, &own.value(ind)));
            let mut sizes = vec![total];
            sizes.extend(leave.iter().map(|l| {
                if l.cell.suppressed {
                    0.0
                } else {
                    l.cell.numerator.unwrap_or(0.0)
                }
            }));
            let mut hidden = vec![mine.school.suppressed];
            hidden.extend(leave.iter().map(|l| l.cell.suppressed));
            let group = Group {
                total: 0,
                parts: (1..=leave.len()).collect(),
            };
            for c in suppress::complete(&sizes, &mut hidden, &[group]) {
                if c == 0 {
                    withhold(&mut mine.school);
                } else {
                    withhold(&mut leave[c - 1].cell);
                }
            }
        }
    }
    for c in &mut indicators {
        if c.school.suppressed || c.county.suppressed {
            c.difference = None;
        }
    }
    let roles = query::categories(pool, school.tenant_id, "active_users", Over::Mean, f)
        .await?
        .into_iter()
        .map(|(c, v)| Labelled {
            name: role_label(&c),
            code: c,
            cell: count_cell(v.round(), false, threshold),
        })
        .collect();
    let snap = query::checks(pool, &[school.tenant_id]).await?;
    let snap = snap.get(&school.tenant_id).cloned().unwrap_or_default();
    let mut checks: Vec<Labelled> = query::check_list()
        .iter()
        .map(|(code, zh, _, pupils)| Labelled {
            code: (*code).into(),
            name: (*zh).into(),
            cell: count_cell(snap.get(*code).copied().unwrap_or(0.0), *pupils, threshold),
        })
        .collect();
    let bound = Indicator {
        code: "guardians_bound",
        zh: "家长绑定率",
        en: "Pupils with a guardian account",
        numerator: &[],
        denominator: Some(""),
        over: Over::Sum,
        unit: Unit::Percent,
        pupils: Some(false),
        higher_is_better: true,
    };
    checks.push(Labelled {
        code: "guardians_bound".into(),
        name: "家长绑定率（有家长账号的学生）".into(),
        cell: cell(
            &bound,
            Value {
                numerator: snap.get("pupils_bound").copied().unwrap_or(0.0),
                denominator: Some(snap.get("pupils_now").copied().unwrap_or(0.0)),
            },
            threshold,
        ),
    });
    Ok(SchoolReport {
        updated_at: query::freshness(pool, &[school.tenant_id]).await?,
        school,
        filter: f.clone(),
        threshold,
        days,
        indicators,
        trends,
        grades,
        classes,
        leave,
        roles,
        checks,
    })
}

/// 一年级 … 九年级, 高一 … 高三.
pub fn grade_name(level: i16) -> String {
    const NAMES: [&str; 12] = [
        "一年级",
        "二年级",
        "三年级",
        "四年级",
        "五年级",
        "六年级",
        "七年级",
        "八年级",
        "九年级",
        "高一",
        "高二",
        "高三",
    ];
    usize::try_from(level - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("{level} 年级"), |s| (*s).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_pupil_counts_are_withheld_for_the_bureau_but_not_for_the_school() {
        let absent = by_code("absent").unwrap();
        let three = Value {
            numerator: 3.0,
            denominator: None,
        };
        let c = cell(absent, three, 5);
        assert!(c.suppressed && c.value.is_none() && c.numerator.is_none());
        assert_eq!(c.text, "<5");
        assert_eq!(cell(absent, three, 0).value, Some(3.0));
        // Zero names nobody; five or more is shown.
        assert!(!cell(absent, Value::default(), 5).suppressed);
        let rate = by_code("attendance_rate").unwrap();
        let two_absent = Value {
            numerator: 38.0,
            denominator: Some(40.0),
        };
        assert!(cell(rate, two_absent, 5).suppressed);
        let ten_absent = Value {
            numerator: 30.0,
            denominator: Some(40.0),
        };
        assert_eq!(cell(rate, ten_absent, 5).value, Some(75.0));
        // Not about pupils: shown however small.
        let notices = by_code("notices_sent").unwrap();
        assert!(!cell(notices, three, 5).suppressed);
    }
}
