//! Roster import and export through the real pages and JSON API: CSV in UTF-8 and GBK,
//! multi-sheet XLSX workbooks, per-row errors with nothing written, the valid-rows-only
//! mode, idempotent re-imports, clear refusals of unusable files, exports that import into
//! another school unchanged, the audit trail, permissions, CSRF, and school isolation.

use calamine::Reader;
use campus_tenant::Tenant;
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use sqlx::Row;

use crate::helpers::{add_pupils, person, TestApp, Visitor};

const PW: &str = "campus2026";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

/// A resident ID number for a birth date (YYYY-MM-DD) with a valid check character; an
/// odd `seq` makes it a boy's, an even one a girl's.
fn id_number(birth: &str, seq: u16) -> String {
    let body = format!("511823{}{seq:03}", birth.replace('-', ""));
    const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    let sum: u32 = body
        .bytes()
        .zip(W)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    format!("{body}{}", b"10X98765432"[(sum % 11) as usize] as char)
}

fn staff_csv() -> String {
    "工号,姓名,性别,手机号,职务,任教学科\n\
     T001,王芳,女,13800000001,教师,语文\n\
     T002,李强,男,138 0000 0002,年级组长,数学\n"
        .into()
}

fn classes_csv() -> String {
    "年级,班号,班级名称,班主任工号\n\
     1,1,一年级（1）班,T001\n\
     一年级,2,,T002\n"
        .into()
}

fn students_csv() -> String {
    format!(
        "学号,姓名,性别,出生日期,年级,班号,身份证号,血型,特殊病史\n\
         2024001,张小明,男,2017-03-09,1,1,{},A,青霉素过敏\n\
         2024002,李小红,女,2017/5/20,1,1,{},O,\n\
         2024003,赵小刚,男,2016-11-02,1,（2）班,{},,哮喘，随身携带喷雾\n",
        id_number("2017-03-09", 11),
        id_number("2017-05-20", 22),
        id_number("2016-11-02", 33),
    )
}

fn guardians_csv() -> String {
    "学号,家长姓名,手机号,关系\n\
     2024001,张伟,13900000001,父亲\n\
     2024001,刘丽,13900000002,妈妈\n\
     2024002,李军,13900000003,父亲\n\
     2024003,赵敏,13900000004,母亲\n"
        .into()
}

/// All four rosters, in import order.
fn all_csv() -> Vec<(&'static str, String)> {
    vec![
        ("教职工.csv", staff_csv()),
        ("班级.csv", classes_csv()),
        ("学生.csv", students_csv()),
        ("家长.csv", guardians_csv()),
    ]
}

/// A workbook with one sheet per `(name, csv)`; short numbers are written as number cells,
/// everything else as text, as a person typing into Excel would get.
fn workbook(sheets: &[(&str, String)]) -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    for (name, csv) in sheets {
        let ws = book.add_worksheet();
        ws.set_name(*name).unwrap();
        for (r, line) in csv.lines().enumerate() {
            for (c, cell) in line.split(',').enumerate() {
                let (r, c) = (r as u32, c as u16);
                if cell.is_empty() {
                    continue;
                }
                match cell.parse::<f64>() {
                    Ok(n) if cell.len() < 6 => ws.write_number(r, c, n).unwrap(),
                    _ => ws.write_string(r, c, cell).unwrap(),
                };
            }
        }
    }
    book.save_to_buffer().unwrap()
}

/// The fixture as one workbook whose sheets come in reverse dependency order.
fn full_workbook() -> Vec<u8> {
    workbook(&[
        ("家长", guardians_csv()),
        ("学生", students_csv()),
        ("班级", classes_csv()),
        ("教职工", staff_csv()),
    ])
}

fn gbk(text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

/// An account with `roles` in each school, signed in at the first school's host.
async fn signed_in<'a>(
    app: &'a TestApp,
    login: &str,
    schools: &[(&Tenant, &str)],
    roles: &[&str],
) -> Visitor<'a> {
    let memberships: Vec<(&Tenant, &[&str])> = schools.iter().map(|(t, _)| (*t, roles)).collect();
    person(&app.services, login, "管理员甲", PW, &memberships).await;
    let mut v = Visitor::new(app);
    for (_, slug) in schools {
        let r = v.sign_in(&host(slug), login, PW).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in at {slug}");
    }
    v
}

fn file_form(csrf: Option<&str>, name: &str, bytes: Vec<u8>, mode: &str) -> Form {
    let mut form = Form::new()
        .text("mode", mode.to_owned())
        .part("file", Part::bytes(bytes).file_name(name.to_owned()));
    if let Some(c) = csrf {
        form = form.text("csrf", c.to_owned());
    }
    form
}

