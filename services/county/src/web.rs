//! The dashboard's pages and downloads: the county overview with a ranked table of schools
//! (sparklines drawn as inline SVG, so the table works without JavaScript), a school's page
//! with grade and class breakdowns beside the county, both with date-range and group-set
//! filters and ECharts trend charts; and the same school page on a school's own host.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use campus_identity::{AuthRejection, CurrentUser};
use campus_tenant::routing::CurrentSchool;
use campus_web::Lang;
use chrono::{DateTime, NaiveDate, Utc};

use crate::access::{self, Answer};
use crate::export;
use crate::indicators::{by_code, Indicator, INDICATORS};
use crate::query::{self, BadFilter, Filter, FilterParams, School};
use crate::report::{self, Cell, Overview, SchoolReport, UNIT_COLUMNS};
use crate::CountyState;

/// Today in China, the default end of a period.
pub fn today() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(8)).date_naive()
}

pub fn kind_name(kind: &str) -> &'static str {
    match kind {
        "primary" => "小学",
        "junior" => "初中",
        "nine_year" => "九年一贯制",
        "senior" => "高中",
        "complete" => "完全中学",
        _ => "其他",
    }
}

pub fn locality_name(l: &str) -> &'static str {
    if l == "rural" {
        "乡村"
    } else {
        "城区"
    }
}

const KINDS: [(&str, &str); 5] = [
    ("primary", "小学"),
    ("junior", "初中"),
    ("nine_year", "九年一贯制"),
    ("senior", "高中"),
    ("complete", "完全中学"),
];

/// JSON for a `<script type="application/json">` island: `<` escaped so no `</script>` can
/// close it early.
fn island(v: &serde_json::Value) -> String {
    v.to_string().replace('<', "\\u003c")
}

fn chart_json(days: &[NaiveDate], trends: &[report::Trend]) -> String {
    island(&serde_json::json!({
        "days": days.iter().map(|d| d.format("%m-%d").to_string()).collect::<Vec<_>>(),
        "lines": trends,
    }))
}

/// An inline SVG sparkline of a series (gaps where a day has no value).
pub fn sparkline(points: &[Option<f64>]) -> String {
    let vals: Vec<f64> = points.iter().flatten().copied().collect();
    if vals.is_empty() {
        return "—".into();
    }
    let (lo, hi) = vals
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    let span = if hi > lo { hi - lo } else { 1.0 };
    let (w, h) = (120.0, 24.0);
    let step = if points.len() > 1 {
        w / (points.len() - 1) as f64
    } else {
        0.0
    };
    let mut paths = Vec::new();
    let mut current = String::new();
    for (i, p) in points.iter().enumerate() {
        match p {
            Some(v) => {
                let x = step * i as f64;
                let y = h - 2.0 - (v - lo) / span * (h - 4.0);
                current.push_str(&format!("{x:.1},{y:.1} "));
            }
            None if !current.is_empty() => paths.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        paths.push(current);
    }
    let lines: String = paths
        .iter()
        .map(|p| format!("<polyline fill=\"none\" stroke=\"currentColor\" stroke-width=\"1.5\" points=\"{}\"/>", p.trim()))
        .collect();
    format!("<svg class=\"spark\" width=\"120\" height=\"24\" viewBox=\"0 0 120 24\" role=\"img\" aria-label=\"trend\">{lines}</svg>")
}

fn updated(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| {
        (t + chrono::Duration::hours(8))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string()
    })
    .unwrap_or_else(|| "—".into())
}

fn bad_filter(b: BadFilter) -> Response {
    campus_web::message_page(
        StatusCode::UNPROCESSABLE_ENTITY,
        campus_web::PLATFORM_NAME,
        ("筛选条件有误", b.0),
        ("Bad filter", b.1),
    )
}

fn unavailable(e: sqlx::Error) -> Response {
    tracing::error!(error = %e, "reading the dashboard failed");
    campus_web::message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        campus_web::PLATFORM_NAME,
        ("服务暂时不可用", "请稍后刷新重试。"),
        ("Temporarily unavailable", "Please try again in a moment."),
    )
}

