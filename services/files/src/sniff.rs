//! What a file really is, told from its first bytes (the name and the client's declared
//! type are never trusted): the content type to store and serve, and the kind of preview
//! it can have. Programs are refused outright.

/// How many leading bytes [`detect`] wants (it works with fewer at the end of a file).
pub const SNIFF_LEN: usize = 64 * 1024;

/// What can be made of a file for preview.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Decoded by the `image` crate: thumbnails and one page.
    Image,
    /// Pages rendered by poppler's `pdftoppm`.
    Pdf,
    /// Word, WPS, Excel, PowerPoint and OpenDocument files: LibreOffice makes a PDF first.
    Office,
    /// Stored and downloadable, not previewed.
    Other,
}

impl Kind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Pdf => "pdf",
            Self::Office => "office",
            Self::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "image" => Self::Image,
            "pdf" => Self::Pdf,
            "office" => Self::Office,
            _ => Self::Other,
        }
    }

    /// Whether a preview is made for this kind at all.
    pub fn previewable(self) -> bool {
        self != Self::Other
    }
}

/// The verdict on a file's first bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detected {
    pub content_type: String,
    pub kind: Kind,
}

/// Why a file is not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused;

const OLE: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Tells a file from its leading bytes (up to [`SNIFF_LEN`]).
pub fn detect(head: &[u8]) -> Result<Detected, Refused> {
    let found = |content_type: &str, kind| {
        Ok(Detected {
            content_type: content_type.to_owned(),
            kind,
        })
    };
    // PDF readers accept the header anywhere in the first kilobyte; so do we.
    if head[..head.len().min(1024)]
        .windows(5)
        .any(|w| w == b"%PDF-")
    {
        return found("application/pdf", Kind::Pdf);
    }
    let Some(t) = infer::get(head) else {
        if head.starts_with(OLE) {
            // WPS (.wps/.et/.dps) and other compound documents infer does not name.
            return found("application/x-ole-storage", Kind::Office);
        }
        return found("application/octet-stream", Kind::Other);
    };
    let mime = t.mime_type();
    match t.matcher_type() {
        infer::MatcherType::App => Err(Refused),
        infer::MatcherType::Image => match mime {
            "image/jpeg" | "image/png" | "image/gif" | "image/webp" | "image/bmp" => {
                found(mime, Kind::Image)
            }
            _ => found(mime, Kind::Other),
        },
        infer::MatcherType::Doc => match mime {
            "application/rtf" => found(mime, Kind::Other),
            _ => found(mime, Kind::Office),
        },
        _ if head.starts_with(OLE) => found("application/x-ole-storage", Kind::Office),
        infer::MatcherType::Archive if mime == "application/zip" && looks_like_ooxml(head) => {
            found(
                "application/vnd.openxmlformats-officedocument",
                Kind::Office,
            )
        }
        _ => found(mime, Kind::Other),
    }
}

/// A zip whose first entries are an Office Open XML package's.
fn looks_like_ooxml(head: &[u8]) -> bool {
    [b"[Content_Types].xml".as_slice(), b"word/", b"xl/", b"ppt/"]
        .iter()
        .any(|m| head.windows(m.len()).any(|w| w == *m))
}

/// The name a file is stored under: the last path segment the client sent, without
/// control characters, at most 255 characters; never part of an object key.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(255).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim().to_owned();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(b: &[u8]) -> Kind {
        detect(b).unwrap().kind
    }

    #[test]
    fn types_are_told_by_the_bytes_not_the_name() {
        assert_eq!(kind(b"%PDF-1.4\n%..."), Kind::Pdf);
        assert_eq!(kind(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Kind::Image);
        assert_eq!(kind(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), Kind::Image);
        assert_eq!(kind(b"hello, this is text"), Kind::Other);
        let mut ole = OLE.to_vec();
        ole.resize(600, 0);
        assert_eq!(kind(&ole), Kind::Office);
        assert_eq!(
            detect(b"hello").unwrap().content_type,
            "application/octet-stream"
        );
    }

    #[test]
    fn programs_are_refused() {
        let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
        elf.resize(64, 0);
        assert_eq!(detect(&elf), Err(Refused));
    }

    #[test]
    fn names_lose_their_paths_and_control_characters() {
        assert_eq!(clean_name("../../schools/other/秘密.pdf"), "秘密.pdf");
        assert_eq!(clean_name("C:\\Users\\x\\通知.docx"), "通知.docx");
        assert_eq!(clean_name("a\nb\0.txt"), "ab.txt");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name(&"名".repeat(300)).chars().count(), 255);
    }
}