/// Uploads through the page's form (with the page's CSRF token).
async fn upload(
    v: &mut Visitor<'_>,
    slug: &str,
    name: &str,
    bytes: Vec<u8>,
    mode: &str,
) -> (StatusCode, String) {
    let csrf = v.csrf(&host(slug), "/admin/roster").await;
    let r = v
        .post_multipart(
            &host(slug),
            "/admin/roster/import",
            file_form(Some(&csrf), name, bytes, mode),
            &[],
        )
        .await;
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// Uploads through the JSON API with the CSRF header.
async fn upload_api(
    v: &mut Visitor<'_>,
    slug: &str,
    name: &str,
    bytes: Vec<u8>,
    mode: &str,
) -> (StatusCode, serde_json::Value) {
    let csrf = v.csrf(&host(slug), "/admin/roster").await;
    let r = v
        .post_multipart(
            &host(slug),
            "/api/v1/roster/import",
            file_form(None, name, bytes, mode),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn import_ok(v: &mut Visitor<'_>, slug: &str, name: &str, bytes: Vec<u8>) -> String {
    let (status, page) = upload(v, slug, name, bytes, "all").await;
    assert_eq!(status, StatusCode::OK, "{name}: {page}");
    assert!(page.contains("导入完成"), "{page}");
    page
}

/// Everything the roster module owns in a school, as sorted lines of text.
async fn snapshot(app: &TestApp, t: &Tenant) -> Vec<String> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let mut out = Vec::new();
    for sql in [
        "select concat_ws('|', 'staff', staff_no, name, gender, phone, title, subject) from staff",
        "select concat_ws('|', 'class', g.level, g.name, c.number, c.name, h.staff_no)
           from classes c join grades g on g.id = c.grade_id left join staff h on h.id = c.head_teacher_id",
        "select concat_ws('|', 'pupil', s.student_no, s.name, s.gender, s.birth_date, g.level, c.number,
                          s.id_number, s.blood_type, s.medical_notes)
           from students s join classes c on c.id = s.class_id join grades g on g.id = c.grade_id",
        "select concat_ws('|', 'guardian', s.student_no, g.name, g.phone, sg.relation)
           from student_guardians sg join students s on s.id = sg.student_id
           join guardians g on g.id = sg.guardian_id",
        "select concat_ws('|', 'guardian-rows', count(*)) from guardians",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&mut *tx).await.unwrap();
        out.extend(rows);
    }
    tx.commit().await.unwrap();
    out.sort();
    out
}

async fn count(app: &TestApp, t: &Tenant, table: &str) -> i64 {
    let mut tx = app.services.db.school(t).await.unwrap();
    let n: i64 = sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    n
}

/// The school's audit rows: (action, actor name, detail).
async fn audit(app: &TestApp, t: &Tenant) -> Vec<(String, String, serde_json::Value)> {
    let mut tx = app.services.db.school(t).await.unwrap();
    let rows = sqlx::query("select action, actor_name, detail from audit_log order by id")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get("action"), r.get("actor_name"), r.get("detail")))
        .collect();
    tx.commit().await.unwrap();
    rows
}

/// Downloads `path`; returns status, headers and body.
async fn download(
    v: &mut Visitor<'_>,
    slug: &str,
    path: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
    let r = v.get(&host(slug), path).await;
    let status = r.status();
    let headers = r.headers().clone();
    (status, headers, r.bytes().await.unwrap().to_vec())
}

/// The result page's line for one roster: inserted, updated, unchanged.
fn counts_line(kind_en: &str, zh: &str, counts: (u32, u32, u32)) -> String {
    format!(
        "<tr data-kind=\"{kind_en}\"><td>{zh}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        counts.0, counts.1, counts.2
    )
}

#[tokio::test]
async fn utf8_csv_files_import_each_roster_and_the_page_counts_them() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;

    let page = v.get(&host("school-a"), "/admin/roster").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("名册导入导出") && page.contains("name=\"mode\" value=\"valid_only\""));
    assert!(page.contains("/admin/roster/template?kind=students&amp;format=xlsx"));

    let page = import_ok(&mut v, "school-a", "教职工.csv", staff_csv().into_bytes()).await;
    assert!(
        page.contains(&counts_line("Staff", "教职工", (2, 0, 0))),
        "{page}"
    );
    // With a BOM, as Excel saves "CSV UTF-8".
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(classes_csv().as_bytes());
    import_ok(&mut v, "school-a", "班级.csv", bom).await;
    let page = import_ok(&mut v, "school-a", "学生.csv", students_csv().into_bytes()).await;
    assert!(
        page.contains(&counts_line("Pupils", "学生", (3, 0, 0))),
        "{page}"
    );
    import_ok(&mut v, "school-a", "家长.csv", guardians_csv().into_bytes()).await;

    let snap = snapshot(&app, &a).await;
    let expect = [
        "staff|T001|王芳|female|13800000001|teacher|语文".to_owned(),
        "staff|T002|李强|male|13800000002|grade_leader|数学".to_owned(),
        "class|1|一年级|1|一年级（1）班|T001".to_owned(),
        "class|1|一年级|2|一年级（2）班|T002".to_owned(),
        format!(
            "pupil|2024001|张小明|male|2017-03-09|1|1|{}|A|青霉素过敏",
            id_number("2017-03-09", 11)
        ),
        format!(
            "pupil|2024002|李小红|female|2017-05-20|1|1|{}|O",
            id_number("2017-05-20", 22)
        ),
        format!(
            "pupil|2024003|赵小刚|male|2016-11-02|1|2|{}|哮喘，随身携带喷雾",
            id_number("2016-11-02", 33)
        ),
        "guardian|2024001|张伟|13900000001|father".to_owned(),
        "guardian|2024001|刘丽|13900000002|mother".to_owned(),
        "guardian|2024002|李军|13900000003|father".to_owned(),
        "guardian|2024003|赵敏|13900000004|mother".to_owned(),
        "guardian-rows|4".to_owned(),
    ];
    let mut expect = expect.to_vec();
    expect.sort();
    assert_eq!(snap, expect);
    app.stop().await;
}