fn metric_of(p: &FilterParams) -> Result<&'static Indicator, BadFilter> {
    match p.metric.as_deref().filter(|m| !m.is_empty()) {
        None => Ok(by_code("attendance_rate").expect("defined")),
        Some(m) => by_code(m).ok_or(BadFilter(
            "没有这个指标。",
            "No such indicator; see the list in the form.",
        )),
    }
}

struct Kpi {
    code: &'static str,
    name: &'static str,
    period: String,
    last: String,
}

struct RankRow {
    slug: String,
    name: String,
    township: String,
    kind: &'static str,
    value: String,
    versus: String,
    spark: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    lang: Lang,
    action: &'static str,
    county: bool,
    from: String,
    to: String,
    township: String,
    kind: String,
    locality: String,
    metric: String,
    townships: Vec<String>,
    kinds: [(&'static str, &'static str); 5],
    metrics: Vec<(&'static str, &'static str)>,
    threshold: i64,
    updated: String,
    kpis: Vec<Kpi>,
    metric_name: &'static str,
    query: String,
    rows: Vec<RankRow>,
    echarts: &'static str,
    chart_json: String,
    chart_js: &'static str,
}

fn shell(lang: Lang, user: &CurrentUser, site: &str, title: &str, body: &str) -> Response {
    campus_web::Shell {
        title,
        site_name: site,
        badge_url: None,
        theme_color: None,
        body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(StatusCode::OK)
}

fn versus(ind: &Indicator, mine: &Cell, county: &Cell) -> String {
    match (mine.value, county.value) {
        (Some(a), Some(b)) if ind.denominator.is_some() => format!("{:+.1}", a - b),
        _ => "—".into(),
    }
}

/// `GET /dashboard` on the county host.
pub async fn overview(
    State(st): State<CountyState>,
    user: Result<CurrentUser, AuthRejection>,
    lang: Lang,
    Query(p): Query<FilterParams>,
) -> Response {
    let user = match access::bureau(user, Answer::Page) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let (f, metric) = match Filter::parse(&p, today()).and_then(|f| Ok((f, metric_of(&p)?))) {
        Ok(x) => x,
        Err(b) => return bad_filter(b),
    };
    let pool = st.db.shared();
    let (o, townships) = match tokio_join(
        report::overview(pool, &f, metric, st.min_cell),
        query::townships(pool),
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    let county_cell = o.county.get(metric.code).cloned();
    let rows = o
        .schools
        .iter()
        .map(|l| {
            let mine = l.indicators.get(metric.code);
            RankRow {
                slug: l.school.slug.clone(),
                name: l.school.name.clone(),
                township: l.school.township.clone(),
                kind: kind_name(&l.school.kind),
                value: mine.map_or("—".into(), |c| c.text.clone()),
                versus: match (mine, &county_cell) {
                    (Some(m), Some(c)) => versus(metric, m, c),
                    _ => "—".into(),
                },
                spark: sparkline(&l.spark),
            }
        })
        .collect();
    let page = OverviewPage {
        lang,
        action: "/dashboard",
        county: true,
        from: f.from.to_string(),
        to: f.to.to_string(),
        township: f.township.clone().unwrap_or_default(),
        kind: f.kind.clone().unwrap_or_default(),
        locality: f.locality.clone().unwrap_or_default(),
        metric: metric.code.into(),
        townships,
        kinds: KINDS,
        metrics: INDICATORS.iter().map(|i| (i.code, i.zh)).collect(),
        threshold: o.threshold,
        updated: updated(o.updated_at),
        kpis: INDICATORS
            .iter()
            .map(|i| Kpi {
                code: i.code,
                name: i.zh,
                period: o.county.get(i.code).map_or("—".into(), |c| c.text.clone()),
                last: o
                    .last_day
                    .get(i.code)
                    .map_or("—".into(), |c| c.text.clone()),
            })
            .collect(),
        metric_name: metric.zh,
        query: format!("{}&metric={}", f.query(), metric.code),
        rows,
        echarts: crate::assets::ECHARTS_PATH,
        chart_json: chart_json(&o.days, &o.trends),
        chart_js: crate::assets::CHART_PATH,
    };
    match page.render() {
        Ok(body) => shell(
            lang,
            &user,
            campus_web::PLATFORM_NAME,
            "全县数据看板",
            &body,
        ),
        Err(e) => {
            tracing::error!(error = %e, "rendering the overview failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn tokio_join<A, B>(
    a: impl std::future::Future<Output = sqlx::Result<A>>,
    b: impl std::future::Future<Output = sqlx::Result<B>>,
) -> sqlx::Result<(A, B)> {
    let (a, b) = futures::join!(a, b);
    Ok((a?, b?))
}

#[derive(Template)]
#[template(path = "school.html")]
struct SchoolPage {
    lang: Lang,
    action: String,
    county: bool,
    from: String,
    to: String,
    township: String,
    kind: String,
    locality: String,
    metric: String,
    townships: Vec<String>,
    kinds: [(&'static str, &'static str); 5],
    metrics: Vec<(&'static str, &'static str)>,
    name: String,
    place: String,
    threshold: i64,
    updated: String,
    query: String,
    export: String,
    json: String,
    comparisons: Vec<CompareRow>,
    unit_headers: Vec<&'static str>,
    grades: Vec<UnitRow>,
    classes: Vec<UnitRow>,
    leave: Vec<(String, String)>,
    roles: Vec<(String, String)>,
    checks: Vec<(String, String)>,
    echarts: &'static str,
    chart_json: String,
    chart_js: &'static str,
}

struct CompareRow {
    code: String,
    name: String,
    school: String,
    county: String,
    difference: String,
    tone: &'static str,
}

struct UnitRow {
    name: String,
    cells: Vec<String>,
}

fn school_page_body(r: &SchoolReport, lang: Lang, county: bool) -> Result<String, askama::Error> {
    let base = if county {
        format!("/dashboard/schools/{}", r.school.slug)
    } else {
        "/dashboard".into()
    };
    let unit_rows = |lines: &[report::UnitLine]| {
        lines
            .iter()
            .map(|l| UnitRow {
                name: if l.class_id == 0 {
                    report::grade_name(l.grade_level)
                } else {
                    l.name.clone()
                },
                cells: UNIT_COLUMNS
                    .iter()
                    .map(|c| l.indicators.get(*c).map_or("—".into(), |c| c.text.clone()))
                    .collect(),
            })
            .collect()
    };
    SchoolPage {
        lang,
        action: base.clone(),
        county: false,
        from: r.filter.from.to_string(),
        to: r.filter.to.to_string(),
        township: String::new(),
        kind: String::new(),
        locality: String::new(),
        metric: String::new(),
        townships: Vec::new(),
        kinds: KINDS,
        metrics: Vec::new(),
        name: r.school.name.clone(),
        place: format!(
            "{} · {} · {}",
            if r.school.township.is_empty() {
                "—"
            } else {
                &r.school.township
            },
            kind_name(&r.school.kind),
            locality_name(&r.school.locality)
        ),
        threshold: r.threshold,
        updated: updated(r.updated_at),
        query: r.filter.query(),
        export: if county {
            format!("/dashboard/export/{}", r.school.slug)
        } else {
            "/dashboard/export".into()
        },
        json: if county {
            format!("/api/v1/county/schools/{}", r.school.slug)
        } else {
            "/api/v1/dashboard".into()
        },
        comparisons: r
            .indicators
            .iter()
            .map(|c| CompareRow {
                code: c.code.clone(),
                name: c.name.clone(),
                school: c.school.text.clone(),
                county: c.county.text.clone(),
                difference: c.difference.map_or("—".into(), |d| format!("{d:+.1}")),
                tone: match c.difference {
                    Some(d) if (d > 0.0) == c.higher_is_better && d != 0.0 => "good",
                    Some(d) if d != 0.0 => "bad",
                    _ => "",
                },
            })
            .collect(),
        unit_headers: UNIT_COLUMNS
            .iter()
            .filter_map(|c| by_code(c))
            .map(|i| i.zh)
            .collect(),
        grades: unit_rows(&r.grades),
        classes: unit_rows(&r.classes),
        leave: r
            .leave
            .iter()
            .map(|l| (l.name.clone(), l.cell.text.clone()))
            .collect(),
        roles: r
            .roles
            .iter()
            .map(|l| (l.name.clone(), l.cell.text.clone()))
            .collect(),
        checks: r
            .checks
            .iter()
            .map(|l| (l.name.clone(), l.cell.text.clone()))
            .collect(),
        echarts: crate::assets::ECHARTS_PATH,
        chart_json: chart_json(&r.days, &r.trends),
        chart_js: crate::assets::CHART_PATH,
    }
    .render()
    .map(|body| {
        if county {
            body
        } else {
            body.replace(
                "<p><a href=\"/dashboard?",
                "<p hidden><a href=\"/dashboard?",
            )
        }
    })
}

/// The school with this slug among active schools (404 otherwise).
pub async fn school_by_slug(st: &CountyState, slug: &str) -> Result<Option<School>, sqlx::Error> {
    let all = query::schools(
        st.db.shared(),
        &Filter {
            from: today(),
            to: today(),
            township: None,
            kind: None,
            locality: None,
        },
    )
    .await?;
    Ok(all.into_iter().find(|s| s.slug == slug))
}

fn no_school() -> Response {
    campus_web::message_page(
        StatusCode::NOT_FOUND,
        campus_web::PLATFORM_NAME,
        ("找不到这所学校", "本县没有这个学校代码，或学校已停用。"),
        ("School not found", "No active school has this code."),
    )
}

/// `GET /dashboard/schools/{slug}` on the county host.
pub async fn school_page(
    State(st): State<CountyState>,
    user: Result<CurrentUser, AuthRejection>,
    lang: Lang,
    Path(slug): Path<String>,
    Query(p): Query<FilterParams>,
) -> Response {
    let user = match access::bureau(user, Answer::Page) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let f = match Filter::parse(&p, today()) {
        Ok(f) => f,
        Err(b) => return bad_filter(b),
    };
    let school = match school_by_slug(&st, &slug).await {
        Ok(Some(s)) => s,
        Ok(None) => return no_school(),
        Err(e) => return unavailable(e),
    };
    let r = match report::school(st.db.shared(), school, &f, st.min_cell).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    match school_page_body(&r, lang, true) {
        Ok(body) => shell(
            lang,
            &user,
            campus_web::PLATFORM_NAME,
            &r.school.name,
            &body,
        ),
        Err(e) => {
            tracing::error!(error = %e, "rendering a school's dashboard failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The school of this host as a dashboard school.
fn own_school(school: &CurrentSchool) -> School {
    School {
        tenant_id: school.0.id.0,
        slug: school.0.slug.to_string(),
        name: school.0.name.clone(),
        township: String::new(),
        kind: String::new(),
        locality: String::new(),
    }
}

pub(crate) async fn own_report(
    st: &CountyState,
    school: &CurrentSchool,
    f: &Filter,
) -> sqlx::Result<SchoolReport> {
    let mut me = own_school(school);
    let all = query::schools(
        st.db.shared(),
        &Filter {
            township: None,
            kind: None,
            locality: None,
            ..f.clone()
        },
    )
    .await?;
    if let Some(found) = all.into_iter().find(|s| s.tenant_id == me.tenant_id) {
        me = found;
    }
    // The school's own leaders see their own figures in full; county comparisons are
    // ratios and per-school means over every school, which name no pupil.
    report::school(st.db.shared(), me, f, 0).await
}

/// `GET /dashboard` on a school's host: the school page for its leaders.
pub async fn own_school_page(
    State(st): State<CountyState>,
    school: CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    lang: Lang,
    Query(p): Query<FilterParams>,
) -> Response {
    let user = match access::school_leader(user, Answer::Page) {
        Ok(u) => u,
        Err(r) => return r.into_response(),
    };
    let f = match Filter::parse(&p, today()) {
        Ok(f) => f,
        Err(b) => return bad_filter(b),
    };
    let r = match own_report(&st, &school, &f).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    match school_page_body(&r, lang, false) {
        Ok(body) => shell(lang, &user, &school.0.name, "数据看板", &body),
        Err(e) => {
            tracing::error!(error = %e, "rendering a school's dashboard failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

fn no_table() -> Response {
    campus_web::message_page(
        StatusCode::NOT_FOUND,
        campus_web::PLATFORM_NAME,
        (
            "没有这张表",
            "可导出的表：schools、indicators、grades、classes，格式 .xlsx 或 .csv。",
        ),
        (
            "No such table",
            "Tables: schools, indicators, grades, classes as .xlsx or .csv.",
        ),
    )
}

fn school_table(r: &SchoolReport, table: &str) -> Option<export::Table> {
    match table {
        "indicators" => Some(export::indicators_table(r)),
        "grades" => Some(export::units_table(r, true)),
        "classes" => Some(export::units_table(r, false)),
        _ => None,
    }
}

/// `GET /dashboard/export/schools.{xlsx|csv}` on the county host: the ranked table.
pub async fn county_export(
    State(st): State<CountyState>,
    user: Result<CurrentUser, AuthRejection>,
    Path(file): Path<String>,
    Query(p): Query<FilterParams>,
) -> Response {
    if let Err(r) = access::bureau(user, Answer::Page) {
        return r.into_response();
    }
    let Some((table, format)) = export::parse_file(&file) else {
        return no_table();
    };
    let f = match Filter::parse(&p, today()) {
        Ok(f) => f,
        Err(b) => return bad_filter(b),
    };
    if table == "schools" {
        let metric = match metric_of(&p) {
            Ok(m) => m,
            Err(b) => return bad_filter(b),
        };
        let o: Overview = match report::overview(st.db.shared(), &f, metric, st.min_cell).await {
            Ok(o) => o,
            Err(e) => return unavailable(e),
        };
        return export::download(&export::schools_table(&o), format, &file);
    }
    no_table()
}

/// `GET /dashboard/export/{slug}/{indicators|grades|classes}.{xlsx|csv}` on the county host.
pub async fn county_school_export(
    State(st): State<CountyState>,
    user: Result<CurrentUser, AuthRejection>,
    Path((slug, file)): Path<(String, String)>,
    Query(p): Query<FilterParams>,
) -> Response {
    if let Err(r) = access::bureau(user, Answer::Page) {
        return r.into_response();
    }
    let Some((table, format)) = export::parse_file(&file) else {
        return no_table();
    };
    let f = match Filter::parse(&p, today()) {
        Ok(f) => f,
        Err(b) => return bad_filter(b),
    };
    let school = match school_by_slug(&st, &slug).await {
        Ok(Some(s)) => s,
        Ok(None) => return no_school(),
        Err(e) => return unavailable(e),
    };
    let r = match report::school(st.db.shared(), school, &f, st.min_cell).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    match school_table(&r, table) {
        Some(t) => export::download(&t, format, &format!("{slug}-{file}")),
        None => no_table(),
    }
}

/// `GET /dashboard/export/{file}` on a school's host.
pub async fn own_school_export(
    State(st): State<CountyState>,
    school: CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    Path(file): Path<String>,
    Query(p): Query<FilterParams>,
) -> Response {
    if let Err(r) = access::school_leader(user, Answer::Page) {
        return r.into_response();
    }
    let Some((table, format)) = export::parse_file(&file) else {
        return no_table();
    };
    let f = match Filter::parse(&p, today()) {
        Ok(f) => f,
        Err(b) => return bad_filter(b),
    };
    let r = match own_report(&st, &school, &f).await {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    match school_table(&r, table) {
        Some(t) => export::download(&t, format, &file),
        None => no_table(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_break_at_missing_days_and_escape_nothing_from_input() {
        let svg = sparkline(&[Some(90.0), Some(95.0), None, Some(100.0)]);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(sparkline(&[None, None]), "—");
        assert_eq!(
            island(&serde_json::json!({"a": "</script>"})),
            "{\"a\":\"\\u003c/script>\"}"
        );
    }
}
