//! Roster import and export for school admins: classes (班级), pupils (学生), guardians
//! (家长) and staff (教职工) from and to CSV (UTF-8 or GBK) and XLSX.
//!
//! An upload is decoded ([`decode`]), its sheets matched to rosters ([`schema`]), every row
//! checked ([`validate`]) and then written in one school transaction ([`import`]) together
//! with its audit row. Nothing is written when any row is wrong unless the admin asked for
//! the valid rows only. Exports ([`export`]) are audited too, naming the sensitive pupil
//! fields they contain. Pages and the JSON API are in [`pages`].

pub mod decode;
pub(crate) mod export;
mod import;
mod pages;
pub mod schema;
pub mod validate;

use std::collections::BTreeMap;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use campus_identity::CurrentUser;
use campus_tenant::{Tenant, TenantError};
use serde::Serialize;

use crate::audit::{self, Action};
use crate::SchoolState;
use decode::RawSheet;
use schema::{detect_kind, map_headers, Kind};
use validate::{RowError, Table};

/// Largest file accepted.
pub const FILE_LIMIT: usize = 5 * 1024 * 1024;
/// Largest request body read: a file somewhat over the limit is still read to the end so
/// that the browser gets the "too large" page rather than a reset connection.
pub const BODY_LIMIT: usize = 2 * FILE_LIMIT;
/// How far down a sheet its header row is looked for.
const HEADER_SEARCH_ROWS: usize = 5;
/// Most row errors listed on a page or in a JSON report.
pub const MAX_LISTED_ERRORS: usize = 1000;

