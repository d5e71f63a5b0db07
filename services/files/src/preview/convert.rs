//! The conversions behind a preview. External programs (LibreOffice, pdftoppm) run one step
//! at a time in the sandbox of [`super::sandbox`] (bubblewrap namespaces, `prlimit` and
//! `timeout`), each step with the file it reads bound read-only and a fresh folder of the
//! job as the only place it can write; its output is collected from that folder once the
//! sandbox is gone, plain files only. Office zips are inflated once before LibreOffice sees
//! them, counting the bytes they really produce. Images are decoded in-process by the
//! `image` crate with decoding limits (pixel dimensions and allocation), which stop
//! decompression bombs before any large buffer is made. Anything that fails, times out or
//! is refused becomes a reason shown as "preview unavailable".

use std::ffi::OsString;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use image::{DynamicImage, ImageDecoder, ImageReader, Limits, RgbImage};

use super::sandbox::{self, Step};
use super::{PreviewSettings, Tools};

/// Longest side of a page image, in pixels (sharp on phones, small enough to send).
pub const PAGE_PX: u32 = 1400;
/// Longest side of a thumbnail.
pub const THUMB_PX: u32 = 320;
/// Bytes an office zip (docx, xlsx, pptx, odt) may inflate to, all entries together.
const MAX_UNPACKED: u64 = 300 * 1024 * 1024;
/// Entries an office zip may have (real documents have tens, at most a few hundred).
const MAX_ENTRIES: usize = 5_000;
/// Largest page image read back from pdftoppm.
const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;

/// JPEG pages and a thumbnail.
#[derive(Debug)]
pub struct Rendered {
    pub pages: Vec<Vec<u8>>,
    pub thumb: Vec<u8>,
}

