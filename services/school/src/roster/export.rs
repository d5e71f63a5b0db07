//! Rosters out of the school: loaded in the caller's transaction as tables of text with the
//! import's own headers (so an export can be imported again unchanged), then written as
//! UTF-8 CSV with BOM (Excel opens it correctly), GBK CSV (older Excel and other county
//! systems), or an XLSX workbook with one sheet per roster and every cell stored as text.
//! Formula-like text is neutralised by `campus_web::sheet` (an apostrophe in CSV, which
//! the import reads back; Excel's quote prefix in XLSX).

use campus_tenant::SchoolTx;
use chrono::NaiveDate;
use sqlx::Row;

use super::schema::{Column, Field, Kind};
use super::validate::{gender_zh, label, RELATIONS, TITLES};
use super::FileError;

/// One roster as text: the headers of the import template and one row per record.
#[derive(Debug)]
pub struct Sheet {
    pub kind: Kind,
    /// The pupils' sensitive columns (ID number, blood type, medical notes) are left out:
    /// the exporter may not see them. An import of such a file leaves them as stored.
    pub masked: bool,
    pub rows: Vec<Vec<String>>,
}

/// The pupil columns only holders of `PupilSensitive` export.
pub const SENSITIVE: &[Field] = &[Field::IdNumber, Field::BloodType, Field::MedicalNotes];

impl Sheet {
    pub fn empty(kind: Kind) -> Self {
        Self {
            kind,
            masked: false,
            rows: Vec::new(),
        }
    }

    /// The columns written, in the import template's order.
    pub fn columns(&self) -> Vec<&'static Column> {
        self.kind
            .columns()
            .iter()
            .filter(|c| !(self.masked && SENSITIVE.contains(&c.field)))
            .collect()
    }

    pub fn headers(&self) -> Vec<&'static str> {
        self.columns().iter().map(|c| c.zh).collect()
    }
}

/// The file formats offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    CsvGbk,
    Xlsx,
}

impl Format {
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "xlsx" | "excel" => Some(Self::Xlsx),
            "csv" | "csv-utf8" => Some(Self::Csv),
            "csv-gbk" | "gbk" => Some(Self::CsvGbk),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::CsvGbk => "csv-gbk",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv | Self::CsvGbk => "csv",
            Self::Xlsx => "xlsx",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::CsvGbk => "text/csv; charset=gbk",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

fn text(v: Option<String>) -> String {
    v.unwrap_or_default()
}

/// Loads one roster of the school; with `sensitive` false the pupils' sensitive columns
/// are not read at all.
pub async fn load(tx: &mut SchoolTx, kind: Kind, sensitive: bool) -> sqlx::Result<Sheet> {
    let masked = kind == Kind::Students && !sensitive;
    let rows = match kind {
        Kind::Staff => sqlx::query(
            "select staff_no, name, gender, phone, title, subject from staff where active order by staff_no",
        )
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| {
            let gender: Option<String> = r.get("gender");
            let title: String = r.get("title");
            vec![
                r.get("staff_no"),
                r.get("name"),
                gender_zh(gender.as_deref().unwrap_or("")).to_owned(),
                text(r.get("phone")),
                label(TITLES, &title).to_owned(),
                text(r.get("subject")),
            ]
        })
        .collect(),
        Kind::Classes => sqlx::query(
            "select g.level, c.number, c.name, h.staff_no
               from classes c join grades g on g.id = c.grade_id
               left join staff h on h.id = c.head_teacher_id
              order by g.level, c.number",
        )
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| {
            vec![
                r.get::<i16, _>("level").to_string(),
                r.get::<i16, _>("number").to_string(),
                r.get("name"),
                text(r.get("staff_no")),
            ]
        })
        .collect(),
        Kind::Students => sqlx::query(
            "select s.student_no, s.name, s.gender, s.birth_date, g.level, c.number,
                    case when $1 then s.id_number end as id_number,
                    case when $1 then s.blood_type end as blood_type,
                    case when $1 then s.medical_notes end as medical_notes
               from students s join classes c on c.id = s.class_id join grades g on g.id = c.grade_id
              where s.left_on is null
              order by g.level, c.number, s.student_no",
        )
        .bind(!masked)
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| {
            let gender: Option<String> = r.get("gender");
            let birth: Option<NaiveDate> = r.get("birth_date");
            let mut row = vec![
                r.get("student_no"),
                r.get("name"),
                gender_zh(gender.as_deref().unwrap_or("")).to_owned(),
                birth.map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default(),
                r.get::<i16, _>("level").to_string(),
                r.get::<i16, _>("number").to_string(),
            ];
            if !masked {
                row.extend([
                    text(r.get("id_number")),
                    text(r.get("blood_type")),
                    text(r.get("medical_notes")),
                ]);
            }
            row
        })
        .collect(),
        Kind::Guardians => sqlx::query(
            "select s.student_no, g.name, g.phone, sg.relation
               from student_guardians sg
               join students s on s.id = sg.student_id
               join guardians g on g.id = sg.guardian_id
              where s.left_on is null
              order by s.student_no, g.id",
        )
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| {
            let relation: String = r.get("relation");
            vec![
                r.get("student_no"),
                r.get("name"),
                text(r.get("phone")),
                label(RELATIONS, &relation).to_owned(),
            ]
        })
        .collect(),
    };
    Ok(Sheet { kind, masked, rows })
}