#[tokio::test]
async fn a_gbk_csv_yields_the_same_data_as_utf8() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    let mut v = signed_in(
        &app,
        "admin.ab",
        &[(&a, "school-a"), (&b, "school-b")],
        &["school_admin"],
    )
    .await;
    for (name, text) in all_csv() {
        import_ok(&mut v, "school-a", name, text.clone().into_bytes()).await;
        let bytes = gbk(&text);
        assert!(
            std::str::from_utf8(&bytes).is_err(),
            "the fixture really is GBK"
        );
        import_ok(&mut v, "school-b", name, bytes).await;
    }
    let (sa, sb) = (snapshot(&app, &a).await, snapshot(&app, &b).await);
    assert_eq!(sa.len(), 12);
    assert_eq!(sa, sb);
    app.stop().await;
}

#[tokio::test]
async fn an_xlsx_workbook_with_four_sheets_imports_in_dependency_order() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let c = app.onboard("school-c", "丙校").await.tenant;
    let mut v = signed_in(
        &app,
        "admin.ac",
        &[(&a, "school-a"), (&c, "school-c")],
        &["school_admin"],
    )
    .await;
    // Sheets are in the workbook as 家长, 学生, 班级, 教职工: each refers to the next.
    let page = import_ok(&mut v, "school-a", "花名册.xlsx", full_workbook()).await;
    for line in [
        counts_line("Staff", "教职工", (2, 0, 0)),
        counts_line("Classes", "班级", (2, 0, 0)),
        counts_line("Pupils", "学生", (3, 0, 0)),
        counts_line("Guardians", "家长", (4, 0, 0)),
    ] {
        assert!(page.contains(&line), "{line} in {page}");
    }
    // The same data as the four CSV files.
    for (name, text) in all_csv() {
        import_ok(&mut v, "school-c", name, text.into_bytes()).await;
    }
    assert_eq!(snapshot(&app, &a).await, snapshot(&app, &c).await);
    app.stop().await;
}

/// Pupils with six bad rows (2–7) and two good ones (8, 9), for a school that has class 1-1.
fn students_with_bad_rows() -> String {
    format!(
        "学号, 姓名 ,性别,出生日期,年级,班号,身份证号,血型\n\
         S100,甲一,男,2017-03-09,1,1,,A\n\
         S101,甲二,男,2017-03-09,1,1,{bad_check},A\n\
         S102,甲三,未知,,1,1,,\n\
         S100,甲四,女,,1,1,,\n\
         S104,甲五,女,,9,9,,\n\
         S105,甲六,女,2017-02-30,1,1,,C\n\
         S106,乙一,男,2017-03-09,1,1,{good},AB\n\
         S107,乙二,女,,一年级,1,,\n",
        bad_check = {
            let mut id = id_number("2017-03-09", 11);
            let last = if id.ends_with('1') { "2" } else { "1" };
            id.replace_range(17.., last);
            id
        },
        good = id_number("2017-03-09", 11),
    )
}

#[tokio::test]
async fn a_file_with_bad_rows_lists_each_row_and_reason_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    add_pupils(&app.services, &a, "OLD", 2).await;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    let before = snapshot(&app, &a).await;

    let (status, page) = upload(
        &mut v,
        "school-a",
        "学生.csv",
        students_with_bad_rows().into_bytes(),
        "all",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("未导入任何数据"), "{page}");
    for (row, column, reason) in [
        (2, "学号", "重复出现"),
        (3, "身份证号", "校验位不正确"),
        (4, "性别", "不是有效的性别"),
        (5, "学号", "重复出现"),
        (6, "班号", "九年级（9）班不存在"),
        (7, "出生日期", "不是有效的日期"),
        (7, "血型", "不是有效的血型"),
    ] {
        let cell = format!("<td>学生</td><td>{row}</td><td>{column}</td><td>");
        let at = page
            .find(&cell)
            .unwrap_or_else(|| panic!("row {row} {column} listed: {page}"));
        let listed: String = page[at..].chars().take(160).collect();
        assert!(listed.contains(reason), "row {row}: {reason}: {listed}");
    }
    assert_eq!(page.matches("class=\"row-error\"").count(), 7);
    assert_eq!(snapshot(&app, &a).await, before, "nothing was written");
    assert!(audit(&app, &a).await.is_empty());

    // The JSON API reports the same problems with 422.
    let (status, json) = upload_api(
        &mut v,
        "school-a",
        "学生.csv",
        students_with_bad_rows().into_bytes(),
        "all",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["imported"], serde_json::json!({}));
    assert_eq!(json["written"], false);
    let errors = json["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 7);
    assert_eq!(errors[1]["sheet"], "学生");
    assert_eq!(errors[1]["row"], 3);
    assert_eq!(errors[1]["column"], "身份证号");
    assert!(errors[1]["message"]
        .as_str()
        .unwrap()
        .contains("校验位不正确"));
    assert_eq!(snapshot(&app, &a).await, before);
    app.stop().await;
}

