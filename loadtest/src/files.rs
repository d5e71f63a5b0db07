//! Files benchmarks against the whole platform served in-process (`campus::app::serve`),
//! with the embedded S3 server in a child process of its own (`campus-bench s3-server`),
//! as S3 is a separate service in production:
//!
//! 1. Upload throughput: a 100 MB file sent by a streaming client as a multipart form to
//!    `POST /api/v1/files`, against copying the same file to the same S3 server with the
//!    plain SDK (`put_object` from the file), in alternating rounds. The process's peak
//!    resident memory is reset (`/proc/self/clear_refs`) before each upload and read after
//!    it; the increase over the resident size before is the upload's peak memory. The
//!    figure is the platform's plus the client's (which runs in this process and streams
//!    the file in 64 KB reads); the S3 server's own peak, measured the same way through
//!    `/proc/<pid>/`, is reported for information.
//! 2. Preview time of a one-page picture (a 12-megapixel phone photo) and of a 10-page Word
//!    document: the preview worker's turn (claim, fetch from S3, convert, store pages and
//!    thumbnail, record) timed for each of several uploads.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use campus::config::Role;
use campus::Services;
use campus_files::preview::worker::{Previewer, Turn};
use campus_files::preview::{PreviewSettings, Tools};
use campus_identity::account::{self, NewAccount};
use hyper::header::HeaderValue;
use std::io::Write;

use crate::auth::{Server, SignInClient, PASSWORD, SESSION_COOKIE};
use crate::stats::{median, ms, verdict};
use crate::world::{with_world_s3, S3Placement, World, BASE_DOMAIN};

const SLUG: &str = "bench-files";
const TARGET_RATIO: f64 = 0.5;
const TARGET_PEAK_MB: f64 = 32.0;
const TARGET_IMAGE: Duration = Duration::from_millis(300);
const TARGET_DOCX: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Size of the uploaded file in MB.
    #[arg(long, default_value_t = 100)]
    pub size_mb: u64,
    /// Rounds of upload and SDK copy.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Pictures previewed (each timed).
    #[arg(long, default_value_t = 5)]
    pub images: usize,
    /// Word documents previewed (each timed; each starts LibreOffice with a fresh profile in its sandbox).
    #[arg(long, default_value_t = 3)]
    pub documents: usize,
    /// Pages of each Word document.
    #[arg(long, default_value_t = 10)]
    pub pages: usize,
}

pub async fn run(server_url: &str, args: Args) -> Result<String> {
    anyhow::ensure!(
        args.size_mb > 0
            && args.rounds > 0
            && args.images > 0
            && args.documents > 0
            && args.pages > 0,
        "every count must be positive"
    );
    // The S3 server in a process of its own, so that the peak memory measured is the
    // platform's (and the client's), not the S3 server's as well.
    with_world_s3(server_url, 'f', 10, S3Placement::OwnProcess, |world| {
        bench(world, args)
    })
    .await
}

/// `VmHWM` (peak) and `VmRSS` (now) of process `proc` (`self` or a pid), in kB.
fn memory_kb(proc: &str) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{proc}/status"))?;
    let field = |name: &str| -> Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .with_context(|| format!("{name} missing from /proc/{proc}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Resets the peak RSS of process `proc` to its RSS now; returns that RSS in kB.
fn reset_peak(proc: &str) -> Result<u64> {
    std::fs::write(format!("/proc/{proc}/clear_refs"), "5")
        .with_context(|| format!("resetting the peak RSS of {proc}"))?;
    Ok(memory_kb(proc)?.1)
}

/// How far the peak RSS of `proc` rose above `before` (kB, from [`reset_peak`]), in MB.
fn peak_added_mb(proc: &str, before: u64) -> Result<f64> {
    Ok(memory_kb(proc)?.0.saturating_sub(before) as f64 / 1024.0)
}

/// Pseudo-random bytes (incompressible, told as "other": no preview work meanwhile).
fn write_big_file(path: &Path, mb: u64) -> Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1024 * 1024];
    for _ in 0..mb {
        for b in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
        }
        f.write_all(&block)?;
    }
    f.flush()?;
    Ok(())
}

/// A 4032 × 3024 photo-like JPEG (gradients and texture).
fn phone_photo() -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(4032, 3024, |x, y| {
        let n = ((x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 23) as u8;
        image::Rgb([(x / 16) as u8 ^ n, (y / 12) as u8, ((x + y) / 28) as u8])
    });
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img)?;
    Ok(out)
}

