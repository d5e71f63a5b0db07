//! The one rule for text written into spreadsheet files (CSV and XLSX exports): a cell a
//! spreadsheet could run as a formula is neutralised (OWASP's advice against CSV injection).

use std::borrow::Cow;

/// Whether a spreadsheet could take `cell` for a formula or a command: it starts with
/// `=`, `+`, `-`, `@`, a tab or a carriage return.
pub fn is_risky(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// `cell` with a leading apostrophe when [`is_risky`], unchanged otherwise. Every CSV the
/// platform writes passes its text cells through this; XLSX cells are written as strings
/// (`write_string`), which a spreadsheet never evaluates.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if is_risky(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// The reverse for files read back in (a roster re-imported from its own export): one
/// leading apostrophe before a risky character is dropped, any other text is unchanged.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if is_risky(rest) => rest,
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_an_apostrophe_and_nothing_else_changes() {
        for risky in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(neutralise(risky), format!("'{risky}"));
            assert_eq!(restore(&neutralise(risky)), risky);
        }
        for plain in ["张三", "", "1+1", "a=b", " =1", "'=1"] {
            assert!(matches!(neutralise(plain), Cow::Borrowed(_)), "{plain:?}");
        }
        // An apostrophe the author typed stays when nothing risky follows it.
        assert_eq!(restore("'张三"), "'张三");
        assert_eq!(restore("''=1"), "''=1");
    }
}
