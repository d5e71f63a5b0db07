//! The files service against real parts: uploads streamed into the embedded S3 server,
//! previews made by the preview role's workers with the machine's pdftoppm and LibreOffice,
//! and every kind of file made in the test — a phone photo with EXIF orientation and GPS,
//! PDFs, a Word document, a zip bomb, a PDF whose page tree loops, corrupt files and files
//! whose extension lies. Also: quotas and per-file limits (413, nothing kept), resumable
//! uploads, downloads with Chinese names, watermarks, notice attachments seen only by the
//! notice's people, names that try to leave the school's prefix, and school B asking for
//! school A's files.

use std::io::Write;
use std::time::Duration;

use campus_identity::account;
use campus_tenant::Tenant;
use reqwest::multipart::{Form, Part};
use reqwest::{Method, StatusCode};

use crate::helpers::{person, TestApp, Visitor};

const PW: &str = "campus2026";

fn host(slug: &str) -> String {
    TestApp::school_host(slug)
}

// ---------------------------------------------------------------------------------------
// Files made in the test
// ---------------------------------------------------------------------------------------

/// A PDF of the given objects (numbered from 1; object 1 is the catalog) with a correct
/// cross-reference table.
fn pdf_of(objects: &[String]) -> Vec<u8> {
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for o in offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A PDF of `pages` A4 pages, each saying its number.
fn pdf(pages: usize) -> Vec<u8> {
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 4 + i * 2)).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!(
            "<< /Type /Pages /Kids [{}] /Count {pages} >>",
            kids.join(" ")
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    for i in 0..pages {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + i * 2
        ));
        let content = format!("BT /F1 48 Tf 100 700 Td (Page {}) Tj ET", i + 1);
        objects.push(format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ));
    }
    pdf_of(&objects)
}

/// A PDF whose page tree is its own child: readers that follow it naively never stop.
fn looping_pdf() -> Vec<u8> {
    pdf_of(&[
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>".to_owned(),
        "<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 3 0 R] /Count 2 >>".to_owned(),
    ])
}

/// A zip (deflated) of the given entries.
fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(body).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;

/// A Word document of `pages` pages (a page break between them), made by hand.
fn docx(pages: usize) -> Vec<u8> {
    let mut body = String::new();
    for i in 0..pages {
        if i > 0 {
            body.push_str(r#"<w:p><w:r><w:br w:type="page"/></w:r></w:p>"#);
        }
        body.push_str(&format!(
            "<w:p><w:r><w:t>第 {} 页：家长会通知，请准时参加。</w:t></w:r></w:p>",
            i + 1
        ));
    }
    let doc = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    zip_of(&[
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes().to_vec()),
        ("_rels/.rels", RELS.as_bytes().to_vec()),
        ("word/document.xml", doc.into_bytes()),
    ])
}

/// A .docx whose document.xml unpacks from a few hundred kilobytes to 120 MB.
fn zip_bomb_docx() -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    w.start_file("[Content_Types].xml", opts).unwrap();
    w.write_all(CONTENT_TYPES.as_bytes()).unwrap();
    w.start_file("_rels/.rels", opts).unwrap();
    w.write_all(RELS.as_bytes()).unwrap();
    w.start_file("word/document.xml", opts).unwrap();
    let zeros = vec![b' '; 1024 * 1024];
    for _ in 0..120 {
        w.write_all(&zeros).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// A 40 × 20 JPEG (left half red, right half blue) carrying EXIF orientation 6 ("turn 90°
/// clockwise to view") and a GPS block, as phones write them.
fn phone_photo() -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 20, |x, _| {
        if x < 20 {
            image::Rgb([220, 20, 20])
        } else {
            image::Rgb([20, 20, 220])
        }
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
        .encode_image(&img)
        .unwrap();
    let mut tiff = b"II*\0".to_vec();
    tiff.extend_from_slice(&8u32.to_le_bytes());
    // IFD0: orientation and the pointer to the GPS IFD (at 8 + 2 + 2·12 + 4 = 38).
    tiff.extend_from_slice(&2u16.to_le_bytes());
    tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
    tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0]);
    tiff.extend_from_slice(&38u32.to_le_bytes());
    tiff.extend_from_slice(&0u32.to_le_bytes());
    // GPS IFD: latitude reference "N".
    tiff.extend_from_slice(&1u16.to_le_bytes());
    tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
    tiff.extend_from_slice(&0u32.to_le_bytes());
    let mut payload = b"Exif\0\0".to_vec();
    payload.extend_from_slice(&tiff);
    let mut app1 = vec![0xFF, 0xE1];
    app1.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    app1.extend_from_slice(&payload);
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&app1);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A PNG of `w` × `h` pixels of noise (so it does not compress away).
fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        let v = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) as u8;
        image::Rgb([v, v.wrapping_mul(3), v.wrapping_mul(7)])
    });
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

