//! The one rule for where a redirect taken from a request (`?next=`, a `Referer`, a stored
//! link) may go: a path on this same site, or else the site's home page `/`.

/// `candidate` if it is a path on this site, else `/`.
///
/// Accepted: starts with exactly one `/` (not `//`, not `/\`), and neither the text nor its
/// percent-decoded form (decoded repeatedly, so `%2525…` cannot hide anything) holds a
/// control character, tab, backslash, a `//` or `/\` at its start, or a scheme (`x:` before
/// the first `/`, `?` or `#`, or `://` anywhere). Browsers drop tabs and line breaks from
/// URLs and read `\` as `/`, so `/%09/evil.example` or `/\evil.example` would otherwise
/// leave the site.
pub fn same_site_path(candidate: Option<&str>) -> &str {
    match candidate {
        Some(p) if is_same_site_path(p) => p,
        _ => "/",
    }
}

fn is_same_site_path(p: &str) -> bool {
    let mut text = p.as_bytes().to_vec();
    // Each round decodes one more layer of escapes; a path that still changes after a few
    // rounds is not one a page of ours would link to.
    for _ in 0..4 {
        if !plain_path_ok(&text) {
            return false;
        }
        let decoded = percent_decode(&text);
        if decoded == text {
            return true;
        }
        text = decoded;
    }
    false
}

fn plain_path_ok(p: &[u8]) -> bool {
    if p.first() != Some(&b'/') || matches!(p.get(1), Some(b'/' | b'\\')) {
        return false;
    }
    if p.iter().any(|b| b.is_ascii_control() || *b == b'\\') {
        return false;
    }
    // Non-ASCII whitespace browsers may strip (U+00A0 is C2 A0 in UTF-8) is harmless here:
    // it cannot turn the leading `/` into `//`.
    let path_end = p
        .iter()
        .position(|b| matches!(b, b'?' | b'#'))
        .unwrap_or(p.len());
    if p[..path_end].contains(&b':') {
        return false;
    }
    !p.windows(3).any(|w| w == b"://")
}

fn percent_decode(p: &[u8]) -> Vec<u8> {
    let hex = |b: u8| match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    };
    let mut out = Vec::with_capacity(p.len());
    let mut i = 0;
    while i < p.len() {
        if p[i] == b'%' && i + 2 < p.len() {
            if let (Some(h), Some(l)) = (hex(p[i + 1]), hex(p[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(p[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::same_site_path;

    #[test]
    fn paths_on_this_site_are_kept() {
        for ok in [
            "/",
            "/me?x=1",
            "/login?local=1",
            "/notices/12#sign",
            "/files/%E5%9B%BE.png",
            "/a%2Fb",
            "/calendar?month=2026-09",
        ] {
            assert_eq!(same_site_path(Some(ok)), ok, "{ok}");
        }
    }

    #[test]
    fn everything_that_could_leave_the_site_falls_back_to_home() {
        for bad in [
            "//evil.example/",
            "/\\evil.example",
            "/%5Cevil.example",
            "/%5cevil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "/%09/evil.example",
            "/\t/evil.example",
            "/%0d%0aSet-Cookie:%20x=1",
            "/%0A/evil.example",
            "/\r\n/evil",
            "/%00",
            "/%7F",
            "/%252F%252Fevil.example",
            "/%25%35%43evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "/javascript:alert(1)",
            "/x?to=https://evil.example",
            "evil.example",
            "",
        ] {
            assert_eq!(same_site_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(same_site_path(None), "/");
    }
}
