//! Every row of every sheet checked before anything is written: each field on its own
//! (formats, ranges, the 身份证 check character), then duplicates within the file, then
//! references (a class's head teacher, a pupil's class, a guardian's pupil) against the
//! file's own valid rows and the school's existing data. Each problem names its sheet, row
//! and column and says why in Chinese and English.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use serde::Serialize;

use super::schema::{header_of, Field, Kind, Mapping};

/// One sheet ready to validate: its roster, how its columns map and its data rows.
#[derive(Debug)]
pub struct Table {
    pub kind: Kind,
    /// The sheet's name as the person knows it (the workbook's sheet name, or the roster's).
    pub sheet: String,
    pub headers: Vec<String>,
    pub mapping: Mapping,
    /// Data rows (after the header) with their spreadsheet row numbers.
    pub rows: Vec<(usize, Vec<String>)>,
}

/// What the school already has, for references and for telling new rows from old.
#[derive(Debug, Default)]
pub struct Known {
    pub staff: HashSet<String>,
    /// Classes in use (grade level, class number).
    pub classes: HashSet<(i16, i16)>,
    /// Retired classes: they keep their number, and nothing is imported into them.
    pub retired: HashSet<(i16, i16)>,
    pub students: HashSet<String>,
}

fn retired_error(t: &Table, row: usize, level: i16, number: i16) -> RowError {
    let class = default_class_name(level, number);
    reference_error(
        t,
        row,
        Field::ClassNo,
        format!("{class}已撤销（撤销的班级保留班号），不能再导入；请换一个班号"),
        format!("grade {level} class {number} has been retired (its number stays taken); use another class number"),
    )
}

