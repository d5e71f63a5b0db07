//! The conversions behind a preview. External programs (LibreOffice, pdftoppm) run as
//! `prlimit --as --cpu --fsize --nofile -- timeout -k 5 <secs> program …`: an address-space
//! and CPU limit, a wall-clock limit that kills the whole process group, a private
//! working directory, a clean environment and no input. Images are decoded in-process by
//! the `image` crate with decoding limits (pixel dimensions and allocation), which stop
//! decompression bombs before any large buffer is made. Anything that fails, times out or
//! is refused becomes a reason shown as "preview unavailable".

use std::ffi::OsString;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use super::{PreviewSettings, Tools};

/// Longest side of a page image, in pixels (sharp on phones, small enough to send).
pub const PAGE_PX: u32 = 1400;
/// Longest side of a thumbnail.
pub const THUMB_PX: u32 = 320;
/// Unpacked size above which an office zip (docx, xlsx, pptx, odt) is not converted.
const MAX_UNPACKED: u64 = 300 * 1024 * 1024;
/// Largest output file a subprocess may write.
const MAX_OUTPUT: u64 = 512 * 1024 * 1024;

/// JPEG pages and a thumbnail.
#[derive(Debug)]
pub struct Rendered {
    pub pages: Vec<Vec<u8>>,
    pub thumb: Vec<u8>,
}

/// Runs `program` sandboxed in `dir`.
async fn sandboxed(
    tools: &Tools,
    s: &PreviewSettings,
    dir: &Path,
    program: &Path,
    args: &[OsString],
) -> Result<(), String> {
    let (Some(prlimit), Some(timeout)) = (&tools.prlimit, &tools.timeout) else {
        return Err("sandbox tools (prlimit, timeout) are missing".into());
    };
    let secs = s.timeout.as_secs().max(1);
    let mut cmd = tokio::process::Command::new(prlimit);
    cmd.arg(format!("--as={}", s.memory_bytes))
        .arg(format!("--cpu={secs}"))
        .arg(format!("--fsize={MAX_OUTPUT}"))
        .arg("--nofile=512")
        .arg("--core=0")
        .arg("--")
        .arg(timeout)
        .args(["-k", "5", &secs.to_string()])
        .arg(program)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("TMPDIR", dir)
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = tokio::time::timeout(s.timeout + Duration::from_secs(10), cmd.output())
        .await
        .map_err(|_| format!("{name} did not finish in time"))?
        .map_err(|e| format!("{name} could not start: {e}"))?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(124) | Some(137) => Err(format!("{name} did not finish in {secs} s")),
        _ => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err
                .chars()
                .rev()
                .take(300)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(format!("{name} failed ({}): {}", out.status, tail.trim()))
        }
    }
}

/// Renders the first pages of a PDF as JPEG images with poppler's `pdftoppm`.
pub async fn pdf_pages(
    tools: &Tools,
    s: &PreviewSettings,
    dir: &Path,
    pdf: &Path,
) -> Result<Rendered, String> {
    let program = tools.pdftoppm.as_deref().ok_or("pdftoppm is missing")?;
    let out_dir = dir.join("pages");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let args: Vec<OsString> = vec![
        "-q".into(),
        "-jpeg".into(),
        "-jpegopt".into(),
        "quality=80".into(),
        "-scale-to".into(),
        PAGE_PX.to_string().into(),
        "-f".into(),
        "1".into(),
        "-l".into(),
        s.max_pages.to_string().into(),
        pdf.into(),
        out_dir.join("page").into(),
    ];
    sandboxed(tools, s, dir, program, &args).await?;
    // pdftoppm names pages page-1.jpg or page-01.jpg…, padded to the page count's width.
    let mut pages: Vec<(u32, PathBuf)> = std::fs::read_dir(&out_dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let n = p
                .file_stem()?
                .to_str()?
                .strip_prefix("page-")?
                .parse()
                .ok()?;
            Some((n, p))
        })
        .collect();
    pages.sort();
    if pages.is_empty() {
        return Err("the PDF has no pages that could be drawn".into());
    }
    let mut jpegs = Vec::with_capacity(pages.len());
    for (_, p) in pages {
        jpegs.push(std::fs::read(&p).map_err(|e| e.to_string())?);
    }
    let first = jpegs[0].clone();
    let thumb = blocking(s, move || {
        let img = decode(&first, Some("jpeg"))?;
        jpeg(&img.thumbnail(THUMB_PX, THUMB_PX))
    })
    .await?;
    Ok(Rendered {
        pages: jpegs,
        thumb,
    })
}

