//! The roster pages (`/admin/roster…`) and JSON API (`/api/v1/roster/…`): upload form,
//! import result, exports and blank templates. Every handler requires the `ManageRoster`
//! permission; imports also require the session's CSRF token (a form field on pages, the
//! `X-CSRF-Token` header in the API).

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use campus_identity::{AuthRejection, CurrentUser, Permission};
use campus_tenant::{CurrentSchool, Tenant};
use campus_web::Lang;
use serde::Deserialize;
use sqlx::Row;

use super::export::{self, Format, Sheet};
use super::schema::Kind;
use super::validate::{today, RowError};
use super::{
    run_import, Counts, FileError, ImportError, Mode, Report, Upload, BODY_LIMIT, FILE_LIMIT,
};
use crate::audit::{self, Action, SENSITIVE_FIELDS};
use crate::SchoolState;

/// A roster as offered in the page's menus.
struct KindOption {
    code: &'static str,
    zh: &'static str,
    en: &'static str,
}

fn kind_options() -> Vec<KindOption> {
    Kind::ALL
        .iter()
        .map(|k| KindOption {
            code: k.code(),
            zh: k.sheet(),
            en: k.name_en(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "roster.html")]
struct IndexPage<'a> {
    lang: Lang,
    csrf: &'a str,
    kinds: Vec<KindOption>,
    valid_only: bool,
    current: Vec<(KindOption, i64)>,
    limit_mb: usize,
}

/// One line of the result table.
struct CountLine {
    zh: &'static str,
    en: &'static str,
    counts: Counts,
}

#[derive(Template)]
#[template(path = "roster_result.html")]
struct ResultPage<'a> {
    lang: Lang,
    csrf: &'a str,
    kinds: Vec<KindOption>,
    valid_only: bool,
    limit_mb: usize,
    file: &'a str,
    written: bool,
    /// A problem with the file as a whole: title and detail in Chinese, then English.
    problem: Option<[String; 4]>,
    lines: Vec<CountLine>,
    errors: &'a [RowError],
    error_count: usize,
    rows: usize,
}

fn shell(
    school: &Tenant,
    user: &CurrentUser,
    lang: Lang,
    title: &str,
    body: &str,
    status: StatusCode,
) -> Response {
    campus_web::Shell {
        title,
        site_name: &school.name,
        badge_url: Some("/badge.svg"),
        theme_color: None,
        body,
        who: campus_web::Who::User(user.badge()),
        lang,
    }
    .into_page(status)
}

fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "roster request failed");
    campus_web::message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        campus_web::PLATFORM_NAME,
        ("服务暂时不可用", "请稍后重试，您的数据未被修改。"),
        (
            "Temporarily unavailable",
            "Please try again in a moment; nothing was changed.",
        ),
    )
}

fn csrf_refused() -> Response {
    campus_web::message_page(
        StatusCode::FORBIDDEN,
        campus_web::PLATFORM_NAME,
        (
            "页面已过期",
            "请刷新名册导入页面后重新提交，未导入任何数据。",
        ),
        (
            "Form expired",
            "Reload the roster page and submit again; nothing was imported.",
        ),
    )
}

/// Compares two tokens in time independent of where they differ.
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

// ---------------------------------------------------------------------------------------
// Upload form
// ---------------------------------------------------------------------------------------

/// `GET /admin/roster`: the upload form, templates and exports.
pub(crate) async fn index(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
) -> Response {
    if let Err(r) = user.require(Permission::ManageRoster) {
        return r.into_response();
    }
    let counts = async {
        let mut tx = state.db.school(&school).await?;
        let r = sqlx::query(
            "select (select count(*) from staff where active) as staff,
                    (select count(*) from classes) as classes,
                    (select count(*) from students where left_on is null) as students,
                    (select count(*) from guardians) as guardians",
        )
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok::<_, campus_tenant::TenantError>(r)
    }
    .await;
    let row = match counts {
        Ok(r) => r,
        Err(e) => return unavailable(e),
    };
    let current = kind_options()
        .into_iter()
        .map(|k| {
            let n: i64 = row.get(k.code);
            (k, n)
        })
        .collect();
    let body = IndexPage {
        lang,
        csrf: &user.csrf_token,
        kinds: kind_options(),
        valid_only: false,
        current,
        limit_mb: FILE_LIMIT / 1024 / 1024,
    }
    .render()
    .unwrap_or_default();
    shell(
        &school,
        &user,
        lang,
        lang.pick("名册导入导出", "Roster import and export"),
        &body,
        StatusCode::OK,
    )
}