/// A Word document of `pages` pages of Chinese text.
fn docx(pages: usize) -> Result<Vec<u8>> {
    const CONTENT_TYPES: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#;
    const RELS: &str = r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#;
    let mut body = String::new();
    for p in 0..pages {
        if p > 0 {
            body.push_str(r#"<w:p><w:r><w:br w:type="page"/></w:r></w:p>"#);
        }
        for line in 0..20 {
            body.push_str(&format!(
                "<w:p><w:r><w:t>第 {} 页第 {} 段：本学期家长会定于周五下午三点在各班教室召开，请家长准时参加，并带好学生的作业本和成绩单。</w:t></w:r></w:p>",
                p + 1,
                line + 1
            ));
        }
    }
    let doc = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in [
        ("[Content_Types].xml", CONTENT_TYPES.as_bytes()),
        ("_rels/.rels", RELS.as_bytes()),
        ("word/document.xml", doc.as_bytes()),
    ] {
        w.start_file(name, opts)?;
        w.write_all(bytes)?;
    }
    Ok(w.finish()?.into_inner())
}

struct Client {
    http: reqwest::Client,
    base: String,
    host: String,
    cookie: String,
    csrf: String,
}

impl Client {
    async fn upload(&self, part: reqwest::multipart::Part) -> Result<serde_json::Value> {
        let form = reqwest::multipart::Form::new().part("file", part);
        let resp = self
            .http
            .post(format!("{}/api/v1/files", self.base))
            .header("host", &self.host)
            .header("cookie", &self.cookie)
            .header("x-csrf-token", &self.csrf)
            .multipart(form)
            .send()
            .await?;
        let status = resp.status();
        let body = resp.text().await?;
        anyhow::ensure!(status.as_u16() == 201, "upload answered {status}: {body}");
        Ok(serde_json::from_str(&body)?)
    }
}

async fn bench(world: Arc<World>, args: Args) -> Result<String> {
    let onboarded = world.onboard(SLUG).await?;
    // A plan large enough for the rounds of 100 MB uploads.
    sqlx::query(
        "update public.plans set max_upload_bytes = $1, storage_quota_bytes = $2 where code = 'standard'",
    )
    .bind((args.size_mb as i64 + 1) << 20)
    .bind(((args.size_mb as i64 + 1) << 20) * (args.rounds as i64 + 20))
    .execute(&world.pool)
    .await?;
    let cfg = campus::Config {
        roles: vec![Role::Web],
        database_max_connections: 10,
        host_cache_ttl_secs: 3600,
        ..world.config()?
    };
    cfg.validate()?;
    let services = Services::with_pool(cfg, world.pool.clone()).await?;
    let hash = services.identity.hasher.hash(PASSWORD).await?;
    let login = "bench.files";
    let id = account::ensure(
        &services.pool,
        &NewAccount {
            username: Some(login),
            phone: None,
            display_name: "李老师",
            password_hash: &hash,
            county_role: None,
        },
    )
    .await?;
    account::set_membership(
        &services.pool,
        id,
        onboarded.tenant.id.0,
        &["teacher"],
        None,
        None,
    )
    .await?;
    let server = Server::start(&services).await?;
    let s3_pid = world
        .s3_pid()
        .context("the S3 server runs in this process")?;
    let result = measure(&services, server.addr, login, s3_pid, &args).await;
    let stopped = server.stop().await;
    let out = result?;
    stopped?;
    Ok(out)
}

async fn measure(
    services: &Services,
    addr: std::net::SocketAddr,
    login: &str,
    s3_pid: u32,
    args: &Args,
) -> Result<String> {
    let host = format!("{SLUG}.{BASE_DOMAIN}");
    let token = SignInClient::open(addr, &HeaderValue::from_str(&host)?, login)
        .await?
        .sign_in()
        .await?;
    let http = reqwest::Client::builder().build()?;
    let cookie = format!("{SESSION_COOKIE}={token}");
    let page = http
        .get(format!("http://{addr}/files"))
        .header("host", &host)
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    let marker = "name=\"csrf\" value=\"";
    let at = page
        .find(marker)
        .context("the files page has no CSRF field")?
        + marker.len();
    let client = Client {
        http,
        base: format!("http://{addr}"),
        host,
        cookie,
        csrf: page[at..at + 64].to_owned(),
    };

    // 1. Upload throughput and memory against the plain SDK.
    let dir = tempfile::tempdir()?;
    let big = dir.path().join("big.bin");
    write_big_file(&big, args.size_mb)?;
    let size = args.size_mb << 20;
    let s3 = campus::runtime::s3_client(&services.cfg).await;
    let mut sdk_times = Vec::new();
    let mut upload_times = Vec::new();
    let mut peaks = Vec::new();
    // The S3 server's own peaks during the SDK copies and during the uploads.
    let (mut s3_sdk_peaks, mut s3_upload_peaks) = (Vec::new(), Vec::new());
    let s3_proc = s3_pid.to_string();
    for round in 0..args.rounds {
        eprintln!(
            "round {}: SDK copy, then upload of {} MB",
            round + 1,
            args.size_mb
        );
        let s3_before = reset_peak(&s3_proc)?;
        let started = Instant::now();
        s3.put_object()
            .bucket(&services.cfg.s3_bucket)
            .key(format!("bench-copy/{round}"))
            .body(aws_sdk_s3::primitives::ByteStream::from_path(&big).await?)
            .send()
            .await
            .context("SDK copy")?;
        sdk_times.push(started.elapsed());
        s3_sdk_peaks.push(peak_added_mb(&s3_proc, s3_before)?);

        let s3_before = reset_peak(&s3_proc)?;
        let before = reset_peak("self")?;
        let started = Instant::now();
        let file = tokio::fs::File::open(&big).await?;
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            file,
            64 * 1024,
        ));
        let part = reqwest::multipart::Part::stream_with_length(body, size)
            .file_name("录像.bin")
            .mime_str("application/octet-stream")?;
        let f = client.upload(part).await?;
        upload_times.push(started.elapsed());
        peaks.push(peak_added_mb("self", before)?);
        s3_upload_peaks.push(peak_added_mb(&s3_proc, s3_before)?);
        anyhow::ensure!(
            f["size"].as_u64() == Some(size),
            "the upload stored {}",
            f["size"]
        );
    }
    let mb_per_s = |d: Duration| size as f64 / 1024.0 / 1024.0 / d.as_secs_f64();
    let ratios: Vec<f64> = sdk_times
        .iter()
        .zip(&upload_times)
        .map(|(s, u)| s.as_secs_f64() / u.as_secs_f64())
        .collect();
    let mut sorted_ratios = ratios.clone();
    sorted_ratios.sort_by(f64::total_cmp);
    let ratio = sorted_ratios[sorted_ratios.len() / 2];
    let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let peak = max(&peaks);
    sdk_times.sort();
    upload_times.sort();
    let sdk_median = median(&sdk_times).context("no rounds")?;
    let upload_median = median(&upload_times).context("no rounds")?;

    // 2. Previews, made by the worker driven turn by turn.
    let tools = Tools::detect(PreviewSettings::default().sandbox);
    let previewer = Previewer::new(
        services.db.clone(),
        services.store.clone(),
        tools.clone(),
        PreviewSettings::default(),
    )?;
    let photo = phone_photo()?;
    let mut image_times = Vec::new();
    for i in 0..args.images {
        client
            .upload(
                reqwest::multipart::Part::bytes(photo.clone()).file_name(format!("合影{i}.jpg")),
            )
            .await?;
        image_times.push(timed_turn(&previewer).await?);
    }
    let document = docx(args.pages)?;
    let mut doc_times = Vec::new();
    let mut doc_pages = 0;
    for i in 0..args.documents {
        let f = client
            .upload(
                reqwest::multipart::Part::bytes(document.clone())
                    .file_name(format!("通知{i}.docx")),
            )
            .await?;
        doc_times.push(timed_turn(&previewer).await?);
        let meta: serde_json::Value = client
            .http
            .get(format!("{}/api/v1/files/{}", client.base, f["id"]))
            .header("host", &client.host)
            .header("cookie", &client.cookie)
            .send()
            .await?
            .json()
            .await?;
        anyhow::ensure!(
            meta["preview_status"] == "ready",
            "the document's preview is {}",
            meta["preview_status"]
        );
        doc_pages = meta["preview_pages"].as_i64().unwrap_or(0);
    }
    let cold_doc = doc_times[0];
    let mut sorted_images = image_times.clone();
    sorted_images.sort();
    let mut sorted_docs = doc_times.clone();
    sorted_docs.sort();
    let image_median = median(&sorted_images).context("no images")?;
    let image_max = *sorted_images.last().context("no images")?;
    let doc_max = *sorted_docs.last().context("no documents")?;
    let doc_median = median(&sorted_docs).context("no documents")?;

    let mut out = String::new();
    out.push_str(&format!(
        "The whole platform in one process; the embedded S3 server in a process of its own \
         (`campus-bench s3-server`, on loopback), as S3 is a separate service in production. \
         {} MB of random bytes, {} rounds; the upload is a multipart form streamed from the \
         file by the client (64 KB reads), the baseline `put_object` of the same file with \
         the AWS SDK to the same S3 server. Peak memory: the benchmark process's peak RSS \
         (reset before each upload) minus its RSS before the upload — the platform's, plus \
         the streaming client's, which runs in the same process; the S3 server's own peak \
         is measured the same way and shown for information. Previews: `{}`.\n\n",
        args.size_mb,
        args.rounds,
        tools.describe()
    ));
    out.push_str("| Measure | SDK copy | Upload through the platform |\n|---|---:|---:|\n");
    out.push_str(&format!(
        "| median time | {} | {} |\n| throughput | {:.0} MB/s | {:.0} MB/s |\n\
         | peak memory added, platform and client (max of rounds) | – | {:.1} MB |\n\
         | peak memory added, S3 server process (max of rounds; informational) | {:.1} MB | {:.1} MB |\n\n",
        ms(sdk_median),
        ms(upload_median),
        mb_per_s(sdk_median),
        mb_per_s(upload_median),
        peak,
        max(&s3_sdk_peaks),
        max(&s3_upload_peaks)
    ));
    let list = |v: &[f64], digits: usize| {
        v.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    out.push_str(&format!(
        "Per round, upload ÷ SDK throughput: {}; peak memory added by the upload: {} MB.\n\n",
        list(&ratios, 2),
        list(&peaks, 1)
    ));
    out.push_str("| Preview | runs | median | max |\n|---|---:|---:|---:|\n");
    out.push_str(&format!(
        "| 4032 × 3024 JPEG ({} KB), one page | {} | {} | {} |\n",
        photo.len() / 1024,
        image_times.len(),
        ms(image_median),
        ms(image_max)
    ));
    out.push_str(&format!(
        "| {}-page .docx ({doc_pages} pages drawn; first run {} incl. LibreOffice's first start) | {} | {} | {} |\n\n",
        args.pages,
        ms(cold_doc),
        doc_times.len(),
        ms(doc_median),
        ms(doc_max)
    ));
    out.push_str("| Target | Measured | Result |\n|---|---|---|\n");
    out.push_str(&format!(
        "| Files: upload of {} MB ≥ {TARGET_RATIO} × the SDK's throughput | {ratio:.2} × (median of rounds) | {} |\n",
        args.size_mb,
        verdict(ratio >= TARGET_RATIO)
    ));
    out.push_str(&format!(
        "| Files: peak memory of the upload (platform and client) < {TARGET_PEAK_MB} MB | {peak:.1} MB | {} |\n",
        verdict(peak < TARGET_PEAK_MB)
    ));
    out.push_str(&format!(
        "| Files: one-page image preview < {} | {} (max of {}) | {} |\n",
        ms(TARGET_IMAGE),
        ms(image_max),
        image_times.len(),
        verdict(image_max < TARGET_IMAGE)
    ));
    out.push_str(&format!(
        "| Files: {}-page docx preview < {} | {} (max of {}, first start included) | {} |\n",
        args.pages,
        ms(TARGET_DOCX),
        ms(doc_max),
        doc_times.len(),
        verdict(doc_max < TARGET_DOCX && doc_pages as usize == args.pages)
    ));
    Ok(out)
}

/// One worker turn that must have made a preview.
async fn timed_turn(previewer: &Previewer) -> Result<Duration> {
    let started = Instant::now();
    let turn = previewer.turn().await?;
    let took = started.elapsed();
    anyhow::ensure!(turn == Turn::Worked, "the worker found nothing to preview");
    Ok(took)
}