/// One roster as CSV text, CRLF line ends as Excel writes them.
pub fn csv_text(sheet: &Sheet) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = w.write_record(sheet.headers());
    for row in &sheet.rows {
        let _ = w.write_record(
            row.iter()
                .map(|c| campus_web::sheet::neutralise(c).into_owned()),
        );
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The bytes of one roster in a CSV format.
pub fn csv_bytes(sheet: &Sheet, format: Format) -> Result<Vec<u8>, FileError> {
    let text = csv_text(sheet);
    if format == Format::CsvGbk {
        let (bytes, _, unmappable) = encoding_rs::GBK.encode(&text);
        if unmappable {
            let chars: String = text
                .chars()
                .filter(|c| {
                    let mut buf = [0u8; 4];
                    encoding_rs::GBK.encode(c.encode_utf8(&mut buf)).2
                })
                .take(10)
                .collect();
            return Err(FileError::NotGbk { chars });
        }
        return Ok(bytes.into_owned());
    }
    let mut out = b"\xEF\xBB\xBF".to_vec();
    out.extend_from_slice(text.as_bytes());
    Ok(out)
}

/// A workbook with one sheet per roster. Columns are formatted as text so that numbers
/// typed into a blank template (ID numbers, phone numbers) stay exactly as typed.
pub fn xlsx_bytes(sheets: &[Sheet]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format as Style, Workbook};
    let mut book = Workbook::new();
    let head = Style::new().set_bold().set_background_color("#E8EEF7");
    let as_text = Style::new().set_num_format("@");
    // Formula-like text keeps Excel's quote prefix: still text after someone edits it.
    let quoted = Style::new().set_num_format("@").set_quote_prefix();
    for sheet in sheets {
        let ws = book.add_worksheet();
        ws.set_name(sheet.kind.sheet())?;
        let columns = sheet.columns();
        for (c, header) in sheet.headers().iter().enumerate() {
            let c = c as u16;
            let width = match columns[usize::from(c)].field {
                Field::IdNumber | Field::MedicalNotes => 24.0,
                Field::Phone | Field::ClassName => 16.0,
                _ => 12.0,
            };
            ws.set_column_width(c, width)?;
            ws.set_column_format(c, &as_text)?;
            ws.write_string_with_format(0, c, *header, &head)?;
        }
        ws.set_freeze_panes(1, 0)?;
        for (r, row) in sheet.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                if !cell.is_empty() {
                    let style = if campus_web::sheet::is_risky(cell) {
                        &quoted
                    } else {
                        &as_text
                    };
                    ws.write_string_with_format(r as u32 + 1, c as u16, cell, style)?;
                }
            }
        }
    }
    book.save_to_buffer()
}

/// `Content-Disposition` for a download: an ASCII fallback name and the real (Chinese)
/// name in RFC 5987 form.
pub fn content_disposition(ascii: &str, utf8: &str) -> String {
    let mut encoded = String::new();
    for b in utf8.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::super::decode;
    use super::*;

    fn pupils() -> Sheet {
        Sheet {
            kind: Kind::Students,
            masked: false,
            rows: vec![vec![
                "2024001".into(),
                "张三".into(),
                "男".into(),
                "2015-03-09".into(),
                "3".into(),
                "2".into(),
                "511823201503090010".into(),
                "AB".into(),
                "青霉素过敏, \"严重\"".into(),
            ]],
        }
    }

    #[test]
    fn every_format_reads_back_as_the_same_cells() {
        let sheet = pupils();
        let expected: Vec<Vec<String>> =
            std::iter::once(sheet.headers().iter().map(|s| (*s).to_owned()).collect())
                .chain(sheet.rows.clone())
                .collect();
        for bytes in [
            csv_bytes(&sheet, Format::Csv).unwrap(),
            csv_bytes(&sheet, Format::CsvGbk).unwrap(),
            xlsx_bytes(&[sheet]).unwrap(),
        ] {
            let read = decode::read(&bytes).unwrap();
            let cells: Vec<Vec<String>> = read[0].rows.iter().map(|(_, r)| r.clone()).collect();
            assert_eq!(cells, expected);
        }
    }

    #[test]
    fn utf8_csv_has_a_bom_and_gbk_refuses_characters_it_cannot_hold() {
        let bytes = csv_bytes(&pupils(), Format::Csv).unwrap();
        assert!(bytes.starts_with(b"\xEF\xBB\xBF"));
        let gbk = csv_bytes(&pupils(), Format::CsvGbk).unwrap();
        assert!(
            std::str::from_utf8(&gbk).is_err(),
            "GBK bytes are not UTF-8"
        );
        let mut odd = pupils();
        odd.rows[0][1] = "张😀".into();
        assert_eq!(
            csv_bytes(&odd, Format::CsvGbk).unwrap_err(),
            FileError::NotGbk {
                chars: "😀".into()
            }
        );
    }

    #[test]
    fn formulas_are_defused_and_file_names_are_encoded() {
        let mut s = pupils();
        s.rows[0][8] = "=1+1".into();
        assert!(csv_text(&s).contains(",'=1+1\r\n"));
        assert_eq!(
            content_disposition("roster.csv", "学生 名册.csv"),
            "attachment; filename=\"roster.csv\"; filename*=UTF-8''%E5%AD%A6%E7%94%9F%20%E5%90%8D%E5%86%8C.csv"
        );
    }
}