// ---------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------

/// The multipart form as read: its fields, and the file unless it was too large.
#[derive(Default)]
struct Form {
    csrf: Option<String>,
    file_name: Option<String>,
    bytes: Vec<u8>,
    kind: Option<String>,
    mode: Option<String>,
}

fn multipart_error(e: &MultipartError) -> FileError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        FileError::TooLarge
    } else {
        FileError::BadForm
    }
}

/// Reads the form to its end. A file over the limit is drained (not kept), so the browser
/// receives the answer instead of a broken connection.
async fn read_form(
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Form, FileError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return Err(FileError::TooLarge);
    }
    let mut mp = multipart.map_err(|_| FileError::BadForm)?;
    let mut form = Form::default();
    let mut too_large = false;
    while let Some(mut field) = mp.next_field().await.map_err(|e| multipart_error(&e))? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            form.file_name = field.file_name().map(str::to_owned);
            while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
                if too_large || form.bytes.len() + chunk.len() > FILE_LIMIT {
                    too_large = true;
                    form.bytes = Vec::new();
                } else {
                    form.bytes.extend_from_slice(&chunk);
                }
            }
            continue;
        }
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
            if value.len() < 256 {
                value.extend_from_slice(&chunk);
            }
        }
        let value = String::from_utf8_lossy(&value).trim().to_owned();
        match name.as_str() {
            "csrf" => form.csrf = Some(value),
            "kind" => form.kind = Some(value),
            "mode" => form.mode = Some(value),
            _ => {}
        }
    }
    if too_large {
        return Err(FileError::TooLarge);
    }
    Ok(form)
}

/// The form's choices and file as an [`Upload`].
fn upload_of(form: Form) -> Result<Upload, FileError> {
    let kind = match form.kind.as_deref().map(str::trim) {
        None | Some("" | "auto") => None,
        Some(k) => Some(Kind::parse(k).ok_or_else(|| FileError::BadRequest {
            zh: format!("不认识的名册类型“{k}”。"),
            en: format!("Unknown roster kind \"{k}\"."),
        })?),
    };
    let mode =
        Mode::parse(form.mode.as_deref().unwrap_or("")).ok_or_else(|| FileError::BadRequest {
            zh: "导入方式只能是 all 或 valid_only。".into(),
            en: "mode must be all or valid_only.".into(),
        })?;
    let file_name = match form.file_name {
        Some(n) if !n.trim().is_empty() => n,
        _ if form.bytes.is_empty() => return Err(FileError::NoFile),
        _ => "upload".into(),
    };
    Ok(Upload {
        file_name: file_name.chars().take(200).collect(),
        bytes: form.bytes,
        kind,
        mode,
    })
}

fn count_lines(imported: &BTreeMap<&'static str, Counts>) -> Vec<CountLine> {
    Kind::ALL
        .iter()
        .filter_map(|k| {
            imported.get(k.code()).map(|c| CountLine {
                zh: k.sheet(),
                en: k.name_en(),
                counts: *c,
            })
        })
        .collect()
}

struct Rendered<'a> {
    file: &'a str,
    valid_only: bool,
    problem: Option<&'a FileError>,
    report: Option<&'a Report>,
}