/// One problem in one cell (or row) of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub sheet: String,
    pub row: usize,
    pub column: String,
    pub message: String,
    pub message_en: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffRow {
    pub row: usize,
    pub staff_no: String,
    pub name: String,
    pub gender: Option<&'static str>,
    pub phone: Option<String>,
    pub title: &'static str,
    pub subject: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRow {
    pub row: usize,
    pub level: i16,
    pub number: i16,
    /// As given; `None` keeps an existing class's name and names a new class by default.
    pub name: Option<String>,
    pub head_teacher: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentRow {
    pub row: usize,
    pub student_no: String,
    pub name: String,
    pub gender: Option<&'static str>,
    pub birth_date: Option<NaiveDate>,
    pub level: i16,
    pub number: i16,
    pub id_number: Option<String>,
    pub blood_type: Option<&'static str>,
    pub medical_notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardianRow {
    pub row: usize,
    pub student_no: String,
    pub name: String,
    pub phone: String,
    pub relation: &'static str,
}

/// The valid rows of one roster and which optional columns its sheet had (a column the
/// sheet does not have leaves existing values alone).
#[derive(Debug)]
pub struct Part<T> {
    pub rows: Vec<T>,
    pub columns: HashSet<Field>,
}

impl<T> Default for Part<T> {
    fn default() -> Self {
        Self {
            rows: Vec::new(),
            columns: HashSet::new(),
        }
    }
}

impl<T> Part<T> {
    pub fn has(&self, field: Field) -> bool {
        self.columns.contains(&field)
    }
}

/// The outcome of validation: the valid rows of each roster and every problem found.
#[derive(Debug, Default)]
pub struct Batch {
    pub staff: Part<StaffRow>,
    pub classes: Part<ClassRow>,
    pub students: Part<StudentRow>,
    pub guardians: Part<GuardianRow>,
    pub errors: Vec<RowError>,
    /// Data rows in the file.
    pub rows_total: usize,
}

impl Batch {
    pub fn valid_rows(&self) -> usize {
        self.staff.rows.len()
            + self.classes.rows.len()
            + self.students.rows.len()
            + self.guardians.rows.len()
    }
}

type Problem = (String, String);

fn problem(zh: impl Into<String>, en: impl Into<String>) -> Problem {
    (zh.into(), en.into())
}

/// Cells of one row by field, trimmed.
struct Cells<'a> {
    table: &'a Table,
    row: usize,
    cells: &'a [String],
    errors: Vec<RowError>,
}

impl<'a> Cells<'a> {
    /// The cell of `field`: `None` if the sheet has no such column, `Some("")` if blank.
    fn get(&self, field: Field) -> Option<&'a str> {
        let (idx, _) = self
            .table
            .mapping
            .fields
            .iter()
            .find(|(_, f)| **f == field)?;
        Some(self.cells.get(*idx).map_or("", |c| c.trim()))
    }

    fn fail(&mut self, field: Field, (zh, en): Problem) {
        self.errors.push(RowError {
            sheet: self.table.sheet.clone(),
            row: self.row,
            column: column_name(self.table, field),
            message: zh,
            message_en: en,
        });
    }

    /// A required field: blank is an error.
    fn required<T>(
        &mut self,
        field: Field,
        parse: impl Fn(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        match self.get(field) {
            None | Some("") => {
                self.fail(field, problem("必填，不能为空", "required"));
                None
            }
            Some(v) => self.check(field, parse(v)),
        }
    }

    /// An optional field: blank is `Some(None)`, a bad value an error (`None`).
    fn optional<T>(
        &mut self,
        field: Field,
        parse: impl Fn(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match self.get(field) {
            None | Some("") => Some(None),
            Some(v) => self.check(field, parse(v)).map(Some),
        }
    }

    fn check<T>(&mut self, field: Field, r: Result<T, Problem>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(p) => {
                self.fail(field, p);
                None
            }
        }
    }
}

/// The column's header as the file wrote it (or the roster's Chinese header).
fn column_name(table: &Table, field: Field) -> String {
    table
        .mapping
        .fields
        .iter()
        .find(|(_, f)| **f == field)
        .and_then(|(i, _)| table.headers.get(*i))
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| header_of(table.kind, field).to_owned())
}

// ---------------------------------------------------------------------------------------
// Field parsers
// ---------------------------------------------------------------------------------------

/// 学号 or 工号: letters, digits, `-` and `_`, at most 32.
pub fn parse_code(v: &str) -> Result<String, Problem> {
    if v.chars().count() > 32 {
        return Err(problem("不能超过 32 个字符", "at most 32 characters"));
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(problem(
            format!("“{v}”只能包含字母、数字、- 和 _"),
            "letters, digits, - and _ only",
        ));
    }
    Ok(v.to_owned())
}

/// Free text that is stored and later exported: no control characters, and no leading
/// `=`, `+`, `-`, `@` (a spreadsheet would run it as a formula) unless written with an
/// apostrophe before it, as the CSV exports write it.
fn parse_text(raw: &str, max: usize, allow_newlines: bool) -> Result<String, Problem> {
    // Our CSV exports write such text with an apostrophe before it
    // (`campus_web::sheet::neutralise`): that form is read back as the text it was.
    let v = campus_web::sheet::restore(raw);
    let neutralised = v.len() < raw.len();
    if v.chars().count() > max {
        return Err(problem(
            format!("不能超过 {max} 个字"),
            format!("at most {max} characters"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(problem(
            "含有不可见的控制字符",
            "contains control characters",
        ));
    }
    if !neutralised && v.starts_with(['=', '+', '-', '@']) {
        return Err(problem(
            "不能以 = + - @ 开头（表格软件会把它当作公式）",
            "must not start with = + - @ (spreadsheets run it as a formula)",
        ));
    }
    Ok(v.to_owned())
}

pub fn parse_name(v: &str) -> Result<String, Problem> {
    parse_text(v, 50, false)
}

pub fn parse_gender(v: &str) -> Result<&'static str, Problem> {
    match v.to_ascii_lowercase().as_str() {
        "男" | "男性" | "m" | "male" => Ok("male"),
        "女" | "女性" | "f" | "female" => Ok("female"),
        _ => Err(problem(
            format!("“{v}”不是有效的性别，应填“男”或“女”"),
            "must be 男 (male) or 女 (female)",
        )),
    }
}

pub fn gender_zh(code: &str) -> &'static str {
    match code {
        "male" => "男",
        "female" => "女",
        _ => "",
    }
}

/// A mainland mobile number: 11 digits starting 13–19; spaces, dashes and a +86 prefix are
/// dropped.
pub fn parse_phone(v: &str) -> Result<String, Problem> {
    let digits: String = v
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '　'))
        .collect();
    let digits = digits
        .strip_prefix("+86")
        .or_else(|| digits.strip_prefix("0086"))
        .or_else(|| {
            (digits.len() == 13)
                .then(|| digits.strip_prefix("86"))
                .flatten()
        })
        .unwrap_or(&digits);
    let b = digits.as_bytes();
    if b.len() == 11
        && b[0] == b'1'
        && (b'3'..=b'9').contains(&b[1])
        && b.iter().all(u8::is_ascii_digit)
    {
        Ok(digits.to_owned())
    } else {
        Err(problem(
            format!("“{v}”不是有效的手机号（应为 1 开头的 11 位数字）"),
            "not a mainland mobile number (11 digits starting with 13–19)",
        ))
    }
}

const GRADE_NAMES: [&str; 12] = [
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

/// The usual name of a grade level.
pub fn grade_name(level: i16) -> &'static str {
    usize::try_from(level - 1)
        .ok()
        .and_then(|i| GRADE_NAMES.get(i))
        .copied()
        .unwrap_or("")
}

