//! The four rosters (classes, pupils, guardians, staff): their sheet names, their columns
//! with Chinese headers and accepted aliases, and how a file's header row is matched to them.

use std::collections::HashMap;

/// One roster of the school, in the order they must be imported (each may refer to the
/// ones before it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Staff,
    Classes,
    Students,
    Guardians,
}

impl Kind {
    /// Import order: staff, classes, students, guardians.
    pub const ALL: [Kind; 4] = [Kind::Staff, Kind::Classes, Kind::Students, Kind::Guardians];

    /// The code used in URLs, forms and JSON.
    pub fn code(self) -> &'static str {
        match self {
            Self::Staff => "staff",
            Self::Classes => "classes",
            Self::Students => "students",
            Self::Guardians => "guardians",
        }
    }

    /// The sheet name in workbooks (and the Chinese name of the roster).
    pub fn sheet(self) -> &'static str {
        match self {
            Self::Staff => "教职工",
            Self::Classes => "班级",
            Self::Students => "学生",
            Self::Guardians => "家长",
        }
    }

    pub fn name_en(self) -> &'static str {
        match self {
            Self::Staff => "Staff",
            Self::Classes => "Classes",
            Self::Students => "Pupils",
            Self::Guardians => "Guardians",
        }
    }

    /// A form or query value: the code, the sheet name or the English name.
    pub fn parse(s: &str) -> Option<Self> {
        let n = normalize(s);
        Self::ALL.into_iter().find(|k| {
            n == k.code()
                || n == normalize(k.sheet())
                || n == normalize(k.name_en())
                || (*k == Self::Students && n == "pupils")
                || (*k == Self::Guardians && (n == "parents" || n == "监护人"))
        })
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Self::Staff => STAFF,
            Self::Classes => CLASSES,
            Self::Students => STUDENTS,
            Self::Guardians => GUARDIANS,
        }
    }
}

/// A field of a roster row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    StaffNo,
    StudentNo,
    Name,
    Gender,
    Phone,
    Title,
    Subject,
    Grade,
    ClassNo,
    ClassName,
    HeadTeacher,
    BirthDate,
    IdNumber,
    BloodType,
    MedicalNotes,
    Relation,
}

/// A column of a roster: its header as written in templates and exports, and what else a
/// header may say to mean it.
#[derive(Debug)]
pub struct Column {
    pub field: Field,
    pub zh: &'static str,
    pub en: &'static str,
    pub aliases: &'static [&'static str],
    pub required: bool,
}

const fn col(
    field: Field,
    zh: &'static str,
    en: &'static str,
    aliases: &'static [&'static str],
    required: bool,
) -> Column {
    Column {
        field,
        zh,
        en,
        aliases,
        required,
    }
}

const STAFF: &[Column] = &[
    col(
        Field::StaffNo,
        "工号",
        "Staff No",
        &[
            "职工号",
            "教职工号",
            "教师工号",
            "staff_no",
            "staff number",
            "employee no",
        ],
        true,
    ),
    col(
        Field::Name,
        "姓名",
        "Name",
        &["教师姓名", "职工姓名", "教职工姓名"],
        true,
    ),
    col(Field::Gender, "性别", "Gender", &["sex"], false),
    col(
        Field::Phone,
        "手机号",
        "Phone",
        &["手机", "手机号码", "联系电话", "电话", "mobile"],
        false,
    ),
    col(
        Field::Title,
        "职务",
        "Title",
        &["岗位", "post", "position"],
        false,
    ),
    col(
        Field::Subject,
        "任教学科",
        "Subject",
        &["学科", "科目", "任教科目"],
        false,
    ),
];

const CLASSES: &[Column] = &[
    col(Field::Grade, "年级", "Grade", &["grade level"], true),
    col(
        Field::ClassNo,
        "班号",
        "Class No",
        &["班级号", "班", "class number", "class"],
        true,
    ),
    col(
        Field::ClassName,
        "班级名称",
        "Class Name",
        &["班名", "班级", "名称", "name"],
        false,
    ),
    col(
        Field::HeadTeacher,
        "班主任工号",
        "Head Teacher Staff No",
        &["班主任", "head teacher", "head_teacher"],
        false,
    ),
];