fn result_page(
    school: &Tenant,
    user: &CurrentUser,
    lang: Lang,
    r: Rendered,
    status: StatusCode,
) -> Response {
    let empty = BTreeMap::new();
    let body = ResultPage {
        lang,
        csrf: &user.csrf_token,
        kinds: kind_options(),
        valid_only: r.valid_only,
        limit_mb: FILE_LIMIT / 1024 / 1024,
        file: r.file,
        written: r.report.is_some_and(|x| x.written),
        problem: r.problem.map(|p| {
            let (a, b) = p.zh();
            let (c, d) = p.en();
            [a, b, c, d]
        }),
        lines: count_lines(r.report.map_or(&empty, |x| &x.imported)),
        errors: r.report.map_or(&[], |x| &x.errors),
        error_count: r.report.map_or(0, |x| x.error_count),
        rows: r.report.map_or(0, |x| x.rows),
    }
    .render()
    .unwrap_or_default();
    let title = if status.is_success() {
        lang.pick("导入完成", "Import finished")
    } else {
        lang.pick("未导入", "Nothing imported")
    };
    shell(school, user, lang, title, &body, status)
}

/// `POST /admin/roster/import` (multipart: `csrf`, `file`, `kind`, `mode`).
pub(crate) async fn import_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Err(r) = user.require(Permission::ManageRoster) {
        return r.into_response();
    }
    let problem = |e: FileError, file: &str| {
        let status = e.status();
        result_page(
            &school,
            &user,
            lang,
            Rendered {
                file,
                valid_only: false,
                problem: Some(&e),
                report: None,
            },
            status,
        )
    };
    let form = match read_form(&headers, multipart).await {
        Ok(f) => f,
        Err(e) => return problem(e, ""),
    };
    if !form
        .csrf
        .as_deref()
        .is_some_and(|t| same_token(t, &user.csrf_token))
    {
        return csrf_refused();
    }
    let upload = match upload_of(form) {
        Ok(u) => u,
        Err(e) => return problem(e, ""),
    };
    let valid_only = upload.mode == Mode::ValidOnly;
    match run_import(&state, &school, &user, &upload).await {
        Ok(report) => result_page(
            &school,
            &user,
            lang,
            Rendered {
                file: &upload.file_name,
                valid_only,
                problem: None,
                report: Some(&report),
            },
            StatusCode::OK,
        ),
        Err(ImportError::Invalid(report)) => result_page(
            &school,
            &user,
            lang,
            Rendered {
                file: &upload.file_name,
                valid_only,
                problem: None,
                report: Some(&report),
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(ImportError::File(e)) => problem(e, &upload.file_name),
        Err(ImportError::Store(e)) => unavailable(e),
    }
}

fn json_error(status: StatusCode, code: &str, message: &str, message_en: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"code": code, "message": message, "message_en": message_en})),
    )
        .into_response()
}

fn json_auth(r: AuthRejection) -> Response {
    match r {
        AuthRejection::NotSignedIn => json_error(
            StatusCode::UNAUTHORIZED,
            "not_signed_in",
            "请先登录。",
            "Sign in first.",
        ),
        AuthRejection::Forbidden(why) => json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            why,
            "Your identity here does not allow this.",
        ),
        AuthRejection::Unavailable => json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "服务暂时不可用。",
            "Try again shortly.",
        ),
    }
}

fn json_file_error(e: &FileError) -> Response {
    let (zh_title, zh) = e.zh();
    let (_, en) = e.en();
    (
        e.status(),
        Json(serde_json::json!({
            "code": e.code(),
            "message": format!("{zh_title}：{zh}"),
            "message_en": en,
            "imported": {},
            "errors": e.as_row_errors(),
        })),
    )
        .into_response()
}

fn json_unavailable(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "roster API request failed");
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "服务暂时不可用，未修改任何数据。",
        "Try again shortly; nothing was changed.",
    )
}

/// The signed-in user, if they hold the roster permission.
fn api_user(user: Result<CurrentUser, AuthRejection>) -> Result<CurrentUser, AuthRejection> {
    let user = user?;
    user.require(Permission::ManageRoster)?;
    Ok(user)
}