// ---------------------------------------------------------------------------------------
// People and requests
// ---------------------------------------------------------------------------------------

pub(crate) async fn signed_in<'a>(app: &'a TestApp, slug: &str, login: &str) -> Visitor<'a> {
    let mut v = Visitor::new(app);
    assert_eq!(
        v.sign_in(&host(slug), login, PW).await.status(),
        StatusCode::SEE_OTHER,
        "{login} signs in at {slug}"
    );
    v
}

/// A school with an administrator `<p>.admin` and a teacher `<p>.teacher`.
pub(crate) async fn school(app: &TestApp, slug: &str, p: &str) -> Tenant {
    let t = app.onboard(slug, &format!("{p}校")).await.tenant;
    person(
        &app.services,
        &format!("{p}.admin"),
        "王校长",
        PW,
        &[(&t, &["school_admin"])],
    )
    .await;
    person(
        &app.services,
        &format!("{p}.teacher"),
        "李老师",
        PW,
        &[(&t, &["teacher"])],
    )
    .await;
    t
}

async fn upload(v: &mut Visitor<'_>, slug: &str, name: &str, bytes: Vec<u8>) -> reqwest::Response {
    let h = host(slug);
    let csrf = v.csrf(&h, "/files").await;
    let form = Form::new().part("file", Part::bytes(bytes).file_name(name.to_owned()));
    v.post_multipart(&h, "/api/v1/files", form, &[("X-CSRF-Token", &csrf)])
        .await
}

pub(crate) async fn uploaded(
    v: &mut Visitor<'_>,
    slug: &str,
    name: &str,
    bytes: Vec<u8>,
) -> serde_json::Value {
    let r = upload(v, slug, name, bytes).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{name} is taken");
    r.json().await.unwrap()
}

