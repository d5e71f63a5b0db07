//! Any dashboard table as Excel (.xlsx) or CSV. CSV is UTF-8 with a byte-order mark, which
//! is what makes Excel on Chinese Windows open it as UTF-8 instead of GBK. Withheld cells
//! are written as their text ("<5"), never as the number behind them. Text cells (school
//! names are the schools' own) never run as formulas: `campus_web::sheet::neutralise` in
//! CSV, string cells with Excel's quote prefix in XLSX.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_xlsxwriter::Workbook;

use crate::indicators::{by_code, INDICATORS};
use crate::report::{Cell, Overview, SchoolReport, UnitLine, UNIT_COLUMNS};

/// A table ready to be written.
#[derive(Debug)]
pub struct Table {
    pub name: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Field>>,
}

#[derive(Debug)]
pub enum Field {
    Text(String),
    Number(f64),
}

impl From<&Cell> for Field {
    fn from(c: &Cell) -> Self {
        match c.value {
            Some(v) if !c.suppressed => Field::Number(v),
            _ => Field::Text(c.text.clone()),
        }
    }
}

fn text(s: &str) -> Field {
    Field::Text(s.to_owned())
}

/// Which file: `<table>.<csv|xlsx>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
}

/// Splits `schools.xlsx` into ("schools", Xlsx).
pub fn parse_file(file: &str) -> Option<(&str, Format)> {
    let (table, ext) = file.rsplit_once('.')?;
    let format = match ext {
        "csv" => Format::Csv,
        "xlsx" => Format::Xlsx,
        _ => return None,
    };
    Some((table, format))
}

pub fn schools_table(o: &Overview) -> Table {
    let mut headers: Vec<String> = ["学校", "学区", "学校类型", "城乡"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    headers.extend(INDICATORS.iter().map(|i| i.zh.to_owned()));
    let rows = o
        .schools
        .iter()
        .map(|l| {
            let mut row = vec![
                text(&l.school.name),
                text(&l.school.township),
                text(crate::web::kind_name(&l.school.kind)),
                text(crate::web::locality_name(&l.school.locality)),
            ];
            row.extend(
                INDICATORS
                    .iter()
                    .map(|i| l.indicators.get(i.code).map_or(text("—"), Field::from)),
            );
            row
        })
        .collect();
    Table {
        name: format!("学校排名 {}至{}", o.filter.from, o.filter.to),
        headers,
        rows,
    }
}

pub fn units_table(r: &SchoolReport, grades: bool) -> Table {
    let lines: &[UnitLine] = if grades { &r.grades } else { &r.classes };
    let mut headers = vec!["年级".to_owned()];
    if !grades {
        headers.push("班级".into());
    }
    headers.extend(
        UNIT_COLUMNS
            .iter()
            .filter_map(|c| by_code(c))
            .map(|i| i.zh.to_owned()),
    );
    let rows = lines
        .iter()
        .map(|l| {
            let mut row = vec![text(&crate::report::grade_name(l.grade_level))];
            if !grades {
                row.push(text(&l.name));
            }
            row.extend(
                UNIT_COLUMNS
                    .iter()
                    .map(|c| l.indicators.get(*c).map_or(text("—"), Field::from)),
            );
            row
        })
        .collect();
    Table {
        name: format!(
            "{} {} {}至{}",
            r.school.name,
            if grades { "年级" } else { "班级" },
            r.filter.from,
            r.filter.to
        ),
        headers,
        rows,
    }
}

pub fn indicators_table(r: &SchoolReport) -> Table {
    Table {
        name: format!("{} 指标 {}至{}", r.school.name, r.filter.from, r.filter.to),
        headers: ["指标", "本校", "全县", "差值"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
        rows: r
            .indicators
            .iter()
            .map(|c| {
                vec![
                    text(&c.name),
                    Field::from(&c.school),
                    Field::from(&c.county),
                    c.difference.map_or(text("—"), Field::Number),
                ]
            })
            .collect(),
    }
}

fn csv_bytes(t: &Table) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    w.write_record(&t.headers)?;
    for row in &t.rows {
        w.write_record(row.iter().map(|f| match f {
            // A school's name is the school's own text: never a formula in Excel.
            Field::Text(s) => campus_web::sheet::neutralise(s).into_owned(),
            Field::Number(n) => format!("{n}"),
        }))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

fn xlsx_bytes(t: &Table) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = Workbook::new();
    // Formula-like text keeps Excel's quote prefix: still text after someone edits it.
    let quoted = rust_xlsxwriter::Format::new().set_quote_prefix();
    let sheet = book.add_worksheet();
    // Sheet names are at most 31 characters and may not contain []:*?/\.
    let name: String = t
        .name
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    sheet.set_name(&name)?;
    for (c, h) in t.headers.iter().enumerate() {
        sheet.write_string(0, u16::try_from(c).unwrap_or(u16::MAX), h)?;
    }
    for (r, row) in t.rows.iter().enumerate() {
        let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
        for (c, f) in row.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            match f {
                Field::Text(s) if campus_web::sheet::is_risky(s) => {
                    sheet.write_string_with_format(r, c, s, &quoted)?
                }
                Field::Text(s) => sheet.write_string(r, c, s)?,
                Field::Number(n) => sheet.write_number(r, c, *n)?,
            };
        }
    }
    book.save_to_buffer()
}

/// The download response for `t` in `format`, named `file`.
pub fn download(t: &Table, format: Format, file: &str) -> Response {
    let (bytes, content_type) = match format {
        Format::Csv => (
            csv_bytes(t).map_err(|e| e.to_string()),
            "text/csv; charset=utf-8",
        ),
        Format::Xlsx => (
            xlsx_bytes(t).map_err(|e| e.to_string()),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    };
    match bytes {
        Ok(bytes) => {
            let disposition = format!("attachment; filename=\"{file}\"");
            let mut resp = (StatusCode::OK, bytes).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-store"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "writing an export failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "export failed").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_starts_with_a_byte_order_mark_and_quotes_what_needs_it() {
        let t = Table {
            name: "t".into(),
            headers: vec!["学校".into(), "出勤率".into()],
            rows: vec![vec![text("信义小学, 本部"), Field::Number(96.5)]],
        };
        let bytes = csv_bytes(&t).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let s = String::from_utf8(bytes[3..].to_vec()).unwrap();
        assert_eq!(s, "学校,出勤率\n\"信义小学, 本部\",96.5\n");
        let t = Table {
            name: "t".into(),
            headers: vec!["学校".into()],
            rows: vec![
                vec![text("=HYPERLINK(\"http://x\",\"y\")")],
                vec![text("-5")],
            ],
        };
        let s = String::from_utf8(csv_bytes(&t).unwrap()[3..].to_vec()).unwrap();
        assert_eq!(
            s,
            "学校\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\n'-5\n"
        );
        assert_eq!(parse_file("schools.xlsx"), Some(("schools", Format::Xlsx)));
        assert_eq!(parse_file("schools.pdf"), None);
    }
}