/// The routes of the roster module.
pub fn router() -> Router<SchoolState> {
    Router::new()
        .route("/admin/roster", get(pages::index))
        .route(
            "/admin/roster/import",
            post(pages::import_page).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route("/admin/roster/export", get(pages::export_page))
        .route("/admin/roster/template", get(pages::template))
        .route(
            "/api/v1/roster/import",
            post(pages::import_api).layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
        .route("/api/v1/roster/export", get(pages::export_api))
}

/// Problems with a file as a whole (or a request), each with a status and a message a
/// school admin can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    NoFile,
    BadForm,
    TooLarge,
    Empty,
    HeadersOnly,
    Encoding,
    NotSpreadsheet,
    Separator,
    TooManyRows {
        max: usize,
    },
    /// A workbook that would unpack to far more than any roster needs.
    Unpacked,
    UnknownSheet {
        sheet: String,
    },
    DuplicateSheet {
        kind: Kind,
    },
    Columns {
        sheet: String,
        kind: Kind,
        missing: Vec<&'static str>,
        unknown: Vec<String>,
        duplicate: Vec<String>,
    },
    /// An export or template request that names no roster or format we have.
    BadRequest {
        zh: String,
        en: String,
    },
    /// A GBK export of text GBK cannot hold.
    NotGbk {
        chars: String,
    },
}

impl FileError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NoFile | Self::BadForm | Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::NoFile => "no_file",
            Self::BadForm => "bad_form",
            Self::TooLarge => "too_large",
            Self::Empty => "empty_file",
            Self::HeadersOnly => "headers_only",
            Self::Encoding => "unknown_encoding",
            Self::NotSpreadsheet => "not_a_spreadsheet",
            Self::Separator => "full_width_separator",
            Self::TooManyRows { .. } => "too_many_rows",
            Self::Unpacked => "workbook_too_large",
            Self::UnknownSheet { .. } => "unknown_sheet",
            Self::DuplicateSheet { .. } => "duplicate_sheet",
            Self::Columns { .. } => "bad_columns",
            Self::BadRequest { .. } => "bad_request",
            Self::NotGbk { .. } => "not_gbk",
        }
    }

    /// Title and explanation in Chinese.
    pub fn zh(&self) -> (String, String) {
        let t = |a: &str, b: String| (a.to_owned(), b);
        match self {
            Self::NoFile => t("没有选择文件", "请选择要导入的 CSV 或 Excel（.xlsx）文件后再提交。".into()),
            Self::BadForm => t("上传的表单无效", "请刷新页面后重新上传。".into()),
            Self::TooLarge => t(
                "文件过大",
                format!("文件不能超过 {} MB。请把名册拆分成几个文件分别导入。", FILE_LIMIT / 1024 / 1024),
            ),
            Self::Empty => t("文件是空的", "文件中没有任何内容，请检查是否选错了文件。".into()),
            Self::HeadersOnly => t(
                "文件中只有表头",
                "文件中只有表头行，没有数据。请在表头下方逐行填写后再导入。".into(),
            ),
            Self::Encoding => t(
                "无法识别文件编码",
                "文件既不是 UTF-8 也不是 GBK 编码，可能已损坏。请在 Excel 中“另存为”CSV（逗号分隔）或 .xlsx 后重新导入。".into(),
            ),
            Self::NotSpreadsheet => t(
                "不是表格文件",
                "无法读取该文件。请上传 CSV 或 Excel（.xlsx）文件，可先下载模板填写。".into(),
            ),
            Self::Separator => t(
                "分隔符不正确",
                "表头中用的是中文逗号“，”。CSV 文件的各列应以英文逗号“,”分隔；也可以直接上传 .xlsx。".into(),
            ),
            Self::TooManyRows { max } => t(
                "行数过多",
                format!("每个表最多 {max} 行。请把名册拆分成几个文件分别导入。"),
            ),
            Self::Unpacked => t(
                "工作簿过大",
                "该 Excel 文件解压后过大，无法读取。请只保留名册数据，或另存为 CSV 后导入。".into(),
            ),
            Self::UnknownSheet { sheet } => t(
                "无法判断名册类型",
                format!("无法从表头判断“{sheet}”是哪一种名册。请在上传时选择名册类型，或把工作表命名为“班级”“学生”“家长”“教职工”之一，表头与模板一致。"),
            ),
            Self::DuplicateSheet { kind } => t(
                "工作表重复",
                format!("工作簿中有不止一个“{}”表，请合并为一个。", kind.sheet()),
            ),
            Self::Columns { sheet, kind, missing, unknown, duplicate } => {
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!("缺少必填列：{}", missing.join("、")));
                }
                if !unknown.is_empty() {
                    parts.push(format!("无法识别的列：{}", unknown.join("、")));
                }
                if !duplicate.is_empty() {
                    parts.push(format!("重复的列：{}", duplicate.join("、")));
                }
                let expected: Vec<&str> = kind.columns().iter().map(|c| c.zh).collect();
                t(
                    "表头不正确",
                    format!(
                        "“{sheet}”（{}名册）的表头有误。{}。该名册可用的列：{}。",
                        kind.sheet(),
                        parts.join("；"),
                        expected.join("、")
                    ),
                )
            }
            Self::BadRequest { zh, .. } => t("请求无效", zh.clone()),
            Self::NotGbk { chars } => t(
                "无法导出为 GBK",
                format!("名册中有 GBK 编码无法表示的字（{chars}）。请改为导出 UTF-8 CSV 或 Excel（.xlsx）。"),
            ),
        }
    }

    /// Title and explanation in English.
    pub fn en(&self) -> (String, String) {
        let t = |a: &str, b: String| (a.to_owned(), b);
        match self {
            Self::NoFile => t("No file", "Choose a CSV or Excel (.xlsx) file to import.".into()),
            Self::BadForm => t("Bad form", "Reload the page and upload again.".into()),
            Self::TooLarge => t(
                "File too large",
                format!("Files may be at most {} MB; split the roster into several files.", FILE_LIMIT / 1024 / 1024),
            ),
            Self::Empty => t("Empty file", "The file has no content.".into()),
            Self::HeadersOnly => t("Headers only", "The file has a header row but no data rows.".into()),
            Self::Encoding => t(
                "Unknown text encoding",
                "The file is neither UTF-8 nor GBK text. Save it again as CSV or .xlsx.".into(),
            ),
            Self::NotSpreadsheet => t(
                "Not a spreadsheet",
                "Upload a CSV or Excel (.xlsx) file; the templates show the layout.".into(),
            ),
            Self::Separator => t(
                "Wrong separator",
                "The header uses full-width commas; CSV columns are separated by ','.".into(),
            ),
            Self::TooManyRows { max } => t("Too many rows", format!("At most {max} rows per sheet.")),
            Self::Unpacked => t(
                "Workbook too large",
                "The workbook unpacks to far more data than a roster holds; keep only the roster or save as CSV.".into(),
            ),
            Self::UnknownSheet { sheet } => t(
                "Unknown roster",
                format!("Cannot tell which roster \"{sheet}\" holds; choose the kind or use the template's headers."),
            ),
            Self::DuplicateSheet { kind } => t(
                "Repeated sheet",
                format!("The workbook has more than one {} sheet.", kind.name_en()),
            ),
            Self::Columns { sheet, missing, unknown, duplicate, .. } => t(
                "Wrong headers",
                format!(
                    "Sheet \"{sheet}\": missing [{}], unknown [{}], repeated [{}].",
                    missing.join(", "),
                    unknown.join(", "),
                    duplicate.join(", ")
                ),
            ),
            Self::BadRequest { en, .. } => t("Bad request", en.clone()),
            Self::NotGbk { chars } => t(
                "Cannot export as GBK",
                format!("Some characters ({chars}) have no GBK code; export UTF-8 CSV or .xlsx instead."),
            ),
        }
    }

    /// The problems as rows of a JSON report (column problems name their columns).
    pub fn as_row_errors(&self) -> Vec<RowError> {
        let (zh, _) = self.zh();
        let (_, en) = self.en();
        match self {
            Self::Columns {
                sheet,
                missing,
                unknown,
                duplicate,
                ..
            } => missing
                .iter()
                .map(|c| ((*c).to_owned(), "缺少必填列", "required column missing"))
                .chain(
                    unknown
                        .iter()
                        .map(|c| (c.clone(), "无法识别的列", "unknown column")),
                )
                .chain(
                    duplicate
                        .iter()
                        .map(|c| (c.clone(), "重复的列", "repeated column")),
                )
                .map(|(column, zh, en)| RowError {
                    sheet: sheet.clone(),
                    row: 1,
                    column,
                    message: zh.into(),
                    message_en: en.into(),
                })
                .collect(),
            _ => vec![RowError {
                sheet: String::new(),
                row: 0,
                column: String::new(),
                message: zh,
                message_en: en,
            }],
        }
    }
}