#[tokio::test]
async fn valid_only_mode_imports_the_good_rows_and_reports_the_bad() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    add_pupils(&app.services, &a, "OLD", 2).await;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;

    let (status, page) = upload(
        &mut v,
        "school-a",
        "学生.csv",
        students_with_bad_rows().into_bytes(),
        "valid_only",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&counts_line("Pupils", "学生", (2, 0, 0))),
        "{page}"
    );
    assert!(page.contains("已跳过"));
    assert_eq!(page.matches("class=\"row-error\"").count(), 7);
    let mut tx = app.services.db.school(&a).await.unwrap();
    let nos: Vec<String> =
        sqlx::query_scalar("select student_no from students order by student_no")
            .fetch_all(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(nos, vec!["OLD-0", "OLD-1", "S106", "S107"]);
    let log = audit(&app, &a).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].2["mode"], "valid_only");
    assert_eq!(log[0].2["rejected_rows"], 6);
    assert_eq!(log[0].2["counts"]["students"]["inserted"], 2);

    // A file with no valid row at all imports nothing, even in this mode.
    let (status, _) = upload(
        &mut v,
        "school-a",
        "学生.csv",
        "学号,姓名,年级,班号\nS900,某,1,8\n".as_bytes().to_vec(),
        "valid_only",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count(&app, &a, "students").await, 4);
    assert_eq!(audit(&app, &a).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn importing_the_same_file_again_changes_nothing_and_edits_update_in_place() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    import_ok(&mut v, "school-a", "花名册.xlsx", full_workbook()).await;
    let first = snapshot(&app, &a).await;

    let page = import_ok(&mut v, "school-a", "花名册.xlsx", full_workbook()).await;
    for line in [
        counts_line("Staff", "教职工", (0, 0, 2)),
        counts_line("Classes", "班级", (0, 0, 2)),
        counts_line("Pupils", "学生", (0, 0, 3)),
        counts_line("Guardians", "家长", (0, 0, 4)),
    ] {
        assert!(page.contains(&line), "{line} in {page}");
    }
    assert_eq!(snapshot(&app, &a).await, first);
    // CSV of the same data is also a no-op.
    for (name, text) in all_csv() {
        import_ok(&mut v, "school-a", name, text.into_bytes()).await;
    }
    assert_eq!(snapshot(&app, &a).await, first);

    // One pupil changes class and blood type; a file without the medical-notes column
    // leaves notes alone. A guardian's name is corrected.
    let edit = "学号,姓名,性别,出生日期,年级,班号,血型\n\
                2024001,张小明,男,2017-03-09,1,2,B\n\
                2024002,李小红,女,2017-05-20,1,1,O\n";
    let page = import_ok(&mut v, "school-a", "改.csv", edit.as_bytes().to_vec()).await;
    assert!(
        page.contains(&counts_line("Pupils", "学生", (0, 1, 1))),
        "{page}"
    );
    let page = import_ok(
        &mut v,
        "school-a",
        "家长.csv",
        "学号,家长姓名,手机号\n2024002,李俊,13900000003\n"
            .as_bytes()
            .to_vec(),
    )
    .await;
    assert!(
        page.contains(&counts_line("Guardians", "家长", (0, 1, 0))),
        "{page}"
    );
    let now = snapshot(&app, &a).await;
    assert!(now.contains(&format!(
        "pupil|2024001|张小明|male|2017-03-09|1|2|{}|B|青霉素过敏",
        id_number("2017-03-09", 11)
    )));
    assert!(
        now.contains(&"guardian|2024002|李俊|13900000003|father".to_owned()),
        "the relation column was absent and is kept: {now:?}"
    );
    assert_eq!(count(&app, &a, "guardians").await, 4);
    assert_eq!(count(&app, &a, "students").await, 3);
    app.stop().await;
}