/// Renders the first pages of a PDF as JPEG images with poppler's `pdftoppm`, in a fresh
/// folder `pages` of the job's folder `job`.
pub async fn pdf_pages(
    tools: &Tools,
    s: &PreviewSettings,
    job: &Path,
    pdf: &Path,
) -> Result<Rendered, String> {
    let program = tools.pdftoppm.as_deref().ok_or("pdftoppm is missing")?;
    let work = sandbox::fresh_folder(job, "pages")?;
    let step = Step {
        program,
        input: Some(pdf),
        work: &work,
    };
    sandbox::run(tools, s, step, |inside| {
        vec![
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
            inside.input.clone().into(),
            inside.work.join("page").into(),
        ]
    })
    .await?;
    // pdftoppm names pages page-1.jpg or page-01.jpg…, padded to the page count's width.
    let mut pages: Vec<(u32, PathBuf)> = std::fs::read_dir(&work)
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
        .filter(|(n, p)| (1..=s.max_pages).contains(n) && sandbox::is_plain_file(p))
        .collect();
    pages.sort();
    if pages.is_empty() {
        return Err("the PDF has no pages that could be drawn".into());
    }
    let mut jpegs = Vec::with_capacity(pages.len());
    for (_, p) in pages {
        jpegs.push(sandbox::output_file(&p, MAX_PAGE_BYTES)?);
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

/// Inflates every entry of an office zip and refuses it when the bytes really produced
/// pass [`MAX_UNPACKED`], one entry of more than 10 MB inflates more than 200-fold (the
/// classic zip bomb hidden in a .docx), or it has more than [`MAX_ENTRIES`] entries. The
/// sizes a zip declares are not trusted: they are whatever its maker wrote.
pub fn check_zip(path: &Path) -> Result<(), String> {
    let Ok(file) = std::fs::File::open(path) else {
        return Err("the file could not be read".into());
    };
    let Ok(mut zip) = zip::ZipArchive::new(std::io::BufReader::new(file)) else {
        // Not a zip (a .doc, .xls, .ppt or .wps compound file): nothing to check here.
        return Ok(());
    };
    if zip.len() > MAX_ENTRIES {
        return Err(format!(
            "the document has {} parts, more than {MAX_ENTRIES} (a zip bomb?)",
            zip.len()
        ));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(|e| format!("damaged zip: {e}"))?;
        let packed = entry.compressed_size().max(1);
        let room = MAX_UNPACKED - total;
        let n = std::io::copy(&mut (&mut entry).take(room + 1), &mut std::io::sink())
            .map_err(|e| format!("damaged zip: {e}"))?;
        if n > 10 * 1024 * 1024 && n / packed > 200 {
            return Err(format!(
                "an entry unpacks {}-fold to more than {} MB (a zip bomb?)",
                n / packed,
                n / 1024 / 1024
            ));
        }
        total += n;
        if total > MAX_UNPACKED {
            return Err(format!(
                "the document unpacks to more than {} MB",
                MAX_UNPACKED / 1024 / 1024
            ));
        }
    }
    Ok(())
}

/// Converts an office document to PDF with LibreOffice, in a fresh folder `office` of the
/// job's folder `job` that is also its home and its profile (nothing is shared between
/// jobs). Returns the PDF's path on the host.
pub async fn office_to_pdf(
    tools: &Tools,
    s: &PreviewSettings,
    job: &Path,
    input: &Path,
) -> Result<PathBuf, String> {
    let program = tools.soffice.as_deref().ok_or("LibreOffice is missing")?;
    check_zip(input)?;
    let work = sandbox::fresh_folder(job, "office")?;
    let step = Step {
        program,
        input: Some(input),
        work: &work,
    };
    sandbox::run(tools, s, step, |inside| {
        let args: Vec<OsString> = vec![
            "--headless".into(),
            "--norestore".into(),
            "--nolockcheck".into(),
            "--nologo".into(),
            "--nodefault".into(),
            format!(
                "-env:UserInstallation=file://{}",
                inside.work.join("profile").display()
            )
            .into(),
            "--convert-to".into(),
            "pdf".into(),
            "--outdir".into(),
            inside.work.clone().into(),
            inside.input.clone().into(),
        ];
        args
    })
    .await?;
    let stem = input.file_stem().unwrap_or_default();
    let pdf = work.join(stem).with_extension("pdf");
    if sandbox::is_plain_file(&pdf) {
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
    use std::io::Write;

    /// Makes every entry over 1 KB declare 1 KB (central directory and local header).
    fn understate_sizes(zip: &mut [u8]) {
        let u16_at = |b: &[u8], at: usize| u16::from_le_bytes([b[at], b[at + 1]]) as usize;
        let u32_at = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
        let eocd = (0..=zip.len() - 22)
            .rev()
            .find(|&i| zip[i..i + 4] == *b"PK\x05\x06")
            .unwrap();
        let mut at = u32_at(zip, eocd + 16) as usize;
        for _ in 0..u16_at(zip, eocd + 10) {
            let local = u32_at(zip, at + 42) as usize;
            if u32_at(zip, at + 24) > 1024 {
                zip[at + 24..at + 28].copy_from_slice(&1024u32.to_le_bytes());
                zip[local + 22..local + 26].copy_from_slice(&1024u32.to_le_bytes());
            }
            at += 46 + u16_at(zip, at + 28) + u16_at(zip, at + 30) + u16_at(zip, at + 32);
        }
    }

    fn zip_file(dir: &Path, entries: &[(&str, usize)]) -> PathBuf {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, size) in entries {
            w.start_file(*name, opts).unwrap();
            w.write_all(&vec![b' '; *size]).unwrap();
        }
        let mut bytes = w.finish().unwrap().into_inner();
        understate_sizes(&mut bytes);
        let path = dir.join("document.docx");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn office_zips_are_measured_by_what_they_inflate_to_not_what_they_declare() {
        let dir = tempfile::tempdir().unwrap();
        let ok = zip_file(dir.path(), &[("word/document.xml", 2 * 1024 * 1024)]);
        assert_eq!(check_zip(&ok), Ok(()));
        let bomb = zip_file(dir.path(), &[("word/document.xml", 40 * 1024 * 1024)]);
        let declared: u64 = {
            let mut z = zip::ZipArchive::new(std::fs::File::open(&bomb).unwrap()).unwrap();
            (0..z.len())
                .map(|i| z.by_index_raw(i).unwrap().size())
                .sum()
        };
        assert_eq!(declared, 1024, "the zip claims 1 KB");
        let why = check_zip(&bomb).unwrap_err();
        assert!(why.contains("zip bomb"), "{why}");
        let many: Vec<(String, usize)> = (0..=MAX_ENTRIES).map(|i| (format!("p{i}"), 0)).collect();
        let many: Vec<(&str, usize)> = many.iter().map(|(n, s)| (n.as_str(), *s)).collect();
        let why = check_zip(&zip_file(dir.path(), &many)).unwrap_err();
        assert!(why.contains("parts"), "{why}");
    }

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