/// All rows must be valid, or only the valid rows are imported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    All,
    ValidOnly,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "" | "all" => Some(Self::All),
            "valid_only" | "valid" => Some(Self::ValidOnly),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::ValidOnly => "valid_only",
        }
    }
}

/// New, changed and unchanged rows of one roster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// What an import did, or would have done.
#[derive(Debug, Serialize)]
pub struct Report {
    pub file: String,
    pub mode: Mode,
    /// Whether anything was written.
    pub written: bool,
    /// Data rows in the file.
    pub rows: usize,
    /// Per roster code; only rosters the file held.
    pub imported: BTreeMap<&'static str, Counts>,
    /// Number of rows or cells with a problem (the list below is capped).
    pub error_count: usize,
    pub errors: Vec<RowError>,
}

/// An uploaded file with the form's choices.
#[derive(Debug)]
pub struct Upload {
    pub file_name: String,
    pub bytes: Vec<u8>,
    pub kind: Option<Kind>,
    pub mode: Mode,
}

/// Why an import did not happen.
#[derive(Debug)]
pub enum ImportError {
    File(FileError),
    /// Rows were wrong: the report lists them; nothing was written.
    Invalid(Report),
    Store(TenantError),
}

impl From<FileError> for ImportError {
    fn from(e: FileError) -> Self {
        Self::File(e)
    }
}

impl From<TenantError> for ImportError {
    fn from(e: TenantError) -> Self {
        Self::Store(e)
    }
}

impl From<sqlx::Error> for ImportError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

/// The sheets of a file as tables of known rosters. `hint` (the form's choice) decides the
/// roster of a file with a single sheet; otherwise sheet names, then headers, decide.
pub fn tables(sheets: Vec<RawSheet>, hint: Option<Kind>) -> Result<Vec<Table>, FileError> {
    let sheets: Vec<RawSheet> = sheets.into_iter().filter(|s| !s.rows.is_empty()).collect();
    if sheets.is_empty() {
        return Err(FileError::Empty);
    }
    let single = sheets.len() == 1;
    let mut tables: Vec<Table> = Vec::new();
    for sheet in sheets {
        let named = sheet.name.as_deref().and_then(Kind::parse);
        let chosen = hint.filter(|_| single).or(named);
        // Sheets often open with a title row ("2024 级学生名单") above the headers: the
        // header row is the first of the top few that names a roster's required columns.
        let header_at = sheet
            .rows
            .iter()
            .take(HEADER_SEARCH_ROWS)
            .position(|(_, r)| {
                chosen
                    .or_else(|| detect_kind(r))
                    .is_some_and(|k| map_headers(k, r).missing.is_empty())
            })
            .unwrap_or(0);
        let mut rows = sheet.rows.into_iter().skip(header_at);
        let Some((_, headers)) = rows.next() else {
            continue;
        };
        let kind = match chosen {
            Some(k) => k,
            None => detect_kind(&headers).ok_or_else(|| FileError::UnknownSheet {
                sheet: sheet.name.clone().unwrap_or_else(|| "CSV".into()),
            })?,
        };
        let label = sheet
            .name
            .clone()
            .unwrap_or_else(|| kind.sheet().to_owned());
        let mapping = map_headers(kind, &headers);
        if !mapping.is_complete() {
            return Err(FileError::Columns {
                sheet: label,
                kind,
                missing: mapping.missing,
                unknown: mapping.unknown,
                duplicate: mapping.duplicate,
            });
        }
        if tables.iter().any(|t| t.kind == kind) {
            return Err(FileError::DuplicateSheet { kind });
        }
        tables.push(Table {
            kind,
            sheet: label,
            headers,
            mapping,
            rows: rows.collect(),
        });
    }
    tables.retain(|t| !t.rows.is_empty());
    if tables.is_empty() {
        return Err(FileError::HeadersOnly);
    }
    Ok(tables)
}