/// 1–12, "3年级", "三年级", "初一"…"初三" (7–9), "高一"…"高三" (10–12), "十年级".
pub fn parse_grade(v: &str) -> Result<i16, Problem> {
    let bad = || {
        problem(
            format!("“{v}”不是有效的年级（填 1–12，或“三年级”“初一”“高二”等）"),
            "grade must be 1–12 (or a name such as 三年级, 初一, 高二)",
        )
    };
    let s: String = v.chars().filter(|c| !c.is_whitespace()).collect();
    let level = if let Ok(n) = s.parse::<i16>() {
        n
    } else if let Some(rest) = s.strip_prefix('初') {
        chinese_number(rest).map(|n| n + 6).ok_or_else(bad)?
    } else if let Some(rest) = s.strip_prefix('高') {
        chinese_number(rest.trim_end_matches("年级"))
            .map(|n| n + 9)
            .ok_or_else(bad)?
    } else if let Some(rest) = s.strip_suffix("年级") {
        rest.parse::<i16>()
            .ok()
            .or_else(|| chinese_number(rest))
            .ok_or_else(bad)?
    } else {
        return Err(bad());
    };
    if (1..=12).contains(&level) {
        Ok(level)
    } else {
        Err(bad())
    }
}

fn chinese_number(s: &str) -> Option<i16> {
    const DIGITS: [char; 10] = ['零', '一', '二', '三', '四', '五', '六', '七', '八', '九'];
    let digit = |c: char| DIGITS.iter().position(|d| *d == c).map(|i| i as i16);
    let chars: Vec<char> = s.chars().collect();
    match chars.as_slice() {
        [c] if *c == '十' => Some(10),
        [c] => digit(*c).filter(|n| *n > 0),
        ['十', c] => digit(*c).map(|n| 10 + n),
        _ => None,
    }
}

/// 1–99, also written "3班", "(3)班", "（3）班".
pub fn parse_class_no(v: &str) -> Result<i16, Problem> {
    let s = v
        .trim()
        .trim_end_matches('班')
        .trim_start_matches(['(', '（'])
        .trim_end_matches([')', '）'])
        .trim();
    match s.parse::<i16>() {
        Ok(n) if (1..=99).contains(&n) => Ok(n),
        _ => Err(problem(
            format!("“{v}”不是有效的班号（1–99）"),
            "class number must be 1–99",
        )),
    }
}

pub fn default_class_name(level: i16, number: i16) -> String {
    format!("{}（{number}）班", grade_name(level))
}

/// YYYY-MM-DD, YYYY/MM/DD, YYYY.MM.DD, YYYYMMDD or 2015年3月9日; not in the future.
pub fn parse_date(v: &str) -> Result<NaiveDate, Problem> {
    let s = v.trim();
    let s = s.split_whitespace().next().unwrap_or(s);
    let normalized: String = s.replace(['年', '月', '/', '.'], "-").replace('日', "");
    let parsed = NaiveDate::parse_from_str(&normalized, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y%m%d"));
    match parsed {
        Ok(d) if d.year_ce().1 >= 1900 && d <= today() => Ok(d),
        Ok(_) => Err(problem(
            format!("日期“{v}”不在合理范围内"),
            "date is out of range (1900 to today)",
        )),
        Err(_) => Err(problem(
            format!("“{v}”不是有效的日期（如 2015-03-09）"),
            "not a valid date (e.g. 2015-03-09)",
        )),
    }
}

use chrono::Datelike;

/// Today in China (UTC+8).
pub fn today() -> NaiveDate {
    (chrono::Utc::now() + chrono::Duration::hours(8)).date_naive()
}

/// An 18-character resident ID number (GB 11643): 17 digits, a check character (0–9 or
/// X) that matches, and a real birth date in positions 7–14.
pub fn parse_id_number(v: &str) -> Result<String, Problem> {
    let s = v.to_ascii_uppercase();
    let b = s.as_bytes();
    if b.len() != 18
        || !b[..17].iter().all(u8::is_ascii_digit)
        || !(b[17].is_ascii_digit() || b[17] == b'X')
    {
        let hint = if v.contains(['E', 'e', '.']) {
            "（表格把它当成了数字，请把该列设为“文本”格式后重新输入）"
        } else {
            ""
        };
        return Err(problem(
            format!("“{v}”不是 18 位身份证号{hint}"),
            "an ID number has 18 characters: 17 digits and a check digit or X (store the column as text)",
        ));
    }
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = b[..17]
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    if CHECK[(sum % 11) as usize] != b[17] {
        return Err(problem(
            format!("身份证号“{v}”校验位不正确，请核对"),
            "the ID number's check character is wrong",
        ));
    }
    if id_birth_date(&s).is_none() {
        return Err(problem(
            format!("身份证号“{v}”中的出生日期无效"),
            "the birth date inside the ID number is not a real date",
        ));
    }
    Ok(s)
}

/// The birth date in positions 7–14 of an ID number.
pub fn id_birth_date(id: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(id.get(6..14)?, "%Y%m%d").ok()
}

/// The gender in position 17 of an ID number (odd: male).
pub fn id_gender(id: &str) -> Option<&'static str> {
    let d = id.as_bytes().get(16)?.checked_sub(b'0')?;
    Some(if d % 2 == 1 { "male" } else { "female" })
}

