//! The viewer's name drawn across a preview page, diagonally and repeated, when the school
//! asks for it (schools worry about screenshots of documents leaking). Drawn into the
//! pixels of each page image as it is served, so the name cannot be removed by editing
//! the page's HTML. The text is set with a CJK font found on the system (WenQuanYi or
//! Noto CJK; fonts-wqy-microhei is installed by scripts/test.sh).

use std::sync::OnceLock;

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use image::{GrayImage, RgbImage};

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
];

fn font() -> Option<&'static FontVec> {
    static FONT: OnceLock<Option<FontVec>> = OnceLock::new();
    FONT.get_or_init(|| {
        FONT_PATHS.iter().find_map(|p| {
            let data = std::fs::read(p).ok()?;
            FontVec::try_from_vec_and_index(data, 0).ok()
        })
    })
    .as_ref()
}

/// Whether a CJK font for watermarks was found.
pub fn available() -> bool {
    font().is_some()
}

/// The text drawn horizontally as a coverage mask, with room around it for the tiling.
fn text_tile(font: &FontVec, text: &str, px: f32) -> GrayImage {
    let scaled = font.as_scaled(PxScale::from(px));
    let width: f32 = text
        .chars()
        .map(|c| scaled.h_advance(scaled.glyph_id(c)))
        .sum();
    let (w, h) = ((width + px * 3.0) as u32, (px * 4.0) as u32);
    let mut tile = GrayImage::new(w.max(1), h.max(1));
    let mut x = px;
    let baseline = px * 1.5 + scaled.ascent();
    for c in text.chars() {
        let id = scaled.glyph_id(c);
        let glyph = id.with_scale_and_position(px, ab_glyph::point(x, baseline));
        x += scaled.h_advance(id);
        if let Some(outline) = font.outline_glyph(glyph) {
            let b = outline.px_bounds();
            outline.draw(|gx, gy, cov| {
                let (px_, py_) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                if px_ >= 0
                    && py_ >= 0
                    && (px_ as u32) < tile.width()
                    && (py_ as u32) < tile.height()
                {
                    let p = tile.get_pixel_mut(px_ as u32, py_ as u32);
                    p[0] = p[0].max((cov * 255.0) as u8);
                }
            });
        }
    }
    tile
}

/// Draws `text` over the JPEG page, repeated along lines rising at 30°; returns the new
/// JPEG. `None` when no CJK font is installed (the caller refuses to serve the page).
pub fn apply(page_jpeg: &[u8], text: &str) -> Option<Result<Vec<u8>, String>> {
    let font = font()?;
    Some(draw(font, page_jpeg, text))
}

fn draw(font: &FontVec, page_jpeg: &[u8], text: &str) -> Result<Vec<u8>, String> {
    let mut page: RgbImage =
        image::load_from_memory_with_format(page_jpeg, image::ImageFormat::Jpeg)
            .map_err(|e| e.to_string())?
            .to_rgb8();
    let px = (page.width().min(page.height()) as f32 / 18.0).max(14.0);
    let tile = text_tile(font, text, px);
    let (tw, th) = (tile.width() as f32, tile.height() as f32);
    let (sin, cos) = (30f32.to_radians().sin(), 30f32.to_radians().cos());
    for (x, y, p) in page.enumerate_pixels_mut() {
        // Page coordinates turned into the text's frame, then folded onto one tile;
        // every other row is shifted by half a tile so the names interlock.
        let (xf, yf) = (x as f32, y as f32);
        let u = xf * cos - yf * sin;
        let v = xf * sin + yf * cos;
        let row = (v / th).floor();
        let u = u + if row as i64 % 2 == 0 { 0.0 } else { tw / 2.0 };
        let (tu, tv) = (u.rem_euclid(tw) as u32, v.rem_euclid(th) as u32);
        let cov = tile.get_pixel(tu.min(tile.width() - 1), tv.min(tile.height() - 1))[0];
        if cov > 0 {
            let a = cov as f32 / 255.0 * 0.3;
            for c in 0..3 {
                p[c] = (p[c] as f32 * (1.0 - a) + 110.0 * a) as u8;
            }
        }
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&page)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_darkens_a_white_page() {
        if !available() {
            eprintln!("no CJK font installed; skipping");
            return;
        }
        let white = RgbImage::from_pixel(400, 300, image::Rgb([255, 255, 255]));
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&white)
            .unwrap();
        let marked = apply(&jpeg, "张老师 2026-11-24").unwrap().unwrap();
        let img = image::load_from_memory(&marked).unwrap().to_rgb8();
        let dark = img.pixels().filter(|p| p[0] < 235).count();
        assert!(dark > 1000, "only {dark} pixels were marked");
    }
}
