//! QR codes of join links, as inline SVG.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An SVG QR code for `url`, ready to put inside a page (no XML declaration).
pub(crate) fn svg(url: &str) -> String {
    let Ok(code) = QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M) else {
        return String::new();
    };
    let image = code
        .render::<svg::Color>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    let start = image.find("<svg").unwrap_or(0);
    image[start..].replacen(
        "<svg ",
        "<svg class=\"qr\" role=\"img\" aria-label=\"QR\" ",
        1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_inline_svg() {
        let s = svg("https://xinyi.campus.example/join/0123456789abcdef0123456789abcdef");
        assert!(s.starts_with("<svg class=\"qr\""), "{s}");
        assert!(s.contains("<path") && s.ends_with("</svg>"));
        assert!(!s.contains("<?xml"));
    }
}