pub fn parse_blood_type(v: &str) -> Result<&'static str, Problem> {
    match v.to_ascii_uppercase().trim_end_matches('型').trim() {
        "A" => Ok("A"),
        "B" => Ok("B"),
        "AB" => Ok("AB"),
        "O" => Ok("O"),
        _ => Err(problem(
            format!("“{v}”不是有效的血型（A、B、AB 或 O）"),
            "blood type must be A, B, AB or O",
        )),
    }
}

pub fn parse_notes(v: &str) -> Result<String, Problem> {
    parse_text(v, 500, true)
}

/// Staff posts: (code, Chinese, other accepted spellings).
pub const TITLES: &[(&str, &str, &[&str])] = &[
    ("teacher", "教师", &["老师", "任课教师", "专任教师"]),
    ("principal", "校长", &[]),
    ("vice_principal", "副校长", &["vice principal"]),
    ("grade_leader", "年级组长", &["grade leader"]),
    ("clerk", "职员", &["行政", "行政人员", "干事"]),
    ("logistics", "后勤", &["后勤人员"]),
    ("guard", "门卫", &["保安"]),
];

pub fn parse_title(v: &str) -> Result<&'static str, Problem> {
    lookup(TITLES, v).ok_or_else(|| {
        problem(
            format!("“{v}”不是可识别的职务（可填：教师、校长、副校长、年级组长、职员、后勤、门卫）"),
            "unknown post (teacher, principal, vice_principal, grade_leader, clerk, logistics, guard)",
        )
    })
}

/// Guardians' relations: (code, Chinese, other accepted spellings).
pub const RELATIONS: &[(&str, &str, &[&str])] = &[
    ("father", "父亲", &["爸爸", "父"]),
    ("mother", "母亲", &["妈妈", "母"]),
    ("grandfather", "爷爷", &["祖父"]),
    ("grandmother", "奶奶", &["祖母"]),
    ("maternal_grandfather", "外公", &["外祖父", "姥爷"]),
    ("maternal_grandmother", "外婆", &["外祖母", "姥姥"]),
    ("grandparent", "祖辈", &["祖父母"]),
    ("guardian", "其他监护人", &["监护人", "其他"]),
    ("parent", "家长", &[]),
];

pub fn parse_relation(v: &str) -> Result<&'static str, Problem> {
    lookup(RELATIONS, v).ok_or_else(|| {
        problem(
            format!("“{v}”不是可识别的关系（可填：父亲、母亲、爷爷、奶奶、外公、外婆、其他监护人）"),
            "unknown relation (father, mother, grandfather, grandmother, maternal_grandfather, maternal_grandmother, guardian)",
        )
    })
}

fn lookup(
    table: &'static [(&'static str, &'static str, &[&str])],
    v: &str,
) -> Option<&'static str> {
    let n = super::schema::normalize(v);
    table
        .iter()
        .find(|(code, zh, more)| {
            n == super::schema::normalize(code)
                || n == *zh
                || more.iter().any(|m| super::schema::normalize(m) == n)
        })
        .map(|(code, _, _)| *code)
}

/// The Chinese word for a stored code (codes not in the table are shown as stored).
pub fn label<'a>(
    table: &'static [(&'static str, &'static str, &[&str])],
    code: &'a str,
) -> &'a str {
    table
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(code, |(_, zh, _)| zh)
}

// ---------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------

fn staff_row(c: &mut Cells) -> Option<StaffRow> {
    let staff_no = c.required(Field::StaffNo, parse_code);
    let name = c.required(Field::Name, parse_name);
    let gender = c.optional(Field::Gender, parse_gender);
    let phone = c.optional(Field::Phone, parse_phone);
    let title = c.optional(Field::Title, parse_title);
    let subject = c.optional(Field::Subject, |v| parse_text(v, 30, false));
    Some(StaffRow {
        row: c.row,
        staff_no: staff_no?,
        name: name?,
        gender: gender?,
        phone: phone?,
        title: title?.unwrap_or("teacher"),
        subject: subject?,
    })
}

fn class_row(c: &mut Cells) -> Option<ClassRow> {
    let level = c.required(Field::Grade, parse_grade);
    let number = c.required(Field::ClassNo, parse_class_no);
    let name = c.optional(Field::ClassName, |v| parse_text(v, 50, false));
    let head = c.optional(Field::HeadTeacher, parse_code);
    Some(ClassRow {
        row: c.row,
        level: level?,
        number: number?,
        name: name?,
        head_teacher: head?,
    })
}