const STUDENTS: &[Column] = &[
    col(
        Field::StudentNo,
        "学号",
        "Student No",
        &["学籍号", "student_no", "student number"],
        true,
    ),
    col(
        Field::Name,
        "姓名",
        "Name",
        &["学生姓名", "student name"],
        true,
    ),
    col(Field::Gender, "性别", "Gender", &["sex"], false),
    col(
        Field::BirthDate,
        "出生日期",
        "Birth Date",
        &["生日", "出生年月日", "date of birth", "birthday", "dob"],
        false,
    ),
    col(Field::Grade, "年级", "Grade", &["grade level"], true),
    col(
        Field::ClassNo,
        "班号",
        "Class No",
        &["班级号", "班", "class number", "class"],
        true,
    ),
    col(
        Field::IdNumber,
        "身份证号",
        "ID Number",
        &["身份证", "身份证号码", "公民身份号码", "id_number", "id no"],
        false,
    ),
    col(Field::BloodType, "血型", "Blood Type", &[], false),
    col(
        Field::MedicalNotes,
        "特殊病史",
        "Medical Notes",
        &["病史", "既往病史", "健康备注", "medical_notes"],
        false,
    ),
];

const GUARDIANS: &[Column] = &[
    col(
        Field::StudentNo,
        "学号",
        "Student No",
        &["学生学号", "学籍号", "student_no", "student number"],
        true,
    ),
    col(
        Field::Name,
        "家长姓名",
        "Guardian Name",
        &["监护人姓名", "家长", "监护人", "guardian", "parent name"],
        true,
    ),
    col(
        Field::Phone,
        "手机号",
        "Phone",
        &[
            "家长手机号",
            "手机",
            "手机号码",
            "联系电话",
            "电话",
            "mobile",
        ],
        true,
    ),
    col(
        Field::Relation,
        "关系",
        "Relation",
        &["与学生关系", "亲属关系", "relationship"],
        false,
    ),
];

/// A header or name as compared: no whitespace (ASCII or full-width), no BOM, no
/// required-marker stars, nothing in brackets (hints such as "（选填）" or "(YYYY-MM-DD)"),
/// ASCII lowercase, and `_`, `-`, `.` dropped so "Student No." matches "student_no".
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    for c in s.chars() {
        match c {
            '(' | '（' | '[' | '【' => depth += 1,
            ')' | '）' | ']' | '】' => depth = depth.saturating_sub(1),
            _ if depth > 0 => {}
            '\u{feff}' | '*' | '＊' | '_' | '-' | '.' => {}
            c if c.is_whitespace() => {}
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The column a header names in `kind`, if any.
pub fn match_header(kind: Kind, header: &str) -> Option<&'static Column> {
    let h = normalize(header);
    if h.is_empty() {
        return None;
    }
    kind.columns().iter().find(|c| {
        normalize(c.zh) == h || normalize(c.en) == h || c.aliases.iter().any(|a| normalize(a) == h)
    })
}

/// How a sheet's header row maps onto a roster's columns.
#[derive(Debug)]
pub struct Mapping {
    pub kind: Kind,
    /// Column index in the sheet → field.
    pub fields: HashMap<usize, Field>,
    /// Required columns that are missing (their Chinese headers).
    pub missing: Vec<&'static str>,
    /// Headers that name no column of this roster.
    pub unknown: Vec<String>,
    /// Headers naming a column that an earlier header already named.
    pub duplicate: Vec<String>,
    /// Column indexes whose header cell is empty.
    pub blank_headers: Vec<usize>,
}

impl Mapping {
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unknown.is_empty() && self.duplicate.is_empty()
    }

    pub fn has(&self, field: Field) -> bool {
        self.fields.values().any(|f| *f == field)
    }
}

