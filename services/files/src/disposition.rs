//! `Content-Disposition` for downloads: a plain ASCII `filename` for old clients and the
//! real (often Chinese) name as RFC 5987 `filename*=UTF-8''…`, so 通知.pdf arrives as
//! 通知.pdf. Nothing from the name can break out of the header: quotes, backslashes,
//! semicolons and control characters never reach it unencoded.

/// `attachment` (download) or `inline` (shown by the browser).
pub fn header(disposition: &str, name: &str) -> String {
    format!(
        "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_fallback(name),
        encode(name)
    )
}

/// Letters, digits and `.-_` kept, everything else `_`; the extension survives when it is
/// ASCII (`通知.pdf` → `file.pdf`).
fn ascii_fallback(name: &str) -> String {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || ".-_".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    // A name with no ASCII letters or digits before its extension becomes `file.<ext>`.
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()) => {
            (stem, Some(ext))
        }
        _ => (name, None),
    };
    let stem = safe(stem);
    let stem = if stem.trim_matches(['_', '.']).is_empty() {
        "file".to_owned()
    } else {
        stem
    };
    match ext {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem,
    }
}

/// RFC 5987 `attr-char`s as they are, every other byte of the UTF-8 percent-encoded.
fn encode(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_are_kept_in_filename_star() {
        assert_eq!(
            header("attachment", "通知.pdf"),
            "attachment; filename=\"file.pdf\"; filename*=UTF-8''%E9%80%9A%E7%9F%A5.pdf"
        );
    }

    #[test]
    fn quotes_and_separators_cannot_break_the_header() {
        let h = header("inline", "a\";b\r\n.txt");
        assert_eq!(
            h,
            "inline; filename=\"a__b__.txt\"; filename*=UTF-8''a%22%3Bb%0D%0A.txt"
        );
        assert_eq!(ascii_fallback("plan 2026.docx"), "plan_2026.docx");
    }
}