fn student_row(c: &mut Cells) -> Option<StudentRow> {
    let student_no = c.required(Field::StudentNo, parse_code);
    let name = c.required(Field::Name, parse_name);
    let gender = c.optional(Field::Gender, parse_gender);
    let birth_date = c.optional(Field::BirthDate, parse_date);
    let level = c.required(Field::Grade, parse_grade);
    let number = c.required(Field::ClassNo, parse_class_no);
    let id_number = c.optional(Field::IdNumber, parse_id_number);
    let blood_type = c.optional(Field::BloodType, parse_blood_type);
    let notes = c.optional(Field::MedicalNotes, parse_notes);
    if let Some(Some(id)) = &id_number {
        if let (Some(Some(birth)), Some(from_id)) = (birth_date, id_birth_date(id)) {
            if birth != from_id {
                c.fail(
                    Field::BirthDate,
                    problem(
                        format!("出生日期与身份证号不符（身份证号中为 {from_id}）"),
                        format!("does not match the ID number ({from_id})"),
                    ),
                );
                return None;
            }
        }
        if let (Some(Some(g)), Some(from_id)) = (gender, id_gender(id)) {
            if g != from_id {
                c.fail(
                    Field::Gender,
                    problem(
                        format!("性别与身份证号不符（身份证号中为{}）", gender_zh(from_id)),
                        "does not match the ID number",
                    ),
                );
                return None;
            }
        }
    }
    Some(StudentRow {
        row: c.row,
        student_no: student_no?,
        name: name?,
        gender: gender?,
        birth_date: birth_date?,
        level: level?,
        number: number?,
        id_number: id_number?,
        blood_type: blood_type?,
        medical_notes: notes?,
    })
}

fn guardian_row(c: &mut Cells) -> Option<GuardianRow> {
    let student_no = c.required(Field::StudentNo, parse_code);
    let name = c.required(Field::Name, parse_name);
    let phone = c.required(Field::Phone, parse_phone);
    let relation = c.optional(Field::Relation, parse_relation);
    Some(GuardianRow {
        row: c.row,
        student_no: student_no?,
        name: name?,
        phone: phone?,
        relation: relation?.unwrap_or("parent"),
    })
}

/// Validates one table's rows field by field; returns the rows that passed (with their
/// row numbers) and the problems.
fn rows_of<T>(table: &Table, parse: fn(&mut Cells) -> Option<T>) -> (Vec<T>, Vec<RowError>) {
    let mut ok = Vec::new();
    let mut errors = Vec::new();
    for (row, cells) in &table.rows {
        // Cells under a column without a header cannot be placed.
        if let Some(i) = table
            .mapping
            .blank_headers
            .iter()
            .find(|i| cells.get(**i).is_some_and(|v| !v.trim().is_empty()))
        {
            errors.push(RowError {
                sheet: table.sheet.clone(),
                row: *row,
                column: format!("第 {} 列", i + 1),
                message: "该列没有表头，无法识别".into(),
                message_en: "this column has no header".into(),
            });
            continue;
        }
        let mut c = Cells {
            table,
            row: *row,
            cells,
            errors: Vec::new(),
        };
        let parsed = parse(&mut c);
        if c.errors.is_empty() {
            ok.extend(parsed);
        }
        errors.append(&mut c.errors);
    }
    (ok, errors)
}

/// Rows whose key occurs more than once: every occurrence is an error (neither can be
/// trusted over the other). Returns the rows that remain.
fn no_duplicates<T, K: std::hash::Hash + Eq + Clone>(
    table: &Table,
    rows: Vec<T>,
    key: impl Fn(&T) -> Option<K>,
    row_of: impl Fn(&T) -> usize,
    field: Field,
    describe: impl Fn(&K) -> String,
    errors: &mut Vec<RowError>,
) -> Vec<T> {
    let mut seen: HashMap<K, Vec<usize>> = HashMap::new();
    for r in &rows {
        if let Some(k) = key(r) {
            seen.entry(k).or_default().push(row_of(r));
        }
    }
    rows.into_iter()
        .filter(|r| {
            let Some(k) = key(r) else { return true };
            let at = &seen[&k];
            if at.len() < 2 {
                return true;
            }
            let list = at
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join("、");
            errors.push(RowError {
                sheet: table.sheet.clone(),
                row: row_of(r),
                column: column_name(table, field),
                message: format!("{} 在文件中重复出现（第 {list} 行）", describe(&k)),
                message_en: format!("appears more than once in the file (rows {list})"),
            });
            false
        })
        .collect()
}