/// Maps `headers` onto `kind`'s columns.
pub fn map_headers(kind: Kind, headers: &[String]) -> Mapping {
    let mut fields = HashMap::new();
    let mut unknown = Vec::new();
    let mut duplicate = Vec::new();
    let mut blank_headers = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if normalize(h).is_empty() {
            blank_headers.push(i);
            continue;
        }
        match match_header(kind, h) {
            Some(c) if fields.values().any(|f| *f == c.field) => {
                duplicate.push(h.trim().to_owned())
            }
            Some(c) => {
                fields.insert(i, c.field);
            }
            None => unknown.push(h.trim().to_owned()),
        }
    }
    let missing = kind
        .columns()
        .iter()
        .filter(|c| c.required && !fields.values().any(|f| *f == c.field))
        .map(|c| c.zh)
        .collect();
    Mapping {
        kind,
        fields,
        missing,
        unknown,
        duplicate,
        blank_headers,
    }
}

/// The roster a header row belongs to: the one whose required columns are all present and
/// which recognises the most headers. `None` if no roster fits, or two fit equally well.
pub fn detect_kind(headers: &[String]) -> Option<Kind> {
    let mut best: Option<(usize, Kind)> = None;
    let mut tie = false;
    for kind in Kind::ALL {
        let m = map_headers(kind, headers);
        if !m.missing.is_empty() {
            continue;
        }
        let score = m.fields.len();
        match best {
            Some((s, _)) if s > score => {}
            Some((s, _)) if s == score => tie = true,
            _ => {
                best = Some((score, kind));
                tie = false;
            }
        }
    }
    if tie {
        None
    } else {
        best.map(|(_, k)| k)
    }
}

/// The Chinese header of a field in `kind`.
pub fn header_of(kind: Kind, field: Field) -> &'static str {
    kind.columns()
        .iter()
        .find(|c| c.field == field)
        .map_or("", |c| c.zh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn headers_match_despite_spacing_case_hints_and_english() {
        assert_eq!(normalize(" 学 号 "), "学号");
        assert_eq!(normalize("\u{feff}学号*"), "学号");
        assert_eq!(normalize("出生日期（YYYY-MM-DD）"), "出生日期");
        assert_eq!(normalize("Student No."), "studentno");
        let m = map_headers(
            Kind::Students,
            &h(&["Student No", "姓　名", "Grade", "班号", "ID Number"]),
        );
        assert!(m.is_complete(), "{m:?}");
        assert!(m.has(Field::IdNumber));
    }

    #[test]
    fn the_kind_is_told_by_its_headers() {
        assert_eq!(
            detect_kind(&h(&["学号", "姓名", "性别", "年级", "班号"])),
            Some(Kind::Students)
        );
        assert_eq!(
            detect_kind(&h(&["年级", "班号", "班级名称", "班主任工号"])),
            Some(Kind::Classes)
        );
        assert_eq!(
            detect_kind(&h(&["学号", "家长姓名", "手机号", "关系"])),
            Some(Kind::Guardians)
        );
        assert_eq!(
            detect_kind(&h(&["工号", "姓名", "手机号"])),
            Some(Kind::Staff)
        );
        assert_eq!(detect_kind(&h(&["名字", "电话号码"])), None);
    }

    #[test]
    fn missing_unknown_and_repeated_columns_are_reported() {
        let m = map_headers(Kind::Students, &h(&["学号", "学号", "爱好", "", "年级"]));
        assert_eq!(m.missing, vec!["姓名", "班号"]);
        assert_eq!(m.unknown, vec!["爱好"]);
        assert_eq!(m.duplicate, vec!["学号"]);
        assert_eq!(m.blank_headers, vec![3]);
    }

    #[test]
    fn kinds_parse_from_codes_and_sheet_names() {
        assert_eq!(Kind::parse("students"), Some(Kind::Students));
        assert_eq!(Kind::parse(" 家长 "), Some(Kind::Guardians));
        assert_eq!(Kind::parse("Staff"), Some(Kind::Staff));
        assert_eq!(Kind::parse("all"), None);
    }
}