/// Waits (at most 90 s) until the file's preview is ready or unavailable.
pub(crate) async fn settled(v: &mut Visitor<'_>, slug: &str, id: i64) -> serde_json::Value {
    for _ in 0..450 {
        let f: serde_json::Value = v
            .get(&host(slug), &format!("/api/v1/files/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if matches!(f["preview_status"].as_str(), Some("ready" | "unavailable")) {
            return f;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the preview of file {id} did not settle in 90 s");
}

pub(crate) async fn preview_error(app: &TestApp, t: &Tenant, id: i64) -> String {
    let mut tx = app.services.db.school(t).await.unwrap();
    let e: Option<String> = sqlx::query_scalar("select preview_error from files where id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    e.unwrap_or_default()
}

pub(crate) fn id(f: &serde_json::Value) -> i64 {
    f["id"].as_i64().unwrap()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_phone_photo_is_previewed_upright_without_its_gps_position() {
    let app = TestApp::spawn().await;
    let a = school(&app, "photo-a", "pa").await;
    let mut teacher = signed_in(&app, "photo-a", "pa.teacher").await;
    let h = host("photo-a");

    let photo = phone_photo();
    let f = uploaded(&mut teacher, "photo-a", "春游合影.jpg", photo.clone()).await;
    assert_eq!(f["content_type"], "image/jpeg");
    assert_eq!(f["kind"], "image");
    let f = settled(&mut teacher, "photo-a", id(&f)).await;
    assert_eq!(
        f["preview_status"],
        "ready",
        "{}",
        preview_error(&app, &a, id(&f)).await
    );
    assert_eq!(f["preview_pages"], 1);

    let page = teacher.get(&h, &format!("/files/{}/pages/1", id(&f))).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "image/jpeg");
    let bytes = page.bytes().await.unwrap();
    assert!(
        !bytes.windows(4).any(|w| w == b"Exif"),
        "the preview carries no EXIF block (no GPS position)"
    );
    let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
    assert_eq!(
        (img.width(), img.height()),
        (20, 40),
        "turned upright as EXIF says"
    );
    let top = img.get_pixel(10, 5);
    assert!(
        top[0] > 150 && top[2] < 100,
        "the red half is on top after turning: {top:?}"
    );

    let thumb = teacher.get(&h, &format!("/files/{}/thumb", id(&f))).await;
    assert_eq!(thumb.status(), StatusCode::OK);

    // The original downloads unchanged, with its Chinese name (RFC 5987).
    let dl = teacher
        .get(&h, &format!("/files/{}/download", id(&f)))
        .await;
    assert_eq!(dl.status(), StatusCode::OK);
    let cd = dl.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(cd.starts_with("attachment; filename=\"file.jpg\""), "{cd}");
    assert!(
        cd.contains("filename*=UTF-8''%E6%98%A5%E6%B8%B8%E5%90%88%E5%BD%B1.jpg"),
        "{cd}"
    );
    assert_eq!(dl.headers()["x-content-type-options"], "nosniff");
    assert_eq!(dl.bytes().await.unwrap().as_ref(), photo.as_slice());

    // The preview page shows the one page.
    let html = teacher
        .get(&h, &format!("/files/{}/preview", id(&f)))
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(&format!("/files/{}/pages/1", id(&f))));
    app.stop().await;
}

#[tokio::test]
async fn pdf_and_word_documents_get_page_images_with_navigation() {
    let app = TestApp::spawn().await;
    let a = school(&app, "docs-a", "da").await;
    let mut teacher = signed_in(&app, "docs-a", "da.teacher").await;
    let h = host("docs-a");

    let p = uploaded(&mut teacher, "docs-a", "课程表.pdf", pdf(3)).await;
    assert_eq!(p["kind"], "pdf");
    let d = uploaded(&mut teacher, "docs-a", "家长会通知.docx", docx(2)).await;
    assert_eq!(d["kind"], "office");

    let p = settled(&mut teacher, "docs-a", id(&p)).await;
    assert_eq!(
        p["preview_status"],
        "ready",
        "{}",
        preview_error(&app, &a, id(&p)).await
    );
    assert_eq!(p["preview_pages"], 3);
    let d = settled(&mut teacher, "docs-a", id(&d)).await;
    assert_eq!(
        d["preview_status"],
        "ready",
        "{}",
        preview_error(&app, &a, id(&d)).await
    );
    assert_eq!(d["preview_pages"], 2, "the page break makes two pages");

    // Navigation: the first page offers only "next", the middle both, the last only "prev".
    let page = |n: i32| format!("/files/{}/preview?page={n}", id(&p));
    let first = teacher.get(&h, &page(1)).await.text().await.unwrap();
    assert!(first.contains("id=\"next\"") && !first.contains("id=\"prev\""));
    let middle = teacher.get(&h, &page(2)).await.text().await.unwrap();
    assert!(middle.contains("id=\"next\"") && middle.contains("id=\"prev\""));
    let last = teacher.get(&h, &page(3)).await.text().await.unwrap();
    assert!(!last.contains("id=\"next\"") && last.contains("id=\"prev\""));
    // Out of range or nonsense shows the nearest page, not an error.
    let beyond = teacher.get(&h, &page(99)).await;
    assert_eq!(beyond.status(), StatusCode::OK);
    assert!(beyond
        .text()
        .await
        .unwrap()
        .contains(&format!("/files/{}/pages/3", id(&p))));
    let nonsense = teacher
        .get(&h, &format!("/files/{}/preview?page=abc", id(&p)))
        .await;
    assert_eq!(nonsense.status(), StatusCode::OK);

    for n in 1..=2 {
        let img = teacher
            .get(&h, &format!("/files/{}/pages/{n}", id(&d)))
            .await;
        assert_eq!(img.status(), StatusCode::OK);
        let img = image::load_from_memory(&img.bytes().await.unwrap()).unwrap();
        assert!(img.height() > img.width(), "an A4 page stands upright");
    }
    let missing = teacher.get(&h, &format!("/files/{}/pages/3", id(&d))).await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn hostile_and_corrupt_files_are_marked_unavailable_and_the_worker_goes_on() {
    let app = TestApp::spawn().await;
    let a = school(&app, "bad-a", "ba").await;
    let mut teacher = signed_in(&app, "bad-a", "ba.teacher").await;
    let h = host("bad-a");

    let bomb = uploaded(&mut teacher, "bad-a", "炸弹.docx", zip_bomb_docx()).await;
    assert_eq!(bomb["kind"], "office");
    let looping = uploaded(&mut teacher, "bad-a", "循环.pdf", looping_pdf()).await;
    let mut broken_pdf = pdf(1);
    broken_pdf.truncate(60);
    let broken = uploaded(&mut teacher, "bad-a", "损坏.pdf", broken_pdf).await;
    let mut broken_png = png(64, 64);
    broken_png.truncate(100);
    let png_cut = uploaded(&mut teacher, "bad-a", "残缺.png", broken_png).await;
    // A file sent after the hostile ones is still previewed.
    let good = uploaded(&mut teacher, "bad-a", "正常.pdf", pdf(1)).await;

    for f in [&bomb, &looping, &broken, &png_cut] {
        let s = settled(&mut teacher, "bad-a", id(f)).await;
        assert_eq!(s["preview_status"], "unavailable", "{}", f["file_name"]);
        let html = teacher
            .get(&h, &format!("/files/{}/preview", id(f)))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            html.contains("id=\"preview-unavailable\""),
            "{}",
            f["file_name"]
        );
        assert!(html.contains("无法预览"));
    }
    let why = preview_error(&app, &a, id(&bomb)).await;
    assert!(
        why.contains("zip bomb"),
        "the bomb is refused before LibreOffice: {why}"
    );
    let good = settled(&mut teacher, "bad-a", id(&good)).await;
    assert_eq!(good["preview_status"], "ready");
    app.stop().await;
}

#[tokio::test]
async fn the_type_comes_from_the_bytes_and_programs_are_refused() {
    let app = TestApp::spawn().await;
    school(&app, "lies-a", "la").await;
    let mut teacher = signed_in(&app, "lies-a", "la.teacher").await;

    // A PDF called .jpg is a PDF; a PNG called .docx is a picture; text called .pdf is text.
    let f = uploaded(&mut teacher, "lies-a", "照片.jpg", pdf(1)).await;
    assert_eq!(
        (f["kind"].as_str(), f["content_type"].as_str()),
        (Some("pdf"), Some("application/pdf"))
    );
    let f2 = uploaded(&mut teacher, "lies-a", "报告.docx", png(30, 30)).await;
    assert_eq!(
        (f2["kind"].as_str(), f2["content_type"].as_str()),
        (Some("image"), Some("image/png"))
    );
    let t = uploaded(
        &mut teacher,
        "lies-a",
        "通知.pdf",
        "只是一段文字".as_bytes().to_vec(),
    )
    .await;
    assert_eq!(t["kind"], "other");
    assert_eq!(t["preview_status"], "none");
    let f = settled(&mut teacher, "lies-a", id(&f)).await;
    assert_eq!(f["preview_status"], "ready", "previewed as what it is");

    let mut elf = b"\x7fELF\x02\x01\x01\0".to_vec();
    elf.resize(4096, 0);
    let r = upload(&mut teacher, "lies-a", "作业.pdf", elf).await;
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["message_zh"].as_str().unwrap().contains("可执行程序"));

    // No CSRF token: refused before anything is stored.
    let h = host("lies-a");
    let form = Form::new().part("file", Part::bytes(pdf(1)).file_name("x.pdf"));
    let r = teacher.post_multipart(&h, "/api/v1/files", form, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn names_cannot_lead_files_out_of_the_school_prefix() {
    let app = TestApp::spawn().await;
    let a = school(&app, "esc-a", "ea").await;
    let b = school(&app, "esc-b", "eb").await;
    let mut teacher = signed_in(&app, "esc-a", "ea.teacher").await;

    let f = uploaded(&mut teacher, "esc-a", "../../esc-b/files/evil.pdf", pdf(1)).await;
    assert_eq!(
        f["file_name"], "evil.pdf",
        "only the last segment of the name is kept"
    );
    let f2 = uploaded(&mut teacher, "esc-a", "..\\..\\%2e%2e%2fsecret.pdf", pdf(1)).await;
    assert_eq!(
        f2["file_name"], "%2e%2e%2fsecret.pdf",
        "kept as a name, never a key"
    );

    let store = &app.services.store;
    let a_keys = store.for_tenant(&a).list().await.unwrap();
    assert!(a_keys.iter().any(|k| k.starts_with("files/")), "{a_keys:?}");
    let b_keys = store.for_tenant(&b).list().await.unwrap();
    assert!(
        b_keys.iter().all(|k| !k.starts_with("files/")),
        "nothing landed in school B: {b_keys:?}"
    );
    // Paths that try to climb are not routes to anything.
    for path in [
        "/files/..%2F..%2Fesc-b/download",
        "/files/%2e%2e/download",
        "/files/1%2F..%2F2/download",
    ] {
        let r = teacher.get(&host("esc-a"), path).await;
        assert!(
            matches!(r.status(), StatusCode::NOT_FOUND | StatusCode::BAD_REQUEST),
            "{path}: {}",
            r.status()
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn school_b_cannot_see_or_touch_school_a_files() {
    let app = TestApp::spawn().await;
    school(&app, "iso-a", "ia").await;
    school(&app, "iso-b", "ib").await;
    let mut a_teacher = signed_in(&app, "iso-a", "ia.teacher").await;
    let f = uploaded(&mut a_teacher, "iso-a", "秘密.pdf", pdf(1)).await;
    let fid = id(&f);
    settled(&mut a_teacher, "iso-a", fid).await;

    // B's administrator, on B's host, names A's file id: it is nothing there.
    let mut b_admin = signed_in(&app, "iso-b", "ib.admin").await;
    let hb = host("iso-b");
    for path in [
        format!("/api/v1/files/{fid}"),
        format!("/files/{fid}/download"),
        format!("/files/{fid}/preview"),
        format!("/files/{fid}/pages/1"),
        format!("/files/{fid}/thumb"),
    ] {
        let r = b_admin.get(&hb, &path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let csrf = b_admin.csrf(&hb, "/files").await;
    let del = b_admin
        .request(Method::DELETE, &hb, &format!("/api/v1/files/{fid}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NOT_FOUND);
    // B's session is worth nothing on A's host.
    let r = b_admin
        .get(&host("iso-a"), &format!("/files/{fid}/download"))
        .await;
    assert_ne!(r.status(), StatusCode::OK);
    // Inside A, another member who is not the uploader and has no owning object: 404.
    let mut a_admin = signed_in(&app, "iso-a", "ia.admin").await;
    let r = a_admin
        .get(&host("iso-a"), &format!("/files/{fid}/download"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The file is still A's, whole.
    let r = a_teacher
        .get(&host("iso-a"), &format!("/files/{fid}/download"))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    // B's resumable session ids mean nothing to A's people either.
    let csrf_b = b_admin.csrf(&hb, "/files").await;
    let s: serde_json::Value = b_admin
        .json(
            Method::POST,
            &hb,
            "/api/v1/files/uploads",
            &serde_json::json!({"file_name": "b.pdf", "size": 10}),
            &[("X-CSRF-Token", &csrf_b)],
        )
        .await
        .json()
        .await
        .unwrap();
    let sid = s["id"].as_str().unwrap();
    let r = a_teacher
        .get(&host("iso-a"), &format!("/api/v1/files/uploads/{sid}"))
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.stop().await;
}

#[tokio::test]
async fn quotas_and_file_limits_refuse_with_413_and_keep_nothing() {
    let app = TestApp::spawn().await;
    let a = school(&app, "quota-a", "qa").await;
    sqlx::query(
        "update public.plans set storage_quota_bytes = 400000, max_upload_bytes = 300000 where code = 'standard'",
    )
    .execute(&app.services.pool)
    .await
    .unwrap();
    let mut teacher = signed_in(&app, "quota-a", "qa.teacher").await;
    // Originals only (previews are written meanwhile by the worker).
    let objects = || async {
        let keys = app.services.store.for_tenant(&a).list().await.unwrap();
        keys.iter().filter(|k| k.starts_with("files/")).count()
    };

    let first = png(200, 200); // noise: about 120 KB
    let size1 = first.len() as i64;
    assert!(size1 > 100_000 && size1 < 200_000, "{size1}");
    uploaded(&mut teacher, "quota-a", "一.png", first).await;
    let before = objects().await;

    // Over the per-file limit: 413, whatever the quota says.
    let big = png(400, 400);
    assert!(big.len() > 300_000);
    let r = upload(&mut teacher, "quota-a", "大.png", big).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message_zh"]
            .as_str()
            .unwrap()
            .contains("单个文件不能超过"),
        "{body}"
    );

    // Second file fits; the third would pass the quota: 413 and nothing kept.
    let second = png(200, 200);
    let size2 = second.len() as i64;
    uploaded(&mut teacher, "quota-a", "二.png", second).await;
    let after_two = objects().await;
    let r = upload(&mut teacher, "quota-a", "三.png", png(250, 250)).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message_zh"].as_str().unwrap().contains("存储空间"),
        "{body}"
    );
    assert_eq!(
        objects().await,
        after_two,
        "the refused upload left no object"
    );
    assert!(after_two > before);

    // The school admin and the county see the same usage.
    let mut admin = signed_in(&app, "quota-a", "qa.admin").await;
    let usage: serde_json::Value = admin
        .get(&host("quota-a"), "/api/v1/files/usage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["used_bytes"].as_i64().unwrap(), size1 + size2);
    assert_eq!(usage["files"], 2);
    assert_eq!(usage["quota_bytes"], 400000);
    let page = admin
        .get(&host("quota-a"), "/admin/files")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"percent\""));
    let forbidden = teacher.get(&host("quota-a"), "/api/v1/files/usage").await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    let county: serde_json::Value = app
        .admin(Method::GET, "/admin/v1/storage")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let line = county
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["slug"] == "quota-a")
        .unwrap();
    assert_eq!(line["used_bytes"].as_i64().unwrap(), size1 + size2);

    // Deleting one's own file frees its bytes.
    let mut tx = app.services.db.school(&a).await.unwrap();
    let first_id: i64 = sqlx::query_scalar("select min(id) from files")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let csrf = teacher.csrf(&host("quota-a"), "/files").await;
    let del = teacher
        .request(
            Method::DELETE,
            &host("quota-a"),
            &format!("/api/v1/files/{first_id}"),
        )
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), StatusCode::NO_CONTENT);
    let usage: serde_json::Value = admin
        .get(&host("quota-a"), "/api/v1/files/usage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["used_bytes"].as_i64().unwrap(), size2);
    // Large declared sizes are refused before a byte is sent.
    let csrf = teacher.csrf(&host("quota-a"), "/files").await;
    let r = teacher
        .json(
            Method::POST,
            &host("quota-a"),
            "/api/v1/files/uploads",
            &serde_json::json!({"file_name": "大.zip", "size": 10_000_000}),
            &[("X-CSRF-Token", &csrf)],
        )
        .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    app.stop().await;
}

#[tokio::test]
async fn a_large_file_goes_up_in_resumable_chunks_and_in_one_streamed_form() {
    let app = TestApp::spawn().await;
    school(&app, "big-a", "ga").await;
    let mut teacher = signed_in(&app, "big-a", "ga.teacher").await;
    let h = host("big-a");
    let chunk = 8 * 1024 * 1024;
    let mut data = pdf(2);
    data.resize(chunk * 2 + 12_345, b'\n');

    let csrf = teacher.csrf(&h, "/files").await;
    let s: serde_json::Value = teacher
        .json(
            Method::POST,
            &h,
            "/api/v1/files/uploads",
            &serde_json::json!({"file_name": "../录像/大文件.pdf", "size": data.len()}),
            &[("X-CSRF-Token", &csrf)],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["chunk_size"], chunk);
    let url = s["url"].as_str().unwrap().to_owned();
    let patch = |offset: usize, body: Vec<u8>| {
        teacher
            .request(Method::PATCH, &h, &url)
            .header("x-csrf-token", &csrf)
            .header("upload-offset", offset.to_string())
            .body(body)
            .send()
    };
    let r = patch(0, data[..chunk].to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(r.headers()["upload-offset"], chunk.to_string().as_str());
    // The connection "broke": the client resends the first chunk; told where to go on.
    let r = patch(0, data[..chunk].to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(r.headers()["upload-offset"], chunk.to_string().as_str());
    let head = teacher
        .request(Method::HEAD, &h, &url)
        .send()
        .await
        .unwrap();
    assert_eq!(head.headers()["upload-offset"], chunk.to_string().as_str());
    // A short chunk in the middle is refused.
    let r = patch(chunk, data[chunk..chunk + 100].to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = patch(chunk, data[chunk..2 * chunk].to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = patch(2 * chunk, data[2 * chunk..].to_vec()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let f: serde_json::Value = r.json().await.unwrap();
    assert_eq!(f["file_name"], "大文件.pdf");
    assert_eq!(f["kind"], "pdf");
    assert_eq!(f["size"].as_u64().unwrap(), data.len() as u64);
    let got = teacher
        .get(&h, &format!("/files/{}/download", id(&f)))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        got.as_ref() == data.as_slice(),
        "the parts joined into the same bytes"
    );
    let gone = teacher.get(&h, &url).await;
    assert_eq!(
        gone.status(),
        StatusCode::NOT_FOUND,
        "the session ends with the file"
    );

    // The same bytes in one multipart form go up in S3 parts as they stream.
    let f = uploaded(&mut teacher, "big-a", "同一个.pdf", data.clone()).await;
    let got = teacher
        .get(&h, &format!("/files/{}/download", id(&f)))
        .await
        .bytes()
        .await
        .unwrap();
    assert!(got.as_ref() == data.as_slice());
    app.stop().await;
}

#[tokio::test]
async fn notice_attachments_are_files_only_the_notices_people_see_with_a_watermark() {
    let app = TestApp::spawn().await;
    let a = app.onboard("note-a", "甲校").await.tenant;
    let h = host("note-a");
    let pool = &app.services.pool;
    // A head teacher of class 1 with one pupil's guardian, and a guardian of class 2.
    let mut tx = app.services.db.school(&a).await.unwrap();
    let head: i64 = sqlx::query_scalar(
        "insert into staff (staff_no, name) values ('T1', '李班主任') returning id",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("insert into grades (level, name) values (3, '三年级')")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut guardians = Vec::new();
    let mut classes = Vec::new();
    for n in 1..=2i16 {
        let class: i64 = sqlx::query_scalar(
            "insert into classes (grade_id, number, name, head_teacher_id)
             select id, $1, '三年级（' || $1 || '）班', case when $1 = 1 then $2 end from grades returning id",
        )
        .bind(n)
        .bind(head)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        let pupil: i64 = sqlx::query_scalar("insert into students (student_no, name, class_id) values ($1, '学生', $2) returning id")
            .bind(format!("S{n}"))
            .bind(class)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        let g: i64 =
            sqlx::query_scalar("insert into guardians (name) values ('家长') returning id")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
        sqlx::query("insert into student_guardians (student_id, guardian_id) values ($1, $2)")
            .bind(pupil)
            .bind(g)
            .execute(&mut *tx)
            .await
            .unwrap();
        guardians.push(g);
        classes.push(class);
    }
    tx.commit().await.unwrap();
    let t = person(&app.services, "na.head", "李班主任", PW, &[]).await;
    account::set_membership(
        pool,
        t,
        a.id.0,
        &["teacher", "head_teacher"],
        Some(head),
        None,
    )
    .await
    .unwrap();
    for (i, g) in guardians.iter().enumerate() {
        let p = person(&app.services, &format!("na.parent{i}"), "张家长", PW, &[]).await;
        account::set_membership(pool, p, a.id.0, &["parent"], None, Some(*g))
            .await
            .unwrap();
    }
    person(
        &app.services,
        "na.admin",
        "王校长",
        PW,
        &[(&a, &["school_admin"])],
    )
    .await;

    // The head teacher sends class 1 a notice with a PDF attachment and a pre-uploaded file.
    let mut teacher = signed_in(&app, "note-a", "na.head").await;
    let pre = uploaded(&mut teacher, "note-a", "报名表.pdf", pdf(1)).await;
    let csrf = teacher.csrf(&h, "/notices/new").await;
    let form = Form::new()
        .text("csrf", csrf.clone())
        .text("title", "春游通知")
        .text("body", "<p>请查看附件</p>")
        .text("mode", "read")
        .text("audience", "classes")
        .text("class_ids", classes[0].to_string())
        .text("file_id", id(&pre).to_string())
        .part("files", Part::bytes(pdf(2)).file_name("春游安排.pdf"));
    let r = teacher.post_multipart(&h, "/notices", form, &[]).await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap()
    );
    let loc = r.headers()["location"].to_str().unwrap().to_owned();
    let notice_id: i64 = loc
        .trim_start_matches("/notices/")
        .trim_end_matches("/receipts")
        .parse()
        .unwrap();
    let mut tx = app.services.db.school(&a).await.unwrap();
    let ids: Vec<i64> = sqlx::query_scalar(
        "select file_id from notice_attachments where notice_id = $1 order by n",
    )
    .bind(notice_id)
    .fetch_all(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[1], id(&pre), "the pre-uploaded file is attached");
    let attached = ids[0];
    let meta = settled(&mut teacher, "note-a", attached).await;
    assert_eq!(meta["preview_status"], "ready");
    assert_eq!(meta["owner_kind"], "notice");

    // The recipient opens the notice, sees the preview link, the page and the file.
    let mut parent = signed_in(&app, "note-a", "na.parent0").await;
    let page = parent
        .get(&h, &format!("/notices/{notice_id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/files/{attached}/preview")),
        "{page}"
    );
    let plain = parent.get(&h, &format!("/files/{attached}/pages/1")).await;
    assert_eq!(plain.status(), StatusCode::OK);
    let plain = plain.bytes().await.unwrap();
    assert_eq!(
        parent
            .get(&h, &format!("/files/{attached}/download"))
            .await
            .status(),
        StatusCode::OK
    );
    // Another class's parent is not a recipient: 404 everywhere.
    let mut other = signed_in(&app, "note-a", "na.parent1").await;
    for path in [
        format!("/files/{attached}/download"),
        format!("/files/{attached}/preview"),
        format!("/files/{attached}/pages/1"),
    ] {
        assert_eq!(
            other.get(&h, &path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // An attached file cannot be taken again or deleted on its own.
    let r = teacher
        .request(Method::DELETE, &h, &format!("/api/v1/files/{attached}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // The school switches watermarks on: the same page now carries the viewer's name.
    let mut admin = signed_in(&app, "note-a", "na.admin").await;
    let csrf_admin = admin.csrf(&h, "/admin/files").await;
    let r = admin
        .post(
            &h,
            "/admin/files",
            &[("csrf", &csrf_admin), ("watermark", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let marked = parent.get(&h, &format!("/files/{attached}/pages/1")).await;
    assert_eq!(marked.status(), StatusCode::OK);
    let marked = marked.bytes().await.unwrap();
    let darkness = |b: &[u8]| {
        image::load_from_memory(b)
            .unwrap()
            .to_luma8()
            .pixels()
            .filter(|p| p[0] < 240)
            .count()
    };
    assert!(
        darkness(&marked) > darkness(&plain) + 500,
        "the watermark darkens the page: {} vs {}",
        darkness(&marked),
        darkness(&plain)
    );
    let preview = parent
        .get(&h, &format!("/files/{attached}/preview"))
        .await
        .text()
        .await
        .unwrap();
    assert!(preview.contains("水印"));
    app.stop().await;
}

/// An upload abandoned past its expiry is swept: its stored part freed in S3, its session
/// gone; a live session and another school's expired one are left to their own sweeps.
#[tokio::test]
async fn abandoned_resumable_uploads_are_swept_after_they_expire() {
    let app = TestApp::spawn().await;
    let a = school(&app, "sweep-a", "sa").await;
    let b = school(&app, "sweep-b", "sb").await;
    let chunk = 8 * 1024 * 1024;
    let mut data = pdf(1);
    data.resize(chunk * 2, b'\n');
    let mut sessions = Vec::new();
    for (slug, p) in [("sweep-a", "sa"), ("sweep-a", "sa"), ("sweep-b", "sb")] {
        let h = host(slug);
        let mut teacher = signed_in(&app, slug, &format!("{p}.teacher")).await;
        let csrf = teacher.csrf(&h, "/files").await;
        let s: serde_json::Value = teacher
            .json(
                Method::POST,
                &h,
                "/api/v1/files/uploads",
                &serde_json::json!({"file_name": "半截.pdf", "size": data.len()}),
                &[("X-CSRF-Token", &csrf)],
            )
            .await
            .json()
            .await
            .unwrap();
        let url = s["url"].as_str().unwrap().to_owned();
        let r = teacher
            .request(Method::PATCH, &h, &url)
            .header("x-csrf-token", &csrf)
            .header("upload-offset", "0")
            .body(data[..chunk].to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        sessions.push((s["id"].as_str().unwrap().to_owned(), url, teacher, csrf, h));
    }
    // The first session of A and the one of B were abandoned a day ago.
    for (t, id) in [(&a, &sessions[0].0), (&b, &sessions[2].0)] {
        let mut tx = app.services.db.school(t).await.unwrap();
        sqlx::query("update file_uploads set expires_at = now() - interval '1 hour' where id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let upload_of = |t: &Tenant, id: &str| {
        let (db, t, id) = (app.services.db.clone(), t.clone(), id.to_owned());
        async move {
            let mut tx = db.school(&t).await.unwrap();
            let row: Option<(String, String)> =
                sqlx::query_as("select s3_upload_id, object_key from file_uploads where id = $1")
                    .bind(&id)
                    .fetch_optional(&mut *tx)
                    .await
                    .unwrap();
            tx.commit().await.unwrap();
            row
        }
    };
    let (upload_id, key) = upload_of(&a, &sessions[0].0).await.unwrap();
    let swept = campus_files::sweep_expired(&app.services.db, &app.services.store, &a)
        .await
        .unwrap();
    assert_eq!(swept, 1, "only school A's expired session");
    assert!(upload_of(&a, &sessions[0].0).await.is_none());
    assert!(
        upload_of(&a, &sessions[1].0).await.is_some(),
        "the live one stays"
    );
    assert!(
        upload_of(&b, &sessions[2].0).await.is_some(),
        "school B's waits for B's sweep"
    );
    // S3 no longer holds the part: completing the aborted upload fails.
    let key = campus_tenant::ObjectKey::parse(&key).unwrap();
    let store = app.services.store.for_tenant(&a);
    assert!(
        store.abort_multipart(&key, &upload_id).await.is_err(),
        "the multipart upload was already aborted"
    );
    // The client that comes back is told the session is gone, and can start again.
    let (_, url, teacher, csrf, h) = &sessions[0];
    let r = teacher
        .request(Method::PATCH, h, url)
        .header("x-csrf-token", csrf)
        .header("upload-offset", chunk.to_string())
        .body(data[chunk..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        campus_files::sweep_expired(&app.services.db, &app.services.store, &b)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        campus_files::sweep_expired(&app.services.db, &app.services.store, &a)
            .await
            .unwrap(),
        0,
        "nothing twice"
    );
    app.stop().await;
}
