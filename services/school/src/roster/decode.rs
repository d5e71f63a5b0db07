//! Uploaded bytes → sheets of text cells. Workbooks (XLSX, and XLS/ODS) through calamine;
//! anything else is read as CSV: UTF-8 (with or without BOM) when the bytes are valid
//! UTF-8, otherwise GBK/GB18030 decoded strictly (what Excel in China saves as "CSV"),
//! UTF-16 when it starts with a UTF-16 BOM. Bytes that decode as neither are refused,
//! never guessed.

use std::io::{Cursor, Read, Seek};

use calamine::{Data, Reader};

use super::FileError;

/// Most rows a sheet may hold (a large county school has about 6 000 pupils).
pub const MAX_ROWS: usize = 20_000;
/// Most bytes the parts of a workbook may really inflate to (guards against zip bombs).
const MAX_UNPACKED: u64 = 200 * 1024 * 1024;
/// Most parts a workbook may have (a real one has tens).
const MAX_ENTRIES: usize = 2_000;

/// One sheet: its name (workbooks only) and its non-empty rows with their 1-based row
/// numbers as a spreadsheet program shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSheet {
    pub name: Option<String>,
    pub rows: Vec<(usize, Vec<String>)>,
}

/// The text encoding a CSV file was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    Utf8,
    Gbk,
    Utf16,
}

/// Reads an uploaded file into sheets.
pub fn read(bytes: &[u8]) -> Result<Vec<RawSheet>, FileError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(FileError::Empty);
    }
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return read_workbook(bytes);
    }
    if bytes.starts_with(b"PK") || bytes.starts_with(b"%PDF") || bytes.starts_with(b"\x89PNG") {
        return Err(FileError::NotSpreadsheet);
    }
    let (text, _) = decode_text(bytes)?;
    read_csv(&text).map(|s| vec![s])
}

/// Decodes CSV bytes: UTF-16 by BOM, else UTF-8 if valid, else strict GBK.
pub fn decode_text(bytes: &[u8]) -> Result<(String, TextEncoding), FileError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        let (text, _, had_errors) = encoding_rs::UTF_16LE.decode(bytes);
        if had_errors {
            return Err(FileError::Encoding);
        }
        return Ok((text.into_owned(), TextEncoding::Utf16));
    }
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Ok(s) = std::str::from_utf8(body) {
        return Ok((s.to_owned(), TextEncoding::Utf8));
    }
    encoding_rs::GBK
        .decode_without_bom_handling_and_without_replacement(body)
        .map(|s| (s.into_owned(), TextEncoding::Gbk))
        .ok_or(FileError::Encoding)
}

fn read_csv(text: &str) -> Result<RawSheet, FileError> {
    // Control characters other than tab and line breaks mean binary data, not a table.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Err(FileError::NotSpreadsheet);
    }
    let first_line = text.lines().next().unwrap_or("");
    let delimiter = if first_line.contains('\t') && !first_line.contains(',') {
        b'\t'
    } else if first_line.contains('，') && !first_line.contains(',') {
        return Err(FileError::Separator);
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    // The spreadsheet row: records so far plus the blank lines the reader skipped (a cell
    // with line breaks is still one row).
    let mut row = 0usize;
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|_| FileError::NotSpreadsheet)?
    {
        // A record's position is where the previous one ended; blank lines the reader
        // skipped come first.
        let start = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(0);
        row += 1 + line_breaks_at(text.as_bytes(), start);
        let cells: Vec<String> = record.iter().map(str::to_owned).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        if rows.len() > MAX_ROWS {
            return Err(FileError::TooManyRows { max: MAX_ROWS });
        }
        rows.push((row, cells));
    }
    Ok(RawSheet { name: None, rows })
}

/// Line breaks (LF, CRLF or CR) at `at`, not counting the rest of a CRLF begun before it.
fn line_breaks_at(bytes: &[u8], at: usize) -> usize {
    let mut i = at.min(bytes.len());
    if i > 0 && bytes[i - 1] == b'\r' && bytes.get(i) == Some(&b'\n') {
        i += 1;
    }
    let mut n = 0;
    while let Some(b) = bytes.get(i) {
        match b {
            b'\n' => n += 1,
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => n += 1,
            b'\r' => {}
            _ => break,
        }
        i += 1;
    }
    n
}

/// Whether a zip's parts stay within [`MAX_ENTRIES`] and, inflated, within
/// [`MAX_UNPACKED`] bytes: the bytes really produced are counted, not the sizes the zip
/// declares (its maker writes those). `None` for a zip that cannot be read.
fn within_limits(bytes: &[u8]) -> Option<bool> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).ok()?;
    if zip.len() > MAX_ENTRIES {
        return Some(false);
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).ok()?;
        let room = MAX_UNPACKED - total;
        total += std::io::copy(&mut (&mut entry).take(room + 1), &mut std::io::sink()).ok()?;
        if total > MAX_UNPACKED {
            return Some(false);
        }
    }
    Some(true)
}

fn read_workbook(bytes: &[u8]) -> Result<Vec<RawSheet>, FileError> {
    if bytes.starts_with(b"PK") {
        match within_limits(bytes) {
            None => return Err(FileError::NotSpreadsheet),
            Some(false) => return Err(FileError::Unpacked),
            Some(true) => {}
        }
    }
    let mut book = calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|e| {
        tracing::debug!(error = %e, "upload is not a readable workbook");
        FileError::NotSpreadsheet
    })?;
    read_sheets(&mut book)
}