/// Refuses zips whose entries would unpack to more than [`MAX_UNPACKED`] or unpack one
/// entry more than 200-fold past 10 MB: the classic zip bomb hidden in a .docx.
pub fn check_zip(path: &Path) -> Result<(), String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Err("the file could not be read".into());
    };
    let Ok(mut zip) = zip::ZipArchive::new(file) else {
        // Not a zip (a .doc, .xls, .ppt or .wps compound file): nothing to check here.
        return Ok(());
    };
    let mut total = 0u64;
    for i in 0..zip.len() {
        let e = zip
            .by_index_raw(i)
            .map_err(|e| format!("damaged zip: {e}"))?;
        let (size, packed) = (e.size(), e.compressed_size().max(1));
        if size > 10 * 1024 * 1024 && size / packed > 200 {
            return Err(format!(
                "an entry unpacks {}-fold to {} MB (a zip bomb?)",
                size / packed,
                size / 1024 / 1024
            ));
        }
        total = total.saturating_add(size);
    }
    if total > MAX_UNPACKED {
        return Err(format!(
            "the document unpacks to {} MB, more than {} MB",
            total / 1024 / 1024,
            MAX_UNPACKED / 1024 / 1024
        ));
    }
    Ok(())
}

/// Converts an office document to PDF with LibreOffice (its own profile in `profile`).
pub async fn office_to_pdf(
    tools: &Tools,
    s: &PreviewSettings,
    dir: &Path,
    input: &Path,
    profile: &Path,
) -> Result<PathBuf, String> {
    let program = tools.soffice.as_deref().ok_or("LibreOffice is missing")?;
    check_zip(input)?;
    let out_dir = dir.join("pdf");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let args: Vec<OsString> = vec![
        "--headless".into(),
        "--norestore".into(),
        "--nolockcheck".into(),
        "--nologo".into(),
        "--nodefault".into(),
        format!("-env:UserInstallation=file://{}", profile.display()).into(),
        "--convert-to".into(),
        "pdf".into(),
        "--outdir".into(),
        out_dir.clone().into(),
        input.into(),
    ];
    sandboxed(tools, s, dir, program, &args).await?;
    let stem = input.file_stem().unwrap_or_default();
    let pdf = out_dir.join(stem).with_extension("pdf");
    if pdf.is_file() {
        Ok(pdf)
    } else {
        Err("LibreOffice could not read the document".into())
    }
}

/// Runs CPU-bound work off the async threads, bounded by the conversion time limit.
async fn blocking<T: Send + 'static>(
    s: &PreviewSettings,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    match tokio::time::timeout(s.timeout, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(format!("image work failed: {e}")),
        Err(_) => Err("the image took too long to decode".into()),
    }
}

fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(16_384);
    l.max_image_height = Some(16_384);
    l.max_alloc = Some(512 * 1024 * 1024);
    l
}

/// Decodes with limits and turns the picture the way its EXIF orientation says.
fn decode(bytes: &[u8], _hint: Option<&str>) -> Result<DynamicImage, String> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(limits());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| format!("not a readable image: {e}"))?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| format!("not a readable image: {e}"))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// Re-encodes as JPEG (which carries none of the original's metadata: no GPS position, no
/// camera, no time), transparent parts on white.
fn jpeg(img: &DynamicImage) -> Result<Vec<u8>, String> {
    let rgb: RgbImage = if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        let mut rgb = RgbImage::new(rgba.width(), rgba.height());
        for (d, s) in rgb.pixels_mut().zip(rgba.pixels()) {
            let a = s[3] as u32;
            for c in 0..3 {
                d[c] = ((s[c] as u32 * a + 255 * (255 - a)) / 255) as u8;
            }
        }
        rgb
    } else {
        img.to_rgb8()
    };
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 82)
        .encode_image(&rgb)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// One page (at most [`PAGE_PX`]) and a thumbnail of a picture.
pub async fn image_pages(s: &PreviewSettings, bytes: Vec<u8>) -> Result<Rendered, String> {
    blocking(s, move || {
        let img = decode(&bytes, None)?;
        drop(bytes);
        let page = if img.width().max(img.height()) > PAGE_PX {
            img.resize(PAGE_PX, PAGE_PX, image::imageops::FilterType::Triangle)
        } else {
            img
        };
        Ok(Rendered {
            thumb: jpeg(&page.thumbnail(THUMB_PX, THUMB_PX))?,
            pages: vec![jpeg(&page)?],
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_giant_images_are_refused_before_decoding() {
        // A PNG header claiming 100,000 × 100,000 pixels.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert!(decode(&png, None).is_err());
    }
}