#[tokio::test]
async fn unusable_files_get_clear_errors_and_change_nothing() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    add_pupils(&app.services, &a, "OLD", 1).await;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    let before = snapshot(&app, &a).await;

    let mut broken = "学号,姓名,年级,班号\nS1,".as_bytes().to_vec();
    broken.extend_from_slice(&[0xFF, 0x41, 0xFE, b',', b'1', b',', b'1', b'\n']);
    let mut huge = "学号,姓名,年级,班号\n".as_bytes().to_vec();
    while huge.len() <= 6 * 1024 * 1024 {
        huge.extend_from_slice(format!("S{},张三,1,1\n", huge.len()).as_bytes());
    }
    let cases: Vec<(&str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "坏.csv",
            broken,
            StatusCode::UNPROCESSABLE_ENTITY,
            "无法识别文件编码",
        ),
        (
            "空.csv",
            Vec::new(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "文件是空的",
        ),
        (
            "表头.csv",
            "学号,姓名,年级,班号\r\n".as_bytes().to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "只有表头",
        ),
        (
            "表头.xlsx",
            workbook(&[("学生", "学号,姓名,年级,班号".into())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "只有表头",
        ),
        (
            "照片.png",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "不是表格文件",
        ),
        (
            "假.xlsx",
            b"PK\x03\x04 this is not a workbook".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "不是表格文件",
        ),
        (
            "列.csv",
            "学号,姓名,年级,班号,爱好\nS1,张三,1,1,足球\n"
                .as_bytes()
                .to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "无法识别的列：爱好",
        ),
        (
            "缺列.csv",
            "学号,姓名,年级\nS1,张三,1\n".as_bytes().to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "无法判断名册类型",
        ),
        ("大.csv", huge, StatusCode::PAYLOAD_TOO_LARGE, "文件过大"),
    ];
    for (name, bytes, status, message) in cases {
        let (got, page) = upload(&mut v, "school-a", name, bytes, "all").await;
        assert_eq!(got, status, "{name}: {page}");
        assert!(page.contains(message), "{name}: {message} in {page}");
        assert!(page.contains("未导入任何数据"), "{name}");
    }
    // A kind chosen in the form names the missing columns.
    let csrf = v.csrf(&host("school-a"), "/admin/roster").await;
    let form = file_form(
        Some(&csrf),
        "缺列.csv",
        "学号,姓名,年级\nS1,张三,1\n".as_bytes().to_vec(),
        "all",
    )
    .text("kind", "students");
    let r = v
        .post_multipart(&host("school-a"), "/admin/roster/import", form, &[])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("缺少必填列：班号"));
    // No file at all.
    let r = v
        .post_multipart(
            &host("school-a"),
            "/admin/roster/import",
            Form::new().text("csrf", csrf.clone()).text("mode", "all"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("没有选择文件"));
    // The API answers the same way in JSON.
    let (status, json) = upload_api(&mut v, "school-a", "空.csv", Vec::new(), "all").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["code"], "empty_file");

    assert_eq!(snapshot(&app, &a).await, before);
    assert!(audit(&app, &a).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn exports_in_every_format_import_into_another_school_unchanged() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b1 = app.onboard("school-b1", "乙一校").await.tenant;
    let b2 = app.onboard("school-b2", "乙二校").await.tenant;
    let b3 = app.onboard("school-b3", "乙三校").await.tenant;
    let mut v = signed_in(
        &app,
        "admin.all",
        &[
            (&a, "school-a"),
            (&b1, "school-b1"),
            (&b2, "school-b2"),
            (&b3, "school-b3"),
        ],
        &["school_admin"],
    )
    .await;
    import_ok(&mut v, "school-a", "花名册.xlsx", full_workbook()).await;
    let source = snapshot(&app, &a).await;

    // XLSX: all four rosters in one workbook, every cell text.
    let (status, headers, bytes) = download(
        &mut v,
        "school-a",
        "/admin/roster/export?kind=all&format=xlsx",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\"roster-all-"));
    // "甲校-花名册-"
    assert!(
        disposition.contains("filename*=UTF-8''%E7%94%B2%E6%A0%A1-%E8%8A%B1%E5%90%8D%E5%86%8C-"),
        "{disposition}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let mut book =
        calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes.clone())).unwrap();
    assert_eq!(book.sheet_names(), vec!["教职工", "班级", "学生", "家长"]);
    let pupils = book.worksheet_range("学生").unwrap();
    assert_eq!(
        pupils.get_value((1, 6)),
        Some(&calamine::Data::String(id_number("2017-03-09", 11))),
        "ID numbers are stored as text"
    );
    import_ok(&mut v, "school-b1", "export.xlsx", bytes).await;
    assert_eq!(snapshot(&app, &b1).await, source);

    // CSV, UTF-8 with BOM and GBK, one roster per file.
    for (format, slug, school) in [("csv", "school-b2", &b2), ("csv-gbk", "school-b3", &b3)] {
        for kind in ["staff", "classes", "students", "guardians"] {
            let (status, headers, bytes) = download(
                &mut v,
                "school-a",
                &format!("/admin/roster/export?kind={kind}&format={format}"),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            if format == "csv" {
                assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 with BOM");
                assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
            } else {
                assert!(std::str::from_utf8(&bytes).is_err(), "GBK, not UTF-8");
                let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
                assert!(!bad);
                assert!(text.starts_with(match kind {
                    "staff" => "工号,姓名",
                    "classes" => "年级,班号",
                    "students" => "学号,姓名",
                    _ => "学号,家长姓名",
                }));
            }
            import_ok(&mut v, slug, &format!("{kind}.csv"), bytes).await;
        }
        assert_eq!(snapshot(&app, school).await, source, "{format}");
    }

    // The API serves the same file; a CSV of all rosters at once is refused.
    let (status, _, api_bytes) = download(
        &mut v,
        "school-a",
        "/api/v1/roster/export?kind=students&format=csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, page_bytes) = download(
        &mut v,
        "school-a",
        "/admin/roster/export?kind=students&format=csv",
    )
    .await;
    assert_eq!(api_bytes, page_bytes);
    let (status, _, _) = download(
        &mut v,
        "school-a",
        "/admin/roster/export?kind=all&format=csv",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Blank templates: headers only, every kind, and they read back as "headers only".
    let (status, headers, bytes) = download(
        &mut v,
        "school-a",
        "/admin/roster/template?kind=students&format=csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("filename*=UTF-8''"));
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "\u{feff}学号,姓名,性别,出生日期,年级,班号,身份证号,血型,特殊病史\r\n"
    );
    let (_, _, bytes) = download(
        &mut v,
        "school-a",
        "/admin/roster/template?kind=all&format=xlsx",
    )
    .await;
    let (status, page) = upload(&mut v, "school-a", "模板.xlsx", bytes, "all").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("只有表头"));
    app.stop().await;
}