/// Decodes, validates and (when allowed) writes an upload in one school transaction with
/// its audit row.
pub async fn run_import(
    state: &SchoolState,
    school: &Tenant,
    user: &CurrentUser,
    upload: &Upload,
) -> Result<Report, ImportError> {
    let sheets = decode::read(&upload.bytes)?;
    let tables = tables(sheets, upload.kind)?;
    let mut tx = state.db.school(school).await?;
    import::lock(&mut tx).await?;
    let known = import::known(&mut tx).await?;
    let batch = validate::validate(&tables, &known);
    let mut report = Report {
        file: upload.file_name.clone(),
        mode: upload.mode,
        written: false,
        rows: batch.rows_total,
        imported: BTreeMap::new(),
        error_count: batch.errors.len(),
        errors: batch
            .errors
            .iter()
            .take(MAX_LISTED_ERRORS)
            .cloned()
            .collect(),
    };
    let refuse = match upload.mode {
        Mode::All => !batch.errors.is_empty(),
        Mode::ValidOnly => batch.valid_rows() == 0,
    };
    if refuse {
        tx.rollback().await?;
        return Err(ImportError::Invalid(report));
    }
    let counts = import::apply(&mut tx, &batch).await?;
    report.imported = tables
        .iter()
        .map(|t| {
            (
                t.kind.code(),
                counts.get(&t.kind).copied().unwrap_or_default(),
            )
        })
        .collect();
    let rejected: std::collections::BTreeSet<(&str, usize)> = batch
        .errors
        .iter()
        .map(|e| (e.sheet.as_str(), e.row))
        .collect();
    audit::record(
        &mut tx,
        user,
        Action::RosterImport,
        None,
        serde_json::json!({
            "file": upload.file_name,
            "mode": upload.mode.code(),
            "counts": report.imported,
            "rows": batch.rows_total,
            "rejected_rows": rejected.len(),
        }),
    )
    .await?;
    tx.commit().await?;
    report.written = true;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(name: Option<&str>, rows: &[&[&str]]) -> RawSheet {
        RawSheet {
            name: name.map(str::to_owned),
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i + 1, r.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
        }
    }

    #[test]
    fn sheets_are_told_apart_by_name_then_headers_and_the_form_decides_single_files() {
        let t = tables(
            vec![
                sheet(
                    Some("学生"),
                    &[&["学号", "姓名", "年级", "班号"], &["S1", "张三", "1", "1"]],
                ),
                sheet(Some("Sheet2"), &[&["工号", "姓名"], &["T1", "王老师"]]),
                sheet(Some("Sheet3"), &[]),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            t.iter().map(|t| t.kind).collect::<Vec<_>>(),
            vec![Kind::Students, Kind::Staff]
        );
        // A title row above the headers is passed over; row numbers stay the sheet's.
        let t = tables(
            vec![sheet(
                Some("Sheet1"),
                &[
                    &["2024级学生名单"],
                    &["学号", "姓名", "年级", "班号"],
                    &["S1", "张三", "1", "1"],
                ],
            )],
            None,
        )
        .unwrap();
        assert_eq!(t[0].kind, Kind::Students);
        assert_eq!(
            t[0].rows,
            vec![(3, vec!["S1".into(), "张三".into(), "1".into(), "1".into()])]
        );
        let e = tables(
            vec![sheet(None, &[&["年级", "班号"], &["1", "1"]])],
            Some(Kind::Students),
        )
        .unwrap_err();
        assert!(
            matches!(&e, FileError::Columns { missing, .. } if missing == &vec!["学号", "姓名"])
        );
    }

    #[test]
    fn empty_headers_only_and_unknown_files_are_file_errors() {
        assert_eq!(
            tables(vec![sheet(None, &[])], None).unwrap_err(),
            FileError::Empty
        );
        assert_eq!(
            tables(
                vec![sheet(None, &[&["学号", "姓名", "年级", "班号"]])],
                None
            )
            .unwrap_err(),
            FileError::HeadersOnly
        );
        assert!(matches!(
            tables(
                vec![sheet(None, &[&["名字", "电话号码"], &["a", "b"]])],
                None
            )
            .unwrap_err(),
            FileError::UnknownSheet { .. }
        ));
        let e = tables(
            vec![sheet(
                None,
                &[
                    &["学号", "姓名", "年级", "班号", "爱好"],
                    &["S1", "张三", "1", "1", "x"],
                ],
            )],
            None,
        )
        .unwrap_err();
        assert!(e.zh().1.contains("无法识别的列：爱好"), "{:?}", e.zh());
        assert_eq!(e.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