/// `POST /api/v1/roster/import`: the same multipart form; CSRF in `X-CSRF-Token`.
pub(crate) async fn import_api(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let user = match api_user(user) {
        Ok(u) => u,
        Err(r) => return json_auth(r),
    };
    let token = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if !token.is_some_and(|t| same_token(t, &user.csrf_token)) {
        return json_error(
            StatusCode::FORBIDDEN,
            "csrf",
            "缺少或错误的 X-CSRF-Token 请求头。",
            "Missing or wrong X-CSRF-Token header.",
        );
    }
    let upload = match read_form(&headers, multipart).await.and_then(upload_of) {
        Ok(u) => u,
        Err(e) => return json_file_error(&e),
    };
    match run_import(&state, &school, &user, &upload).await {
        Ok(report) => (StatusCode::OK, Json(report)).into_response(),
        Err(ImportError::Invalid(report)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Json(report)).into_response()
        }
        Err(ImportError::File(e)) => json_file_error(&e),
        Err(ImportError::Store(e)) => json_unavailable(e),
    }
}

// ---------------------------------------------------------------------------------------
// Export and templates
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
pub(crate) struct FileQuery {
    kind: Option<String>,
    format: Option<String>,
}

/// The rosters and format a query asks for; `kind=all` (or none) means every roster,
/// which only a workbook can hold.
fn choice(q: &FileQuery) -> Result<(Vec<Kind>, Format), FileError> {
    let format =
        Format::parse(q.format.as_deref().unwrap_or("")).ok_or_else(|| FileError::BadRequest {
            zh: "格式只能是 csv、csv-gbk 或 xlsx。".into(),
            en: "format must be csv, csv-gbk or xlsx.".into(),
        })?;
    let kinds = match q.kind.as_deref().map(str::trim) {
        None | Some("" | "all") => Kind::ALL.to_vec(),
        Some(k) => vec![Kind::parse(k).ok_or_else(|| FileError::BadRequest {
            zh: format!("不认识的名册类型“{k}”。"),
            en: format!("Unknown roster kind \"{k}\"."),
        })?],
    };
    if kinds.len() > 1 && format != Format::Xlsx {
        return Err(FileError::BadRequest {
            zh: "CSV 文件一次只能存放一种名册；全部名册请选择 Excel（.xlsx）格式。".into(),
            en: "A CSV file holds one roster; choose xlsx for all of them.".into(),
        });
    }
    Ok((kinds, format))
}

fn file_bytes(sheets: &[Sheet], format: Format) -> Result<Vec<u8>, FileError> {
    match format {
        Format::Xlsx => export::xlsx_bytes(sheets).map_err(|e| {
            tracing::error!(error = %e, "workbook could not be written");
            FileError::BadRequest {
                zh: "无法生成 Excel 文件。".into(),
                en: "The workbook could not be written.".into(),
            }
        }),
        _ => export::csv_bytes(&sheets[0], format),
    }
}