#[tokio::test]
async fn imports_and_exports_are_audited_with_the_sensitive_fields_they_carry() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    import_ok(&mut v, "school-a", "花名册.xlsx", full_workbook()).await;
    let log = audit(&app, &a).await;
    assert_eq!(log.len(), 1);
    let (action, actor, detail) = &log[0];
    assert_eq!(action, "roster_import");
    assert_eq!(actor, "管理员甲");
    assert_eq!(detail["file"], "花名册.xlsx");
    assert_eq!(detail["mode"], "all");
    assert_eq!(detail["rows"], 11);
    assert_eq!(
        detail["counts"]["students"],
        serde_json::json!({"inserted": 3, "updated": 0, "unchanged": 0})
    );
    assert_eq!(detail["counts"]["guardians"]["inserted"], 4);

    let (status, _, _) = download(
        &mut v,
        "school-a",
        "/admin/roster/export?kind=students&format=csv-gbk",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = download(
        &mut v,
        "school-a",
        "/admin/roster/export?kind=staff&format=xlsx",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = download(
        &mut v,
        "school-a",
        "/api/v1/roster/export?kind=all&format=xlsx",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Templates hold no data and are not audited.
    download(
        &mut v,
        "school-a",
        "/admin/roster/template?kind=all&format=xlsx",
    )
    .await;

    let log = audit(&app, &a).await;
    assert_eq!(log.len(), 4);
    let exports: Vec<_> = log[1..].iter().map(|(a, _, d)| (a.as_str(), d)).collect();
    assert!(exports.iter().all(|(a, _)| *a == "roster_export"));
    let pupils = exports[0].1;
    assert_eq!(pupils["kind"], "students");
    assert_eq!(pupils["format"], "csv-gbk");
    assert_eq!(pupils["pupils"], 3);
    assert_eq!(
        pupils["sensitive_fields"],
        serde_json::json!(["id_number", "blood_type", "medical_notes"])
    );
    assert_eq!(exports[1].1["pupils"], 0);
    assert_eq!(exports[1].1["sensitive_fields"], serde_json::json!([]));
    assert_eq!(exports[2].1["kind"], "all");
    assert_eq!(exports[2].1["pupils"], 3);
    assert_eq!(exports[2].1["rows"]["guardians"], 4);
    app.stop().await;
}

#[tokio::test]
async fn teachers_without_the_roster_permission_are_refused() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut v = signed_in(
        &app,
        "teacher.a",
        &[(&a, "school-a")],
        &["teacher", "head_teacher"],
    )
    .await;
    for path in [
        "/admin/roster",
        "/admin/roster/export?kind=students&format=csv",
        "/admin/roster/template?kind=students&format=csv",
    ] {
        let r = v.get(&host("school-a"), path).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(r.text().await.unwrap().contains("没有权限"));
    }
    let r = v
        .get(&host("school-a"), "/api/v1/roster/export?kind=students")
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["code"],
        "forbidden"
    );

    // The teacher's own session token does not help: the permission is missing.
    let token = v.cookie(&host("school-a"), "campus_session").unwrap();
    let r = v
        .post_multipart(
            &host("school-a"),
            "/admin/roster/import",
            file_form(Some(&token), "花名册.xlsx", full_workbook(), "all"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = v
        .post_multipart(
            &host("school-a"),
            "/api/v1/roster/import",
            file_form(None, "花名册.xlsx", full_workbook(), "all"),
            &[("x-csrf-token", &token)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(count(&app, &a, "students").await, 0);
    assert_eq!(count(&app, &a, "staff").await, 0);
    assert!(audit(&app, &a).await.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn imports_without_the_sessions_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    let h = host("school-a");
    for form in [
        file_form(None, "花名册.xlsx", full_workbook(), "all"),
        file_form(Some(&"0".repeat(64)), "花名册.xlsx", full_workbook(), "all"),
    ] {
        let r = v
            .post_multipart(&h, "/admin/roster/import", form, &[])
            .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.text().await.unwrap().contains("页面已过期"));
    }
    // The API wants the token in its header; a form field is not enough.
    let csrf = v.csrf(&h, "/admin/roster").await;
    let r = v
        .post_multipart(
            &h,
            "/api/v1/roster/import",
            file_form(Some(&csrf), "花名册.xlsx", full_workbook(), "all"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "csrf");
    let r = v
        .post_multipart(
            &h,
            "/api/v1/roster/import",
            file_form(None, "花名册.xlsx", full_workbook(), "all"),
            &[("x-csrf-token", "forged")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(snapshot(&app, &a)
        .await
        .iter()
        .all(|l| l == "guardian-rows|0"));
    assert!(audit(&app, &a).await.is_empty());

    // With the header the same request goes through.
    let (status, json) =
        upload_api(&mut v, "school-a", "花名册.xlsx", full_workbook(), "all").await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["written"], true);
    assert_eq!(
        json["imported"]["students"],
        serde_json::json!({"inserted": 3, "updated": 0, "unchanged": 0})
    );
    assert_eq!(json["errors"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test]
async fn an_admin_of_one_school_can_neither_import_into_nor_export_from_another() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let b = app.onboard("school-b", "乙校").await.tenant;
    add_pupils(&app.services, &b, "B-PUPIL", 3).await;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    import_ok(&mut v, "school-a", "花名册.xlsx", full_workbook()).await;
    let b_before = snapshot(&app, &b).await;

    // A's session cookie replayed on B's host is no session there.
    let token = v.cookie(&host("school-a"), "campus_session").unwrap();
    let csrf = v.csrf(&host("school-a"), "/admin/roster").await;
    v.set_cookie(&host("school-b"), "campus_session", &token);
    let r = v
        .get(
            &host("school-b"),
            "/admin/roster/export?kind=all&format=xlsx",
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/login");
    let r = v
        .post_multipart(
            &host("school-b"),
            "/admin/roster/import",
            file_form(Some(&csrf), "花名册.xlsx", full_workbook(), "all"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = v
        .post_multipart(
            &host("school-b"),
            "/api/v1/roster/import",
            file_form(None, "花名册.xlsx", full_workbook(), "all"),
            &[("x-csrf-token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = v
        .get(&host("school-b"), "/api/v1/roster/export?kind=students")
        .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Signing in at B with only an A membership is refused.
    let r = v.sign_in(&host("school-b"), "admin.a", PW).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("没有身份"));
    assert_eq!(
        v.get(&host("school-b"), "/admin/roster").await.status(),
        StatusCode::SEE_OTHER
    );

    // B is untouched and unaudited; A's export holds only A's pupils.
    assert_eq!(snapshot(&app, &b).await, b_before);
    assert!(audit(&app, &b).await.is_empty());
    let (status, _, bytes) = download(
        &mut v,
        "school-a",
        "/admin/roster/export?kind=students&format=csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("2024001,张小明"));
    assert!(!text.contains("B-PUPIL"), "{text}");
    assert_eq!(text.lines().count(), 4, "a header and A's three pupils");
    app.stop().await;
}

/// A clerk (教务员) whose custom role manages the roster but may not see sensitive fields.
async fn clerk<'a>(app: &'a TestApp, t: &Tenant, slug: &str) -> Visitor<'a> {
    sqlx::query(
        "insert into school_roles (tenant_id, code, name, permissions)
         values ($1, 'x_clerk', '教务员', '{manage_roster,staff_area}')",
    )
    .bind(t.id.0)
    .execute(&app.services.pool)
    .await
    .unwrap();
    signed_in(app, "clerk.a", &[(t, slug)], &["x_clerk"]).await
}

#[tokio::test]
async fn a_clerk_without_the_sensitive_permission_exports_no_id_numbers_blood_types_or_notes() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut admin = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    import_ok(&mut admin, "school-a", "花名册.xlsx", full_workbook()).await;
    let stored = snapshot(&app, &a).await;
    let mut v = clerk(&app, &a, "school-a").await;
    let secrets = [
        id_number("2017-03-09", 11),
        id_number("2016-11-02", 33),
        "青霉素过敏".to_owned(),
        "哮喘".to_owned(),
    ];

    let (status, _, csv) = download(
        &mut v,
        "school-a",
        "/admin/roster/export?kind=students&format=csv",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let csv = String::from_utf8(csv).unwrap();
    assert!(csv.contains("2024001,张小明"), "{csv}");
    assert!(
        csv.trim_start_matches('\u{feff}')
            .starts_with("学号,姓名,性别,出生日期,年级,班号\r\n"),
        "no sensitive columns: {csv}"
    );
    let (status, _, xlsx) = download(
        &mut v,
        "school-a",
        "/api/v1/roster/export?kind=all&format=xlsx",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let mut book: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(xlsx.clone())).unwrap();
    let pupils = book.worksheet_range("学生").unwrap();
    let cells: Vec<String> = pupils.rows().flatten().map(|c| c.to_string()).collect();
    assert!(cells.contains(&"张小明".to_owned()));
    for secret in &secrets {
        assert!(!csv.contains(secret.as_str()), "{secret} in CSV");
        assert!(!cells.contains(secret), "{secret} in XLSX");
    }
    assert!(!cells.contains(&"身份证号".to_owned()) && !cells.contains(&"血型".to_owned()));

    // The audit says nothing sensitive left, and that it was withheld.
    let log = audit(&app, &a).await;
    let exports: Vec<&serde_json::Value> = log
        .iter()
        .filter(|(action, _, _)| action == "roster_export")
        .map(|(_, _, d)| d)
        .collect();
    assert_eq!(exports.len(), 2);
    for d in &exports {
        assert_eq!(d["sensitive_fields"], serde_json::json!([]), "{d}");
        assert_eq!(d["sensitive_withheld"], true, "{d}");
        assert_eq!(d["pupils"], 3);
    }

    // The clerk's file imports back without wiping what it did not carry.
    let page = import_ok(&mut v, "school-a", "学生.csv", csv.into_bytes()).await;
    assert!(
        page.contains(&counts_line("Pupils", "学生", (0, 0, 3))),
        "{page}"
    );
    let page = import_ok(&mut v, "school-a", "花名册.xlsx", xlsx).await;
    assert!(
        page.contains(&counts_line("Pupils", "学生", (0, 0, 3))),
        "{page}"
    );
    assert_eq!(snapshot(&app, &a).await, stored);

    // The admin, who may reveal them, still exports every column.
    let (_, _, full) = download(
        &mut admin,
        "school-a",
        "/admin/roster/export?kind=students&format=csv",
    )
    .await;
    let full = String::from_utf8(full).unwrap();
    assert!(full.contains(&secrets[0]) && full.contains("哮喘"));
    let log = audit(&app, &a).await;
    assert_eq!(
        log.last().unwrap().2["sensitive_fields"],
        serde_json::json!(["id_number", "blood_type", "medical_notes"])
    );
    app.stop().await;
}

#[tokio::test]
async fn formula_like_text_is_neutralised_in_csv_exports_and_read_back_as_typed() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    import_ok(&mut v, "school-a", "花名册.xlsx", full_workbook()).await;
    let mut tx = app.services.db.school(&a).await.unwrap();
    for sql in [
        r#"update students set name = '=HYPERLINK("http://x","y")' where student_no = '2024001'"#,
        "update students set medical_notes = '-2+3' where student_no = '2024002'",
        "update guardians set name = '@SUM(A1)' where phone = '13900000001'",
        "update guardians set name = '+86 刘丽' where phone = '13900000002'",
        "update staff set subject = E'\\t=1+2' where staff_no = 'T001'",
    ] {
        sqlx::query(sql).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    let stored = snapshot(&app, &a).await;

    let mut files = Vec::new();
    for kind in ["students", "guardians", "staff"] {
        let (status, _, bytes) = download(
            &mut v,
            "school-a",
            &format!("/admin/roster/export?kind={kind}&format=csv"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(bytes).unwrap();
        // Every cell, quoted or not, as the spreadsheet would first see it.
        for line in text.trim_start_matches('\u{feff}').split("\r\n") {
            for cell in line.split(',') {
                let cell = cell.strip_prefix('"').unwrap_or(cell);
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{kind}: {cell:?} would run in a spreadsheet"
                );
            }
        }
        files.push((kind, text));
    }
    assert!(
        files[0].1.contains(r#""'=HYPERLINK(""http://x"",""y"")""#),
        "{}",
        files[0].1
    );
    assert!(files[0].1.contains(",'-2+3"));
    assert!(files[1].1.contains("'@SUM(A1)") && files[1].1.contains("'+86 刘丽"));
    assert!(files[2].1.contains("'\t=1+2"), "{}", files[2].1);

    // Imported again, the pupils and guardians are exactly as they were.
    for (kind, text) in &files[..2] {
        let page = import_ok(
            &mut v,
            "school-a",
            &format!("{kind}.csv"),
            text.clone().into_bytes(),
        )
        .await;
        assert!(
            !page.contains("&#39;=HYPERLINK") && !page.contains("'=HYPERLINK"),
            "{page}"
        );
    }
    assert_eq!(snapshot(&app, &a).await, stored);
    app.stop().await;
}

#[tokio::test]
async fn a_workbook_that_understates_its_unpacked_size_is_refused() {
    let app = TestApp::spawn().await;
    let a = app.onboard("school-a", "甲校").await.tenant;
    let mut v = signed_in(&app, "admin.a", &[(&a, "school-a")], &["school_admin"]).await;
    let before = snapshot(&app, &a).await;

    // A real roster plus a part that inflates to 210 MB while declaring 1 KB.
    let mut w = zip::ZipWriter::new_append(std::io::Cursor::new(full_workbook())).unwrap();
    w.start_file(
        "xl/media/image1.bin",
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated),
    )
    .unwrap();
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..210 {
        std::io::Write::write_all(&mut w, &zeros).unwrap();
    }
    let mut bomb = w.finish().unwrap().into_inner();
    crate::helpers::understate_zip_sizes(&mut bomb);
    assert!(bomb.len() < 2 * 1024 * 1024, "small enough to upload");

    let (status, page) = upload(&mut v, "school-a", "名册.xlsx", bomb.clone(), "all").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(page.contains("工作簿过大"), "{page}");
    assert!(page.contains("未导入任何数据"));
    let (status, json) = upload_api(&mut v, "school-a", "名册.xlsx", bomb, "all").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(json["code"], "workbook_too_large");
    assert_eq!(snapshot(&app, &a).await, before);
    app.stop().await;
}