fn reference_error(table: &Table, row: usize, field: Field, zh: String, en: String) -> RowError {
    RowError {
        sheet: table.sheet.clone(),
        row,
        column: column_name(table, field),
        message: zh,
        message_en: en,
    }
}

fn columns_of(table: &Table) -> HashSet<Field> {
    table.mapping.fields.values().copied().collect()
}

/// Validates every table against each other and what the school already has.
pub fn validate(tables: &[Table], known: &Known) -> Batch {
    let mut batch = Batch {
        rows_total: tables.iter().map(|t| t.rows.len()).sum(),
        ..Batch::default()
    };
    let table = |k: Kind| tables.iter().find(|t| t.kind == k);
    let mut errors = Vec::new();

    if let Some(t) = table(Kind::Staff) {
        let (rows, mut e) = rows_of(t, staff_row);
        errors.append(&mut e);
        let rows = no_duplicates(
            t,
            rows,
            |r: &StaffRow| Some(r.staff_no.clone()),
            |r| r.row,
            Field::StaffNo,
            |k| format!("工号 {k}"),
            &mut errors,
        );
        batch.staff = Part {
            rows,
            columns: columns_of(t),
        };
    }
    let staff: HashSet<&str> = batch
        .staff
        .rows
        .iter()
        .map(|r| r.staff_no.as_str())
        .chain(known.staff.iter().map(String::as_str))
        .collect();

    if let Some(t) = table(Kind::Classes) {
        let (rows, mut e) = rows_of(t, class_row);
        errors.append(&mut e);
        let rows = no_duplicates(
            t,
            rows,
            |r: &ClassRow| Some((r.level, r.number)),
            |r| r.row,
            Field::ClassNo,
            |(l, n)| default_class_name(*l, *n),
            &mut errors,
        );
        let rows = rows
            .into_iter()
            .filter(|r| match &r.head_teacher {
                _ if known.retired.contains(&(r.level, r.number)) => {
                    errors.push(retired_error(t, r.row, r.level, r.number));
                    false
                }
                Some(no) if !staff.contains(no.as_str()) => {
                    errors.push(reference_error(
                        t,
                        r.row,
                        Field::HeadTeacher,
                        format!("找不到工号为 {no} 的教职工（请先导入教职工，或在同一工作簿的“教职工”表中填写）"),
                        format!("no staff member with staff number {no}"),
                    ));
                    false
                }
                _ => true,
            })
            .collect();
        batch.classes = Part {
            rows,
            columns: columns_of(t),
        };
    }
    let classes: HashSet<(i16, i16)> = batch
        .classes
        .rows
        .iter()
        .map(|r| (r.level, r.number))
        .chain(known.classes.iter().copied())
        .collect();

    if let Some(t) = table(Kind::Students) {
        let (rows, mut e) = rows_of(t, student_row);
        errors.append(&mut e);
        let rows = no_duplicates(
            t,
            rows,
            |r: &StudentRow| Some(r.student_no.clone()),
            |r| r.row,
            Field::StudentNo,
            |k| format!("学号 {k}"),
            &mut errors,
        );
        let rows = no_duplicates(
            t,
            rows,
            |r: &StudentRow| r.id_number.clone(),
            |r| r.row,
            Field::IdNumber,
            |k| format!("身份证号 {k}"),
            &mut errors,
        );
        let rows = rows
            .into_iter()
            .filter(|r| {
                if classes.contains(&(r.level, r.number)) {
                    return true;
                }
                if known.retired.contains(&(r.level, r.number)) {
                    errors.push(retired_error(t, r.row, r.level, r.number));
                    return false;
                }
                let class = default_class_name(r.level, r.number);
                errors.push(reference_error(
                    t,
                    r.row,
                    Field::ClassNo,
                    format!("{class}不存在（请先导入班级，或在同一工作簿的“班级”表中填写）"),
                    format!("grade {} class {} does not exist", r.level, r.number),
                ));
                false
            })
            .collect();
        batch.students = Part {
            rows,
            columns: columns_of(t),
        };
    }
    let students: HashSet<&str> = batch
        .students
        .rows
        .iter()
        .map(|r| r.student_no.as_str())
        .chain(known.students.iter().map(String::as_str))
        .collect();

    if let Some(t) = table(Kind::Guardians) {
        let (rows, mut e) = rows_of(t, guardian_row);
        errors.append(&mut e);
        let rows = no_duplicates(
            t,
            rows,
            |r: &GuardianRow| Some((r.phone.clone(), r.student_no.clone())),
            |r| r.row,
            Field::Phone,
            |(p, s)| format!("手机号 {p} 与学号 {s}"),
            &mut errors,
        );
        // One phone number is one person: the same number under two names is a mistake.
        let mut names: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
        for r in &rows {
            names.entry(&r.phone).or_default().insert(&r.name);
        }
        let conflicting: HashSet<String> = names
            .iter()
            .filter(|(_, n)| n.len() > 1)
            .map(|(p, _)| (*p).to_owned())
            .collect();
        let rows = rows
            .into_iter()
            .filter(|r| {
                if conflicting.contains(&r.phone) {
                    errors.push(reference_error(
                        t,
                        r.row,
                        Field::Phone,
                        format!("手机号 {} 在文件中对应了不同的家长姓名", r.phone),
                        "the same phone number is given for different names".into(),
                    ));
                    return false;
                }
                if !students.contains(r.student_no.as_str()) {
                    errors.push(reference_error(
                        t,
                        r.row,
                        Field::StudentNo,
                        format!("找不到学号为 {} 的学生（请先导入学生，或在同一工作簿的“学生”表中填写）", r.student_no),
                        format!("no pupil with student number {}", r.student_no),
                    ));
                    return false;
                }
                true
            })
            .collect();
        batch.guardians = Part {
            rows,
            columns: columns_of(t),
        };
    }
    errors.sort_by(|a, b| {
        let order = |s: &str| tables.iter().position(|t| t.sheet == s);
        (order(&a.sheet), a.row).cmp(&(order(&b.sheet), b.row))
    });
    batch.errors = errors;
    batch
}