fn read_sheets<R: Read + Seek + Clone>(
    book: &mut calamine::Sheets<R>,
) -> Result<Vec<RawSheet>, FileError> {
    let mut sheets = Vec::new();
    for name in book.sheet_names() {
        let range = book
            .worksheet_range(&name)
            .map_err(|_| FileError::NotSpreadsheet)?;
        let first_row = range.start().map_or(0, |(r, _)| r as usize);
        let mut rows = Vec::new();
        for (i, row) in range.rows().enumerate() {
            let cells: Vec<String> = row.iter().map(cell_text).collect();
            if cells.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            if rows.len() > MAX_ROWS {
                return Err(FileError::TooManyRows { max: MAX_ROWS });
            }
            rows.push((first_row + i + 1, cells));
        }
        sheets.push(RawSheet {
            name: Some(name),
            rows,
        });
    }
    Ok(sheets)
}

/// A cell as the text a person sees: whole numbers without ".0", dates as YYYY-MM-DD.
fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => excel_date(d.as_f64()).unwrap_or_else(|| d.as_f64().to_string()),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// An Excel serial date (days since 1899-12-30) as YYYY-MM-DD.
fn excel_date(serial: f64) -> Option<String> {
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)?;
    let days = serial.floor();
    if !(1.0..=2_958_465.0).contains(&days) {
        return None;
    }
    let date = epoch.checked_add_days(chrono::Days::new(days as u64))?;
    Some(date.format("%Y-%m-%d").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(sheet: &RawSheet) -> Vec<Vec<&str>> {
        sheet
            .rows
            .iter()
            .map(|(_, r)| r.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn utf8_with_and_without_bom_and_gbk_read_the_same() {
        let text = "学号,姓名\r\n2024001,张三\r\n";
        let plain = read(text.as_bytes()).unwrap();
        let mut bom = b"\xEF\xBB\xBF".to_vec();
        bom.extend_from_slice(text.as_bytes());
        let (gbk, _, bad) = encoding_rs::GBK.encode(text);
        assert!(!bad);
        assert_eq!(read(&bom).unwrap(), plain);
        assert_eq!(read(&gbk).unwrap(), plain);
        assert_eq!(
            cells(&plain[0]),
            vec![vec!["学号", "姓名"], vec!["2024001", "张三"]]
        );
        assert_eq!(decode_text(&gbk).unwrap().1, TextEncoding::Gbk);
    }

    #[test]
    fn bytes_that_are_neither_utf8_nor_gbk_are_refused() {
        let mut bytes = "学号,姓名\n".as_bytes().to_vec();
        bytes.extend_from_slice(&[0xFF, 0x41, 0x0A]);
        assert!(matches!(read(&bytes), Err(FileError::Encoding)));
    }

    #[test]
    fn empty_binary_and_blank_rows() {
        assert!(matches!(read(b""), Err(FileError::Empty)));
        assert!(matches!(read(b"  \r\n"), Err(FileError::Empty)));
        assert!(matches!(
            read(b"\x89PNG\r\n\x1a\n"),
            Err(FileError::NotSpreadsheet)
        ));
        assert!(matches!(
            read(b"a,b\x00\x01"),
            Err(FileError::NotSpreadsheet)
        ));
        assert!(matches!(
            read(b"PK\x03\x04garbage"),
            Err(FileError::NotSpreadsheet)
        ));
        let s = read("学号,姓名\n\n,\n1,张三\n".as_bytes()).unwrap();
        assert_eq!(
            s[0].rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 4]
        );
        let s = read("学号,备注\r\n1,\"两\r\n行\"\r\n\r\n2,x\r\n".as_bytes()).unwrap();
        assert_eq!(
            s[0].rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 2, 4]
        );
    }

    #[test]
    fn tab_separated_utf16_is_read_and_full_width_commas_are_explained() {
        let mut utf16 = vec![0xFF, 0xFE];
        for u in "学号\t姓名\n1\t张三\n".encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        let s = read(&utf16).unwrap();
        assert_eq!(cells(&s[0])[1], vec!["1", "张三"]);
        assert!(matches!(
            read("学号，姓名\n".as_bytes()),
            Err(FileError::Separator)
        ));
    }

    #[test]
    fn workbook_cells_read_as_people_see_them() {
        let mut book = rust_xlsxwriter::Workbook::new();
        let ws = book.add_worksheet();
        ws.set_name("学生").unwrap();
        ws.write_string(0, 0, "学号").unwrap();
        ws.write_string(0, 1, "年级").unwrap();
        ws.write_string(0, 2, "出生日期").unwrap();
        ws.write_string(2, 0, "2024001").unwrap();
        ws.write_number(2, 1, 3.0).unwrap();
        let fmt = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        ws.write_number_with_format(2, 2, 45366.0, &fmt).unwrap();
        book.add_worksheet();
        let bytes = book.save_to_buffer().unwrap();
        let sheets = read(&bytes).unwrap();
        assert_eq!(sheets.len(), 2);
        assert_eq!(sheets[0].name.as_deref(), Some("学生"));
        assert_eq!(
            sheets[0].rows[1],
            (3, vec!["2024001".into(), "3".into(), "2024-03-15".into()])
        );
        assert!(sheets[1].rows.is_empty());
    }
}