fn download(bytes: Vec<u8>, format: Format, ascii: &str, utf8: &str) -> Response {
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(v) = HeaderValue::from_str(&export::content_disposition(ascii, utf8)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn roster_label(kinds: &[Kind]) -> (&'static str, &'static str) {
    match kinds {
        [k] => (k.code(), k.sheet()),
        _ => ("all", "全部"),
    }
}

/// Why an export did not happen.
enum ExportError {
    File(FileError),
    Store(campus_tenant::TenantError),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<campus_tenant::TenantError> for ExportError {
    fn from(e: campus_tenant::TenantError) -> Self {
        Self::Store(e)
    }
}

/// Loads, writes and audits an export in one school transaction: the audit row names the
/// sensitive pupil fields the file contains and how many pupils it covers.
async fn export_file(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    q: &FileQuery,
) -> Result<Response, ExportError> {
    let (kinds, format) = choice(q).map_err(ExportError::File)?;
    // ID numbers, blood types and medical notes only for those who may reveal them.
    let sensitive = user.can(Permission::PupilSensitive);
    let mut tx = state.db.school(school).await?;
    let mut sheets = Vec::new();
    for kind in &kinds {
        sheets.push(export::load(&mut tx, *kind, sensitive).await?);
    }
    let bytes = match file_bytes(&sheets, format) {
        Ok(b) => b,
        Err(e) => {
            tx.rollback().await?;
            return Err(ExportError::File(e));
        }
    };
    let pupils = sheets
        .iter()
        .find(|s| s.kind == Kind::Students)
        .map_or(0, |s| s.rows.len());
    let rows: BTreeMap<&str, usize> = sheets
        .iter()
        .map(|s| (s.kind.code(), s.rows.len()))
        .collect();
    let (code, zh) = roster_label(&kinds);
    audit::record(
        &mut tx,
        user,
        Action::RosterExport,
        None,
        serde_json::json!({
            "kind": code,
            "format": format.code(),
            "rows": rows,
            "pupils": pupils,
            "sensitive_fields": if kinds.contains(&Kind::Students) && sensitive { SENSITIVE_FIELDS } else { &[] },
            "sensitive_withheld": kinds.contains(&Kind::Students) && !sensitive,
        }),
    )
    .await?;
    tx.commit().await?;
    let day = today().format("%Y%m%d");
    let ext = format.extension();
    let utf8 = if kinds.len() > 1 {
        format!("{}-花名册-{day}.{ext}", school.name)
    } else {
        format!("{}-{zh}名册-{day}.{ext}", school.name)
    };
    Ok(download(
        bytes,
        format,
        &format!("roster-{code}-{day}.{ext}"),
        &utf8,
    ))
}

/// `GET /admin/roster/export?kind=students&format=csv|csv-gbk|xlsx`.
pub(crate) async fn export_page(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(q): Query<FileQuery>,
) -> Response {
    if let Err(r) = user.require(Permission::ManageRoster) {
        return r.into_response();
    }
    match export_file(&state, &school, &user, &q).await {
        Ok(r) => r,
        Err(ExportError::File(e)) => {
            let status = e.status();
            result_page(
                &school,
                &user,
                lang,
                Rendered {
                    file: "",
                    valid_only: false,
                    problem: Some(&e),
                    report: None,
                },
                status,
            )
        }
        Err(ExportError::Store(e)) => unavailable(e),
    }
}

/// `GET /api/v1/roster/export?kind=…&format=…`: the same file; errors as JSON.
pub(crate) async fn export_api(
    State(state): State<SchoolState>,
    CurrentSchool(school): CurrentSchool,
    user: Result<CurrentUser, AuthRejection>,
    Query(q): Query<FileQuery>,
) -> Response {
    let user = match api_user(user) {
        Ok(u) => u,
        Err(r) => return json_auth(r),
    };
    match export_file(&state, &school, &user, &q).await {
        Ok(r) => r,
        Err(ExportError::File(e)) => json_file_error(&e),
        Err(ExportError::Store(e)) => json_unavailable(e),
    }
}

/// `GET /admin/roster/template?kind=…&format=…`: headers only, to fill in.
pub(crate) async fn template(
    CurrentSchool(school): CurrentSchool,
    lang: Lang,
    user: CurrentUser,
    Query(q): Query<FileQuery>,
) -> Response {
    if let Err(r) = user.require(Permission::ManageRoster) {
        return r.into_response();
    }
    let built = choice(&q).and_then(|(kinds, format)| {
        let sheets: Vec<Sheet> = kinds.iter().map(|k| Sheet::empty(*k)).collect();
        file_bytes(&sheets, format).map(|b| (kinds, format, b))
    });
    match built {
        Ok((kinds, format, bytes)) => {
            let (code, zh) = roster_label(&kinds);
            let ext = format.extension();
            download(
                bytes,
                format,
                &format!("roster-template-{code}.{ext}"),
                &format!("{zh}名册模板.{ext}"),
            )
        }
        Err(e) => {
            let status = e.status();
            result_page(
                &school,
                &user,
                lang,
                Rendered {
                    file: "",
                    valid_only: false,
                    problem: Some(&e),
                    report: None,
                },
                status,
            )
        }
    }
}