#[cfg(test)]
mod tests {
    use super::super::schema::map_headers;
    use super::*;

    fn table(kind: Kind, headers: &[&str], rows: &[&[&str]]) -> Table {
        let headers: Vec<String> = headers.iter().map(|s| (*s).to_owned()).collect();
        Table {
            kind,
            sheet: kind.sheet().into(),
            mapping: map_headers(kind, &headers),
            headers,
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, r)| (i + 2, r.iter().map(|s| (*s).to_owned()).collect()))
                .collect(),
        }
    }

    #[test]
    fn id_numbers_need_the_right_check_character_and_a_real_date() {
        assert_eq!(
            parse_id_number("11010519491231002x").unwrap(),
            "11010519491231002X"
        );
        assert!(
            parse_id_number("110105194912310021").is_err(),
            "wrong check digit"
        );
        assert!(parse_id_number("1101051949123100").is_err(), "too short");
        assert!(parse_id_number("1.10105194912310E+17")
            .unwrap_err()
            .0
            .contains("文本"));
        // Valid check character, impossible date (Feb 30).
        let body = "51182320150230001";
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body
            .bytes()
            .zip(W)
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        let id = format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char);
        assert!(parse_id_number(&id).unwrap_err().0.contains("出生日期"));
    }

    #[test]
    fn field_formats() {
        assert_eq!(parse_phone("138 0013 8000").unwrap(), "13800138000");
        assert_eq!(parse_phone("+86-13800138000").unwrap(), "13800138000");
        assert!(parse_phone("12800138000").is_err());
        assert!(parse_phone("1380013800").is_err());
        assert_eq!(parse_grade("3").unwrap(), 3);
        assert_eq!(parse_grade("三年级").unwrap(), 3);
        assert_eq!(parse_grade("初二").unwrap(), 8);
        assert_eq!(parse_grade("高三").unwrap(), 12);
        assert_eq!(parse_grade("十一年级").unwrap(), 11);
        assert!(parse_grade("13").is_err());
        assert!(parse_grade("0").is_err());
        assert_eq!(parse_class_no("（2）班").unwrap(), 2);
        assert!(parse_class_no("0").is_err());
        assert_eq!(
            parse_date("2015/3/9").unwrap(),
            NaiveDate::from_ymd_opt(2015, 3, 9).unwrap()
        );
        assert_eq!(
            parse_date("2015年3月9日").unwrap(),
            NaiveDate::from_ymd_opt(2015, 3, 9).unwrap()
        );
        assert_eq!(
            parse_date("20150309").unwrap(),
            NaiveDate::from_ymd_opt(2015, 3, 9).unwrap()
        );
        assert!(parse_date("2015-02-30").is_err());
        assert!(parse_date("2999-01-01").is_err());
        assert_eq!(parse_blood_type("ab型").unwrap(), "AB");
        assert!(parse_blood_type("C").is_err());
        assert_eq!(parse_gender("女").unwrap(), "female");
        assert!(parse_gender("未知").is_err());
        assert_eq!(parse_relation("妈妈").unwrap(), "mother");
        assert_eq!(parse_relation("father").unwrap(), "father");
        assert_eq!(parse_title("副校长").unwrap(), "vice_principal");
        assert!(parse_name("=HYPERLINK(\"x\")").is_err());
        assert_eq!(
            parse_name("'=HYPERLINK(\"x\")").unwrap(),
            "=HYPERLINK(\"x\")",
            "an export's neutralised cell reads back as it was"
        );
        assert_eq!(parse_name("'张三").unwrap(), "'张三");
        assert!(parse_code("2024 001").is_err());
    }

    #[test]
    fn each_bad_row_is_reported_with_its_row_column_and_reason() {
        let t = table(
            Kind::Students,
            &["学号", "姓名", "性别", "年级", "班号", "血型"],
            &[
                &["S1", "张三", "男", "1", "1", "A"],
                &["S2", "", "男", "1", "1", "A"],
                &["S3", "王五", "不详", "1", "1", "C"],
                &["S1", "李四", "女", "1", "1", ""],
                &["S5", "赵六", "女", "1", "9", ""],
            ],
        );
        let known = Known {
            classes: [(1, 1)].into(),
            ..Known::default()
        };
        let b = validate(&[t], &known);
        let got: Vec<(usize, &str)> = b
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, "学号"),
                (3, "姓名"),
                (4, "性别"),
                (4, "血型"),
                (5, "学号"),
                (6, "班号")
            ]
        );
        assert!(b.errors[0].message.contains("重复"), "{:?}", b.errors[0]);
        assert!(b.students.rows.is_empty());
    }

    #[test]
    fn references_may_point_into_the_same_workbook_but_not_at_rejected_rows() {
        let staff = table(Kind::Staff, &["工号", "姓名"], &[&["T1", "王老师"]]);
        let classes = table(
            Kind::Classes,
            &["年级", "班号", "班主任工号"],
            &[&["1", "1", "T1"], &["1", "2", "T9"]],
        );
        let students = table(
            Kind::Students,
            &["学号", "姓名", "年级", "班号"],
            &[&["S1", "张三", "1", "1"], &["S2", "李四", "1", "2"]],
        );
        let guardians = table(
            Kind::Guardians,
            &["学号", "家长姓名", "手机号", "关系"],
            &[
                &["S1", "张父", "13800138000", "父亲"],
                &["S2", "李母", "13900139000", "母亲"],
                &["S1", "张母", "13800138000", "母亲"],
            ],
        );
        let b = validate(&[guardians, students, classes, staff], &Known::default());
        assert_eq!(b.staff.rows.len(), 1);
        assert_eq!(b.classes.rows.len(), 1, "T9 does not exist");
        assert_eq!(b.students.rows.len(), 1, "class 1-2 was rejected");
        assert_eq!(
            b.guardians.rows.len(),
            0,
            "S2 was rejected and S1 is listed twice with one phone"
        );
        assert_eq!(b.errors.len(), 5, "{:#?}", b.errors);
        assert_eq!(
            b.errors[0].sheet, "家长",
            "sorted in the order of the file's sheets"
        );
    }

    #[test]
    fn birth_date_and_gender_must_agree_with_the_id_number() {
        let t = table(
            Kind::Students,
            &[
                "学号",
                "姓名",
                "性别",
                "出生日期",
                "年级",
                "班号",
                "身份证号",
            ],
            &[
                &[
                    "S1",
                    "张三",
                    "女",
                    "1949-12-31",
                    "1",
                    "1",
                    "11010519491231002X",
                ],
                &[
                    "S2",
                    "李四",
                    "男",
                    "1950-01-01",
                    "1",
                    "1",
                    "110105194912310038",
                ],
            ],
        );
        let known = Known {
            classes: [(1, 1)].into(),
            ..Known::default()
        };
        let b = validate(&[t], &known);
        assert_eq!(b.students.rows.len(), 1);
        assert_eq!(b.errors.len(), 1);
        assert_eq!(b.errors[0].column, "出生日期");
    }

    #[test]
    fn nothing_is_imported_into_a_retired_class() {
        let classes = table(
            Kind::Classes,
            &["年级", "班号", "班级名称"],
            &[&["6", "1", "六（1）班"], &["6", "3", "六（3）班"]],
        );
        let students = table(
            Kind::Students,
            &["学号", "姓名", "年级", "班号"],
            &[
                &["S1", "张三", "6", "1"],
                &["S2", "李四", "6", "2"],
                &["S3", "王五", "6", "3"],
            ],
        );
        let known = Known {
            classes: [(6, 2)].into(),
            retired: [(6, 1)].into(),
            ..Known::default()
        };
        let b = validate(&[classes, students], &known);
        assert_eq!(b.classes.rows.len(), 1, "only the new class 6-3");
        let kept: Vec<&str> = b
            .students
            .rows
            .iter()
            .map(|r| r.student_no.as_str())
            .collect();
        assert_eq!(kept, ["S2", "S3"]);
        assert_eq!(b.errors.len(), 2, "{:#?}", b.errors);
        assert!(
            b.errors.iter().all(|e| e.message.contains("已撤销")),
            "{:#?}",
            b.errors
        );
    }
}
